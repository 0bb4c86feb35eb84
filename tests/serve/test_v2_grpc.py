"""The gRPC ingress on Ray Serve: replicas share the port, survive a kill, carry big tensors.

A second ingress replica binds the same port (its sibling check passes), a killed replica's
client recovers on the survivor, a foreign listener on the port is refused, and the message
size limits are configurable (5 MiB tensors pass by default, a lowered limit refuses them with
RESOURCE_EXHAUSTED while small requests keep working).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import time

import numpy as np
import pytest
import ray
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from tests.grpc_platform import ensure_grpc_ingress
from tests.model_repos import write_echo_all_types

pytestmark = pytest.mark.ray

MODEL = "gs_echo"


@pytest.fixture(scope="module", name="url")
def url_fixture(platform):
    repo = platform.data_dir / "store" / "models"
    write_echo_all_types(repo, name=MODEL)
    url = ensure_grpc_ingress(platform)
    client = grpcclient.InferenceServerClient(url)
    client.load_model(MODEL)
    yield url
    client.unload_model(MODEL)
    client.close()
    ensure_grpc_ingress(platform, num_replicas=1)  # back to the session's defaults
    shutil.rmtree(repo / MODEL, ignore_errors=True)


def _echo(client, array):
    tensor = grpcclient.InferInput("IN_FP32", list(array.shape), "FP32")
    tensor.set_data_from_numpy(array)
    return client.infer(MODEL, [tensor], client_timeout=120).as_numpy("OUT_FP32")


def _ingress_replicas():
    return [
        a
        for a in ray.util.list_named_actors(all_namespaces=True)
        if "GrpcIngress" in a["name"] and "grpc" in a["name"]
    ]


def test_big_tensor_over_default_limit(url):
    big = np.arange(5 * 1024 * 1024 // 4, dtype=np.float32)  # 5 MiB, over gRPC's 4 MiB default
    with grpcclient.InferenceServerClient(url) as client:
        np.testing.assert_array_equal(_echo(client, big), big)


def test_two_replicas_share_the_port_and_survive_a_kill(platform, url):
    ensure_grpc_ingress(platform, num_replicas=2)
    deadline = time.monotonic() + 60
    while len(_ingress_replicas()) != 2 and time.monotonic() < deadline:
        time.sleep(0.5)  # the rolling update stops the old replica
    assert len(_ingress_replicas()) == 2
    small = np.ones(4, dtype=np.float32)
    client = grpcclient.InferenceServerClient(url)
    np.testing.assert_array_equal(_echo(client, small), small)
    victim = _ingress_replicas()[0]
    ray.kill(ray.get_actor(victim["name"], namespace=victim["namespace"]), no_restart=True)
    deadline = time.monotonic() + 60
    answered = 0
    while answered < 5:
        try:
            np.testing.assert_array_equal(_echo(client, small), small)
            answered += 1
        except InferenceServerException:
            if time.monotonic() > deadline:
                raise
            client.close()
            client = grpcclient.InferenceServerClient(url)  # reconnect: another listener
            time.sleep(0.2)
    client.close()


def test_lowered_message_limit_is_enforced(platform, url):
    ensure_grpc_ingress(platform, num_replicas=1, max_receive_message_bytes=1024 * 1024)
    try:
        with grpcclient.InferenceServerClient(url) as client:
            with pytest.raises(InferenceServerException) as info:
                _echo(client, np.zeros(512 * 1024, dtype=np.float32))  # 2 MiB
            assert info.value.status() == "StatusCode.RESOURCE_EXHAUSTED"
            small = np.ones(4, dtype=np.float32)
            np.testing.assert_array_equal(_echo(client, small), small)
    finally:
        ensure_grpc_ingress(platform, num_replicas=1)


def test_foreign_listener_on_the_port_is_refused(platform):
    from deployments.grpc_ingress import _listener_is_sibling, _port_taken, cluster_identity

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert _port_taken("127.0.0.1", port)
        sibling = asyncio.run(_listener_is_sibling("127.0.0.1", port, cluster_identity()))
        assert not sibling
    assert _port_taken("127.0.0.1", platform.grpc_port)
    assert asyncio.run(_listener_is_sibling("127.0.0.1", platform.grpc_port, cluster_identity()))
