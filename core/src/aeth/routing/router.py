"""The embedding router: the specialist whose routing examples are nearest the prompt answers.

Each specialist's score is the mean cosine similarity between the prompt and its ``top_k`` nearest
routing examples (averaging a few, rather than taking the single best, keeps one lucky example
from winning on its own). When even the best score is below ``threshold``, the ``fallback``
specialist gets a bid of exactly ``threshold``, which outranks every other bid of this router.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from aeth.request import Bid
from aeth.routing.cache import EmbeddingCache, TextEmbedder
from aeth.routing.index import ExampleIndex, Hit
from aeth.specialist import Specialist

PLUGIN = "aeth.router"
INDEXES = 8  # specialist lists a router keeps an index for (an application asks with two: requests with and without images)


@dataclass(frozen=True)
class Match:
    """How close one specialist came to a prompt: its score and its nearest examples, best first."""

    specialist: str
    score: float
    nearest: tuple[tuple[str, float], ...]


class EmbeddingRouter:
    """Ranks specialists for a prompt by similarity to their routing examples.

    ``home`` is ``$AETH_HOME``: example embeddings are cached under ``home/cache/router``.
    ``embedder`` is anything with ``id``, ``dim`` and ``embed(texts)`` (normally
    :func:`aeth.routing.embedder.get_embedder`). ``plugin`` is written into every bid.
    """

    def __init__(self, embedder: TextEmbedder, home: Path, threshold: float = 0.35, fallback: str = "general",
                 top_k: int = 3, plugin: str = PLUGIN):
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        self.embedder = embedder
        self.home = Path(home)
        self.threshold = float(threshold)
        self.fallback = fallback
        self.top_k = int(top_k)
        self.plugin = plugin
        self.cache = EmbeddingCache(self.home / "cache" / "router", embedder)
        self._indexes: dict[tuple, ExampleIndex] = {}
        self._lock = threading.Lock()

    def match(self, prompt: str, specialists: dict[str, Specialist]) -> list[Match]:
        """Score every specialist that has routing examples against ``prompt``, best first.

        Specialists without examples are left out. Nothing is embedded (and the model is not
        loaded) when no specialist has examples.
        """
        index, hits = self._nearest(prompt, specialists)
        return [Match(h.specialist, h.score, tuple((index.examples[h.row][i], sim) for i, sim in zip(h.examples, h.similarities, strict=True)))
                for h in hits]

    def rank(self, prompt: str, specialists: dict[str, Specialist]) -> list[Bid]:
        """Bids for ``prompt``, best first; a fallback bid leads when no specialist is confident.

        The fallback bid (score exactly ``threshold``) is added only when ``fallback`` is among
        ``specialists``; it replaces any ordinary bid the fallback specialist had.
        """
        index, hits = self._nearest(prompt, specialists)
        bids = [Bid(h.specialist, h.score, index.reason(h), self.plugin) for h in hits]
        best = hits[0] if hits else None
        if (best is None or best.score < self.threshold) and self.fallback in specialists:
            if best is None:
                why = "no specialist has routing examples"
            else:
                why = f"no specialist is confident (best: {best.specialist} {best.score:.2f} < threshold {self.threshold:.2f})"
            bids = [b for b in bids if b.specialist != self.fallback]
            bids.insert(0, Bid(self.fallback, self.threshold, f"{why}; falling back to {self.fallback}", self.plugin))
        return bids

    def _nearest(self, prompt: str, specialists: dict[str, Specialist]) -> tuple[ExampleIndex | None, list[Hit]]:
        candidates = [s for s in specialists.values() if s.routing_examples]
        if not candidates:
            return None, []
        query = self.embedder.embed([prompt])[0]
        index = self._index(candidates)
        return index, index.nearest(query)

    def _index(self, candidates: list[Specialist]) -> ExampleIndex:
        """The index of ``candidates``, built on first use from the embedding cache.

        Keyed by the specialists' identities: a Specialist is frozen, so the same object has the same
        examples, and this costs a tuple of ids per route where the cache's own key hashes every example.
        """
        key = (self.embedder.id, self.top_k, *map(id, candidates))
        index = self._indexes.get(key)
        if index is None:
            with self._lock:
                index = self._indexes.get(key)
                if index is None:
                    index = ExampleIndex(candidates, [self.cache.get(s) for s in candidates], self.top_k)
                    if len(self._indexes) >= INDEXES:
                        del self._indexes[next(iter(self._indexes))]  # the oldest
                    self._indexes[key] = index
        return index
