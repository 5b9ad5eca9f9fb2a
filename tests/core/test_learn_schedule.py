"""The learn schedule: the trigger rule (rows, hours on a fake clock, nothing waiting, unfinished runs),
``learn.*`` and ``specialists.<name>.learn_every_*`` config, ``aeth learn --watch --once`` on the
tiny model (learns once, then nothing; resumes an unfinished run), a held lock skipped, the next
trigger in ``aeth learn status``, and SIGTERM stopping a watcher."""

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest

from aeth.app import Aeth
from aeth.config import load_config
from aeth.errors import ConfigError
from aeth.learning.run import LEARN_JSON, learn_runs
from aeth.learning.schedule import Rule, decide, rule, rules
from aeth.models.adapters import AdapterStore

from . import test_learn
from .test_learn import FAST, aeth, corrections, lock_held_elsewhere

learner = test_learn.learner  # the tiny-model ``adder`` specialist fixture, shared


@pytest.fixture(autouse=True)
def keep_test_priority(monkeypatch):
    """The in-process `aeth learn --watch` would renice the whole pytest process (and every test
    after this file); here it only records that it was asked. The subprocess tests renice for real."""
    from aeth.learning import watch

    asked = []
    monkeypatch.setattr(watch, "lower_priority", lambda nice=watch.NICE: asked.append(nice) or nice)
    return asked

T0 = datetime(2026, 12, 1, 18, 0, tzinfo=timezone.utc)


def finished(at=T0, run="20261201-run"):
    return {"run": run, "outcome": {"result": "promoted", "version": "v0001", "at": at.strftime("%Y-%m-%dT%H:%M:%SZ")}}


def test_rows_threshold():
    r = Rule(every_feedback=10, every_hours=None)
    wait = decide("coding", r, {"waiting": 9, "last": finished()}, T0)
    assert (wait.action, wait.due, wait.reason) == ("wait", False, "after 1 more feedback row")
    now = decide("coding", r, {"waiting": 10, "last": finished()}, T0)
    assert now.due and now.action == "learn" and now.reason == "10 feedback rows waiting (every 10)"


def test_hours_since_the_last_learn_on_a_fake_clock_and_never_from_nothing():
    r = Rule(every_feedback=50, every_hours=24)
    entry = {"waiting": 3, "last": finished()}
    before = decide("coding", r, entry, T0 + timedelta(hours=23, minutes=59))
    assert not before.due and before.reason == "after 47 more feedback rows or at 2026-12-02 18:00 UTC"
    after = decide("coding", r, entry, T0 + timedelta(hours=24))
    assert after.due and after.reason == "3 feedback rows waiting, 24 h since its last learn ended"
    empty = decide("coding", r, {"waiting": 0, "last": finished()}, T0 + timedelta(days=9))
    assert not empty.due and empty.reason == "after 50 more feedback rows or with the next feedback row"
    # never learnt: the clock starts at the oldest waiting row
    fresh = {"waiting": 1, "last": None, "waiting_since": (T0 - timedelta(hours=2)).isoformat()}
    assert decide("coding", Rule(None, 2.5), fresh, T0).reason == "at 2026-12-01 18:30 UTC"
    assert decide("coding", Rule(None, 2), fresh, T0).reason == "1 feedback row waiting, 2 h since the oldest one arrived"
    assert decide("coding", Rule(None, 2), {"waiting": 0, "last": None}, T0).reason == "2 h after the first new feedback row"


