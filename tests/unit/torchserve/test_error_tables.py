"""The TorchServe error tables: domain errors per surface, and the replica's HTTP layer."""

from __future__ import annotations

import json

import pytest

from control_plane import errors
from control_plane.api.errors import status_for, surface_for
from control_plane.services.torchserve.errors import from_archive
from deployments.contracts.archives import (
    ArchiveRequestError,
    ArchiveTooLargeError,
    InvalidArchiveError,
    UnsafeArchiveError,
)
from deployments.contracts.errors import (
    HandlerError,
    HandlerOutOfMemory,
    HandlerPredictionError,
    ModelVersionNotServed,
    PredictionTimeout,
    WorkflowOutputError,
)
from deployments.contracts.graph import InvalidDagError, NodeExecutionError
from deployments.contracts.workflow_spec import InvalidSpecError
from deployments.ts_model import replica_error_response


@pytest.mark.parametrize(
    ("problem", "domain", "torchserve_status", "ts_type"),
    [
        (InvalidArchiveError("x"), errors.InvalidArtifactError, 500, "InvalidModelException"),
        (InvalidSpecError("x"), errors.InvalidArtifactError, 500, "InvalidWorkflowException"),
        (
            InvalidArchiveError("spec.yaml", ts_type="NoSuchFileException"),
            errors.InvalidArtifactError,
            500,
            "NoSuchFileException",
        ),
        (UnsafeArchiveError("x"), errors.BadRequestError, 400, "BadRequestException"),
        (ArchiveTooLargeError("x"), errors.PayloadTooLargeError, 413, "BadRequestException"),
        (ArchiveRequestError("x"), errors.BadRequestError, 400, "ModelException"),
        (InvalidDagError("x"), errors.BadRequestError, 400, "InvalidDAGException"),
    ],
)
def test_archive_problems_become_domain_errors_with_torchserve_statuses(
    problem, domain, torchserve_status, ts_type
):
    fact = from_archive(problem)
    assert type(fact) is domain
    assert fact.details == {"ts_type": ts_type}
    assert status_for(fact, surface_for("/models")) == torchserve_status


def test_torchserve_column_overrides_only_its_surface():
    invalid = errors.InvalidArtifactError("broken")
    exists = errors.ArtifactExistsError("x.war")
    assert (status_for(invalid, "torchserve"), status_for(invalid)) == (500, 422)
    assert (status_for(exists, "torchserve"), status_for(exists)) == (500, 409)
    assert status_for(errors.AlreadyExistsError("dup"), "torchserve") == 409
    assert status_for(errors.StartFailedError("no workers"), "torchserve") == 500
    assert surface_for("/workflows/x") == "torchserve"
    assert surface_for("/v2/models") is None


@pytest.mark.parametrize(
    ("error", "status", "ts_type"),
    [
        (ModelVersionNotServed("v"), 404, "ModelVersionNotFoundException"),
        (PredictionTimeout("Worker died."), 500, "InternalServerException"),
        (HandlerError("Prediction failed"), 503, "InternalServerException"),
        (HandlerOutOfMemory("Out of resources"), 507, "InternalServerException"),
        (HandlerPredictionError("teapot", 418), 418, "InternalServerException"),
        (NodeExecutionError("post"), 500, "InternalServerException"),
        (WorkflowOutputError("bad"), 500, "InternalServerException"),
    ],
)
def test_replica_error_response_uses_one_table(error, status, ts_type):
    response = replica_error_response(error)
    assert response.status_code == status
    assert response.media_type == "application/json"
    assert response.body.endswith(b"\n")
    assert json.loads(response.body) == {"code": status, "type": ts_type, "message": error.message}


def test_node_failure_message_is_torchserves():
    assert NodeExecutionError("m1").message == "Error executing m1"
