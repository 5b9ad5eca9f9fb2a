"""The eval suite: cases plus a scorer that turns one answer into a number in [0, 1].

This one is deliberately simple: an answer scores 1 if it mentions any of the key terms a correct
answer must contain. It catches an adapter that has gone off-topic or broken, not subtle mistakes;
replace it with a stronger check (exact answers, a rubric, a judge model) for a real specialist.
"""

from __future__ import annotations

import re

from aeth import EvalCase, EvalSuite

# (id, prompt, terms: a correct answer mentions at least one)
CASES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("chicken-temp", "What internal temperature should cooked chicken reach?", ("74", "165")),
    ("egg-substitute", "What can I use instead of one egg when baking muffins?",
     ("banana", "applesauce", "flax", "yogurt", "aquafaba")),
    ("soft-boiled", "How many minutes should I boil an egg for a runny yolk?", ("6", "six", "5", "five", "7", "seven")),
    ("rice-ratio", "How much water do I need for one cup of long-grain white rice?", ("1.5", "1 1/2", "one and a half", "2", "two")),
    ("buttermilk", "How do I make a buttermilk substitute?", ("lemon", "vinegar", "yogurt")),
    ("rest-steak", "Why should I let a steak rest after cooking?", ("juice", "juices", "redistribute")),
)


def score_answer(answer: str, terms: tuple[str, ...]) -> float:
    """1.0 if ``answer`` contains any of ``terms`` as a whole word (case-insensitive), else 0.0."""
    text = answer.lower()
    return 1.0 if any(re.search(rf"(?<![\w.]){re.escape(t.lower())}(?![\w])", text) for t in terms) else 0.0


def _cases() -> list[EvalCase]:
    return [EvalCase(id=cid, prompt=prompt, reference=terms) for cid, prompt, terms in CASES]


def build_suite() -> EvalSuite:
    """The suite aeth runs with ``aeth eval`` and before promoting a new adapter."""
    return EvalSuite(
        name="cooking-keywords",
        version="0.1",
        cases=_cases,
        score=lambda case, answer: score_answer(answer, case.reference),
        metric="keyword_hit",
        # how answers are drawn: one greedy answer per case, at most 256 tokens (an EvalCase may set
        # its own max_tokens). For pass@k, set samples=k and a temperature above 0.
        samples=1,
        temperature=0.0,
        max_tokens=256,
        description="Share of answers that mention a key term a correct answer needs (a sanity check, "
                    "not a measure of recipe quality).",
    )
