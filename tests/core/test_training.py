"""Training on the tiny model: answer-only labels, the loss falls, Ctrl-C + resume equals an uninterrupted run."""

import json

import pytest
import torch

from aeth import DatasetRecipe, Specialist
from aeth.models.adapters import AdapterStore
from aeth.models.loading import load_model
from aeth.training import checkpoint
from aeth.training.data import IGNORE, encode_record
from aeth.training.loop import TrainPlan, lr_at, train

peft = pytest.importorskip("peft")

RECORDS = [{"messages": [{"role": "user", "content": f"What is {a} plus {b}?"},
                         {"role": "assistant", "content": f"{a} plus {b} is {a + b}."}]}
           for a in range(1, 9) for b in range(1, 6)]
SPEC = Specialist(name="adder", description="adds", system_prompt="Be brief.",
                  recipe=DatasetRecipe("adder-seed", "1", lambda: RECORDS))


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_only_answer_tokens_are_learned(tokenizer):
    record = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                           {"role": "user", "content": "and?"}, {"role": "assistant", "content": "bye"}]}
    ex = encode_record(tokenizer, record, system_prompt="Be brief.")
    learned = tokenizer.decode([t for t, label in zip(ex.input_ids, ex.labels, strict=True) if label != IGNORE])
    assert learned == "hello<|im_end|>\nbye<|im_end|>\n"
    context = tokenizer.decode(ex.input_ids)
    assert context.startswith("<|im_start|>system\nBe brief.<|im_end|>") and "<|im_start|>user\nand?" in context
    assert all(label in (IGNORE, tok) for tok, label in zip(ex.input_ids, ex.labels, strict=True))
    # truncated before the first answer: nothing to learn, so the record is skipped
    assert encode_record(tokenizer, record, system_prompt="Be brief. " * 50, seq_len=20) is None
    full = encode_record(tokenizer, record)
    cut = encode_record(tokenizer, record, seq_len=len(full.input_ids) - 3)
    assert cut.input_ids == full.input_ids[:-3] and cut.trained_tokens == full.trained_tokens - 3


def test_learning_rate_warms_up_then_decays():
    plan = TrainPlan(base_model="x", lr=1.0, warmup_fraction=0.1)
    lrs = [lr_at(s, 100, plan) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] > lrs[50] > lrs[99] >= 0.1 - 1e-9


def run(tiny_model_dir, run_dir, home=None, **kw):
    loaded = load_model(tiny_model_dir, quantization="none", dtype="float32", device="cpu")
    kw.setdefault("lr", 5e-3)
    plan = TrainPlan(base_model=str(tiny_model_dir), batch_size=4, seq_len=64, eval_every=4, save_every=4,
                     seed=1, run_dir=run_dir, **kw)
    train_set, val_set = SPEC.recipe.split()
    store = AdapterStore(home) if home else None
    return train(SPEC, plan, train_set, val_set, loaded, store, {"base_model": str(tiny_model_dir)}, progress=False,
                 home=home)


