"""The gRPC ingress on Ray Serve: replicas share the port, survive a kill, carry big tensors.

A second ingress replica binds the same port (its sibling check passes), a killed replica's
client recovers on the survivor, a foreign listener on the port is refused, and the message
size limits are configurable (5 MiB tensors pass by default, a lowered limit refuses them with
RESOURCE_EXHAUSTED while small requests keep working). The HAProxy front sends a loaded model's
unary inference to the replica's own server (its route is in the book and the front's map), and
its reloads, when models come and go, fail no call of a client that keeps calling and keep an
open stream.
"""

from __future__ import annotations

import asyncio
import queue
import shutil
import socket
import threading
import time

import numpy as np
import pytest
import ray
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from deployments.grpc_front import is_routed
from deployments.grpc_routes import cluster_identity, routes_dir, scan
from tests.grpc_platform import ensure_grpc_ingress
from tests.model_repos import write_add_sub, write_echo_all_types

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


def _routed(model):
    return is_routed(routes_dir(cluster_identity()), model)


def _wait(predicate, what, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_front_routes_a_loaded_model_to_its_replica(url):
    book = routes_dir(cluster_identity())
    _wait(lambda: MODEL in scan(book), "the replica entered the route book")
    _wait(lambda: _routed(MODEL), "the front maps it")
    route = scan(book)[MODEL][0]
    with grpcclient.InferenceServerClient(f"127.0.0.1:{route.port}") as direct:
        small = np.arange(4, dtype=np.float32)
        np.testing.assert_array_equal(_echo(direct, small), small)  # the replica's own server
    with grpcclient.InferenceServerClient(url) as client:
        before = client.get_inference_statistics(MODEL, as_json=True)["model_stats"][0]
        _echo(client, small)
        after = client.get_inference_statistics(MODEL, as_json=True)["model_stats"][0]
    count = int(after["inference_count"]) - int(before["inference_count"])
    assert count == 1  # counted once, as an HTTP /infer is


def test_front_reloads_fail_no_call_of_a_busy_client(platform, url):
    repo = platform.data_dir / "store" / "models"
    write_add_sub(repo, name="gs_reload_b")
    errors: list[Exception] = []
    calls = 0
    stop = threading.Event()

    def keep_calling() -> None:
        nonlocal calls
        with grpcclient.InferenceServerClient(url) as client:
            small = np.ones(4, dtype=np.float32)
            while not stop.is_set():
                try:
                    np.testing.assert_array_equal(_echo(client, small), small)
                    calls += 1
                except Exception as exc:  # every failure is a finding
                    errors.append(exc)

    workers = [threading.Thread(target=keep_calling) for _ in range(4)]
    for worker in workers:
        worker.start()
    streamed: queue.Queue = queue.Queue()
    streamer = grpcclient.InferenceServerClient(url)
    streamer.start_stream(callback=lambda result, error: streamed.put((result, error)))
    echo_in = grpcclient.InferInput("IN_FP32", [4], "FP32")
    echo_in.set_data_from_numpy(np.ones(4, dtype=np.float32))
    try:
        streamer.async_stream_infer(MODEL, [echo_in], request_id="before")
        assert streamed.get(timeout=60)[1] is None
        with grpcclient.InferenceServerClient(url) as admin:
            admin.load_model("gs_reload_b")  # a new route: the front reloads
            _wait(lambda: _routed("gs_reload_b"), "b is routed")
            time.sleep(1.0)  # the old worker has sent its GOAWAY
            streamer.async_stream_infer(MODEL, [echo_in], request_id="after")  # same stream
            result, error = streamed.get(timeout=60)
            assert error is None, error
            assert result.get_response().id == "after"
            first = grpcclient.InferInput("INPUT0", [1, 4], "FP32")
            first.set_data_from_numpy(np.ones((1, 4), dtype=np.float32))
            second = grpcclient.InferInput("INPUT1", [1, 4], "FP32")
            second.set_data_from_numpy(np.ones((1, 4), dtype=np.float32))
            answer = admin.infer("gs_reload_b", [first, second]).as_numpy("OUTPUT0")
            np.testing.assert_array_equal(answer, np.full((1, 4), 2, dtype=np.float32))
            admin.unload_model("gs_reload_b")  # and again when it goes
            _wait(lambda: not _routed("gs_reload_b"), "b unrouted")
            with pytest.raises(InferenceServerException) as info:
                admin.infer("gs_reload_b", [first, second])
            assert info.value.status() == "StatusCode.NOT_FOUND"
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=60)
        streamer.stop_stream()
        streamer.close()
        shutil.rmtree(repo / "gs_reload_b", ignore_errors=True)
    assert not errors, errors[:3]
    assert calls > 20
