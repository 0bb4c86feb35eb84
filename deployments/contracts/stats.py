"""Ray-free inference statistics in Triton's statistics-extension shape."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

_DURATIONS = ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output")
# Upper bounds (seconds) of the request-latency histogram exported to Prometheus.
# The cluster's statistics actor (``deployments.stats_store``), found by name by the control plane.
STATS_STORE_NAME = "platform-model-stats"
STATS_STORE_NAMESPACE = "platform"
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class VersionStats:
    """Counters for one (model, version); durations are (count, ns) pairs."""

    durations: dict[str, list[int]] = field(default_factory=lambda: {k: [0, 0] for k in _DURATIONS})
    inference_count: int = 0
    execution_count: int = 0
    last_inference_ms: int = 0
    batches: dict[int, list[int]] = field(default_factory=dict)
    latency_buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_S) + 1))

    def observe_latency(self, seconds: float) -> None:
        """Count one request latency in its (non-cumulative) histogram bucket."""
        index = next(
            (i for i, b in enumerate(LATENCY_BUCKETS_S) if seconds <= b), len(LATENCY_BUCKETS_S)
        )
        self.latency_buckets[index] += 1

    def add(self, other: VersionStats) -> None:
        """Accumulate another set of counters into this one."""
        for key, (count, ns) in other.durations.items():
            self.durations[key][0] += count
            self.durations[key][1] += ns
        self.inference_count += other.inference_count
        self.execution_count += other.execution_count
        self.last_inference_ms = max(self.last_inference_ms, other.last_inference_ms)
        for size, values in other.batches.items():
            mine = self.batches.setdefault(size, [0, 0, 0, 0])
            for i, value in enumerate(values):
                mine[i] += value
        for i, count in enumerate(other.latency_buckets):
            self.latency_buckets[i] += count

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (crosses process boundaries)."""
        return {
            "durations": self.durations,
            "inference_count": self.inference_count,
            "execution_count": self.execution_count,
            "last_inference_ms": self.last_inference_ms,
            "batches": {str(k): v for k, v in self.batches.items()},
            "latency_buckets": self.latency_buckets,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VersionStats:
        """Inverse of to_dict."""
        stats = cls()
        stats.durations = {k: list(v) for k, v in data["durations"].items()}
        stats.inference_count = data["inference_count"]
        stats.execution_count = data["execution_count"]
        stats.last_inference_ms = data["last_inference_ms"]
        stats.batches = {int(k): list(v) for k, v in data["batches"].items()}
        if "latency_buckets" in data:
            stats.latency_buckets = list(data["latency_buckets"])
        return stats


class StatsBook:
    """Per-replica counters; ``drain`` hands the increments to the shared store."""

    def __init__(self) -> None:
        self.pending: dict[tuple[str, int | str], VersionStats] = {}
        # Workflow chains record from worker threads while the loop drains.
        self._lock = threading.Lock()

    def _get(self, model: str, version: int | str) -> VersionStats:
        stats = self.pending.get((model, version))
        if stats is None:  # hot path: build the (costly) dataclass only once per drain period
            stats = self.pending[(model, version)] = VersionStats()
        return stats

    def request(
        self,
        model: str,
        version: int | str,
        *,
        ok: bool,
        total_ns: int,
        queue_ns: int = 0,
        input_ns: int = 0,
        infer_ns: int = 0,
        output_ns: int = 0,
        batch: int = 1,
    ) -> None:
        """Record one request's outcome and its phase durations."""
        with self._lock:
            self._record(
                model, version, ok, total_ns, (queue_ns, input_ns, infer_ns, output_ns), batch
            )

    def _record(
        self,
        model: str,
        version: int | str,
        ok: bool,
        total_ns: int,
        phases: tuple[int, int, int, int],
        batch: int,
    ) -> None:
        queue_ns, input_ns, infer_ns, output_ns = phases
        stats = self._get(model, version)
        key = "success" if ok else "fail"
        stats.durations[key][0] += 1
        stats.durations[key][1] += total_ns
        stats.observe_latency(total_ns / 1e9)
        if ok:
            for name, ns in (
                ("queue", queue_ns),
                ("compute_input", input_ns),
                ("compute_infer", infer_ns),
                ("compute_output", output_ns),
            ):
                stats.durations[name][0] += 1
                stats.durations[name][1] += ns
            stats.inference_count += batch
            stats.last_inference_ms = int(time.time() * 1000)

    def execution(self, model: str, version: int | str, *, batch_size: int, infer_ns: int) -> None:
        """Record one model execution of ``batch_size`` batch elements."""
        with self._lock:
            self._execution(model, version, batch_size, infer_ns)

    def _execution(self, model: str, version: int | str, batch_size: int, infer_ns: int) -> None:
        stats = self._get(model, version)
        stats.execution_count += 1
        entry = stats.batches.setdefault(batch_size, [0, 0, 0, 0])
        entry[0] += 1
        entry[2] += infer_ns

    def drain(self) -> dict[str, dict[str, Any]]:
        """Take the accumulated increments, keyed ``"model/version"``."""
        with self._lock:
            pending, self.pending = self.pending, {}
        return {f"{m}/{v}": s.to_dict() for (m, v), s in pending.items()}


def merge_delta(totals: dict[str, VersionStats], delta: dict[str, dict[str, Any]]) -> None:
    """Add drained increments into running totals."""
    for key, data in delta.items():
        totals.setdefault(key, VersionStats()).add(VersionStats.from_dict(data))


def triton_model_stats(name: str, version: int, stats: VersionStats | None) -> dict[str, Any]:
    """One entry of ``model_stats`` as Triton's statistics extension returns it."""
    stats = stats or VersionStats()
    inference = {k: {"count": c, "ns": ns} for k, (c, ns) in stats.durations.items()}
    inference.update({"cache_hit": {"count": 0, "ns": 0}, "cache_miss": {"count": 0, "ns": 0}})
    return {
        "name": name,
        "version": str(version),
        "last_inference": stats.last_inference_ms,
        "inference_count": stats.inference_count,
        "execution_count": stats.execution_count,
        "inference_stats": inference,
        "response_stats": {},
        "batch_stats": [
            {
                "batch_size": size,
                "compute_input": {"count": v[0], "ns": v[1]},
                "compute_infer": {"count": v[0], "ns": v[2]},
                "compute_output": {"count": v[0], "ns": v[3]},
            }
            for size, v in sorted(stats.batches.items())
        ],
        "memory_usage": [],
    }
