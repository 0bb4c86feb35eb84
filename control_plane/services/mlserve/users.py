"""Users: admin-API callers and gateway consumers; authentication of admin-API requests."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from control_plane.db.tables.mlserve import AppConsumer, ClientApp, MLServeUser
from control_plane.errors import (
    AlreadyExistsError,
    AuthenticationRequiredError,
    InvalidStateError,
    PermissionDeniedError,
)
from control_plane.schemas.mlserve.users import UserCreate, UserRead, UserUpdate
from control_plane.services.console.sessions import SESSION_COOKIE, console_user_id
from control_plane.services.mlserve.gateway_app import settle_routes
from control_plane.services.mlserve.lookup import check_name, resolve
from control_plane.services.mlserve.security import VerifiedCache, hash_password, new_api_key
from deployments.contracts.security import api_key_digest, parse_basic

KEY_HEADERS = ("apikey", "x-api-key")


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of an admin-API request."""

    id: int
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        """True for role ``admin``."""
        return self.role == "admin"


def credentials_presented(headers: Mapping[str, str]) -> bool:
    """True when the request carries an API key or an Authorization header."""
    return any(headers.get(h) for h in (*KEY_HEADERS, "authorization")) or (
        SESSION_COOKIE in headers.get("cookie", "")  # the admin console's session (+ CSRF header)
    )


