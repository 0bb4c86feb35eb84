"""Client apps (the gateway's Kong-style services): routes to models and consumers."""

from __future__ import annotations

import builtins

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.db.tables.mlserve import AppConsumer, AppRoute, ClientApp, MLServeUser
from control_plane.db.tables.registered_models import RegisteredModel
from control_plane.errors import AlreadyExistsError, BadRequestError, ConflictError
from control_plane.schemas.mlserve.apps import (
    ClientAppCreate,
    ClientAppRead,
    ClientAppUpdate,
    ConsumerRead,
    RouteCreate,
    RouteRead,
)
from control_plane.schemas.mlserve.users import UserAppRead
from control_plane.services.mlserve.gateway_app import routes_settle_s, settle_routes
from control_plane.services.mlserve.lookup import check_name, resolve
from control_plane.settings import Settings

DEFAULT_PROTOCOLS = ["http", "https"]
DEFAULT_METHODS = ["GET", "POST"]


class ClientAppService:
    """CRUD of apps, their routes and memberships (seen from the app or the user side).

    Every write answers once the apps gateway enforces it (``routes_settle_s``): a request sent
    after a delete returns gets the gateway's 404/401/403, one sent after a create is routed.
    """

    def __init__(self, session: Session, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self.settle_s = routes_settle_s(settings)

    def _commit(self) -> None:
        self.session.commit()
        settle_routes(self.settle_s)

    def base_url(self, app: ClientApp) -> str:
        """Public URL of an app: ``<public_url>/apps/<name>``."""
        return f"{self.settings.public_url.rstrip('/')}/apps/{app.name}"

    def _routes(self, app: ClientApp) -> builtins.list[RouteRead]:
        rows = self.session.execute(
            select(AppRoute, RegisteredModel.name)
            .join(RegisteredModel, RegisteredModel.id == AppRoute.model_id)
            .where(AppRoute.app_id == app.id)
            .order_by(AppRoute.id)
        ).tuples()
        base = self.base_url(app)
        return [
            RouteRead(
                model_name=name,
                model_id=route.model_id,
                protocols=list(route.protocols),
                methods=list(route.methods),
                paths=list(route.paths),
                strip_path=route.strip_path,
                url=base + (route.paths[0] if route.paths and route.paths[0] != "/" else ""),
                create_at=route.created_at,
            )
            for route, name in rows
        ]

    def _consumers(self, app: ClientApp) -> builtins.list[ConsumerRead]:
        rows = self.session.execute(
            select(MLServeUser, AppConsumer.created_at)
            .join(AppConsumer, AppConsumer.user_id == MLServeUser.id)
            .where(AppConsumer.app_id == app.id)
            .order_by(MLServeUser.name)
        ).tuples()
        return [
            ConsumerRead(id=u.id, name=u.name, tags=list(u.tags or []), cteate_at=at, create_at=at)
            for u, at in rows
        ]

    def _read(self, app: ClientApp) -> ClientAppRead:
        return ClientAppRead(
            id=app.id,
            name=app.name,
            host=app.host,
            ip=app.host,
            port=str(app.port) if app.port else None,
            gpus=app.gpus,
            retries=app.retries,
            url=self.base_url(app),
            routes=self._routes(app),
            consumers=self._consumers(app),
            update_at=app.updated_at,
            create_at=app.created_at,
        )

    def get_row(self, ident: str) -> ClientApp:
        """An app row by id or name.

        Raises:
            NotFoundError: unknown app.
        """
        return resolve(self.session, ClientApp, ident, "app")

    # -- apps ------------------------------------------------------------------------------
    def list(self) -> builtins.list[ClientAppRead]:
        """Every app, by id."""
        return [
            self._read(a) for a in self.session.scalars(select(ClientApp).order_by(ClientApp.id))
        ]

    def get(self, ident: str) -> ClientAppRead:
        """One app with routes and consumers."""
        return self._read(self.get_row(ident))

    def create(self, body: ClientAppCreate) -> int:
        """Create an app.

        Raises:
            BadRequestError: invalid name.
            AlreadyExistsError: the name is taken.
        """
        check_name(body.name, "app")
        if self.session.scalar(select(ClientApp.id).where(ClientApp.name == body.name)):
            raise AlreadyExistsError(f"app '{body.name}' already exists", code="app_exists")
        app = ClientApp(
            name=body.name, host=body.host, port=body.port, gpus=body.gpus, retries=body.retries
        )
        self.session.add(app)
        self._commit()
        return app.id

    def update(self, ident: str, body: ClientAppUpdate) -> int:
        """Partial update (``host: ""`` clears the upstream override); returns the id.

        Raises:
            NotFoundError: unknown app.
            AlreadyExistsError: the new name is taken.
            BadRequestError: an override without both host and port.
        """
        app = self.get_row(ident)
        if body.name is not None and body.name != app.name:
            check_name(body.name, "app")
            if self.session.scalar(select(ClientApp.id).where(ClientApp.name == body.name)):
                raise AlreadyExistsError(f"app '{body.name}' already exists", code="app_exists")
            app.name = body.name
        host = body.host if body.host is not None else body.ip
        if host == "":
            app.host, app.port = None, None
        else:
            if host is not None:
                app.host = host
            if body.port is not None:
                app.port = body.port
            if (app.host is None) != (app.port is None):
                raise BadRequestError(
                    "an upstream override needs both host and port", code="invalid_override"
                )
        if body.gpus is not None:
            app.gpus = body.gpus
        if body.retries is not None:
            app.retries = body.retries
        self._commit()
        return app.id

    def delete(self, ident: str) -> None:
        """Delete an app with its routes and memberships."""
        self.session.delete(self.get_row(ident))
        self._commit()

    # -- routes ----------------------------------------------------------------------------
    def list_routes(self, ident: str) -> builtins.list[RouteRead]:
        """Routes of an app."""
        return self._routes(self.get_row(ident))

    def put_route(self, ident: str, model_ident: str, body: RouteCreate) -> bool:
        """Create or update the route of ``model`` in the app; True when created.

        Raises:
            NotFoundError: unknown app or model.
            ConflictError: a path is already used by another route of the app.
        """
        app = self.get_row(ident)
        model = resolve(self.session, RegisteredModel, model_ident, "model")
        paths = body.paths or [f"/{model.name}"]
        for other in self.session.scalars(select(AppRoute).where(AppRoute.app_id == app.id)):
            if other.model_id != model.id and set(other.paths) & set(paths):
                clash = sorted(set(other.paths) & set(paths))
                raise ConflictError(
                    f"path(s) {clash} already route another model of app '{app.name}'",
                    code="path_taken",
                )
        route = self.session.scalar(
            select(AppRoute).where(AppRoute.app_id == app.id, AppRoute.model_id == model.id)
        )
        created = route is None
        if route is None:
            route = AppRoute(app_id=app.id, model_id=model.id)
            self.session.add(route)
        route.paths = list(paths)
        route.protocols = list(body.protocols or DEFAULT_PROTOCOLS)
        route.methods = list(body.methods or DEFAULT_METHODS)
        route.strip_path = body.strip_path
        self._commit()
        return created

    def delete_route(self, ident: str, model_ident: str) -> None:
        """Remove the model's route from the app (absent is fine)."""
        app = self.get_row(ident)
        model = resolve(self.session, RegisteredModel, model_ident, "model")
        route = self.session.scalar(
            select(AppRoute).where(AppRoute.app_id == app.id, AppRoute.model_id == model.id)
        )
        if route is not None:
            self.session.delete(route)
            self._commit()

    # -- consumers -------------------------------------------------------------------------
    def list_consumers(self, ident: str) -> builtins.list[ConsumerRead]:
        """Consumers of an app."""
        return self._consumers(self.get_row(ident))

    def authorize(self, ident: str, user_ident: str) -> None:
        """Make the user a consumer of the app (idempotent)."""
        app = self.get_row(ident)
        user = resolve(self.session, MLServeUser, user_ident, "user")
        if self.session.get(AppConsumer, (app.id, user.id)) is None:
            self.session.add(AppConsumer(app_id=app.id, user_id=user.id))
            self._commit()

    def unauthorize(self, ident: str, user_ident: str) -> None:
        """Remove the user's membership (idempotent)."""
        app = self.get_row(ident)
        user = resolve(self.session, MLServeUser, user_ident, "user")
        membership = self.session.get(AppConsumer, (app.id, user.id))
        if membership is not None:
            self.session.delete(membership)
            self._commit()

    def apps_of_user(self, user_ident: str) -> builtins.list[UserAppRead]:
        """The apps a user may consume, with their route URLs."""
        user = resolve(self.session, MLServeUser, user_ident, "user")
        apps = self.session.scalars(
            select(ClientApp)
            .join(AppConsumer, AppConsumer.app_id == ClientApp.id)
            .where(AppConsumer.user_id == user.id)
            .order_by(ClientApp.name)
        )
        return [
            UserAppRead(id=a.id, name=a.name, routes=[r.url for r in self._routes(a)]) for a in apps
        ]
