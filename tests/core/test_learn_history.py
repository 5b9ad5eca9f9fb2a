"""``aeth learn history``: one entry per adapter version from its manifest (older manifests lacking
fields included), the table, JSON and PNG plot; and the server's learning gauges on ``/metrics``
(feedback rows, the active version's gate scores), read at scrape time through a short cache.

No training: versions are stored through :class:`~aeth.models.adapters.AdapterStore` with the
manifests a train, distill or learn run writes, over placeholder weights nothing loads."""

import json
import re
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from safetensors.numpy import save_file

from aeth import hookimpl
from aeth.app import Aeth
from aeth.cli import cli
from aeth.errors import AethError, SpecialistError
from aeth.learning.history import history
from aeth.learning.plot import plot, series
from aeth.store import Interaction
from aeth.testing import adder_specialist

PNG = b"\x89PNG\r\n\x1a\n"

TRAINED = {"base_model": "tiny", "recipe": {"name": "adder-seed", "version": "1", "train": 36, "validation": 4,
                                            "sources": {"recipe adder-seed 1": 40}},
           "hyperparameters": {"objective": "sft"},
           "eval": {"suite": "flat", "limit": 2, "score": 0.5, "baseline": "base", "baseline_score": 0.25},
           "promotion": {"promoted": True, "forced": False, "reason": "promoted: eval 0.500 >= 0.250 of base"}}
OLD = {"base_model": "tiny"}  # written by an older aeth: no recipe, eval or promotion


def learnt(parent, objective, score, baseline_score, heldout, promoted, feedback):
    """The manifest learning's gate leaves (aeth.learning.gate.learn_gate)."""
    return {"base_model": "tiny", "parent": parent, "recipe": {"name": "learn-0001", "version": None, "train": 12},
            "hyperparameters": {"objective": objective},
            "learning": {"objective": objective, "dataset": "learn-0001", "feedback": [f"f{i}" for i in range(feedback)]},
            "eval": {"suite": "flat", "limit": 2, "score": score, "baseline": parent, "baseline_score": baseline_score},
            "heldout": {"dataset": "learn-0001", "baseline": parent, "records": {"dpo": 2},
                        "scores": {k: {"score": new, "baseline_score": old} for k, (new, old) in heldout.items()}},
            "promotion": {"promoted": promoted, "forced": False, "reason": "promoted" if promoted else "kept inactive"}}


@pytest.fixture
def lineage(aeth_home, register_plugin, tmp_path):
    """The ``adder`` specialist with five versions: trained (promoted), old (bare manifest), learnt
    with DPO (promoted, active now), learnt with KTO (kept), distilled (no gate)."""
    class Plugin:
        @hookimpl
        def register_specialists(self, register):
            register(adder_specialist("adder"))

    register_plugin(Plugin(), "history-test")
    weights = tmp_path / "lora"
    weights.mkdir()
    save_file({"placeholder": np.zeros(1, dtype=np.float32)}, str(weights / "adapter_model.safetensors"))
    (weights / "adapter_config.json").write_text("{}")
    app = Aeth()
    store = app.adapters
    v1 = store.add("adder", weights, TRAINED)
    store.activate("adder", v1.version, reason="promoted")
    store.add("adder", weights, OLD)
    v3 = store.add("adder", weights, learnt(v1.version, "dpo", 0.5, 0.5, {"dpo": (0.8, 0.6), "sft": (-0.9, -0.95)}, True, 3))
    store.activate("adder", v3.version, reason="promoted")
    store.add("adder", weights, learnt(v3.version, "kto", 0.25, 0.5, {"kto": (0.4, 0.5)}, False, 2))
    store.add("adder", weights, {"base_model": "tiny", "distillation": {"teacher": "local"},
                                 "recipe": {"name": "adder-seed", "version": "1", "train": 50,
                                            "sources": {"recipe adder-seed 1": 40, "generated d-0001": 20}}})
    yield app
    app.close()


def aeth(*args):
    return CliRunner().invoke(cli, list(args))


def test_history_has_one_entry_per_version_read_defensively(lineage):
    entries = history(lineage, "adder")
    assert [e.number for e in entries] == [1, 2, 3, 4, 5]
    assert [e.made for e in entries] == ["train", "train", "learn", "learn", "distill"]
    assert [e.objective for e in entries] == ["sft", None, "dpo", "kto", None]
    assert [e.dataset for e in entries] == ["adder-seed 1", None, "learn-0001", "learn-0001", "adder-seed 1"]
    assert [e.records for e in entries] == [36, None, 12, 12, 50]
    assert [e.feedback for e in entries] == [None, None, 3, 2, None]
    assert [e.score for e in entries] == [0.5, None, 0.5, 0.25, None]
    assert [e.promoted for e in entries] == [True, None, True, False, None]
    assert [e.active for e in entries] == [False, False, True, False, False]
    assert [e.activated for e in entries] == [True, False, True, False, False]
    assert entries[2].parent == entries[0].version and entries[2].baseline == entries[0].version
    assert entries[2].heldout == {"dpo": [0.8, 0.6], "sft": [-0.9, -0.95]}
    assert entries[1].heldout == {} and entries[1].created  # the store always stamps created


def test_unknown_specialist_is_an_error_and_a_new_one_has_no_history(lineage):
    with pytest.raises(SpecialistError, match="unknown specialist 'addr'"):
        history(lineage, "addr")
    assert history(lineage, "general") == []


