"""``/api/apps``: gateway apps, routes and consumers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from control_plane.api.mlserve.deps import AdminDep, SessionDep, SettingsDep
from control_plane.api.mlserve.envelopes import created, with_data, with_status
from control_plane.api.mlserve.models import json_body, parse_body
from control_plane.schemas.mlserve.apps import ClientAppCreate, ClientAppUpdate, RouteCreate
from control_plane.schemas.mlserve.common import StatusOk
from control_plane.services.mlserve.apps import ClientAppService

router = APIRouter(tags=["mlserve: apps"])


@router.get("/apps", operation_id="apiAppList")
def list_apps(_admin: AdminDep, session: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    """List apps with routes and consumers."""
    return {"apps": [a.model_dump(mode="json") for a in ClientAppService(session, settings).list()]}


@router.post("/apps", status_code=201, operation_id="apiAppCreate")
def create_app(
    body: ClientAppCreate, _admin: AdminDep, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    """Create an app; the response also carries the app (seed planned shape)."""
    service = ClientAppService(session, settings)
    app_id = service.create(body)
    return created(app_id, service.get(str(app_id)).model_dump(mode="json"))


@router.get("/apps/{ident}", operation_id="apiAppGet")
def get_app(
    ident: str, _admin: AdminDep, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    """One app (``{"data": ...}``)."""
    return with_data(ClientAppService(session, settings).get(ident).model_dump(mode="json"))


@router.patch("/apps/{ident}", operation_id="apiAppUpdate")
def update_app(
    ident: str, body: ClientAppUpdate, _admin: AdminDep, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    """Change an app (``status`` plus the updated app)."""
    service = ClientAppService(session, settings)
    app_id = service.update(ident, body)
    return with_status(service.get(str(app_id)).model_dump(mode="json"))


@router.delete("/apps/{ident}", operation_id="apiAppDelete")
def delete_app(
    ident: str, _admin: AdminDep, session: SessionDep, settings: SettingsDep
) -> StatusOk:
    """Delete an app with its routes and memberships."""
    ClientAppService(session, settings).delete(ident)
    return StatusOk()


@router.get("/apps/{ident}/routes", operation_id="apiAppRoutesList")
def list_routes(
    ident: str, _admin: AdminDep, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    """Routes of an app."""
    return {
        "routes": [
            r.model_dump(mode="json")
            for r in ClientAppService(session, settings).list_routes(ident)
        ]
    }


@router.post(
    "/apps/{ident}/routes/{model}",
    operation_id="apiAppRoutesImport",
    openapi_extra=json_body(RouteCreate),
)
async def put_route(
    ident: str,
    model: str,
    request: Request,
    _admin: AdminDep,
    session: SessionDep,
    settings: SettingsDep,
) -> JSONResponse:
    """Expose a model under the app (re-POST updates the route)."""
    body: RouteCreate = await parse_body(request, RouteCreate)
    created = await run_in_threadpool(
        ClientAppService(session, settings).put_route, ident, model, body
    )
    return JSONResponse({"status": "ok"}, status_code=201 if created else 200)


@router.delete("/apps/{ident}/routes/{model}", operation_id="apiAppRoutesRemove")
def delete_route(
    ident: str, model: str, _admin: AdminDep, session: SessionDep, settings: SettingsDep
) -> StatusOk:
    """Remove a model from the app."""
    ClientAppService(session, settings).delete_route(ident, model)
    return StatusOk()


@router.get("/apps/{ident}/consumers", operation_id="apiAppConsumersList")
def list_consumers(
    ident: str, _admin: AdminDep, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    """Consumers of an app."""
    consumers = ClientAppService(session, settings).list_consumers(ident)
    return {"consumers": [c.model_dump(mode="json") for c in consumers]}


@router.post("/apps/{ident}/consumers/{consumer}", operation_id="apiAppConsumersAdd")
def add_consumer(
    ident: str, consumer: str, _admin: AdminDep, session: SessionDep, settings: SettingsDep
) -> StatusOk:
    """Allow a user to consume the app."""
    ClientAppService(session, settings).authorize(ident, consumer)
    return StatusOk()


@router.delete("/apps/{ident}/consumers/{consumer}", operation_id="apiAppConsumersRemove")
def remove_consumer(
    ident: str, consumer: str, _admin: AdminDep, session: SessionDep, settings: SettingsDep
) -> StatusOk:
    """Remove a consumer from the app."""
    ClientAppService(session, settings).unauthorize(ident, consumer)
    return StatusOk()
