"""Loading ensembles through the repository API (fake Serve gateway, real DB)."""

import pytest

from tests.pipeline_repos import (
    write_affine,
    write_ensemble,
    write_two_branch_ensemble,
    write_two_step_ensemble,
)


def _repo(client):
    repo = client.app.state.settings.store_root / "models"
    repo.mkdir(parents=True, exist_ok=True)
    return repo


async def test_loading_an_ensemble_loads_its_steps_as_their_own_apps(client, gateway):
    write_two_step_ensemble(_repo(client))
    resp = await client.post("/v2/repository/models/ens/load")
    assert resp.status_code == 200, resp.text
    assert {"p-v2-ens", "p-v2-pre", "p-v2-post"} <= set(gateway.apps)
    app = gateway.apps["p-v2-ens"]
    assert app.builder == "deployments.model_server:build_triton_ensemble"
    assert app.args.steps["pre"].app == "p-v2-pre"
    assert app.args.fused is True  # ray_fused "auto": two small CPU steps in a chain
    index = {e["name"]: e["state"] for e in (await client.post("/v2/repository/index")).json()}
    assert index == {"ens": "READY", "pre": "READY", "post": "READY"}
    # unloading the ensemble leaves the steps; unloading a step unloads the ensemble
    assert (await client.post("/v2/repository/models/ens/unload")).status_code == 200
    assert "p-v2-pre" in gateway.apps
    assert (await client.post("/v2/repository/models/ens/load")).status_code == 200
    assert (await client.post("/v2/repository/models/pre/unload")).status_code == 200
    assert "p-v2-ens" not in gateway.apps
    assert "p-v2-post" in gateway.apps


async def test_fused_ensemble_is_recorded_as_fused(client, gateway):
    write_two_step_ensemble(_repo(client), ray_fused="true")
    assert (await client.post("/v2/repository/models/ens/load")).status_code == 200
    assert gateway.apps["p-v2-ens"].args.fused is True


async def test_ray_fused_false_keeps_the_graph_and_a_bad_value_is_refused(client, gateway):
    repo = _repo(client)
    write_two_step_ensemble(repo, ray_fused="false")
    assert (await client.post("/v2/repository/models/ens/load")).status_code == 200
    assert gateway.apps["p-v2-ens"].args.fused is False
    write_two_step_ensemble(repo, name="ens_bad", ray_fused="sometimes")
    resp = await client.post("/v2/repository/models/ens_bad/load")
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == (
        "failed to load 'ens_bad': parameter 'ray_fused' must be 'true', 'false' or 'auto', "
        "got 'sometimes'"
    )
    assert "p-v2-ens_bad" not in gateway.apps


async def test_auto_leaves_batching_steps_and_branches_on_their_own_replicas(client, gateway):
    repo = _repo(client)
    write_affine(repo, "batched", policy="dynamic_batching { }")
    write_ensemble(repo, "ens_b", [("batched", -1, {"INPUT0": "IN"}, {"OUTPUT0": "OUT"})])
    write_affine(repo, "two", policy="instance_group [ { kind: KIND_CPU count: 2 } ]")
    write_ensemble(repo, "ens_r", [("two", -1, {"INPUT0": "IN"}, {"OUTPUT0": "OUT"})])
    write_affine(repo, "a", offset=1.0)
    write_affine(repo, "b", offset=2.0)
    write_two_branch_ensemble(repo, "ens_p", "a", "b")
    for name in ("ens_b", "ens_r", "ens_p"):
        assert (await client.post(f"/v2/repository/models/{name}/load")).status_code == 200
        assert gateway.apps[f"p-v2-{name}"].args.fused is False, name


async def test_reloading_a_step_reloads_the_fused_ensembles_that_hold_it(client, gateway):
    repo = _repo(client)
    write_two_step_ensemble(repo, name="fused")
    write_ensemble(
        repo,
        "graph",
        [("pre", -1, {"INPUT0": "IN"}, {"OUTPUT0": "OUT"})],
        params={"ray_fused": "false"},
    )
    for name in ("fused", "graph"):
        assert (await client.post(f"/v2/repository/models/{name}/load")).status_code == 200
    applied: list[str] = []
    apply = gateway.apply
    gateway.apply = lambda spec: (applied.append(spec.name), apply(spec))[1]
    assert (await client.post("/v2/repository/models/pre/load")).status_code == 200
    # the fused one loaded its own copy of pre's code; the graph calls pre's application
    assert applied == ["p-v2-pre", "p-v2-fused"]
    index = {e["name"]: e["state"] for e in (await client.post("/v2/repository/index")).json()}
    assert index["fused"] == index["graph"] == "READY"


