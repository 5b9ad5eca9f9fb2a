"""Tests of the example verifier and its practice prompts (rename along with the package)."""

from aeth import Request
from aetherial_example.evals import CASES
from aetherial_example.recipe import practice
from aetherial_example.verify import verify


def test_an_answer_with_a_listed_keyword_is_right_and_one_without_is_wrong():
    request = Request("How do I make a buttermilk substitute?", metadata={"verify": {"keywords": ["lemon", "vinegar"]}})
    assert verify(request, "Stir a spoon of lemon juice into a cup of milk.") == 1.0
    assert verify(request, "Just use water.") == 0.0


def test_a_request_without_keywords_cannot_be_checked():
    assert verify(Request("What should I cook tonight?"), "Pasta.") is None
    assert verify(Request("What should I cook tonight?", metadata={"user": "someone"}), "Pasta.") is None


def test_practice_prompts_are_checkable_and_never_eval_cases():
    requests = practice(3, seed=0)
    assert len(requests) == 3
    assert all(verify(r, "") == 0.0 for r in requests)  # checkable: a reward, not None
    assert not {r.prompt for r in requests} & {prompt for _, prompt, _ in CASES}
    assert [r.prompt for r in practice(3, seed=1)] != [r.prompt for r in requests]
