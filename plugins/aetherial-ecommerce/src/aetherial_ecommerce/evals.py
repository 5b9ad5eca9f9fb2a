"""The ``ecommerce`` suite: four public e-commerce benchmarks, each a group of the report.

- ``product_matching``: do two product titles name the same real-world product? 100 pairs (all 50
  matches and 50 non-matches drawn with a fixed seed) from OpenAI evals' ``product-matching``
  set (a WDC Products sample, Peeters & Bizer), zero-shot prompt, answered Yes/No.
- ``product_ie``: all 40 items of evals' ``product-ie`` zero-shot set (a MAVE sample, Brinkmann
  et al.): give one attribute's exact value from a product title, or ``I do not know.``.
- ``shopping_discount_comparison``: all 16 items of evals' set of that name: which shop is
  cheapest once shipping and discounts are applied.
- ``review_sentiment``: 150 of the Amazon review sentences that at least 20 people rated for
  VADER (Hutto & Gilbert, 2014), 75 clearly positive and 75 clearly negative.

evals' data is read from where the ``evals`` package installs (found with ``find_spec``; the
package itself is never imported, since it needs dozens of dependencies aeth does not). VADER's
sentences are fetched once from the vaderSentiment sdist by :mod:`aetherial_ecommerce.vader_data`.
Nothing of either benchmark is copied into this package.

evals grades all three of its sets with ``Match``: an answer is right when it *starts with* an
ideal answer, case- and whitespace-sensitive. A chat model writes ``**Answer:** yes``, ``Yes.``
or a JSON object instead, so each scorer below first takes out the answer (see its docstring),
then applies the same starts-with-or-equals rule to normalised text.
"""

from __future__ import annotations

import json
import random
import re
import unicodedata
from functools import cache
from pathlib import Path

from aeth import EvalCase, EvalSuite
from aeth.datasets import installed_data
from aeth.errors import SpecialistError

EVALS_DISTRIBUTION = "evals==3.0.1.post1"
EVALS_INSTALL = f"pip install --no-deps {EVALS_DISTRIBUTION}"
PRODUCT_MATCHING_FILE = "product-matching/zeroshot/samples.jsonl"
PRODUCT_IE_FILE = "product-ie/zeroshot/product_ie_zero_shot_samples.jsonl"
SHOPPING_FILE = "shopping_discount_comparison/samples.jsonl"
GROUPS = ("product_matching", "product_ie", "shopping_discount_comparison", "review_sentiment")

SEED = 20240501
MATCHING_PER_LABEL = 50
SENTIMENT_PER_LABEL = 75
# VADER's raters scored each sentence from -4 (extremely negative) to +4 (extremely positive).
# A mean of at least +1 ("slightly positive" or stronger, on average over 20+ people) is a clear
# positive, at most -1 a clear negative. The band in between is dropped rather than called
# "neutral": it mixes plain facts with sentences the raters disagreed on (a mean of 0.3 can be
# half the raters at +2 and half at -1), so a "neutral" gold label there would be noise.
POSITIVE_AT, NEGATIVE_AT = 1.0, -1.0
SENTIMENT_MIN_WORDS, SENTIMENT_MAX_WORDS = 4, 40
SENTIMENT_LABELS = ("positive", "negative", "neutral", "mixed")
UNKNOWN = "I do not know."

SENTIMENT_PROMPT = ("What is the sentiment of this sentence from a product review? Answer with one word: positive, "
                    "negative or neutral.\n\nSentence: \"{text}\"")


# ---- loading ---------------------------------------------------------------------------------


def evals_data_dir() -> Path:
    """``evals/registry/data`` inside the installed ``evals`` package (found without importing it)."""
    return installed_data("evals", "registry/data", "the ecommerce eval (OpenAI evals' registry data)", EVALS_INSTALL)


