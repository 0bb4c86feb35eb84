"""The KubeRay RayService manifest is well-formed and runs the project's own Serve config."""

from pathlib import Path

import yaml
from ray.serve.schema import ServeDeploySchema

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "configs" / "kuberay" / "rayservice.yaml"


def _manifest():
    return yaml.safe_load(MANIFEST.read_text())


def test_rayservice_structure():
    manifest = _manifest()
    assert manifest["apiVersion"] == "ray.io/v1"
    assert manifest["kind"] == "RayService"
    cluster = manifest["spec"]["rayClusterConfig"]
    assert cluster["rayVersion"] == "2.60.0"
    pods = [cluster["headGroupSpec"]["template"]["spec"]] + [
        g["template"]["spec"] for g in cluster["workerGroupSpecs"]
    ]
    for pod in pods:
        container = pod["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        assert env["CP_DB__URL"]["valueFrom"]["secretKeyRef"]["name"] == "platform-postgres"
        assert env["CP_STORE__ROOT"]["value"] == "/mnt/platform-store"
        assert env["CP_AUTH__MANAGEMENT_REQUIRE_AUTH"]["value"] == "true"  # binds 0.0.0.0 in pods
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert "/mnt/platform-store" in mounts
        claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]}
        assert claims == {"platform-store"}
    gpu = next(g for g in cluster["workerGroupSpecs"] if g["groupName"] == "gpu")
    assert gpu["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_serve_config_is_the_projects():
    serve_v2 = yaml.safe_load(_manifest()["spec"]["serveConfigV2"])
    ServeDeploySchema.model_validate(serve_v2)
    project = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    assert serve_v2["applications"] == project["applications"]
    assert serve_v2.get("logging_config") == project.get("logging_config")


def test_secret_example_names_the_keys_the_manifest_reads():
    secret = yaml.safe_load(
        (ROOT / "configs" / "kuberay" / "postgres-secret.example.yaml").read_text()
    )
    assert secret["metadata"]["name"] == "platform-postgres"
    assert set(secret["stringData"]) == {"url", "admin-password"}
