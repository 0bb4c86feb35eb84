"""Console templates (Jinja2 with autoescaping) and the security headers of every console page."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

import control_plane

STATIC_DIR = Path(control_plane.__file__).resolve().parent / "console_static"

# Scripts and styles come only from /console/static (no inline code), so a value that slipped
# into markup still could not run; frames are refused (clickjacking on destructive buttons).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The template environment (created on first use, not at import)."""
    return Environment(
        loader=FileSystemLoader(str(STATIC_DIR / "templates")),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a console template with the security headers."""
    body = environment().get_template(template).render(**context)
    return HTMLResponse(body, status_code=status_code, headers=dict(SECURITY_HEADERS))
