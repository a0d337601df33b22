"""Prometheus metrics: requests and their latency per route, batch jobs by state.

Served at ``/metrics`` (any valid key).  Each app has its own registry, so several apps
in one process (tests) do not collide.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _JobsCollector:
    def __init__(self, db):
        self.db = db

    def collect(self):
        g = GaugeMetricFamily("locard_batch_jobs", "Batch jobs by state", labels=["state"])
        counts = dict(self.db.query("SELECT state, COUNT(*) FROM jobs GROUP BY state"))
        for state in ("queued", "running", "done", "cancelled", "failed"):
            g.add_metric([state], counts.get(state, 0))
        yield g


class Metrics:
    def __init__(self, db):
        self.registry = CollectorRegistry()
        self.requests = Counter("locard_http_requests", "HTTP requests answered", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("locard_http_request_seconds", "Time to answer an HTTP request",
                                 ["method", "route"], buckets=BUCKETS, registry=self.registry)
        self.registry.register(_JobsCollector(db))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """ASGI middleware timing every HTTP request by its route template (not its raw path)."""

    def __init__(self, app, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = 500

        async def send_status(msg):
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
            await send(msg)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], name, str(status)).inc()
            self.metrics.latency.labels(scope["method"], name).observe(time.perf_counter() - t0)
