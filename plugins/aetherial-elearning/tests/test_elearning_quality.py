"""The elearning quality check: a quiz answer is validated (JSON, count, schema, options, key) before
it leaves; requests that are not quiz requests are not judged."""

import copy
import json

import pytest

from aeth import Request
from aetherial_elearning.evals import _cases
from aetherial_elearning.quality import check, is_quiz_request, requested_items
from aetherial_elearning.quizcheck import quiz_score
from aetherial_elearning.recipe import load_seed
from aetherial_elearning.specialist import build_specialist

QUIZ = Request("Write a 3-question multiple-choice quiz on photosynthesis for Year 7.")
GOOD = [
    {"question": "Which gas do plants take in for photosynthesis?",
     "options": ["Oxygen", "Nitrogen", "Carbon dioxide", "Hydrogen"], "answer": 2,
     "explanation": "Leaves absorb carbon dioxide; oxygen is given off."},
    {"question": "Where does photosynthesis happen in a plant cell?",
     "options": ["Mitochondria", "Nucleus", "Chloroplasts", "Cell membrane"], "answer": 2,
     "explanation": "The chloroplast holds chlorophyll; mitochondria are for respiration."},
    {"question": "What do plants make in photosynthesis?",
     "options": ["Glucose", "Protein", "Salt", "Fat"], "answer": 0, "explanation": "They make glucose from CO2 and water."},
]


def fenced(items) -> str:
    return f"Here is your quiz:\n\n```json\n{json.dumps(items, indent=2)}\n```"


def changed(index: int, **fields) -> str:
    items = copy.deepcopy(GOOD)
    items[index].update(fields)
    return fenced(items)


def test_a_valid_quiz_passes():
    assert check(QUIZ, fenced(GOOD)) is None
    assert quiz_score(fenced(GOOD), 3) == 1.0


@pytest.mark.parametrize(("answer", "named"), [
    ("Sure! Here are three questions: 1. What is chlorophyll? 2. ...", "no quiz: the answer holds no JSON list"),
    ('```json\n[{"question": "Which gas?", "options": ["O2", "N2", "CO2", "H2"], "answer": 2,]\n```',
     "the quiz JSON does not parse: Expecting property name"),
    (fenced(GOOD[:2]), "the quiz has 2 questions; the request asks for 3"),
    (fenced(GOOD + GOOD[:1]), "the quiz has 4 questions; the request asks for 3"),
    (changed(1, options=["Mitochondria", "Nucleus", "Chloroplasts"]), "question 2 needs \"options\": four non-empty strings (it has 3 options)"),
    (changed(0, answer="C"), "question 1 needs \"answer\": the index 0-3 of the correct option (it has 'C')"),
    (changed(2, answer=4), "question 3 needs \"answer\": the index 0-3"),
    (changed(0, question=""), "question 1 has no question text"),
    (changed(1, options=["Mitochondria", "The nucleus", "Chloroplasts", "nucleus"]), "question 2: options 1 and 3 say the same thing"),
    (changed(0, explanation="Plants take in oxygen from the air."), "question 1: the explanation argues for another option"),
    (changed(2, question=GOOD[0]["question"], options=["Oxygen", "Carbon dioxide", "Argon", "Helium"], answer=1,
             explanation="Carbon dioxide."), "question 3 repeats question 1"),
])
def test_an_invalid_quiz_is_named(answer, named):
    problem = check(QUIZ, answer)
    assert problem is not None and problem.startswith(named), problem
    assert quiz_score(answer, 3) < 1.0 or "questions;" in problem  # the suite marks it down too (extra items aside)


def test_requests_that_are_not_quiz_requests_are_not_judged():
    prose = "Photosynthesis turns light, water and CO2 into glucose."
    for prompt in ("Write a lesson plan on photosynthesis for Year 7.",
                   "Explain why retrieval quizzes help students remember.",
                   "Write 5 short-answer questions (not multiple choice) on the Industrial Revolution.",
                   "Here is a multiple-choice question from a biology quiz.\n\nWhat do plants take in?\n\n"
                   "A) Oxygen\nB) Carbon dioxide\nC) Salt\nD) Sand\n\nWhich option is correct?"):
        assert not is_quiz_request(prompt), prompt
        assert check(Request(prompt), prose) is None


def test_every_eval_quiz_request_is_recognised_with_its_count():
    cases = _cases()
    for case in cases:
        asked = case.group == "quiz_generation"
        assert is_quiz_request(case.prompt) is asked, case.id
        if asked:
            assert requested_items(case.prompt) == case.reference["items"], case.id


def test_the_seed_datas_quiz_answers_pass():
    """The hand-written quizzes of the seed data are valid: the check finds nothing wrong with them."""
    judged = 0
    for record in load_seed():
        user = next(m["content"] for m in record["messages"] if m["role"] == "user")
        reply = next(m["content"] for m in record["messages"] if m["role"] == "assistant")
        if is_quiz_request(user):
            judged += 1
            assert check(Request(user), reply) is None, user
    assert judged >= 20


def test_counts_in_words_and_no_count():
    assert requested_items("Give me four multiple-choice questions on fractions.") == 4
    assert requested_items("Phishing quiz: 4 scenario-based multiple choice questions.") == 4
    assert requested_items("Make a multiple-choice quiz on volcanoes.") is None
    any_count = Request("Make a multiple-choice quiz on photosynthesis.")
    assert check(any_count, fenced(GOOD[:2])) is None


def test_the_specialist_declares_the_check_retried_once():
    quality = build_specialist().quality
    assert quality.check is check
    assert (quality.method, quality.k) == ("retry", 2)
    assert quality.problems() == []
