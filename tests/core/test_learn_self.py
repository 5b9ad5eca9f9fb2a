"""``aeth learn --self``: sample k answers per practice prompt with the active version, score them
with the verifier, train on the accepted ones (SFT) and best-vs-worst pairs (DPO). On the tiny
model, whose answers are noise: the verifier accepts an answer holding a digit, which some of its
answers do and some do not."""

import json
import re
import time
from dataclasses import replace

import pytest
from click.testing import CliRunner

from aeth import EvalCase, EvalSuite, Request, SpecialistError, hookimpl
from aeth.app import Aeth
from aeth.cli import cli
from aeth.config import load_config
from aeth.generation.sampling import eval_sampling
from aeth.learning.dataset import list_datasets
from aeth.learning.practice import sample_seed, self_dataset, self_draft
from aeth.learning.run import LEARN_JSON, learn_runs
from aeth.models.adapters import AdapterStore
from aeth.request import GenerationContext
from aeth.specialist import GenerationDefaults
from aeth.testing import adder_specialist

pytest.importorskip("peft")

SMALL = dict(prompts=6, k=3, temperature=0.8, seed=0)
FAST = ["--max-steps", "2", "--batch-size", "2", "--seq-len", "48", "--gate-limit", "1"]


def practice(n, seed):
    """Sums to answer; the verifier does not need the sum (it only looks for a digit)."""
    return [Request(prompt=f"What is {(seed + i) % 8 + 1} plus {i % 5 + 1}?", metadata={"verify": {"digit": True}})
            for i in range(n)]


def has_digit(request, answer):
    return 1.0 if re.search(r"\d", answer) else 0.0


@pytest.fixture
def app(aeth_home, register_plugin, tiny_model_dir):
    """``practiser`` (practice + verifier, short answers) and ``plain`` (neither) on the tiny model."""
    base = replace(adder_specialist("practiser"), base_model=str(tiny_model_dir),
                   generation=GenerationDefaults(max_tokens=10),
                   suite=EvalSuite("flat", "1", lambda: [EvalCase("c0", "What is 1 plus 1?")], lambda c, a: 1.0,
                                   max_tokens=3))
    spec = replace(base, practice=practice, verifier=has_digit)
    plain = replace(base, name="plain")

    class Plugin:
        @hookimpl
        def register_specialists(self, register):
            register(spec)
            register(plain)

    register_plugin(Plugin(), "learn-self-test")
    application = Aeth(load_config(["model.dtype=float32", "model.threads=1"]))
    yield application
    application.close()


def resample(app, spec, prompts, k, temperature, seed):
    """The answers self-practice samples, regenerated one by one through the generate hook."""
    out = []
    for j, request in enumerate(spec.practice(prompts, seed)):
        for i in range(k):
            context = GenerationContext(app, eval_sampling(spec, temperature, spec.generation.max_tokens,
                                                           sample_seed(seed, j, i, k)))
            out.append((request.prompt, "".join(app.hook.generate(specialist=spec, request=request,
                                                                 context=context)).strip()))
    return out


def test_self_dataset_keeps_what_the_verifier_accepts_and_repeats_with_a_seed(app):
    spec = app.specialist("practiser")
    samples = resample(app, spec, **SMALL)
    rewards = [has_digit(None, answer) for _, answer in samples]
    assert 0 < sum(rewards) < len(rewards)  # the rule gives both accepted and rejected answers here

    ds = self_dataset(app, "practiser", imitate_cut=True, progress=False, **SMALL)
    card = ds.card
    p = card["practice"]
    assert card["source"] == "self-practice" and p["samples"] == len(samples) == 18
    assert p["accepted"] == sum(rewards) and p["acceptance_rate"] == pytest.approx(sum(rewards) / len(samples))
    assert p["mean_reward"] == pytest.approx(sum(rewards) / len(samples)) and p["adapter"] is None
    assert (p["prompts"], p["k"], p["temperature"], p["seed"]) == (6, 3, 0.8, 0)
    # SFT: each distinct accepted answer once; DPO: one pair per prompt whose answers differ in reward
    sft = ds.records("sft") + ds.records("sft", "heldout")
    accepted = {(q, a) for (q, a), r in zip(samples, rewards, strict=True) if r == 1.0}
    assert {(r["messages"][0]["content"], r["messages"][-1]["content"]) for r in sft} == accepted
    mixed = {q for q, _ in samples if len({r for (q2, _), r in zip(samples, rewards, strict=True) if q2 == q}) == 2}
    dpo = ds.records("dpo") + ds.records("dpo", "heldout")
    assert {r["messages"][0]["content"] for r in dpo} == mixed
    assert all(has_digit(None, r["messages"][-1]["content"]) == 1.0 and has_digit(None, r["rejected"]) == 0.0 for r in dpo)
    assert card["records"]["heldout"]["sft"] + card["records"]["heldout"]["dpo"] > 0  # a held-out share, by prompt
    assert card["objective_auto"] == "dpo" and "self-practice" in (ds.path / "README.md").read_text()

    again = self_dataset(app, "practiser", imitate_cut=True, progress=False, **SMALL)
    assert again.version == "learn-0002" and again.card["sha256"] == card["sha256"]  # same seed: same dataset
    other = self_draft(app, "practiser", imitate_cut=True, progress=False, **{**SMALL, "seed": 1})
    assert other.card["practice"]["seed"] == 1 and other.train != {k: ds.records(k) for k in ("sft", "dpo", "kto")}


