"""Taking the final answer out of a reasoning model's text, the way small chat models really write it.

The specialist's system prompt asks for a last line ``Answer: <result>`` and every eval prompt
repeats the format, but a small model also writes "The answer is (B)", "**Answer:** 42",
``\\boxed{42}``, "#### 42" or only a number at the end. Each extractor here returns the answer in
the form the benchmark's own scorer expects, or None when the text gives none; it never guesses.
The scorers in :mod:`aetherial_reasoning.evals` hand that answer to the benchmark's scorer.
"""

from __future__ import annotations

import re

# "Answer:", "Final answer:", "**Answer:**", "The (correct|final) answer is", "The answer to this
# question is", "the answer would be", GSM8K's "####".
_MARKER = re.compile(r"\banswer(?:\s+to\s+(?:this|the)\s+(?:question|problem|puzzle))?\s*(?:\*\*|__)?\s*"
                     r"(?::|\b(?:is|would\s+be|will\s+be)\b\s*:?)|####", re.IGNORECASE)
_LIST_LABEL = re.compile(r"(?im)^\s*(?:step\s+)?\d+\s*[.):](?=[ \t]+\S)|\bstep\s+\d+\b")
_DECORATION = re.compile(r"\\boxed\{|\\text\{|\\\(|\\\)|\\\[|\\\]|[*`$]")
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
# 1,234.5 | 3 | 0.75; the sign is decided in _numbers (a '-' right after a word or digit is a minus).
_NUMBER = re.compile(r"(?<![\d.,])(-?)(\d{1,3}(?:,\d{3})+(?!\d)|\d+)(\.\d+)?")


def _clean(text: str) -> str:
    """``text`` without markdown emphasis, backticks, dollar signs and LaTeX wrappers."""
    return _DECORATION.sub("", text).strip(" \t*_:}.")


def final_block(text: str, max_lines: int = 1) -> str | None:
    """What follows the last answer marker: its first non-empty line (up to ``max_lines`` lines,
    stopping at a blank line), decorations removed; None when there is no marker or nothing after it.

    "Answer:" alone on a line takes the next non-empty line ("Answer:\\nB").
    """
    markers = list(_MARKER.finditer(text or ""))
    if not markers:
        return None
    rest = text[markers[-1].end():].lstrip(" \t*_:")
    lines = rest.split("\n")
    while lines and not _clean(lines[0]):
        lines.pop(0)
    block = []
    for line in lines[:max_lines]:
        if not line.strip():
            break
        block.append(_clean(line))
    out = "\n".join(block).strip()
    return out or None


# ---- numbers (GSM-style word problems) ---------------------------------------------------------


def _numbers(text: str) -> list[str]:
    """Every number in ``text`` as a plain string: thousands commas dropped, a sign kept."""
    out = []
    for m in _NUMBER.finditer(text):
        sign, whole, frac = m.groups()
        if sign and m.start() > 0 and (text[m.start() - 1].isalnum() or text[m.start() - 1] in ")]"):
            sign = ""  # "5-3": a subtraction, not -3
        out.append(sign + whole.replace(",", "") + (frac or ""))
    return out


def extract_number(text: str) -> str | None:
    """The final numeric answer as a plain number string ("1234.5", "-3"), or None.

    After an answer marker: the first number of its line, or of what follows the line's last '='
    ("Answer: 16 x 4.50 = 72" gives 72); a marker followed by no number gives None. Without a
    marker: the last ``\\boxed{}``, else the last number of the text (the usual GSM8K fallback).
    """
    text = text or ""
    block = final_block(text)
    if block is not None:
        if "=" in block:
            block = block.rsplit("=", 1)[1]
        nums = _numbers(block)
        return nums[0] if nums else None
    boxed = _BOXED.findall(text)
    if boxed:
        nums = _numbers(boxed[-1])
        return nums[0] if nums else None
    nums = _numbers(_LIST_LABEL.sub(" ", text))  # "Step 15:" and "3." list labels are not results
    return nums[-1] if nums else None


# ---- lettered options (MMLU) -------------------------------------------------------------------

_LEAD = re.compile(r"^(?:(?:the\s+)?(?:correct\s+)?(?:option|choice|letter)\s*:?\s*)?([(\[]?)([A-Da-d])(?![\w'])([)\]]?)(.*)$",
                   re.IGNORECASE | re.DOTALL)
_SEVERAL = re.compile(r"^\s*(?:,|/|&|\bor\b|\band\b)\s*[(\[]?[A-D](?![\w'])", re.IGNORECASE)
_STATED = re.compile(r"\b(?:option|choice)\s*(?:is\s+|:\s*)?[(\[]?([A-D])\b[)\]]?|[(\[]([A-D])[)\]]\s+is\s+(?:the\s+)?(?:correct|right)"
                     r"|\b([A-D])\s+is\s+(?:the\s+)?(?:correct|right)\b")