def losses(run_dir):
    return [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_training_lowers_validation_loss_and_stores_a_version(tiny_model_dir, tmp_path):
    result = run(tiny_model_dir, tmp_path / "run", home=tmp_path / "home", max_steps=40)
    assert result.steps == 40 and not result.interrupted
    # a random 2-layer model learns slowly through LoRA alone: measured 6.05 -> 5.60 in 40 steps
    assert result.val_loss < result.first_val_loss - 0.3
    version = result.version
    assert version.number == 1 and (version.path / "adapter_model.safetensors").is_file()
    assert version.manifest["metrics"]["val_loss"] == result.val_loss
    assert version.manifest["hyperparameters"]["max_steps"] == 40
    assert len(checkpoint.checkpoint_dirs(tmp_path / "run")) <= 3  # only the newest kept
    assert AdapterStore(tmp_path / "home").active("adder") is None  # training never promotes by itself


def test_interrupt_and_resume_match_an_uninterrupted_run(tiny_model_dir, tmp_path, monkeypatch):
    whole = tmp_path / "whole"
    run(tiny_model_dir, whole, max_steps=10, grad_accum=2)
    from aeth.training import objective

    real, calls = objective.token_loss, {"n": 0}

    def interrupting(*args):
        calls["n"] += 1
        if calls["n"] == 14:  # mid-way through step 6's second micro-batch (after one validation pass)
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(objective, "token_loss", interrupting)
    parts = tmp_path / "parts"
    first = run(tiny_model_dir, parts, max_steps=10, grad_accum=2)
    assert first.interrupted and 0 < first.steps < 10
    monkeypatch.setattr(objective, "token_loss", real)
    second = run(tiny_model_dir, parts, max_steps=10, grad_accum=2, resume=True)
    assert second.steps == 10 and not second.interrupted
    assert losses(parts) == pytest.approx(losses(whole), abs=1e-5)  # the same curve, step by step
    assert second.val_loss == pytest.approx(run_val_loss(whole), abs=1e-5)


def run_val_loss(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()][-1]["val_loss"]


def register_adder(register_plugin, tiny_model_dir):
    """Register specialist ``adder`` on the tiny model for CLI tests."""
    from dataclasses import replace

    from aeth import hookimpl

    class Adder:
        @hookimpl
        def register_specialists(self, register):
            register(replace(SPEC, base_model=str(tiny_model_dir)))

    register_plugin(Adder(), "adder-plugin")


def test_a_torn_checkpoint_is_never_loaded(tiny_model_dir, tmp_path):
    run(tiny_model_dir, tmp_path / "run", max_steps=8)
    newest = checkpoint.latest(tmp_path / "run")
    torn = newest.parent / "step-99"
    torn.mkdir()
    (torn / "adapter.safetensors").write_bytes(b"half a file")  # no state.json: never finished
    assert checkpoint.latest(tmp_path / "run") == newest


def test_train_command_end_to_end(aeth_home, register_plugin, tiny_model_dir):
    from click.testing import CliRunner

    from aeth.cli import cli

    register_adder(register_plugin, tiny_model_dir)
    runner = CliRunner()
    out = runner.invoke(cli, ["-o", "model.dtype=float32", "train", "adder", "--max-steps", "6", "--batch-size", "4",
                              "--seq-len", "64", "--lr", "5e-3"])
    assert out.exit_code == 0, out.output
    assert "stored adapter v0001" in out.output and "validation loss" in out.output
    assert runner.invoke(cli, ["adapters", "activate", "adder", "v0001"]).exit_code == 0
    answered = runner.invoke(cli, ["run", "-s", "adder", "--json", "--max-tokens", "4", "What is 2 plus 3?"])
    assert answered.exit_code == 0, answered.output
    assert json.loads(answered.stdout)["adapter"].startswith("v0001")
    missing = runner.invoke(cli, ["train", "adder", "--resume", "nope"])
    assert missing.exit_code == 1 and "no run of 'adder' matches 'nope'" in missing.output
    assert torch.get_num_threads() >= 1
    # provenance: base weights and data by content, the version it was trained on top of
    from aeth.fingerprint import model_hash, records_hash

    first = AdapterStore(aeth_home).get("adder", "v0001").manifest
    assert first["base_hash"] == model_hash(tiny_model_dir) and first["parent"] is None
    train_set, val_set = SPEC.recipe.split()
    assert first["recipe"]["data_hash"] == records_hash([*train_set, *val_set])
    assert (first["recipe"]["name"], first["recipe"]["version"]) == ("adder-seed", "1")
    out = runner.invoke(cli, ["-o", "model.dtype=float32", "train", "adder", "--max-steps", "1", "--seq-len", "64", "--no-gate"])
    assert out.exit_code == 0, out.output
    second = AdapterStore(aeth_home).get("adder", "v0002").manifest
    assert second["parent"] == first["version"] and second["base_hash"] == first["base_hash"]


# ---- the promotion gate ------------------------------------------------------------------------


@pytest.fixture
def gated(aeth_home, register_plugin, tiny_model_dir, tmp_path):
    """A specialist on the tiny model whose suite prefers (or not) what the bare base answers,
    and a trained version to judge."""
    from dataclasses import replace

    from aeth import EvalCase, EvalSuite, hookimpl
    from aeth.app import Aeth
    from aeth.evals.model import specialist_model

    cases = [EvalCase(f"c{i}", f"What is {i} plus 1?") for i in range(3)]
    prefer = {"base": True}
    bare_answers = {}

    def score(case, answer):
        same = answer == bare_answers[case.id]
        return float(same if prefer["base"] else not same)

    spec = replace(SPEC, base_model=str(tiny_model_dir), suite=EvalSuite("echo", "1", lambda: cases, score, max_tokens=6))

    class Plugin:
        @hookimpl
        def register_specialists(self, register):
            register(spec)

    register_plugin(Plugin(), "adder-plugin")
    app = Aeth()
    base_model = specialist_model(app, app.specialist("adder"), max_tokens=6, adapter="base")
    bare_answers.update({c.id: base_model(c.prompt) for c in cases})
    result = run(tiny_model_dir, tmp_path / "run", home=aeth_home, max_steps=12, lr=2e-2)
    return app, app.specialist("adder"), result.version, prefer


def test_a_worse_version_stays_inactive_unless_forced(gated):
    from aeth.training.promotion import gate

    app, spec, version, prefer = gated
    prefer["base"] = True  # the suite rewards exactly what the bare base says: training can only lose
    store = AdapterStore(app.config.home)
    decision = gate(app, spec, version, limit=3)
    assert not decision.promoted and decision.baseline == 1.0 and decision.score < 1.0
    assert store.active("adder") is None
    assert store.get("adder", version.version).manifest["promotion"]["promoted"] is False
    forced = gate(app, spec, version, limit=3, force=True)
    assert forced.promoted and forced.forced and store.active("adder").version == version.version
    manifest = store.get("adder", version.version).manifest
    assert manifest["promotion"]["forced"] is True and manifest["eval"]["baseline"] == "base"


def test_a_better_version_is_promoted(gated):
    from aeth.training.promotion import gate

    app, spec, version, prefer = gated
    prefer["base"] = False  # the suite rewards any change from the bare base
    decision = gate(app, spec, version, limit=3)
    assert decision.promoted and not decision.forced and decision.reason.startswith("promoted: ")
    assert AdapterStore(app.config.home).active("adder").version == version.version


def test_plan_file_flags_override_it_and_every_run_writes_its_own(aeth_home, register_plugin, tiny_model_dir, tmp_path):
    import yaml
    from click.testing import CliRunner

    from aeth.cli import cli

    register_adder(register_plugin, tiny_model_dir)
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"max_steps": 3, "lr": 0.001, "batch_size": 2, "seq_len": 48}))
    runner = CliRunner()
    out = runner.invoke(cli, ["train", "adder", "--plan", str(plan), "--max-steps", "2", "--no-gate"])
    assert out.exit_code == 0, out.output
    assert "2 steps" in out.output  # the flag won over the file
    written = next((aeth_home / "runs" / "adder").glob("*/plan.yaml"))
    text = written.read_text()
    saved = yaml.safe_load(text)
    assert saved["max_steps"] == 2 and saved["lr"] == 0.001 and saved["batch_size"] == 2 and saved["seq_len"] == 48
    assert text.startswith("# aeth train adder --base ") and "--max-steps 2" in text.splitlines()[0]
    plan.write_text(yaml.safe_dump({"max_step": 3}))
    bad = runner.invoke(cli, ["train", "adder", "--plan", str(plan)])
    assert bad.exit_code == 1 and "unknown key 'max_step'" in bad.output


