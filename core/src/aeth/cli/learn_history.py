"""``aeth learn history SPECIALIST [--json] [--plot FILE.png]``: every adapter version and how it fared.

Wired into ``aeth learn`` (:mod:`aeth.cli.learn`) as ``status`` is; the entries are
:func:`aeth.learning.history.history`, the plot :func:`aeth.learning.plot.plot`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

#: the promotion column: the gate's decision (None: no gate judged the version)
DECISIONS = {True: "yes", False: "no", None: "-"}


def show_history(app: Any, specialist: str, as_json: bool, plot_path: str | None) -> None:
    """Print ``specialist``'s history as a table (or one JSON object per version); with
    ``plot_path``, also draw it there."""
    from aeth.learning.history import history

    entries = history(app, specialist)
    if as_json:
        for e in entries:
            click.echo(json.dumps(e.to_json()))
    elif not entries:
        click.echo(f"{specialist} has no adapter versions yet: the bare base model answers", err=True)
    else:
        _print_table(specialist, entries)
    if plot_path:
        from aeth.learning.plot import plot

        if not entries:
            raise click.UsageError(f"--plot: {specialist} has no adapter versions to plot")
        plot(entries, plot_path, title=f"{specialist}: adapter versions")
        click.echo(f"wrote {plot_path}", err=True)


def _print_table(specialist: str, entries: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("", "version", "created", "made", "data", "records", "feedback", "eval (baseline)",
                  "held-out (baseline)", "promoted", box=None, title=f"{specialist}: adapter versions, oldest first",
                  title_justify="left")
    for e in entries:
        made = f"{e.made} {e.objective}" if e.objective and (e.made == "learn" or e.objective != "sft") else e.made
        promoted = "forced" if e.forced else DECISIONS[e.promoted]
        table.add_row("*" if e.active else "", e.version, (e.created or "")[:16].replace("T", " "), made,
                      e.dataset or "", _n(e.records), _n(e.feedback), _suite(e), _heldout(e), promoted,
                      style="bold" if e.active else None)
    console = Console(file=sys.stdout, soft_wrap=False)
    console.print(table, markup=False, highlight=False)
    console.print("* active now", style="dim", markup=False, highlight=False)


def _n(value: int | None) -> str:
    return "" if value is None else str(value)


def _suite(e: Any) -> str:
    if e.score is None:
        return ""
    baseline = "" if e.baseline_score is None else f" ({e.baseline or 'base'} {e.baseline_score:.3f})"
    return f"{e.score:.3f}{baseline}"


def _heldout(e: Any) -> str:
    return ", ".join(f"{kind} {new:.3f}" + ("" if old is None else f" ({old:.3f})")
                     for kind, (new, old) in sorted(e.heldout.items()))
