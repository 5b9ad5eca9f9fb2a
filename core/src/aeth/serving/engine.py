"""Engines: what turns a :class:`~aeth.serving.generation.Job` into a streamed
:class:`~aeth.serving.generation.Generation`. The server's routes call an engine, never the decode loop.

- :class:`Engine` is the interface: ``submit(job) -> Generation`` (checks the input and raises
  before returning, so a bad request fails at once), ``close()``.
- :class:`HookEngine` answers each job through the application's ``generate`` hook in a worker
  thread: whatever plugin generates for that specialist answers, one request at a time per base
  model (the pool's lock).
- :class:`~aeth.serving.batching.BatchingEngine` (aeth's default for serving) decodes concurrent
  requests on one base model together, any mix of adapters, and hands a job to :class:`HookEngine`
  when a plugin other than aeth's default generator answers it (images, a plugin's own model).

A later engine (vLLM on GPUs, llama.cpp on CPUs) implements :class:`Engine` and plugs into
:func:`aeth.serving.app.create_app` without touching the routes.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from typing import Any

from aeth.request import GenerationContext
from aeth.serving.generation import Generation, Job, StopText


class Engine(ABC):
    """Generates answers for a server; one engine serves one :class:`~aeth.app.Aeth`."""

    def __init__(self, app: Any):
        self.app = app

    @abstractmethod
    def submit(self, job: Job) -> Generation:
        """Start answering ``job``; raise an :class:`~aeth.errors.AethError` (input too long, unknown
        adapter, ...) before returning when it cannot be answered. May block while a model loads,
        so an event loop calls it in a thread."""

    def close(self) -> None:
        """Stop every generation and release threads (the server is shutting down)."""
        return None

    def stats(self) -> dict[str, Any]:
        """Numbers for metrics: ``running`` (answers decoding now) and ``waiting`` (admitted, not started)."""
        return {"running": 0, "waiting": 0}


class HookEngine(Engine):
    """Each job through the application's ``generate`` hook (``hook`` overrides which caller), in its own thread."""

    def __init__(self, app: Any, hook: Any = None):
        super().__init__(app)
        self.hook = hook
        self._lock = threading.Lock()
        self._running = 0

    def submit(self, job: Job) -> Generation:
        gen = Generation(job)
        context = GenerationContext(self.app, job.sampling, adapter=job.adapter, cancel=lambda: gen.cancelled)
        call = self.hook or self.app.hook.generate
        stream = call(specialist=job.specialist, request=job.request, context=context)
        if stream is None:
            from aeth.errors import PluginError

            raise PluginError(f"no plugin generates for {job.specialist.name!r}")
        threading.Thread(target=self._drain, args=(gen, context, iter(stream)), daemon=True,
                         name=f"aeth-generate-{job.request.id}").start()
        return gen

    def _drain(self, gen: Generation, context: GenerationContext, stream: Any) -> None:
        stop = StopText(gen.job.stop)
        with self._lock:
            self._running += 1
        started = time.perf_counter()
        error = None
        try:
            for chunk in stream:
                gen.steps += 1
                gen.put(stop.push(chunk))
                if stop.hit:
                    context.stats["finish_reason"] = "stop"
                    break
            gen.put(stop.flush())
        except BaseException as e:  # noqa: BLE001  (handed to the consumer, which decides)
            error = e
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
            with self._lock:
                self._running -= 1
        s = context.stats
        gen.stats.update(tokens_in=s.get("tokens_in", 0), tokens_out=s.get("tokens_out", 0), model=s.get("model"),
                         adapter=s.get("adapter"), finish_reason=s.get("finish_reason") or "stop",
                         machine_seconds=s.get("machine_seconds") or round(time.perf_counter() - started, 4))
        for extra in ("quality", "contributors", "blocked"):  # quality control, a composed answer (aeth.quality, aeth.compose)
            if s.get(extra):
                gen.stats[extra] = s[extra]
        gen.finish(error)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"running": self._running, "waiting": 0}
