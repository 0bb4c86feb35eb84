"""Resource-aware claiming rules: candidate order and greedy packing (pure functions)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SORT_METHODS = ("gpus_runtime_memory", "gpus_memory_runtime", "none")
ORDER_BY = {
    None: "gpus DESC, runtime DESC, memory DESC, j.id",
    "gpus_runtime_memory": "gpus DESC, runtime DESC, memory DESC, j.id",
    "gpus_memory_runtime": "gpus DESC, memory DESC, runtime DESC, j.id",
    "none": "j.id",
}
"""``ORDER BY`` of the candidate query per ``sort_method`` (output column names)."""


def memory_cap(resources: Mapping[str, Any]) -> int:
    """The offered memory in bytes."""
    return int(float(resources["memory_gb"]) * 1024**3)


def pack(rows: Iterable[Any], resources: Mapping[str, Any]) -> list[int]:
    """Greedy packing in candidate order; single-node jobs share nodes.

    Args:
        rows: candidates with ``id``, ``cpus``, ``gpus``, ``nodes`` and ``memory``.
        resources: the offer (``num_cpus``, ``num_gpus``, ``memory_gb``, ``num_nodes``).

    Returns:
        The ids of the jobs taken, in candidate order.
    """
    cpus = gpus = memory = nodes = 0
    mem_cap = float(resources["memory_gb"]) * 1024**3
    chosen = []
    for row in rows:
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
