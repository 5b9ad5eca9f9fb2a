"""The eval runner: every case of a suite through a model, scored, summarised per group.

A *model* here is any callable ``model(prompt, **options) -> str``; the runner passes
``images=`` when a case has images, ``sample=`` when a suite draws several answers per case and
``max_tokens=`` when a case sets its own length, so the same suite can judge any backend.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from aeth.errors import AethError, PluginError, SpecialistError
from aeth.progress import Progress
from aeth.specialist import EvalCase, EvalSuite, Specialist


@dataclass
class CaseResult:
    """One case: what was asked, every answer drawn, each answer's score, and the case's score.

    ``score`` is the mean over the answers (with one answer, that answer's score; with several,
    the expected pass@1).
    """

    id: str
    prompt: str
    answers: list[str]
    scores: list[float]
    group: str = ""
    errors: list[str] = field(default_factory=list)  #: why answers could not be had (each scored 0)

    @property
    def score(self) -> float:
        """Mean score over the answers."""
        return sum(self.scores) / len(self.scores) if self.scores else 0.0


@dataclass
class EvalReport:
    """A suite's result: mean score over ``n`` cases, per group, pass@k, and every case kept.

    ``meta`` records what was evaluated (model, adapter, settings, aeth version, when), so saved
    reports can be compared later.
    """

    specialist: str
    suite: str
    suite_version: str
    metric: str
    score: float
    n: int
    seconds: float
    groups: dict[str, dict] = field(default_factory=dict)
    pass_at_k: dict[str, float] = field(default_factory=dict)
    cases: list[CaseResult] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-friendly form (what is saved)."""
        out = asdict(self)
        for case, result in zip(out["cases"], self.cases, strict=True):
            case["score"] = result.score
        return out

    @classmethod
    def from_dict(cls, data: dict) -> EvalReport:
        """The report saved by :meth:`to_dict`."""
        data = dict(data)
        data["cases"] = [CaseResult(c["id"], c["prompt"], c["answers"], c["scores"], c.get("group", ""), c.get("errors", []))
                         for c in data.get("cases", [])]
        return cls(**data)


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k estimate from ``n`` samples of which ``c`` passed (Chen et al., 2021).

    1 - C(n-c, k) / C(n, k), computed as a stable product; requires ``k <= n``.
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def limited(suite: EvalSuite, limit: int | None) -> EvalSuite:
    """The same suite restricted to ``limit`` cases, taken round-robin from its groups.

    Round-robin keeps every benchmark of a multi-benchmark suite in a short run; within a group
    the suite's own order is kept.
    """
    if limit is None:
        return suite
    if limit < 1:
        raise SpecialistError(f"--limit must be at least 1, got {limit}")

    return replace(suite, cases=lambda: round_robin(suite.cases(), limit))


def round_robin(cases: Iterable[EvalCase], limit: int | None) -> list[EvalCase]:
    """At most ``limit`` of ``cases`` (all with None), taken in turn from each group (benchmark),
    each group's own order kept."""
    by_group: dict[str, list[EvalCase]] = {}
    for case in cases:
        by_group.setdefault(case.group, []).append(case)
    ordered = (c for row in itertools.zip_longest(*by_group.values()) for c in row if c is not None)
    return list(itertools.islice(ordered, limit))


def _ask(model: Callable[..., str], case: EvalCase, sample: int, samples: int) -> str:
    options: dict = {}
    if case.images:
        options["images"] = case.images
    if samples > 1:
        options["sample"] = sample
    if case.max_tokens is not None:
        options["max_tokens"] = case.max_tokens
    return model(case.prompt, **options)