class UserService:
    """CRUD of users, API keys, app memberships seen from the user side, authentication."""

    def __init__(
        self, session: Session, cache: VerifiedCache | None = None, settle_s: float = 0.0
    ) -> None:
        self.session = session
        self.cache = cache or VerifiedCache(ttl_s=0)
        self.settle_s = settle_s  # routing writes answer once the apps gateway enforces them

    def _commit(self) -> None:
        self.session.commit()
        settle_routes(self.settle_s)

    # -- authentication ------------------------------------------------------------------
    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """The caller named by an ``apikey``/``X-API-Key`` header, a Bearer key or HTTP Basic.

        Args:
            headers: request headers with lower-case names.

        Raises:
            AuthenticationRequiredError: no credentials, or wrong ones.
        """
        key = next((headers[h] for h in KEY_HEADERS if headers.get(h)), None)
        auth = headers.get("authorization", "")
        if key is None and auth.lower().startswith("bearer "):
            key = auth[7:].strip()
        user: MLServeUser | None = None
        if key:
            user = self.session.scalar(
                select(MLServeUser).where(MLServeUser.api_key_hash == api_key_digest(key))
            )
        elif auth:
            basic = parse_basic(auth)
            if basic is not None:
                candidate = self.session.scalar(
                    select(MLServeUser).where(MLServeUser.name == basic[0])
                )
                if candidate is not None and self.cache.verify(candidate.password_hash, basic[1]):
                    user = candidate
        elif (console_id := console_user_id(self.session, headers)) is not None:
            user = self.session.get(MLServeUser, console_id)
        else:
            raise AuthenticationRequiredError(
                "admin credentials required (HTTP Basic or an apikey header)", code="unauthorized"
            )
        if user is None:
            raise AuthenticationRequiredError(
                "Invalid authentication credentials", code="unauthorized"
            )
        return Principal(user.id, user.name, user.role)

    def require_admin(self, headers: Mapping[str, str]) -> Principal:
        """Authenticate and insist on role ``admin``.

        Raises:
            AuthenticationRequiredError: no or bad credentials.
            PermissionDeniedError: a ``user``-role caller.
        """
        principal = self.authenticate(headers)
        if not principal.is_admin:
            raise PermissionDeniedError("this operation needs the admin role", code="forbidden")
        return principal

    def require_self_or_admin(self, headers: Mapping[str, str], ident: str) -> Principal:
        """Authenticate; a ``user``-role caller may only name itself.

        Raises:
            AuthenticationRequiredError: no or bad credentials.
            PermissionDeniedError: a user asking about someone else.
        """
        principal = self.authenticate(headers)
        if principal.is_admin:
            return principal
        if ident.strip() in (str(principal.id), principal.name):
            return principal
        raise PermissionDeniedError("users may only read their own record", code="forbidden")

    # -- queries -------------------------------------------------------------------------
    def _read(self, user: MLServeUser) -> UserRead:
        apps = self.session.scalars(
            select(ClientApp.name)
            .join(AppConsumer, AppConsumer.app_id == ClientApp.id)
            .where(AppConsumer.user_id == user.id)
            .order_by(ClientApp.name)
        )
        return UserRead(
            id=user.id,
            name=user.name,
            role=user.role,
            tags=list(user.tags or []),
            apps=list(apps),
            key_prefix=user.api_key_prefix,
            create_at=user.created_at,
        )

    def list(self) -> builtins.list[UserRead]:
        """Every user, by id."""
        return [
            self._read(u)
            for u in self.session.scalars(select(MLServeUser).order_by(MLServeUser.id))
        ]

    def get(self, ident: str) -> UserRead:
        """One user by id or name.

        Raises:
            NotFoundError: unknown user.
        """
        return self._read(resolve(self.session, MLServeUser, ident, "user"))

    def get_row(self, ident: str) -> MLServeUser:
        """The table row of a user (for other MLServe services).

        Raises:
            NotFoundError: unknown user.
        """
        return resolve(self.session, MLServeUser, ident, "user")

    # -- commands ------------------------------------------------------------------------
    def create(self, body: UserCreate) -> tuple[int, str]:
        """Create a user; returns ``(id, api_key)`` (the key is not stored in clear).

        Raises:
            BadRequestError: invalid name.
            AlreadyExistsError: the name is taken.
        """
        check_name(body.name, "user")
        if self.session.scalar(select(MLServeUser.id).where(MLServeUser.name == body.name)):
            raise AlreadyExistsError(f"user '{body.name}' already exists", code="user_exists")
        key = new_api_key()
        user = MLServeUser(
            name=body.name,
            role=body.role,
            tags=list(body.tags),
            password_hash=hash_password(body.password),
            api_key_hash=api_key_digest(key),
            api_key_prefix=key[:8],
        )
        self.session.add(user)
        self._commit()
        return user.id, key

    def _admins(self) -> int:
        return int(
            self.session.scalar(select(func.count()).where(MLServeUser.role == "admin")) or 0
        )

    def update(self, ident: str, body: UserUpdate) -> str | None:
        """Apply a partial update; returns the new API key when ``rotate_key`` was set.

        Raises:
            NotFoundError: unknown user.
            AlreadyExistsError: the new name is taken.
            InvalidStateError: demoting the last admin.
        """
        user = resolve(self.session, MLServeUser, ident, "user")
        if body.name is not None and body.name != user.name:
            check_name(body.name, "user")
            if self.session.scalar(select(MLServeUser.id).where(MLServeUser.name == body.name)):
                raise AlreadyExistsError(f"user '{body.name}' already exists", code="user_exists")
            user.name = body.name
        if body.role is not None and body.role != user.role:
            if user.role == "admin" and self._admins() <= 1:
                raise InvalidStateError("cannot demote the last admin", code="last_admin")
            user.role = body.role
        if body.password is not None:
            user.password_hash = hash_password(body.password)
        if body.tags is not None:
            user.tags = list(body.tags)
        key = None
        if body.rotate_key:
            key = new_api_key()
            user.api_key_hash = api_key_digest(key)
            user.api_key_prefix = key[:8]
        self._commit()
        return key

    def delete(self, ident: str) -> None:
        """Delete a user and its app memberships.

        Raises:
            NotFoundError: unknown user.
            InvalidStateError: deleting the last admin.
        """
        user = resolve(self.session, MLServeUser, ident, "user")
        if user.role == "admin" and self._admins() <= 1:
            raise InvalidStateError("cannot delete the last admin", code="last_admin")
        self.session.delete(user)
        self._commit()

    def ensure_bootstrap_admin(self, name: str, password: str) -> bool:
        """Create the configured admin when no user exists yet; True when it was created."""
        if self.session.scalar(select(func.count()).select_from(MLServeUser)):
            return False
        self.create(UserCreate(name=name, password=password, role="admin"))
        return True
