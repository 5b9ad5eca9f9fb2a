"""The routing examples of a list of specialists, arranged to score a prompt against all of them at once.

The router builds an :class:`ExampleIndex` once per list of specialists and reuses it for as long
as it is asked about those very objects. Per prompt it then costs one similarity product per
specialist and a few whole-array steps: one stable sort of a (specialists x examples) matrix
finds every specialist's ``top_k`` nearest examples, one mean scores them all, and the example
texts a bid's reason quotes are shortened in advance.

The products stay one per specialist, each on the cache's own array, because BLAS rounds a row
differently depending on where it sits in a matrix (OpenBLAS 0.3.31 here computes a matrix's last
one to three rows with another kernel): one product over all examples stacked moved scores by an
ulp in most random trials, and with them, now and then, ties and the order of bids.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from aeth.specialist import Specialist

SHOWN = 3  # nearest examples a bid's reason quotes
WIDTH = 40  # characters of an example in a reason, ellipsis included


class Hit(NamedTuple):
    """One specialist's score for a prompt and its nearest examples, best first.

    ``row`` is the specialist's position in the index, ``examples`` index its ``routing_examples``
    and ``similarities`` are theirs, in the same order.
    """

    row: int
    specialist: str
    score: float
    examples: list[int]
    similarities: list[float]


class ExampleIndex:
    """The example embeddings of ``specialists`` (``vectors[i]`` are those of ``specialists[i]``,
    each with at least one row), scored by the mean similarity of the ``top_k`` nearest."""

    def __init__(self, specialists: Sequence[Specialist], vectors: Sequence[np.ndarray], top_k: int):
        # Held, not only looked at: while the index lives, no other object can take one of their id()s,
        # which is what the router keys its indexes by.
        self.specialists = tuple(specialists)
        self.names = [s.name for s in self.specialists]
        self.examples = [s.routing_examples for s in self.specialists]
        self.vectors = list(vectors)
        self.top_k = top_k
        counts = np.array([len(v) for v in self.vectors])
        width = int(counts.max())
        self.filled = np.arange(width) < counts[:, None]  # (specialists, width): where each row's similarities go
        self.rows = np.arange(len(counts))[:, None]
        self.averaged = np.minimum(counts, top_k).tolist()  # how many similarities each score averages
        # rows that average as many similarities: one group, all rows, unless someone has fewer than top_k examples
        self.groups = [(np.intp(m), np.flatnonzero(np.equal(self.averaged, m))) for m in sorted(set(self.averaged))]
        if len(self.groups) == 1:
            self.groups = [(self.groups[0][0], slice(None))]  # a view, not a copy
        # each example as a reason quotes it, up to its similarity: "'Write a Python function that…' ("
        self.quoted = [[f"{quote(text)} (" for text in examples] for examples in self.examples]

    def nearest(self, query) -> list[Hit]:
        """Every specialist's score for ``query``, best first; equal scores go by name, then by position."""
        products = [v @ query for v in self.vectors]  # rows and query are unit length: dot product = cosine
        # NaN pads the shorter rows: a sort puts it after every similarity, so a pad is never among the nearest
        sims = np.full(self.filled.shape, np.nan, dtype=products[0].dtype)
        sims[self.filled] = np.concatenate(products)  # row-major: each row filled from the left
        order = np.argsort(-sims, axis=1, kind="stable")[:, :self.top_k]  # stable: equal similarities keep example order
        top = sims[self.rows, order]
        scores = np.empty(len(products), dtype=top.dtype)
        for m, rows in self.groups:  # np.mean(top[rows, :m], axis=1) in np.mean's own two steps, without its Python overhead
            sums = np.add.reduce(top[rows, :m], axis=1)
            scores[rows] = np.true_divide(sums, m, out=sums, casting="unsafe")
        scores, order, top = scores.tolist(), order.tolist(), top.tolist()
        names, averaged = self.names, self.averaged
        ranked = sorted(range(len(products)), key=lambda r: (-scores[r], names[r]))
        return [Hit(r, names[r], scores[r], order[r][:averaged[r]], top[r][:averaged[r]]) for r in ranked]

    def reason(self, hit: Hit) -> str:
        """``closest examples: 'Write a Python function that…' (0.71), ...``: why ``hit`` scored as it did."""
        quoted = self.quoted[hit.row]
        shown = zip(hit.examples[:SHOWN], hit.similarities[:SHOWN], strict=True)
        return "closest examples: " + ", ".join([f"{quoted[i]}{sim:.2f})" for i, sim in shown])


def quote(text: str, width: int = WIDTH) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis, in single quotes."""
    text = " ".join(text.split())
    if len(text) > width:
        text = text[: width - 1].rstrip() + "…"
    return f"'{text}'"
