"""TorchServe models and workflows in the console (fake gateway): DAG, scale, unregister."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import LiveServer, login
from tests.integration.torchserve.builders import (
    DIAMOND_FUNCTIONS,
    DIAMOND_SPEC,
    SLEEPY_MODEL,
    make_mar,
    make_war,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module", name="registered")
def registered_fixture(console_server: LiveServer, tmp_path_factory) -> LiveServer:
    store = console_server.data_dir / "store"
    work = tmp_path_factory.mktemp("ts-src")
    make_mar(store / "model-store", "sleepy1", SLEEPY_MODEL, work=work / "s1")
    make_mar(store / "model-store", "sleepy2", SLEEPY_MODEL, work=work / "s2")
    make_war(store / "wf-store", "diamond", DIAMOND_SPEC, DIAMOND_FUNCTIONS, work=work / "d")
    with httpx.Client(base_url=console_server.url, timeout=120) as api:
        r = api.post("/models", params={"url": "sleepy1.mar", "initial_workers": 1})
        assert r.status_code == 200, r.text
        r = api.post("/workflows", params={"url": "diamond.war"})
        assert r.status_code == 200, r.text
    return console_server


def test_torchserve_model_details_scale_and_unregister(page, registered):
    login(page, registered.url)
    page.goto(f"{registered.url}/console/models")
    page.click("#ts-details-sleepy1")
    expect(page.locator("#ts-section h2", has_text="TorchServe model sleepy1")).to_be_visible()
    page.fill("#ts-min", "2")
    page.fill("#ts-max", "3")
    page.click("#ts-scale")
    expect(page.locator("#ts-section dd", has_text="min 2, max 3")).to_be_visible()
    page.log.accept_dialogs = True
    page.log.allow("status of 409")
    page.click("#ts-unregister")
    # a workflow node shares the model: TorchServe's 409, shown as the API's text
    expect(page.locator("#flash .msg.error")).to_have_text(
        "Model sleepy1 is used by workflow(s): diamond"
    )


def test_workflow_dag_scale_and_unregister(page, registered, artifacts):
    login(page, registered.url)
    page.goto(f"{registered.url}/console/workflows")
    page.click("#wf-show-diamond")
    dag = page.locator("#wf-dag")
    expect(dag.locator("g[data-node]")).to_have_count(4)
    assert dag.locator("line").count() == 4
    for edge in ("pre->m1", "pre->m2", "m1->post", "m2->post"):
        assert dag.locator(f"line[data-edge='{edge}']").count() == 1
    page.fill("#wf-min", "1")
    page.fill("#wf-max", "2")
    page.click("#wf-scale")
    # GET /workflows/{w} describes the archive's spec; the scale answer is the confirmation
    expect(page.locator("#flash .msg.info")).to_have_text("scaled diamond")
    artifacts.shot(page, "workflows")
    page.log.accept_dialogs = True
    page.click("#wf-unregister")
    expect(page.locator("#wf-table tr[data-key='diamond']")).to_have_count(0)
