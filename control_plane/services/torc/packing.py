"""Resource-aware claiming rules: candidate order and greedy packing (pure functions)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SORT_METHODS = ("gpus_runtime_memory", "gpus_memory_runtime", "none")
ORDER_BY = {
    # API 0.21 (no sort_method): priority, then the largest jobs first.
    None: "priority DESC, gpus DESC, runtime DESC, memory DESC, cpus DESC, j.id",
    "gpus_runtime_memory": "priority DESC, gpus DESC, runtime DESC, memory DESC, j.id",
    "gpus_memory_runtime": "priority DESC, gpus DESC, memory DESC, runtime DESC, j.id",
    "none": "priority DESC, j.id",
}
"""``ORDER BY`` of the candidate query per ``sort_method`` (output column names).

Job ``priority`` (higher first) always comes first; v0.12's sort methods order within a
priority.
"""


def memory_cap(resources: Mapping[str, Any]) -> int:
    """The offered memory in bytes."""
    return int(float(resources["memory_gb"]) * 1024**3)


def remaining(
    resources: Mapping[str, Any], rows: Iterable[Any], chosen: list[int]
) -> dict[str, Any]:
    """The offer minus what the chosen jobs take (for the backfill pass)."""
    taken = set(chosen)
    left = dict(resources)
    memory = float(resources["memory_gb"]) * 1024**3
    for row in rows:
        if row.id in taken:
            left["num_cpus"] -= row.cpus
            left["num_gpus"] -= row.gpus
            memory -= row.memory
            if row.nodes > 1:
                left["num_nodes"] -= row.nodes
    left["memory_gb"] = max(memory, 0.0) / 1024**3
    return left


def pack(rows: Iterable[Any], resources: Mapping[str, Any], limit: int | None = None) -> list[int]:
    """Greedy packing in candidate order; single-node jobs share nodes.

    Args:
        rows: candidates with ``id``, ``cpus``, ``gpus``, ``nodes`` and ``memory``.
        resources: the offer (``num_cpus``, ``num_gpus``, ``memory_gb``, ``num_nodes``).
        limit: the most jobs to take.

    Returns:
        The ids of the jobs taken, in candidate order.
    """
    cpus = gpus = memory = nodes = 0
    mem_cap = float(resources["memory_gb"]) * 1024**3
    chosen: list[int] = []
    for row in rows:
        if limit is not None and len(chosen) >= limit:
            break
        multi = row.nodes > 1
        if (
            cpus + row.cpus <= resources["num_cpus"]
            and gpus + row.gpus <= resources["num_gpus"]
            and memory + row.memory <= mem_cap
            and (not multi or nodes + row.nodes <= resources["num_nodes"])
        ):
            cpus += row.cpus
            gpus += row.gpus
            memory += row.memory
            nodes += row.nodes if multi else 0
            chosen.append(row.id)
    return chosen