def _norm(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def _option_named(text: str, options: list[str]) -> str | None:
    """The letter whose option text ``text`` is, or contains alone (as whole words); else None."""
    said = _norm(text)
    if not said:
        return None
    texts = [_norm(o) for o in options]
    exact = [i for i, o in enumerate(texts) if o and o == said]
    if len(exact) == 1:
        return "ABCD"[exact[0]]
    inside = [i for i, o in enumerate(texts) if o and f" {o} " in f" {said} "]
    # an option that is part of another ("4" in "4 and 5") makes containment ambiguous
    inside = [i for i in inside if not any(j != i and f" {texts[i]} " in f" {texts[j]} " for j in inside)]
    return "ABCD"[inside[0]] if len(inside) == 1 else None


def _leading_letter(text: str, strict: bool = False) -> str | None:
    """The letter a short answer starts with: "B", "(B)", "B) 4", "b.", "Option C"; else None.

    A lower-case letter counts only when a bracket, punctuation or the end follows it ("a lot" is
    not A); ``strict`` asks the same of an upper-case one. "A or B" is no answer, and "A cell
    is ..." is the article, not option A.
    """
    m = _LEAD.match(text.strip())
    if not m:
        return None
    opening, letter, closing, after = m.groups()
    if _SEVERAL.match(after):
        return None
    marked = bool(opening or closing) or not after.strip() or bool(re.match(r"^\s*[.:;,\-\u2013\u2014]", after))
    if (strict or letter.islower()) and not marked:
        return None
    if letter == "A" and not marked and re.match(r"^\s+[a-z]", after):
        return None
    return letter.upper()


def extract_letter(text: str, options: list[str]) -> str | None:
    """The chosen option letter ('A'..'D') from a multiple-choice answer, or None.

    In order: the line after the last answer marker (a leading letter, or an option's own text);
    a reply that starts with a letter ("B) 4", "(B)", "b"); "option B" / "(B) is correct" anywhere
    (the last one); the last line being one option's text.
    """
    text = text or ""
    block = final_block(text)
    if block is not None:
        named = _option_named(block, options)
        if named and _norm(block) == _norm(options["ABCD".index(named)]):
            return named
        return _leading_letter(block) or named
    first = next((line for line in text.splitlines() if line.strip()), "")
    lead = _leading_letter(_clean(first), strict=True)
    if lead:
        return lead
    stated = _STATED.findall(text)
    if stated:
        return next(x for x in stated[-1] if x)
    last = next((line for line in reversed(text.splitlines()) if line.strip()), "")
    return _option_named(_clean(last), options)


# ---- yes / no (syllogisms) ---------------------------------------------------------------------

_YES_NO = re.compile(r"^\W*(yes|no)\b(.*)", re.IGNORECASE | re.DOTALL)
_FOLLOWS = re.compile(r"\b(?:does\s+not|doesn'?t|do\s+not|cannot|can'?t)\s+(?:logically\s+)?(?:follow|be\s+concluded)\b",
                      re.IGNORECASE)


def extract_yes_no(text: str) -> str | None:
    """'Yes' or 'No' (as the syllogism scorer spells them), or None.

    After an answer marker: its first word, or "does (not) follow". Without a marker, only a reply
    that opens with "Yes" or with "No" followed by punctuation ("No, ..."): a reply that restates a
    premise ("No students are ...") says nothing yet.
    """
    text = text or ""
    block = final_block(text)
    if block is not None:
        m = _YES_NO.match(block)
        if m:
            if re.match(r"^\W*(?:or|/|and)\W*(?:yes|no)\b", m.group(2), re.IGNORECASE):
                return None  # "Yes or No" is no answer
            return m.group(1).capitalize()
        if _FOLLOWS.search(block):
            return "No"
        if re.search(r"\b(?:it\s+)?(?:logically\s+)?follows\b", block, re.IGNORECASE):
            return "Yes"
        return None
    m = _YES_NO.match(text.strip())
    if not m:
        return None
    word, after = m.group(1).capitalize(), m.group(2)
    if word == "No" and after.strip() and not re.match(r"^\s*[,.!;:\-\u2013\u2014]", after):
        return None
    return word


# ---- who is what (knights and knaves) ----------------------------------------------------------


def _roles_in(text: str, names: list[str], roles: list[str]) -> dict[str, str]:
    """The last role each name is given in ``text`` ("Amelia is a hero", "Amelia: hero", "Amelia - a hero")."""
    role_alt = "|".join(re.escape(r) for r in sorted(roles, key=len, reverse=True))
    found = {}
    for name in names:
        # "knight/knave" is the format template echoed back, not a role
        pattern = rf"\b{re.escape(name)}\b\s*(?:is|was|must\s+be|:|=|-|\u2013)?\s*(?:an?\s+|the\s+)?({role_alt})s?\b(?!\s*/)"
        hits = re.findall(pattern, text, re.IGNORECASE)
        if hits:
            found[name] = hits[-1].lower()
    return found


def extract_roles(text: str, names: list[str], roles: list[str]) -> str | None:
    """"Name is a role, and Name is a role" for every name, or None when some name has no role.

    From the lines after the last answer marker; without one, from the last line (or sentence)
    that gives every name a role: reasoning before it ("Suppose Amelia is a hero...") is ignored.
    """
    text = text or ""
    block = final_block(text, max_lines=len(names) + 1)
    if block is not None:
        candidates = [block]
    else:
        # quoted statements are the puzzle restated ("Amelia is a knave," Daniel said), not a verdict
        text = re.sub(r"\"[^\"\n]*\"|\u201c[^\u201d\n]*\u201d", " ", text)
        pieces = [p for line in text.splitlines() for p in re.split(r"(?<=[.!?])\s+", line)]
        candidates = [line for line in reversed(text.splitlines())] + list(reversed(pieces))
    for candidate in candidates:
        roles_of = _roles_in(candidate, names, roles)
        if len(roles_of) == len(names):
            return ", and ".join(f"{n} is a {roles_of[n]}" for n in names)
    return None


# ---- one name (zebra puzzles) ------------------------------------------------------------------


def extract_name(text: str, names: list[str]) -> str | None:
    """The first of ``names`` after the last answer marker, or on the last line; lower-case; else None."""
    text = text or ""
    block = final_block(text)
    if block is None:
        block = next((line for line in reversed(text.splitlines()) if line.strip()), "")
    hits = [(m.start(), n) for n in names for m in re.finditer(rf"\b{re.escape(n)}\b", block, re.IGNORECASE)]
    return min(hits)[1].lower() if hits else None
