"""``general``'s eval suite: everyday factual questions whose answers can be checked.

80 questions (capitals, units, animals, science, arts), written for this suite and used nowhere
else: not in the routing examples, not in any recipe, not in the Quickstart's question. Each
lists the words a correct answer must contain. The sampling sweep (:mod:`aeth.evals.sweep`)
chooses ``general``'s generation defaults on half of them and reports the other half; the
promotion gate judges a ``general`` adapter by all of them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from aeth.specialist import EvalCase, EvalSuite

DATA = Path(__file__).with_name("data") / "general_facts.jsonl"


def score_answer(answer: str, accepted: tuple[str, ...]) -> float:
    """1.0 if ``answer`` contains any accepted answer as a whole word (case-insensitive), else 0.0."""
    text = answer.lower()
    return 1.0 if any(re.search(rf"(?<!\w){re.escape(a.lower())}(?!\w)", text) for a in accepted) else 0.0


def cases() -> list[EvalCase]:
    """Every question, in file order."""
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [EvalCase(id=r["id"], prompt=r["question"], reference=tuple(r["answers"])) for r in rows]


def build_suite() -> EvalSuite:
    """The suite: one greedy answer per question, 64 tokens at most (a sentence is enough)."""
    return EvalSuite(
        name="everyday-facts",
        version="1.0",
        cases=cases,
        score=lambda case, answer: score_answer(answer, case.reference),
        metric="correct",
        samples=1,
        temperature=0.0,
        max_tokens=64,
        description="Share of everyday factual questions (capitals, units, animals, science) answered with "
                    "the right fact.",
        source="written for aeth (core/src/aeth/default_plugins/data/general_facts.jsonl), Apache-2.0",
    )