def test_self_practice_is_due_on_the_hours_alone_and_feedback_still_comes_first():
    r = Rule(every_feedback=10, every_hours=24)
    never = decide("coding", r, {"waiting": 0}, T0, practice=True)
    assert never.due and (never.action, never.reason) == ("practice", "self-practice: it never learnt")
    assert decide("coding", r, {"waiting": 0}, T0).action == "wait"  # without --self nothing waiting is never due
    entry = {"waiting": 0, "last": finished()}
    early = decide("coding", r, entry, T0 + timedelta(hours=23), practice=True)
    assert not early.due and early.reason == "after 10 more feedback rows or self-practice at 2026-12-02 18:00 UTC"
    late = decide("coding", r, entry, T0 + timedelta(hours=24), practice=True)
    assert late.action == "practice" and late.reason == "self-practice: 24 h since its last learn ended"
    rows = decide("coding", r, {"waiting": 10, "last": finished()}, T0 + timedelta(hours=25), practice=True)
    assert rows.action == "learn"  # feedback waiting is learnt from first
    off = decide("coding", Rule(every_feedback=10, every_hours=None), {"waiting": 0}, T0, practice=True)
    assert not off.due  # no time trigger, no self-practice


def test_unfinished_runs_resume_a_held_lock_waits_and_both_triggers_off_is_never():
    r = Rule(10, 24)
    unfinished = {"waiting": 0, "last": {"run": "r1", "outcome": None}}
    assert decide("c", r, unfinished, T0).action == "resume"  # its dataset holds the rows: nothing need wait
    interrupted = {"waiting": 0, "last": {"run": "r1", "outcome": {"interrupted": True, "steps": 3}}}
    assert decide("c", r, interrupted, T0).reason == "continue the unfinished learn run r1"
    held = decide("c", r, {**unfinished, "waiting": 99, "running": {"pid": 42}}, T0)
    assert (held.action, held.due, held.reason) == ("running", False, "a learn is running (pid 42)")
    off = decide("c", Rule(None, None), {"waiting": 1000, "last": None}, T0)
    assert off.action == "off" and not off.due


def test_config_keys_overrides_and_errors(learner):
    config = load_config(["learn.every_feedback=20", "specialists.adder.learn_every_hours=null",
                          "specialists.other.learn_every_feedback=3"], env={})
    assert rule(config, "adder") == Rule(20, None)  # null for one specialist: off for it alone
    assert rule(config, "other") == Rule(3, 24.0) and rule(config, "third") == Rule(20, 24.0)
    with pytest.raises(ConfigError) as e:
        load_config(["learn.every_feedback=0", "learn.every_hours=-1", "specialists.adder.learn_every_hours=soon",
                     "specialists.adder.learn_every_feedbak=3"], env={})
    assert len(e.value.problems) == 4
    assert "learn.every_feedback must be >= 1, got 0" in str(e.value)
    assert "specialists.adder.learn_every_hours: must be a number, got 'soon'" in str(e.value)
    assert "did you mean 'learn_every_feedback'?" in str(e.value)
    app = Aeth(load_config(["specialists.addr.learn_every_feedback=3"]))
    try:
        with pytest.raises(ConfigError, match=r"specialists.addr.learn_every_feedback: no specialist 'addr' is "
                                              r"registered \(did you mean 'adder'\?\)"):
            rules(app)
    finally:
        app.close()


def test_watch_once_learns_a_due_specialist_once_then_nothing_and_resumes_an_unfinished_run(learner, aeth_home):
    corrections(learner, [(a, b) for a in range(1, 5) for b in range(1, 4)])  # 12 rows
    status = aeth("learn", "status", "adder")
    assert "next learn        after 38 more feedback rows or at " in status.output  # defaults: 50 rows or 24 h
    every5 = ["-o", "learn.every_feedback=5"]
    status = aeth(*every5, "learn", "status", "adder", "--json")
    assert json.loads(status.output)["due"] is True and json.loads(status.output)["next"].startswith("12 feedback rows")
    out = aeth(*every5, "learn", "--once", "adder", *FAST)
    assert out.exit_code == 0, out.output
    assert "adder: learning: 12 feedback rows waiting (every 5)" in out.output
    assert "adder: dataset learn-0001: 12 feedback rows" in out.output
    [version] = AdapterStore(aeth_home).versions("adder")
    assert any(f"adder: {o} {version.version}" in out.output for o in ("promoted", "kept"))
    again = aeth(*every5, "learn", "--once", *FAST)  # every specialist: the rows were consumed
    assert again.exit_code == 0, again.output
    assert "adder: not due: next after 5 more feedback rows or at " in again.output
    assert "adder: learning" not in again.output and len(AdapterStore(aeth_home).versions("adder")) == 1
    # a run killed after storing its version but before the gate: the watcher resumes it, nothing new is built
    [run] = learn_runs(aeth_home, "adder")
    info = json.loads((run / LEARN_JSON).read_text())
    (run / LEARN_JSON).write_text(json.dumps({k: v for k, v in info.items() if k != "outcome"}))
    assert "next learn        due: continue the unfinished learn run" in aeth("learn", "status", "adder").output
    resumed = aeth(*every5, "learn", "--once", "adder", *FAST)
    assert resumed.exit_code == 0, resumed.output
    assert f"adder: resuming: continue the unfinished learn run {run.name}" in resumed.output
    assert json.loads((run / LEARN_JSON).read_text())["outcome"]["version"] == version.version
    assert len(learn_runs(aeth_home, "adder")) == 1


