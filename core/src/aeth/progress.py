"""Progress for long work (training, evals, teacher collection, routing evaluation), one way.

:class:`Progress` shows, on standard error:

- on a terminal, a rich bar (label, bar, done/total, extra info, elapsed, eta), gone when done;
- off a terminal (CI, nohup, a log file), a plain line every ~10 % of the total, with elapsed
  time and eta, so a log still says how far the work is;
- nothing when it is not shown (``show=False``, or inside :func:`quiet`).

Nothing here imports rich until a bar is drawn.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TextIO

#: false inside :func:`quiet`: every Progress created there shows nothing
_ENABLED: ContextVar[bool] = ContextVar("aeth_progress", default=True)


@contextmanager
def quiet(silent: bool = True) -> Iterator[None]:
    """Within this block (when ``silent``), no :class:`Progress` shows anything (a library call
    that asked for no progress, e.g. ``aeth.training.run(..., progress=False)``)."""
    token = _ENABLED.set(not silent and _ENABLED.get())
    try:
        yield
    finally:
        _ENABLED.reset(token)


def enabled() -> bool:
    """Whether progress may be shown here (false inside :func:`quiet`)."""
    return _ENABLED.get()


class Progress:
    """Progress of ``total`` units of work, as a context manager (or call :meth:`close`).

    ``done`` is where the work starts (a resumed run); ``unit`` names what is counted (``steps``,
    ``answers``); ``lines`` is whether to print plain lines off a terminal (the eval runner prints
    them only when its caller asks). Call :meth:`update` with the new count (or :meth:`advance`),
    and optionally ``info``, a short text shown beside it (``loss 1.234, 120 tok/s``).
    """

    def __init__(self, label: str, total: int, *, done: int = 0, unit: str = "", show: bool = True,
                 lines: bool = True, stream: TextIO | None = None):
        self.label, self.total, self.done, self.unit = label, max(0, total), done, unit
        self.stream = stream or sys.stderr
        self.started, self.started_at = time.monotonic(), done
        self.every = max(1, self.total // 10)
        self._bucket, self._bar, self._task = done // self.every, None, None
        show = show and enabled()
        self.terminal = show and self.stream.isatty()
        self.lines = show and lines and not self.terminal

    def __enter__(self) -> Progress:
        if self.terminal:  # the bar is there before the first unit is done
            self._draw("")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def advance(self, count: int = 1, info: str = "") -> None:
        """``count`` more units done."""
        self.update(self.done + count, info)

    def update(self, done: int, info: str = "") -> None:
        """``done`` units done so far; ``info`` is shown beside the count."""
        previous, self.done = self.done, done
        if self.terminal:
            self._draw(info)
        elif self.lines and done != previous:
            bucket = done // self.every
            if bucket != self._bucket or done == self.total:
                self._bucket = bucket
                print(self.line(info), file=self.stream, flush=True)

    def line(self, info: str = "") -> str:
        """The plain line for the current count: ``label: done/total unit, info, N s elapsed, eta M s``."""
        elapsed = time.monotonic() - self.started
        eta = elapsed / max(1, self.done - self.started_at) * max(0, self.total - self.done)
        unit = f" {self.unit}" if self.unit else ""
        extra = f", {info}" if info else ""
        return f"{self.label}: {self.done}/{self.total}{unit}{extra}, {elapsed:.0f} s elapsed, eta {eta:.0f} s"

    def _draw(self, info: str) -> None:
        if self._bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[info]}", markup=False), TimeElapsedColumn(), TextColumn("eta"),
                            TimeRemainingColumn(), console=Console(file=self.stream), transient=True)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total, completed=self.started_at, info="")
        self._bar.update(self._task, completed=self.done, info=info)

    def close(self) -> None:
        """Remove the bar (lines need no closing)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
