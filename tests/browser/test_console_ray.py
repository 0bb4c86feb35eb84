"""The console in Chromium against the real platform (one Ray cluster, the session ``platform``).

Load and unload a model, watch a Torc workflow's progress bar reach 100% while its jobs run on
Ray, upload a model and a chunked version, create a user (key shown once), an app with a route
and a consumer, and call the route with the shown key.
"""

from __future__ import annotations

import io
import time
import zipfile

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import load_time_ms, login
from tests.conftest import ROOT

pytestmark = [pytest.mark.ray, pytest.mark.browser]

ADD_SUB = ROOT / "configs" / "models" / "add_sub"
BODY = {
    "inputs": [
        {"name": "INPUT0", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]},
        {"name": "INPUT1", "shape": [1, 4], "datatype": "FP32", "data": [1, 1, 1, 1]},
    ]
}


def _config(name: str) -> str:
    return (ADD_SUB / "config.pbtxt").read_text().replace('name: "add_sub"', f'name: "{name}"')


def _wait(predicate, timeout_s: float = 120, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except httpx.HTTPError as exc:
            last = repr(exc)
        if last is True:
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


@pytest.fixture(scope="module", name="console_platform")
def console_platform_fixture(platform):
    with httpx.Client(base_url=platform.url, timeout=60) as client:
        _wait(lambda: client.get("/api/tritons", auth=("admin", "admin")).status_code == 200)
    return platform


def test_load_and_unload_a_model_on_ray(page, console_platform, artifacts):
    name = "console_add_sub"
    target = console_platform.data_dir / "store" / "models" / name
    (target / "1").mkdir(parents=True, exist_ok=True)
    (target / "config.pbtxt").write_text(_config(name))
    (target / "1" / "model.py").write_bytes((ADD_SUB / "1" / "model.py").read_bytes())
    login(page, console_platform.url)
    page.goto(f"{console_platform.url}/console/models")
    page.fill("#v2-filter", name)
    page.press("#v2-filter", "Enter")
    row = page.locator(f"#v2-table tr[data-key='{name}']")
    page.click(f"#load-{name}")
    expect(row.locator(".badge")).to_have_text("READY", timeout=150_000)
    with httpx.Client(base_url=console_platform.url, timeout=60) as client:
        out = client.post(f"/v2/models/{name}/infer", json=BODY).json()
        assert out["outputs"][0]["data"] == [2, 3, 4, 5]
    # A keep-alive connection the browser opened before the load still reaches the old HAProxy
    # process (without the model's route) once; the console retries that GET, and Chromium
    # logs the first answer as a failed resource load.
    page.log.allow("status of 503")
    page.log.allow("status of 400")
    page.click(f"#details-{name}")
    expect(page.locator("#v2-stats")).to_be_visible()
    expect(page.locator("#v2-stats tbody tr").first).to_contain_text("1")
    artifacts.shot(page, "models-loaded")
    page.goto(f"{console_platform.url}/console/overview")
    page.wait_for_selector(f"#apps-table td:text-is('p-v2-{name}')")
    artifacts.record("overview_ray_rendered_ms", load_time_ms(page)["rendered"])
    artifacts.shot(page, "overview")
    page.goto(f"{console_platform.url}/console/models")
    page.fill("#v2-filter", name)
    page.press("#v2-filter", "Enter")
    page.log.accept_dialogs = True
    page.click(f"#unload-{name}")
    expect(row.locator(".badge")).not_to_have_text("READY", timeout=120_000)
    assert page.log.dialogs == [f"Unload model {name}? Its replicas stop serving."]


def test_torc_progress_reaches_100_percent_while_jobs_run_on_ray(page, console_platform, artifacts):
    t = "/torc-service/v1"
    with httpx.Client(base_url=console_platform.url, timeout=60) as api:
        wf = api.post(f"{t}/workflows", json={"name": "console-run", "user": "ops"}).json()["id"]
        firsts = [
            api.post(
                f"{t}/jobs",
                json={"workflow_id": wf, "name": f"stage1-{i}", "command": f"sleep 3; echo o{i}"},
            ).json()["id"]
            for i in range(3)
        ]
        for i in range(3):
            job = {
                "workflow_id": wf,
                "name": f"stage2-{i}",
                "command": f"sleep 3; echo two-{i}",
                "depends_on_job_ids": firsts,
            }
            assert api.post(f"{t}/jobs", json=job).status_code == 200
    login(page, console_platform.url)
    page.goto(f"{console_platform.url}/console/jobs#wf={wf}")
    expect(page.locator("#progress-text")).to_have_text("0 of 6 jobs done")
    page.click("#initialize")
    expect(page.locator("#torc-jobs .job-status", has_text="ready")).to_have_count(3)
    page.click("#run-on-ray")
    seen: list[str] = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        pct = page.inner_text("#progress-pct")
        if not seen or seen[-1] != pct:
            seen.append(pct)
        if pct == "100%":
            break
        time.sleep(0.25)
    assert seen[-1] == "100%", seen
    values = [int(p.rstrip("%")) for p in seen]
    assert values == sorted(values), seen  # the bar only moves forward
    assert any(0 < v < 100 for v in values), seen  # and was watched while jobs ran
    artifacts.record("torc_progress_steps", len(seen))
    expect(page.locator("#progress-text")).to_have_text("6 of 6 jobs done")
    first_row = page.locator("#jobs-table tbody tr[data-key]").first
    first_row.locator("button:has-text('Result')").click()
    expect(page.locator("#job-stdout")).to_have_text("o0\n")
    expect(page.locator("#torc-result dd").first).to_have_text("0")  # return code
    assert page.locator("#jobs-dag line").count() == 9  # 3 x 3 dependency edges
    artifacts.shot(page, "jobs")


def _archive(name: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("config.pbtxt", _config(name))
        zf.writestr("1/model.py", (ADD_SUB / "1" / "model.py").read_bytes())
    return buffer.getvalue()


def test_user_app_route_and_consumer_then_call_the_route_with_the_shown_key(
    page, console_platform, artifacts, tmp_path
):
    name = "console_gw_model"
    archive = tmp_path / f"{name}.zip"
    archive.write_bytes(_archive(name))
    # Version 2: the same model.py padded past three 256 KiB chunks.
    big = tmp_path / "model.py"
    big.write_bytes((ADD_SUB / "1" / "model.py").read_bytes() + b"\n" + b"# pad\n" * 140_000)
    login(page, console_platform.url)
    page.goto(f"{console_platform.url}/console/mlserve")
    page.wait_for_selector("#store-table")
    page.fill("#new-model-name", name)
    page.set_input_files("#new-model-files", str(archive))
    page.click("#create-model")
    page.wait_for_selector(f"#store-table tr[data-key='{name}']")
    page.select_option("#upload-model", name)
    page.set_input_files("#upload-file", str(big))
    page.fill("#upload-path", "model.py")
    page.click("#upload-version")
    expect(page.locator("#upload-pct")).to_have_text("100%", timeout=60_000)
    row = page.locator(f"#store-table tr[data-key='{name}']")
    expect(row.locator("td").nth(2)).to_have_text("1, 2")
    page.click(f"#ml-load-{name}")
    expect(row.locator(".badge")).to_have_text("READY", timeout=150_000)

    page.fill("#new-user-name", "console_consumer")
    page.fill("#new-user-password", "pw-consumer-1")
    page.click("#create-user")
    key = page.inner_text("#new-key")
    assert len(key) == 43
    page.fill("#new-app-name", "console_shop")
    page.click("#create-app")
    page.click("#open-app-console_shop")
    page.select_option("#route-model", name)
    page.click("#add-route")
    expect(page.locator(f"#routes-table td:text-is('{name}')")).to_be_visible()
    page.select_option("#consumer-user", "console_consumer")
    page.click("#add-consumer")
    expect(page.locator("#consumers-table td:text-is('console_consumer')")).to_be_visible()
    route_url = page.inner_text("#routes-table .route-url")
    assert route_url.endswith(f"/apps/console_shop/{name}")
    artifacts.shot(page, "mlserve")

    with httpx.Client(base_url=console_platform.url, timeout=60) as client:

        def call_ok():
            r = client.post(f"/apps/console_shop/{name}", json=BODY, headers={"apikey": key})
            return (r.status_code == 200 and r.json()["outputs"][0]["data"] == [2, 3, 4, 5]) or (
                r.status_code,
                r.text[:200],
            )

        _wait(call_ok, what="the route answering with the shown key")
        refused = client.post(f"/apps/console_shop/{name}", json=BODY, headers={"apikey": "x"})
        assert refused.status_code in (401, 403)
    # Rotating shows a new key once; the old one stops working.
    page.log.accept_dialogs = True
    page.click("#rotate-console_consumer")
    expect(page.locator("#new-key")).not_to_have_text(key)
    with httpx.Client(base_url=console_platform.url, auth=("admin", "admin"), timeout=120) as api:
        # leave the shared platform as found: the app, its consumer and the model (unloaded)
        assert api.delete("/api/apps/console_shop").status_code == 200
        assert api.delete("/api/users/console_consumer").status_code == 200
        assert api.delete(f"/api/models/{name}").status_code == 200
