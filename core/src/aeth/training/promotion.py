"""The promotion gate: a new adapter version becomes active only if its evals are not worse.

The specialist's eval suite runs (greedy, the same cases) on the new version and on what answers
today (the active version, or the bare base model); the new one is activated when its score is
at least as high. ``force`` activates it anyway. Either way the decision, both scores and
whether it was forced are written into the new version's manifest.
"""

from __future__ import annotations

from dataclasses import dataclass

from aeth.models.adapters import AdapterVersion


@dataclass
class Decision:
    """What the gate decided and why."""

    promoted: bool
    forced: bool
    score: float | None
    baseline: float | None
    baseline_name: str
    reason: str
    #: learning's gate (:mod:`aeth.learning.gate`): held-out agreement per kind, (new, baseline)
    heldout: dict | None = None


def suite_scores(app, specialist, version: str, baseline: str, limit: int | None = 20) -> tuple[float, float] | None:
    """The specialist's eval suite score (greedy, the same ``limit`` cases) of adapter ``version``
    and of ``baseline`` (a version name, or ``"base"``), in that order; None without a suite.
    The promotion gate's evaluation, shared with learning's gate (:mod:`aeth.learning.gate`)."""
    from aeth.evals.model import specialist_model
    from aeth.evals.runner import run_evaluation

    if specialist.suite is None:
        return None

    def evaluate(adapter: str) -> float:
        model = specialist_model(app, specialist, max_tokens=specialist.suite.max_tokens, adapter=adapter)
        return run_evaluation(app, specialist, model, limit=limit).score

    return evaluate(version), evaluate(baseline)


def gate(app, specialist, version: AdapterVersion, limit: int | None = 20, force: bool = False) -> Decision:
    """Evaluate ``version`` against what answers now and activate it if not worse (or if forced), in
    ``app``'s adapter store; the decision also goes into the version's manifest."""
    store = app.adapters
    current = store.active(specialist.name)
    baseline_name = current.version if current else "base"
    scores = suite_scores(app, specialist, version.version, baseline_name, limit)
    if scores is None:
        score = baseline = None
        better = False
        why = "no eval suite to judge it by"
    else:
        score, baseline = scores
        better = score >= baseline
        why = f"eval {score:.3f} {'>=' if better else '<'} {baseline:.3f} of {baseline_name}"
    promoted = better or force
    reason = ("promoted: " if better else "forced: " if force else "kept inactive: ") + why
    store.annotate(specialist.name, version.version, eval=eval_record(specialist, limit, score, baseline_name, baseline),
                   promotion={"promoted": promoted, "forced": force and not better, "reason": reason})
    if promoted:
        store.activate(specialist.name, version.version, reason=reason)
    return Decision(promoted, force and not better, score, baseline, baseline_name, reason)


def eval_record(specialist, limit: int | None, score: float | None, baseline_name: str, baseline: float | None) -> dict:
    """The manifest's ``eval`` entry: which suite, how many cases, both scores."""
    return {"suite": getattr(specialist.suite, "name", None), "limit": limit, "score": score, "baseline": baseline_name,
            "baseline_score": baseline}
