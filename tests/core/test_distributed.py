"""Multi-process training on CPU: ``aeth train --nproc 2`` under torchrun (gloo), DDP and FSDP2.

The runs are real: the ``aeth`` command relaunches itself under torchrun, two worker processes
train the tiny model, and rank 0 stores the adapter. A plugin with a small specialist is made
visible to every process the way pip would (``aeth.testing.install_plugin_source``).
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from aeth.testing import install_plugin_source

AETH = shutil.which("aeth") or str(Path(sys.executable).with_name("aeth"))
STEPS = ["--max-steps", "4", "--batch-size", "4", "--grad-accum", "2", "--seq-len", "64", "--lr", "5e-3",
         "--seed", "1", "--eval-every", "2", "--save-every", "2", "--no-gate"]


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory, tiny_model_dir):
    """What a subprocess needs to load plugin ``adder`` (specialist ``adder`` on the tiny model)."""
    return install_plugin_source(tmp_path_factory.mktemp("adder-plugin"), "adder", textwrap.dedent(f'''
        from aeth import AdapterSpec, DatasetRecipe, Specialist, hookimpl

        RECORDS = [{{"messages": [{{"role": "user", "content": f"What is {{a}} plus {{b}}?"}},
                                  {{"role": "assistant", "content": f"{{a}} plus {{b}} is {{a + b}}."}}]}}
                   for a in range(1, 9) for b in range(1, 6)]

        @hookimpl
        def register_specialists(register):
            register(Specialist(name="adder", description="adds numbers", system_prompt="Be brief.",
                                base_model={str(tiny_model_dir)!r}, quantization="none",
                                adapter=AdapterSpec(r=4, alpha=8, dropout=0.0),
                                recipe=DatasetRecipe("adder-seed", "1", lambda: RECORDS)))
    '''))


def environment(home: Path, plugin_env: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AETH_") and k != "WORLD_SIZE"}
    return {**env, **plugin_env, "AETH_HOME": str(home)}


def train(home: Path, plugin_env: dict, *extra: str) -> Path:
    out = subprocess.run([AETH, "-o", "model.dtype=float32", "-o", "model.threads=1", "train", "adder", *STEPS, *extra],
                         capture_output=True, text=True, env=environment(home, plugin_env), stdin=subprocess.DEVNULL,
                         timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    (run,) = (home / "runs" / "adder").iterdir()
    return run


def curve(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def adapter(home: Path) -> tuple[dict, dict]:
    (version,) = [d for d in (home / "adapters" / "adder").iterdir() if d.name.startswith("v")]
    return load_file(str(version / "adapter_model.safetensors")), json.loads((version / "manifest.json").read_text())


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, plugin_env):
    home = tmp_path_factory.mktemp("one")
    return home, train(home, plugin_env)


ENGINES = {"ddp": [], "fsdp": ["--fsdp"], "deepspeed": ["--deepspeed", "zero2"]}


@pytest.mark.parametrize("engine", ENGINES)
def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path, plugin_env, one_process, engine):
    home = tmp_path / "home"
    extra = list(ENGINES[engine])
    if engine == "deepspeed":  # ZeRO-2 (optimizer state and gradients partitioned) with aeth's AdamW
        config = tmp_path / "zero2.json"
        config.write_text(json.dumps({"zero_optimization": {"stage": 2}, "train_batch_size": "auto"}))
        extra[-1] = str(config)
    run = train(home, plugin_env, "--nproc", "2", *extra)
    single_home, single_run = one_process
    two, one = curve(run), curve(single_run)
    assert [r["step"] for r in two] == [1, 2, 3, 4]
    assert [r["loss"] for r in two] == pytest.approx([r["loss"] for r in one], abs=2e-4)
    assert [r.get("val_loss") for r in two] == pytest.approx([r.get("val_loss") for r in one], abs=2e-4)
    weights, manifest = adapter(home)
    single, _ = adapter(single_home)
    assert weights.keys() == single.keys()
    for key in weights:
        torch.testing.assert_close(weights[key], single[key], atol=2e-4, rtol=1e-3)
    assert manifest["metrics"]["processes"] == 2
    if engine == "ddp":  # every rank held a full copy: they ended bit-identical
        assert manifest["metrics"]["rank_weight_max_difference"] == 0.0
    # the checkpoint has one process's layout, and every rank's RNG state
    state = json.loads((run / "checkpoints" / "step-2" / "state.json").read_text())
    assert len(state["rng"]["torch_ranks"]) == 2 and state["micro"] == 4


def test_ctrl_c_stops_every_rank_at_one_step_and_resume_finishes_the_curve(tmp_path, plugin_env):
    import signal
    import time

    steps = [*STEPS[STEPS.index("--batch-size"):]]
    steps[steps.index("--save-every") + 1] = "5"
    long = ["--max-steps", "30", *steps]
    home = tmp_path / "home"
    env = environment(home, plugin_env)
    command = [AETH, "-o", "model.dtype=float32", "-o", "model.threads=1", "train", "adder", *long]
    # a terminal's Ctrl-C reaches the whole foreground process group: launcher, torchrun and both workers
    proc = subprocess.Popen([*command, "--nproc", "2", "--fsdp"], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    metrics = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        found = list(home.glob("runs/adder/*/metrics.jsonl"))
        if found and len(found[0].read_text().splitlines()) >= 3:
            metrics = found[0]
            break
        time.sleep(0.05)
    assert metrics is not None, proc.communicate()[0]
    os.killpg(proc.pid, signal.SIGINT)
    output = proc.communicate(timeout=300)[0]
    assert "checkpoint saved" in output, output
    stopped = len(metrics.read_text().splitlines())
    assert 3 <= stopped < 30
    run = metrics.parent
    assert (run / "checkpoints" / f"step-{stopped}" / "state.json").is_file()  # saved where every rank stopped
    out = subprocess.run([AETH, "-o", "model.dtype=float32", "-o", "model.threads=1", "train", "adder", "--resume"],
                         capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    resumed = curve(run)
    assert [r["step"] for r in resumed] == list(range(1, 31))
    reference = train(tmp_path / "reference", plugin_env, "--max-steps", "30")  # one process, never interrupted
    assert [r["loss"] for r in resumed] == pytest.approx([r["loss"] for r in curve(reference)], abs=5e-4)


def test_deepspeed_config_takes_the_plan_and_refuses_a_contradiction(tmp_path):
    from importlib.resources import files

    from aeth.errors import AethError
    from aeth.training import deepspeed_engine

    example = files("aeth") / "training" / "zero2_offload.json"
    filled = deepspeed_engine.config(str(example), batch_size=8, grad_accum=2, world=4, lr=3e-4)
    assert (filled["train_micro_batch_size_per_gpu"], filled["gradient_accumulation_steps"], filled["train_batch_size"]) == (2, 2, 16)
    assert filled["gradient_clipping"] == 1.0 and filled["optimizer"]["params"]["lr"] == 3e-4
    assert filled["zero_optimization"]["stage"] == 2 and filled["zero_optimization"]["offload_optimizer"]["device"] == "cpu"
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"train_micro_batch_size_per_gpu": 8}))
    with pytest.raises(AethError, match='train_micro_batch_size_per_gpu=8 but aeth.s plan gives 2.*"auto"'):
        deepspeed_engine.config(str(wrong), batch_size=8, grad_accum=2, world=4, lr=3e-4)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(AethError, match="cannot read DeepSpeed config"):
        deepspeed_engine.config(str(broken), batch_size=8, grad_accum=2, world=4, lr=3e-4)
