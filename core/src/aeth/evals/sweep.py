"""Choosing a specialist's generation defaults by measurement: the sampling sweep.

Every candidate setting (temperature, top-p, repetition penalty; greedy among them) answers the
*tune* half of the specialist's eval suite, several seeded samples per case when it samples.
The best greedy setting is the default unless a sampled one beats it *significantly*: a higher
mean and a two-sided sign test over the cases (cases where one setting did better than the other)
with p < :data:`SIGNIFICANCE`. A deterministic answer is reproducible (the same question gets the
same answer, the Quickstart answers the same way every time), so sampling has to earn its place;
ties go to the lower temperature, then to the penalty nearer 1. The winner and the specialist's
current defaults then answer the *check* half, which the choice never saw, so the figure a user
reads is not the one that was tuned on.

Cases are split by a hash of their id (:func:`split`), the same rule for every suite, so the
halves are stable across runs and across suite growth. ``aeth eval SPECIALIST --sweep`` runs it
for one specialist; ``bench/sweep_sampling.py`` for all of them, writing the table into
docs/evals.md.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from aeth.specialist import EvalCase, GenerationDefaults, Specialist


@dataclass(frozen=True)
class Candidate:
    """One sampling setting the sweep tries."""

    temperature: float
    top_p: float = 1.0
    repetition_penalty: float = 1.0

    @property
    def greedy(self) -> bool:
        """Temperature 0: one answer per case says everything (top-p plays no part)."""
        return self.temperature == 0

    @property
    def label(self) -> str:
        """``greedy, rp 1.1`` or ``T 0.3, top-p 0.9, rp 1.0``."""
        head = "greedy" if self.greedy else f"T {self.temperature:g}, top-p {self.top_p:g}"
        return f"{head}, rp {self.repetition_penalty:g}"

    @classmethod
    def of(cls, defaults: GenerationDefaults) -> Candidate:
        """A specialist's current defaults as a candidate."""
        return cls(defaults.temperature, defaults.top_p if defaults.temperature else 1.0, defaults.repetition_penalty)

    def applied(self, defaults: GenerationDefaults) -> GenerationDefaults:
        """``defaults`` with this candidate's temperature, top-p and repetition penalty."""
        return replace(defaults, temperature=self.temperature, top_p=self.top_p if not self.greedy else defaults.top_p,
                       repetition_penalty=self.repetition_penalty)


#: what the sweep tries unless told otherwise: greedy with and without a repetition penalty, and
#: sampling at a low and a moderate temperature, each with and without one
GRID: tuple[Candidate, ...] = (
    Candidate(0.0, 1.0, 1.0), Candidate(0.0, 1.0, 1.1),
    Candidate(0.3, 0.9, 1.0), Candidate(0.3, 0.9, 1.1),
    Candidate(0.7, 0.9, 1.0), Candidate(0.7, 0.9, 1.1),
)


def split(cases: Iterable[EvalCase]) -> tuple[list[EvalCase], list[EvalCase]]:
    """(tune, check): a case goes to *tune* when the first byte of the SHA-256 of its id is even."""
    tune, check = [], []
    for case in cases:
        (tune if hashlib.sha256(case.id.encode()).digest()[0] % 2 == 0 else check).append(case)
    return tune, check


#: a sampled setting replaces the best greedy one only when a sign test says p below this
SIGNIFICANCE = 0.05


def sign_test(a: list[float], b: list[float]) -> float:
    """Two-sided sign test p-value that ``a`` and ``b`` (per-case scores, paired) differ: the cases
    where one did better count; ties drop out (1.0 when none differ)."""
    wins = sum(x > y for x, y in zip(a, b, strict=True))
    losses = sum(x < y for x, y in zip(a, b, strict=True))
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(max(wins, losses), n + 1)) / 2 ** n
    return min(1.0, 2 * tail)


@dataclass
class Row:
    """One candidate's result on the tune half: the mean, and each case's score (mean of its samples)."""

    candidate: Candidate
    score: float
    answers: int
    seconds: float
    current: bool = False
    cases: list[float] = field(default_factory=list, repr=False)


