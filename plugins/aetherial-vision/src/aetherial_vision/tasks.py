"""What a request about an image asks for, as far as the offline path needs to know.

Without a vision-language model the plugin can still *read*: OCR finds the text in an image, and
a text model can answer questions about that text. So a prompt is sorted into one of three kinds:

- ``TRANSCRIBE``: the user wants the text itself ("read this", "transcribe the note", "what does
  the sign say?"). OCR answers alone, exactly.
- ``LOOK``: the question is about how the image looks: colours, shapes, sizes, positions,
  describing or classifying it, counting people or objects, animals... Only a VLM can answer;
  offline this is an error that says how to get one.
- ``READ``: everything else ("what is the total on this receipt?", "when does the gate
  close?"): OCR reads the image and a text model answers from that text. If OCR finds no text,
  it is treated as ``LOOK``.

The rules are plain regular expressions over the lower-cased prompt, checked in this order: a
request to transcribe wins; then appearance words make it ``LOOK`` even when the prompt mentions
text-bearing things ("what colour is the sign?"); anything else is ``READ``. They are used only
when no VLM is available.
"""

from __future__ import annotations

import re

TRANSCRIBE, READ, LOOK = "transcribe", "read", "look"

_TRANSCRIBE = [
    r"\b(transcribe|transcription|ocr|ocr'd)\b",
    r"\b(read|extract|copy|type|write|pull|grab|get|list|give me|dump|convert|digiti[sz]e)\b[^.?!]*"
    r"\b(text|words?|writing|wording|lettering|characters|lines|handwriting|paragraphs?)\b",
    r"\bwhat (does|do) (it|this|that|these|those|(the|this|that|these|those|my) [\w -]+?) (say|read)\b",
    r"\bwhat('s| is) (written|printed)\b",
    r"\bwhat (text|words?)\b",
    r"\bread (it|this|that|me|out|aloud)\b",
    r"\bread (the|this|that) [\w -]*(sign|label|note|page|document|receipt|screen|card|notice|ticket|letter|poster)\b",
]
_LOOK = [
    r"\b(colou?rs?|shapes?|circles?|squares?|triangles?|stars?|size|bigger|biggest|smaller|smallest|larger|largest)\b",
    r"\b(describe|description|caption|alt text|depict|look like|looks like|scene|picture of)\b",
    r"\b(classify|classification|category|categori[sz]e|what kind of|what type of|which breed|species|identify)\b",
    r"\b(left|right|above|below|behind|next to|background|foreground|in front of)\b",
    r"\bhow many (people|persons|animals|cars|birds|dogs|cats|objects|things|shapes|trees|chairs)\b",
    r"\b(wearing|holding|doing|standing|sitting|smiling|weather|indoors|outdoors|photo of)\b",
    r"\b(dogs?|cats?|birds?|animals?|people|person|man|woman|child|children|faces?|cars?|trees?|flowers?)\b",
    r"^\s*(what is|what's) (this|that|it)\s*\??\s*$",
    r"\bwho is\b",
]


def _any(patterns: list[str], text: str) -> bool:
    return any(re.search(p, text) for p in patterns)


def classify(prompt: str) -> str:
    """``TRANSCRIBE``, ``READ`` or ``LOOK`` for ``prompt`` (see the module docstring for the rules)."""
    text = prompt.lower()
    if _any(_TRANSCRIBE, text):
        return TRANSCRIBE
    if _any(_LOOK, text):
        return LOOK
    return READ
