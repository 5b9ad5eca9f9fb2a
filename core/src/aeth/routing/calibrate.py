"""How well routing routes: accuracy and a confusion matrix over labelled prompts."""

from __future__ import annotations

from collections.abc import Callable, Iterable

NO_BID = "(none)"  # the "predicted" label when no specialist was chosen at all


def accuracy(predict: Callable[[str], str | None], labelled: Iterable[tuple[str, str]]) -> dict:
    """Route each ``(prompt, expected_specialist)`` with ``predict`` and compare with the label.

    ``predict(prompt)`` returns the chosen specialist's name (``None``: no choice). Returns
    ``{"accuracy", "total", "correct", "confusion", "mistakes"}``: ``confusion`` is
    ``{expected: {predicted: count}}`` and ``mistakes`` lists ``(prompt, expected, predicted)``
    for every wrong route.
    """
    labelled = list(labelled)
    if not labelled:
        raise ValueError("accuracy() needs at least one (prompt, expected_specialist) pair")
    confusion: dict[str, dict[str, int]] = {}
    mistakes = []
    for prompt, expected in labelled:
        predicted = predict(prompt) or NO_BID
        row = confusion.setdefault(expected, {})
        row[predicted] = row.get(predicted, 0) + 1
        if predicted != expected:
            mistakes.append((prompt, expected, predicted))
    correct = len(labelled) - len(mistakes)
    return {"accuracy": correct / len(labelled), "total": len(labelled), "correct": correct,
            "confusion": confusion, "mistakes": mistakes}


def router_predictor(router, specialists) -> Callable[[str], str | None]:
    """``predict`` for :func:`accuracy` from an :class:`~aeth.routing.router.EmbeddingRouter` alone."""
    def predict(prompt: str) -> str | None:
        bids = router.rank(prompt, specialists)
        return bids[0].specialist if bids else None

    return predict
