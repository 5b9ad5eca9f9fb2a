"""Judging a generated multiple-choice quiz without a judge model.

A quiz is a JSON list of ``{"question", "options", "answer", "explanation"}`` items (the format the
``elearning`` system prompt asks for). :func:`quiz_score` checks what can be checked exactly:

- **schema validity**: the answer holds one JSON list of such items, the requested number of
  them, each with a non-empty question, four options and an integer answer index in range;
- **answer-key consistency**: the explanation does not argue for a different option than the key
  (it may not quote another option's text without also naming the keyed one: its whole text or a
  word of it that no other option has), and no two questions are the same;
- **distractor distinctness**: the four options are different from each other after
  normalisation (case, spacing, prose punctuation, articles and plural "s" do not count;
  numbers, signs and symbols do, so ``2.5`` and ``25``, ``=`` and ``==`` stay different), so
  none is a mere restatement of another.

The score is the share of these checks passed, item by item, so a partly right quiz earns part
of the credit; an answer with no parseable quiz scores 0.
"""

from __future__ import annotations

import json
import re
import unicodedata

# A fence with any info string (```json, ```JSON, ``` json, ```javascript): an unrecognised tag
# must not make the closing fence look like an opening one.
_FENCE = re.compile(r"```[^\n`]*\n(.*?)(?:```|\Z)", re.DOTALL)
_OPENER = re.compile(r"[\[{]")
# A token is a word or number (with inner . , / : ^ kept: 2.5, 1,200, 1/2, A2:A50) or one symbol.
_TOKEN = re.compile(r"[^\W_]+(?:[.,/:^'][^\W_]+)*|\S")
# Punctuation that carries no meaning in an option or explanation (signs, operators, quotes in
# code and symbols such as ♭ or ² are kept: they tell options apart).
_PROSE_PUNCT = set(".,;:!?\"'()[]{}`*_“”‘’…")
_ARTICLES = {"a", "an", "the"}
_STOPWORDS = _ARTICLES | {
    "and", "or", "of", "in", "on", "at", "to", "for", "from", "with", "by", "is", "are", "was", "were", "be",
    "it", "its", "this", "that", "these", "those", "not", "no", "all", "only", "both", "none", "above", "than",
    "more", "less", "most", "least", "about", "over", "under", "into", "each", "which", "what", "when", "has",
    "have", "had", "does", "do", "can", "will", "their", "they", "them", "as", "but", "so", "very",
}


def parse_quiz(answer: str) -> list | None:
    """The first JSON list of objects found in ``answer`` (fenced blocks first, then anywhere), or
    the first JSON list of anything when none holds an object; None when there is no JSON list.

    A JSON object is skipped whole, so a list nested in one (``{"questions": [...]}``) is not taken
    for the quiz: the format asked for is a bare list.
    """
    for text in [*_FENCE.findall(answer), answer]:
        found = _first_list(text)
        if found is not None:
            return found
    return None


def _first_list(text: str) -> list | None:
    decoder = json.JSONDecoder()
    fallback = None
    pos = 0
    while (m := _OPENER.search(text, pos)) is not None:
        try:
            value, end = decoder.raw_decode(text, m.start())
        except ValueError:
            pos = m.start() + 1
            continue
        if isinstance(value, list):
            if any(isinstance(v, dict) for v in value):
                return value
            if fallback is None:
                fallback = value
        pos = end
    return fallback


def tokens(text: object) -> list[str]:
    """Lower-cased word/number/symbol tokens of ``text``, prose punctuation dropped, plurals folded."""
    text = unicodedata.normalize("NFKC", str(text)).lower()
    text = re.sub(r"(?<=[^\W\d_])-(?=[^\W\d_])", " ", text)  # carbon-dioxide = carbon dioxide
    out = []
    for tok in _TOKEN.findall(text):
        if tok in _PROSE_PUNCT:
            continue
        if tok.endswith("'s"):
            tok = tok[:-2]  # Newton's = Newton
        elif tok.isalpha() and len(tok) > 3 and tok.endswith("s") and not tok.endswith("ss") and tok not in _STOPWORDS:
            tok = tok[:-1]  # chloroplasts = chloroplast (both sides are folded alike)
        out.append(tok)
    return out


def _canonical(text: object) -> tuple[str, ...]:
    """What an option says, for comparing options: its tokens without articles."""
    return tuple(t for t in tokens(text) if t not in _ARTICLES)


def contains(haystack: tuple[str, ...] | list[str], needle: tuple[str, ...]) -> bool:
    """Whether ``needle`` occurs in ``haystack`` as a run of whole tokens."""
    n = len(needle)
    return n > 0 and any(tuple(haystack[i:i + n]) == needle for i in range(len(haystack) - n + 1))


def _schema_ok(item: object) -> bool:
    return (isinstance(item, dict) and isinstance(item.get("question"), str) and item["question"].strip() != ""
            and isinstance(item.get("options"), list) and len(item["options"]) == 4
            and all(isinstance(o, str) and o.strip() for o in item["options"])
            and isinstance(item.get("answer"), int) and not isinstance(item.get("answer"), bool)
            and 0 <= item["answer"] < 4 and isinstance(item.get("explanation", ""), str))


def item_checks(item: object) -> dict[str, bool]:
    """Each check on one quiz item: schema, key consistency, distinct options."""
    if not _schema_ok(item):
        return {"schema": False, "key": False, "distinct": False}
    options = [_canonical(o) for o in item["options"]]
    distinct = len(set(options)) == 4
    explanation = tuple(_canonical(item.get("explanation", "")))
    key = item["answer"]
    keyed = options[key]
    others = [o for i, o in enumerate(options) if i != key and len(" ".join(o)) > 3]
    # The keyed option counts as named by its whole text or by a word only it has ("the
    # Declaration" for "The Declaration of the Rights of Man"): explanations paraphrase long options.
    other_words = {w for i, o in enumerate(options) if i != key for w in o}
    own_words = [w for w in keyed if w not in other_words and w not in _STOPWORDS
                 and (len(w) >= 4 or any(c.isdigit() for c in w))]
    names_key = contains(explanation, keyed) or any(w in explanation for w in own_words)
    argues_other = any(contains(explanation, o) for o in others) and not names_key
    return {"schema": True, "key": not argues_other, "distinct": distinct}


def quiz_score(answer: str, expected_items: int) -> float:
    """Share of checks passed over ``expected_items`` items (missing items fail every check).

    Items beyond ``expected_items`` are ignored. A question asked again (the same question as an
    earlier schema-valid item) earns nothing: no two questions of a quiz may be the same.
    """
    if expected_items < 1:
        raise ValueError(f"a quiz needs at least one expected item, got {expected_items}")
    quiz = parse_quiz(answer)
    if not quiz:
        return 0.0
    passed, seen = 0, set()
    for item in quiz[:expected_items]:
        if _schema_ok(item):
            question = _canonical(item["question"])
            if question in seen:
                continue
            seen.add(question)
        passed += sum(item_checks(item).values())
    return passed / (3 * expected_items)
