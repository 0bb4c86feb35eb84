"""TorchServe inference fallbacks on the control plane.

Registered models and workflows have their own Serve applications at ``/predictions/<name>`` and
``/wfpredict/<name>``; requests reach these routes only when no such application is running:
unknown names get TorchServe's 404, known ones without workers its 503.
"""

from __future__ import annotations

from fastapi import APIRouter

from control_plane.api.torchserve.deps import ModelServiceDep, WorkflowServiceDep
from control_plane.api.torchserve.responses import PrettyJSONResponse
from control_plane.services.torchserve.errors import ts_error
from control_plane.services.torchserve.models import not_found
from control_plane.services.torchserve.workflows import workflow_not_found

router = APIRouter()
_ANY = ["GET", "POST", "PUT", "DELETE", "PATCH"]


@router.get("/ping", operation_id="ping")
def ping() -> PrettyJSONResponse:
    """TorchServe health check."""
    return PrettyJSONResponse({"status": "Healthy"})


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
) -> PrettyJSONResponse:
    """No running application for this model: 404 unknown, 503 no worker."""
    if not service.exists(model_name):
        raise not_found(model_name)
    service.get_or_raise(model_name, model_version)
    raise ts_error(
        503,
        "ServiceUnavailableException",
        f'Model "{model_name}" has no worker to serve inference request. '
        "Please use scale workers API to add workers.",
    )


@router.api_route("/wfpredict/{workflow_name}", methods=_ANY, include_in_schema=False)
def wfpredict_fallback(workflow_name: str, service: WorkflowServiceDep) -> PrettyJSONResponse:
    """No running application for this workflow: 404 unknown, 503 not ready."""
    if not service.exists(workflow_name):
        raise workflow_not_found(workflow_name)
    raise ts_error(
        503, "ServiceUnavailableException", f"Workflow {workflow_name} has no worker ready."
    )
