"""Write constraints.txt: the installed versions of the platform's whole dependency tree.

Run by ``make lock`` with the virtualenv's interpreter, after the project and every extra
named in ``--extras`` are installed there. It walks the requirements in pyproject.toml (with
those extras) through every installed dependency's own metadata,
evaluating environment markers, and pins what it reaches with ``==``. Torch and what only torch
needs are left out on purpose: the Makefile installs ``$(TORCH_SPEC)`` first, and a GPU build
brings its own pins (sympy, triton, nvidia-*), which a constraint here would fight.

Usage: python scripts/lock_constraints.py --extras test,onnx,dev [--out constraints.txt]
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
LEFT_OUT = {"torch"}  # installed from TORCH_SPEC (see the Makefile)
HEADER = """\
# Versions of the platform's whole dependency tree, as installed and tested (torch excepted:
# TORCH_SPEC chooses it). The Makefile installs with `pip install -c constraints.txt`.
# Regenerate after changing dependencies in pyproject.toml: `make lock` (then commit it).
"""


def _requirements(dist: metadata.Distribution, extras: set[str]) -> list[Requirement]:
    """The distribution's requirements that apply here with the given extras."""
    found = []
    base_env = {k: str(v) for k, v in default_environment().items()}
    for line in dist.requires or []:
        req = Requirement(line)
        if req.marker is None:
            found.append(req)
            continue
        for extra in extras or {""}:
            if req.marker.evaluate({**base_env, "extra": extra}):
                found.append(req)
                break
    return found


def project_requirements(extras: set[str]) -> list[Requirement]:
    """The project's own requirements read from pyproject.toml (fresher than installed metadata).

    Raises:
        SystemExit: an extra that pyproject.toml does not define.
    """
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    optional = project.get("optional-dependencies", {})
    unknown = extras - set(optional)
    if unknown:
        raise SystemExit(f"unknown extras: {', '.join(sorted(unknown))}")
    lines = list(project["dependencies"])
    for extra in sorted(extras):
        lines.extend(optional[extra])
    return [Requirement(line) for line in lines]


def dependency_tree(extras: set[str]) -> dict[str, str]:
    """Canonical name -> installed version of everything the project (with extras) needs.

    Raises:
        SystemExit: a required distribution is not installed (run ``make venv`` first).
    """
    pins: dict[str, str] = {}
    todo: list[tuple[str, set[str]]] = [
        (req.name, set(req.extras))
        for req in project_requirements(extras)
        if canonicalize_name(req.name) not in LEFT_OUT
    ]
    seen: set[tuple[str, frozenset[str]]] = set()
    missing: list[str] = []
    while todo:
        name, wanted = todo.pop()
        key = (canonicalize_name(name), frozenset(wanted))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
            continue
        pins[canonicalize_name(dist.metadata["Name"])] = dist.version
        for req in _requirements(dist, wanted):
            if canonicalize_name(req.name) in LEFT_OUT:
                continue
            todo.append((req.name, set(req.extras)))
    if missing:
        raise SystemExit(f"not installed, run make venv first: {', '.join(sorted(missing))}")
    return pins


def main(argv: list[str] | None = None) -> int:
    """Write the constraints file; returns the process status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extras", default="", help="comma-separated extras of the project")
    parser.add_argument("--out", default="constraints.txt", type=Path)
    args = parser.parse_args(argv)
    extras = {e.strip() for e in args.extras.split(",") if e.strip()}
    pins = dependency_tree(extras)
    lines = [f"{name}=={version}" for name, version in sorted(pins.items())]
    args.out.write_text(HEADER + "\n".join(lines) + "\n")
    print(f"{args.out}: {len(lines)} pins", file=sys.stderr)  # noqa: T201 - a CLI
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
