"""The ``elearning`` quality check: a quiz answer is validated before it leaves.

:func:`check` is the specialist's ``Quality.check`` (see :mod:`aeth.quality`; ``retry`` with
k=2 by default: validated and retried once). For a request that asks for a multiple-choice quiz
(:func:`is_quiz_request`), it names the first problem of the answer's quiz, by the checks the
eval suite scores (:mod:`aetherial_elearning.quizcheck`):

- no JSON list in the answer, or a ```json block that is not valid JSON (with the JSON error);
- fewer or more questions than the request asked for (when it names a number);
- an item that is not an object with a non-empty ``question``, four non-empty string
  ``options`` and an integer ``answer`` index 0-3 (and a string ``explanation`` when given);
- two options of one question that say the same thing, an explanation that argues for another
  option than the key, or a question asked twice.

A quiz that passes scores full marks on the suite's ``quiz_generation`` checks. Any other request
(answering a quiz question, a lesson plan) gives None: nothing here to validate.
"""

from __future__ import annotations

import json
import re

from aeth import Request
from aetherial_elearning.quizcheck import _FENCE, _canonical, _schema_ok, item_checks, parse_quiz

__all__ = ["check", "is_quiz_request", "requested_items"]

_QUIZ = re.compile(r"\bquiz(?:zes)?\b|\bmultiple[- ]choice\b|\bmcqs?\b", re.IGNORECASE)
_ASK = re.compile(r"\b(?:write|make|create|generate|give|need|prepare|design|draft|build|produce|set|turn|convert)\b",
                  re.IGNORECASE)
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
                 "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "a single": 1}
# "3 questions", "a 4-question quiz", "five multiple-choice questions", "4 scenario-based multiple choice questions"
_COUNT = re.compile(r"\b(\d{1,2}|" + "|".join(_NUMBER_WORDS) + r")[- ](?:[a-z]+(?:-[a-z]+)*[- ]){0,3}?"
                    r"(?:questions?|items?|mcqs?)\b", re.IGNORECASE)
# a quiz of another kind: its answer is no multiple-choice JSON
_OTHER_KIND = re.compile(r"\bnot\s+(?:a\s+)?multiple[- ]choice\b|\bshort[- ]answer\b|\bopen[- ]ended\b|\bessay\b"
                         r"|\btrue[ /-]+(?:or[ -]+)?false\b|\bfill[- ]in[- ]the[- ]blanks?\b", re.IGNORECASE)
# a multiple-choice question put to the learner: lettered options on their own lines
_LETTERED = re.compile(r"^[ \t]*[(\[]?[A-D][).:\]][ \t]+\S", re.MULTILINE)


def is_quiz_request(prompt: str) -> bool:
    """Whether ``prompt`` asks for a multiple-choice quiz to be written (answered, by the system
    prompt's format, as a JSON list), not for a quiz question to be answered."""
    if not _QUIZ.search(prompt) or _OTHER_KIND.search(prompt):
        return False
    if len(_LETTERED.findall(prompt)) >= 2 and "json" not in prompt.lower():
        return False  # a lettered question to answer
    return bool(_ASK.search(prompt) or _COUNT.search(prompt) or re.search(r"\bjson\b", prompt, re.IGNORECASE))


def requested_items(prompt: str) -> int | None:
    """The number of questions ``prompt`` asks for ("a 3-question quiz", "four multiple-choice
    questions"), or None when it names none."""
    m = _COUNT.search(prompt)
    if not m:
        return None
    word = m.group(1).lower()
    return int(word) if word.isdigit() else _NUMBER_WORDS[word]


def _json_problem(answer: str) -> str:
    """Why the answer holds no quiz: the JSON error of its first json-looking block, else that it has none."""
    for block in _FENCE.findall(answer):
        text = block.strip()
        if text.startswith(("[", "{")):
            try:
                json.loads(text)
            except ValueError as e:
                return f"the quiz JSON does not parse: {e}"
            return "the quiz is not a JSON list of questions (a bare list of objects is asked for)"
    return "no quiz: the answer holds no JSON list of questions"


def _schema_problem(item: object) -> str:
    if not isinstance(item, dict):
        return f"is a {type(item).__name__}, not an object with question, options, answer and explanation"
    if not isinstance(item.get("question"), str) or not item["question"].strip():
        return "has no question text"
    options = item.get("options")
    if not isinstance(options, list) or len(options) != 4 or not all(isinstance(o, str) and o.strip() for o in options):
        got = f"{len(options)} options" if isinstance(options, list) else "no options list"
        return f"needs \"options\": four non-empty strings (it has {got})"
    key = item.get("answer")
    if not isinstance(key, int) or isinstance(key, bool) or not 0 <= key < 4:
        return f"needs \"answer\": the index 0-3 of the correct option (it has {key!r})"
    return "has an explanation that is not a string"


def check(request: Request, answer: str) -> str | None:
    """What is wrong with the quiz in ``answer`` (see the module docstring), or None."""
    prompt = request.prompt or ""
    if not is_quiz_request(prompt):
        return None
    answer = answer or ""
    quiz = parse_quiz(answer)
    if not quiz or not any(isinstance(item, dict) for item in quiz):
        # a list of strings inside broken JSON (its options) is no quiz: say why the JSON is not one
        return _json_problem(answer) if quiz is None or quiz else "the quiz is an empty list"
    expected = requested_items(prompt)
    if expected is not None and len(quiz) != expected:
        return f"the quiz has {len(quiz)} question{'s' * (len(quiz) != 1)}; the request asks for {expected}"
    seen: dict[tuple[str, ...], int] = {}
    for n, item in enumerate(quiz, 1):
        if not _schema_ok(item):
            return f"question {n} {_schema_problem(item)}"
        checks = item_checks(item)
        if not checks["distinct"]:
            options = [_canonical(o) for o in item["options"]]
            i, j = next((i, j) for i in range(4) for j in range(i + 1, 4) if options[i] == options[j])
            return f"question {n}: options {i} and {j} say the same thing ({item['options'][i]!r}, {item['options'][j]!r})"
        if not checks["key"]:
            return f"question {n}: the explanation argues for another option than the key (answer {item['answer']})"
        question = _canonical(item["question"])
        if question in seen:
            return f"question {n} repeats question {seen[question]}"
        seen[question] = n
    return None
