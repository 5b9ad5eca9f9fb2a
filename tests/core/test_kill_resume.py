"""SIGKILL ``aeth train`` three times (mid-step, inside a checkpoint write, during a resume's startup),
``--resume`` after each: every resume starts from the newest complete checkpoint, which loads, and
the run still ends with every step logged and an adapter version stored (bench/bench_kill.py does 20)."""

import json
import signal
import subprocess
import sys
import time

import pytest

from aeth.training import checkpoint

pytest.importorskip("peft")

STEPS, SAVE_EVERY = 20, 4


@pytest.fixture
def env(aeth_home, tmp_path, monkeypatch):
    """The environment of an ``aeth`` subprocess that finds the ``killtest`` plugin as if installed."""
    import os

    from aeth.testing import adder_plugin_source, install_plugin_source

    source = adder_plugin_source("killtest")
    return {**os.environ, **install_plugin_source(tmp_path, "killtest", source), "OMP_NUM_THREADS": "1"}


def aeth_train(env, *args):
    return subprocess.Popen([sys.executable, "-m", "aeth", "-o", "model.threads=1", "-o", "model.dtype=float32",
                             "train", "killtest", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def logged(run_dir):
    """Steps in metrics.jsonl."""
    path = run_dir / "metrics.jsonl"
    data = path.read_bytes() if path.exists() else b""
    return [json.loads(line)["step"] for line in data.splitlines() if line.endswith(b"}")]


def kill_when(proc, ready):
    """SIGKILL ``proc`` as soon as ``ready()`` holds (polling the disk); fail if it ends first."""
    while proc.poll() is None:
        if ready():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return
        time.sleep(0.0005)
    pytest.fail(f"the run ended (exit {proc.returncode}) before the kill: {proc.stdout.read().decode()[-2000:]}")


def newest_loads(run_dir):
    """The step of the checkpoint latest() picks, after reading every tensor of every complete checkpoint."""
    from safetensors import safe_open

    for path in checkpoint.checkpoint_dirs(run_dir):
        assert json.loads((path / checkpoint.STATE).read_text())["step"] == int(path.name[5:])
        for name in ("adapter.safetensors", "optimizer.safetensors"):
            with safe_open(str(path / name), framework="pt") as f:
                assert all(f.get_tensor(k) is not None for k in f.keys())
    latest = checkpoint.latest(run_dir)
    return int(latest.name[5:]) if latest else 0


def test_sigkill_anywhere_then_resume_loses_at_most_one_save_interval(env, aeth_home, tiny_model_dir):
    runs = aeth_home / "runs" / "killtest"
    proc = aeth_train(env, "--base", str(tiny_model_dir), "--max-steps", str(STEPS), "--save-every", str(SAVE_EVERY),
                      "--batch-size", "4", "--seq-len", "64", "--eval-every", "1000", "--no-gate")
    run_dir = lambda: next(iter(runs.glob("*")), None)  # noqa: E731
    # 1. mid-step, two steps after the first checkpoint
    kill_when(proc, lambda: run_dir() is not None and len(logged(run_dir())) >= SAVE_EVERY + 2)
    run = run_dir()
    last = max(logged(run))
    assert newest_loads(run) == SAVE_EVERY and last - SAVE_EVERY <= SAVE_EVERY

    # 2. the moment a checkpoint write has begun (its temporary directory exists)
    torn = set(run.glob("checkpoints/.tmp-step-*"))
    proc = aeth_train(env, "--resume")
    kill_when(proc, lambda: set(run.glob("checkpoints/.tmp-step-*")) - torn)
    assert f"resuming from step {SAVE_EVERY}" in proc.stdout.read().decode()  # the newest complete checkpoint
    resumed = logged(run)
    assert resumed == list(range(1, max(resumed) + 1))  # steps redone after the checkpoint are not logged twice
    newest = newest_loads(run)  # a torn .tmp-step-* directory, if the kill landed inside the write, is not picked
    assert newest in (max(resumed) - max(resumed) % SAVE_EVERY, max(resumed) - max(resumed) % SAVE_EVERY - SAVE_EVERY)
    assert max(resumed) - newest <= SAVE_EVERY

    # 3. during a resume's startup, before it logs a step: nothing changes on disk
    before = logged(run)
    proc = aeth_train(env, "--resume")
    started = time.monotonic()
    kill_when(proc, lambda: time.monotonic() - started > 1.0)  # still importing torch or loading the model
    assert logged(run) == before and newest_loads(run) == newest

    # the last resume runs to the end from that same checkpoint
    done = aeth_train(env, "--resume")
    output = done.communicate(timeout=300)[0].decode()
    assert done.returncode == 0, output
    assert f"resuming from step {newest}" in output
    assert logged(run) == list(range(1, STEPS + 1))
    assert "stored adapter v0001" in output
    assert (aeth_home / "adapters" / "killtest").is_dir() and any((aeth_home / "adapters" / "killtest").glob("v0001-*"))
    # a finished run is not trained again
    again = aeth_train(env, "--resume")
    output = again.communicate(timeout=300)[0].decode()
    assert again.returncode != 0 and "already finished" in output


def test_an_interrupted_checkpoint_replacement_never_leaves_one_that_looks_complete(tmp_path, monkeypatch):
    """Ctrl-C just after a save (or a resume) saves the same step again, replacing a complete
    checkpoint; a second Ctrl-C or a SIGKILL while the old one is deleted must leave it torn
    (no state.json), never complete-looking with its weights gone, or every --resume would fail."""
    import shutil
    from pathlib import Path

    import torch

    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.AdamW([weight])
    weight.sum().backward()
    optimizer.step()
    for step in (4, 8):
        checkpoint.save(tmp_path, step, {"w": weight}, optimizer.state_dict(), {"micro": step})
    real_rmtree = shutil.rmtree

    def interrupted(path, *args, **kwargs):  # the interruption lands after the first file of step-8 is gone
        if Path(path).name == "step-8":
            (Path(path) / "adapter.safetensors").unlink()
            raise KeyboardInterrupt
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(checkpoint.shutil, "rmtree", interrupted)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(tmp_path, 8, {"w": weight}, optimizer.state_dict(), {"micro": 8})
    monkeypatch.undo()
    newest = checkpoint.latest(tmp_path)
    state, weights, _ = checkpoint.read(newest)
    assert newest.name == "step-4" and state["step"] == 4 and torch.equal(weights["w"], weight.detach())
