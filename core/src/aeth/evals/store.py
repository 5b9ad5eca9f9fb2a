"""Saved eval reports: ``$AETH_HOME/evals/<specialist>/<run id>.json``, and comparing two of them.

A run id is ``<UTC time>-<suite>-<6 hex>``; any unique prefix of it, or a path to a report file,
names a saved report. Files are written atomically, so a crash never leaves half a report.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from aeth.atomic import write_text
from aeth.errors import AethError
from aeth.evals.runner import EvalReport


def evals_dir(home: Path) -> Path:
    """Where reports are kept."""
    return Path(home) / "evals"


def save(report: EvalReport, home: Path, path: Path | None = None) -> Path:
    """Write ``report`` (atomically) and return its path; its run id is set in ``report.meta``."""
    run_id = report.meta.get("run_id") or f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{report.suite}-{secrets.token_hex(3)}"
    report.meta["run_id"] = run_id
    target = Path(path) if path else evals_dir(home) / report.specialist / f"{run_id}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text(target, json.dumps(report.to_dict(), indent=1, ensure_ascii=False))
    return target


def saved(home: Path, specialist: str | None = None) -> list[Path]:
    """Every saved report (of ``specialist`` if given), oldest first."""
    root = evals_dir(home)
    pattern = f"{specialist}/*.json" if specialist else "*/*.json"
    return sorted(root.glob(pattern), key=lambda p: p.name)


def load(ref: str, home: Path) -> EvalReport:
    """The report named by ``ref``: a file path, or a unique prefix of a saved run id."""
    path = Path(ref).expanduser()
    if not path.is_file():
        matches = [p for p in saved(home) if p.stem.startswith(ref)]
        if not matches:
            raise AethError(f"no saved eval report {ref!r}: give a report file or a run id from `aeth eval --list`")
        if len(matches) > 1:
            names = ", ".join(p.stem for p in matches[:4])
            raise AethError(f"{ref!r} names {len(matches)} saved reports ({names}, ...); give more of the run id")
        path = matches[0]
    try:
        return EvalReport.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise AethError(f"{path} is not an aeth eval report ({type(e).__name__}: {e})") from e


@dataclass
class Comparison:
    """B against A: per-group scores and, over the cases both ran, how many B won and lost."""

    rows: list[tuple[str, float | None, float | None]]  #: (group, score A, score B); None where absent
    common: int
    better: int
    worse: int
    p_value: float  #: two-sided sign test on the cases that differ


def compare(a: EvalReport, b: EvalReport) -> Comparison:
    """Compare two reports of the same suite, case by case where their case ids match."""
    if a.suite != b.suite:
        raise AethError(f"cannot compare different suites: {a.suite!r} and {b.suite!r}")
    groups = list(dict.fromkeys([*a.groups, *b.groups]))
    rows = [(g, a.groups.get(g, {}).get("score"), b.groups.get(g, {}).get("score")) for g in groups]
    rows.append(("overall", a.score, b.score))
    for key in dict.fromkeys([*a.pass_at_k, *b.pass_at_k]):
        rows.append((key, a.pass_at_k.get(key), b.pass_at_k.get(key)))
    scores_a = {c.id: c.score for c in a.cases}
    common = [c for c in b.cases if c.id in scores_a]
    better = sum(c.score > scores_a[c.id] for c in common)
    worse = sum(c.score < scores_a[c.id] for c in common)
    return Comparison(rows, len(common), better, worse, sign_test(better, worse))


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign-test p-value for ``wins`` against ``losses`` (ties left out)."""
    n = wins + losses
    if n == 0:
        return 1.0
    from math import comb

    tail = sum(comb(n, i) for i in range(0, min(wins, losses) + 1)) / 2 ** n
    return min(1.0, 2 * tail)
