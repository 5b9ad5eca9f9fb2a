"""The ``reasoning`` vote key: the final answer of a reply, for self-consistency.

:func:`vote_key` is the specialist's ``Quality.vote_key`` (see :mod:`aeth.quality`): with
``quality.reasoning.method=vote``, k sampled replies each give their final answer and the one most
of them share leaves. The answer is taken out of the reply the way the eval suite takes it
(:mod:`aetherial_reasoning.extract`), chosen by what the request asks for:

- a reasoning-gym problem in ``request.metadata["verify"]`` (as the verifier reads it): that
  task's own extraction (:func:`aetherial_reasoning.evals.extract_for`);
- else from the prompt: lettered options (``A) ...`` to ``D) ...``) -> the option letter;
  "Format your answer like: "X is a knight/knave, ..."" -> who is what; "unique name: a, b, c"
  -> the name; "Yes or No" -> Yes/No; "Answer: <number>" -> the number;
- else the line after the reply's last answer marker ("Answer:", "The answer is", "####"), or its
  last ``\\boxed{}``: a number when it is a number (with at most a few words of units), else its
  text.

Keys are normalised so that equal answers vote together: numbers as plain decimals ("1,234.50",
"$1234.5" and "1234.5" are "1234.5"; "72.0" is "72"), text lower-cased with spacing and trailing
punctuation dropped. A reply with no final answer gives None (it does not vote).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from aeth import Request
from aetherial_reasoning.evals import GYM_TASKS, extract_for
from aetherial_reasoning.extract import _BOXED, extract_letter, extract_name, extract_number, extract_roles, extract_yes_no, final_block
from aetherial_reasoning.verify import gym_problem

__all__ = ["number_key", "text_key", "vote_key"]

_OPTION = re.compile(r"^[ \t]*[(\[]?([A-D])[)\].:][ \t]+(\S.*)$", re.MULTILINE)
_ROLES_FORMAT = re.compile(r"format your answer like:\s*\"([^\"]+)\"", re.IGNORECASE)
_ROLE = re.compile(r"\b([A-Z][\w'-]*) is an? ([\w-]+)/([\w-]+)")
_NAMES = re.compile(r"unique name:\s*([^\n]+)", re.IGNORECASE)
_YES_NO = re.compile(r"\byes\b'?\s*(?:or|/)\s*'?(?:answer:\s*)?no\b", re.IGNORECASE)
_NUMBER_ASKED = re.compile(r"answer:\s*<\s*(?:number|integer|amount|value)\s*>", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]+")


def number_key(text: str) -> str | None:
    """``text`` (a number as :func:`~aetherial_reasoning.extract.extract_number` writes it) as a
    plain decimal: no exponent, no trailing zeros, "-0" is "0"; None when it is not a number."""
    try:
        value = Decimal(text.replace(",", ""))
    except (InvalidOperation, AttributeError):
        return None
    if not value.is_finite():
        return None
    out = format(value.normalize(), "f")
    return "0" if out in ("-0", "0") else out


def text_key(text: str) -> str | None:
    """``text`` lower-cased, spacing collapsed, surrounding quotes and trailing punctuation dropped."""
    out = " ".join(text.lower().split()).strip(" \"'`.,;:!")
    return out or None


def _options(prompt: str) -> list[str] | None:
    """The prompt's four lettered options A-D in order, or None when it has none."""
    found = {}
    for letter, option in _OPTION.findall(prompt):
        found.setdefault(letter, option.strip())
    return [found[x] for x in "ABCD"] if len(found) == 4 else None


def _generic(answer: str) -> str | None:
    """The final answer after the last marker (or in the last ``\\boxed{}``), as a number or text."""
    block = final_block(answer)
    if block is None:
        boxed = _BOXED.findall(answer)
        block = boxed[-1].strip() if boxed else None
    if block is None:
        return None
    number = extract_number(f"Answer: {block}")
    # "72", "$72", "72 apples", "16 x 4.50 = 72": a number; "Paris, in 1789" is text
    tail = block.rsplit("=", 1)[-1]
    if number is not None and len(_WORD.findall(tail)) <= 3 and len(re.findall(r"\d+(?:[.,]\d+)*", tail)) == 1:
        return number_key(number)
    return text_key(block)


def vote_key(request: Request, answer: str) -> str | None:
    """The final answer of ``answer`` to vote on (see the module docstring), or None when it has none."""
    answer = answer or ""
    problem = gym_problem(request)
    if problem is not None and problem[0] in GYM_TASKS:
        group, entry = problem
        entry.setdefault("metadata", {})
        found = extract_for(group, entry, answer)
        if found is None:
            return None
        return number_key(found) if group == "gsm_symbolic" else text_key(found)
    prompt = request.prompt or ""
    options = _options(prompt)
    if options is not None:
        return extract_letter(answer, options)
    roles = _ROLES_FORMAT.search(prompt)
    pairs = _ROLE.findall(roles.group(1)) if roles else []
    if pairs:
        found = extract_roles(answer, [name for name, _, _ in pairs], [pairs[0][1], pairs[0][2]])
        return text_key(found) if found else None
    names = _NAMES.search(prompt)
    if names:
        found = extract_name(answer, [n.strip() for n in names.group(1).split(",") if n.strip()])
        return text_key(found) if found else None
    if _YES_NO.search(prompt):
        return extract_yes_no(answer)
    if _NUMBER_ASKED.search(prompt):
        found = extract_number(answer)
        return number_key(found) if found is not None else None
    return _generic(answer)
