"""Learn datasets from feedback: each kind of feedback becomes the right SFT / DPO / KTO records,
duplicates go, the held-out share is by prompt and stable across versions, a version takes only
feedback no earlier one used, and the card says what went in; on SQLite and on PostgreSQL."""

import hashlib
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from aeth import hookimpl
from aeth.app import Aeth
from aeth.config import load_config
from aeth.datasets import DatasetError, generated_sets
from aeth.errors import SpecialistError
from aeth.learning import dataset as learn
from aeth.learning.dataset import build_dataset, choose_objective, collect, list_datasets, load, objectives_supported, split_heldout
from aeth.learning.feedback import prompt_key
from aeth.store import Interaction
from aeth.testing import adder_specialist

SYS = "Be brief."  # adder_specialist's system prompt
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


class Adder:
    @hookimpl
    def register_specialists(self, register):
        register(adder_specialist("adder"))


@pytest.fixture(params=["sqlite", "postgres"])
def app(request, aeth_home, register_plugin):
    """An application with the ``adder`` specialist, its store on SQLite in $AETH_HOME or on a fresh PostgreSQL database."""
    register_plugin(Adder(), "learn-test-adder")
    overrides = [f"store.url={request.getfixturevalue('postgres_db')}"] if request.param == "postgres" else []
    a = Aeth(load_config(overrides))
    yield a
    a.close()


@pytest.fixture
def sqlite_app(aeth_home, register_plugin):
    register_plugin(Adder(), "learn-test-adder")
    a = Aeth(load_config())
    yield a
    a.close()


def ask(app, prompt, answer, *, system=SYS, finish="stop", group=None, choice=0, minutes=0):
    """Record one answer of the adder specialist; its id."""
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    return app.store.record(Interaction(messages=messages, answer=answer, specialist="adder", finish_reason=finish,
                                        group_id=group, choice_index=choice, created=T0 + timedelta(minutes=minutes)))


def chat(prompt, answer):
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


