"""DPO and KTO through aeth's own training loop: the loss falls and the margin between good and bad
answers grows, the run ends in an adapter version, Ctrl-C + resume equals an uninterrupted run
(reference log-probabilities read back, never recomputed), and learning starts from an adapter."""

import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from aeth.learning import reference
from aeth.learning.objectives import DPOObjective, KTOObjective
from aeth.models.adapters import AdapterStore
from aeth.models.loading import load_model
from aeth.testing import adder_specialist, build_lora
from aeth.training.loop import TrainPlan, train

pytest.importorskip("peft")

SPEC = adder_specialist()


def sums(a, b):
    return [{"role": "user", "content": f"What is {a} plus {b}?"}, {"role": "assistant", "content": f"{a} plus {b} is {a + b}."}]


DPO = [{"messages": sums(a, b), "rejected": f"{a} plus {b} is {a + b + 1}."} for a in range(1, 9) for b in range(1, 6)]
# KTO: every other answer is wrong (and undesirable)
KTO = [{"messages": [*r["messages"][:1], {"role": "assistant", "content": r["messages"][1]["content"] if i % 2 else r["rejected"]}],
        "label": bool(i % 2)} for i, r in enumerate(DPO)]
RECORDS = {"dpo": DPO, "kto": KTO}
# how far the validation loss must fall (from DPO's log 2 and KTO's 0.5 at the start) and the margin grow
# in 20 steps of the random tiny model; measured: DPO 0.693 -> 0.662, margin 0 -> 0.10; KTO 0.5 -> 0.456, 0 -> 0.42
PROGRESS = {"dpo": (0.02, 0.05), "kto": (0.02, 0.2)}


def learn(tiny_model_dir, run_dir, objective, home=None, **kw):
    loaded = load_model(tiny_model_dir, quantization="none", dtype="float32", device="cpu")
    plan = TrainPlan(base_model=str(tiny_model_dir), batch_size=4, seq_len=64, eval_every=4, save_every=4, seed=1,
                     lr=2e-2, beta=1.0, objective=objective, run_dir=run_dir, **kw)
    records = RECORDS[objective]
    # validated on a fifth of what it trains on: the random tiny model generalises too little to show progress otherwise
    store = AdapterStore(home) if home else None
    return train(SPEC, plan, records, records[::5], loaded, store, {"base_model": str(tiny_model_dir)}, progress=False)


def metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("objective", ["dpo", "kto"])
def test_a_preference_run_lowers_its_loss_widens_the_margin_and_stores_a_version(tiny_model_dir, tmp_path, objective):
    result = learn(tiny_model_dir, tmp_path / "run", objective, home=tmp_path / "home", max_steps=20)
    fall, widen = PROGRESS[objective]
    first = metrics(tmp_path / "run")[3]  # step 4, the first validation after the start
    assert result.steps == 20 and not result.interrupted
    assert result.first_val_loss == pytest.approx(0.6931472 if objective == "dpo" else 0.5, abs=1e-6)  # policy == reference
    assert result.val_loss < result.first_val_loss - fall
    manifest = result.version.manifest
    assert manifest["metrics"]["first_val_reward_margin"] == 0.0
    assert manifest["metrics"]["val_reward_margin"] > widen and manifest["metrics"]["val_reward_margin"] > first["val_reward_margin"]
    assert manifest["learning"]["objective"] == objective and manifest["learning"]["reference"] == "active"
    assert manifest["hyperparameters"]["objective"] == objective and manifest["hyperparameters"]["beta"] == 1.0
    saved = json.loads((tmp_path / "run" / reference.REFERENCE_FILE).read_text())
    assert len(saved["train"]) == len(RECORDS[objective]) and saved["reference"] == "active" and saved["objective"] == objective
    assert (result.version.path / "adapter_model.safetensors").is_file()


