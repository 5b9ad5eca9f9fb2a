"""The quiz checker: quizzes that pass each check, and quizzes that fail each one."""

import json

import pytest

from aetherial_elearning.quizcheck import item_checks, parse_quiz, quiz_score
from aetherial_elearning.recipe import load_seed

GOOD = [
    {"question": "Which gas do plants take in for photosynthesis?",
     "options": ["Oxygen", "Nitrogen", "Carbon dioxide", "Hydrogen"], "answer": 2,
     "explanation": "Leaves absorb carbon dioxide; oxygen is given off."},
    {"question": "Where does photosynthesis happen in a plant cell?",
     "options": ["Mitochondria", "Nucleus", "Chloroplasts", "Cell membrane"], "answer": 2,
     "explanation": "The chloroplast holds chlorophyll; mitochondria are for respiration."},
    {"question": "What is 3/4 written as a decimal?",
     "options": ["0.34", "0.75", "3.4", "7.5"], "answer": 1, "explanation": "3 divided by 4 is 0.75."},
]


def fenced(items, tag="json"):
    return f"Here is your quiz:\n\n```{tag}\n{json.dumps(items, indent=2, ensure_ascii=False)}\n```\n\nGood luck!"


def item(options, answer=0, explanation="", question="Which one is right?"):
    return {"question": question, "options": options, "answer": answer, "explanation": explanation}


# ---- parsing --------------------------------------------------------------------------------------


@pytest.mark.parametrize("answer", [
    fenced(GOOD),
    fenced(GOOD, tag="JSON"),                        # a tag the old pattern did not know
    fenced(GOOD, tag=" json"),
    fenced(GOOD, tag=""),
    fenced(GOOD, tag="javascript"),
    json.dumps(GOOD),                                  # bare
    "Quiz [3 questions, answers below]:\n" + json.dumps(GOOD) + "\n[end of quiz]",  # brackets in prose
    "```json\n" + json.dumps(GOOD),                    # fence never closed, JSON complete
    "See [1] for sources.\n```json\n" + json.dumps(GOOD) + "\n```",  # a list of numbers first
])
def test_a_well_formed_quiz_parses_and_scores_full_marks(answer):
    assert parse_quiz(answer) == GOOD
    assert quiz_score(answer, 3) == 1.0


@pytest.mark.parametrize("answer", [
    "",
    "1. Which gas do plants take in? a) Oxygen b) Carbon dioxide",          # prose quiz, no JSON
    "```json\n" + json.dumps(GOOD)[:-40] + "\n```",                           # cut off mid-list
    json.dumps({"questions": GOOD}),                                          # an object, not a list
    "```json\n[{'question': 'Q?', 'options': ['a', 'b', 'c', 'd'], 'answer': 0}]\n```",  # Python, not JSON
    "[]",
    '["Oxygen", "Nitrogen", "Carbon dioxide", "Hydrogen"]',                   # a list, but no items
])
def test_no_quiz_scores_zero(answer):
    assert quiz_score(answer, 3) == 0.0


def test_every_seed_quiz_passes_every_check():
    # the seed's quizzes were written by people as good examples: the checker must not fault them
    # (the first version failed 9 of their items: "2.5" vs "25"-style numbers, SQL and Excel options,
    # "Macbeth" vs "Lady Macbeth", explanations that paraphrase a long keyed option)
    quizzes = [r["messages"][-1]["content"] for r in load_seed() if "```json" in r["messages"][-1]["content"]]
    assert len(quizzes) >= 25
    for answer in quizzes:
        quiz = parse_quiz(answer)
        assert quiz, answer[:80]
        failed = [(i, name) for i, it in enumerate(quiz) for name, ok in item_checks(it).items() if not ok]
        assert failed == [], (answer[:80], failed)
        assert quiz_score(answer, len(quiz)) == 1.0


