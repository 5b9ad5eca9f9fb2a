"""One answer being generated for a server: text deltas as they come, cancel, and how it went.

An engine (:mod:`aeth.serving.engine`) produces into a :class:`Generation` from its own thread;
the server reads it from its event loop (``async for``) or a thread (``for``). Nothing here
imports torch.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aeth.request import Request, Sampling
from aeth.safety.policy import MaskedText
from aeth.specialist import Specialist

_END = object()


@dataclass
class Job:
    """What an engine is asked to answer.

    ``request`` carries the conversation (``history``, then ``prompt`` as the last user turn);
    ``adapter`` is ``None`` for the specialist's active adapter version at submission, ``"base"``
    for none, else a version id. ``stop`` strings end the answer where they first appear (they are
    not part of it). ``metadata`` is the caller's (e.g. the server's API key id).
    """

    specialist: Specialist
    request: Request
    sampling: Sampling
    adapter: str | None = None
    stop: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    #: masks the answer's text (the specialist's content policy, :meth:`Policy.masker
    #: <aeth.safety.policy.Policy.masker>`); the text is then released a whole line at a time
    mask: Callable[[str], str] | None = None


class Generation:
    """The answer to one :class:`Job`, filled by an engine and read by one consumer.

    ``stats`` ends up holding ``tokens_in``, ``tokens_out``, ``finish_reason`` ("stop", "length"
    or "cancelled"), ``model``, ``adapter`` (the version that answered, None for the bare base),
    ``ttft_s`` (seconds from submission to the first token) and ``machine_seconds`` (this answer's
    share of the machine's time: each decode step's time divided among the answers in it).
    ``steps`` counts the forwards taken for it; after :meth:`cancel` it stops growing within one step.
    """

    def __init__(self, job: Job):
        self.job = job
        self.stats: dict[str, Any] = {"tokens_in": 0, "tokens_out": 0, "finish_reason": "", "adapter": None,
                                      "model": None, "ttft_s": None, "machine_seconds": 0.0}
        self.steps = 0
        self.submitted = time.perf_counter()
        self.error: BaseException | None = None
        self._items: deque = deque()
        self._cond = threading.Condition()
        self._cancelled = threading.Event()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self._masked = MaskedText(job.mask) if job.mask is not None else None
        self.done = False

    # ---- the engine's side ----------------------------------------------------------------------

    def put(self, text: str) -> None:
        """Add a text delta (the first one sets ``ttft_s``)."""
        if self.stats["ttft_s"] is None:
            self.stats["ttft_s"] = round(time.perf_counter() - self.submitted, 4)
        if self._masked is not None:
            text = self._masked.push(text)
        if text:
            self._push(text)

    def finish(self, error: BaseException | None = None) -> None:
        """The answer is complete (or failed with ``error``); the consumer's iteration ends."""
        if self.done:
            return
        if self._masked is not None and error is None:
            try:
                rest = self._masked.flush()
            except Exception as e:  # noqa: BLE001  (the consumer must not wait forever)
                rest, error = "", e
            if rest:
                self._push(rest)
        self.error = error
        if not self.stats.get("finish_reason"):
            self.stats["finish_reason"] = "cancelled" if self._cancelled.is_set() else "stop"
        self.done = True
        self._push(_END)

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called; an engine polls it before every step."""
        return self._cancelled.is_set()

    def _push(self, item: Any) -> None:
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()
            waiters = list(self._waiters)
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # the consumer's loop is gone
                pass

    # ---- the consumer's side --------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop at the next step (a client that left, a ``cancel`` message); frees the slot."""
        self._cancelled.set()

    def __iter__(self) -> Iterator[str]:
        while True:
            with self._cond:
                while not self._items:
                    self._cond.wait()
                item = self._items.popleft()
            if item is _END:
                if self.error is not None:
                    raise self.error
                return
            yield item

    async def __aiter__(self) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        with self._cond:
            self._waiters.append((loop, event))
        try:
            while True:
                with self._cond:
                    item = self._items.popleft() if self._items else None
                    if item is None:
                        event.clear()
                if item is None:
                    await event.wait()
                    continue
                if item is _END:
                    if self.error is not None:
                        raise self.error
                    return
                yield item
        finally:
            with self._cond:
                self._waiters.remove((loop, event))

    def text(self) -> str:
        """Wait for the whole answer and return it."""
        return "".join(self)


class StopText:
    """Cuts a stream of text deltas at the first of ``stops``, holding back what could be the start of one.

    ``push(delta)`` returns the text that is safe to emit; ``hit`` turns true when a stop string
    appeared (the caller then ends the answer with finish_reason "stop"); ``flush()`` returns what
    was held back once the answer ends without one.
    """

    def __init__(self, stops: tuple[str, ...] | list[str]):
        self.stops = [s for s in stops if s]
        self.held = ""
        self.hit = False

    def push(self, delta: str) -> str:
        if not self.stops:
            return delta
        if self.hit:
            return ""
        text = self.held + delta
        cut = min((i for i in (text.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.hit, self.held = True, ""
            return text[:cut]
        keep = max((k for s in self.stops for k in range(1, len(s)) if text.endswith(s[:k])), default=0)
        self.held = text[len(text) - keep:] if keep else ""
        return text[:len(text) - keep]

    def flush(self) -> str:
        held, self.held = self.held, ""
        return "" if self.hit else held