async def test_step_batches_in_flight_is_read_and_checked(client, gateway):
    repo = _repo(client)
    write_two_step_ensemble(repo)
    assert (await client.post("/v2/repository/models/ens/load")).status_code == 200
    assert gateway.apps["p-v2-ens"].args.step_batches_in_flight == 2  # the default
    write_two_step_ensemble(repo, name="ens1", ray_step_batches_in_flight="1")
    assert (await client.post("/v2/repository/models/ens1/load")).status_code == 200
    assert gateway.apps["p-v2-ens1"].args.step_batches_in_flight == 1
    for bad in ("0", "65", "two", "-1"):
        write_two_step_ensemble(repo, name="ens_bad", ray_step_batches_in_flight=bad)
        resp = await client.post("/v2/repository/models/ens_bad/load")
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"] == (
            "failed to load 'ens_bad': parameter 'ray_step_batches_in_flight' must be an "
            f"integer from 1 to 64, got '{bad}'"
        )
        assert "p-v2-ens_bad" not in gateway.apps


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (
            [("absent_model", -1, {"INPUT0": "IN"}, {"OUTPUT0": "OUT"})],
            "ensemble bad contains models that are not available or ambiguous: absent_model",
        ),
        ([("pre", -1, {"INPUT0": "nowhere"}, {"OUTPUT0": "OUT"})], "reads tensor 'nowhere'"),
        (
            [("pre", -1, {"WRONG": "IN"}, {"OUTPUT0": "OUT"})],
            "ensemble tensor IN is mapping to non-existing input WRONG in model pre",
        ),
        ([("pre", 4, {"INPUT0": "IN"}, {"OUTPUT0": "OUT"})], "pins version 4 of model pre"),
        (
            [
                ("pre", -1, {"INPUT0": "IN"}, {"OUTPUT0": "a"}),
                ("pre", -1, {"INPUT0": "a"}, {"OUTPUT0": "a"}),
            ],
            "ensemble tensor 'a' can appear in an output map only once",
        ),
    ],
)
async def test_bad_ensembles_are_400_naming_the_problem(client, gateway, steps, message):
    repo = _repo(client)
    write_affine(repo, "pre")
    write_ensemble(repo, "bad", steps)
    for _ in range(2):  # Triton answers the second attempt with a generic 500; here the same 400
        resp = await client.post("/v2/repository/models/bad/load")
        assert resp.status_code == 400, resp.text
        assert message in resp.json()["error"]
    assert "p-v2-bad" not in gateway.apps


async def test_an_ensemble_containing_itself_is_refused(client, gateway):
    repo = _repo(client)
    write_ensemble(repo, "outer", [("inner", -1, {"IN": "IN"}, {"OUT": "OUT"})])
    write_ensemble(repo, "inner", [("outer", -1, {"IN": "IN"}, {"OUT": "OUT"})])
    resp = await client.post("/v2/repository/models/outer/load")
    assert resp.status_code == 400
    assert "contains itself through outer -> inner -> outer" in resp.json()["error"]


async def test_unload_dependents_unloads_only_the_steps_the_ensemble_loaded(client, gateway):
    write_two_step_ensemble(_repo(client))
    assert (await client.post("/v2/repository/models/pre/load")).status_code == 200  # before
    assert (await client.post("/v2/repository/models/ens/load")).status_code == 200
    assert gateway.apps["p-v2-ens"].args.loaded_steps == ["post"]
    bad = await client.post(
        "/v2/repository/models/ens/unload", json={"parameters": {"unload_dependents": "yes"}}
    )
    assert bad.status_code == 400
    assert "unload_dependents" in bad.json()["error"]
    resp = await client.post(
        "/v2/repository/models/ens/unload", json={"parameters": {"unload_dependents": True}}
    )
    assert resp.status_code == 200
    assert "p-v2-ens" not in gateway.apps
    assert "p-v2-post" not in gateway.apps  # the ensemble loaded it
    assert "p-v2-pre" in gateway.apps  # loaded explicitly before the ensemble: stays
