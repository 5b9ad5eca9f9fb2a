"""Adapter versions: stored atomically from a real PEFT adapter, activated, rolled back, exported for plain PEFT."""

import json

import pytest
import torch
from click.testing import CliRunner

from aeth.cli import cli
from aeth.models.adapters import AdapterError, AdapterStore

peft = pytest.importorskip("peft")


@pytest.fixture(scope="module")
def lora_dir(tiny_model_dir, tmp_path_factory):
    """A real LoRA adapter on the tiny model, saved by PEFT (safetensors)."""
    from aeth.testing import build_lora

    return build_lora(tiny_model_dir, tmp_path_factory.mktemp("lora"))


def test_store_activate_rollback_and_history(tmp_path, lora_dir):
    store = AdapterStore(tmp_path)
    assert store.versions("coding") == [] and store.active("coding") is None
    v1 = store.add("coding", lora_dir, {"base_model": "tiny", "eval": {"score": 0.1}})
    v2 = store.add("coding", lora_dir, {"base_model": "tiny", "parent": v1.version})
    assert [v.number for v in store.versions("coding")] == [1, 2]
    assert v2.manifest["parent"] == v1.version and v2.manifest["specialist"] == "coding" and v2.manifest["created"]
    assert store.active("coding") is None  # storing never promotes
    store.activate("coding", "v0001")
    store.activate("coding", "v0002")
    assert store.active("coding").version == v2.version
    assert store.rollback("coding").version == v1.version  # repeated rollbacks walk back in order
    assert store.rollback("coding") is None and store.active("coding") is None
    with pytest.raises(AdapterError, match="no active adapter to roll back"):
        store.rollback("coding")
    assert [h["active"] for h in store.history("coding")] == [v1.version, v2.version, v1.version, None]
    with pytest.raises(AdapterError, match="no adapter version of 'coding' matches 'v0009'"):
        store.get("coding", "v0009")


def test_a_half_written_version_is_never_listed(tmp_path, lora_dir):
    store = AdapterStore(tmp_path)
    store.add("coding", lora_dir, {})
    leftover = tmp_path / "adapters" / "coding" / ".tmp-v0002-abcdef-x"  # as a crash mid-copy leaves it
    leftover.mkdir()
    (leftover / "adapter_config.json").write_text("{}")
    assert [v.number for v in store.versions("coding")] == [1]
    assert store.add("coding", lora_dir, {}).number == 2


def test_pickle_adapters_are_refused(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "adapter_config.json").write_text("{}")
    (src / "adapter_model.bin").write_bytes(b"\x80\x04not opened")
    with pytest.raises(AdapterError, match=r"pickles \(adapter_model.bin\); aeth stores safetensors only"):
        AdapterStore(tmp_path / "home").add("coding", src, {})


def test_exported_version_loads_with_plain_peft_and_gives_the_same_logits(tmp_path, lora_dir, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    store = AdapterStore(tmp_path)
    version = store.add("coding", lora_dir, {"base_model": str(tiny_model_dir)})
    out = store.export("coding", version.version, tmp_path / "export")
    assert sorted(p.name for p in out.iterdir()) == ["adapter_config.json", "adapter_model.safetensors", "manifest.json"]
    ids = torch.tensor([[5, 17, 42, 99]])

    def logits(adapter):
        base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        return peft.PeftModel.from_pretrained(base, adapter)(input_ids=ids).logits

    with torch.no_grad():
        torch.testing.assert_close(logits(out), logits(lora_dir))
        bare = AutoModelForCausalLM.from_pretrained(tiny_model_dir)(input_ids=ids).logits
        assert not torch.allclose(logits(out), bare)  # the adapter really changes the model
    with pytest.raises(AdapterError, match="is not empty"):
        store.export("coding", version.version, out)


def test_adapters_command(aeth_home, lora_dir):
    store = AdapterStore(aeth_home)
    store.add("coding", lora_dir, {"base_model": "smollm2-135m-instruct", "eval": {"score": 0.25}})
    runner = CliRunner()
    out = runner.invoke(cli, ["adapters", "activate", "coding", "v0001"])
    assert out.exit_code == 0, out.output
    rows = json.loads(runner.invoke(cli, ["adapters", "list", "coding", "--json"]).stdout)
    assert rows == [{"version": rows[0]["version"], "active": True, "created": rows[0]["created"],
                     "base_model": "smollm2-135m-instruct", "score": 0.25}]
    assert json.loads(runner.invoke(cli, ["adapters", "show", "coding", "v0001"]).stdout)["eval"] == {"score": 0.25}
    assert runner.invoke(cli, ["adapters", "rollback", "coding"]).exit_code == 0
    assert not json.loads(runner.invoke(cli, ["adapters", "list", "coding", "--json"]).stdout)[0]["active"]
    bad = runner.invoke(cli, ["adapters", "show", "coding", "v0007"])
    assert bad.exit_code == 1 and "no adapter version of 'coding' matches 'v0007'" in bad.output


# ---- serving the active adapter ----------------------------------------------------------------


def test_run_serves_the_active_adapter_and_others_still_get_the_bare_base(aeth_home, register_plugin, lora_dir, tiny_model_dir):
    from aeth import Request, Specialist, hookimpl
    from aeth.app import Aeth

    class Two:
        @hookimpl
        def register_specialists(self, register):
            for name in ("tuned", "plain"):
                register(Specialist(name=name, description=name, base_model=str(tiny_model_dir)))

    register_plugin(Two(), "two")
    app = Aeth()

    def answer(name):
        return app.run(Request("hello there", specialist=name, temperature=0, max_tokens=12))

    before = answer("plain")
    assert before.adapter is None
    store = AdapterStore(aeth_home)
    version = store.add("tuned", lora_dir, {"base_model": str(tiny_model_dir)})
    store.activate("tuned", version.version)
    tuned = answer("tuned")
    assert tuned.adapter == version.version
    after = answer("plain")  # the shared base now carries a PEFT adapter: "plain" must not see it
    assert after.adapter is None and after.text == before.text

    # the served model is the stored adapter, exactly
    loaded = app.models.loaded[0]
    served, scope = app.models.with_adapter(loaded, "tuned", store.active("tuned"))
    ids = torch.tensor([[5, 17, 42, 99]])
    from transformers import AutoModelForCausalLM

    dtype = loaded.model.dtype  # the pool's choice (bf16 where supported): compare like with like
    reference = peft.PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=dtype), str(lora_dir))
    with torch.no_grad(), scope:
        torch.testing.assert_close(served.model(input_ids=ids).logits.float(), reference(input_ids=ids).logits.float(),
                                   atol=1e-5, rtol=1e-4)
    _, bare_scope = app.models.with_adapter(loaded, "plain", None)
    with torch.no_grad(), bare_scope:
        bare = loaded.model(input_ids=ids).logits.float()
    with torch.no_grad():
        torch.testing.assert_close(bare, AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=dtype)(input_ids=ids).logits.float(),
                                   atol=1e-5, rtol=1e-4)


