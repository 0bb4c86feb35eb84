"""Console pages (server-rendered shells whose scripts call the REST APIs) and their assets."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from control_plane.api.console.deps import LoginDep
from control_plane.api.console.rendering import SECURITY_HEADERS, STATIC_DIR, render
from control_plane.api.gated_router import GatedRouter
from control_plane.errors import NotFoundError

router = GatedRouter(prefix="/console")

# (path segment, title): the navigation bar, in order; each page has static/<segment>.js.
PAGES = (
    ("overview", "Overview"),
    ("models", "Models"),
    ("workflows", "Workflows"),
    ("jobs", "Jobs"),
    ("mlserve", "MLServe"),
)
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


@lru_cache(maxsize=1)
def assets() -> dict[str, Path]:
    """Files servable under /console/static, by name (a fixed list: no path from the URL)."""
    folder = STATIC_DIR / "assets"
    return {p.name: p for p in folder.iterdir() if p.suffix in MEDIA_TYPES}


@router.get("", operation_id="console_root")
@router.get("/", operation_id="console_root_slash")
def console_root() -> Response:
    """The console's home: the overview."""
    return RedirectResponse("/console/overview", status_code=303, headers=dict(SECURITY_HEADERS))


@router.get("/static/{name}", operation_id="console_asset")
def console_asset(name: str) -> Response:
    """A script or style sheet of the console.

    Raises:
        NotFoundError: not one of the console's files.
    """
    path = assets().get(name)
    if path is None:
        raise NotFoundError(f"no console asset {name!r}", code="not_found")
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=headers)


@router.get("/{page}", operation_id="console_page")
def console_page(page: str, request: Request, login: LoginDep) -> Response:
    """One console page; without a session, the login form.

    Raises:
        NotFoundError: not a console page.
    """
    titles = dict(PAGES)
    if page not in titles:
        raise NotFoundError(f"no console page {page!r}", code="not_found")
    if login is None:
        target = quote(request.url.path, safe="/")
        return RedirectResponse(
            f"/console/login?next={target}", status_code=303, headers=dict(SECURITY_HEADERS)
        )
    return render(
        "page.html",
        page=page,
        title=titles[page],
        pages=PAGES,
        user=login.principal.name,
        csrf_token=login.session.csrf_token,
    )
