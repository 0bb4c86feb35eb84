"""MLServe dependencies: admin authentication, service providers, multipart ``files[]`` parsing."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.datastructures import UploadFile

from control_plane.api.deps import GatewayDep, SessionDep, SettingsDep
from control_plane.errors import PayloadTooLargeError
from control_plane.services.mlserve.apps import ClientAppService
from control_plane.services.mlserve.gateway_app import routes_settle_s
from control_plane.services.mlserve.model_files import IncomingFile
from control_plane.services.mlserve.models import ModelStoreService
from control_plane.services.mlserve.security import VerifiedCache
from control_plane.services.mlserve.tritons import TritonService
from control_plane.services.mlserve.users import Principal, UserService

FILE_FIELDS = ("files[]", "Files[]", "files", "Files", "file", "file[]")


def credential_cache(request: Request) -> VerifiedCache:
    """The per-replica cache of verified passwords (created by the startup hook)."""
    cache = getattr(request.app.state, "mlserve_credentials", None)
    if cache is None:
        cache = VerifiedCache()
        request.app.state.mlserve_credentials = cache
    return cache


def lower_headers(request: Request) -> dict[str, str]:
    """Request headers with lower-case names."""
    return {k.lower(): v for k, v in request.headers.items()}


async def user_service(session: SessionDep, request: Request, settings: SettingsDep) -> UserService:
    """A UserService sharing the credential cache."""
    return UserService(session, credential_cache(request), routes_settle_s(settings))


async def triton_service(
    session: SessionDep, gateway: GatewayDep, settings: SettingsDep
) -> TritonService:
    """The triton registry for this request."""
    return TritonService(session, gateway, settings)


async def model_store(
    session: SessionDep, gateway: GatewayDep, settings: SettingsDep
) -> ModelStoreService:
    """The model store (models, versions, loads) for this request."""
    return ModelStoreService(session, gateway, settings)


async def app_service(session: SessionDep, settings: SettingsDep) -> ClientAppService:
    """The apps, routes and consumers service for this request."""
    return ClientAppService(session, settings)


UserServiceDep = Annotated[UserService, Depends(user_service)]
TritonServiceDep = Annotated[TritonService, Depends(triton_service)]
ModelStoreDep = Annotated[ModelStoreService, Depends(model_store)]
AppServiceDep = Annotated[ClientAppService, Depends(app_service)]


def require_admin(request: Request, users: UserServiceDep) -> Principal:
    """Every admin route: an admin's HTTP Basic credentials or API key, always (even loopback)."""
    return users.require_admin(lower_headers(request))


def require_caller(request: Request, users: UserServiceDep) -> Principal:
    """Routes a ``user``-role caller may reach (its own record): any valid credentials."""
    return users.authenticate(lower_headers(request))


AdminDep = Annotated[Principal, Depends(require_admin)]
CallerDep = Annotated[Principal, Depends(require_caller)]

__all__ = [
    "AdminDep",
    "AppServiceDep",
    "CallerDep",
    "GatewayDep",
    "ModelStoreDep",
    "SessionDep",
    "SettingsDep",
    "TritonServiceDep",
    "UserServiceDep",
]


async def read_multipart(request: Request, limit: int) -> tuple[dict[str, str], list[IncomingFile]]:
    """Parse a multipart body into text fields and ``files[]`` parts (several spellings).

    Raises:
        PayloadTooLargeError: the declared body is over ``limit`` bytes.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise PayloadTooLargeError(
            f"upload of {declared} bytes exceeds the limit of {limit} bytes",
            code="upload_too_large",
            limit=limit,
        )
    form = await request.form(max_files=100_000, max_fields=1000)
    fields: dict[str, str] = {}
    files: list[IncomingFile] = []
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            if key in FILE_FIELDS or key.lower().startswith("files"):
                files.append(IncomingFile(value.filename or "", value.file))
        else:
            fields[key] = str(value)
    return fields, files


def form_int(fields: dict[str, Any], name: str) -> int | None:
    """An optional integer form field.

    Raises:
        BadRequestError: present but not an integer.
    """
    from control_plane.errors import BadRequestError

    raw = fields.get(name)
    if raw is None or str(raw).strip() == "":
        return None
    try:
        return int(str(raw).strip())
    except ValueError:
        raise BadRequestError(
            f"Got {raw!r} for {name}; it must be an integer", code="invalid_field"
        ) from None
