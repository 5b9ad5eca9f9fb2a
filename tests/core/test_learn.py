"""``aeth learn``: feedback -> dataset version -> DPO/KTO/SFT from the active adapter -> a gate of eval
suite and held-out feedback -> promotion (undone by rollback); nothing to learn, unsupported
objectives, one learn per specialist (a lock the OS frees when its holder dies), resume after a
kill, and ``aeth learn status``. All on the tiny model."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest
from click.testing import CliRunner

from aeth import EvalCase, EvalSuite, hookimpl
from aeth.app import Aeth
from aeth.cli import cli
from aeth.learning.dataset import list_datasets
from aeth.learning.gate import decide
from aeth.learning.run import LEARN_JSON, learn_runs
from aeth.models.adapters import AdapterStore
from aeth.store import Interaction
from aeth.testing import adder_specialist

pytest.importorskip("peft")

FAST = ["--max-steps", "4", "--batch-size", "2", "--seq-len", "64", "--lr", "2e-2", "--beta", "1.0", "--gate-limit", "2"]
CASES = [EvalCase(f"c{i}", f"What is {i} plus 1?") for i in range(2)]


@pytest.fixture
def learner(aeth_home, register_plugin, tiny_model_dir):
    """The ``adder`` specialist on the tiny model with a two-case suite that scores every answer 1
    (so the held-out feedback decides), and an application on $AETH_HOME."""
    spec = replace(adder_specialist("adder"), base_model=str(tiny_model_dir),
                   suite=EvalSuite("flat", "1", lambda: CASES, lambda case, answer: 1.0, max_tokens=3))

    class Plugin:
        @hookimpl
        def register_specialists(self, register):
            register(spec)

    register_plugin(Plugin(), "learn-test")
    app = Aeth()
    yield app
    app.close()


def aeth(*args):
    return CliRunner().invoke(cli, ["-o", "model.dtype=float32", "-o", "model.threads=1", *args])


def corrections(app, pairs):
    """For each (a, b): a wrong answer to "What is a plus b?" and its correction (SFT + a DPO pair)."""
    ids = []
    for a, b in pairs:
        iid = app.store.record(Interaction(messages=[{"role": "user", "content": f"What is {a} plus {b}?"}],
                                           answer=f"{a} plus {b} is {a + b + 1}.", specialist="adder"))
        ids.append(app.feedback(iid, "correction", f"{a} plus {b} is {a + b}."))
    return ids


def test_decide_promotes_only_when_no_score_is_worse():
    assert decide((0.5, 0.5), {"dpo": (0.75, 0.5)})[0] is True
    assert decide((0.4, 0.5), {"dpo": (1.0, 0.5)})[:2] == (False, False)  # a worse suite
    assert decide((0.6, 0.5), {"dpo": (0.5, 0.75), "sft": (-1.0, -2.0)})[:2] == (False, False)  # worse agreement
    assert decide(None, {"kto": (0.5, 0.5)})[0] is True  # no suite: the held-out feedback alone
    promoted, forced, reason = decide((0.4, 0.5), {}, force=True, baseline_name="v0001")
    assert promoted and forced and reason == "forced: eval 0.400 < 0.500 of v0001"
    assert decide(None, {}) == (False, False, "kept inactive: nothing to judge it by (no eval suite, no held-out feedback)")


def test_learn_trains_dpo_gates_on_suite_and_heldout_and_rollback_undoes_it(learner, aeth_home):
    app = learner
    first = corrections(app, [(a, b) for a in range(1, 5) for b in range(1, 4)])
    out = aeth("learn", "adder", *FAST)
    assert out.exit_code == 0, out.output
    assert "objective dpo (auto)" in out.output and "gate:" in out.output
    store = AdapterStore(aeth_home)
    v1 = store.versions("adder")[0]
    m = v1.manifest
    assert m["learning"]["objective"] == "dpo" and m["learning"]["dataset"] == "learn-0001"
    assert sorted(m["learning"]["feedback"]) == sorted(first) and len(m["learning"]["interactions"]) == len(first)
    assert m["eval"]["score"] == m["eval"]["baseline_score"] == 1.0 and m["eval"]["baseline"] == "base"
    scores = m["heldout"]["scores"]
    assert set(scores) == {"dpo", "sft"} and 0 <= scores["dpo"]["score"] <= 1
    held = {k: (v["score"], v["baseline_score"]) for k, v in scores.items()}
    promoted, _, reason = decide((1.0, 1.0), held, baseline_name="base")
    assert m["promotion"]["promoted"] is promoted and m["promotion"]["reason"] == reason
    assert (store.active("adder") is not None) is promoted
    before = store.active("adder")
    # more feedback: the next learn starts from what is active, takes only the new rows, forced through
    second = corrections(app, [(a, 5) for a in range(1, 7)])
    out = aeth("learn", "adder", *FAST, "--force")
    assert out.exit_code == 0, out.output
    v2 = store.versions("adder")[-1]
    assert store.active("adder").version == v2.version
    assert sorted(v2.manifest["learning"]["feedback"]) == sorted(second)
    assert v2.manifest["learning"]["dataset"] == "learn-0002"
    assert v2.manifest["learning"]["init_adapter"] == (str(before.path) if before else None)
    assert v2.manifest["heldout"]["baseline"] == (before.version if before else "base")
    rolled = aeth("adapters", "rollback", "adder")
    assert rolled.exit_code == 0, rolled.output
    assert (store.active("adder").version if store.active("adder") else None) == (before.version if before else None)
    status = aeth("learn", "status", "adder")
    assert status.exit_code == 0, status.output
    assert "on learn-0002 (dpo): promoted " + v2.version in status.output
    assert "feedback waiting  0 rows" in status.output and "learn running     no" in status.output


def test_nothing_to_learn_and_unsupported_objectives(learner):
    app = learner
    out = aeth("learn", "adder")
    assert out.exit_code == 0 and "nothing to learn from: no new feedback" in out.output
    iid = app.store.record(Interaction(messages=[{"role": "user", "content": "What is 1 plus 1?"}], answer="1 plus 1 is 2.",
                                       specialist="adder"))
    app.feedback(iid, "rating", 3)
    app.feedback(iid, "comment", "meh")
    out = aeth("learn", "adder")
    assert out.exit_code == 0 and "nothing to learn from: 2 feedback rows waiting, none usable (comments 1, neutral 1)" in out.output
    app.feedback(iid, "thumbs", True)  # now an answer to imitate: SFT only
    out = aeth("learn", "adder", "--objective", "dpo")
    assert out.exit_code == 1 and "gives no DPO records (it supports: sft)" in out.output and "--prefer" in out.output
    assert list_datasets(app.config.home, "adder") == []  # refused before anything was consumed
    assert "feedback waiting  3 rows" in aeth("learn", "status", "adder").output


@contextlib.contextmanager
def lock_held_elsewhere(home, specialist="adder"):
    """Another process holding ``specialist``'s learn lock until the block ends, then SIGKILLed
    (so the lock is released by the OS, as after a crash); yields that process."""
    holder = subprocess.Popen([sys.executable, "-c",
                               "import time\nfrom aeth.learning.lock import learn_lock\n"
                               f"with learn_lock({str(home)!r}, {specialist!r}):\n"
                               "    print('held', flush=True)\n    time.sleep(600)\n"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def test_one_learn_per_specialist_and_a_killed_holder_frees_the_lock(learner, aeth_home):
    with lock_held_elsewhere(aeth_home) as holder:
        out = aeth("learn", "adder")
        assert out.exit_code == 1 and f"a learn of adder is running (pid {holder.pid}, started " in out.output
        assert f"yes (pid {holder.pid}" in aeth("learn", "status", "adder").output
    out = aeth("learn", "adder")
    assert out.exit_code == 0 and "nothing to learn from" in out.output
    assert "learn running     no" in aeth("learn", "status", "adder").output


def test_a_killed_learn_resumes_on_its_dataset_and_ends_in_one_version(learner, aeth_home, tiny_model_dir, tmp_path):
    from aeth.testing import adder_plugin_source, install_plugin_source

    app = learner
    corrections(app, [(a, b) for a in range(1, 5) for b in range(1, 4)])
    env = {**os.environ, **install_plugin_source(tmp_path / "plugin", "learn-kill", adder_plugin_source("adder")),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "aeth", "-o", "model.dtype=float32", "-o", "model.threads=1", "learn",
                             "adder", "--base", str(tiny_model_dir), "--max-steps", "40", "--save-every", "2",
                             "--batch-size", "2", "--seq-len", "64", "--no-verify"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    runs = aeth_home / "runs" / "adder"
    while proc.poll() is None:  # kill once a checkpoint is complete and training went on past it
        metrics = next(iter(runs.glob("*/metrics.jsonl")), None)
        if metrics is not None and len(metrics.read_text().splitlines()) >= 4 and any(runs.glob("*/checkpoints/step-*")):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.001)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stdout.read().decode()[-2000:]
    [run] = learn_runs(aeth_home, "adder")
    assert json.loads((run / LEARN_JSON).read_text())["dataset"] == "learn-0001"
    assert "outcome" not in json.loads((run / LEARN_JSON).read_text())
    refused = aeth("learn", "adder")
    assert refused.exit_code == 1 and "did not finish" in refused.output and "--resume" in refused.output
    assert "unfinished (aeth learn --resume continues it)" in aeth("learn", "status", "adder").output
    out = aeth("learn", "adder", "--resume")
    assert out.exit_code == 0, out.output
    assert f"resuming learn run {run.name} on learn-0001" in out.output and "resuming from step " in out.output
    assert [d.version for d in list_datasets(aeth_home, "adder")] == ["learn-0001"]  # not rebuilt
    [version] = AdapterStore(aeth_home).versions("adder")
    assert version.manifest["metrics"]["steps"] == 40 and version.manifest["learning"]["dataset"] == "learn-0001"
    assert json.loads((run / LEARN_JSON).read_text())["outcome"]["version"] == version.version
    again = aeth("learn", "adder", "--resume")
    assert again.exit_code == 1 and "no unfinished learn run of 'adder'" in again.output


def test_lone_verdicts_train_kto_and_the_bare_base_agrees_half_with_them(learner, aeth_home):
    app = learner
    for a in range(1, 9):
        right = a % 2 == 0
        iid = app.store.record(Interaction(messages=[{"role": "user", "content": f"What is {a} plus 2?"}],
                                           answer=f"{a} plus 2 is {a + 2 + (0 if right else 1)}.", specialist="adder"))
        app.feedback(iid, "thumbs", right)
    out = aeth("learn", "adder", *FAST, "--heldout", "0.3", "--no-gate")
    assert out.exit_code == 0, out.output
    assert "objective kto (auto)" in out.output and "stored adapter" in out.output
    [version] = AdapterStore(aeth_home).versions("adder")
    assert version.manifest["learning"]["objective"] == "kto" and "promotion" not in version.manifest
    assert AdapterStore(aeth_home).active("adder") is None
    from aeth.learning.agreement import agreement
    from aeth.learning.dataset import load

    scores = agreement(app, app.specialist("adder"), load(aeth_home, "adder"), {"base": None, "new": version})
    assert scores["base"]["kto"] == 0.5  # the base against itself: every answer a tie
    assert 0 <= scores["new"]["kto"] <= 1
