"""The HAProxy replay setting is one value wherever the platform starts Ray.

Ray writes ``RAY_SERVE_HAPROXY_RETRY_ON`` into its HAProxy config as it is, so its second line
(``option http-buffer-request``) lands in the ``defaults`` section; without it HAProxy forwards
a request before its body has arrived and can no longer replay it when the replica dies
(tests/reliability/test_drills.py; docs/architecture.md, "Ingress mode").
"""

import os
import subprocess
from pathlib import Path

import yaml

from tests.conftest import HAPROXY_RETRY_ON, ray_test_env

ROOT = Path(__file__).resolve().parents[2]


def _make_value(**overrides: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_SERVE_", "FAST_INGRESS"))}
    env.update(overrides)
    rule = "print-retry-on: ; @printf '%s' \"$$RAY_SERVE_HAPROXY_RETRY_ON\""
    return subprocess.run(
        ["make", "--no-print-directory", "-s", "-C", str(ROOT), f"--eval={rule}", "print-retry-on"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_make_run_sets_the_replay_and_the_buffered_request():
    assert _make_value() == HAPROXY_RETRY_ON
    assert HAPROXY_RETRY_ON.splitlines() == [
        "conn-failure empty-response",
        "    option http-buffer-request",
    ]


def test_an_operator_value_wins_and_the_python_proxy_sets_none():
    assert _make_value(RAY_SERVE_HAPROXY_RETRY_ON="conn-failure") == "conn-failure"
    assert _make_value(FAST_INGRESS="0") == ""


def test_tests_and_kuberay_use_the_same_value():
    assert ray_test_env(True)["RAY_SERVE_HAPROXY_RETRY_ON"] == HAPROXY_RETRY_ON
    assert "RAY_SERVE_HAPROXY_RETRY_ON" not in ray_test_env(False)
    manifest = yaml.safe_load((ROOT / "configs" / "kuberay" / "rayservice.yaml").read_text())
    cluster = manifest["spec"]["rayClusterConfig"]
    pods = [cluster["headGroupSpec"]["template"]["spec"]] + [
        g["template"]["spec"] for g in cluster["workerGroupSpecs"]
    ]
    for pod in pods:
        env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
        assert env["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
        assert env["RAY_SERVE_HAPROXY_RETRY_ON"] == HAPROXY_RETRY_ON
