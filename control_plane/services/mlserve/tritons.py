"""Registered v2 inference servers: CRUD, live state probes, the built-in entry (id 0)."""

from __future__ import annotations

import builtins

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from control_plane.db.tables.mlserve import BUILTIN_TRITON_ID, ModelLoad, TritonServer
from control_plane.db.tables.registered_models import RegisteredModel
from control_plane.errors import (
    AlreadyExistsError,
    BadRequestError,
    InvalidStateError,
    UpstreamUnavailableError,
)
from control_plane.integrations import triton_client
from control_plane.integrations.serve_types import ServeGateway
from control_plane.schemas.mlserve.tritons import TritonCreate, TritonRead, TritonUpdate
from control_plane.services.mlserve.lookup import resolve
from control_plane.services.mlserve.targets import is_builtin, triton_address, triton_url
from control_plane.settings import Settings


def probe_many(urls: builtins.list[str]) -> builtins.list[str]:
    """Probe several tritons concurrently (short timeouts, never raises)."""
    if not urls:
        return []
    return triton_client.fan_out(triton_client.probe, urls)


class TritonService:
    """CRUD of ``mlserve_tritons``; the built-in row cannot be changed or deleted."""

    def __init__(self, session: Session, gateway: ServeGateway, settings: Settings) -> None:
        self.session = session
        self.gateway = gateway
        self.settings = settings

    def _models(self) -> dict[int, list[str]]:
        rows = self.session.execute(
            select(ModelLoad.triton_id, RegisteredModel.name)
            .join(RegisteredModel, RegisteredModel.id == ModelLoad.model_id)
            .where(ModelLoad.triton_id != BUILTIN_TRITON_ID)
            .order_by(RegisteredModel.name)
        )
        out: dict[int, list[str]] = {}
        for triton_id, name in rows.tuples():
            out.setdefault(triton_id, []).append(name)
        # On the built-in server the v2 surface's registry is the truth.
        loaded = select(RegisteredModel.name).where(RegisteredModel.loaded)
        out[BUILTIN_TRITON_ID] = list(self.session.scalars(loaded.order_by(RegisteredModel.name)))
        return out

    def _builtin_gpus(self) -> int:
        try:
            return int(self.gateway.cluster_resources().get("GPU", 0))
        except UpstreamUnavailableError:
            return 0

    def _read(self, triton: TritonServer, state: str, models: builtins.list[str]) -> TritonRead:
        host, port = triton_address(self.settings, triton)
        return TritonRead(
            id=triton.id,
            name=triton.name,
            builtin=is_builtin(triton),
            host=host,
            ip=host,
            port=str(port),
            gpus=self._builtin_gpus() if is_builtin(triton) else triton.gpus,
            path=str(self.settings.store_root / "models") if is_builtin(triton) else triton.path,
            state=state,
            models=models,
            create_at=triton.created_at,
        )

    def _states(self, tritons: builtins.list[TritonServer]) -> builtins.list[str]:
        external = [t for t in tritons if not is_builtin(t)]
        probed = dict(
            zip(
                [t.id for t in external],
                probe_many([triton_url(self.settings, t) for t in external]),
                strict=True,
            )
        )
        # The built-in server is this very process: it is answering the request.
        return [probed.get(t.id, "ready") for t in tritons]

    def list(self) -> builtins.list[TritonRead]:
        """Every triton (the built-in one first) with a live state."""
        tritons = list(self.session.scalars(select(TritonServer).order_by(TritonServer.id)))
        models = self._models()
        states = self._states(tritons)
        return [
            self._read(t, s, models.get(t.id, [])) for t, s in zip(tritons, states, strict=True)
        ]

    def get(self, ident: str, *, probe: bool = True) -> TritonRead:
        """One triton by id or name, with a live state (``unknown`` without the probe).

        Raises:
            NotFoundError: unknown triton.
        """
        triton = resolve(self.session, TritonServer, ident, "triton")
        state = self._states([triton])[0] if probe else "unknown"
        return self._read(triton, state, self._models().get(triton.id, []))

    def _check_unique(self, host: str, port: int, name: str, exclude: int | None = None) -> None:
        for other in self.session.scalars(select(TritonServer)):
            if other.id == exclude:
                continue
            if other.host == host and other.port == port:
                raise AlreadyExistsError(
                    f"triton {host}:{port} is already registered", code="triton_exists", id=other.id
                )
            if other.name == name:
                raise AlreadyExistsError(
                    f"triton name '{name}' is taken", code="triton_exists", id=other.id
                )

    def create(self, body: TritonCreate) -> int:
        """Register a triton (never probes, so an offline one registers fine).

        Raises:
            AlreadyExistsError: the host/port pair or the name is taken.
        """
        assert body.host is not None
        name = body.name or f"{body.host}:{body.port}"
        self._check_unique(body.host, body.port, name)
        triton = TritonServer(
            name=name,
            kind="external",
            host=body.host,
            port=body.port,
            gpus=body.gpus,
            path=body.path,
        )
        self.session.add(triton)
        try:
            self.session.commit()
        except IntegrityError:
            self.session.rollback()
            raise AlreadyExistsError(
                f"triton {body.host}:{body.port} is already registered", code="triton_exists"
            ) from None
        return triton.id

    def update(self, ident: str, body: TritonUpdate) -> int:
        """Change an external triton's registration; returns its id.

        Raises:
            NotFoundError: unknown triton.
            BadRequestError: the built-in server cannot be edited.
            AlreadyExistsError: the new host/port or name is taken.
        """
        triton = resolve(self.session, TritonServer, ident, "triton")
        if is_builtin(triton):
            raise BadRequestError(
                "the built-in server is configured by the platform settings",
                code="builtin_readonly",
            )
        host = body.host or triton.host
        port = body.port or triton.port
        name = body.name or (
            f"{host}:{port}" if triton.name == f"{triton.host}:{triton.port}" else triton.name
        )
        self._check_unique(host, port, name, exclude=triton.id)
        triton.host, triton.port, triton.name = host, port, name
        if body.gpus is not None:
            triton.gpus = body.gpus
        if body.path is not None:
            triton.path = body.path or None
        self.session.commit()
        return triton.id

    def delete(self, ident: str) -> None:
        """Forget a triton and its load records (nothing is sent to it).

        Raises:
            NotFoundError: unknown triton.
            InvalidStateError: the built-in server cannot be deleted.
        """
        triton = resolve(self.session, TritonServer, ident, "triton")
        if is_builtin(triton):
            raise InvalidStateError(
                "the built-in server cannot be deleted", code="builtin_readonly"
            )
        self.session.delete(triton)
        self.session.commit()
