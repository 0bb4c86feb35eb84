"""The console in Chromium against the control plane with a fake Serve gateway (no Ray).

Log in, every page with 1,000 Torc jobs and a few hundred models (load timing recorded),
hostile names shown as text, load/unload with confirmation, API errors shown as the API's text.
"""

from __future__ import annotations

import os
import re
import shutil

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import LiveServer, load_time_ms, login
from tests.conftest import ROOT

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)>"
ADMIN = ("admin", "admin")
ADD_SUB = ROOT / "configs" / "models" / "add_sub"
PAGES = {
    "overview": "#apps-table",
    "models": "#v2-table",
    "workflows": "#wf-table",
    "jobs": "#jobs-table tbody tr[data-key]",
    "mlserve": "#users-table",
}
# A deliberately generous bound: the number itself is recorded, not asserted (DESIGN: no test
# asserts a timing); this only catches a page that hangs or loads every row.
GENEROUS_MS = 5000
# CONSOLE_TEST_JOBS=10000 measures the 10,000-job case (the suite runs 1,000).
JOBS = int(os.environ.get("CONSOLE_TEST_JOBS", "1000"))


@pytest.fixture(scope="module", name="seeded")
def seeded_fixture(console_server: LiveServer) -> dict[str, int]:
    """JOBS jobs (one named like markup), 300 repository models, a user."""
    models = console_server.data_dir / "store" / "models"
    models.mkdir(parents=True, exist_ok=True)
    for i in range(300):
        shutil.copytree(ADD_SUB, models / f"m{i:03d}")
    shutil.copytree(ADD_SUB, models / "add_sub")
    shutil.copytree(ADD_SUB, models / XSS)
    with httpx.Client(base_url=console_server.url, timeout=60) as api:
        t = "/torc-service/v1"
        wf = api.post(f"{t}/workflows", json={"name": "big", "user": "ops"}).json()["id"]
        first = api.post(f"{t}/jobs", json={"workflow_id": wf, "name": "root", "command": "true"})
        root = first.json()["id"]
        jobs = [
            {
                "workflow_id": wf,
                "name": f"job{i:04d}",
                "command": f"echo {i}",
                "depends_on_job_ids": [root],
            }
            for i in range(JOBS - 2)
        ]
        jobs.append({"workflow_id": wf, "name": XSS, "command": "echo '<b>x</b>'"})
        assert api.post(f"{t}/bulk_jobs", json={"jobs": jobs}).status_code == 200
        assert api.post(f"{t}/workflows/{wf}/initialize_jobs", json={}).status_code == 200
        user = api.post("/api/users", auth=ADMIN, json={"name": "ops1", "password": "pw-ops-1"})
        assert user.status_code == 201
    return {"workflow_id": wf}


def test_login_form_shows_the_api_error_and_then_logs_in(page, console_server):
    page.goto(f"{console_server.url}/console/jobs")
    page.wait_for_url("**/console/login?next=/console/jobs")
    page.fill("#username", "admin")
    page.fill("#password", "wrong")
    page.log.allow("401")
    page.click("#login-submit")
    assert page.inner_text("#login-error") == "Invalid authentication credentials"
    page.fill("#password", "admin")
    page.click("#login-submit")
    page.wait_for_url(f"{console_server.url}/console/jobs")
    cookie = next(c for c in page.context.cookies() if c["name"] == "cp_console")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # not readable from scripts
    page.click("#logout")
    page.wait_for_url(f"{console_server.url}/console/login")
    page.goto(f"{console_server.url}/console/overview")
    page.wait_for_url("**/console/login?next=/console/overview")


def test_every_page_loads_fast_with_1000_jobs(page, console_server, seeded, artifacts):
    login(page, console_server.url)
    for name, selector in PAGES.items():
        page.goto(f"{console_server.url}/console/{name}")
        page.wait_for_selector(selector)
        timing = load_time_ms(page)
        artifacts.record(f"{name}_load_event_ms", timing["load"])
        artifacts.record(f"{name}_rendered_ms", timing["rendered"])
        artifacts.shot(page, name)
        assert timing["rendered"] < GENEROUS_MS, (name, timing)
    page.goto(f"{console_server.url}/console/jobs#wf={seeded['workflow_id']}")
    page.wait_for_selector("#jobs-table tbody tr[data-key]")
    page.wait_for_selector("#progress-text")
    assert page.inner_text("#progress-text") == f"0 of {JOBS} jobs done"
    assert page.locator("#jobs-table tbody tr").count() == 50  # one page, not 1,000 rows
    expect(page.locator("#torc-jobs .page-info")).to_have_text(re.compile(rf"^1\W50 of {JOBS}$"))
    page.locator("#torc-jobs .pager button").last.click()  # next page
    expect(page.locator("#torc-jobs .page-info")).to_have_text(re.compile(rf"^51\W100 of {JOBS}$"))
    page.select_option("#status-filter", "ready")
    # the root job and the markup-named one have no dependencies
    expect(page.locator("#torc-jobs .toolbar .muted")).to_have_text("2 matching")


