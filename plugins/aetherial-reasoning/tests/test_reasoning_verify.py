"""The reasoning verifier: real reasoning-gym problems judged by their own scorer, through the
eval's extraction; practice problems generated from seeds the eval never uses."""

import json

import pytest

from aeth import Request
from aetherial_reasoning.evals import GYM_TASKS, gym_items, suite_cases
from aetherial_reasoning.recipe import practice
from aetherial_reasoning.specialist import build_specialist
from aetherial_reasoning.verify import verify


def right_answer(entry: dict) -> str:
    return f"Let me work through it step by step.\n\nAnswer: {entry['answer']}"


def wrong_answer(dataset: str, entry: dict) -> str:
    if dataset == "syllogism":
        return "Answer: " + ("No" if entry["answer"] == "Yes" else "Yes")
    if dataset == "knights_knaves":  # everyone's role swapped
        terms = entry["metadata"]["knight_knave_terms"]
        knight, knave = str(terms["knight"]), str(terms["knave"])
        swapped = entry["answer"].replace(knight, "\0").replace(knave, knight).replace("\0", knave)
        return f"Answer: {swapped}"
    if dataset == "zebra_puzzles":
        return "Answer: nobody"
    return "Answer: 999999"  # gsm_symbolic


@pytest.fixture(scope="module")
def problems():
    return practice(8, seed=3)  # two of each task


def test_practice_covers_every_task_with_json_metadata(problems):
    datasets = [r.metadata["verify"]["reasoning_gym"]["dataset"] for r in problems]
    assert datasets == list(GYM_TASKS) * 2
    for r in problems:
        assert json.loads(json.dumps(r.metadata)) == r.metadata  # what the interaction log keeps
        assert r.specialist == "reasoning" and r.max_tokens == GYM_TASKS[r.metadata["verify"]["reasoning_gym"]["dataset"]].max_tokens


def test_a_right_final_answer_scores_one_and_a_wrong_one_zero(problems):
    for r in problems:
        problem = r.metadata["verify"]["reasoning_gym"]
        assert verify(r, right_answer(problem["entry"])) == 1.0, r.prompt
        assert verify(r, wrong_answer(problem["dataset"], problem["entry"])) == 0.0, r.prompt
        assert verify(r, "I am not sure.") == 0.0  # no final answer: wrong, not uncheckable


def test_the_verifier_agrees_with_the_eval_on_eval_problems():
    """Rebuilt as a request, an eval problem is judged exactly as the eval's scorer judges it."""
    suite = build_specialist().suite
    for case in [c for c in suite_cases() if c.group != "mmlu"][::20]:
        index, gold = case.reference
        request = Request(case.prompt, metadata={"verify": {"reasoning_gym": {
            "dataset": case.group, "entry": json.loads(json.dumps(gym_items(case.group)[index], default=str))}}})
        for answer in (f"Answer: {gold}", "Answer: 12", "no idea"):
            assert verify(request, answer) == suite.score(case, answer)


def test_other_reasoning_gym_datasets_use_their_own_scorer():
    import reasoning_gym

    entry = reasoning_gym.create_dataset("basic_arithmetic", seed=5, size=1)[0]
    request = Request(entry["question"], metadata={"verify": {"reasoning_gym": {
        "dataset": "basic_arithmetic", "entry": json.loads(json.dumps(entry, default=str))}}})
    assert verify(request, f"So the result is clear.\nAnswer: {entry['answer']}") == 1.0
    assert verify(request, "Answer: 0.123456") == 0.0


@pytest.mark.parametrize("metadata", [
    {},
    {"user": "someone"},
    {"verify": {"tests": "assert True"}},
    {"verify": {"reasoning_gym": {"dataset": "no_such_dataset", "entry": {"question": "q", "answer": "a"}}}},
    {"verify": {"reasoning_gym": {"dataset": "gsm_symbolic"}}},
])
def test_a_request_that_is_no_generated_problem_cannot_be_checked(metadata):
    assert verify(Request("A bat and a ball cost $1.10. How much is the ball?", metadata=metadata), "Answer: 5") is None


def test_practice_never_reaches_the_eval_problems():
    held_out = {c.prompt for c in suite_cases()}
    for seed in (0, 1):
        prompts = [r.prompt for r in practice(40, seed=seed)]
        assert len(set(prompts)) == 40
        assert not set(prompts) & held_out
    assert [r.prompt for r in practice(6, seed=0)] == [r.prompt for r in practice(6, seed=0)]
    assert [r.prompt for r in practice(6, seed=0)] != [r.prompt for r in practice(6, seed=1)]
    with pytest.raises(ValueError, match="0 or more"):
        practice(4, seed=-1)
