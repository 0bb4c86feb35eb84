"""Bodies sent with curl's default content type (``application/x-www-form-urlencoded``).

torc parses a body whatever its content type, so the README's
``curl -X POST .../initialize_jobs -d '{}'`` works there and must work here.
"""

from __future__ import annotations

import httpx

B = "/torc-service/v1"
FORM = {"content-type": "application/x-www-form-urlencoded"}


async def _workflow_with_chain(client: httpx.AsyncClient) -> tuple[int, list[int]]:
    wf = (await client.post(f"{B}/workflows", json={"name": "f", "user": "u"})).json()["id"]
    a = await client.post(f"{B}/jobs", json={"workflow_id": wf, "name": "a", "command": "x"})
    b = await client.post(
        f"{B}/jobs",
        json={
            "workflow_id": wf,
            "name": "b",
            "command": "x",
            "depends_on_job_ids": [a.json()["id"]],
        },
    )
    return wf, [a.json()["id"], b.json()["id"]]


async def test_initialize_jobs_accepts_a_form_encoded_empty_object(
    client: httpx.AsyncClient,
) -> None:
    wf, (a, b) = await _workflow_with_chain(client)
    resp = await client.post(f"{B}/workflows/{wf}/initialize_jobs", content=b"{}", headers=FORM)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"message": "Initialized job status"}
    assert (await client.get(f"{B}/jobs/{a}")).json()["status"] == "ready"
    assert (await client.get(f"{B}/jobs/{b}")).json()["status"] == "blocked"


async def test_optional_bodies_ignore_form_data_that_is_not_json(
    client: httpx.AsyncClient,
) -> None:
    wf, _ = await _workflow_with_chain(client)
    for method, path in [
        ("POST", f"/workflows/{wf}/initialize_jobs"),
        ("POST", f"/workflows/{wf}/reset_job_status"),
        ("POST", f"/workflows/{wf}/process_changed_job_inputs"),
        ("POST", f"/workflows/{wf}/claim_next_jobs"),
        ("POST", f"/workflows/{wf}/reset_status"),
        ("PUT", f"/workflows/{wf}/cancel"),
    ]:
        resp = await client.request(method, B + path, content=b"a=1&b=2", headers=FORM)
        assert resp.status_code == 200, (path, resp.text)


async def test_async_initialize_and_action_claim_accept_form_encoded_bodies(
    client: httpx.AsyncClient,
) -> None:
    wf, _ = await _workflow_with_chain(client)
    resp = await client.post(
        f"{B}/workflows/{wf}/initialize_jobs?async=true", content=b"{}", headers=FORM
    )
    assert resp.status_code == 202, resp.text
    action = await client.post(
        f"{B}/workflows/{wf}/actions",
        json={
            "workflow_id": wf,
            "trigger_type": "on_workflow_start",
            "action_type": "run_commands",
            "action_config": {"commands": ["true"]},
        },
    )
    assert action.status_code == 200, action.text
    claim = await client.post(
        f"{B}/workflows/{wf}/actions/{action.json()['id']}/claim", content=b"{}", headers=FORM
    )
    # Claimed (200) or not pending yet (409), but never a 422 for the content type.
    assert claim.status_code in (200, 409), claim.text


async def test_form_encoded_json_is_read_as_json(client: httpx.AsyncClient) -> None:
    """The seed's ``reinitialize`` flag and required bodies arrive whatever the content type."""
    made = await client.post(
        f"{B}/workflows", content=b'{"name": "form", "user": "u"}', headers=FORM
    )
    assert made.status_code == 200, made.text
    assert made.json()["name"] == "form"
    bad = await client.post(
        f"{B}/workflows/{made.json()['id']}/initialize_jobs",
        content=b'{"reinitialize": "maybe"}',
        headers=FORM,
    )
    assert bad.status_code == 422
    assert "reinitialize" in bad.text
    missing = await client.post(f"{B}/workflows", content=b"name=x", headers=FORM)
    assert missing.status_code == 422
    assert "body" in missing.text
