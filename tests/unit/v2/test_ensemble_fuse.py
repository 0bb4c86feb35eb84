"""When ``ray_fused: auto`` fuses an ensemble's steps into its replica, and when it does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from control_plane.errors import BadRequestError
from control_plane.services.triton_ensembles import (
    AUTO_FUSE_MAX_BYTES,
    directory_bytes,
    fuse_blocker,
    fused_mode,
)
from deployments.contracts.ensemble import ensemble_graph
from deployments.contracts.specs import load_model_spec
from tests.pipeline_repos import (
    write_affine,
    write_ensemble,
    write_two_branch_ensemble,
    write_two_step_ensemble,
)


def _chain(repo: Path, policy: str = "") -> tuple:
    write_two_step_ensemble(repo)  # pre (x+1) then post (x*2)
    write_affine(repo, "post", scale=2.0, policy=policy)
    specs = {m: load_model_spec(repo / m, m) for m in ("pre", "post")}
    sizes = {m: directory_bytes(repo / m) for m in specs}
    return ensemble_graph(load_model_spec(repo / "ens", "ens")), specs, sizes


def test_a_chain_of_small_cpu_steps_is_fused(tmp_path):
    graph, specs, sizes = _chain(tmp_path)
    assert fuse_blocker(graph, specs, sizes, object_store=False) == ""


@pytest.mark.parametrize(
    ("policy", "reason"),
    [
        ("dynamic_batching { }", "step 'post' batches dynamically"),
        (
            "instance_group [ { kind: KIND_GPU count: 1 } ]",
            "step 'post' runs on a GPU",
        ),
        (
            "instance_group [ { kind: KIND_CPU count: 3 } ]",
            "step 'post' has more than one replica",
        ),
        (
            'parameters { key: "ray_max_replicas" value { string_value: "4" } }',
            "step 'post' has more than one replica",
        ),
        (
            "model_transaction_policy { decoupled: true }",
            "step 'post' is decoupled",
        ),
    ],
)
def test_what_a_fused_step_would_lose_keeps_the_graph(tmp_path, policy, reason):
    graph, specs, sizes = _chain(tmp_path, policy)
    assert fuse_blocker(graph, specs, sizes, object_store=False) == reason


def test_object_store_and_weight_keep_the_graph(tmp_path):
    graph, specs, sizes = _chain(tmp_path)
    assert fuse_blocker(graph, specs, sizes, object_store=True) == (
        "the step models come from an object store (store.url)"
    )
    heavy = {**sizes, "post": AUTO_FUSE_MAX_BYTES}
    assert fuse_blocker(graph, specs, heavy, object_store=False).startswith(
        "the step models weigh 64 MiB"
    )


def test_branches_keep_the_graph(tmp_path):
    write_affine(tmp_path, "a")
    write_affine(tmp_path, "b")
    write_two_branch_ensemble(tmp_path, "par", "a", "b")
    specs = {m: load_model_spec(tmp_path / m, m) for m in ("a", "b")}
    graph = ensemble_graph(load_model_spec(tmp_path / "par", "par"))
    assert fuse_blocker(graph, specs, {"a": 1, "b": 1}, object_store=False) == (
        "independent steps run concurrently on the step models' own replicas"
    )


def test_a_nested_ensemble_step_keeps_the_graph(tmp_path):
    _chain(tmp_path)
    write_ensemble(tmp_path, "outer", [("ens", -1, {"IN": "IN"}, {"OUT": "OUT"})])
    outer = ensemble_graph(load_model_spec(tmp_path / "outer", "outer"))
    inner = {"ens": load_model_spec(tmp_path / "ens", "ens")}
    assert fuse_blocker(outer, inner, {"ens": 1}, object_store=False) == "step 'ens' is an ensemble"


def test_fused_mode_reads_true_false_auto_and_refuses_the_rest():
    assert fused_mode("e", {}) == "auto"
    assert fused_mode("e", {"ray_fused": " TRUE "}) == "true"
    assert fused_mode("e", {"ray_fused": "false"}) == "false"
    with pytest.raises(BadRequestError, match="must be 'true', 'false' or 'auto', got 'yes'"):
        fused_mode("e", {"ray_fused": "yes"})


def test_directory_bytes_counts_files_not_links(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 10)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b").write_bytes(b"y" * 5)
    (tmp_path / "link").symlink_to(tmp_path / "a")
    assert directory_bytes(tmp_path) == 15
