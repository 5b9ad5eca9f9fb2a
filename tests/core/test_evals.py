"""The eval framework: pass@k, the runner, saved reports, comparisons and `aeth eval` on the tiny model."""

import itertools
import json
from math import comb

import pytest
from click.testing import CliRunner

from aeth import EvalCase, EvalSuite, Specialist, hookimpl
from aeth.cli import cli
from aeth.errors import AethError, PluginError, SpecialistError
from aeth.evals import store
from aeth.evals.overlap import find_overlaps
from aeth.evals.runner import limited, pass_at_k, run_suite, summarise

SPEC = Specialist(name="quiz", description="answers quizzes")


def brute_pass_at_k(n, c, k):
    """Probability that a random k-subset of n samples holds at least one of the c correct ones."""
    samples = [1] * c + [0] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n,c,k", [(5, 0, 1), (5, 2, 1), (5, 2, 3), (6, 1, 5), (10, 3, 4), (4, 4, 2)])
def test_pass_at_k_is_the_unbiased_estimate(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(n, c, k))
    assert pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k))


def test_pass_at_k_rejects_impossible_counts():
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 5)


def suite(**kw):
    cases = [EvalCase("a1", "2+2", "4", group="arith"), EvalCase("a2", "3+3", "6", group="arith"),
             EvalCase("c1", "capital of France", "Paris", group="geo"), EvalCase("a3", "1+1", "2", group="arith")]
    kw.setdefault("score", lambda case, answer: float(answer.strip() == case.reference))
    return EvalSuite(name="quiz", version="2", cases=lambda: cases, **kw)


def test_limit_takes_cases_round_robin_from_groups():
    assert [c.id for c in limited(suite(), 3).cases()] == ["a1", "c1", "a2"]
    assert [c.id for c in limited(suite(), 10).cases()] == ["a1", "c1", "a2", "a3"]
    assert limited(suite(), None).cases is not None


def test_runner_scores_groups_and_samples():
    answers = {"2+2": "4", "3+3": "7", "capital of France": "Paris", "1+1": "2"}
    calls = []

    def model(prompt, sample=0):
        calls.append((prompt, sample))
        return answers[prompt] if sample == 0 else "wrong"  # only the first sample is right

    report = run_suite(SPEC, suite(samples=3, pass_at=(1, 2, 5)), model)
    assert report.n == 4 and len(calls) == 12
    assert {s for _, s in calls} == {0, 1, 2}
    assert report.groups == {"arith": {"score": pytest.approx(2 / 9), "n": 3, "errors": 0},
                             "geo": {"score": pytest.approx(1 / 3), "n": 1, "errors": 0}}
    assert report.score == pytest.approx(3 / 12)
    # three of four cases have one right answer in three samples: pass@1 = 1/3, pass@2 = 2/3 each
    assert report.pass_at_k == {"pass@1": pytest.approx(0.75 / 3), "pass@2": pytest.approx(0.75 * 2 / 3)}


def test_runner_passes_images_and_case_lengths_only_when_set():
    seen = []
    cases = [EvalCase("x", "look", images=("cat.png",), max_tokens=7), EvalCase("y", "read")]

    def model(prompt, **options):
        seen.append(options)
        return ""

    run_suite(SPEC, EvalSuite("s", "1", lambda: cases, lambda c, a: 0.0), model)
    assert seen == [{"images": ("cat.png",), "max_tokens": 7}, {}]


def test_a_case_the_model_cannot_answer_scores_zero_and_the_rest_still_runs():
    def model(prompt):
        if prompt == "capital of France":
            raise SpecialistError("this case needs a model that is not installed")
        return {"2+2": "4", "3+3": "6", "1+1": "2"}[prompt]

    report = run_suite(SPEC, suite(), model)
    assert report.groups["arith"] == {"score": 1.0, "n": 3, "errors": 0}
    assert report.groups["geo"] == {"score": 0.0, "n": 1, "errors": 1}
    failed = [c for c in report.cases if c.errors]
    assert [c.id for c in failed] == ["c1"] and "not installed" in failed[0].errors[0]
    with pytest.raises(SpecialistError, match="not installed"):  # nothing answerable: the error itself
        run_suite(SPEC, suite(), lambda p: model("capital of France"))