@dataclass
class SweepResult:
    """The sweep of one specialist: every candidate on *tune*, the winner and the current defaults on *check*."""

    specialist: str
    suite: str
    rows: list[Row]
    chosen: Candidate
    current: Candidate
    check_chosen: float
    check_current: float
    tune_cases: int
    check_cases: int
    samples: int
    seconds: float
    #: the sign test of the best sampled setting against the best greedy one on the tune half
    sampled_vs_greedy_p: float | None = None
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready."""
        def cand(c: Candidate) -> dict:
            return {"temperature": c.temperature, "top_p": c.top_p, "repetition_penalty": c.repetition_penalty,
                    "label": c.label}

        return {"specialist": self.specialist, "suite": self.suite, "tune_cases": self.tune_cases,
                "check_cases": self.check_cases, "samples": self.samples, "seconds": round(self.seconds, 1),
                "chosen": cand(self.chosen), "current": cand(self.current),
                "check": {"chosen": self.check_chosen, "current": self.check_current},
                "sampled_vs_greedy_p": self.sampled_vs_greedy_p,
                "rows": [{**cand(r.candidate), "score": r.score, "answers": r.answers, "seconds": round(r.seconds, 1),
                          "current": r.current, "cases": r.cases} for r in self.rows], **self.meta}


def from_dict(data: dict) -> SweepResult:
    """The result :meth:`SweepResult.to_dict` wrote."""
    def cand(d: dict) -> Candidate:
        return Candidate(d["temperature"], d["top_p"], d["repetition_penalty"])

    rows = [Row(cand(r), r["score"], r["answers"], r["seconds"], r["current"], r.get("cases", [])) for r in data["rows"]]
    return SweepResult(data["specialist"], data["suite"], rows, cand(data["chosen"]), cand(data["current"]),
                       data["check"]["chosen"], data["check"]["current"], data["tune_cases"], data["check_cases"],
                       data["samples"], data["seconds"], data.get("sampled_vs_greedy_p"))


def choose(rows: list[Row]) -> tuple[Candidate, float | None]:
    """The chosen setting and the sign test's p of the best sampled against the best greedy one
    (None without both kinds): the best greedy setting, unless the best sampled one scores higher
    with p < :data:`SIGNIFICANCE`. "Best" breaks ties toward the lower temperature, then the
    repetition penalty nearer 1."""
    def best(of: list[Row]) -> Row | None:
        return max(of, key=lambda r: (round(r.score, 9), -r.candidate.temperature,
                                      -abs(r.candidate.repetition_penalty - 1.0)), default=None)

    greedy = best([r for r in rows if r.candidate.greedy])
    sampled = best([r for r in rows if not r.candidate.greedy])
    if greedy is None or sampled is None:
        return (greedy or sampled).candidate, None
    p = sign_test(sampled.cases, greedy.cases) if sampled.cases and greedy.cases else 1.0
    better = sampled.score > greedy.score and p < SIGNIFICANCE
    return (sampled if better else greedy).candidate, p


def sweep(app: Any, specialist: Specialist, *, grid: Iterable[Candidate] = GRID, samples: int = 3,
          limit: int | None = None, adapter: str | None = None,
          echo: Callable[[str], None] | None = None) -> SweepResult:
    """Sweep ``specialist``'s sampling settings on its own suite (module docstring).

    ``samples`` seeded answers per case for a sampling candidate (greedy gets one); ``limit``
    caps the cases of each half (taken in turn from each benchmark, the same for every candidate);
    ``adapter`` picks the version that answers (None: the active one). ``echo`` receives a line
    per candidate as it finishes.
    """
    from aeth.errors import SpecialistError
    from aeth.evals.model import specialist_model
    from aeth.evals.runner import round_robin, run_suite

    suite = specialist.suite
    if suite is None:
        raise SpecialistError(f"specialist {specialist.name!r} (plugin {specialist.plugin!r}) has no eval suite to "
                              "sweep its sampling settings by")
    tune, check = (round_robin(half, limit) for half in split(suite.cases()))
    if not tune or not check:
        raise SpecialistError(f"suite {suite.name!r} has too few cases to split into tune and check halves")
    current = Candidate.of(specialist.generation)
    candidates = list(dict.fromkeys([*grid, current]))
    started = time.perf_counter()

    def score(candidate: Candidate, cases: list[EvalCase]) -> tuple[float, int, float]:
        spec = replace(specialist, generation=candidate.applied(specialist.generation))
        n = 1 if candidate.greedy else samples
        half = replace(suite, cases=lambda: cases, samples=n, temperature=candidate.temperature)
        model = specialist_model(app, spec, temperature=candidate.temperature, max_tokens=suite.max_tokens,
                                 adapter=adapter)
        report = run_suite(spec, half, model, samples=n)
        return Row(candidate, report.score, len(cases) * n, report.seconds, candidate == current,
                   [case.score for case in report.cases])

    rows = []
    for candidate in candidates:
        rows.append(score(candidate, tune))
        if echo:
            echo(f"{specialist.name}: {candidate.label}: {rows[-1].score:.3f} on {len(tune)} tune cases "
                 f"({rows[-1].seconds:.0f} s)")
    chosen, p = choose(rows)
    check_chosen = score(chosen, check).score
    check_current = check_chosen if chosen == current else score(current, check).score
    return SweepResult(specialist.name, f"{suite.name} {suite.version}", rows, chosen, current, check_chosen,
                       check_current, len(tune), len(check), samples, time.perf_counter() - started, p)


def markdown(results: Iterable[SweepResult]) -> str:
    """The sweep table docs/evals.md shows: per specialist, every candidate's tune score, the
    winner, and winner vs. current defaults on the check half."""
    lines = ["| specialist | suite | setting | tune score | |", "|---|---|---|---|---|"]
    summary = ["| specialist | chosen | was | check: chosen | check: was | cases (tune/check) | sampled vs greedy, p |",
               "|---|---|---|---|---|---|---|"]
    for r in results:
        for row in r.rows:
            marks = ", ".join(m for m, on in (("chosen", row.candidate == r.chosen), ("was the default", row.current)) if on)
            lines.append(f"| {r.specialist} | {r.suite} | {row.candidate.label} | {row.score:.3f} | {marks} |")
        summary.append(f"| {r.specialist} | {r.chosen.label} | {r.current.label} | {r.check_chosen:.3f} | "
                       f"{r.check_current:.3f} | {r.tune_cases}/{r.check_cases} | "
                       f"{'' if r.sampled_vs_greedy_p is None else f'{r.sampled_vs_greedy_p:.2f}'} |")
    return "\n".join(summary) + "\n\n" + "\n".join(lines) + "\n"
