"""Kill test for ``aeth train``: SIGKILL a run at random moments, ``--resume`` it, and check what survived.

What is compared: after every SIGKILL, the checkpoints on disk against what a resume needs (the one
``aeth.training.checkpoint.latest()`` picks must load completely: every tensor readable, state.json
parses), and the resumed run against that checkpoint (it must restart from it, losing at most
``--save-every`` steps). A real ``aeth train`` subprocess trains a throwaway specialist (registered
through a plugin distribution written to a temporary directory on PYTHONPATH and picked with
AETH_LOAD_PLUGINS) on a tiny model (``aeth.testing.build_tiny_model``) in a temporary $AETH_HOME,
threads pinned to 1. The kill moments come from a seeded RNG, spread over startup (the first kill
always lands in the fresh run's startup), the middle of steps, and checkpoint writes (killed the
moment a ``.tmp-step-*`` directory appears; a torn one left behind proves the kill landed inside
the write). After the last kill the resumed run finishes; it must reach every step and store an
adapter version. Goal (issue 4): 20 kills, all resume, no corrupt load, steps lost <= save interval.

    python bench/bench_kill.py [--kills 20] [--steps 400] [--save-every 5] [--seed 0] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SPECIALIST = "killtest"


def environment(work: Path) -> dict:
    """The subprocess environment: a fresh $AETH_HOME, only the kill-test plugin, no user config."""
    from aeth.testing import adder_plugin_source, install_plugin_source

    plugin = adder_plugin_source(SPECIALIST, a_max=20, b_max=10)  # 200 records: short sums, millisecond steps
    env = {k: v for k, v in os.environ.items() if not k.startswith("AETH_")}
    env.update(install_plugin_source(work / "plugin", SPECIALIST, plugin), AETH_HOME=str(work / "home"),
               XDG_CONFIG_HOME=str(work / "config"), OMP_NUM_THREADS="1")
    return env


@dataclass
class Watch:
    """What one attempt (a fresh or resumed ``aeth train``) has left on disk so far."""

    home: Path
    log: Path | None = None  # this attempt's output; None for a fresh run
    tmp_before: frozenset = frozenset()

    def run_dir(self) -> Path | None:
        runs = sorted(d for d in (self.home / "runs" / SPECIALIST).glob("*") if d.is_dir())
        return runs[-1] if runs else None

    def resumed_from(self) -> int | None:
        """The step a resumed attempt said it continues from (after cutting metrics.jsonl back to it)."""
        text = self.log.read_text(errors="replace") if self.log is not None and self.log.exists() else ""
        found = re.search(r"resuming from step (\d+)", text)
        return int(found.group(1)) if found else None

    def steps(self) -> list[int]:
        """Steps this attempt has logged to metrics.jsonl (a resume's start after the cut-back)."""
        run = self.run_dir()
        base = 0 if self.log is None else self.resumed_from()
        if run is None or base is None or not (run / "metrics.jsonl").exists():
            return []
        steps = []
        for line in (run / "metrics.jsonl").read_bytes().splitlines():
            try:
                steps.append(json.loads(line)["step"])
            except (ValueError, KeyError):  # a line torn by the kill
                continue
        return [s for s in steps if s > base]

    def tmp_dirs(self) -> frozenset:
        run = self.run_dir()
        return frozenset(p.name for p in (run / "checkpoints").glob(".tmp-step-*")) if run else frozenset()

    @classmethod
    def start(cls, home: Path, log: Path | None) -> Watch:
        watch = cls(home, log)
        watch.tmp_before = watch.tmp_dirs()
        return watch


def launch(args: list[str], env: dict, log: Path, threads: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "aeth", "-o", f"model.threads={threads}", "-o", "model.dtype=float32", "train", *args]
    return subprocess.Popen(command, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT, cwd=log.parent)


def kill_at(proc: subprocess.Popen, watch: Watch, mode: str, rng: random.Random, save_every: int,
            startup_s: float) -> tuple[bool, float | None]:
    """Wait for the moment ``mode`` draws, then SIGKILL. Returns whether it was killed (not finished
    first) and the seconds from launch to its first logged step, if it got that far."""
    started, first_step = time.monotonic(), None
    if mode == "startup":  # a random moment before the first step, once the run directory exists
        deadline = started + rng.uniform(0.3, startup_s)
        ready = lambda: time.monotonic() >= deadline and watch.run_dir() is not None  # noqa: E731
    elif mode == "step":  # a random moment inside the step after the n-th one
        target, pause = rng.randint(1, 3 * save_every), rng.uniform(0.0, 0.02)
        ready = lambda: len(watch.steps()) >= target and (time.sleep(pause) or True)  # noqa: E731
    else:  # checkpoint: the n-th checkpoint write of this attempt has begun
        target, seen = rng.randint(1, 3), set()

        def ready() -> bool:
            seen.update(watch.tmp_dirs() - watch.tmp_before)
            return len(seen) >= target
    while proc.poll() is None:
        if ready():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True, first_step
        if first_step is None and watch.steps():
            first_step = time.monotonic() - started
        time.sleep(0.0003)
    return False, first_step


def check_checkpoints(run: Path | None) -> tuple[int, list[str]]:
    """The step of the checkpoint ``latest()`` picks (0: none), and every complete-looking one that fails to load."""
    from safetensors import safe_open

    from aeth.training import checkpoint

    if run is None:
        return 0, []
    corrupt = []
    for path in checkpoint.checkpoint_dirs(run):
        try:
            state = json.loads((path / checkpoint.STATE).read_text())
            assert state["step"] == int(path.name[5:]), f"state.json says step {state['step']}"
            for name in ("adapter.safetensors", "optimizer.safetensors"):
                with safe_open(str(path / name), framework="pt") as f:
                    for key in f.keys():
                        f.get_tensor(key)
        except Exception as e:  # any failure to read counts: a resume would hit it
            corrupt.append(f"{path.name}: {type(e).__name__}: {e}")
    latest = checkpoint.latest(run)
    return (int(latest.name[5:]) if latest else 0), corrupt


@dataclass
class Kill:
    """One SIGKILL and what the next resume made of it."""

    moment: str
    alive_s: float
    last_logged: int
    checkpoint: int
    corrupt: list
    resumed_from: int | None = None
    resume_error: str = ""

    @property
    def lost(self) -> int:
        return self.last_logged - self.checkpoint


def moment_of(mode: str, watch: Watch, steps: list[int], run: Path | None) -> str:
    """Where the kill landed, judged from what it left on disk."""
    if watch.tmp_dirs() - watch.tmp_before:
        return "checkpoint write (torn .tmp left)"
    if not steps:
        return "startup" if run is not None and (run / "plan.json").exists() else "startup, before plan.json"
    return "just after a checkpoint write" if mode == "checkpoint" else "mid-step"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--steps", type=int, default=400, help="--max-steps of the run")
    parser.add_argument("--save-every", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from aeth.testing import build_tiny_model

    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="aeth-bench-kill-"))
    tiny = build_tiny_model(work / "tiny")
    env, home = environment(work), work / "home"
    fresh = [SPECIALIST, "--base", str(tiny), "--max-steps", str(args.steps), "--save-every", str(args.save_every),
             "--batch-size", "4", "--seq-len", "64", "--eval-every", "1000", "--no-gate"]
    modes = ["startup"] + [rng.choice(["startup", "step", "step", "checkpoint", "checkpoint"]) for _ in range(args.kills - 1)]
    kills: list[Kill] = []
    pending: list[Kill] = []  # kills whose resume has not logged a step yet
    before_kills: dict[int, float] = {}  # step -> loss as logged before some kill
    command, start_step, startup_s, attempt = fresh, 0, 3.0, 0  # startup_s: launch to first step, measured
    while True:
        log = work / f"attempt-{attempt:02d}.log"
        watch = Watch.start(home, None if command == fresh else log)
        attempt += 1
        launched = time.monotonic()
        proc = launch(command, env, log, args.threads)
        killed, first_step = (kill_at(proc, watch, modes[len(kills)], rng, args.save_every, startup_s)
                              if len(kills) < args.kills else (False, None))
        if not killed:
            proc.wait(timeout=900)
        steps = watch.steps()
        if first_step is not None:
            startup_s = min(startup_s, first_step) if attempt > 1 else first_step
        if watch.resumed_from() is not None or steps:
            for kill in pending:
                kill.resumed_from = watch.resumed_from() if watch.log is not None else 0
            pending = []
        if not killed and proc.returncode != 0 and command != fresh:  # --resume itself failed
            lines = log.read_text().strip().splitlines()
            for kill in pending:
                kill.resume_error = lines[-1] if lines else f"exit {proc.returncode}"
            pending, command, start_step = [], fresh, 0  # a user whose --resume failed starts over
            time.sleep(1.1)  # run directories are named by the second
            continue
        if not killed:
            break
        run = watch.run_dir()
        checkpoint_step, corrupt = check_checkpoints(run)
        for step, loss in logged_losses(run).items():  # steps the resume must redo, as first logged
            if step > checkpoint_step:
                before_kills.setdefault(step, loss)
        kills.append(Kill(moment_of(modes[len(kills)], watch, steps, run), time.monotonic() - launched,
                          max(steps) if steps else start_step, checkpoint_step, corrupt))
        pending.append(kills[-1])
        command, start_step = [SPECIALIST, "--resume"], checkpoint_step
    report(args, kills, proc, work, home, before_kills)