def test_bad_scores_and_duplicate_ids_are_plugin_errors():
    with pytest.raises(PluginError, match="scored case 'a1' 2.0"):
        run_suite(SPEC, suite(score=lambda c, a: 2.0), lambda p: "")
    dup = EvalSuite("s", "1", lambda: [EvalCase("x", "p"), EvalCase("x", "q")], lambda c, a: 0.0)
    with pytest.raises(PluginError, match="duplicate case ids"):
        run_suite(SPEC, dup, lambda p: "")


def report_with(scores, run_id):
    results = []
    from aeth.evals.runner import CaseResult

    for i, s in enumerate(scores):
        results.append(CaseResult(f"c{i}", f"p{i}", ["a"], [s], "g"))
    report = summarise("quiz", suite(), results, 1.0, 1)
    report.meta["run_id"] = run_id
    return report


def test_reports_are_saved_listed_loaded_and_compared(tmp_path):
    a = store.save(report_with([0, 0, 1, 0, 0, 1], "20260101T000000Z-quiz-aaaaaa"), tmp_path)
    store.save(report_with([1, 1, 1, 1, 0, 1], "20260102T000000Z-quiz-bbbbbb"), tmp_path)
    assert [p.stem for p in store.saved(tmp_path)] == ["20260101T000000Z-quiz-aaaaaa", "20260102T000000Z-quiz-bbbbbb"]
    assert a.parent == tmp_path / "evals" / "quiz"
    loaded = store.load("20260101", tmp_path)
    assert [c.score for c in loaded.cases] == [0, 0, 1, 0, 0, 1]
    assert store.load(str(a), tmp_path).score == pytest.approx(2 / 6)
    with pytest.raises(AethError, match="names 2 saved reports"):
        store.load("2026010", tmp_path)
    with pytest.raises(AethError, match="no saved eval report"):
        store.load("1999", tmp_path)
    cmp = store.compare(loaded, store.load("20260102", tmp_path))
    assert (cmp.common, cmp.better, cmp.worse) == (6, 3, 0)
    assert cmp.p_value == pytest.approx(0.25)  # 3 wins, 0 losses: 2 * (1/2)^3
    rows = {group: (sa, sb) for group, sa, sb in cmp.rows}
    assert rows["overall"] == (pytest.approx(2 / 6), pytest.approx(5 / 6))
    assert rows["g"] == rows["overall"]


def test_sign_test_values():
    assert store.sign_test(0, 0) == 1.0
    assert store.sign_test(5, 5) == 1.0
    assert store.sign_test(10, 0) == pytest.approx(2 / 1024)


def test_overlap_finds_shared_runs_and_whole_short_items():
    bench = ["The quick brown fox jumps over the lazy dog while the cat sleeps in the warm sun today.",
             "Name the capital city of Australia please"]
    train = ["Unrelated text about cooking pasta.",
             "As an exercise: the QUICK brown fox jumps over the lazy dog, while the cat sleeps in the warm sun!",
             "Q: name the capital city of australia please? A: Canberra."]
    found = find_overlaps(train, bench, n=13)
    assert [(o.train, o.item) for o in found] == [(1, 0), (2, 1)]
    assert find_overlaps(["completely different"], bench) == []


# ---- aeth eval on the tiny model ---------------------------------------------------------------


@pytest.fixture
def quiz_plugin(register_plugin, tiny_model_dir):
    class Quiz:
        @hookimpl
        def register_specialists(self, register):
            register(Specialist(name="quiz", description="answers quizzes", base_model=str(tiny_model_dir),
                                suite=suite(max_tokens=4)))

    register_plugin(Quiz(), "quiz-plugin")


