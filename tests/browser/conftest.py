"""Browser tier: Debian's Chromium driven by Playwright against a live control plane.

``console_server`` serves ``create_app`` (fake Serve gateway, SQLite) with uvicorn on a free
loopback port; the Ray-backed tests use the session ``platform`` fixture instead. Every page
records its console errors and uncaught exceptions; ``page`` fails a test that leaves any.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from control_plane.settings import Settings
from tests.conftest import ROOT, free_port
from tests.fakes import FakeServeGateway

CHROMIUM = os.environ.get("CONSOLE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
DOCS_SHOTS = ROOT / "docs" / "console"


@dataclass
class LiveServer:
    """A control plane answering on ``url`` (uvicorn in a thread, or the Ray platform)."""

    url: str
    data_dir: Path
    app: Any = None


@dataclass
class Artifacts:
    """Where screenshots and measurements go (the pytest tmp dir; docs/console/ on request)."""

    root: Path
    timings: dict[str, float] = field(default_factory=dict)

    def shot(self, page: Any, name: str) -> Path:
        """Save a full-page screenshot; also into docs/console/ when CONSOLE_DOCS_SCREENSHOTS=1."""
        path = self.root / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        if os.environ.get("CONSOLE_DOCS_SCREENSHOTS") == "1":  # the first screen, for the docs
            DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(DOCS_SHOTS / f"{name}.png"))
        return path

    def record(self, name: str, value_ms: float) -> None:
        """Record a measured number (written to timings.json and printed at the end)."""
        self.timings[name] = round(value_ms, 1)
        (self.root / "timings.json").write_text(json.dumps(self.timings, indent=2))


@pytest.fixture(scope="session", name="artifacts")
def artifacts_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Artifacts]:
    art = Artifacts(tmp_path_factory.mktemp("console-artifacts"))
    yield art
    if art.timings:
        print(f"\nconsole timings (ms), artifacts in {art.root}: {json.dumps(art.timings)}")


# Module scope, not session: the sync Playwright API keeps an event loop running in this thread
# while it is started, and pytest-asyncio cannot run the async tests of later modules under it.
@pytest.fixture(scope="module", name="browser")
def browser_fixture() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (see .ci/run)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class PageLog:
    """Console errors and page errors seen by one page."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.allowed: list[str] = []
        self.dialogs: list[str] = []
        self.responses: list[str] = []  # failed HTTP responses, to explain console errors
        self.accept_dialogs = False

    def on_dialog(self, dialog: Any) -> None:
        """Accept confirmations the test expects; any other dialog (alert!) is an error."""
        self.dialogs.append(dialog.message)
        if self.accept_dialogs and dialog.type == "confirm":
            dialog.accept()
        else:
            self.errors.append(f"unexpected {dialog.type} dialog: {dialog.message}")
            dialog.dismiss()

    def allow(self, fragment: str) -> None:
        """Expect console errors containing ``fragment`` (e.g. a deliberate 4xx response)."""
        self.allowed.append(fragment)

    def unexpected(self) -> list[str]:
        """Errors not allowed by the test."""
        return [e for e in self.errors if not any(a in e for a in self.allowed)]


@pytest.fixture(name="page")
def page_fixture(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    log = PageLog()
    page.on("console", lambda m: log.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: log.errors.append(f"pageerror: {exc}"))
    page.on("dialog", log.on_dialog)
    page.on(
        "response",
        lambda r: (
            log.responses.append(f"{r.status} {r.request.method} {r.url}")
            if r.status >= 400
            else None
        ),
    )
    page.log = log
    page.set_default_timeout(15_000)
    try:
        yield page
        assert log.unexpected() == [], f"console errors: {log.unexpected()} ({log.responses})"
    finally:
        context.close()


def login(page: Any, url: str, user: str = "admin", password: str = "admin") -> None:
    """Log in through the form."""
    page.goto(f"{url}/console/login")
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("#login-submit")
    page.wait_for_url(f"{url}/console/overview")


def load_time_ms(page: Any) -> dict[str, float]:
    """Navigation timing of the current page: load event and time until now (data rendered)."""
    return page.evaluate(
        """() => { const n = performance.getEntriesByType('navigation')[0];
                   return {load: n.loadEventEnd - n.startTime, rendered: performance.now()}; }"""
    )


def _serve(app: Any, port: int) -> tuple[Any, threading.Thread]:
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the console test server did not start")
        time.sleep(0.05)
    return server, thread


@pytest.fixture(scope="module", name="console_server")
def console_server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The control plane (fake Serve gateway, SQLite) on a real loopback port."""
    from control_plane.app import create_app

    data_dir = tmp_path_factory.mktemp("console-data")
    settings = Settings(data_dir=str(data_dir))
    app = create_app(settings, gateway_factory=FakeServeGateway)
    port = free_port()
    server, thread = _serve(app, port)
    url = f"http://127.0.0.1:{port}"
    try:
        httpx.get(f"{url}/healthz", timeout=10).raise_for_status()
        yield LiveServer(url, data_dir, app)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