# ---- schema --------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [
    {**GOOD[0], "options": GOOD[0]["options"][:3]},           # three options
    {**GOOD[0], "options": [*GOOD[0]["options"], "Helium"]},  # five options
    {**GOOD[0], "answer": "C"},                                 # a letter, not an index
    {**GOOD[0], "answer": "2"},                                 # index as a string
    {**GOOD[0], "answer": 4},                                   # out of range
    {**GOOD[0], "answer": -1},
    {**GOOD[0], "answer": True},                                # bool is not an index
    {**GOOD[0], "answer": 2.0},
    {**GOOD[0], "question": "   "},
    {k: v for k, v in GOOD[0].items() if k != "question"},
    {k: v for k, v in GOOD[0].items() if k != "answer"},
    {**GOOD[0], "options": ["Oxygen", 7, "Carbon dioxide", "Hydrogen"]},
    {**GOOD[0], "options": ["Oxygen", " ", "Carbon dioxide", "Hydrogen"]},
    {**GOOD[0], "options": "Oxygen, Nitrogen, Carbon dioxide, Hydrogen"},
    {**GOOD[0], "explanation": None},
    "Which gas do plants take in?",
    ["Which gas?", ["a", "b", "c", "d"], 0],
])
def test_a_malformed_item_fails_every_check(bad):
    assert item_checks(bad) == {"schema": False, "key": False, "distinct": False}
    assert quiz_score(json.dumps([bad, *GOOD[1:]]), 3) == pytest.approx(2 / 3)


def test_explanation_may_be_left_out():
    bare = {k: v for k, v in GOOD[0].items() if k != "explanation"}
    assert item_checks(bare) == {"schema": True, "key": True, "distinct": True}


def test_missing_items_fail_and_extra_items_are_ignored():
    assert quiz_score(json.dumps(GOOD[:2]), 4) == pytest.approx(0.5)
    assert quiz_score(json.dumps(GOOD), 2) == 1.0
    broken = {**GOOD[0], "answer": 9}
    assert quiz_score(json.dumps([*GOOD[:2], broken]), 2) == 1.0  # the third item was not asked for
    assert quiz_score(json.dumps([broken, *GOOD[:2]]), 2) == pytest.approx(0.5)


def test_no_expected_items_is_an_error_not_a_division_by_zero():
    with pytest.raises(ValueError):
        quiz_score(json.dumps(GOOD), 0)


# ---- answer-key consistency -------------------------------------------------------------------------


@pytest.mark.parametrize("explanation", [
    "Plants take in oxygen from the air.",                   # argues for option A, keyed is C
    "It is Nitrogen, which makes up most of the air.",
    "Plants absorb CO2, not hydrogen.",  # names only a distractor: the check does not read negation
])
def test_an_explanation_arguing_for_another_option_fails_the_key_check(explanation):
    checks = item_checks({**GOOD[0], "explanation": explanation})
    assert checks == {"schema": True, "key": False, "distinct": True}
    assert quiz_score(json.dumps([{**GOOD[0], "explanation": explanation}]), 1) == pytest.approx(2 / 3)


@pytest.mark.parametrize("explanation", [
    "",                                                                # nothing to contradict the key
    "Plants absorb CO2 through tiny pores.",                           # names no option at all
    "Carbon dioxide goes in and oxygen comes out.",                    # names the key and a distractor
    "CARBON-DIOXIDE is absorbed; not oxygen.",                         # case and hyphen do not matter
])
def test_explanations_that_do_not_contradict_the_key_pass(explanation):
    assert item_checks({**GOOD[0], "explanation": explanation}) == {"schema": True, "key": True, "distinct": True}


def test_a_long_keyed_option_is_named_by_a_word_only_it_has():
    it = item(["The Magna Carta", "The Napoleonic Code", "The Declaration of the Rights of Man", "The Treaty of Versailles"],
              2, "The Declaration proclaimed liberty; the Napoleonic Code came in 1804.")
    assert item_checks(it)["key"] is True
    it["explanation"] = "The Napoleonic Code proclaimed liberty in 1804."
    assert item_checks(it)["key"] is False