@pytest.mark.parametrize("objective, objective_class", [("dpo", DPOObjective), ("kto", KTOObjective)])
def test_interrupt_and_resume_match_an_uninterrupted_run(tiny_model_dir, tmp_path, monkeypatch, objective, objective_class):
    whole = learn(tiny_model_dir, tmp_path / "whole", objective, home=tmp_path / "home1", max_steps=8, grad_accum=2)
    real, calls = objective_class.loss, {"n": 0}

    def interrupting(self, *args):
        calls["n"] += 1
        if calls["n"] == 11:  # step 6's first micro-batch, after the checkpoint of step 4
            raise KeyboardInterrupt
        return real(self, *args)

    monkeypatch.setattr(objective_class, "loss", interrupting)
    first = learn(tiny_model_dir, tmp_path / "parts", objective, max_steps=8, grad_accum=2)
    assert first.interrupted and first.steps == 5
    monkeypatch.setattr(objective_class, "loss", real)

    def never(*args, **kw):
        raise AssertionError("a resumed run reads its reference log-probabilities back")

    monkeypatch.setattr(reference, "score", never)
    second = learn(tiny_model_dir, tmp_path / "parts", objective, home=tmp_path / "home2", max_steps=8, grad_accum=2,
                   resume=True)
    assert second.steps == 8 and not second.interrupted
    assert [m["loss"] for m in metrics(tmp_path / "parts")] == pytest.approx([m["loss"] for m in metrics(tmp_path / "whole")], abs=1e-5)
    assert second.val_loss == pytest.approx(whole.val_loss, abs=1e-5)
    torch.testing.assert_close(load_file(str(second.version.path / "adapter_model.safetensors")),
                               load_file(str(whole.version.path / "adapter_model.safetensors")))


def test_learning_starts_from_the_active_adapter_measured_against_it_or_the_base(tiny_model_dir, tmp_path):
    adapter = build_lora(tiny_model_dir, tmp_path / "v0001")  # r=4 on q_proj and v_proj, B drawn at random
    active = learn(tiny_model_dir, tmp_path / "active", "dpo", home=tmp_path / "home", max_steps=2, init_adapter=str(adapter))
    # measured against itself, the starting adapter has no margin yet; against the bare base it has one
    assert active.first_val_loss == pytest.approx(0.6931472, abs=1e-6)
    base = learn(tiny_model_dir, tmp_path / "base", "dpo", max_steps=1, init_adapter=str(adapter), reference="base")
    assert abs(base.first_val_loss - 0.6931472) > 1e-3
    assert base.model.peft_config["default"].r == 4  # the LoRA is the adapter's, not the specialist's (r=16)
    trained = load_file(str(active.version.path / "adapter_model.safetensors"))
    start = load_file(str(adapter / "adapter_model.safetensors"))
    assert trained.keys() == start.keys()
    moved = max((trained[k] - start[k]).abs().max().item() for k in start)
    assert 0 < moved < 0.1  # two steps from the adapter's weights (its B are up to 0.5), not from a fresh LoRA
    assert active.version.manifest["learning"]["init_adapter"] == str(adapter)


def test_sft_can_start_from_an_adapter_too(tiny_model_dir, tmp_path):
    from aeth.training.data import encode_records
    from aeth.training.objective import token_loss

    adapter = build_lora(tiny_model_dir, tmp_path / "v0001")
    loaded = load_model(tiny_model_dir, quantization="none", dtype="float32", device="cpu")
    records = [{"messages": r["messages"]} for r in DPO]
    plan = TrainPlan(base_model=str(tiny_model_dir), batch_size=4, seq_len=64, max_steps=1, run_dir=tmp_path / "run",
                     init_adapter=str(adapter))
    result = train(SPEC, plan, records, records[:8], loaded, None, progress=False)
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    served = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(adapter)).eval()
    examples = encode_records(loaded.tokenizer, records[:8], SPEC.system_prompt, 64)
    with torch.no_grad():
        expected = token_loss(served, examples, loaded.tokenizer.pad_token_id, sum(e.trained_tokens for e in examples))
    assert result.first_val_loss == pytest.approx(expected.item(), abs=1e-5)  # validated first as the adapter was