def test_cli_table_and_json(lineage, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # one line per version, as in a wide terminal
    table = aeth("learn", "history", "adder")
    assert table.exit_code == 0, table.output
    rows = [line for line in table.output.splitlines() if re.search(r"v000\d-", line)]
    assert len(rows) == 5
    assert rows[2].lstrip().startswith("*") and "learn dpo" in rows[2] and "learn-0001" in rows[2]
    assert "0.500 (v0001" in rows[2] and "dpo 0.800 (0.600)" in rows[2] and rows[2].rstrip().endswith("yes")
    assert "learn kto" in rows[3] and "kto 0.400 (0.500)" in rows[3] and rows[3].rstrip().endswith("no")
    assert "distill" in rows[4] and rows[4].rstrip().endswith("-")
    out = aeth("learn", "history", "adder", "--json")
    assert out.exit_code == 0, out.output
    entries = [json.loads(line) for line in out.output.splitlines()]
    assert [e["number"] for e in entries] == [1, 2, 3, 4, 5]
    assert entries[2]["active"] is True and entries[2]["heldout"]["dpo"] == [0.8, 0.6] and entries[2]["feedback"] == 3


def test_cli_refuses_misplaced_arguments(lineage, tmp_path):
    missing = aeth("learn", "history")
    assert missing.exit_code == 2 and "needs a SPECIALIST" in missing.output
    misplaced = aeth("learn", "adder", "--plot", str(tmp_path / "x.png"))
    assert misplaced.exit_code == 2 and "--plot goes with aeth learn history" in misplaced.output


def test_plot_series_and_png(lineage, tmp_path):
    pytest.importorskip("matplotlib")
    entries = history(lineage, "adder")
    data = series(entries)
    assert data["labels"] == ["v0001", "v0002", "v0003", "v0004", "v0005"]
    assert data["suite"] == [[0, 0.5], [2, 0.5], [3, 0.25]]  # only versions a gate scored
    assert data["promoted"] == [0, 2] and data["active"] == 2
    assert data["heldout"] == {"dpo": [[2, 0.8]], "kto": [[3, 0.4]], "sft": [[2, -0.9]]}
    target = tmp_path / "adder.png"
    out = aeth("learn", "history", "adder", "--plot", str(target))
    assert out.exit_code == 0, out.output
    assert target.read_bytes()[:8] == PNG
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".adder.png")] == []  # no temp file left
    again = tmp_path / "again.png"
    assert plot(entries, again) == data and again.read_bytes()[:8] == PNG


def test_plot_without_matplotlib_says_how_to_install(lineage, tmp_path, monkeypatch):
    for name in ("matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError
    with pytest.raises(AethError, match="pip install matplotlib"):
        plot(history(lineage, "adder"), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_metrics_gauges_show_feedback_and_active_gate_scores(lineage):
    from fastapi.testclient import TestClient

    from aeth.serving.app import create_app
    from aeth.serving.engine import Engine

    class NoEngine(Engine):
        """Nothing is generated here: /metrics only."""

        def submit(self, job):
            raise AssertionError("not called")

    def answer(n=1):
        return [lineage.store.record(Interaction(messages=[{"role": "user", "content": f"What is {i} plus 1?"}],
                                                 answer="2", specialist="adder")) for i in range(n)]

    first, second = answer(2)
    lineage.store.record_feedback(first, "thumbs", True)
    lineage.store.record_feedback(second, "thumbs", False)
    lineage.store.record_feedback(first, "rating", 0.5, source="verifier")
    lineage.store.record_feedback(second, "correction", "1 plus 1 is 2.")
    web = create_app(lineage, NoEngine(lineage))
    clock = [100.0]
    web.state.server.metrics.learning.clock = lambda: clock[0]
    active = lineage.adapters.active("adder").version
    with TestClient(web) as client:
        text = client.get("/metrics").text
        assert 'aeth_feedback_rows{kind="thumbs",source="user",specialist="adder"} 2.0' in text
        assert 'aeth_feedback_rows{kind="rating",source="verifier",specialist="adder"} 1.0' in text
        assert 'aeth_feedback_rows{kind="correction",source="user",specialist="adder"} 1.0' in text
        assert f'aeth_active_eval_score{{adapter="{active}",specialist="adder"}} 0.5' in text
        assert f'aeth_active_heldout_score{{adapter="{active}",kind="dpo",specialist="adder"}} 0.8' in text
        assert f'aeth_active_heldout_score{{adapter="{active}",kind="sft",specialist="adder"}} -0.9' in text
        assert 'specialist="general"' not in text  # no feedback, no active version: no series
        lineage.store.record_feedback(first, "comment", "short")
        lineage.adapters.rollback("adder")
        cached = client.get("/metrics").text  # within the cache's 10 s: the store is not read again
        assert "aeth_feedback_rows{kind=\"comment\"" not in cached and f'adapter="{active}"' in cached
        clock[0] += 10
        fresh = client.get("/metrics").text
        assert 'aeth_feedback_rows{kind="comment",source="user",specialist="adder"} 1.0' in fresh
        assert f'adapter="{active}"' not in fresh
        v1 = lineage.adapters.active("adder").version
        assert f'aeth_active_eval_score{{adapter="{v1}",specialist="adder"}} 0.5' in fresh
        assert "aeth_active_heldout_score{" not in fresh  # v1 was judged by the suite alone
