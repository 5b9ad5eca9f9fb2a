"""What ``GET /metrics`` exposes, in Prometheus' text format (prometheus-client).

Each server has its own registry, so two servers (or tests) in one process never share counters.
"""

from __future__ import annotations

from typing import Any

#: latency buckets in seconds: a few ms for rejections up to minutes for long answers on a CPU
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    """The server's counters, histograms and gauges (names start with ``aeth_``)."""

    def __init__(self):
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
        self.routes = Counter("aeth_route_decisions", "Which specialist answered and how it was chosen",
                              ["specialist", "how"], registry=r)
        self.cost = Counter("aeth_cost_dollars", "What the answers cost at aeth's own price (kind=aeth) and what "
                            "the same tokens cost at an API's prices (kind=api)", ["kind", "model"], registry=r)

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
