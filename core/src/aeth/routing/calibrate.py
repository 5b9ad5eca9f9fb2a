"""How well a router routes: accuracy and a confusion matrix over labelled prompts."""

from __future__ import annotations

from collections.abc import Iterable

from aeth.routing.router import EmbeddingRouter
from aeth.specialist import Specialist

NO_BID = "(none)"  # the "predicted" label when the router made no bid at all


def accuracy(router: EmbeddingRouter, labelled: Iterable[tuple[str, str]],
             specialists: dict[str, Specialist]) -> dict:
    """Route each ``(prompt, expected_specialist)`` and compare the top bid with the label.

    Returns ``{"accuracy", "total", "correct", "confusion", "mistakes"}``: ``confusion`` is
    ``{expected: {predicted: count}}`` (the predicted label is ``"(none)"`` when no bid was made)
    and ``mistakes`` lists ``(prompt, expected, predicted)`` for every wrong route.
    """
    labelled = list(labelled)
    if not labelled:
        raise ValueError("accuracy() needs at least one (prompt, expected_specialist) pair")
    confusion: dict[str, dict[str, int]] = {}
    mistakes = []
    for prompt, expected in labelled:
        bids = router.rank(prompt, specialists)
        predicted = bids[0].specialist if bids else NO_BID
        row = confusion.setdefault(expected, {})
        row[predicted] = row.get(predicted, 0) + 1
        if predicted != expected:
            mistakes.append((prompt, expected, predicted))
    correct = len(labelled) - len(mistakes)
    return {"accuracy": correct / len(labelled), "total": len(labelled), "correct": correct,
            "confusion": confusion, "mistakes": mistakes}