@cache
def evals_records(relative: str) -> tuple[dict, ...]:
    """The records of one evals data file (``{"input": [messages], "ideal": str | [str]}``)."""
    path = evals_data_dir() / relative
    if not path.is_file():
        raise SpecialistError(f"{path} is missing; reinstall the evals data with `{EVALS_INSTALL}`")
    with path.open(encoding="utf-8") as f:
        return tuple(json.loads(line) for line in f if line.strip())


def _ideals(record: dict) -> tuple[str, ...]:
    ideal = record["ideal"]
    return (ideal,) if isinstance(ideal, str) else tuple(ideal)


def _prompt(record: dict) -> str:
    """evals' chat messages as one prompt: its system text (the task) above the user's."""
    return "\n\n".join(m["content"].strip() for m in record["input"])


def _shuffled(items: list, salt: str) -> list:
    items = list(items)
    random.Random(f"{SEED}-{salt}").shuffle(items)
    return items


def product_matching_cases() -> list[EvalCase]:
    """All 50 matching pairs and 50 of the 383 non-matching ones (fixed seed), shuffled.

    Balanced, so always answering "No" scores 0.5 instead of the full set's 0.88.
    """
    indexed = list(enumerate(evals_records(PRODUCT_MATCHING_FILE)))
    yes = [(i, r) for i, r in indexed if r["ideal"] == "Yes"]
    no = [(i, r) for i, r in indexed if r["ideal"] == "No"]
    rng = random.Random(f"{SEED}-product_matching")
    picked = sorted(rng.sample(yes, MATCHING_PER_LABEL) + rng.sample(no, MATCHING_PER_LABEL), key=lambda p: p[0])
    return [EvalCase(id=f"product_matching/{i}", prompt=_prompt(r), reference=_ideals(r), group="product_matching",
                     max_tokens=48)
            for i, r in _shuffled(picked, "product_matching-order")]


def product_ie_cases() -> list[EvalCase]:
    """All 40 attribute questions; the reference is ``(attribute, acceptable values...)``."""
    cases = []
    for i, r in enumerate(evals_records(PRODUCT_IE_FILE)):
        attribute = r["input"][-1]["content"].rsplit("Requested Attribute:", 1)[1].strip()
        prompt = _prompt(r) + f"\n\nAnswer with the value of {attribute} only, or 'I do not know.'."
        cases.append(EvalCase(id=f"product_ie/{i}", prompt=prompt, reference=(attribute, *_ideals(r)),
                              group="product_ie", max_tokens=64))
    return _shuffled(cases, "product_ie-order")


def shopping_cases() -> list[EvalCase]:
    """All 16 shop comparisons, in the file's order (the prompt already asks for ``Shop N``)."""
    return [EvalCase(id=f"shopping_discount_comparison/{i}", prompt=_prompt(r), reference=_ideals(r),
                     group="shopping_discount_comparison", max_tokens=96)
            for i, r in enumerate(evals_records(SHOPPING_FILE))]


def sentiment_label(mean: float) -> str | None:
    """``positive`` at a mean rating >= +1.0, ``negative`` at <= -1.0, else None (not used)."""
    return "positive" if mean >= POSITIVE_AT else "negative" if mean <= NEGATIVE_AT else None


def sentiment_items() -> list[dict]:
    """75 positive and 75 negative sentences (fixed seed), shuffled: ``{id, text, label, mean_sentiment}``.

    Sentences of 4 to 40 words only (shorter ones are fragments like "pros:", longer ones run-ons
    from the raw reviews); a text that occurs more than once is dropped altogether.
    """
    from aetherial_ecommerce.vader_data import load

    rows = load()
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["text"]] = counts.get(row["text"], 0) + 1
    pool: dict[str, list[dict]] = {"positive": [], "negative": []}
    for row in rows:
        label = sentiment_label(row["mean_sentiment"])
        n_words = len(row["text"].split())
        if label and counts[row["text"]] == 1 and SENTIMENT_MIN_WORDS <= n_words <= SENTIMENT_MAX_WORDS:
            pool[label].append({**row, "label": label})
    rng = random.Random(f"{SEED}-review_sentiment")
    picked = [item for label in ("positive", "negative") for item in rng.sample(pool[label], SENTIMENT_PER_LABEL)]
    return _shuffled(picked, "review_sentiment-order")


