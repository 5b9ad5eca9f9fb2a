"""TrainPlan declares every training setting once, and a training run is a library call.

A field added to the plan (with ``setting`` metadata) is a CLI option with its --help default, a
plan-file key (read and written), and comes back on --resume. ``aeth.training.run`` trains the
tiny adder through the train hook and the promotion gate, or without the gate when the plan says
so, and a resumed --no-gate run stays ungated.
"""

import json
from dataclasses import field, make_dataclass, replace

import pytest
import yaml
from click.testing import CliRunner

from aeth import EvalCase, EvalSuite, hookimpl
from aeth.cli import cli
from aeth.cli.train import train_command
from aeth.config import QUANTIZATIONS, load_config
from aeth.testing import adder_specialist
from aeth.training import TrainPlan, TrainResult, resume_plan, run, setting
from aeth.training.plan import DISTILL_GROUPS, TRAIN_GROUPS, read_plan_file, settings


def register_adder(register_plugin, **changes):
    spec = replace(adder_specialist(), **changes)

    class Adder:
        @hookimpl
        def register_specialists(self, register):
            register(spec)

    register_plugin(Adder(), "adder-plugin")
    return spec


class Recorder:
    """A trainer plugin that records the plan it is given and stops "interrupted" after 3 steps, so a
    run can be resumed without training anything."""

    def __init__(self):
        self.plans = []

    @hookimpl(tryfirst=True)
    def train(self, specialist, plan, app):
        self.plans.append(plan)
        return TrainResult(steps=3, train_loss=1.0, val_loss=None, first_val_loss=None, interrupted=True,
                           run_dir=plan.run_dir)


WarmPlan = make_dataclass("WarmPlan", [("warmup_steps", int, field(default=7, metadata=setting(
    "Steps of linear warm-up before the schedule.", min=0)))], bases=(TrainPlan,))


def test_a_field_added_to_the_plan_is_an_option_a_plan_file_key_and_is_resumed(aeth_home, register_plugin, tmp_path):
    register_adder(register_plugin)
    recorder = Recorder()
    register_plugin(recorder, "recorder")
    command, runner = train_command(WarmPlan), CliRunner()
    helped = runner.invoke(command, ["--help"])
    assert helped.exit_code == 0 and "--warmup-steps" in helped.output
    assert "[default: 7; x>=0]" in helped.output.split("--warmup-steps", 1)[1].split("--", 1)[0]
    # the option, as a flag, reaches the plan the train hook gets, plan.yaml and plan.json
    out = runner.invoke(command, ["adder", "--warmup-steps", "9", "--no-gate"])
    assert out.exit_code == 130 and "interrupted at step 3" in out.output and "--resume" in out.output
    plan = recorder.plans[-1]
    assert isinstance(plan, WarmPlan) and plan.warmup_steps == 9 and plan.gate is False
    text = (plan.run_dir / "plan.yaml").read_text()
    assert yaml.safe_load(text)["warmup_steps"] == 9 and "--warmup-steps 9" in text.splitlines()[0]
    assert json.loads((plan.run_dir / "plan.json").read_text())["warmup_steps"] == 9
    # --resume restores it (and --no-gate with it)
    out = runner.invoke(command, ["adder", "--resume"])
    assert out.exit_code == 130, out.output
    resumed = recorder.plans[-1]
    assert resumed.resume and resumed.run_dir == plan.run_dir and resumed.warmup_steps == 9 and resumed.gate is False
    # a --plan file may set it; the plan.yaml a run wrote is such a file
    assert read_plan_file(plan.run_dir / "plan.yaml", WarmPlan, TRAIN_GROUPS)["warmup_steps"] == 9
    file = tmp_path / "plan.yaml"
    file.write_text("warmup_steps: 11\nlr: 2e-4\n")  # YAML reads 2e-4 as text: the declared type decides
    assert runner.invoke(command, ["adder", "--plan", str(file)]).exit_code == 130
    assert recorder.plans[-1].warmup_steps == 11 and recorder.plans[-1].lr == 2e-4
    file.write_text("warmup_steps: -1\nwarmup_step: 3\n")
    bad = str(runner.invoke(command, ["adder", "--plan", str(file)]).exception)  # outside aeth's group: the error itself
    assert "warmup_steps: must be >= 0" in bad and "unknown key 'warmup_step'" in bad


def test_every_declared_setting_is_an_option_of_its_commands():
    train_help = CliRunner().invoke(cli, ["train", "--help"]).output
    distill_help = CliRunner().invoke(cli, ["distill", "train", "--help"]).output
    for declared in settings(TrainPlan, TRAIN_GROUPS):
        assert declared.flag in train_help and declared.flag in distill_help, declared.name
    for declared in settings(TrainPlan, DISTILL_GROUPS):
        assert declared.flag in distill_help, declared.name
    assert "--teacher" not in train_help  # the kd group belongs to aeth distill train
    assert "auto|nf4|none" in train_help and QUANTIZATIONS == ("auto", "nf4", "none")
    assert "--no-gate" in train_help and "--gate-limit" in train_help


