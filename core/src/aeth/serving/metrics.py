"""What ``GET /metrics`` exposes, in Prometheus' text format (prometheus-client).

Each server has its own registry, so two servers (or tests) in one process never share counters.
The learning gauges (:class:`LearningCollector`) are read from the store and the adapter store
when Prometheus scrapes, at most once per ``ttl`` seconds, never per request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

#: latency buckets in seconds: a few ms for rejections up to minutes for long answers on a CPU
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    """The server's counters, histograms and gauges (names start with ``aeth_``)."""

    def __init__(self, app: Any = None, ttl: float = 10.0):
        """``app`` (an :class:`~aeth.app.Aeth`) adds its learning gauges, refreshed at most every ``ttl`` s."""
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = r = CollectorRegistry()
        self.requests = Counter("aeth_requests", "Answered requests by HTTP status, specialist and adapter version",
                                ["status", "specialist", "adapter"], registry=r)
        self.latency = Histogram("aeth_request_seconds", "Time from request to complete answer",
                                 ["specialist"], buckets=BUCKETS, registry=r)
        self.ttft = Histogram("aeth_time_to_first_token_seconds", "Time from request to the first token",
                              ["specialist"], buckets=BUCKETS, registry=r)
        self.tokens = Counter("aeth_tokens", "Tokens read (in) and generated (out)", ["direction", "specialist"],
                              registry=r)
        self.queue = Gauge("aeth_queue_depth", "Requests waiting for a slot", registry=r)
        self.running = Gauge("aeth_running", "Requests holding a slot (being answered)", registry=r)
        self.rejections = Counter("aeth_rejections", "Refused requests by reason", ["reason"], registry=r)
        self.blocked = Counter("aeth_policy_blocks", "Requests (stage=input) and answers (stage=output) a content "
                               "policy blocked, by specialist", ["specialist", "stage"], registry=r)
        self.routes = Counter("aeth_route_decisions", "Which specialist answered and how it was chosen",
                              ["specialist", "how"], registry=r)
        self.cost = Counter("aeth_cost_dollars", "What the answers cost at aeth's own price (kind=aeth) and what "
                            "the same tokens cost at an API's prices (kind=api)", ["kind", "model"], registry=r)
        self.learning = LearningCollector(app, ttl) if app is not None else None
        if self.learning is not None:
            r.register(self.learning)

    def exposition(self) -> tuple[bytes, str]:
        """The text a Prometheus scrape gets, and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def answered(self, status: int, specialist: str, adapter: str | None, stats: dict[str, Any], seconds: float) -> None:
        """Count one finished answer."""
        self.requests.labels(str(status), specialist, adapter or "base").inc()
        self.latency.labels(specialist).observe(seconds)
        if stats.get("ttft_s") is not None:
            self.ttft.labels(specialist).observe(stats["ttft_s"])
        self.tokens.labels("in", specialist).inc(stats.get("tokens_in", 0))
        self.tokens.labels("out", specialist).inc(stats.get("tokens_out", 0))


class LearningCollector:
    """Gauges of each specialist's learning, computed at scrape time and cached for ``ttl`` seconds:

    - ``aeth_feedback_rows{specialist,kind,source}``: feedback rows stored (one grouped query);
    - ``aeth_active_eval_score{specialist,adapter}``: the active version's eval-suite score at its gate;
    - ``aeth_active_heldout_score{specialist,adapter,kind}``: its held-out agreement per kind at its gate
      (dpo/kto: a share from 0 to 1; sft: mean per-token log-probability).

    A scrape that cannot read them (the database away) logs a warning and serves the last values.
    """

    def __init__(self, app: Any, ttl: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.app, self.ttl, self.clock = app, ttl, clock
        self._lock = threading.Lock()  # two scrapes at once read the store once
        self._families: list = []
        self._read_at: float | None = None

    def describe(self) -> list:
        """Nothing: registering must not read the store (prometheus-client calls collect() otherwise)."""
        return []

    def collect(self) -> list:
        """The gauges, re-read when the cached ones are older than ``ttl``."""
        with self._lock:
            now = self.clock()
            if self._read_at is None or now - self._read_at >= self.ttl:
                try:
                    self._families = self._read()
                except Exception as e:  # noqa: BLE001  (a scrape must not fail because the store did)
                    log.warning("learning metrics not refreshed: %s", e)
                self._read_at = now
            return list(self._families)

    def _read(self) -> list:
        from prometheus_client.core import GaugeMetricFamily

        from aeth.learning.history import entry_from_manifest

        rows = GaugeMetricFamily("aeth_feedback_rows", "Feedback rows stored, by specialist, kind and source",
                                 labels=["specialist", "kind", "source"])
        for (specialist, kind, source), n in sorted(self.app.store.feedback_counts().items()):
            rows.add_metric([specialist, kind, source], n)
        score = GaugeMetricFamily("aeth_active_eval_score", "The active adapter version's eval-suite score at its gate",
                                  labels=["specialist", "adapter"])
        heldout = GaugeMetricFamily("aeth_active_heldout_score", "The active adapter version's held-out feedback "
                                    "agreement at its gate, per kind (dpo, kto: share; sft: log-prob)",
                                    labels=["specialist", "adapter", "kind"])
        for name in sorted(self.app.specialists()):
            active = self.app.adapters.active(name)
            if active is None:
                continue
            entry = entry_from_manifest(active.version, active.number, active.manifest)
            if entry.score is not None:
                score.add_metric([name, active.version], entry.score)
            for kind, (new, _baseline) in sorted(entry.heldout.items()):
                heldout.add_metric([name, active.version, kind], new)
        return [rows, score, heldout]