def logged_losses(run: Path | None) -> dict[int, float]:
    """step -> loss of every complete line in the run's metrics.jsonl."""
    found = {}
    path = run / "metrics.jsonl" if run else None
    for line in path.read_bytes().splitlines() if path and path.exists() else []:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        found[record["step"]] = record["loss"]
    return found


def final_metrics(run: Path, before_kills: dict[int, float]) -> tuple[list, int, int, int]:
    """Steps in the final metrics.jsonl, and how many of them were logged before a kill and redone
    after it (with the same loss / a different one)."""
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    redone = [r for r in lines if r["step"] in before_kills]
    same = sum(before_kills[r["step"]] == r["loss"] for r in redone)
    return [r["step"] for r in lines], len(redone), same, len(redone) - same


def report(args, kills: list[Kill], proc: subprocess.Popen, work: Path, home: Path, before_kills: dict) -> None:
    print(f"aeth train kill test: {len(kills)} SIGKILLs, tiny Llama, --max-steps {args.steps} --save-every "
          f"{args.save_every}, seed {args.seed}, threads {args.threads}")
    print(f"{'kill':>4}  {'moment':34} {'alive s':>7} {'last step':>9} {'ckpt':>5} {'resumed':>8} {'lost':>5}")
    for i, k in enumerate(kills, 1):
        resumed = "FAILED" if k.resume_error else ("-" if k.resumed_from is None else str(k.resumed_from))
        print(f"{i:>4}  {k.moment:34} {k.alive_s:7.1f} {k.last_logged:9} {k.checkpoint:5} {resumed:>8} {k.lost:5}")
        if k.resume_error:
            print(f"      resume failed: {k.resume_error[:150]}")
        for c in k.corrupt:
            print(f"      corrupt: {c}")
    from aeth.models.adapters import AdapterStore

    watch = Watch(home)
    run = watch.run_dir()
    steps, redone, same, differ = final_metrics(run, before_kills) if run else ([], 0, 0, 0)
    complete = steps == list(range(1, args.steps + 1)) and proc.returncode == 0
    versions = AdapterStore(home).versions(SPECIALIST)
    resumed = sum(not k.resume_error and (k.resumed_from is None or k.resumed_from == k.checkpoint) for k in kills)
    wrong = [i for i, k in enumerate(kills, 1) if k.resumed_from is not None and k.resumed_from != k.checkpoint]
    corrupt = sum(len(k.corrupt) for k in kills)
    max_lost = max((k.lost for k in kills), default=0)
    torn = sum(k.moment.startswith("checkpoint write") for k in kills)
    print(f"moments: {sum(k.moment.startswith('startup') for k in kills)} startup, "
          f"{sum(k.moment == 'mid-step' for k in kills)} mid-step, {torn} inside a checkpoint write, "
          f"{sum(k.moment.startswith('just after') for k in kills)} just after one")
    print(f"final run: exit {proc.returncode}, {len(steps)}/{args.steps} steps in metrics.jsonl, "
          f"{len(versions)} adapter version(s) stored; {redone} steps logged before a kill were redone after it "
          f"({same} with the same loss, {differ} with a different one)")
    ok = resumed == len(kills) == args.kills and not wrong and corrupt == 0 and max_lost <= args.save_every
    verdict = "PASS" if ok and complete and versions else "FAIL"
    print(f"verdict: {verdict}: resumed {resumed}/{len(kills)} (wrong checkpoint: {len(wrong)}), corrupt loads {corrupt}, "
          f"max steps lost {max_lost} (save interval {args.save_every}), run complete {complete}"
          f" (goal: {args.kills}/{args.kills}, 0, <= {args.save_every}, True); logs in {work}")


if __name__ == "__main__":
    main()
