"""``make test``: the whole suite as two pytest sessions side by side.

The Ray tiers spend most of their wall time waiting (deployments, subprocesses, peers starting:
a fresh-clone run used ~7 CPU-minutes in 20 wall-minutes on 2 cores), so the tiers that never
start Ray (``tests/unit``, ``tests/integration`` and the two torc-client modules of
``tests/compat``, which serve the control plane alone) run beside them in a second session
instead of after them. The Ray session's output streams as it runs; the other session's follows
when both are done. Each session has its own ``--basetemp``. With a path or node id among the
arguments this is one plain pytest session over what was named.

Exit status: 0 when both sessions pass, otherwise the first non-zero status (pytest's 5, "no
tests collected", counts as a pass for one session when a ``-k`` leaves it nothing).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NO_RAY = (
    "tests/unit",
    "tests/integration",
    "tests/compat/test_torc_client.py",
    "tests/compat/test_torc_client_035.py",
)
NO_TESTS = 5


def _names_tests(args: list[str]) -> bool:
    return any(not a.startswith("-") and (ROOT / a.split("::")[0]).exists() for a in args)


def _combined(fast: int, ray: int) -> int:
    statuses = [fast, ray]
    if statuses == [NO_TESTS, NO_TESTS]:
        return NO_TESTS
    return next((s for s in statuses if s not in (0, NO_TESTS)), 0)


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(args: list[str]) -> int:
    """Run the suite (or what ``args`` name); returns the exit status."""
    pytest = [sys.executable, "-m", "pytest", "-q"]
    if _names_tests(args):
        return subprocess.call([*pytest, *args], cwd=ROOT)
    base = Path(tempfile.gettempdir()) / f"platform-tests-{os.getuid()}"
    base.mkdir(parents=True, exist_ok=True)
    log_path = base / "no-ray.log"
    with log_path.open("wb") as log:
        fast = subprocess.Popen(
            [*pytest, *NO_RAY, f"--basetemp={base / 'no-ray'}", *args],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            ignores = [f"--ignore={path}" for path in NO_RAY]
            _say(f"== Ray tiers (the unit and integration tiers run beside them: {log_path})")
            ray = subprocess.call(
                # the slowest Ray-tier tests in CI's output: where the suite's time goes
                [*pytest, "tests", *ignores, "--durations=25", f"--basetemp={base / 'ray'}", *args],
                cwd=ROOT,
            )
        finally:
            fast_status = fast.wait()
    _say(f"\n== The tiers without Ray ({' '.join(NO_RAY)})")
    sys.stdout.write(log_path.read_text(errors="replace"))
    status = _combined(fast_status, ray)
    _say(f"\n== make test: Ray tiers exit {ray}, unit+integration exit {fast_status} -> {status}")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
