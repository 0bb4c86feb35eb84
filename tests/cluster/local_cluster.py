"""A real multi-node Ray cluster on one machine, started the way a user starts one.

``ray start --head`` plus one ``ray start --address=...`` per extra node, each with its own
custom resource label and explicit free ports (Redis owns 6379 here, and the test session's own
Ray cluster may run beside it). Every node runs ``--block`` in its own process group, so the
cluster can be stopped, or one node's raylet killed, without touching any other Ray process on
the machine (``ray stop`` would kill them all).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests.conftest import ROOT, free_port

RAY = Path(sys.executable).with_name("ray")

# Ray's per-node listeners that default to fixed ports; two nodes on one machine need their own.
PER_NODE_PORTS = (
    "--node-manager-port",
    "--object-manager-port",
    "--metrics-export-port",
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
    "--runtime-env-agent-port",
)


@dataclass
class RayNode:
    """One ``ray start --block`` process and the label it was started with."""

    label: str
    proc: subprocess.Popen
    log: Path

    def processes(self) -> list[psutil.Process]:
        """This node's Ray processes (raylet, GCS on the head, workers, agents)."""
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def kill_raylet(self) -> None:
        """SIGKILL this node's raylet, as a crashed or lost machine would look to Ray."""
        raylets = [p for p in self.processes() if p.name() == "raylet"]
        assert raylets, f"no raylet under node {self.label}"
        for raylet in raylets:
            raylet.kill()

    def stop(self) -> None:
        """Kill every process of this node at once (workers first would leave orphans)."""
        victims = self.processes()
        for victim in victims:
            with contextlib.suppress(psutil.NoSuchProcess):
                victim.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        psutil.wait_procs(victims, timeout=15)


@dataclass
class LocalCluster:
    """A head node and worker nodes; ``address`` is what ``RAY_ADDRESS`` takes."""

    workdir: Path
    env: dict[str, str]
    cpus_per_node: int = 2
    nodes: list[RayNode] = field(default_factory=list)
    address: str = ""
    temp_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="rc-", dir="/tmp")))

    def _start(self, label: str, args: list[str]) -> RayNode:
        ports = [arg for flag in PER_NODE_PORTS for arg in (flag, str(free_port()))]
        log = self.workdir / f"ray-{label}.log"
        cmd = [
            str(RAY),
            "start",
            "--block",
            f"--num-cpus={self.cpus_per_node}",
            f"--resources={json.dumps({label: 1})}",
            *ports,
            *args,
        ]
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=self.env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        node = RayNode(label, proc, log)
        self.nodes.append(node)
        return node

    def start(self, labels: tuple[str, ...] = ("node_head", "node_worker")) -> None:
        """Start the head, then one worker per further label, and wait until all are alive."""
        gcs_port = free_port()
        self.address = f"127.0.0.1:{gcs_port}"
        self._start(
            labels[0],
            [
                "--head",
                "--node-ip-address=127.0.0.1",
                f"--port={gcs_port}",
                f"--ray-client-server-port={free_port()}",
                "--include-dashboard=false",
                f"--temp-dir={self.temp_dir}",
            ],
        )
        self.wait_for_nodes(1)
        for label in labels[1:]:
            self.add_node(label, wait=False)
        self.wait_for_nodes(len(labels))

    def add_node(self, label: str, *, wait: bool = True) -> RayNode:
        """Join one more worker node (what an autoscaler does after a node loss)."""
        node = self._start(label, [f"--address={self.address}", "--node-ip-address=127.0.0.1"])
        if wait:
            deadline = time.monotonic() + 120
            while label not in self.alive_nodes().values():
                if time.monotonic() > deadline or node.proc.poll() is not None:
                    raise AssertionError(f"node {label} did not join:\n{_tail(node.log)}")
                time.sleep(1)
        return node

    def probe(self, code: str, timeout_s: float = 60) -> object:
        """Run ``code`` in a fresh driver connected to this cluster; it sets ``result``."""
        script = (
            "import json, ray\n"
            f"ray.init(address={self.address!r}, log_to_driver=False, namespace='serve')\n"
            f"{code}\n"
            "print('PROBE ' + json.dumps(result))\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=self.env,
            cwd=ROOT,
        )
        for line in proc.stdout.splitlines():
            if line.startswith("PROBE "):
                return json.loads(line[len("PROBE ") :])
        raise AssertionError(f"probe failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")

    def alive_nodes(self) -> dict[str, str]:
        """Node id -> label of every alive node."""
        code = (
            "result = {n['NodeID']: next((k for k in n['Resources'] if k.startswith('node_')"
            " and not k.startswith('node:')), '') for n in ray.nodes() if n['Alive']}"
        )
        nodes = self.probe(code)
        assert isinstance(nodes, dict)
        return nodes

    def wait_for_nodes(self, count: int, timeout_s: float = 120) -> None:
        """Until ``count`` nodes are alive."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.proc.poll() is not None:
                    raise AssertionError(f"ray start for {node.label} exited:\n{_tail(node.log)}")
            try:
                if len(self.alive_nodes()) >= count:
                    return
            except (AssertionError, subprocess.TimeoutExpired):
                pass
            time.sleep(1)
        logs = "\n".join(_tail(n.log) for n in self.nodes)
        raise AssertionError(f"{count} Ray nodes not alive after {timeout_s}s:\n{logs}")

    def replicas(self, app: str) -> dict[str, list[str]]:
        """Alive Serve replica actors of ``app``: deployment -> node labels (from the GCS)."""
        code = (
            "from ray._private import state\n"
            "labels = {n['NodeID']: next((k for k in n['Resources'] if k.startswith('node_')"
            " and not k.startswith('node:')), '') for n in ray.nodes() if n['Alive']}\n"
            "result = {}\n"
            "for actor in state.actors().values():\n"
            "    name = actor.get('Name') or ''\n"
            f"    if actor['State'] != 'ALIVE' or not name.startswith('SERVE_REPLICA::{app}#'):\n"
            "        continue\n"
            "    deployment = name.split('#')[1]\n"
            "    node = actor['Address']['NodeID']\n"
            "    result.setdefault(deployment, []).append(labels.get(node, node))\n"
        )
        found = self.probe(code)
        assert isinstance(found, dict)
        return {k: sorted(v) for k, v in found.items()}

    def stop(self) -> None:
        """Kill every node (workers first, head last) and remove the session directory."""
        for node in reversed(self.nodes):
            node.stop()
        self.nodes.clear()
        subprocess.run(["rm", "-rf", str(self.temp_dir)], check=False)


def _tail(path: Path, limit: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""
