"""The workflow driver as a plain class (no Ray runtime): fused chains, branches, retries."""

import asyncio
import json
import time

import pytest

from deployments.contracts.app_args import (
    TorchServeVersionArgs,
    WorkflowAppArgs,
    WorkflowNodeConfig,
)
from deployments.contracts.graph import NodeExecutionError
from deployments.workflow import WorkflowDriver
from tests.integration.torchserve.builders import (
    DIAMOND_FUNCTIONS,
    SLEEPY_MODEL,
    make_mar,
    make_war,
)

SLOW = """
import time

calls = []


def pre(data, context):
    if data is None:
        return None
    calls.append(time.time())
    time.sleep(0.15)
    return [b"late"]
"""


def _args(tmp_path, name, dag, handler_source, inline=None, configs=None):
    war = make_war(
        tmp_path / "wf",
        name,
        "models: {}\ndag:\n  x: []\n",
        handler_source,
        work=tmp_path / f"src-{name}",
    )
    nodes = list(dict.fromkeys([*dag, *[c for cs in dag.values() for c in cs]]))
    inline = inline or {}
    return WorkflowAppArgs(
        name=name,
        archive=str(war),
        war_dir=str(tmp_path / f"x-{name}"),
        handler="workflow_handler.py",
        dag=dag,
        node_configs={
            n: WorkflowNodeConfig(
                **{"retry_attempts": 1, "timeout_ms": 5000, **(configs or {}).get(n, {})}
            )
            for n in nodes
        },
        function_nodes=[n for n in nodes if n not in inline],
        inline=inline,
        max_ongoing_requests=8,
    )


async def test_fused_chain_runs_in_one_hop_and_fails_like_torchserve(tmp_path):
    driver = WorkflowDriver(_args(tmp_path, "chain", {"pre": ["fail"]}, DIAMOND_FUNCTIONS), {})
    assert driver.chain == ["pre", "fail"]
    with pytest.raises(NodeExecutionError, match="Error executing fail"):
        await driver.run({"body": bytearray(b"x")}, {})


async def test_fused_chain_counts_attempts_over_timeout_as_failures(tmp_path):
    args = _args(
        tmp_path,
        "slow",
        {"pre": []},
        SLOW,
        configs={"pre": {"timeout_ms": 50, "retry_attempts": 2}},
    )
    driver = WorkflowDriver(args, {})
    started = time.monotonic()
    with pytest.raises(NodeExecutionError, match="Error executing pre"):
        await driver.run({"body": bytearray(b"x")}, {})
    # TorchServe's bound: (1 + retry-attempts) x timeout-ms = 150 ms,
    # not 3 x the 150 ms the node takes
    assert time.monotonic() - started < 0.3
    assert len(driver.handlers["pre"]._entry.__globals__["calls"]) >= 1


FIRST_CALL_HANGS = """
import time

pre_calls = []
post_calls = []


def pre(data, context):
    if data is None:
        return None
    pre_calls.append(time.time())
    if len(pre_calls) == 1:
        time.sleep(0.6)  # longer than the whole request's budget
    return [b"pre"]


def post(data, context):
    if data is None:
        return None
    post_calls.append(time.time())
    return [b"post"]
"""


async def test_timed_out_chain_request_stops_running_its_remaining_nodes(tmp_path):
    # Budget: (1 + 1 retry) x 100 ms for each of the two nodes = 0.4 s. The first attempt of
    # ``pre`` takes 0.6 s; a worker thread left running would retry ``pre`` and then run ``post``
    # for a request the client already got a failure for.
    args = _args(
        tmp_path,
        "abandon",
        {"pre": ["post"]},
        FIRST_CALL_HANGS,
        configs={n: {"timeout_ms": 100, "retry_attempts": 1} for n in ("pre", "post")},
    )
    driver = WorkflowDriver(args, {})
    assert driver.chain == ["pre", "post"]
    with pytest.raises(NodeExecutionError, match="Error executing pre"):
        await driver.run({"body": bytearray(b"x")}, {})
    handler_globals = driver.handlers["pre"]._entry.__globals__
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:  # wait until the first attempt has returned
        if time.time() - handler_globals["pre_calls"][0] > 0.8:
            break
        await asyncio.sleep(0.05)
    assert len(handler_globals["pre_calls"]) == 1  # no retry started after the timeout
    assert handler_globals["post_calls"] == []  # the remaining node never ran


async def test_inline_model_branches_overlap_and_fan_in(tmp_path):
    inline = {}
    for node in ("m1", "m2"):
        mar = make_mar(tmp_path / "models", f"s{node}", SLEEPY_MODEL, work=tmp_path / f"src-{node}")
        inline[node] = TorchServeVersionArgs(
            archive=str(mar),
            model_dir=str(tmp_path / f"x-{node}"),
            handler="handler.py",
            batch_size=1,
            max_batch_delay=50,
            response_timeout=120,
        )
    dag = {"pre": ["m1", "m2"], "m1": ["post"], "m2": ["post"]}
    driver = WorkflowDriver(_args(tmp_path, "diamond", dag, DIAMOND_FUNCTIONS, inline=inline), {})
    assert driver.chain is None  # branches: the async executor runs them concurrently
    started = time.monotonic()
    body = json.loads(await driver.run({"body": "v"}, {}))
    assert time.monotonic() - started < 0.75  # two 0.4 s branches, not 0.8 s in sequence
    assert body["parents"] == ["m1", "m2"]
    assert body["m1"]["model"] == "diamond__m1"
    overlap = min(body["m1"]["end"], body["m2"]["end"]) - max(
        body["m1"]["start"], body["m2"]["start"]
    )
    assert overlap > 0.25