def test_each_kind_of_feedback_becomes_the_right_records(app):
    fb = app.feedback
    corrected = ask(app, "What is 1 plus 1?", "1 plus 1 is 3.")
    fb(corrected, "correction", "1 plus 1 is 2.")
    up = ask(app, "What is 2 plus 2?", "2 plus 2 is 4.")
    fb(up, "thumbs", True, comment="right")
    same = ask(app, "What is 2 plus 2?", "2 plus 2 is  4.")  # the same answer again: duplicates dropped
    fb(same, "thumbs", True)
    down = ask(app, "What is 2 plus 3?", "2 plus 3 is 6.")
    fb(down, "thumbs", False)
    rated = ask(app, "What is 3 plus 3?", "3 plus 3 is 6.")
    fb(rated, "rating", 5)
    fb(ask(app, "What is 3 plus 4?", "3 plus 4 is 8."), "rating", 3)  # neutral: nothing
    flip = ask(app, "What is 5 plus 5?", "5 plus 5 is 10.")
    fb(flip, "thumbs", True)
    fb(flip, "thumbs", False)  # the latest verdict wins
    worse = ask(app, "What is 4 plus 1?", "4 plus 1 is 6.", group="g1", choice=0)
    better = ask(app, "What is 4 plus 1?", "4 plus 1 is 5.", group="g1", choice=1)
    fb(worse, "preference", {"chosen": better, "rejected": worse})
    fb(better, "thumbs", True)  # SFT, but no KTO: it is in a preference pair
    sampled = [ask(app, "What is 6 plus 2?", a, group="g2", choice=k) for k, a in enumerate(["6 plus 2 is 8.", "9.", "8"])]
    for iid, reward in zip(sampled, (1.0, 0.0, 0.5), strict=True):
        fb(iid, "rating", reward, source="verifier")
    cut = ask(app, "What is 7 plus 1?", "7 plus", finish="length")
    fb(cut, "thumbs", True)  # an unfinished answer is never imitated
    cut_fixed = ask(app, "What is 7 plus 2?", "7 plus", finish="cancelled")
    fb(cut_fixed, "correction", "7 plus 2 is 9.")
    client = ask(app, "What is 8 plus 1?", "huit plus un font neuf.", system=SYS + "\n\nAnswer in French.")
    fb(client, "thumbs", True)
    fb(down, "comment", "should say 5")

    ds = build_dataset(app, "adder", heldout=0)
    assert ds is not None and ds.version == "learn-0001" and ds.path == app.config.home / "datasets" / "adder" / "learn-0001"
    assert sorted(map(json.dumps, ds.records("sft"))) == sorted(map(json.dumps, [
        {"messages": chat("What is 1 plus 1?", "1 plus 1 is 2.")},
        {"messages": chat("What is 2 plus 2?", "2 plus 2 is  4.")},  # the newer of the two duplicates
        {"messages": chat("What is 3 plus 3?", "3 plus 3 is 6.")},
        {"messages": chat("What is 4 plus 1?", "4 plus 1 is 5.")},
        {"messages": chat("What is 6 plus 2?", "6 plus 2 is 8.")},
        {"messages": chat("What is 7 plus 2?", "7 plus 2 is 9.")},
        {"messages": [{"role": "system", "content": SYS + "\n\nAnswer in French."},
                      *chat("What is 8 plus 1?", "huit plus un font neuf.")]},  # a client's system message is kept
    ]))
    assert sorted(map(json.dumps, ds.records("dpo"))) == sorted(map(json.dumps, [
        {"messages": chat("What is 1 plus 1?", "1 plus 1 is 2."), "rejected": "1 plus 1 is 3."},
        {"messages": chat("What is 4 plus 1?", "4 plus 1 is 5."), "rejected": "4 plus 1 is 6."},
        {"messages": chat("What is 6 plus 2?", "6 plus 2 is 8."), "rejected": "9."},
        {"messages": chat("What is 7 plus 2?", "7 plus 2 is 9."), "rejected": "7 plus"},
    ]))
    assert sorted(map(json.dumps, ds.records("kto"))) == sorted(map(json.dumps, [
        {"messages": chat("What is 2 plus 2?", "2 plus 2 is  4."), "label": True},
        {"messages": chat("What is 2 plus 3?", "2 plus 3 is 6."), "label": False},
        {"messages": chat("What is 3 plus 3?", "3 plus 3 is 6."), "label": True},
        {"messages": chat("What is 5 plus 5?", "5 plus 5 is 10."), "label": False},
        {"messages": [{"role": "system", "content": SYS + "\n\nAnswer in French."},
                      *chat("What is 8 plus 1?", "huit plus un font neuf."), ], "label": True},
    ]))
    assert ds.records("sft", "heldout") == [] and (ds.path / "heldout.jsonl").read_text() == ""
    card = ds.card
    assert card["dropped"] == {"duplicate": 2, "neutral": 1, "superseded": 1, "unfinished": 1}
    assert card["records"]["train"] == {"sft": 7, "dpo": 4, "kto": 5}
    assert card["kto_labels"]["train"] == {"true": 3, "false": 2}
    assert card["feedback_kinds"] == {"comment": 1, "correction": 2, "preference": 1, "rating": 2, "reward": 3, "thumbs": 8}
    assert card["comments"] == [{"feedback": card["comments"][0]["feedback"], "interaction": up, "text": "right"},
                                {"feedback": card["comments"][1]["feedback"], "interaction": down, "text": "should say 5"}]
    assert card["objectives"] == ["sft", "dpo", "kto"] and card["objective_auto"] == "dpo"
    assert sorted(card["feedback"]) == sorted(f.id for f in app.store.feedback())
    assert set(card["interactions"]) == {i.id for i in app.store.list(limit=None)}  # every one got feedback
    assert generated_sets(app.config.home, "adder") == []  # `aeth train` never mixes learn data into a recipe's


