"""What a server admits: per-key requests and tokens per minute, and a bounded queue for the rest.

Both live in the server process (one replica's view); several replicas behind a load balancer
each enforce their own share (docs/serving.md says how to size them). Rejections are decided in
memory, without touching the model or the database, so they stay fast under load.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque

from aeth.serving.errors import APIError

WINDOW = 60.0  # seconds: "per minute"


class RateLimiter:
    """Sliding one-minute windows of requests and tokens per key.

    :meth:`admit` counts a request (or refuses it with a 429 whose Retry-After says when the oldest
    counted one leaves the window); :meth:`charge` adds the tokens an answer used, which later
    requests of the key see. A key with no limit set is never refused.
    """

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._lock = threading.Lock()
        self._requests: dict[str, deque[float]] = {}
        self._tokens: dict[str, deque[tuple[float, int]]] = {}

    def admit(self, key: str, rpm: int | None, tpm: int | None) -> None:
        now = self.clock()
        with self._lock:
            requests = self._requests.setdefault(key, deque())
            tokens = self._tokens.setdefault(key, deque())
            while requests and requests[0] <= now - WINDOW:
                requests.popleft()
            while tokens and tokens[0][0] <= now - WINDOW:
                tokens.popleft()
            if rpm is not None and len(requests) >= rpm:
                raise APIError(429, f"rate limit reached: this key may make {rpm} requests per minute; "
                                    f"retry in {requests[0] + WINDOW - now:.1f} s", code="rate_limit_exceeded",
                               retry_after=requests[0] + WINDOW - now, reason="rpm")
            used = sum(n for _, n in tokens)
            if tpm is not None and used >= tpm:
                wait, left = 0.0, used
                for t, n in tokens:  # until enough tokens leave the window to go below the limit
                    left -= n
                    wait = t + WINDOW - now
                    if left < tpm:
                        break
                raise APIError(429, f"token rate limit reached: this key may use {tpm} tokens per minute and used "
                                    f"{used} in the last minute; retry in {wait:.1f} s", code="rate_limit_exceeded",
                               retry_after=wait, reason="tpm")
            requests.append(now)

    def charge(self, key: str, tokens: int) -> None:
        if tokens > 0:
            with self._lock:
                self._tokens.setdefault(key, deque()).append((self.clock(), tokens))


class Admission:
    """At most ``running`` answers at once and ``queue`` more waiting; beyond that a 503.

    Used as ``async with admission.slot(): ...``; leaving the block (done, failed or the client
    gone) frees the slot for the next waiting request.
    """

    def __init__(self, running: int, queue: int):
        self.running, self.queue = running, queue
        self._semaphore = asyncio.Semaphore(running)
        self.active = 0  # admitted: running or waiting
        self.busy = 0  # holding a slot

    @property
    def waiting(self) -> int:
        return self.active - self.busy

    def slot(self) -> _Slot:
        if self.active >= self.running + self.queue:
            raise APIError(503, f"the server is at capacity ({self.running} answering, {self.queue} waiting); "
                                "retry shortly", code="server_overloaded", retry_after=1, reason="queue_full")
        self.active += 1
        return _Slot(self)


class _Slot:
    def __init__(self, admission: Admission):
        self.admission = admission
        self.held = False

    async def __aenter__(self) -> _Slot:
        try:
            await self.admission._semaphore.acquire()
        except BaseException:
            self.admission.active -= 1
            raise
        self.held = True
        self.admission.busy += 1
        return self

    async def __aexit__(self, *exc) -> None:
        self.admission.active -= 1
        if self.held:
            self.admission.busy -= 1
            self.admission._semaphore.release()
