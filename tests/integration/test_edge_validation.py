"""Regression tests for the 500s the fuzzer found (issue 19): bad ids and names answer a 4xx.

Each case was a 500 before: integers beyond 64 bits in paths and bodies, non-ASCII or control
characters in MLServe path parameters, a JSON body that is not UTF-8.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

T = "/torc-service/v1"
HUGE = 2**64 + 7  # beyond signed (and unsigned) 64 bits
ADMIN = ("admin", "admin")


async def _workflow(client: httpx.AsyncClient) -> int:
    resp = await client.post(f"{T}/workflows", json={"name": "edge", "user": "u"})
    assert resp.status_code == 200, resp.text
    return int(resp.json()["id"])


def _assert_names(resp: httpx.Response, status: int, field: str) -> None:
    assert resp.status_code == status, resp.text
    text = resp.text
    assert field in text, text
    assert "Internal server error" not in text


TORC_HUGE_IN_PATH = [
    ("GET", f"{T}/resource_requirements/{HUGE}", "item_id"),
    ("PUT", f"{T}/resource_requirements/{HUGE}", "item_id"),
    ("PUT", f"{T}/results/{HUGE}", "item_id"),
    ("POST", f"{T}/workflows/{HUGE}/run_on_ray", "workflow_id"),
    ("POST", f"{T}/workflows/{HUGE}/batch_complete_jobs", "workflow_id"),
    ("GET", f"{T}/tasks/{HUGE}", "task_id"),
    ("GET", f"{T}/workflows/{HUGE}/active_task", "workflow_id"),
    ("POST", f"{T}/workflows/{HUGE}/reset_status", "workflow_id"),
    ("GET", f"{T}/workflows/{HUGE}/actions/pending", "workflow_id"),
    ("POST", f"{T}/jobs/{HUGE}/retry/1?max_retries=3", "job_id"),
    ("GET", f"{T}/events?workflow_id={HUGE}", "workflow_id"),
    ("GET", f"{T}/results?workflow_id=-{HUGE}", "workflow_id"),
]


async def test_torc_id_beyond_64_bits_in_path_or_query_is_422_naming_it(client):
    for method, path, field in TORC_HUGE_IN_PATH:
        resp = await client.request(method, path, json={})
        assert resp.status_code == 422, (method, path, resp.text)
        assert field in resp.text, (method, path, resp.text)


async def test_torc_bulk_jobs_with_an_id_beyond_64_bits_is_422_naming_the_field(client):
    wf = await _workflow(client)
    body = {"jobs": [{"workflow_id": wf, "name": "a", "command": "true",
                      "resource_requirements_id": HUGE}]}
    resp = await client.post(f"{T}/bulk_jobs", json=body)
    _assert_names(resp, 422, "resource_requirements_id")


async def test_torc_batch_complete_with_a_huge_job_id_is_4xx(client):
    wf = await _workflow(client)
    body = {"results": [{"job_id": HUGE, "run_id": 1, "return_code": 0, "status": "completed",
                         "exec_time_minutes": 0.1, "completion_time": "2026-01-01T00:00:00Z"}]}
    resp = await client.post(f"{T}/workflows/{wf}/batch_complete_jobs", json=body)
    assert 400 <= resp.status_code < 500, resp.text


async def test_torc_put_result_with_a_huge_id_in_the_body_is_4xx(client):
    wf = await _workflow(client)
    body = {"workflow_id": wf, "job_id": HUGE, "run_id": 1, "return_code": 0,
            "exec_time_minutes": 0.1, "completion_time": "2026-01-01T00:00:00Z",
            "status": "completed"}
    resp = await client.put(f"{T}/results/1", json=body)
    assert 400 <= resp.status_code < 500, resp.text


BAD_IDENTS = ["¹", "é", "\x01", "a\x7fb", str(HUGE), "١٢"]


@pytest.mark.parametrize(
    ("method", "template"),
    [
        ("DELETE", "/api/tritons/{}"),
        ("PATCH", "/api/models/{}"),
        ("POST", "/api/apps/{}/routes/m"),
        ("POST", "/api/apps/app/routes/{}"),
        ("POST", "/api/models/{}/load"),
        ("POST", "/api/models/{}/unload"),
        ("GET", "/api/users/{}"),
    ],
)
async def test_mlserve_odd_path_parameter_is_4xx(client, method, template):
    client.auth = ADMIN
    for ident in BAD_IDENTS:
        resp = await client.request(method, template.format(quote(ident, safe="")), json={})
        assert 400 <= resp.status_code < 500, (ident, resp.text)
        assert "error" in resp.json()


async def test_mlserve_patch_with_a_body_that_is_not_utf8_is_400(client):
    client.auth = ADMIN
    resp = await client.patch(
        "/api/models/x", content=b'{"\xe9\xff": 1}', headers={"content-type": "application/json"}
    )
    assert resp.status_code == 400, resp.text
    assert "JSON" in resp.json()["error"] or "utf" in resp.json()["error"].lower()


@pytest.mark.parametrize("host", ["a b", "a/b", "ä.example", "-lead.example", "x" * 64, "[::1"])
async def test_triton_with_a_host_that_is_no_name_or_address_is_400(client, host):
    # The fuzzer registered such a host and GET /api/tritons then answered 500 (its probe could
    # not even build a client); now the registration is refused and names the field.
    resp = await client.post("/api/tritons", json={"host": host, "port": 8000}, auth=ADMIN)
    _assert_names(resp, 400, "host")
    resp = await client.get("/api/tritons", auth=ADMIN)
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "[::1]", "triton-0.svc.local", "localhost"])
async def test_triton_with_a_name_or_address_registers_and_lists(client, host):
    resp = await client.post("/api/tritons", json={"host": host, "port": 1}, auth=ADMIN)
    assert resp.status_code == 201, resp.text
    listed = await client.get("/api/tritons", auth=ADMIN)
    assert listed.status_code == 200, listed.text
    states = [
        t["state"] for t in listed.json()["tritons"] if t["host"] == host and not t["builtin"]
    ]
    assert states == ["offline"]
    await client.delete(f"/api/tritons/{resp.json()['id']}", auth=ADMIN)
