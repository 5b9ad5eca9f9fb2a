"""The sampling sweep: cases split stably into tune and check halves, every candidate's settings
reach the generator, the best tune score wins (ties to the calmer setting), and the check half
reports the winner beside the current defaults; `aeth eval --sweep` prints it. Also general's
everyday-facts suite, which the sweep chooses general's defaults by."""

import json

import pytest
from click.testing import CliRunner

from aeth import EvalCase, EvalSuite, Specialist, hookimpl
from aeth.app import Aeth
from aeth.cli import cli
from aeth.default_plugins.general_facts import build_suite, score_answer
from aeth.evals.sweep import GRID, Candidate, Row, choose, from_dict, markdown, sign_test, split, sweep
from aeth.specialist import GenerationDefaults

CASES = [EvalCase(f"case-{i}", f"question {i}", None, group="g1" if i % 2 else "g2") for i in range(24)]


class Thermometer:
    """A specialist whose own generator says how it was asked to sample: "hot" above temperature
    0.5, "cold" otherwise, "penalised" with a repetition penalty; every Sampling is kept."""

    def __init__(self):
        self.seen = []

    @hookimpl(tryfirst=True)
    def generate(self, specialist, request, context):
        if specialist.name != "thermo":
            return None
        s = context.sampling
        self.seen.append(s)
        word = "hot" if s.temperature > 0.5 else "cold"
        return iter([word + (" penalised" if s.repetition_penalty != 1.0 else "")])

    @hookimpl
    def register_specialists(self, register):
        suite = EvalSuite(name="thermo", version="1", cases=lambda: CASES, max_tokens=5,
                          score=lambda case, answer: float(answer == "hot"))
        register(Specialist(name="thermo", description="says how hot it was asked to be", suite=suite,
                            system_prompt="Say how hot.",
                            generation=GenerationDefaults(temperature=0.3, top_p=0.9, repetition_penalty=1.1)))


@pytest.fixture
def thermo(register_plugin, aeth_home):
    plugin = Thermometer()
    register_plugin(plugin, "thermo-plugin")
    return plugin


def test_split_is_stable_disjoint_and_covers_every_case():
    tune, check = split(CASES)
    again = split(list(reversed(CASES)))
    assert {c.id for c in tune} == {c.id for c in again[0]} and {c.id for c in check} == {c.id for c in again[1]}
    assert not {c.id for c in tune} & {c.id for c in check}
    assert len(tune) + len(check) == len(CASES) and tune and check


def test_sign_test_matches_the_binomial_tail():
    assert sign_test([1, 1, 1, 1, 1, 1], [0] * 6) == pytest.approx(2 / 64)
    assert sign_test([1, 0, 0.5], [0, 1, 0.5]) == 1.0 and sign_test([0.5], [0.5]) == 1.0
    assert sign_test([1] * 9 + [0], [0] * 9 + [1]) == pytest.approx(2 * 11 / 1024)