def test_an_adapter_for_another_base_is_not_served(aeth_home, register_plugin, lora_dir, tiny_model_dir):
    from aeth import Request, Specialist, hookimpl
    from aeth.app import Aeth
    from aeth.plugins import AethWarning

    class One:
        @hookimpl
        def register_specialists(self, register):
            register(Specialist(name="tuned", description="t", base_model=str(tiny_model_dir)))

    register_plugin(One(), "one")
    store = AdapterStore(aeth_home)
    store.activate("tuned", store.add("tuned", lora_dir, {"base_model": "org/another-model"}).version)
    with pytest.warns(AethWarning, match="was trained on 'org/another-model'"):
        response = Aeth().run(Request("hi", specialist="tuned", max_tokens=4))
    assert response.adapter is None


def test_switching_adapters_on_one_base_gives_each_adapters_own_logits(aeth_home, lora_dir, tiny_model_dir, tmp_path):
    """The pool's direct switch (attributes on each LoRA layer) against a fresh plain PEFT model per adapter."""
    from transformers import AutoModelForCausalLM

    from aeth.config import load_config
    from aeth.models.pool import ModelPool

    other = tmp_path / "other"  # a second adapter on different modules, so layers differ between them
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model = peft.get_peft_model(base, peft.LoraConfig(r=2, lora_alpha=4, target_modules=["k_proj", "down_proj"]))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.uniform_(-0.5, 0.5)
    model.save_pretrained(other)
    store = AdapterStore(aeth_home)
    first = store.add("coding", lora_dir, {"base_model": str(tiny_model_dir)})
    second = store.add("writing", other, {"base_model": str(tiny_model_dir)})
    ids = torch.tensor([[5, 17, 42, 99]])

    def plain(adapter):
        fresh = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        return fresh(input_ids=ids).logits if adapter is None else peft.PeftModel.from_pretrained(fresh, adapter)(input_ids=ids).logits

    pool = ModelPool(load_config(["model.dtype=float32"]))
    loaded = pool.get(str(tiny_model_dir), "none")
    with torch.no_grad():
        expected = {"coding": plain(lora_dir), "writing": plain(other), None: plain(None)}
        for who, version in [("coding", first), ("writing", second), (None, None), ("coding", first), (None, None),
                             ("writing", second)]:
            served, scope = pool.with_adapter(loaded, who or "general", version)
            with scope:
                torch.testing.assert_close(served.model(input_ids=ids).logits, expected[who], msg=f"serving {who}")


def test_threads_serving_different_adapters_of_one_base_do_not_switch_under_each_other(aeth_home, lora_dir, tiny_model_dir):
    import threading

    from aeth.config import load_config
    from aeth.models.pool import ModelPool

    version = AdapterStore(aeth_home).add("coding", lora_dir, {"base_model": str(tiny_model_dir)})
    pool = ModelPool(load_config(["model.dtype=float32"]))
    loaded = pool.get(str(tiny_model_dir), "none")
    ids = torch.tensor([[5, 17, 42, 99]])
    expected = {}
    for who, adapter in (("coding", version), ("general", None)):
        served, scope = pool.with_adapter(loaded, who, adapter)
        with scope, torch.no_grad():
            expected[who] = served.model(input_ids=ids).logits
    assert not torch.allclose(expected["coding"], expected["general"])
    wrong = []

    def serve(who, adapter):
        for _ in range(30):
            served, scope = pool.with_adapter(loaded, who, adapter)
            with scope, torch.no_grad():
                first = served.model(input_ids=ids).logits
                second = served.model(input_ids=ids).logits  # another thread may have switched in between
            wrong.extend(who for got in (first, second) if not torch.allclose(got, expected[who]))

    threads = [threading.Thread(target=serve, args=args) for args in (("coding", version), ("general", None))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
