"""Every Prometheus metric the service exports, defined in one place."""

from __future__ import annotations

from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

# The closed label sets (trip actions: app.guard.policy.TRIP_ACTIONS).
RequestOutcome = Literal[
    "ok", "client_error", "unauthorized", "overloaded", "server_error", "cancelled"
]
RecoveryResult = Literal["recovered", "failed"]
LogResult = Literal["written", "buffered", "flushed", "dropped", "error"]

_TOKEN_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
_SECONDS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    """The service's metrics on their own registry (one per app, so tests stay apart).

    Degeneration rate per model, the paper's definition (degenerate pages / pages):
    ``sum by (model) (rate(ocrguard_degenerate_pages_total[5m]))
    / sum by (model) (rate(ocrguard_pages_total[5m]))``
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "ocrguard_requests_total", "OCR requests by outcome.", ["model", "outcome"], registry=r
        )
        self.pages = Counter("ocrguard_pages_total", "Pages transcribed.", ["model"], registry=r)
        self.degenerate_pages = Counter(
            "ocrguard_degenerate_pages_total",
            "Pages whose first generation the guard found degenerate (guard not off).",
            ["model"],
            registry=r,
        )
        self.trips = Counter(
            "ocrguard_guard_trips_total",
            "Guard trips of any attempt, by loop kind and what the guard did "
            "(flag, abort, resume, retry, give_up).",
            ["model", "kind", "action"],
            registry=r,
        )
        self.lag = Histogram(
            "ocrguard_guard_detection_lag_tokens",
            "Tokens generated after a loop began until the guard tripped.",
            ["model"],
            buckets=_TOKEN_BUCKETS,
            registry=r,
        )
        self.generated_tokens = Counter(
            "ocrguard_generated_tokens_total",
            "Tokens generated, every attempt included.",
            ["model"],
            registry=r,
        )
        self.saved_tokens = Counter(
            "ocrguard_saved_tokens_total",
            "Tokens not generated because the guard aborted a loop (max_tokens minus spent).",
            ["model"],
            registry=r,
        )
        self.recoveries = Counter(
            "ocrguard_recoveries_total",
            "Pages the recovery policy ran on, by result.",
            ["model", "result"],
            registry=r,
        )
        self.duration = Histogram(
            "ocrguard_request_duration_seconds",
            "Time from request to full response.",
            ["model"],
            buckets=_SECONDS_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "ocrguard_time_to_first_token_seconds",
            "Time from request to the first generated token.",
            ["model"],
            buckets=_SECONDS_BUCKETS,
            registry=r,
        )
        self.inflight = Gauge(
            "ocrguard_inflight_requests", "OCR requests being served.", ["model"], registry=r
        )
        self.log_records = Counter(
            "ocrguard_failure_log_records_total",
            "Failure records by what happened to them.",
            ["result"],
            registry=r,
        )
        self.log_buffered = Gauge(
            "ocrguard_failure_log_buffered_records",
            "Failure records waiting in memory for Redis.",
            registry=r,
        )
        self.ready = Gauge(
            "ocrguard_ready",
            "1 while the model is loaded and the server takes requests (set on /readyz).",
            registry=r,
        )
        self.redis_up = Gauge(
            "ocrguard_failure_log_redis_up",
            "1 when Redis answered the last /readyz ping.",
            registry=r,
        )
        self.info = Info("ocrguard_build", "Served model and guard configuration.", registry=r)

    def start_series(self, model: str) -> None:
        """Create the served model's series at zero, so that rate() sees the first event."""
        for counter in (
            self.pages,
            self.degenerate_pages,
            self.generated_tokens,
            self.saved_tokens,
        ):
            counter.labels(model).inc(0)
        self.requests.labels(model, "ok").inc(0)
        self.inflight.labels(model).set(0)
        for result in ("written", "buffered", "flushed", "dropped", "error"):
            self.log_records.labels(result).inc(0)
