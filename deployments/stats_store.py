"""A named Ray actor that sums inference statistics across every model replica."""

from __future__ import annotations

from typing import Any

import ray

from deployments.stats import VersionStats, merge_delta

STORE_NAME = "platform-model-stats"
STORE_NAMESPACE = "platform"


@ray.remote(num_cpus=0, max_concurrency=64)
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
    return StatsStore.options(
        name=STORE_NAME, namespace=STORE_NAMESPACE, lifetime="detached", get_if_exists=True
    ).remote()


def totals_from(raw: dict[str, dict[str, Any]]) -> dict[tuple[str, int], VersionStats]:
    """Decode ``StatsStore.get`` output."""
    result = {}
    for key, data in raw.items():
        model, _, version = key.rpartition("/")
        result[(model, int(version))] = VersionStats.from_dict(data)
    return result
