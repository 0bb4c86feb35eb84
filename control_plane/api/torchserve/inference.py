"""TorchServe inference fallbacks on the control plane.

Registered models and workflows have their own Serve applications at ``/predictions/<name>`` and
``/wfpredict/<name>``; requests reach these routes only when no such application is running:
unknown names get TorchServe's 404, known ones without workers its 503.
"""

from __future__ import annotations

from fastapi import Depends

from control_plane.api.gated_router import GatedRouter
from control_plane.api.torchserve.deps import (
    ModelServiceDep,
    WorkflowServiceDep,
    require_inference_key,
)
from control_plane.api.torchserve.responses import PrettyJSONResponse
from control_plane.schemas.torchserve.management import StatusMessage

router = GatedRouter(
    default_response_class=PrettyJSONResponse, dependencies=[Depends(require_inference_key)]
)
_ANY = ["GET", "POST", "PUT", "DELETE", "PATCH"]


@router.get("/ping", operation_id="ping", response_model=StatusMessage)
def ping() -> StatusMessage:
    """TorchServe health check."""
    return StatusMessage(status="Healthy")


# Any method (as TorchServe); kept out of the OpenAPI document because one operation id cannot
# name several methods, and the model's own application answers these paths once it runs.
@router.api_route("/predictions/{model_name}", methods=_ANY, include_in_schema=False)
@router.api_route(
    "/predictions/{model_name}/{model_version}", methods=_ANY, include_in_schema=False
)
def predict_fallback(
    model_name: str,
    service: ModelServiceDep,
    model_version: str | None = None,
) -> None:
    """No running application for this model: 404 unknown, 503 no worker."""
    service.refuse_prediction(model_name, model_version)


@router.api_route("/wfpredict/{workflow_name}", methods=_ANY, include_in_schema=False)
def wfpredict_fallback(workflow_name: str, service: WorkflowServiceDep) -> None:
    """No running application for this workflow: 404 unknown, 503 not ready."""
    service.refuse_prediction(workflow_name)