def test_metrics_reach_tensorboard(tiny_model_dir, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run(tiny_model_dir, tmp_path / "run", max_steps=4, report="tensorboard")
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("loss")] == [1, 2, 3, 4]
    assert [round(e.value, 5) for e in events.Scalars("loss")] == pytest.approx(losses(tmp_path / "run"), abs=1e-5)
    assert [e.step for e in events.Scalars("val_loss")] == [4]


def test_metrics_reach_mlflow_and_a_resumed_run_continues_its_mlflow_run(tiny_model_dir, tmp_path, aeth_home, monkeypatch):
    import mlflow

    from aeth.training import objective

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    real, calls = objective.token_loss, {"n": 0}

    def interrupting(*args):
        calls["n"] += 1
        if calls["n"] == 7:  # in step 5 (after the first validation pass)
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(objective, "token_loss", interrupting)
    assert run(tiny_model_dir, tmp_path / "run", home=aeth_home, max_steps=6, report="mlflow").interrupted
    monkeypatch.setattr(objective, "token_loss", real)
    assert run(tiny_model_dir, tmp_path / "run", home=aeth_home, max_steps=6, report="mlflow", resume=True).steps == 6
    run_id = (tmp_path / "run" / "mlflow_run_id").read_text()
    mlflow.set_tracking_uri((aeth_home / "mlruns").as_uri())  # aeth's default store, under $AETH_HOME
    (experiment,) = [e for e in mlflow.search_experiments() if e.name == "aeth-adder"]
    assert [r.info.run_id for r in mlflow.search_runs([experiment.experiment_id], output_format="list")] == [run_id]
    history = mlflow.tracking.MlflowClient().get_metric_history(run_id, "loss")
    assert sorted(m.step for m in history) == [1, 2, 3, 4, 5, 6]


