"""The reasoning vote key: the final answer of a reply, extracted as the eval extracts it and
normalised so that equal answers vote together (self-consistency)."""

from collections import Counter

import pytest

from aeth import Request
from aetherial_reasoning.evals import _score, suite_cases
from aetherial_reasoning.quality import number_key, vote_key
from aetherial_reasoning.recipe import practice
from aetherial_reasoning.specialist import build_specialist

GSM = Request("Tom buys 16 apples at $4.50 each. How much does he pay?\n\n"
              "Solve it step by step, then give the final answer on its own last line as 'Answer: <number>'.")


@pytest.fixture(scope="module")
def cases():
    return {c.group: c for c in reversed(suite_cases())}  # the first case of each group


@pytest.mark.parametrize("reply", [
    "16 x 4.50 = 72\nAnswer: 72",
    "He pays 16 * 4.5 = $72.00 in all.\n\n**Answer:** $72.00",
    "The answer is 72.0 dollars.",
    "So the total is \\boxed{72}.",
    "16 apples at 4.50 make 72",           # no marker: the last number, as the eval takes it
    "Answer: 16 x 4.50 = 72",
])
def test_numbers_written_differently_vote_together(reply):
    assert vote_key(GSM, reply) == "72"


def test_number_formatting_is_normalised():
    assert number_key("1,234.50") == "1234.5"
    assert number_key("100") == "100"  # no exponent (Decimal("1E+2"))
    assert number_key("-0.0") == "0"
    assert number_key("0.070") == "0.07"
    assert number_key("seventy") is None
    assert vote_key(GSM, "Answer: 1,234.50") == vote_key(GSM, "Answer: 1234.5") == "1234.5"
    assert vote_key(GSM, "Answer: 71") != vote_key(GSM, "Answer: 72")


def test_a_reply_without_a_final_answer_does_not_vote(cases):
    assert vote_key(GSM, "I am not sure how to do this.") is None
    assert vote_key(Request(cases["syllogism"].prompt), "Statements can be tricky.") is None
    assert vote_key(Request("Plan a week of study for my exams."), "Start early and sleep well.") is None


def test_every_eval_groups_gold_answer_gives_the_key_the_eval_scores(cases):
    """From the prompt alone (no metadata), the key is what the eval extracts: the gold answer, and
    a reply the suite scores right."""
    expected = {"gsm_symbolic": number_key(str(cases["gsm_symbolic"].reference[1])),
                "knights_knaves": cases["knights_knaves"].reference[1].lower().rstrip("."),
                "syllogism": cases["syllogism"].reference[1],
                "zebra_puzzles": cases["zebra_puzzles"].reference[1].lower(),
                "mmlu": cases["mmlu"].reference[0]}
    for group, case in cases.items():
        gold = case.reference[0] if group == "mmlu" else case.reference[1]
        reply = f"Let me reason step by step.\n\nAnswer: {gold}"
        assert _score(case, reply) == 1.0
        assert vote_key(Request(case.prompt), reply) == expected[group], group


def test_letters_and_option_texts_vote_together(cases):
    case = cases["mmlu"]
    letter, options = case.reference
    request = Request(case.prompt)
    other = "ABCD"[("ABCD".index(letter) + 1) % 4]
    replies = [f"Answer: {letter}", f"The answer is ({letter}).", f"Answer: {options['ABCD'.index(letter)]}",
               f"Answer: {other}"]
    assert Counter(vote_key(request, r) for r in replies).most_common(1)[0] == (letter, 3)


def test_roles_vote_together_whatever_the_case_and_spacing(cases):
    case = cases["knights_knaves"]
    request = Request(case.prompt)
    gold = case.reference[1]
    assert vote_key(request, f"Answer: {gold.upper()}") == vote_key(request, f"Answer:   {gold}") is not None
    assert vote_key(request, "Answer: I cannot tell.") is None


def test_a_request_carrying_its_reasoning_gym_problem_uses_that_tasks_extraction():
    for request in practice(4, seed=5):  # one of each task, with its entry in metadata
        entry = request.metadata["verify"]["reasoning_gym"]["entry"]
        assert vote_key(request, f"Answer: {entry['answer']}") is not None
        assert vote_key(request, "I have no idea.") is None


def test_free_form_final_answers_are_normalised_text():
    request = Request("What is the capital of France?")
    assert vote_key(request, "It is in the north.\nAnswer: Paris.") == vote_key(request, "The answer is **paris**") == "paris"
    assert vote_key(request, "Answer: Lyon") == "lyon"


def test_the_specialist_declares_the_vote_key_off_by_default():
    quality = build_specialist().quality
    assert quality.vote_key is vote_key
    assert (quality.method, quality.k) == ("off", 5)
    assert quality.problems() == []
