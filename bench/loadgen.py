"""Load generation with wrk (HTTP) and h2load (gRPC): C, so the client costs little CPU."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_LUA = """
wrk.method = "{method}"
wrk.body = io.open("{body}", "rb"):read("*all")
{headers}
"""


@dataclass
class LoadResult:
    """Throughput and latency of one wrk run."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def _require(tool: str, package: str, what: str) -> str:
    """Path of ``tool``, or exit with the Debian package that has it."""
    path = shutil.which(tool)
    if path is None:
        raise SystemExit(f"{tool} is needed for {what}: apt-get install -y {package}")
    return path


def require_wrk() -> str:
    """Path of wrk, or exit with how to get it."""
    return _require("wrk", "wrk", "benchmarks")


def run_wrk(
    url: str,
    body: bytes,
    *,
    connections: int,
    duration_s: int = 8,
    headers: dict[str, str] | None = None,
    warmup_s: int = 2,
    method: str = "POST",
) -> LoadResult:
    """Send ``body`` to ``url`` (``method``, POST by default) over ``connections`` (1 thread)."""
    wrk = require_wrk()
    with tempfile.TemporaryDirectory() as tmp:
        body_path = Path(tmp) / "body"
        body_path.write_bytes(body)
        header_lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in (headers or {}).items())
        script = Path(tmp) / "post.lua"
        script.write_text(_LUA.format(method=method, body=body_path, headers=header_lines))
        base = [wrk, "-t1", f"-c{connections}", "-s", str(script), "--latency", "--timeout", "10s"]
        if warmup_s:
            subprocess.run([*base, f"-d{warmup_s}s", url], capture_output=True, check=False)
        out = subprocess.run(
            [*base, f"-d{duration_s}s", url], capture_output=True, text=True, check=True
        ).stdout
    try:
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
        p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
        p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    except (AttributeError, ValueError):
        raise RuntimeError(f"could not read wrk output for {url}:\n{out}") from None
    errors = 0
    match = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if match:
        errors += int(match.group(1))
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if match:
        errors += sum(int(g) for g in match.groups())
    return LoadResult(rps, p50, p99, errors)


def require_h2load() -> str:
    """The h2load binary (nghttp2's HTTP/2 load generator), or exit with how to get it."""
    return _require("h2load", "nghttp2-client", "gRPC benchmarks")


def run_h2load_grpc(
    target: str,
    message: bytes,
    *,
    concurrency: int,
    duration_s: int = 8,
    warmup_s: int = 1,
    headers: dict[str, str] | None = None,
) -> LoadResult:
    """Unary gRPC calls of one serialized ``message`` at ``target`` (``host:port``).

    One HTTP/2 connection carrying ``concurrency`` streams, as one ``tritonclient.grpc`` channel
    does. h2load counts HTTP statuses only (a gRPC error is a 200 with a ``grpc-status``
    trailer): callers check the server's own counters for the calls that failed.
    """
    h2load = require_h2load()
    url = f"http://{target}/inference.GRPCInferenceService/ModelInfer"
    with tempfile.TemporaryDirectory() as tmp:
        body = Path(tmp) / "body"
        body.write_bytes(b"\x00" + len(message).to_bytes(4, "big") + message)
        log = Path(tmp) / "log"
        out = subprocess.run(
            [h2load, "-c1", f"-m{concurrency}", "-t1", f"-D{duration_s}"]
            + [f"--warm-up-time={warmup_s}", "-d", str(body), f"--log-file={log}"]
            + ["-H", "content-type: application/grpc", "-H", "te: trailers"]
            + [arg for k, v in (headers or {}).items() for arg in ("-H", f"{k}: {v}")]
            + [url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        rows = [line.split("\t") for line in log.read_text().splitlines() if line]
    latencies = sorted(int(r[2]) / 1000 for r in rows if r[1] == "200") or [0.0]
    match = re.search(r"(\d+) failed, (\d+) errored, (\d+) timeout", out)
    errors = sum(int(g) for g in match.groups()) if match else 0
    errors += sum(1 for r in rows if r[1] != "200")
    return LoadResult(
        rps=len(latencies) / duration_s,
        p50_ms=latencies[len(latencies) // 2],
        p99_ms=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        errors=errors,
    )


def table(rows: list[list[str]], header: list[str]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def write_section(doc: Path, heading: str, text: str) -> None:
    """Replace (or append) one ``## heading`` section of a Markdown file."""
    content = doc.read_text() if doc.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    section = f"## {heading}\n\n{text.strip()}\n\n"
    content = (
        pattern.sub(section, content)
        if pattern.search(content)
        else content.rstrip() + "\n\n" + section
    )
    doc.write_text(content)
