"""Workflow DAGs (Ray-free): validation and the async executor.

Validation follows TorchServe's ``InvalidDAGException`` rules; the
async executor the workflow driver runs (concurrent branches, fan-in, retries, timeouts).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from deployments.contracts.archives import ArchiveError
from deployments.contracts.errors import TorchServeReplicaError

logger = logging.getLogger(__name__)


class InvalidDagError(ArchiveError):
    """The spec's ``dag`` section is not a DAG with one start node (the request is wrong)."""

    ts_type = "InvalidDAGException"


def _invalid(message: str) -> InvalidDagError:
    return InvalidDagError(message)


@dataclass
class Dag:
    """A validated DAG: nodes in first-seen order, edges both ways, one start node."""

    nodes: list[str]
    children: dict[str, list[str]]
    parents: dict[str, list[str]]
    start: str
    order: list[str] = field(default_factory=list)

    @property
    def leaves(self) -> list[str]:
        """Nodes without children, in node order."""
        return [n for n in self.nodes if not self.children[n]]


def validate_dag(edges: dict[str, list[str]]) -> Dag:
    """Validate ``node -> [children]`` like TorchServe's ``Dag.java``.

    Raises:
        InvalidDagError: "Self loop exception", "loop exception",
            "DAG should have only one start node" or "Not a valid DAG".
    """
    nodes: list[str] = []
    children: dict[str, list[str]] = {}
    parents: dict[str, list[str]] = {}

    def add(node: str) -> None:
        if node not in children:
            nodes.append(node)
            children[node] = []
            parents[node] = []

    for parent, kids in edges.items():
        add(parent)
        for child in kids:
            add(child)
            if child == parent:
                raise _invalid("Self loop exception")
            if child in children[parent]:
                raise _invalid("loop exception")
            children[parent].append(child)
            parents[child].append(parent)
    if not nodes:
        raise _invalid("DAG should have only one start node")
    starts = [n for n in nodes if not parents[n]]
    if len(starts) != 1:
        raise _invalid("DAG should have only one start node")
    order = topological_order(nodes, children, parents)
    if len(order) != len(nodes):
        raise _invalid("Not a valid DAG")
    return Dag(nodes=nodes, children=children, parents=parents, start=starts[0], order=order)


def topological_order(
    nodes: list[str], children: dict[str, list[str]], parents: dict[str, list[str]]
) -> list[str]:
    """Kahn's algorithm; nodes on a cycle are left out."""
    remaining = {n: len(parents[n]) for n in nodes}
    ready = [n for n in nodes if remaining[n] == 0]
    order: list[str] = []
    while ready:
        node = ready.pop(0)
        order.append(node)
        for child in children[node]:
            remaining[child] -= 1
            if remaining[child] == 0:
                ready.append(child)
    return order


class NodeExecutionError(TorchServeReplicaError):
    """A node failed after all attempts: TorchServe answers "Error executing <node>"."""

    def __init__(self, node: str) -> None:
        super().__init__(f"Error executing {node}")
        self.node = node


NodeCall = Callable[[str, dict[str, Any]], Awaitable[bytes]]


async def call_with_retry(
    node: str, call: Callable[[], Awaitable[bytes]], retry_attempts: int, timeout_ms: int
) -> bytes:
    """Run one node: each attempt waits ``timeout_ms``; ``retry_attempts`` extra attempts.

    Raises:
        NodeExecutionError: every attempt failed or timed out.
    """
    for attempt in range(max(0, retry_attempts) + 1):
        try:
            return await asyncio.wait_for(call(), timeout=timeout_ms / 1000.0)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure makes the attempt fail, like TorchServe
            logger.warning("node %s attempt %d failed: %r", node, attempt + 1, exc)
    raise NodeExecutionError(node)


def node_input(
    dag: Dag, node: str, start_row: dict[str, Any], outputs: dict[str, bytes]
) -> dict[str, Any]:
    """What a node receives.

    The request for the start node, ``{"body": ...}`` for one parent,
    ``{parent: ...}`` for several (values are raw bytes, as TorchServe passes them).
    """
    parents = dag.parents[node]
    if not parents:
        return start_row
    if len(parents) == 1:
        return {"body": bytearray(outputs[parents[0]])}
    return {p: bytearray(outputs[p]) for p in parents}


async def run_dag(dag: Dag, start_row: dict[str, Any], call: NodeCall) -> dict[str, bytes]:
    """Execute the DAG; independent branches run concurrently.

    Each node starts as soon as all its parents are done. Returns every node's output bytes.

    Raises:
        NodeExecutionError: from the first failing node (the other branches are cancelled).
    """
    outputs: dict[str, bytes] = {}
    tasks: dict[str, asyncio.Task[None]] = {}

    async def run(node: str) -> None:
        for parent in dag.parents[node]:
            await tasks[parent]
        outputs[node] = await call(node, node_input(dag, node, start_row, outputs))

    for node in dag.order:
        tasks[node] = asyncio.ensure_future(run(node))
    try:
        await asyncio.gather(*tasks.values())
    except BaseException:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        raise
    return outputs


def assemble_response(dag: Dag, outputs: dict[str, bytes]) -> bytes:
    """The wfpredict body: the single leaf's bytes, or a JSON object of every leaf's JSON object.

    Raises:
        ValueError: with several leaves, a leaf output is not a JSON object.
    """
    leaves = dag.leaves
    if len(leaves) == 1:
        return outputs[leaves[0]]
    merged: dict[str, Any] = {}
    for leaf in leaves:
        value = json.loads(outputs[leaf])
        if not isinstance(value, dict):
            raise ValueError(f"output of leaf {leaf} is not a JSON object")
        merged[leaf] = value
    return json.dumps(merged, indent=2).encode("utf-8")
