"""Pure functions over a workflow's job graph: cycles, downstream sets, input hashes."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from typing import Any


def find_cycle(nodes: Iterable[int], edges: Mapping[int, Iterable[int]]) -> list[int] | None:
    """A dependency cycle as a closed path ``[a, b, ..., a]``, or None.

    ``edges[j]`` are the jobs ``j`` depends on.
    """
    nodes = list(nodes)
    indegree: dict[int, int] = dict.fromkeys(nodes, 0)
    users: dict[int, list[int]] = defaultdict(list)
    for job, deps in edges.items():
        for dep in deps:
            if dep in indegree and job in indegree:
                indegree[job] += 1
                users[dep].append(job)
    queue = deque(n for n, d in indegree.items() if d == 0)
    while queue:
        node = queue.popleft()
        for user in users[node]:
            indegree[user] -= 1
            if indegree[user] == 0:
                queue.append(user)
    remaining = {n for n, d in indegree.items() if d > 0}
    if not remaining:
        return None
    # Every remaining node depends on another remaining node: walk until a node repeats.
    start = min(remaining)
    path: list[int] = []
    seen: dict[int, int] = {}
    node = start
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = min(d for d in edges.get(node, ()) if d in remaining)
    cycle = path[seen[node] :]
    return [*cycle, node]


def downstream(starts: Iterable[int], users: Mapping[int, Iterable[int]]) -> set[int]:
    """Every job transitively depending on any of ``starts`` (excluding the starts)."""
    out: set[int] = set()
    queue = deque(starts)
    while queue:
        node = queue.popleft()
        for user in users.get(node, ()):
            if user not in out:
                out.add(user)
                queue.append(user)
    return out


def input_hash(job: Mapping[str, Any]) -> str:
    """SHA-256 over what defines a job's inputs (command, links, input data and file mtimes)."""
    document = json.dumps(job, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(document.encode()).hexdigest()
