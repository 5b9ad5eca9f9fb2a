"""Scorers of the vision eval suite: VQA exact match and OCR character error rate, both in [0, 1].

- **VQA**: an answer is right when, normalised, it equals the normalised reference. Normalising
  follows the official VQA evaluation in spirit: lower case, punctuation dropped, number words
  as digits, articles (a, an, the) removed, whitespace collapsed; and British / American
  spellings of the benchmark's answers made equal (grey = gray, colour = color).
- **OCR**: ``1 - CER``, clipped to [0, 1], where CER is the Levenshtein distance between the
  normalised answer and reference, divided by the reference's length. Normalising only collapses
  whitespace (line breaks count as spaces), strips quotes around the whole answer and one leading
  "The text reads:"-style preamble; case and punctuation count, as they do for OCR.
"""

from __future__ import annotations

import re
import string

_NUMBERS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten".split())}
_SPELLINGS = {"grey": "gray", "colour": "color", "colours": "colors"}
_ARTICLES = {"a", "an", "the"}
_PUNCT = re.compile(f"[{re.escape(string.punctuation)}]")
_PREAMBLE = re.compile(r"^(?:the |this )?(?:text|image|sign|picture|it)(?: in (?:the|this) image)?"
                       r" (?:reads|says|is|shows)\s*:?\s*", re.IGNORECASE)
_QUOTES = "\"'`\u201c\u201d\u2018\u2019"


def normalise_vqa(answer: str) -> str:
    """``answer`` in the comparable form described in the module docstring ("A Circle." -> "circle")."""
    first_line = answer.strip().split("\n", 1)[0] if answer.strip() else ""
    words = _PUNCT.sub(" ", first_line.lower()).split()
    out = []
    for word in words:
        word = _NUMBERS.get(word, word)
        if word not in _ARTICLES:
            out.append(_SPELLINGS.get(word, word))
    return " ".join(out)


def vqa_score(answer: str, reference: str) -> float:
    """1.0 when the normalised answer equals the normalised reference, else 0.0."""
    return 1.0 if normalise_vqa(answer) == normalise_vqa(reference) and normalise_vqa(reference) else 0.0


def levenshtein(a: str, b: str) -> int:
    """The edit distance between ``a`` and ``b`` (insertions, deletions, substitutions; each costs 1)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def normalise_ocr(text: str) -> str:
    """``text`` with whitespace collapsed, one wrapping pair of quotes and a "The text reads:" preamble removed."""
    text = " ".join(text.split())
    text = _PREAMBLE.sub("", text, count=1)
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    return text


def cer(answer: str, reference: str) -> float:
    """Character error rate of ``answer`` against ``reference`` (0 is perfect; can exceed 1)."""
    ref = normalise_ocr(reference)
    return levenshtein(normalise_ocr(answer), ref) / max(1, len(ref))


def ocr_score(answer: str, reference: str) -> float:
    """``1 - CER``, clipped to [0, 1]."""
    return min(1.0, max(0.0, 1.0 - cer(answer, reference)))
