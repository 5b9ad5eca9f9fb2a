"""``aeth learn --watch [SPECIALIST ...] [--interval S] [--once]``: :class:`aeth.learning.watch.Watcher`.

The process lowers its own CPU priority first (:func:`aeth.learning.watch.lower_priority`), so an
``aeth serve`` beside it keeps its cores; ``-o model.threads=N`` bounds the threads each learn
trains with.
"""

from __future__ import annotations

import time

import click


def watch(ctx: click.Context, app, names: list[str], once: bool, interval: float, wait: bool, options: dict,
          learn_options: dict, practice: dict | None = None) -> None:
    """Run the watcher over ``names`` (empty: every specialist) with ``learn_options`` for each learn
    (and ``practice`` settings for --self); with ``once``, exit 1 when a learn failed (what cron and
    systemd report)."""
    from aeth.evals.runner import PROGRESS_WITHOUT_TTY
    from aeth.learning.watch import Watcher, lower_priority

    if options["resume"] or wait:
        raise click.UsageError("--watch resumes unfinished learn runs itself and skips a specialist whose learn is "
                               "running: leave out --resume and --wait")
    if options.get("plot"):
        raise click.UsageError("--plot goes with aeth learn history SPECIALIST")
    if names and names[0] in ("status", "history"):
        raise click.UsageError(f"aeth learn {names[0]} takes no --watch / --once")

    def say(line: str) -> None:  # timestamped: a watcher's output is a log
        click.echo(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}", err=True)

    watcher = Watcher(app, names or None, interval=interval, echo=say, options=learn_options, practice=practice)
    if practice is not None:
        from aeth.learning.schedule import can_practise

        able = [n for n in (watcher.names or sorted(app.specialists())) if can_practise(app.specialist(n))]
        if watcher.names and len(able) < len(watcher.names):
            missing = ", ".join(n for n in watcher.names if n not in able)
            raise click.UsageError(f"--self needs practice prompts and a verifier, which {missing} do(es) not declare "
                                   "(see docs/learning.md); watch it without --self")
        say(f"self-practice when learn.every_hours passes with no feedback waiting: {', '.join(able) or 'no specialist can'}")
    niceness = lower_priority()
    if not once:
        say(f"watching {', '.join(watcher.names) if watcher.names else 'every specialist'} every {interval:g} s"
            + (f" at niceness {niceness}" if niceness is not None else "") + " (Ctrl-C stops between runs)")
    token = PROGRESS_WITHOUT_TTY.set("lines")  # a watcher runs under systemd or cron: progress as log lines
    try:
        watcher.run(once=once)
    finally:
        PROGRESS_WITHOUT_TTY.reset(token)
    if watcher.failed:
        ctx.exit(1)