def sentiment_cases() -> list[EvalCase]:
    """The review sentences as cases; the reference is the gold label."""
    return [EvalCase(id=f"review_sentiment/{item['id']}", prompt=SENTIMENT_PROMPT.format(text=item["text"]),
                     reference=item["label"], group="review_sentiment", max_tokens=48)
            for item in sentiment_items()]


def _cases() -> list[EvalCase]:
    return product_matching_cases() + product_ie_cases() + shopping_cases() + sentiment_cases()


# ---- taking the answer out of a chat reply ---------------------------------------------------

_MARKUP = re.compile(r"[*`#>]+")  # markdown; "_" becomes a space (also "processor_speed" -> "processor speed")
_LABEL = re.compile(r"^\s*(?:final\s+answer|answer|sentiment|label|result|value|attribute\s+value)\s*[:=-]\s*", re.I)


def _clean(text: str) -> str:
    """NFKC, markdown emphasis and quotes dropped, whitespace collapsed per line."""
    text = _MARKUP.sub("", unicodedata.normalize("NFKC", text or "").replace("\u2019", "'")).replace("_", " ")
    return "\n".join(" ".join(line.split()).strip(" \"'") for line in text.splitlines())


def _lines(text: str) -> list[str]:
    return [line for line in _clean(text).splitlines() if line.strip(" -•")]


def _labelled(text: str) -> str | None:
    """What follows the last ``Answer:`` / ``Sentiment:`` label (or None): an explicit final answer."""
    found = None
    for line in _lines(text):
        for part in line.split("|"):  # "Sentiment: positive | Reason: ..." on one line
            m = _LABEL.match(part.strip(" -•"))
            if m and part.strip(" -•")[m.end():].strip():
                found = part.strip(" -•")[m.end():].strip()
    return found


def _first_word(text: str) -> str:
    m = re.match(r"[^\w]*(\w+)", text)
    return m.group(1).casefold() if m else ""


def score_yes_no(answer: str, ideals: tuple[str, ...]) -> float:
    """1.0 if the reply's Yes/No equals the ideal ("Yes" or "No").

    The reply's answer is the first word after its last ``Answer:`` label if it has one, else
    the first word of the reply (evals' starts-with rule, after dropping markdown and case):
    "Yes.", "**No**, the model numbers differ", "Answer: yes" all count; a reply that starts
    with anything else ("They are the same product", "Maybe") scores 0.
    """
    labelled = _labelled(answer)
    lines = _lines(answer)
    word = _first_word(labelled if labelled is not None else lines[0] if lines else "")
    return 1.0 if word in ("yes", "no") and any(word == i.casefold() for i in ideals) else 0.0


def score_shop(answer: str, ideals: tuple[str, ...]) -> float:
    """1.0 if the reply names the ideal shop (``Shop 2``) first.

    The reply's answer is its last ``Answer:`` label's text if any, else its first line; it
    must start with ``Shop N`` (or a bare ``N``, the shop number the prompt asks for), and N
    must be the ideal's. Shops mentioned later in the reasoning are ignored, as evals does.
    """
    labelled = _labelled(answer)
    lines = _lines(answer)
    text = (labelled if labelled is not None else lines[0] if lines else "").casefold()
    m = re.match(r"^(?:shop\s*(?:number|no\.?|#)?\s*)?(\d+)\b", text)
    want = {re.sub(r"\D", "", i) for i in ideals}
    return 1.0 if m and m.group(1) in want else 0.0


_NEGATED = re.compile(r"(?:\bnot|\bno|n't)\s+(?:\w+\s+)?$")  # "not positive", "isn't very negative"