def test_eval_command_runs_saves_lists_and_compares(aeth_home, quiz_plugin):
    runner = CliRunner()
    first = runner.invoke(cli, ["eval", "quiz", "--limit", "3"], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert "quiz: quiz 2" in first.stdout and "arith" in first.stdout and "geo" in first.stdout
    second = runner.invoke(cli, ["eval", "quiz", "--json"], catch_exceptions=False)
    data = json.loads(second.stdout)
    assert data["n"] == 4 and data["meta"]["model"]["name"] == data["meta"]["base_model"]
    assert data["meta"]["settings"] == {"limit": None, "samples": 1, "temperature": 0.0, "max_tokens": 4, "seed": 0}
    assert data["meta"]["adapter"] is None and data["suite_version"] == "2"
    runs = json.loads(runner.invoke(cli, ["eval", "--list", "--json"]).stdout)
    assert len(runs) == 2 and {r["cases"] for r in runs} == {3, 4}
    compared = runner.invoke(cli, ["eval", "--compare", runs[0]["run_id"], runs[1]["run_id"]])
    assert compared.exit_code == 0, compared.output
    assert "on the 3 cases both ran" in compared.stdout


def test_eval_command_errors(aeth_home, quiz_plugin, register_plugin):
    class Chat:
        @hookimpl
        def register_specialists(self, register):
            register(Specialist(name="chat", description="chats", system_prompt="Chat."))

    register_plugin(Chat(), "chat-plugin")
    runner = CliRunner()
    bad = runner.invoke(cli, ["eval", "quizz"])
    assert bad.exit_code == 1 and "Did you mean 'quiz'" in bad.output
    same = runner.invoke(cli, ["eval", "quiz", "--samples", "3"])
    assert same.exit_code == 2 and "pass --temperature" in same.output
    none = runner.invoke(cli, ["eval"])
    assert none.exit_code == 2 and "name a specialist" in none.output
    nosuite = runner.invoke(cli, ["eval", "chat"])
    assert nosuite.exit_code == 1 and "has no eval suite" in nosuite.output


def test_a_report_records_the_adapter_that_answered_and_base_says_it_drops_it(aeth_home, quiz_plugin, tiny_model_dir):
    import peft
    from transformers import AutoModelForCausalLM

    from aeth.models.adapters import AdapterStore

    lora = aeth_home.parent / "lora"
    peft.get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                        peft.LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"])).save_pretrained(lora)
    store = AdapterStore(aeth_home)
    version = store.add("quiz", lora, {"base_model": str(tiny_model_dir)})
    store.activate("quiz", version.version)
    runner = CliRunner()
    served = runner.invoke(cli, ["eval", "quiz", "--limit", "2", "--json", "--no-save"], catch_exceptions=False)
    assert json.loads(served.stdout)["meta"]["adapter"] == version.version
    shown = runner.invoke(cli, ["eval", "quiz", "--limit", "2", "--no-save"], catch_exceptions=False)
    assert f"adapter {version.version}" in " ".join(shown.stdout.split())  # rich may wrap the line
    bare = runner.invoke(cli, ["eval", "quiz", "--limit", "2", "--json", "--no-save", "--base", str(tiny_model_dir)],
                         catch_exceptions=False)
    assert json.loads(bare.stdout)["meta"]["adapter"] is None
    assert f"evaluating the bare model, without quiz's adapter {version.version}" in bare.stderr


def test_a_suite_without_groups_prints_its_name_not_empty_parentheses(aeth_home, register_plugin, tiny_model_dir):
    class Flat:
        @hookimpl
        def register_specialists(self, register):
            cases = [EvalCase("x1", "2+2", "4"), EvalCase("x2", "3+3", "6")]
            register(Specialist(name="flat", description="one benchmark", base_model=str(tiny_model_dir),
                                suite=EvalSuite(name="sums", version="1", cases=lambda: cases, max_tokens=2,
                                                score=lambda case, answer: 0.0)))

    register_plugin(Flat(), "flat-plugin")
    out = CliRunner().invoke(cli, ["eval", "flat", "--no-save", "--show", "2"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "()" not in out.stdout
    assert any(line.split()[:2] == ["sums", "2"] for line in out.stdout.splitlines()), out.stdout
    assert "x1 score 0.00" in out.stdout
