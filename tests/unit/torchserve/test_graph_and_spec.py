import asyncio
import json
import time

import pytest

from deployments.contracts.graph import (
    InvalidDagError,
    NodeExecutionError,
    assemble_response,
    call_with_retry,
    run_dag,
    validate_dag,
)
from deployments.contracts.workflow_spec import (
    InvalidSpecError,
    dag_string,
    missing_function_nodes,
    parse_spec,
)


@pytest.mark.parametrize(
    ("edges", "message"),
    [
        ({"a": ["a"]}, "Self loop exception"),
        ({"a": ["b", "b"]}, "loop exception"),
        ({"a": ["c"], "b": ["c"]}, "DAG should have only one start node"),
        ({"a": ["b"], "b": ["c"], "c": ["b"]}, "Not a valid DAG"),
        ({"a": ["b"], "b": ["a"]}, "DAG should have only one start node"),
    ],
)
def test_validate_dag_rejects_like_torchserve(edges, message):
    with pytest.raises(InvalidDagError) as err:
        validate_dag(edges)
    assert err.value.message == message
    assert err.value.ts_type == "InvalidDAGException"


def test_validate_dag_single_node_and_diamond():
    single = validate_dag({"only": []})
    assert single.start == "only"
    assert single.leaves == ["only"]
    dag = validate_dag({"pre": ["m1", "m2"], "m1": ["post"], "m2": ["post"]})
    assert dag.order[0] == "pre"
    assert dag.order[-1] == "post"
    assert dag.parents["post"] == ["m1", "m2"]


SPEC = """
models:
  min-workers: 2
  first:
    url: first.mar
  max-workers: 3
  batch-size: 4
  second:
    url: second.mar
    batch-size: 8
    timeout-ms: 100
  unused:
    url: unused.mar
dag:
  pre: [first, second]
  first: [post]
  second: [post]
"""


def test_parse_spec_scans_globals_in_file_order():
    spec = parse_spec(SPEC)
    assert spec.globals.min_workers == 2
    assert spec.globals.max_workers == 3
    # "first" appears before max-workers/batch-size: it does not inherit them
    assert spec.models["first"].config.max_workers == 1
    assert spec.models["first"].config.min_workers == 2
    assert spec.models["second"].config.batch_size == 8
    assert spec.models["second"].config.max_workers == 3
    assert spec.models["second"].config.timeout_ms == 100
    assert "unused" not in spec.models
    assert spec.function_nodes() == ["pre", "post"]
    assert dag_string(spec.raw_dag) == "{pre=[first, second], first=[post], second=[post]}"


@pytest.mark.parametrize(
    "text",
    [
        "models: [",
        "models:\n  a: {url: a.mar}\n",
        "dag:\n  a: []\n",
        "models:\n  batch-size: x\ndag:\n  a: []\n",
        "models: {}\ndag:\n  a:\n",
    ],
)
def test_parse_spec_rejects_bad_specs_as_invalid_archives(text):
    with pytest.raises(InvalidSpecError) as err:
        parse_spec(text)
    assert err.value.ts_type == "InvalidWorkflowException"


def test_missing_function_nodes_uses_ast_not_execution():
    source = "import sys\nsys.exit(1)\ndef pre(d, c):\n    return d\n"
    assert missing_function_nodes(source, ["pre", "post"]) == ["post"]
    single_class = "class H:\n    def handle(self, d, c):\n        return d\n"
    assert missing_function_nodes(single_class, ["anything"]) == []


async def test_run_dag_runs_branches_concurrently_and_fans_in():
    dag = validate_dag({"pre": ["a", "b"], "a": ["post"], "b": ["post"]})
    spans: dict[str, tuple[float, float]] = {}

    async def call(node, row):
        start = time.monotonic()
        await asyncio.sleep(0.2 if node in ("a", "b") else 0)
        spans[node] = (start, time.monotonic())
        if node == "post":
            return json.dumps({k: bytes(v).decode() for k, v in row.items()}).encode()
        return node.encode()

    outputs = await run_dag(dag, {"body": b"x"}, call)
    assert json.loads(outputs["post"]) == {"a": "a", "b": "b"}
    overlap = min(spans["a"][1], spans["b"][1]) - max(spans["a"][0], spans["b"][0])
    assert overlap > 0.15


async def test_call_with_retry_retries_then_raises_node_error():
    attempts = []

    async def flaky():
        attempts.append(1)
        await asyncio.sleep(1)
        return b"never"

    with pytest.raises(NodeExecutionError, match="Error executing slow"):
        await call_with_retry("slow", flaky, retry_attempts=2, timeout_ms=20)
    assert len(attempts) == 3

    outcomes = iter([RuntimeError("x"), b"ok"])

    async def second_time():
        value = next(outcomes)
        if isinstance(value, Exception):
            raise value
        return value

    assert await call_with_retry("n", second_time, retry_attempts=1, timeout_ms=1000) == b"ok"


def test_assemble_response_single_and_multiple_leaves():
    single = validate_dag({"a": ["b"]})
    assert assemble_response(single, {"a": b"1", "b": b"raw"}) == b"raw"
    multi = validate_dag({"a": ["b", "c"]})
    body = assemble_response(multi, {"a": b"", "b": b'{"x": 1}', "c": b'{"y": 2}'})
    assert json.loads(body) == {"b": {"x": 1}, "c": {"y": 2}}
    with pytest.raises(ValueError, match="not a JSON object"):
        assemble_response(multi, {"a": b"", "b": b"[1]", "c": b"{}"})