def test_answers_cut_at_the_length_limit_are_not_imitated(app):
    # the tiny model never stops by itself within 10 tokens: every accepted answer is cut
    draft = self_draft(app, "practiser", progress=False, **SMALL)
    p = draft.card["practice"]
    assert p["cut"] == p["samples"] and p["accepted"] > 0
    assert draft.card["dropped"] == {"unfinished": p["accepted"]} and draft.card["objectives"] == []
    assert self_dataset(app, "practiser", progress=False, **SMALL) is None and list_datasets(app.config.home, "practiser") == []
    out = CliRunner().invoke(cli, ["-o", "model.dtype=float32", "-o", "model.threads=1", "learn", "practiser", "--self",
                                   "--prompts", "6", "--k", "3", *FAST])
    assert out.exit_code == 0, out.output
    assert "accepted answers were cut at the length limit" in out.output and "--imitate-cut" in out.output


def test_learn_self_ends_in_a_version_whose_manifest_names_the_self_practice_dataset(app, aeth_home):
    out = CliRunner().invoke(cli, ["-o", "model.dtype=float32", "-o", "model.threads=1", "learn", "practiser", "--self",
                                   "--prompts", "6", "--k", "3", "--imitate-cut", *FAST])
    assert out.exit_code == 0, out.output
    assert "dataset learn-0001: self-practice" in out.output and "objective dpo (auto)" in out.output
    version = AdapterStore(aeth_home).versions("practiser")[-1]
    learning = version.manifest["learning"]
    assert learning["source"] == "self-practice" and learning["dataset"] == "learn-0001"
    assert learning["practice"]["k"] == 3 and learning["feedback"] == []
    assert list_datasets(aeth_home, "practiser")[0].card["source"] == "self-practice"
    run = json.loads((learn_runs(aeth_home, "practiser")[-1] / LEARN_JSON).read_text())
    assert run["source"] == "self-practice" and run["outcome"]["version"] == version.version


def test_a_specialist_without_practice_gets_a_clear_error(app):
    with pytest.raises(SpecialistError, match="declares no practice and no verifier"):
        self_draft(app, "plain", progress=False)
    out = CliRunner().invoke(cli, ["learn", "plain", "--self"])
    assert out.exit_code != 0 and "Specialist(practice=..., verifier=...)" in out.output


def test_watch_self_practises_when_its_hours_pass_and_refuses_a_specialist_that_cannot(app, aeth_home, monkeypatch):
    from aeth.learning import watch

    monkeypatch.setattr(watch, "lower_priority", lambda nice=watch.NICE: nice)  # never renice pytest itself

    def once(*overrides):
        return CliRunner().invoke(cli, ["-o", "model.dtype=float32", "-o", "model.threads=1", *overrides, "learn", "--once",
                                        "practiser", "--self", "--prompts", "4", "--k", "2", "--imitate-cut", *FAST])

    first = once()  # named: without names every specialist that can practise would, the real coding and reasoning too
    assert first.exit_code == 0, first.output
    assert "self-practice when learn.every_hours passes with no feedback waiting: practiser" in first.output
    assert "practiser: learning: self-practice: it never learnt" in first.output
    assert [d.card["source"] for d in list_datasets(aeth_home, "practiser")] == ["self-practice"]
    again = once()
    assert again.exit_code == 0, again.output
    assert "practiser: not due: next after 50 more feedback rows or self-practice at " in again.output
    assert len(learn_runs(aeth_home, "practiser")) == 1
    time.sleep(1)  # learn.json keeps whole seconds
    hourly = once("-o", "learn.every_hours=0.0001")  # 0.36 s since the last learn ended: due again
    assert "practiser: learning: self-practice: 0.0001 h since its last learn ended" in hourly.output, hourly.output
    assert len(learn_runs(aeth_home, "practiser")) == 2
    refused = CliRunner().invoke(cli, ["learn", "--once", "--self", "plain"])
    assert refused.exit_code == 2 and "--self needs practice prompts and a verifier, which plain" in refused.output
