"""Load generation with wrk (C, so the client costs little CPU next to the server)."""

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


def require_wrk() -> str:
    """Path of wrk, or exit with how to get it."""
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is needed for benchmarks: apt-get install -y wrk")
    return path


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