def run_suite(specialist: Specialist, suite: EvalSuite, model: Callable[..., str], progress: bool = False,
              samples: int | None = None) -> EvalReport:
    """Answer and score every case of ``suite`` (``samples`` answers each; the suite's by default).

    A scorer outside [0, 1] is a plugin bug and raises :class:`PluginError` naming the case. A
    case the model cannot answer (an :class:`~aeth.errors.AethError`, e.g. a vision case with no
    vision model available offline) scores 0 and its error is kept, so the rest of the suite
    still runs; when no case at all could be answered, the first error is raised instead.
    """
    samples = samples or suite.samples
    started = time.perf_counter()
    cases = list(suite.cases())
    if len({c.id for c in cases}) != len(cases):
        raise PluginError(f"suite {suite.name!r} of specialist {specialist.name!r} has duplicate case ids")
    results: list[CaseResult] = []
    first_error: AethError | None = None
    lines = PROGRESS_WITHOUT_TTY.get() == "lines"
    with Progress(f"{specialist.name}: {suite.name}", len(cases) * samples, unit="answers", show=progress,
                  lines=lines) as bar:
        for case in cases:
            answers, scores, errors = [], [], []
            for sample in range(samples):
                try:
                    answer = _ask(model, case, sample, samples)
                except AethError as e:
                    first_error = first_error or e
                    answers.append("")
                    scores.append(0.0)
                    errors.append(str(e))
                    bar.advance()
                    continue
                score = float(suite.score(case, answer))
                if math.isnan(score) or not 0.0 <= score <= 1.0:
                    raise PluginError(f"suite {suite.name!r} of specialist {specialist.name!r} scored case {case.id!r} "
                                      f"{score}; scores must lie in [0, 1]")
                answers.append(answer)
                scores.append(score)
                bar.advance()
            results.append(CaseResult(case.id, case.prompt, answers, scores, case.group, errors))
    if results and all(len(r.errors) == len(r.answers) for r in results):
        raise first_error
    return summarise(specialist.name, suite, results, time.perf_counter() - started, samples)


def summarise(specialist: str, suite: EvalSuite, results: list[CaseResult], seconds: float, samples: int) -> EvalReport:
    """An :class:`EvalReport` from case results: overall and per-group means, and pass@k."""
    def mean(rs: Iterable[CaseResult]) -> float:
        rs = list(rs)
        return sum(r.score for r in rs) / len(rs) if rs else 0.0

    groups = {}
    for name in dict.fromkeys(r.group for r in results):
        members = [r for r in results if r.group == name]
        groups[name or suite.name] = {"score": mean(members), "n": len(members),
                                      "errors": sum(bool(r.errors) for r in members)}
    pass_k = {}
    if results:
        for k in (k for k in suite.pass_at if k <= samples):
            pass_k[f"pass@{k}"] = sum(pass_at_k(len(r.scores), sum(s >= 1.0 for s in r.scores), k) for r in results) / len(results)
    return EvalReport(specialist, suite.name, suite.version, suite.metric, mean(results), len(results), round(seconds, 2),
                      groups, pass_k, results)


#: How the runner shows progress when ``progress`` is true and stderr is not a terminal:
#: ``aeth eval`` sets it to "lines" (a log line every ~10 %), so long runs in CI or under nohup
#: still say how far they are. Library use stays silent.
PROGRESS_WITHOUT_TTY: ContextVar[str] = ContextVar("aeth_eval_progress", default="none")


def run_evaluation(app: Any, specialist: Specialist, model: Callable[..., str], limit: int | None = None,
                   samples: int | None = None) -> EvalReport:
    """Evaluate ``specialist`` through ``app``'s ``evaluate`` hook (aeth's default runner answers last).

    ``samples`` (answers per case) overrides the suite's when given; it reaches the default
    runner through the suite.
    """
    if specialist.suite is None:
        raise SpecialistError(f"specialist {specialist.name!r} (plugin {specialist.plugin!r}) has no eval suite")
    suite = limited(specialist.suite, limit)
    if samples is not None:
        if samples < 1:
            raise SpecialistError(f"--samples must be at least 1, got {samples}")
        suite = replace(suite, samples=samples)
    report = app.hook.evaluate(specialist=specialist, model=model, suite=suite, app=app)
    if report is None:
        raise PluginError("no plugin implements the evaluate hook (aeth's default evaluator was disabled?)")
    return report
