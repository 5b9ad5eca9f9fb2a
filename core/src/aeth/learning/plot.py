"""``aeth learn history --plot FILE.png``: a specialist's scores per adapter version, as a PNG.

:func:`series` is the pure part (what is drawn, testable without matplotlib); :func:`plot` draws
it with matplotlib's Agg canvas (no display, no pyplot global state) and writes the file
atomically. matplotlib is optional (``pip install matplotlib``, or the ``aeth[plot]`` extra).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from aeth.atomic import write_bytes
from aeth.errors import AethError

__all__ = ["plot", "series"]

#: what each held-out kind's score is, for its axis
HELDOUT_LABELS = {"dpo": "held-out pairs agreed", "kto": "held-out verdicts agreed", "sft": "held-out log-prob"}


def series(entries: list[Any]) -> dict:
    """What :func:`plot` draws from :class:`~aeth.learning.history.Entry` objects: ``labels`` (one
    version name per x position 0..n-1), ``suite`` (``[x, score]`` of the versions with a suite
    score), ``promoted`` (x of the promoted versions), ``active`` (x of the active one, or None) and
    ``heldout`` (kind -> ``[x, score]``)."""
    heldout: dict[str, list[list[float]]] = {}
    for x, e in enumerate(entries):
        for kind, (score, _baseline) in sorted(e.heldout.items()):
            if score is not None:
                heldout.setdefault(kind, []).append([x, score])
    return {"labels": [e.version.split("-")[0] for e in entries],
            "suite": [[x, e.score] for x, e in enumerate(entries) if e.score is not None],
            "promoted": [x for x, e in enumerate(entries) if e.promoted],
            "active": next((x for x, e in enumerate(entries) if e.active), None),
            "heldout": dict(sorted(heldout.items()))}


def plot(entries: list[Any], path: Path | str, title: str = "") -> dict:
    """Draw ``entries`` (suite score on top, one panel per held-out kind below) into ``path`` (PNG,
    written atomically); returns the :func:`series` drawn."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise AethError("--plot needs matplotlib: pip install matplotlib (or pip install 'aeth[plot]')") from None
    data = series(entries)
    panels = [("eval suite score", data["suite"]), *((HELDOUT_LABELS.get(k, k), pts) for k, pts in data["heldout"].items())]
    fig = Figure(figsize=(max(6.0, 0.6 * len(entries) + 2), 2.6 * len(panels)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (label, points) in zip(axes, panels, strict=True):
        _panel(ax, label, points, data)
    axes[0].set_title(title)
    axes[-1].set_xticks(range(len(entries)), data["labels"], rotation=45, ha="right")
    axes[-1].set_xlabel("adapter version (oldest first)")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    write_bytes(Path(path), buf.getvalue())
    return data


def _panel(ax: Any, label: str, points: list[list[float]], data: dict) -> None:
    """One score per version: a line, promoted versions filled, the active one ringed in red."""
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    if not points:
        ax.text(0.5, 0.5, "no scores recorded", transform=ax.transAxes, ha="center", va="center", color="grey")
        return
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    ax.plot(xs, ys, color="tab:blue", marker="o", markerfacecolor="white", label="version")
    promoted = [p for p in points if p[0] in data["promoted"]]
    if promoted:
        ax.scatter([p[0] for p in promoted], [p[1] for p in promoted], color="tab:blue", zorder=3, label="promoted")
    active = [p for p in points if p[0] == data["active"]]
    if active:
        ax.scatter([active[0][0]], [active[0][1]], s=180, facecolors="none", edgecolors="tab:red", linewidths=2,
                   zorder=4, label="active")
    ax.legend(loc="best", fontsize="small")