def test_a_version_takes_only_feedback_no_earlier_version_used(app):
    first = ask(app, "What is 1 plus 2?", "1 plus 2 is 3.")
    app.feedback(first, "thumbs", True)
    assert build_dataset(app, "adder") is not None
    assert build_dataset(app, "adder") is None  # nothing new: nothing written
    assert [d.version for d in list_datasets(app.config.home, "adder")] == ["learn-0001"]

    app.feedback(first, "comment", "fine")  # a comment alone gives no record: it waits
    assert collect(app, "adder") is None and len(list_datasets(app.config.home, "adder")) == 1
    second = ask(app, "What is 2 plus 1?", "2 plus 1 is 3.")
    later = app.feedback(second, "correction", "2 plus 1 is three.")
    ds = build_dataset(app, "adder", heldout=0)
    assert ds.version == "learn-0002"
    newer = [f.id for f in app.store.feedback()][1:]
    assert sorted(ds.card["feedback"]) == sorted(newer) and later in ds.card["feedback"]
    assert ds.card["comments"][0]["text"] == "fine"
    assert ds.records("sft") == [{"messages": chat("What is 2 plus 1?", "2 plus 1 is three.")}]
    old = load(app.config.home, "adder", "1")
    assert set(old.feedback_ids).isdisjoint(ds.feedback_ids)
    assert load(app.config.home, "adder").version == "learn-0002" == load(app.config.home, "adder", "learn-0002").version
    with pytest.raises(DatasetError, match="no learn dataset 7 of 'adder'.*learn-0001, learn-0002"):
        load(app.config.home, "adder", "7")
    assert build_dataset(app, "adder") is None


def test_the_held_out_share_is_by_prompt_and_stays_put_across_versions(sqlite_app):
    app = sqlite_app
    # two prompts whose hashes would both train: one is held out anyway, and stays held out later
    pair = [p for p in (f"Add {n} and {n}." for n in range(50))
            if learn._bucket(prompt_key([{"role": "user", "content": p}])) >= 0.2][:2]
    for p in pair:
        app.feedback(ask(app, p, "some answer"), "thumbs", True)
    first = build_dataset(app, "adder")
    forced = {r["messages"][0]["content"] for r in first.records("sft", "heldout")}
    assert len(forced) == 1 and {r["messages"][0]["content"] for r in first.records("sft")} == set(pair) - forced

    prompts = [f"What is {a} plus {b}?" for a in range(1, 7) for b in range(1, 6)]  # 30 prompts
    for k, p in enumerate(prompts + pair):
        app.feedback(ask(app, p, f"answer {k}"), "thumbs", True)
    ds = build_dataset(app, "adder")
    assert {r["messages"][0]["content"] for r in ds.records("sft", "heldout")} & set(pair) == forced
    assert {r["messages"][0]["content"] for r in ds.records("sft")} & set(pair) == set(pair) - forced
    prompts = prompts + pair
    held = {r["messages"][0]["content"] for r in ds.records("sft", "heldout")}
    train = {r["messages"][0]["content"] for r in ds.records("sft")}
    assert held and train and held.isdisjoint(train) and held | train == set(prompts)
    assert len({r["messages"][0]["content"] for r in ds.records("kto", "heldout")}) == len(held)
    assert 1 <= len(held) <= 15  # about a fifth of 30 (by hash)
    assert ds.card["records"]["heldout"] == {"sft": len(held), "dpo": 0, "kto": len(held)}
    assert all(r["objective"] in ("sft", "kto") for r in learn._read_jsonl(ds.path / "heldout.jsonl"))

    # the same prompts again, with other answers, and new ones: old prompts keep their side
    for k, p in enumerate(prompts + ["What is 9 plus 9?", "What is 9 plus 8?"]):
        app.feedback(ask(app, p, f"another answer {k}"), "thumbs", True)
    again = build_dataset(app, "adder")
    held2 = {r["messages"][0]["content"] for r in again.records("sft", "heldout")}
    train2 = {r["messages"][0]["content"] for r in again.records("sft")}
    assert held2 & set(prompts) == held and train2 & set(prompts) == train


def test_split_heldout_is_deterministic_and_keeps_earlier_sides():
    keys = [prompt_key([{"role": "user", "content": f"question {i}"}]) for i in range(200)]
    held = split_heldout(keys, 0.2)
    assert held == split_heldout(list(reversed(keys)), 0.2) and 20 <= len(held) <= 60
    assert split_heldout(keys, 0) == set()
    two = keys[:2]
    forced = split_heldout(two, 0.2)
    assert len(forced) == 1  # at least one held out once there are two prompts
    assert split_heldout(two, 0.99) != set(two)  # and at least one trains
    assert split_heldout(keys[:1], 0.2) <= set(keys[:1])
    pinned = {k: "train" for k in held} | {k: "heldout" for k in keys[:5] if k not in held}
    moved = split_heldout(keys, 0.2, pinned)
    assert moved.isdisjoint(held) and set(keys[:5]) - held <= moved