def _one_label(text: str) -> str | None:
    """The label ``text`` names, if it names exactly one and does not negate it."""
    text = text.casefold()
    mentioned = {m.group(0): m.start() for m in re.finditer(r"\b(?:positive|negative|neutral|mixed)\b", text)}
    if len(mentioned) != 1:
        return None
    (label, at), = mentioned.items()
    return None if _NEGATED.search(text[:at]) else label


def sentiment_of(answer: str) -> str | None:
    """The sentiment label a reply gives, or None.

    The reply's answer is the text after its last ``Sentiment:``/``Answer:`` label (the
    specialist's own ``**Sentiment:** positive | **Reason:** ...`` style), which must start with
    a label word; without a label, it is the reply's first line ("Negative.", evals' starts-with
    rule, or "The sentiment is positive."). Either way that text must name exactly one label and
    not negate it: "Positive and negative aspects" and "It is not positive" give None.
    """
    labelled = _labelled(answer)
    if labelled is not None:
        return _one_label(labelled) if _first_word(labelled) in SENTIMENT_LABELS else None
    lines = _lines(answer)
    return _one_label(lines[0]) if lines else None


def score_sentiment(answer: str, label: str) -> float:
    """1.0 if the reply's label (see :func:`sentiment_of`) is exactly the gold one; "mixed" never is."""
    return 1.0 if sentiment_of(answer) == label else 0.0


# -- product attribute extraction

_UNKNOWN_REPLIES = ("idonotknow", "idontknow", "unknown", "notspecified", "notmentioned", "notstated",
                    "notavailable", "notapplicable", "na", "none", "null")


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.casefold())


def _units(text: str) -> tuple[str, set[int]]:
    """``text`` as lower-case letters, digits and decimal points with no spaces, and the set of
    positions where one word ends (space, punctuation, or a switch between digits and letters,
    so "1.83GHz" and "1.83 GHz" compare equal, and "SDHC" does not start with the word "SD")."""
    text = unicodedata.normalize("NFKC", text).casefold()
    out, ends = [], set()
    prev = ""
    for i, ch in enumerate(text):
        keep = ch.isalnum() or (ch == "." and prev.isdigit() and i + 1 < len(text) and text[i + 1].isdigit())
        if not keep:
            if out:
                ends.add(len(out))
            prev = ""
            continue
        if out and prev and (prev.isdigit() != ch.isdigit()) and ch != "." and prev != ".":
            ends.add(len(out))
        out.append(ch)
        prev = ch
    ends.add(len(out))
    return "".join(out), ends


def value_matches(value: str, ideal: str) -> bool:
    """evals' Match on normalised text: ``value`` equals ``ideal`` or starts with it as whole words.

    Case, spaces and punctuation are ignored ("Micro SDHC" = "microSDHC", "1.83 GHz" =
    "1.83GHz"), decimal points are kept ("2.0 GHz" != "20 GHz"), and the prefix must end at a
    word boundary: "Intel Core i3" starts with "Intel", but "SDHC" does not start with "SD",
    which evals' raw ``startswith`` would accept.
    """
    got, ends = _units(value)
    want, _ = _units(ideal)
    return bool(want) and got.startswith(want) and len(want) in ends


def _json_value(answer: str, attribute: str) -> tuple[bool, str | None]:
    """``(found, value)`` from a JSON object in the reply: the attribute's key (compared without
    case, spaces or ``_``), or the only key; JSON null and missing values give ``UNKNOWN``."""
    text = unicodedata.normalize("NFKC", answer)
    m = re.search(r"```(?:json)?\s*(.*?)(?:```|\Z)", text, re.S)
    candidates = [m.group(1)] if m else []
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        candidates.append(text[start:end + 1])
    for blob in candidates:
        try:
            data = json.loads(blob.strip())
        except ValueError:
            continue
        if isinstance(data, str):
            return True, data
        if isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict):
            data = data[0]
        if not isinstance(data, dict) or not data:
            continue
        keys = {_key(k): v for k, v in data.items()}
        if _key(attribute) in keys:
            value = keys[_key(attribute)]
        elif len(data) == 1:
            value = next(iter(data.values()))
        else:
            return True, None
        if isinstance(value, list):
            value = value[0] if value else None
        return True, UNKNOWN if value is None or value == "" else str(value)
    return False, None