def test_plural_and_short_options_in_explanations():
    it = item(["Mitochondria", "Nucleus", "Chloroplasts", "Ribosome"], 2,
              "Each chloroplast traps light; mitochondria release energy.")
    assert item_checks(it)["key"] is True
    short = item(["4", "5", "6", "7"], 1, "2 + 3 = 5, not 4.")  # options of 3 characters or fewer never count against
    assert item_checks(short)["key"] is True


def test_a_repeated_question_earns_nothing():
    assert quiz_score(json.dumps([GOOD[0], GOOD[0]]), 2) == pytest.approx(0.5)
    reworded_case = {**GOOD[1], "question": GOOD[0]["question"].upper()}
    assert quiz_score(json.dumps([GOOD[0], reworded_case]), 2) == pytest.approx(0.5)
    assert quiz_score(json.dumps(GOOD), 3) == 1.0


def test_malformed_items_do_not_count_as_repeats_against_good_ones():
    # two items without a question fail their own checks; they must not also wipe out the good one
    assert quiz_score(json.dumps([GOOD[0], {"options": []}, {"options": []}]), 3) == pytest.approx(1 / 3)


# ---- distractor distinctness --------------------------------------------------------------------------


@pytest.mark.parametrize("options", [
    ["Oxygen", "oxygen", "Carbon dioxide", "Hydrogen"],                 # case
    ["Oxygen", "Oxygen.", "Carbon dioxide", "Hydrogen"],                # trailing full stop
    ["The mitochondria", "Mitochondria", "Nucleus", "Ribosome"],        # article
    ["Cells", "Cell", "Tissue", "Organ"],                                # plural
    ["Carbon dioxide", "carbon-dioxide", "Oxygen", "Hydrogen"],         # hyphen
    ["Paris", "  Paris  ", "Lyon", "Nice"],                             # spacing
    ["A", "B", "C", "C"],
])
def test_options_that_say_the_same_thing_fail_the_distinct_check(options):
    assert item_checks(item(options)) == {"schema": True, "key": True, "distinct": False}


@pytest.mark.parametrize("options", [
    ["2.5 m/s²", "25 m/s²", "0.25 m/s²", "250 m/s²"],                    # decimal-point distractors
    ["1/2", "12", "2", "1/4"],
    ["-5", "5", "-1", "1"],                                              # sign distractors
    ["1,000", "10,000", "100", "100,000"],                               # orders of magnitude
    ["2,400 N", "24,000 N", "600 N", "1,202 N"],
    ["About 5", "About 20", "Over 200", "Over 20,000"],
    ["WHERE email = NULL", "WHERE email == ''", "WHERE email IS NULL", "WHERE NULL(email)"],
    ['=COUNTIF(A2:A50,"Paid")', '=COUNT(A2:A50,"Paid")', '=SUMIF(A2:A50,"Paid")', '=IF(A2:A50="Paid")'],
    ["ORDER BY price DESC", "ORDER BY price ASC", "SORT BY price", "GROUP BY price"],
    ["C, E, G", "C, E♭, G", "C, F, A", "C, D, E"],
    ["Macbeth", "Lady Macbeth", "Banquo", "Macduff"],
    ["Demand increases and price rises", "Demand decreases and price rises",
     "Supply increases and price falls", "Supply decreases and price falls"],
    ["affect", "effect", "except", "accept"],
])
def test_options_that_differ_in_meaning_pass_the_distinct_check(options):
    assert item_checks(item(options))["distinct"] is True


@pytest.mark.parametrize("answer", [fenced(GOOD), "nonsense", json.dumps([GOOD[0]] * 9), json.dumps([{}] * 3)])
def test_scores_stay_in_range(answer):
    for n in (1, 3, 5):
        assert 0.0 <= quiz_score(answer, n) <= 1.0