def test_a_held_lock_makes_once_skip_the_specialist(learner, aeth_home):
    corrections(learner, [(1, 1), (2, 2)])
    with lock_held_elsewhere(aeth_home) as holder:
        out = aeth("-o", "learn.every_feedback=1", "learn", "--once", "adder")
        assert out.exit_code == 0, out.output
        assert f"adder: skipped: a learn is running (pid {holder.pid}) in another process" in out.output
        assert learn_runs(aeth_home, "adder") == []


def test_sigterm_stops_a_watcher_between_runs(aeth_home):
    proc = subprocess.Popen([sys.executable, "-m", "aeth", "learn", "--watch", "--interval", "3600"],
                            env={**os.environ, "AETH_LOAD_PLUGINS": ""}, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stderr.readline()
        assert "watching every specialist every 3600 s at niceness" in first, first + proc.stderr.read()
        assert "general: not due: next after 50 more feedback rows" in proc.stderr.readline()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert "watch stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigterm_during_a_learn_checkpoints_it_and_the_next_check_resumes_it(learner, aeth_home, tiny_model_dir,
                                                                             tmp_path):
    from aeth.testing import adder_plugin_source, install_plugin_source

    corrections(learner, [(a, b) for a in range(1, 5) for b in range(1, 4)])
    env = {**os.environ, **install_plugin_source(tmp_path / "plugin", "learn-watch", adder_plugin_source("adder")),
           "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "aeth", "-o", "model.dtype=float32", "-o", "model.threads=1", "-o",
            "learn.every_feedback=5", "learn", "--watch", "adder", "--base", str(tiny_model_dir), "--max-steps", "40",
            "--save-every", "2", "--batch-size", "2", "--seq-len", "64", "--no-verify", "--no-gate"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    runs = aeth_home / "runs" / "adder"
    while proc.poll() is None:  # stop it once training is under way
        metrics = next(iter(runs.glob("*/metrics.jsonl")), None)
        if metrics is not None and len(metrics.read_text().splitlines()) >= 3:
            proc.send_signal(signal.SIGTERM)
            break
        time.sleep(0.001)
    output = proc.communicate(timeout=120)[0].decode()
    assert proc.returncode == 0, output[-3000:]
    assert "adder: interrupted: interrupted at step " in output and "watch stopped" in output
    [run] = learn_runs(aeth_home, "adder")
    assert json.loads((run / LEARN_JSON).read_text())["outcome"]["interrupted"] is True
    assert any(run.glob("checkpoints/step-*"))
    resumed = aeth("-o", "learn.every_feedback=5", "learn", "--once", "adder", "--no-gate")
    assert resumed.exit_code == 0, resumed.output
    assert f"adder: resuming: continue the unfinished learn run {run.name}" in resumed.output
    assert "resuming from step " in resumed.output
    [version] = AdapterStore(aeth_home).versions("adder")
    assert version.manifest["metrics"]["steps"] == 40 and f"adder: stored {version.version}" in resumed.output