def attribute_value(answer: str, attribute: str) -> str | None:
    """The attribute value a reply gives, or None.

    The specialist is trained to extract attributes as a JSON object, so a JSON object (fenced
    or bare) is read first: the value under the requested attribute's key, or the only key's;
    JSON null means "I do not know.". Otherwise it is the text after the last ``Answer:`` label,
    else after the last "<attribute>:" line (a small model often repeats the title first, then
    writes "Processor Speed: 2 GHz"), else the first line, with a leading "<attribute>:" or
    "The <attribute> is" taken off (the benchmark asks for the bare value).
    """
    found, value = _json_value(answer, attribute)
    if found:
        return value
    attr = r"\s+".join(map(re.escape, attribute.split()))
    lines = _lines(answer)
    labelled = _labelled(answer)
    if labelled is None:
        named = [m.group(1) for line in lines if (m := re.match(rf"^[-•\s]*{attr}\s*[:=]\s*(\S.*)$", line, re.I))]
        labelled = named[-1] if named else None
    text = labelled if labelled is not None else lines[0] if lines else ""
    text = re.sub(rf"^(?:the\s+)?(?:requested\s+attribute\s*:?\s*)?{attr}(?:\s+of\s+[^:]*?)?(?:\s*[:=-]|\s+is\b)\s*",
                  "", text, flags=re.I)
    return text.strip() or None


def score_attribute(answer: str, reference: tuple[str, ...]) -> float:
    """1.0 if the reply's value (see :func:`attribute_value`) matches an acceptable value.

    ``reference`` is ``(attribute, ideal, ...)``. When the ideal is "I do not know.", the usual
    ways a chat model abstains count too ("I don't know", "unknown", "not specified", "N/A",
    JSON null); for any other ideal they score 0.
    """
    attribute, *ideals = reference
    value = attribute_value(answer, attribute)
    if value is None:
        return 0.0
    if UNKNOWN in ideals and _key(value).rstrip(".") in _UNKNOWN_REPLIES:
        return 1.0
    return 1.0 if any(value_matches(value, ideal) for ideal in ideals) else 0.0


def score_case(case: EvalCase, answer: str) -> float:
    """The group's scorer applied to ``answer``."""
    if case.group == "product_matching":
        return score_yes_no(answer, case.reference)
    if case.group == "product_ie":
        return score_attribute(answer, case.reference)
    if case.group == "shopping_discount_comparison":
        return score_shop(answer, case.reference)
    if case.group == "review_sentiment":
        return score_sentiment(answer, case.reference)
    raise SpecialistError(f"ecommerce suite: case {case.id!r} has unknown group {case.group!r}")


def build_suite() -> EvalSuite:
    """The ``ecommerce`` suite: product matching, attribute extraction, discount comparison, sentiment."""
    return EvalSuite(
        name="ecommerce-bench",
        version="1.0",
        cases=_cases,
        score=score_case,
        metric="accuracy",
        samples=1,
        temperature=0.0,
        max_tokens=64,
        description="Accuracy on four e-commerce benchmarks: product matching (100 balanced WDC Products pairs, "
                    "Yes/No), product attribute extraction (40 MAVE titles, exact value or 'I do not know.'), "
                    "cheapest-shop comparison (16), and review-sentence sentiment (150 VADER Amazon sentences, "
                    "positive/negative). Answers are taken out of chat replies, then matched as OpenAI evals' "
                    "Match does (equals or starts with an ideal answer), on normalised text.",
        source="OpenAI evals registry (product-matching from WDC Products, product-ie from MAVE, "
               "shopping_discount_comparison), MIT licence, PyPI package evals 3.0.1.post1; VADER Amazon review "
               "sentences (Hutto & Gilbert, ICWSM 2014), MIT licence, sdist of PyPI package vaderSentiment 3.3.2",
    )