def test_the_card_and_files(sqlite_app):
    app = sqlite_app
    a = ask(app, "What is 1 plus 3?", "1 plus 3 is 5.")
    b = ask(app, "What is 1 plus 3?", "1 plus 3 is 4.", choice=1)
    c = ask(app, "What is 2 plus 5?", "2 plus 5 is 7.")
    app.feedback(a, "preference", {"chosen": b, "rejected": a})
    app.feedback(c, "rating", 4)
    ds = build_dataset(app, "adder", heldout=0.2, min_reward=0.8)
    card = json.loads((ds.path / "card.json").read_text())
    assert card == ds.card
    assert (card["specialist"], card["version"], card["format"]) == ("adder", "learn-0001", "aeth-learn-dataset/1")
    assert card["settings"] == {"heldout": 0.2, "min_reward": 0.8} and card["aeth_version"]
    assert datetime.fromisoformat(card["created"]).tzinfo is not None
    assert sorted(card["interactions"]) == sorted([a, b, c])
    assert len(card["prompts"]["train"]) == len(card["prompts"]["heldout"]) == 1  # two prompts: one held out
    files = ["dpo.jsonl", "heldout.jsonl", "kto.jsonl", "sft.jsonl"]
    assert card["sha256"] == hashlib.sha256("".join((ds.path / f).read_text() for f in files).encode()).hexdigest()
    assert sorted(p.name for p in ds.path.iterdir()) == ["README.md", "card.json", *files]
    assert set(card["files"]) == set(files)
    readme = (ds.path / "README.md").read_text()
    assert "# adder learn-0001" in readme and "| DPO |" in readme and "never trained on" in readme
    assert [p.name for p in ds.path.parent.iterdir()] == ["learn-0001"]  # no temporary directory left
    with pytest.raises(SpecialistError, match="unknown specialist 'adderr'"):
        build_dataset(app, "adderr")
    with pytest.raises(DatasetError, match="held-out share"):
        build_dataset(app, "adder", heldout=1.0)


def test_a_failed_write_leaves_nothing(sqlite_app, monkeypatch):
    app = sqlite_app
    app.feedback(ask(app, "What is 1 plus 4?", "1 plus 4 is 5."), "thumbs", True)

    def crash(path):
        raise OSError("disk full")

    monkeypatch.setattr("aeth.atomic.fsync_tree", crash)
    with pytest.raises(OSError, match="disk full"):
        build_dataset(app, "adder")
    assert list((app.config.home / "datasets" / "adder").iterdir()) == []
    monkeypatch.undo()
    assert build_dataset(app, "adder").version == "learn-0001"  # the feedback was not consumed


@pytest.mark.parametrize("train, labels, supported, auto", [
    ({"sft": 3, "dpo": 1, "kto": 2}, {"true": 1, "false": 1}, ["sft", "dpo", "kto"], "dpo"),
    ({"sft": 3, "dpo": 0, "kto": 4}, {"true": 3, "false": 1}, ["sft", "kto"], "kto"),
    ({"sft": 3, "dpo": 0, "kto": 3}, {"true": 3, "false": 0}, ["sft"], "sft"),
    ({"sft": 0, "dpo": 0, "kto": 2}, {"true": 0, "false": 2}, [], None),
])
def test_objective_auto_prefers_pairs_then_both_signed_labels_then_sft(train, labels, supported, auto):
    card = {"records": {"train": train}, "kto_labels": {"train": labels}}
    assert objectives_supported(card) == supported and choose_objective(card) == auto


def test_learning_imports_no_model_stack():
    probe = ("import sys, aeth.learning.dataset, aeth.learning.feedback\n"
             "print(sorted(m for m in ('torch', 'transformers', 'peft', 'sqlalchemy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=dict(os.environ), timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