def test_a_plan_is_checked_before_any_work(aeth_home, register_plugin, tiny_model_dir):
    from aeth.app import Aeth
    from aeth.errors import AethError, ConfigError

    spec = register_adder(register_plugin, base_model=str(tiny_model_dir))
    app = Aeth()
    with pytest.raises(ConfigError, match="lr: must be > 0") as raised:
        run(app, spec, TrainPlan(base_model=str(tiny_model_dir), lr=0.0, optimizer="sgd"))
    assert "optimizer: must be one of adamw" in str(raised.value)
    with pytest.raises(AethError, match="add --nproc N"):
        run(app, spec, TrainPlan(base_model=str(tiny_model_dir), fsdp=True))
    assert not (aeth_home / "runs").exists()  # nothing was started


def plan_for(tiny_model_dir, **changes):
    return TrainPlan(base_model=str(tiny_model_dir), quantization="none", batch_size=4, seq_len=64, lr=5e-3,
                     eval_every=2, save_every=2, seed=1, **changes)


def app_for():
    from aeth.app import Aeth

    return Aeth(load_config(["model.dtype=float32", "model.threads=1"]))


def test_a_training_run_is_a_library_call_ending_in_the_gate(aeth_home, register_plugin, tiny_model_dir):
    cases = [EvalCase(f"c{i}", f"What is {i} plus 1?") for i in range(2)]
    suite = EvalSuite("always", "1", lambda: cases, lambda case, answer: 1.0, max_tokens=4)
    spec = register_adder(register_plugin, base_model=str(tiny_model_dir), suite=suite)
    app, said = app_for(), []
    result = run(app, spec, plan_for(tiny_model_dir, max_steps=4, gate_limit=2), progress=False, echo=said.append)
    assert result.steps == 4 and not result.interrupted and result.version.version.startswith("v0001")
    assert result.run_dir.parent == aeth_home / "runs" / "adder"  # a new run directory, with its plan files
    assert (result.run_dir / "plan.json").is_file() and (result.run_dir / "plan.yaml").is_file()
    decision = result.decision
    assert decision.promoted and decision.score == decision.baseline == 1.0 and decision.baseline_name == "base"
    assert app.adapters.active("adder").version == result.version.version
    assert said[0].startswith("adder: 4 steps, train loss ")
    assert said[1] == f"promotion gate: adder's eval suite (2 cases) on {result.version.version} and on what answers now"
    assert said[2] == f"stored adapter {result.version.version}; {decision.reason}"


def test_a_resumed_no_gate_run_is_not_gated(aeth_home, register_plugin, tiny_model_dir, monkeypatch):
    from aeth.training import objective

    spec = register_adder(register_plugin, base_model=str(tiny_model_dir))
    app, said = app_for(), []
    real, calls = objective.token_loss, {"n": 0}

    def interrupting(*args):
        calls["n"] += 1
        if calls["n"] == 8:  # a few steps in, after the checkpoint of step 2
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(objective, "token_loss", interrupting)
    first = run(app, spec, plan_for(tiny_model_dir, max_steps=6, gate=False), progress=False, echo=said.append)
    assert first.interrupted and 2 <= first.steps < 6 and first.decision is None and said == []
    monkeypatch.setattr(objective, "token_loss", real)
    plan = resume_plan(app, spec)
    assert plan.resume and plan.gate is False and plan.run_dir == first.run_dir
    second = run(app, spec, plan, progress=False, echo=said.append)
    assert second.steps == 6 and second.version is not None and second.decision is None
    assert not any(line.startswith("promotion gate") for line in said)
    assert app.adapters.active("adder") is None and "promotion" not in second.version.manifest


def test_aeth_train_resume_of_a_no_gate_run_does_not_gate(aeth_home, register_plugin, tiny_model_dir, monkeypatch):
    from aeth.training import objective

    register_adder(register_plugin, base_model=str(tiny_model_dir))
    real, calls = objective.token_loss, {"n": 0}

    def interrupting(*args):
        calls["n"] += 1
        if calls["n"] == 4:  # in the second step (the first validation takes two calls)
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(objective, "token_loss", interrupting)
    runner = CliRunner()
    args = ["-o", "model.dtype=float32", "train", "adder", "--max-steps", "2", "--seq-len", "64", "--no-gate"]
    out = runner.invoke(cli, args)
    assert out.exit_code == 130 and "Continue with: aeth train adder --resume" in out.output
    monkeypatch.setattr(objective, "token_loss", real)
    out = runner.invoke(cli, ["-o", "model.dtype=float32", "train", "adder", "--resume"])
    assert out.exit_code == 0, out.output
    assert "promotion gate" not in out.output and "stored adapter v0001" in out.output and "(not active)" in out.output