def test_a_missing_tracker_is_refused_before_any_work(monkeypatch):
    import importlib.util

    from aeth.errors import AethError
    from aeth.training import report

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(AethError, match="pip install mlflow"):
        report.check("mlflow")


def test_eight_bit_adamw_trains(tiny_model_dir, tmp_path):
    result = run(tiny_model_dir, tmp_path / "run", max_steps=12, optimizer="adamw8bit")
    assert result.val_loss < result.first_val_loss


@pytest.mark.parametrize("dtype, merged_tolerance", [("float32", 1e-5), ("bfloat16", 3e-2)])
def test_served_adapter_gives_the_training_logits_and_merging_stays_within_tolerance(tiny_model_dir, tmp_path, dtype,
                                                                                       merged_tolerance):
    """Served through the pool the adapter gives exactly the logits it had at the end of training;
    merged into the base weights (PEFT merge_and_unload) it differs by rounding only: within 1e-5 in
    float32 and 3e-2 in bfloat16, where merging rounds W + BA to bf16's 8-bit mantissa (measured:
    1.2e-7 and 1.1e-2 in max |logit difference|, against an adapter effect of 0.43)."""
    from transformers import AutoModelForCausalLM

    from aeth.config import load_config
    from aeth.models.pool import ModelPool

    loaded = load_model(tiny_model_dir, quantization="none", dtype=dtype, device="cpu")
    plan = TrainPlan(base_model=str(tiny_model_dir), batch_size=4, seq_len=64, max_steps=10, lr=5e-3, run_dir=tmp_path / "run")
    train_set, val_set = SPEC.recipe.split()
    result = train(SPEC, plan, train_set, val_set, loaded, AdapterStore(tmp_path / "home"), {}, progress=False)
    ids = torch.tensor([[5, 17, 42, 99, 7, 3]])
    result.model.eval()
    with torch.no_grad():
        trained = result.model(input_ids=ids).logits.float()
        pool = ModelPool(load_config([f"model.dtype={dtype}"]))
        served_model, scope = pool.with_adapter(pool.get(str(tiny_model_dir), "none"), "adder", result.version)
        with scope:
            served = served_model.model(input_ids=ids).logits.float()
        torch.testing.assert_close(served, trained, atol=1e-6, rtol=0)
        base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=getattr(torch, dtype))
        merged = peft.PeftModel.from_pretrained(base, str(result.version.path)).merge_and_unload()
        difference = (merged(input_ids=ids).logits.float() - trained).abs().max().item()
        bare = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=getattr(torch, dtype))(input_ids=ids).logits.float()
    assert difference <= merged_tolerance
    assert (bare - trained).abs().max().item() > 10 * merged_tolerance  # the adapter's effect dwarfs merge rounding


