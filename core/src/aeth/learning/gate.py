"""Learning's promotion gate: the eval suite *and* agreement with held-out feedback.

A version learnt from feedback is judged twice against what answers now (the active version, or
the bare base): by the specialist's eval suite, as ``aeth train``'s gate does
(:func:`aeth.training.promotion.suite_scores`), and by how well it agrees with the users on the
learn dataset's held-out feedback (:mod:`aeth.learning.agreement`, one score per kind of record).
It is promoted only if no score is worse (:func:`decide`); ``force`` activates it anyway. Both
scores, the dataset version and the feedback ids it learnt from go into its manifest, so ``aeth
adapters show`` tells where a version came from and ``aeth adapters rollback`` undoes it.
"""

from __future__ import annotations

from typing import Any

from aeth.training.promotion import Decision, eval_record, suite_scores

__all__ = ["decide", "learn_gate", "learning_record"]

#: how each held-out kind is named in a decision's reason
LABELS = {"dpo": "held-out pairs agreed", "kto": "held-out verdicts agreed", "sft": "held-out answers log-prob"}


def decide(suite: tuple[float, float] | None, heldout: dict[str, tuple[float, float]], force: bool = False,
           baseline_name: str = "base") -> tuple[bool, bool, str]:
    """``(promoted, forced, reason)`` from the suite's (new, baseline) scores (None: no suite) and the
    held-out (new, baseline) score per kind: promoted when there is something to judge by and no
    score is lower than the baseline's; ``forced`` when only ``force`` promoted it."""
    checks = ([("eval", *suite)] if suite is not None else []) + [(LABELS.get(k, k), *v) for k, v in heldout.items()]
    if not checks:
        better, why = False, "nothing to judge it by (no eval suite, no held-out feedback)"
    else:
        better = all(new >= old for _, new, old in checks)
        why = "; ".join(f"{label} {new:.3f} {'>=' if new >= old else '<'} {old:.3f}" for label, new, old in checks)
        why += f" of {baseline_name}"
    promoted = better or force
    return promoted, force and not better, ("promoted: " if better else "forced: " if force else "kept inactive: ") + why


def learning_record(version: Any, dataset: Any, objective: str) -> dict:
    """The manifest's ``learning`` entry: what the objective recorded, plus the dataset version, its
    source (``feedback`` or ``self-practice``, with the card's ``practice`` entry) and the feedback
    (and answers) it learnt from."""
    return {**version.manifest.get("learning", {}), "objective": objective, "dataset": dataset.version,
            "dataset_path": str(dataset.path), "source": dataset.card.get("source", "feedback"),
            **({"practice": dataset.card["practice"]} if "practice" in dataset.card else {}),
            "feedback": dataset.feedback_ids,
            "interactions": list(dataset.card.get("interactions", []))}


def learn_gate(app: Any, specialist: Any, version: Any, dataset: Any, objective: str, *, limit: int | None = 20,
               force: bool = False, seq_len: int = 512) -> Decision:
    """Judge ``version`` (learnt from ``dataset`` with ``objective``) against what answers now and
    activate it if no score is worse (or if forced); everything goes into its manifest."""
    from aeth.learning.agreement import agreement

    store = app.adapters
    current = store.active(specialist.name)
    baseline_name = current.version if current else "base"
    suite = suite_scores(app, specialist, version.version, baseline_name, limit)
    scores = agreement(app, specialist, dataset, {"new": version, "baseline": current}, seq_len=seq_len)
    heldout = {kind: (scores["new"][kind], scores["baseline"][kind]) for kind in scores["new"]}
    promoted, forced, reason = decide(suite, heldout, force, baseline_name)
    score, baseline = suite if suite is not None else (None, None)
    store.annotate(specialist.name, version.version,
                   eval=eval_record(specialist, limit, score, baseline_name, baseline),
                   heldout={"dataset": dataset.version, "baseline": baseline_name,
                            "scores": {k: {"score": new, "baseline_score": old} for k, (new, old) in heldout.items()},
                            "records": dataset.card["records"]["heldout"]},
                   learning=learning_record(version, dataset, objective),
                   promotion={"promoted": promoted, "forced": forced, "reason": reason})
    if promoted:
        store.activate(specialist.name, version.version, reason=reason)
    return Decision(promoted, forced, score, baseline, baseline_name, reason, heldout)