def test_choose_keeps_greedy_unless_sampling_is_significantly_better():
    def row(t, rp, cases):
        return Row(Candidate(t, 0.9 if t else 1.0, rp), sum(cases) / len(cases), len(cases), 1.0, cases=cases)

    greedy = row(0.0, 1.0, [1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    slightly = row(0.7, 1.0, [1, 1, 1, 0, 0, 0, 0, 0, 0, 0])  # two more right: p = 0.5
    assert choose([greedy, slightly, row(0.0, 1.1, [1] + [0] * 9)]) == (Candidate(0.0, 1.0, 1.0), pytest.approx(0.5))
    clearly = row(0.3, 1.0, [1] * 8 + [0, 0])  # 7 more right, none worse: p = 2/128
    assert choose([greedy, slightly, clearly]) == (Candidate(0.3, 0.9, 1.0), pytest.approx(2 / 128))
    tie = row(0.3, 1.1, [1] * 8 + [0, 0])  # same score: the penalty nearer 1 wins
    assert choose([greedy, tie, clearly])[0] == Candidate(0.3, 0.9, 1.0)
    assert choose([slightly]) == (Candidate(0.7, 0.9, 1.0), None)


def test_sweep_gives_each_candidate_its_settings_and_reports_winner_and_current_on_check(thermo):
    app = Aeth()
    result = sweep(app, app.specialist("thermo"), samples=2, limit=8)
    labels = [row.candidate.label for row in result.rows]
    assert len(labels) == len(set(labels)) == len(GRID)  # the current defaults (0.3, 0.9, 1.1) are in the grid
    assert [r.current for r in result.rows].count(True) == 1
    hot = [r for r in result.rows if r.candidate.temperature > 0.5]
    assert all(r.score == (0.0 if r.candidate.repetition_penalty != 1.0 else 1.0) for r in hot)
    assert all(r.score == 0.0 for r in result.rows if r.candidate.temperature <= 0.5)
    assert result.chosen == Candidate(0.7, 0.9, 1.0) and result.current == Candidate(0.3, 0.9, 1.1)
    assert (result.check_chosen, result.check_current) == (1.0, 0.0)
    assert result.tune_cases == result.check_cases == 8 and result.sampled_vs_greedy_p == pytest.approx(2 / 2 ** 8)
    # greedy: one answer a case; sampling: `samples` seeded answers a case, seeds 0 and 1
    greedy = [s for s in thermo.seen if s.temperature == 0]
    assert len(greedy) == 2 * 8 and {s.repetition_penalty for s in greedy} == {1.0, 1.1}
    sampled = [s for s in thermo.seen if s.temperature == 0.7 and s.repetition_penalty == 1.0]
    assert len(sampled) == 2 * 8 + 2 * 8 and {s.seed for s in sampled} == {0, 1}  # tune, then check
    assert all(s.top_p == 0.9 for s in sampled)
    assert from_dict(json.loads(json.dumps(result.to_dict()))).to_dict() == result.to_dict()
    table = markdown([result])
    assert "| thermo | T 0.7, top-p 0.9, rp 1 | T 0.3, top-p 0.9, rp 1.1 | 1.000 | 0.000 | 8/8 | 0.01 |" in table


def test_eval_sweep_command_prints_the_choice_and_how_to_use_it(thermo):
    runner = CliRunner()
    done = runner.invoke(cli, ["eval", "thermo", "--sweep", "--limit", "8", "--samples", "1"], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    assert "chosen T 0.7, top-p 0.9, rp 1: 1.000 on 8 check cases; current defaults T 0.3, top-p 0.9, rp 1.1: 0.000" in done.stdout
    assert "GenerationDefaults(temperature=0.7, top_p=0.9, repetition_penalty=1)" in done.stdout
    data = json.loads(runner.invoke(cli, ["eval", "thermo", "--sweep", "--limit", "3", "--json"]).stdout)
    assert data["chosen"]["label"] == "greedy, rp 1" and data["samples"] == 3  # 3 cases cannot make sampling significant
    assert data["sampled_vs_greedy_p"] == pytest.approx(2 / 2 ** 3)
    bad = runner.invoke(cli, ["eval", "thermo", "--sweep", "--temperature", "0.5"])
    assert bad.exit_code == 2 and "--sweep tries its own settings" in bad.output


def test_a_configured_repetition_penalty_overrides_the_specialists(thermo):
    from aeth.config import load_config
    from aeth.request import Request

    app = Aeth(load_config(["generation.repetition_penalty=1.3"]))
    assert app.sampling(app.specialist("thermo"), Request(prompt="x")).repetition_penalty == 1.3
    assert Aeth().sampling(app.specialist("thermo"), Request(prompt="x")).repetition_penalty == 1.1


def test_everyday_facts_score_whole_words_and_stay_apart_from_routing_prompts():
    from aeth.datasets import read_prompts
    from aeth.default_plugins.general import DATA

    assert score_answer("The capital of Italy is Rome.", ("Rome",)) == 1.0
    assert score_answer("Romeo and Juliet", ("Rome",)) == 0.0
    assert score_answer("It has 6 legs.", ("6", "six")) == 1.0 and score_answer("It has 16 legs.", ("6", "six")) == 0.0
    suite = build_suite()
    cases = list(suite.cases())
    assert len(cases) == 80 and len({c.id for c in cases}) == 80 and all(c.reference for c in cases)
    routing = {p.lower() for f in ("general_examples.txt", "general_heldout.txt") for p in read_prompts(DATA / f)}
    assert not routing & {c.prompt.lower() for c in cases}
    assert "What is the capital of France?".lower() not in {c.prompt.lower() for c in cases}  # the Quickstart's
