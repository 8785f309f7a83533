"""Prometheus metrics of the gateway, rendered in the text exposition format (version 0.0.4)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["CONTENT_TYPE", "DEFAULT_BUCKETS", "Metrics", "Outcome"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
)


class Outcome:
    """The outcome label values of faas_gateway_invocations_total."""

    SUCCESS = "success"
    ERROR = "error"  # the function raised
    TIMEOUT = "timeout"  # 504, still queued or running
    BAD_REQUEST = "bad_request"
    NOT_FOUND = "not_found"
    UNAVAILABLE = "unavailable"  # server unreachable
    ACCEPTED = "accepted"  # async invocation submitted


UNKNOWN_FUNCTION = "(unknown)"
UNNAMED = frozenset({Outcome.NOT_FOUND, Outcome.UNAVAILABLE})
"""Outcomes whose function name was not found to be deployed: counted under UNKNOWN_FUNCTION."""


@dataclass
class _Histogram:
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    n: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        self.total += value
        self.n += 1
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
                break


class Metrics:
    """Counters and histograms of one gateway process (each uvicorn worker has its own)."""

    def __init__(self, buckets: tuple[float, ...] = DEFAULT_BUCKETS) -> None:
        self.buckets = buckets
        self.invocations: dict[tuple[str, str], int] = {}
        self.latency: dict[str, _Histogram] = {}
        self.in_flight = 0
        self.callbacks: dict[str, int] = {}

    def record(self, function: str, outcome: str, seconds: float | None = None) -> None:
        if outcome in UNNAMED:  # any caller-chosen name: one series each would grow without bound
            function = UNKNOWN_FUNCTION
        key = (function, outcome)
        self.invocations[key] = self.invocations.get(key, 0) + 1
        if seconds is not None:
            hist = self.latency.get(function)
            if hist is None:
                hist = self.latency[function] = _Histogram(self.buckets)
            hist.observe(seconds)

    def record_callback(self, outcome: str) -> None:
        self.callbacks[outcome] = self.callbacks.get(outcome, 0) + 1

    def render(self, waiting: Mapping[str, int] | None = None, server_up: bool | None = None) -> str:
        """The exposition text; `waiting` (executortype → waiting processes, "" = the whole colony)
        comes from the server."""
        out: list[str] = []
        out += _header("faas_gateway_invocations_total", "counter",
                       "Invocations handled by this gateway, by function and outcome.")
        for (fn, outcome), n in sorted(self.invocations.items()):
            out.append(f"faas_gateway_invocations_total{_labels(function=fn, outcome=outcome)} {n}")
        name = "faas_gateway_invocation_duration_seconds"
        out += _header(name, "histogram", "Time from request to result of synchronous invocations.")
        for fn, hist in sorted(self.latency.items()):
            cumulative = 0
            for bound, count in zip(hist.buckets, hist.counts, strict=True):
                cumulative += count
                out.append(f"{name}_bucket{_labels(function=fn, le=_num(bound))} {cumulative}")
            out.append(f"{name}_bucket{_labels(function=fn, le='+Inf')} {hist.n}")
            out.append(f"{name}_sum{_labels(function=fn)} {_num(hist.total)}")
            out.append(f"{name}_count{_labels(function=fn)} {hist.n}")
        out += _header("faas_gateway_in_flight", "gauge", "Synchronous invocations waiting for their result.")
        out.append(f"faas_gateway_in_flight {self.in_flight}")
        out += _header("faas_gateway_callbacks_total", "counter", "Async callback deliveries, by outcome.")
        for outcome, n in sorted(self.callbacks.items()):
            out.append(f"faas_gateway_callbacks_total{_labels(outcome=outcome)} {n}")
        if server_up is not None:
            out += _header("faas_gateway_server_up", "gauge", "1 when the Colonies server answered the last scrape.")
            out.append(f"faas_gateway_server_up {int(server_up)}")
        if waiting is not None:
            by_type = {et: n for et, n in waiting.items() if et}
            out += _header("faas_waiting_processes", "gauge",
                           "Processes waiting for an executor, by executor type (from the Colonies server; "
                           "at most 100 per type).")
            for et, n in sorted(by_type.items()):
                out.append(f"faas_waiting_processes{_labels(executortype=et)} {n}")
            if "" in waiting:
                out += _header("faas_colony_waiting_processes", "gauge",
                               "Processes of every executor type waiting in the gateway's colony (exact).")
                out.append(f"faas_colony_waiting_processes {waiting['']}")
        return "\n".join(out) + "\n"


def _header(name: str, kind: str, help_text: str) -> Iterable[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _num(v: float) -> str:
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))
