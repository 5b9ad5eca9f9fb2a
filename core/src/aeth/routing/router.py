"""The embedding router: the specialist whose routing examples are nearest the prompt answers.

Each specialist's score is the mean cosine similarity between the prompt and its ``top_k`` nearest
routing examples (averaging a few, rather than taking the single best, keeps one lucky example
from winning on its own). When even the best score is below ``threshold``, the ``fallback``
specialist gets a bid of exactly ``threshold``, which outranks every other bid of this router.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aeth.request import Bid
from aeth.routing.cache import EmbeddingCache, TextEmbedder
from aeth.specialist import Specialist

PLUGIN = "aeth.router"


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

    def match(self, prompt: str, specialists: dict[str, Specialist]) -> list[Match]:
        """Score every specialist that has routing examples against ``prompt``, best first.

        Specialists without examples are left out. Nothing is embedded (and the model is not
        loaded) when no specialist has examples.
        """
        candidates = [s for s in specialists.values() if s.routing_examples]
        if not candidates:
            return []
        query = self.embedder.embed([prompt])[0]
        out = []
        for spec in candidates:
            examples = self.cache.get(spec)
            sims = examples @ query  # rows and query are unit length: dot product = cosine
            order = np.argsort(-sims, kind="stable")[: self.top_k]
            nearest = tuple((spec.routing_examples[i], float(sims[i])) for i in order)
            out.append(Match(spec.name, float(np.mean(sims[order])), nearest))
        out.sort(key=lambda m: (-m.score, m.specialist))
        return out

    def rank(self, prompt: str, specialists: dict[str, Specialist]) -> list[Bid]:
        """Bids for ``prompt``, best first; a fallback bid leads when no specialist is confident.

        The fallback bid (score exactly ``threshold``) is added only when ``fallback`` is among
        ``specialists``; it replaces any ordinary bid the fallback specialist had.
        """
        matches = self.match(prompt, specialists)
        bids = [Bid(m.specialist, m.score, _closest(m.nearest), self.plugin) for m in matches]
        best = matches[0] if matches else None
        if (best is None or best.score < self.threshold) and self.fallback in specialists:
            if best is None:
                why = "no specialist has routing examples"
            else:
                why = f"no specialist is confident (best: {best.specialist} {best.score:.2f} < threshold {self.threshold:.2f})"
            bids = [b for b in bids if b.specialist != self.fallback]
            bids.insert(0, Bid(self.fallback, self.threshold, f"{why}; falling back to {self.fallback}", self.plugin))
        return bids


def _closest(nearest: tuple[tuple[str, float], ...], shown: int = 3, width: int = 40) -> str:
    """``closest examples: 'Write a Python function that…' (0.71), ...`` for a bid's reason."""
    quoted = []
    for text, sim in nearest[:shown]:
        text = " ".join(text.split())
        if len(text) > width:
            text = text[: width - 1].rstrip() + "…"
        quoted.append(f"'{text}' ({sim:.2f})")
    return "closest examples: " + ", ".join(quoted)
