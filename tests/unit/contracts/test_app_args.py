"""Every application builder takes its typed arguments, and a wrong key fails before Ray."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from ray.serve import Application

from control_plane.integrations.serve_types import AppSpec
from deployments.contracts.app_args import (
    ALL_APP_ARGS,
    ARGS_BY_BUILDER,
    EnsembleAppArgs,
    EnsembleStepArgs,
    GatewayAppArgs,
    JobRunnerArgs,
    TorchServeModelAppArgs,
    TorchServeVersionArgs,
    TritonModelAppArgs,
    WorkflowAppArgs,
    WorkflowNodeConfig,
    WorkflowNodeModelArgs,
    args_for_builder,
)
from deployments.contracts.specs import load_model_spec
from tests.fakes import FakeServeGateway
from tests.model_repos import write_add_sub


def _version(tmp_path, name: str) -> TorchServeVersionArgs:
    return TorchServeVersionArgs(
        archive=str(tmp_path / f"{name}.mar"),
        model_dir=str(tmp_path / name),
        handler="handler.py",
        batch_size=1,
        max_batch_delay=100,
        response_timeout=120,
    )


def _ensemble(tmp_path) -> EnsembleAppArgs:
    from tests.pipeline_repos import write_two_step_ensemble

    repo = tmp_path / "ens_repo"
    write_two_step_ensemble(repo)
    steps = {
        name: EnsembleStepArgs(
            app=f"p-v2-{name}",
            spec=load_model_spec(repo / name, name).to_json(),
            model_dir=str(repo / name),
        )
        for name in ("pre", "post")
    }
    return EnsembleAppArgs(
        spec=load_model_spec(repo / "ens", "ens").to_json(),
        model_dir=str(repo / "ens"),
        steps=steps,
    )


def _examples(tmp_path) -> list:
    model = write_add_sub(tmp_path)
    spec = load_model_spec(model, "add_sub")
    return [
        TritonModelAppArgs(
            spec=spec.to_json(), model_dir=str(model), options={"num_replicas": 1}
        ),
        _ensemble(tmp_path),
        TorchServeModelAppArgs(
            name="echo",
            default_version="1.0",
            versions={"1.0": _version(tmp_path, "echo")},
            min_workers=1,
            max_workers=2,
            max_ongoing_requests=16,
        ),
        WorkflowAppArgs(
            name="wf",
            archive=str(tmp_path / "wf.war"),
            war_dir=str(tmp_path / "wf"),
            handler="workflow_handler.py",
            dag={"pre": ["m"], "m": []},
            node_configs={"pre": WorkflowNodeConfig(), "m": WorkflowNodeConfig(max_workers=2)},
            function_nodes=["pre"],
            deployments={
                "m": WorkflowNodeModelArgs(
                    **_version(tmp_path, "m").model_dump(), min_workers=1, max_workers=2
                )
            },
            max_ongoing_requests=16,
        ),
        GatewayAppArgs(database_url="sqlite://", builtin_url="http://127.0.0.1:8080"),
        JobRunnerArgs(url="http://127.0.0.1:8080", workflow_id=3, log_dir=str(tmp_path)),
    ]


def _builder(path: str):
    import importlib

    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def test_every_builder_has_an_args_model():
    assert set(ARGS_BY_BUILDER) == {m.builder for m in ALL_APP_ARGS}
    assert len(ARGS_BY_BUILDER) == 6


def test_each_builder_builds_an_application_from_the_recorded_json(tmp_path):
    examples = _examples(tmp_path)
    assert {type(e) for e in examples} == set(ALL_APP_ARGS)
    for args in examples:
        recorded = args.to_json()  # what the database holds and Serve hands the builder
        assert args_for_builder(args.builder, recorded) == args
        app = _builder(args.builder)(recorded)
        assert isinstance(app, Application)


def test_builders_refuse_unknown_or_missing_keys(tmp_path):
    for args in _examples(tmp_path):
        builder = _builder(args.builder)
        with pytest.raises(ValidationError, match=r"extra_forbidden|Extra inputs"):
            builder({**args.to_json(), "max_extract_byte": 1})  # a typo'd key
    with pytest.raises(ValidationError, match="max_ongoing_requests"):
        _builder(TorchServeModelAppArgs.builder)(
            {"name": "x", "default_version": "1", "versions": {}, "min_workers": 1}
        )


def test_default_version_must_be_one_of_the_versions(tmp_path):
    with pytest.raises(ValidationError, match="default_version"):
        TorchServeModelAppArgs(
            name="echo",
            default_version="2.0",
            versions={"1.0": _version(tmp_path, "echo")},
            min_workers=1,
            max_workers=1,
            max_ongoing_requests=8,
        )


def test_fake_gateway_validates_args_like_the_builder(tmp_path):
    gateway = FakeServeGateway()
    good = JobRunnerArgs(url="http://x", workflow_id=1, log_dir=str(tmp_path))
    gateway.apply(AppSpec("p-jobs-1", None, good))
    assert gateway.apps["p-jobs-1"].builder == "deployments.jobs:build_job_runner"
    bad = good.model_copy(update={"workflow_id": 0})  # copies skip validation, like a bad dict
    with pytest.raises(ValidationError, match="workflow_id"):
        gateway.apply(AppSpec("p-jobs-2", None, bad))
    assert "p-jobs-2" not in gateway.apps