def test_loss_on_answer_positions_only_equals_transformers_loss_and_gradients(tiny_model_dir, tokenizer):
    """aeth computes logits only where a next token is learned; the loss and every LoRA gradient
    must equal transformers' full-logits loss over the same batch."""
    from aeth.training import objective
    from aeth.training.data import encode_records

    loaded = load_model(tiny_model_dir, quantization="none", dtype="float32", device="cpu")
    model = peft.get_peft_model(loaded.model, peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.uniform_(-0.1, 0.1)
    assert objective.takes_logits_to_keep(model)
    examples = encode_records(tokenizer, RECORDS[:3], "Be brief.", 64)
    items = 2 * sum(objective.learned(e) for e in examples)  # as if the step had another micro-batch
    results = []
    for sparse in (True, False):
        model.zero_grad()
        loss = objective.token_loss(model, examples, tokenizer.pad_token_id, items, sparse)
        loss.backward()
        results.append((loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}))
    (sparse_loss, sparse_grads), (full_loss, full_grads) = results
    assert sparse_loss == pytest.approx(full_loss, rel=1e-6) and full_loss > 0
    for name, grad in full_grads.items():
        torch.testing.assert_close(sparse_grads[name], grad, atol=1e-7, rtol=1e-5)


def test_qlora_train_eval_train_keeps_gradients_flowing_into_the_adapter(tiny_model_dir, tmp_path):
    """NF4 QLoRA with a validation pass after every step (no-grad forwards, the DESIGN.md §5 repack
    trap) must train exactly as without them, and every LoRA matrix must have moved."""
    from safetensors.torch import load_file

    def qlora(run_dir, eval_every):
        loaded = load_model(tiny_model_dir, quantization="nf4", dtype="bfloat16", device="cpu")
        plan = TrainPlan(base_model=str(tiny_model_dir), batch_size=4, seq_len=64, max_steps=4, lr=5e-3, seed=1,
                         eval_every=eval_every, run_dir=run_dir)
        train_set, val_set = SPEC.recipe.split()
        return train(SPEC, plan, train_set, val_set, loaded, AdapterStore(tmp_path / "home"), {}, progress=False)

    with_evals = qlora(tmp_path / "evals", eval_every=1)
    without = qlora(tmp_path / "plain", eval_every=1000)
    assert losses(tmp_path / "evals") == pytest.approx(losses(tmp_path / "plain"), abs=1e-6)
    trained = load_file(str(with_evals.version.path / "adapter_model.safetensors"))
    torch.testing.assert_close(trained, load_file(str(without.version.path / "adapter_model.safetensors")))
    lora_b = {k: v for k, v in trained.items() if "lora_B" in k}
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b.values())  # B starts at zero: every one was updated
    assert {type(m).__name__ for m in with_evals.model.modules()} >= {"Linear4bit"}


def test_progress_lines_without_a_terminal(tiny_model_dir, tmp_path, capsys):
    loaded = load_model(tiny_model_dir, quantization="none", dtype="float32", device="cpu")
    plan = TrainPlan(base_model=str(tiny_model_dir), batch_size=4, seq_len=64, max_steps=20, run_dir=tmp_path / "run")
    train_set, val_set = SPEC.recipe.split()
    train(SPEC, plan, train_set, val_set, loaded, None, progress=True)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("train: ")]
    assert [line.split()[1] for line in lines] == [f"{n}/20" for n in range(2, 21, 2)]
    assert all(" steps, loss " in line and " tok/s, " in line and " s elapsed, eta " in line for line in lines)


def test_engine_options_are_checked_after_the_plan_file(aeth_home, register_plugin, tiny_model_dir, tmp_path):
    from click.testing import CliRunner

    from aeth.cli import cli

    register_adder(register_plugin, tiny_model_dir)
    plan = tmp_path / "plan.yaml"
    plan.write_text("fsdp: true\n")
    out = CliRunner().invoke(cli, ["train", "adder", "--plan", str(plan)])
    assert out.exit_code == 1 and "add --nproc N" in out.output
    plan.write_text("nproc: 2\nfsdp: true\ndeepspeed: zero2-offload\n")
    out = CliRunner().invoke(cli, ["train", "adder", "--plan", str(plan)])
    assert out.exit_code == 1 and "choose one engine" in out.output
    out = CliRunner().invoke(cli, ["train", "adder", "--nproc", "2", "--deepspeed", str(tmp_path / "missing.json")])
    assert out.exit_code == 1 and "no such file (give a DeepSpeed JSON config, or zero2-offload)" in out.output
