"""Tests of aeth's pytest plugin (:mod:`aeth.testing`): the tiny model and the fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aeth.app import Aeth
from aeth.config import KEYS, load_config
from aeth.plugins import default_host
from aeth.testing import SPECIAL_TOKENS, build_tiny_model

pytest_plugins = ["pytester"]

SAMPLES = [
    "Hello, world!",
    "  leading and trailing spaces  \n\ttabs\tand newlines\n",
    "def add(a, b):\n    return a + b  # sum\n",
    "naïve café, 東京, emoji 🚀 and math ∑x²",
    "SELECT * FROM t WHERE name = 'x';",
]


# ---- the tiny model -----------------------------------------------------------------------


def test_tiny_model_files_are_small_safetensors(tiny_model_dir: Path):
    names = {p.name for p in tiny_model_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl"))], "pickle-based weights written"
    assert 50_000 < (tiny_model_dir / "model.safetensors").stat().st_size < 1_000_000


def test_tiny_model_build_is_seeded_and_leaves_global_rng_alone(tmp_path: Path):
    import torch
    from safetensors.torch import load_file

    state = torch.random.get_rng_state()
    a = load_file(build_tiny_model(tmp_path / "a", seed=0) / "model.safetensors")
    b = load_file(build_tiny_model(tmp_path / "b", seed=0) / "model.safetensors")
    c = load_file(build_tiny_model(tmp_path / "c", seed=1) / "model.safetensors")
    assert torch.equal(torch.random.get_rng_state(), state)
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert (tmp_path / "a" / "tokenizer.json").read_bytes() == (tmp_path / "b" / "tokenizer.json").read_bytes()


def test_tokenizer_round_trips_text(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert 300 <= len(tok) <= 500
    for text in SAMPLES:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert all(0 <= i < len(tok) for i in ids)
        assert tok.decode(ids) == text
    # BPE merges were learned: common words take fewer tokens than bytes
    assert len(tok("return the function")["input_ids"]) < len("return the function") / 2


def test_tokenizer_special_tokens(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert tok.eos_token == "<|im_end|>"
    assert tok.pad_token is not None and tok.pad_token_id != tok.eos_token_id
    for special in SPECIAL_TOKENS:
        assert len(tok(special, add_special_tokens=False)["input_ids"]) == 1, special
    assert tok.decode(tok("<|im_start|>user\nhi<|im_end|>")["input_ids"], skip_special_tokens=True) == "user\nhi"


def test_tokenizer_applies_chatml_template(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Bye"},
    ]
    text = tok.apply_chat_template(messages, tokenize=False)
    assert text == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                    "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n")
    prompt = tok.apply_chat_template(messages[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")


def test_tiny_model_loads_through_aeth_and_answers(tiny_model_dir: Path, aeth_home: Path):
    import torch

    from aeth import Specialist
    from aeth.generation import answerer
    from aeth.models.loading import load_model

    loaded = load_model(tiny_model_dir, quantization="none", dtype="float32", device="cpu")
    assert 10_000 < loaded.n_params < 200_000
    vocab = len(loaded.tokenizer)
    ids = loaded.tokenizer("def add(a, b):", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = loaded.model(input_ids=ids).logits
    assert logits.shape == (1, ids.shape[1], vocab)
    assert torch.isfinite(logits).all()
    answer = answerer(loaded, Specialist(name="probe", description="probe", system_prompt="Be brief."), max_tokens=8)
    first, again = answer("Hi"), answer("Hi")
    assert isinstance(first, str) and first == again  # greedy: same prompt, same answer


# ---- aeth_home ----------------------------------------------------------------------------


@pytest.fixture
def leaky(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Every way configuration can leak into a test, set up before ``aeth_home`` runs."""
    (tmp_path / "aeth.yaml").write_text("router:\n  top_k: 7\n")
    (tmp_path / "explicit.yaml").write_text("router:\n  fallback: explicit\n")
    (tmp_path / "xdg" / "aeth").mkdir(parents=True)
    (tmp_path / "xdg" / "aeth" / "aeth.yaml").write_text("model:\n  device: cpu\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("AETH_HOME", str(tmp_path / "real-home"))
    monkeypatch.setenv("AETH_ROUTER_THRESHOLD", "0.9")
    monkeypatch.setenv("AETH_LOAD_PLUGINS", "")  # picks plugins, not configuration: must survive
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_leaky_fixture_really_leaks(leaky: Path):
    # Guards the next test: without aeth_home, each source does reach the configuration.
    assert Aeth().config["router.threshold"] == 0.9
    cfg = load_config()
    assert cfg["router.top_k"] == 7 and cfg["model.device"] == "cpu"
    assert cfg.home == leaky / "real-home"
    assert load_config(env={"AETH_CONFIG": str(leaky / "explicit.yaml")})["router.fallback"] == "explicit"


def test_aeth_home_isolates_configuration(leaky: Path, aeth_home: Path):
    assert aeth_home.is_dir() and not any(aeth_home.iterdir())
    assert not aeth_home.is_relative_to(leaky)
    assert os.environ["AETH_HOME"] == str(aeth_home)
    assert os.environ["AETH_LOAD_PLUGINS"] == ""
    assert not [k for k in os.environ if k.startswith("AETH_") and k not in ("AETH_HOME", "AETH_LOAD_PLUGINS")]
    assert Path.cwd() != leaky and not (Path.cwd() / "aeth.yaml").exists()
    cfg = Aeth().config
    assert cfg.home == aeth_home
    assert cfg.sources == {"home": "environment"}, "something besides AETH_HOME reached the configuration"
    assert cfg["router.threshold"] == KEYS["router.threshold"].default


def test_aeth_home_undoes_everything_at_teardown(pytester: pytest.Pytester):
    pytester.makepyfile(test_inner="""
        import os
        from pathlib import Path

        from aeth.app import Aeth

        seen = {}

        def test_uses_home(aeth_home, monkeypatch):
            monkeypatch.setenv("AETH_ROUTER_TOP_K", "9")
            seen["home"], seen["cwd"] = aeth_home, Path.cwd()
            assert Aeth().config["router.top_k"] == 9

        def test_after(monkeypatch, tmp_path):
            assert os.environ.get("AETH_HOME") != str(seen["home"])
            assert Path.cwd() != seen["cwd"]
            # an environment left behind by the fixture would still say top_k 9 and the old home
            monkeypatch.setenv("AETH_HOME", str(tmp_path))
            monkeypatch.delenv("AETH_ROUTER_TOP_K", raising=False)
            assert Aeth().config.home == tmp_path
            assert Aeth().config["router.top_k"] == 3
    """)
    pytester.runpytest_inprocess("-q").assert_outcomes(passed=2)


# ---- register_plugin ----------------------------------------------------------------------


def test_register_plugin_unregisters_even_when_the_test_fails(pytester: pytest.Pytester):
    pytester.makepyfile(test_inner="""
        import warnings

        from aeth import Specialist, hookimpl
        from aeth.app import Aeth
        from aeth.plugins import default_host

        class Throwaway:
            @hookimpl
            def register_specialists(self, register):
                register(Specialist(name="throwaway", description="registered by a test"))

        def test_registers_then_fails(register_plugin):
            assert register_plugin(Throwaway(), name="throwaway-plugin") is True
            specialist = Aeth().specialists()["throwaway"]
            assert specialist.plugin == "throwaway-plugin"
            assert False, "deliberate failure"

        def test_plugin_is_gone():
            host = default_host()
            assert not host.pm.has_plugin("throwaway-plugin")
            assert "throwaway-plugin" not in host.infos
            assert "throwaway" not in Aeth().specialists()

        def test_refused_name_is_not_unregistered(register_plugin):
            with warnings.catch_warnings(record=True):
                warnings.simplefilter("always")
                assert register_plugin(Throwaway(), name="aeth.general") is False

        def test_taken_name_survived():
            assert default_host().pm.has_plugin("aeth.general")
            assert "general" in Aeth().specialists()
    """)
    result = pytester.runpytest_inprocess("-q")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*deliberate failure*"])
    assert not default_host().pm.has_plugin("throwaway-plugin")


def test_a_contract_whose_specialist_was_rejected_shows_the_rejection(aeth_home, register_plugin):
    from aeth import AdapterSpec, Specialist, hookimpl
    from aeth.testing import SpecialistContract

    class Rejected:
        @hookimpl
        def register_specialists(self, register):
            register(Specialist(name="rejected", description="its adapter is invalid", adapter=AdapterSpec(r=0)))

    class TestRejected(SpecialistContract):
        specialist_name = "rejected"

    register_plugin(Rejected(), "rejected-plugin")
    with pytest.raises(AssertionError) as failed:
        TestRejected()._specialist()
    said = str(failed.value)
    assert "specialist 'rejected' is not registered" in said
    assert "plugin 'rejected-plugin' registered invalid specialist 'rejected' (field adapter.r" in said
