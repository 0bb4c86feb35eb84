"""The unfused ensemble's step calls: coalesced per step model, results kept per request.

The hop itself (a DeploymentHandle to the step's application) is replaced by an in-process
caller here; tests/serve/test_v2_ensembles.py runs the same path over real handles.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from deployments.backends.base import InferenceRequest
from deployments.backends.ensemble import EnsembleBackend
from deployments.contracts.app_args import EnsembleAppArgs, EnsembleStepArgs
from deployments.contracts.errors import InferenceServerError
from deployments.contracts.specs import load_model_spec
from deployments.contracts.stats import StatsBook
from tests.pipeline_repos import (
    write_affine,
    write_ensemble,
    write_two_branch_ensemble,
    write_two_step_ensemble,
)

AFFINE = {"pre": (1.0, 1.0), "post": (2.0, 0.0), "a": (1.0, 1.0), "b": (1.0, 2.0)}


class StepCaller:
    """Runs a step as the step application's ``infer_tensors`` would (x * scale + offset)."""

    def __init__(self, delay_s: float = 0.005) -> None:
        self.delay_s = delay_s
        self.hops: list[tuple[str, int]] = []  # (model, calls carried)

    def _one(self, model: str, inputs: dict[str, Any], requested: list[str]) -> tuple[str, Any]:
        if model == "broken":
            return ("error", "step exploded")
        scale, offset = AFFINE[model]
        return ("ok", {"OUTPUT0": inputs["INPUT0"] * scale + offset})

    async def call_here(self, model, version, inputs, requested, rid, params, timeout_s):
        self.hops.append((model, 1))
        await asyncio.sleep(self.delay_s)
        return self._one(model, inputs, requested)

    async def call_many_here(self, model, calls):
        self.hops.append((model, len(calls)))
        await asyncio.sleep(self.delay_s)
        return [self._one(model, inputs, requested) for _, inputs, requested, _, _ in calls]


def _backend(
    repo, name: str, steps: list[str], in_flight: int = 1
) -> tuple[EnsembleBackend, StepCaller]:
    spec = load_model_spec(repo / name, name)
    args = EnsembleAppArgs(
        spec=spec.to_json(),
        model_dir=str(repo / name),
        steps={
            s: EnsembleStepArgs(
                app=f"p-v2-{s}",
                spec=load_model_spec(repo / s, s).to_json(),
                model_dir=str(repo / s),
            )
            for s in steps
        },
        step_batches_in_flight=in_flight,
    )
    backend = EnsembleBackend(spec, args, "cpu", StatsBook())
    caller = StepCaller()
    backend.caller = caller  # type: ignore[assignment]
    return backend, caller


def _request(i: int) -> InferenceRequest:
    return InferenceRequest(inputs={"IN": np.full((1, 4), float(i), np.float32)}, id=str(i))


async def test_concurrent_requests_share_hops_and_keep_their_own_outputs(tmp_path):
    write_two_step_ensemble(tmp_path)
    backend, caller = _backend(tmp_path, "ens", ["pre", "post"])
    assert backend.chain  # a chain runs its steps in order, without a task per step
    results = await asyncio.gather(*(backend.execute_async([_request(i)]) for i in range(20)))
    for i, [result] in enumerate(results):
        np.testing.assert_allclose(result["OUT"], np.full((1, 4), (i + 1) * 2.0))
    carried = {m: sum(n for model, n in caller.hops if model == m) for m in ("pre", "post")}
    assert carried == {"pre": 20, "post": 20}  # every call reached its step, once
    assert len(caller.hops) < 40  # ...in fewer hops than calls
    assert max(n for _, n in caller.hops) > 1


async def test_a_graph_with_branches_coalesces_too(tmp_path):
    write_affine(tmp_path, "a", offset=1.0)
    write_affine(tmp_path, "b", offset=2.0)
    write_two_branch_ensemble(tmp_path, "par", "a", "b")
    backend, caller = _backend(tmp_path, "par", ["a", "b"], in_flight=2)
    assert not backend.chain
    results = await asyncio.gather(*(backend.execute_async([_request(i)]) for i in range(10)))
    for i, [result] in enumerate(results):
        np.testing.assert_allclose(result["A"], np.full((1, 4), i + 1.0))
        np.testing.assert_allclose(result["B"], np.full((1, 4), i + 2.0))
    assert sum(n for _, n in caller.hops) == 20


async def test_a_failing_step_fails_only_the_requests_it_answered_for(tmp_path):
    write_affine(tmp_path, "pre", offset=1.0)
    write_affine(tmp_path, "broken")
    write_ensemble(
        tmp_path,
        "bad",
        [
            ("pre", -1, {"INPUT0": "IN"}, {"OUTPUT0": "mid"}),
            ("broken", -1, {"INPUT0": "mid"}, {"OUTPUT0": "OUT"}),
        ],
    )
    backend, _ = _backend(tmp_path, "bad", ["pre", "broken"])
    results = await asyncio.gather(*(backend.execute_async([_request(i)]) for i in range(5)))
    for [result] in results:
        assert isinstance(result, InferenceServerError)
        assert result.message == "step exploded"
