"""tritonclient calls run on one long-lived pool: short-lived threads no longer leak gevent hubs.

Real ``tritonclient.http`` against a closed loopback port: every call builds a real
geventhttpclient client, which gives the thread running it a gevent hub.
"""

from __future__ import annotations

import gc
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

from control_plane.integrations import triton_client


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _hubs() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o).__name__ == "Hub")


def test_calls_from_many_short_lived_threads_keep_the_hub_count_bounded():
    url = f"127.0.0.1:{_closed_port()}"
    before = _hubs()
    for _ in range(60):  # what a per-request executor or anyio's expiring workers amount to
        worker = threading.Thread(target=triton_client.probe, args=(url, 0.2))
        worker.start()
        worker.join()
    with ThreadPoolExecutor(4) as pool:  # and a per-request pool, as the services had
        assert list(pool.map(lambda _: triton_client.probe(url, 0.2), range(20))) == [
            "offline"
        ] * 20
    grown = _hubs() - before
    assert grown <= triton_client.POOL_THREADS, f"{grown} new gevent hubs for 80 calls"


def test_fan_out_keeps_order_and_runs_module_calls_inline_on_the_pool():
    url = f"127.0.0.1:{_closed_port()}"

    def probe_and_where(i: int) -> tuple[int, str, bool]:
        return i, triton_client.probe(url, 0.2), triton_client.on_pool_thread()

    out = triton_client.fan_out(probe_and_where, range(20))
    assert out == [(i, "offline", True) for i in range(20)]
    assert not triton_client.on_pool_thread()
    # Nested fan-out from a pool thread runs in place instead of waiting on the pool.
    nested = triton_client.fan_out(lambda i: triton_client.fan_out(lambda j: i * j, [1, 2]), [3])
    assert nested == [[3, 6]]
