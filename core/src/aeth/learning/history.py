"""A specialist's learning history: one :class:`Entry` per adapter version, oldest first.

::

    from aeth.app import Aeth
    from aeth.learning.history import history

    for entry in history(Aeth(), "coding"):
        print(entry.version, entry.made, entry.score, entry.promoted, entry.active)

Everything comes from the versions' manifests (:mod:`aeth.models.adapters`) and the store's
activation log; nothing is trained or evaluated. Manifests are read defensively: a version written
by an older aeth, or stored with ``--no-gate``, simply lacks some fields, which stay None.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Entry", "entry_from_manifest", "history"]


@dataclass
class Entry:
    """One adapter version as the history shows it."""

    version: str
    number: int
    created: str | None
    parent: str | None
    #: how it was made: ``train`` (the recipe), ``distill`` (a teacher's answers or logits) or ``learn`` (feedback)
    made: str
    #: the training objective (``sft``, ``dpo``, ``kto``)
    objective: str | None
    #: what it trained on: a learn dataset version, or the recipe's ``NAME VERSION``
    dataset: str | None
    #: training records it trained on
    records: int | None
    #: feedback rows it learnt from (learn versions)
    feedback: int | None
    #: the gate's eval-suite score, what it was compared with, and that baseline's score
    score: float | None
    baseline: str | None
    baseline_score: float | None
    #: held-out agreement per kind (dpo, kto, sft): ``[new, baseline]``
    heldout: dict[str, list[float]] = field(default_factory=dict)
    #: the gate's decision: True, False, or None when no gate judged it
    promoted: bool | None = None
    forced: bool = False
    reason: str | None = None
    #: whether it is the active version now, and whether it ever was (promoted or activated by hand)
    active: bool = False
    activated: bool = False

    def to_json(self) -> dict:
        """The entry as plain JSON values."""
        return asdict(self)


def history(app: Any, specialist: str) -> list[Entry]:
    """Every adapter version of ``specialist``, oldest first. A name with no versions must be a
    registered specialist (so a typo is an error, not an empty history)."""
    from aeth.models.adapters import AdapterError

    store = app.adapters
    versions = store.versions(specialist)
    if not versions:
        app.specialist(specialist)  # raises the usual "unknown specialist" error
        return []
    try:
        active = store.active(specialist)
    except AdapterError:  # the pointer names a version that is gone: nothing is active
        active = None
    ever = {h.get("active") for h in store.history(specialist)}
    out = []
    for v in versions:
        entry = entry_from_manifest(v.version, v.number, v.manifest)
        entry.active = active is not None and v.version == active.version
        entry.activated = entry.active or v.version in ever
        out.append(entry)
    return out


def entry_from_manifest(version: str, number: int, manifest: dict) -> Entry:
    """An :class:`Entry` from one manifest; missing or malformed fields become None."""
    recipe, learning = _dict(manifest.get("recipe")), _dict(manifest.get("learning"))
    gate, promotion = _dict(manifest.get("eval")), _dict(manifest.get("promotion"))
    heldout = _dict(_dict(manifest.get("heldout")).get("scores"))
    learnt = learning.get("dataset") is not None or isinstance(learning.get("feedback"), list)
    sources = _dict(recipe.get("sources"))
    # a teacher's answers reach training as a generated dataset; its logits as the manifest's distillation
    distilled = "distillation" in manifest or any(str(s).startswith("generated ") for s in sources)
    if learnt:
        dataset = learning.get("dataset")
    else:
        dataset = " ".join(str(p) for p in (recipe.get("name"), recipe.get("version")) if p is not None) or None
    return Entry(
        version=version, number=number, created=manifest.get("created"), parent=manifest.get("parent"),
        made="learn" if learnt else "distill" if distilled else "train",
        objective=learning.get("objective") or _dict(manifest.get("hyperparameters")).get("objective"),
        dataset=dataset, records=_int(recipe.get("train")),
        feedback=len(learning["feedback"]) if isinstance(learning.get("feedback"), list) else None,
        score=_float(gate.get("score")), baseline=gate.get("baseline"), baseline_score=_float(gate.get("baseline_score")),
        heldout={str(k): [_float(_dict(s).get("score")), _float(_dict(s).get("baseline_score"))]
                 for k, s in heldout.items() if _float(_dict(s).get("score")) is not None},
        promoted=promotion["promoted"] if isinstance(promotion.get("promoted"), bool) else None,
        forced=promotion.get("forced") is True, reason=promotion.get("reason"))


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
