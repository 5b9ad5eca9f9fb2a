"""Progress of a long prefill: reading a long input into the KV cache can take minutes, so it shows.

A model reads its whole input before the first token of the answer: a few thousand tokens take a
moment, a long document (``aeth run --file``) minutes. :class:`PrefillProgress` is the
``progress`` callback :func:`~aeth.generation.decode.stream_tokens` takes; it says nothing for a
short input and, for a long one, shows an :class:`aeth.progress.Progress` on standard error: a
bar on a terminal, else a plain line every ~10 % with tokens done, total and tokens per second.
Inside :func:`aeth.progress.quiet` it shows nothing.
"""

from __future__ import annotations

import time
from typing import TextIO

#: inputs at least this long (in tokens) show their prefill's progress
PREFILL_PROGRESS_TOKENS = 4096


class PrefillProgress:
    """``progress(done, total)`` for :func:`~aeth.generation.decode.stream_tokens`: shows how far a
    prefill of at least ``min_tokens`` tokens is, labelled ``label``, on ``stream`` (stderr)."""

    def __init__(self, label: str = "reading the input", min_tokens: int = PREFILL_PROGRESS_TOKENS,
                 stream: TextIO | None = None):
        self.label, self.min_tokens, self.stream = label, min_tokens, stream
        self._bar = None
        self._started = 0.0

    def __call__(self, done: int, total: int) -> None:
        """``done`` of ``total`` prompt tokens are in the cache (0 before the first forward)."""
        if total < self.min_tokens:
            return
        if self._bar is None:
            from aeth.progress import Progress

            self._bar = Progress(self.label, total, unit="tokens", stream=self.stream)
            self._bar.__enter__()
            self._started = time.monotonic()
        elapsed = time.monotonic() - self._started
        self._bar.update(done, f"{done / elapsed:,.0f} tok/s" if done and elapsed > 0 else "")

    def close(self) -> None:
        """The prefill ended (done, cancelled or failed): take the bar away."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
