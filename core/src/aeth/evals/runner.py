"""The eval runner: every case of a suite through a ``prompt -> answer`` function, scored."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

from aeth.errors import PluginError, SpecialistError
from aeth.specialist import EvalSuite, Specialist


@dataclass
class CaseResult:
    """One case: what was asked, what came back, and its score in [0, 1]."""

    id: str
    prompt: str
    answer: str
    score: float


@dataclass
class EvalReport:
    """A suite's result: mean score over ``n`` cases, with every case kept."""

    specialist: str
    suite: str
    suite_version: str
    metric: str
    score: float
    n: int
    seconds: float
    cases: list[CaseResult] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        return asdict(self)


def limited(suite: EvalSuite, limit: int | None) -> EvalSuite:
    """The same suite restricted to its first ``limit`` cases (all when ``None``)."""
    if limit is None:
        return suite
    if limit < 1:
        raise SpecialistError(f"--limit must be at least 1, got {limit}")
    return replace(suite, cases=lambda: itertools.islice(suite.cases(), limit))


def run_suite(specialist: Specialist, suite: EvalSuite, model: Callable[[str], str], progress: bool = False) -> EvalReport:
    """Answer and score every case of ``suite``; a scorer outside [0, 1] is a plugin bug."""
    started = time.perf_counter()
    cases = list(suite.cases())
    results = []
    bar = None
    if progress:
        from rich.progress import Progress

        bar = Progress(transient=True)
        bar.start()
        task = bar.add_task(f"{specialist.name}: {suite.name}", total=len(cases))
    try:
        for case in cases:
            answer = model(case.prompt)
            score = float(suite.score(case, answer))
            if not 0.0 <= score <= 1.0 or math.isnan(score):
                raise PluginError(f"suite {suite.name!r} of specialist {specialist.name!r} scored case {case.id!r} "
                                  f"{score}; scores must lie in [0, 1]")
            results.append(CaseResult(case.id, case.prompt, answer, score))
            if bar:
                bar.advance(task)
    finally:
        if bar:
            bar.stop()
    mean = sum(r.score for r in results) / len(results) if results else 0.0
    return EvalReport(specialist.name, suite.name, suite.version, suite.metric, mean, len(results),
                      time.perf_counter() - started, results)


def run_evaluation(specialist: Specialist, model: Callable[[str], str], limit: int | None = None) -> EvalReport:
    """Evaluate ``specialist`` through the ``evaluate`` hook (aeth's default runner answers last)."""
    from aeth.plugins import get_host

    if specialist.suite is None:
        raise SpecialistError(f"specialist {specialist.name!r} (plugin {specialist.plugin!r}) has no eval suite")
    report = get_host().pm.hook.evaluate(specialist=specialist, model=model, suite=limited(specialist.suite, limit))
    if report is None:
        raise PluginError("no plugin implements the evaluate hook (aeth's default evaluator was disabled?)")
    return report
