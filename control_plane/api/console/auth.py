"""Console login and logout: an HttpOnly, SameSite=Strict session cookie backed by the database."""

from __future__ import annotations

import base64
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response

from control_plane.api.console.deps import ConsoleSessionsDep, ConsoleUsersDep, LoginDep
from control_plane.api.console.rendering import SECURITY_HEADERS, render
from control_plane.api.gated_router import GatedRouter
from control_plane.errors import DomainError
from control_plane.services.console.sessions import CSRF_HEADER, SESSION_COOKIE

router = GatedRouter(prefix="/console")

HOME = "/console/overview"


def safe_next(target: str | None) -> str:
    """A redirect target inside the console (no open redirects)."""
    if target and target.startswith("/console/") and not target.startswith("//"):
        return target
    return HOME


def same_origin(request: Request) -> bool:
    """False when a browser says the form was posted from another site."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


def _redirect(target: str) -> RedirectResponse:
    return RedirectResponse(target, status_code=303, headers=dict(SECURITY_HEADERS))


@router.get("/login", operation_id="console_login_form")
def login_form(login: LoginDep, next: str | None = None) -> Response:
    """The login form (or straight to the console when already logged in)."""
    if login is not None:
        return _redirect(safe_next(next))
    return render("login.html", next=safe_next(next), error=None)


@router.post("/login", operation_id="console_login")
def login(
    request: Request,
    users: ConsoleUsersDep,
    sessions: ConsoleSessionsDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = HOME,
) -> Response:
    """Check admin credentials, start a session and set its cookie."""
    target = safe_next(next)
    if not same_origin(request):
        return render("login.html", 403, next=target, error="cross-site login refused")
    basic = base64.b64encode(f"{username}:{password}".encode()).decode()
    try:
        principal = users.require_admin({"authorization": f"Basic {basic}"})
    except DomainError as exc:
        message = "the console needs an admin account" if exc.code == "forbidden" else exc.message
        return render("login.html", 401, next=target, error=message, username=username)
    created = sessions.create(principal.id)
    response = _redirect(target)
    response.set_cookie(
        SESSION_COOKIE,
        created.token,
        max_age=int(sessions.ttl.total_seconds()),
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/logout", operation_id="console_logout")
def logout(
    request: Request,
    sessions: ConsoleSessionsDep,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """End the session (needs its CSRF token) and clear the cookie."""
    token = request.cookies.get(SESSION_COOKIE)
    presented = csrf_token or request.headers.get(CSRF_HEADER, "")
    if sessions.verify(token, presented) is None or not same_origin(request):
        return render("login.html", 403, next=HOME, error="logout refused: bad or missing token")
    sessions.end(token)
    response = _redirect("/console/login")
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
