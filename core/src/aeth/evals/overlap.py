"""Contamination checks: benchmark items used for evaluation must never enter training data.

The test is the one GPT-3's authors used: two texts overlap when they share a run of ``n``
consecutive normalised words (lower-cased, punctuation dropped; 13 by default). A benchmark item
shorter than ``n`` words overlaps when it appears whole inside a training text. Every specialist
package runs this between its training records and its eval benchmarks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """Normalised words: lower-case letters and digits only."""
    return _WORD.findall(text.lower())


def record_text(record: Mapping) -> str:
    """All message contents of a chat record, joined (what a model trains on)."""
    return "\n".join(m.get("content", "") for m in record.get("messages", []) if isinstance(m, Mapping))


@dataclass(frozen=True)
class Overlap:
    """Training text ``train`` shares ``shared`` with benchmark item ``item``."""

    train: int
    item: int
    shared: str


def find_overlaps(train_texts: Iterable[str], benchmark_texts: Iterable[str], n: int = 13, limit: int = 20) -> list[Overlap]:
    """The first ``limit`` overlaps between training texts and benchmark items (indices into each)."""
    grams: dict[int, int] = {}
    short: list[tuple[int, str]] = []
    for j, item in enumerate(benchmark_texts):
        w = words(item)
        if len(w) < n:
            if len(w) >= 4:  # a few words ("yes", "the answer is 4") would match anything
                short.append((j, " ".join(w)))
            continue
        for i in range(len(w) - n + 1):
            grams.setdefault(hash(tuple(w[i:i + n])), j)
    found: list[Overlap] = []
    for t, text in enumerate(train_texts):
        w = words(text)
        joined = f" {' '.join(w)} "
        for i in range(len(w) - n + 1):
            j = grams.get(hash(tuple(w[i:i + n])))
            if j is not None:
                found.append(Overlap(t, j, " ".join(w[i:i + n])))
                break
        else:
            for j, phrase in short:
                if f" {phrase} " in joined:
                    found.append(Overlap(t, j, phrase))
                    break
        if len(found) >= limit:
            break
    return found