def test_markup_in_names_is_displayed_as_text(page, console_server, seeded):
    login(page, console_server.url)
    page.goto(f"{console_server.url}/console/jobs#wf={seeded['workflow_id']}&status=ready")
    page.select_option("#sort-by", "name")
    page.wait_for_selector(f"#jobs-table tr[data-key] >> text={XSS}")
    assert page.locator("#jobs-table img, #jobs-dag img, main img").count() == 0
    cell = page.locator("#jobs-table td", has_text=XSS).first
    assert cell.inner_text() == XSS
    page.goto(f"{console_server.url}/console/models")
    page.fill("#v2-filter", "<img")
    page.press("#v2-filter", "Enter")
    page.wait_for_selector(f"#v2-table tr[data-key='{XSS}']")
    assert page.locator("#v2-table td", has_text=XSS).first.inner_text() == XSS
    assert page.locator("main img").count() == 0
    assert page.log.dialogs == []  # no alert(1) ran


def test_load_and_unload_a_model_with_confirmation(page, console_server, seeded):
    login(page, console_server.url)
    page.goto(f"{console_server.url}/console/models")
    page.fill("#v2-filter", "add_sub")
    page.press("#v2-filter", "Enter")
    row = page.locator("#v2-table tr[data-key='add_sub']")
    page.click("#load-add_sub")
    page.wait_for_selector("#v2-table tr[data-key='add_sub'] .badge.ok")
    assert row.locator(".badge").inner_text() == "READY"
    # The fake gateway has no replica to answer config/stats: the panel shows the API's text.
    page.log.allow("Failed to load resource")
    page.click("#details-add_sub")
    expect(page.locator("#v2-section h2", has_text="Model add_sub")).to_be_visible()
    expect(page.locator("#v2-section p.error").first).to_contain_text("add_sub")
    page.log.accept_dialogs = False
    page.click("#unload-add_sub")  # dismissed: nothing happens
    assert page.log.dialogs[-1].startswith("Unload model add_sub?")
    page.log.errors.clear()
    assert row.locator(".badge").inner_text() == "READY"
    page.log.accept_dialogs = True
    page.click("#unload-add_sub")
    expect(row.locator(".badge")).to_have_text("UNAVAILABLE")


def test_api_errors_are_shown_with_the_api_message(page, console_server, seeded):
    login(page, console_server.url)
    page.goto(f"{console_server.url}/console/mlserve")
    page.wait_for_selector("#users-table")
    page.log.allow("409")
    page.fill("#new-user-name", "ops1")  # exists already
    page.fill("#new-user-password", "pw-ops-2")
    page.click("#create-user")
    page.wait_for_selector("#flash .msg.error")
    assert page.inner_text("#flash .msg.error") == "user 'ops1' already exists"


def test_cancel_a_workflow_after_confirming(page, console_server, seeded):
    t = "/torc-service/v1"
    with httpx.Client(base_url=console_server.url, timeout=60) as api:
        wf = api.post(f"{t}/workflows", json={"name": "to-cancel", "user": "ops"}).json()["id"]
        for i in range(3):
            job = {"workflow_id": wf, "name": f"c{i}", "command": "sleep 60"}
            assert api.post(f"{t}/jobs", json=job).status_code == 200
    login(page, console_server.url)
    page.goto(f"{console_server.url}/console/jobs#wf={wf}")
    page.click("#initialize")
    expect(page.locator("#torc-jobs .job-status", has_text="ready")).to_have_count(3)
    with httpx.Client(base_url=console_server.url, timeout=60) as api:  # a runner claims two
        claimed = api.post(f"{t}/workflows/{wf}/claim_next_jobs", params={"limit": 2})
        assert claimed.status_code == 200, claimed.text
    expect(page.locator("#torc-jobs .job-status", has_text="pending")).to_have_count(2)
    page.log.accept_dialogs = True
    page.click("#cancel-wf")
    # torc's cancel: claimed (pending/running) jobs become canceled, ready ones stay
    expect(page.locator("#torc-jobs .job-status", has_text="canceled")).to_have_count(2)
    expect(page.locator("#wf-canceled")).to_have_text("workflow canceled")
    expect(page.locator("#progress-text")).to_have_text("2 of 3 jobs done")
    assert page.log.dialogs == [f"Cancel workflow {wf}? Running jobs are terminated."]


def test_change_a_role_rotate_and_delete_a_user(page, console_server, seeded):
    with httpx.Client(base_url=console_server.url, timeout=60) as api:
        body = {"name": "temp1", "password": "pw-temp-1"}
        assert api.post("/api/users", auth=ADMIN, json=body).status_code == 201
    login(page, console_server.url)
    page.goto(f"{console_server.url}/console/mlserve")
    page.select_option("select[data-user='temp1']", "admin")
    expect(page.locator("#flash .msg.info")).to_have_text("temp1 is now admin")
    with httpx.Client(base_url=console_server.url, timeout=60) as api:
        assert api.get("/api/users/temp1", auth=ADMIN).json()["role"] == "admin"
    page.log.accept_dialogs = True
    page.click("#rotate-temp1")
    key = page.inner_text("#new-key")
    with httpx.Client(base_url=console_server.url, timeout=60) as api:
        assert api.get("/api/users/temp1", headers={"apikey": key}).status_code == 200
    page.click("#delete-user-temp1")
    expect(page.locator("#users-table tr[data-key='temp1']")).to_have_count(0)
