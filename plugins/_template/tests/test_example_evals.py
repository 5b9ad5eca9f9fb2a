"""Tests of the example eval scorer: a scorer is code, so it gets tests like any other code."""

from aetherial_example.evals import build_suite, score_answer


def test_answer_with_a_key_term_scores_one():
    assert score_answer("Cook it until the thickest part reaches 74 °C.", ("74", "165")) == 1.0
    assert score_answer("Use LEMON juice and milk.", ("lemon", "vinegar")) == 1.0


def test_answer_without_key_terms_scores_zero():
    assert score_answer("Cook it until it looks done.", ("74", "165")) == 0.0
    assert score_answer("", ("lemon",)) == 0.0
    # whole words only: "1745" does not mention 74, "lemonade" is not lemon
    assert score_answer("In 1745 people drank lemonade.", ("74", "lemon")) == 0.0


def test_suite_cases_have_unique_ids_and_references():
    cases = list(build_suite().cases())
    assert len({c.id for c in cases}) == len(cases) >= 5
    assert all(c.reference for c in cases)
