"""``make fuzz``: the fuzz campaign of tests/fuzz for longer, with a fresh seed each run."""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

from tests.fuzz.harness import campaign, running_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="Fuzzing time.")
    parser.add_argument("--seed", type=int, default=None, help="Hypothesis seed (random).")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.getrandbits(32)
    print(f"fuzz: seed {seed}, {args.minutes} minutes", flush=True)
    with tempfile.TemporaryDirectory() as tmp, running_app(Path(tmp)) as target:
        report = campaign(
            target, Path(tmp), total_s=int(args.minutes * 60), seed_value=seed, max_examples=30
        )
    print(report.summary())
    failed = report.server_errors or [
        c for c in report.check_failures if not c.startswith("not_a_server_error")
    ]
    return 1 if failed or report.coverage <= 0.8 else 0


if __name__ == "__main__":
    sys.exit(main())
