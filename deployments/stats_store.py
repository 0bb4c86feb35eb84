"""A named Ray actor that sums inference statistics across every model replica."""

from __future__ import annotations

import logging
from typing import Any

import ray

from deployments.contracts.stats import (
    STATS_STORE_NAME,
    STATS_STORE_NAMESPACE,
    StatsBook,
    VersionStats,
    merge_delta,
)
from deployments.pusher import Pusher

logger = logging.getLogger(__name__)


@ray.remote(num_cpus=0, max_concurrency=64)  # type: ignore[call-overload]
class StatsStore:
    """Totals per ``model/version``; replicas push increments, readers get totals."""

    def __init__(self) -> None:
        self.totals: dict[str, VersionStats] = {}

    def merge(self, delta: dict[str, dict[str, Any]]) -> None:
        """Add increments from one replica."""
        merge_delta(self.totals, delta)

    def get(self, model: str | None = None) -> dict[str, dict[str, Any]]:
        """Totals for one model (all versions) or for every model."""
        return {
            key: stats.to_dict()
            for key, stats in self.totals.items()
            if model is None or key.rsplit("/", 1)[0] == model
        }


def get_stats_store() -> Any:
    """The cluster's stats actor, created on first use (detached: it outlives replicas)."""
    return StatsStore.options(  # type: ignore[attr-defined]
        name=STATS_STORE_NAME,
        namespace=STATS_STORE_NAMESPACE,
        lifetime="detached",
        get_if_exists=True,
    ).remote()


def totals_from(raw: dict[str, dict[str, Any]]) -> dict[tuple[str, int], VersionStats]:
    """Decode ``StatsStore.get`` output of numbered (Triton) versions."""
    result = {}
    for key, data in raw.items():
        model, _, version = key.rpartition("/")
        if version.isdigit():
            result[(model, int(version))] = VersionStats.from_dict(data)
    return result


class StatsReporter(Pusher):
    """A replica's counters, pushed to the cluster's StatsStore every second.

    Replicas record into ``book`` on the hot path (no remote call); the increments travel in
    one fire-and-forget batch per period.
    """

    def __init__(self) -> None:
        self.book = StatsBook()
        super().__init__(self.book.drain, get_stats_store, "stats")