def test_learning_settings_are_checked_and_are_not_aeth_train_options(tmp_path):
    from click.testing import CliRunner

    from aeth.cli import cli
    from aeth.errors import AethError, ConfigError
    from aeth.training.plan import LEARN_GROUPS, check, command_line, settings

    plan = TrainPlan(base_model="tiny")
    assert plan.command == "train" and replace(plan, objective="kto").command == "learn"
    assert replace(plan, init_adapter=str(tmp_path)).groups == LEARN_GROUPS
    with pytest.raises(AethError, match="--batch-size 2 or more"):
        check(replace(plan, objective="kto", batch_size=1))
    with pytest.raises(AethError, match="SFT only"):
        check(replace(plan, objective="dpo", teacher="local"))
    with pytest.raises(AethError, match="no PEFT adapter there"):
        check(replace(plan, init_adapter=str(tmp_path)))
    with pytest.raises(ConfigError, match="objective: must be one of sft, dpo, kto"):
        check(replace(plan, objective="ppo"))
    words = command_line(replace(plan, objective="dpo", beta=0.5), "adder")
    assert words[:3] == ["aeth", "learn", "adder"] and "--objective" in words and "0.5" in words
    train_help = CliRunner().invoke(cli, ["train", "--help"]).output
    assert not any(d.flag in train_help for d in settings(TrainPlan, ("learn",)))


def test_kto_in_two_processes_matches_one_process(tmp_path, tiny_model_dir):
    """Under torchrun (DDP, gloo) every rank scores the reference for itself and the KL reference
    point is the mean over both ranks' shares: the curve and the adapter match one process."""
    import os
    import subprocess
    import sys
    import textwrap

    from aeth.testing import install_plugin_source

    source = (f"from aeth import DatasetRecipe, Specialist, hookimpl\n\nKTO = {KTO!r}\n\n\n"
              "@hookimpl\ndef register_specialists(register):\n"
              f"    register(Specialist(name='prefs', description='judged sums', system_prompt='Be brief.',\n"
              f"                        base_model={str(tiny_model_dir)!r}, quantization='none',\n"
              "                        recipe=DatasetRecipe('prefs-seed', '1', lambda: KTO, validation_fraction=0.5)))\n")
    env = install_plugin_source(tmp_path / "plugin", "prefs", source)
    script = textwrap.dedent('''
        import sys
        from aeth.app import Aeth
        from aeth.config import load_config
        from aeth.training import TrainPlan, run

        app = Aeth(load_config(["model.dtype=float32", "model.threads=1"]))
        spec = app.specialist("prefs")
        plan = TrainPlan(base_model=spec.base_model, quantization="none", objective="kto", nproc=int(sys.argv[1]),
                         max_steps=4, batch_size=4, grad_accum=2, seq_len=64, lr=2e-2, beta=1.0, seed=1, eval_every=1,
                         save_every=2, gate=False, init_adapter=sys.argv[2], reference="base")
        print(run(app, spec, plan, progress=False).version.path)
    ''')
    # start from an SFT adapter of these sums, measured against the base: it makes every "a plus b is c."
    # likelier, mismatched ones too, so the KL reference point is above 0 from the start
    from aeth import AdapterSpec

    no_dropout = replace(SPEC, adapter=AdapterSpec(r=4, alpha=8, dropout=0.0))  # ranks draw other dropout masks
    sft = train(no_dropout, TrainPlan(base_model=str(tiny_model_dir), batch_size=4, seq_len=64, max_steps=10, lr=2e-2,
                                run_dir=tmp_path / "sft"), [{"messages": r["messages"]} for r in DPO], [],
                load_model(tiny_model_dir, quantization="none", dtype="float32", device="cpu"), AdapterStore(tmp_path / "sft-home"),
                {}, progress=False)
    adapter = sft.version.path
    outcomes = []
    for nproc in (1, 2):
        home = tmp_path / f"home{nproc}"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("AETH_") and k != "WORLD_SIZE"}
        out = subprocess.run([sys.executable, "-c", script, str(nproc), str(adapter)], capture_output=True, text=True, timeout=600,
                             env={**environ, **env, "AETH_HOME": str(home)}, stdin=subprocess.DEVNULL)
        assert out.returncode == 0, out.stdout + out.stderr
        (run_dir,) = (home / "runs" / "prefs").iterdir()
        outcomes.append((metrics(run_dir), load_file(out.stdout.strip().splitlines()[-1] + "/adapter_model.safetensors")))
    (one, one_weights), (two, two_weights) = outcomes
    assert [m["step"] for m in two] == [1, 2, 3, 4]
    for key in ("loss", "kl", "val_loss", "val_kl", "val_reward_margin"):
        assert [m.get(key) for m in two] == pytest.approx([m.get(key) for m in one], abs=2e-4), key
    assert any(m["kl"] > 0 for m in one)  # the reference point took part
    for key in one_weights:
        torch.testing.assert_close(two_weights[key], one_weights[key], atol=2e-4, rtol=1e-3)
