"""``/api/apps``: gateway apps, routes and consumers."""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool

from control_plane.api.gated_router import GatedRouter
from control_plane.api.mlserve.deps import AdminDep, AppServiceDep
from control_plane.api.mlserve.envelopes import created, with_data, with_status
from control_plane.api.mlserve.models import json_body, parse_body
from control_plane.schemas.mlserve.apps import (
    ClientAppCreate,
    ClientAppCreated,
    ClientAppDetail,
    ClientAppList,
    ClientAppUpdate,
    ClientAppUpdated,
    ConsumerList,
    RouteCreate,
    RouteList,
)
from control_plane.schemas.mlserve.common import StatusOk

router = GatedRouter(tags=["mlserve: apps"])


@router.get("/apps", operation_id="apiAppList")
def list_apps(_admin: AdminDep, apps: AppServiceDep) -> ClientAppList:
    """List apps with routes and consumers."""
    return ClientAppList(apps=apps.list())


@router.post("/apps", status_code=201, operation_id="apiAppCreate")
def create_app(body: ClientAppCreate, _admin: AdminDep, apps: AppServiceDep) -> ClientAppCreated:
    """Create an app; the response also carries the app (seed planned shape)."""
    app_id = apps.create(body)
    return created(app_id, apps.get(str(app_id)), ClientAppCreated)


@router.get("/apps/{ident}", operation_id="apiAppGet")
def get_app(ident: str, _admin: AdminDep, apps: AppServiceDep) -> ClientAppDetail:
    """One app (``{"data": ...}``)."""
    return with_data(apps.get(ident), ClientAppDetail)


@router.patch("/apps/{ident}", operation_id="apiAppUpdate")
def update_app(
    ident: str, body: ClientAppUpdate, _admin: AdminDep, apps: AppServiceDep
) -> ClientAppUpdated:
    """Change an app (``status`` plus the updated app)."""
    app_id = apps.update(ident, body)
    return with_status(apps.get(str(app_id)), ClientAppUpdated)


@router.delete("/apps/{ident}", operation_id="apiAppDelete")
def delete_app(ident: str, _admin: AdminDep, apps: AppServiceDep) -> StatusOk:
    """Delete an app with its routes and memberships."""
    apps.delete(ident)
    return StatusOk()


@router.get("/apps/{ident}/routes", operation_id="apiAppRoutesList")
def list_routes(ident: str, _admin: AdminDep, apps: AppServiceDep) -> RouteList:
    """Routes of an app."""
    return RouteList(routes=apps.list_routes(ident))


@router.post(
    "/apps/{ident}/routes/{model}",
    operation_id="apiAppRoutesImport",
    openapi_extra=json_body(RouteCreate),
    response_description="The route was updated (a later POST of the same model).",
    responses={201: {"model": StatusOk, "description": "The route was created."}},
)
async def put_route(
    ident: str,
    model: str,
    request: Request,
    response: Response,
    _admin: AdminDep,
    apps: AppServiceDep,
) -> StatusOk:
    """Expose a model under the app (re-POST updates the route)."""
    body: RouteCreate = await parse_body(request, RouteCreate)
    if await run_in_threadpool(apps.put_route, ident, model, body):
        response.status_code = 201
    return StatusOk()


@router.delete("/apps/{ident}/routes/{model}", operation_id="apiAppRoutesRemove")
def delete_route(ident: str, model: str, _admin: AdminDep, apps: AppServiceDep) -> StatusOk:
    """Remove a model from the app."""
    apps.delete_route(ident, model)
    return StatusOk()


@router.get("/apps/{ident}/consumers", operation_id="apiAppConsumersList")
def list_consumers(ident: str, _admin: AdminDep, apps: AppServiceDep) -> ConsumerList:
    """Consumers of an app."""
    return ConsumerList(consumers=apps.list_consumers(ident))


@router.post("/apps/{ident}/consumers/{consumer}", operation_id="apiAppConsumersAdd")
def add_consumer(ident: str, consumer: str, _admin: AdminDep, apps: AppServiceDep) -> StatusOk:
    """Allow a user to consume the app."""
    apps.authorize(ident, consumer)
    return StatusOk()


@router.delete("/apps/{ident}/consumers/{consumer}", operation_id="apiAppConsumersRemove")
def remove_consumer(ident: str, consumer: str, _admin: AdminDep, apps: AppServiceDep) -> StatusOk:
    """Remove a consumer from the app."""
    apps.unauthorize(ident, consumer)
    return StatusOk()
