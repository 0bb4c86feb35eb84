"""The one rule for names that become paths, routes and application names on every surface."""

from __future__ import annotations

import re

NAME_PATTERN = r"[A-Za-z0-9_.-]{1,128}"
_NAME_RE = re.compile(NAME_PATTERN)


def is_valid_name(name: object) -> bool:
    """True for 1-128 letters, digits, ``_``, ``-`` or ``.``, not made only of dots.

    A dot-only name (``.``, ``..``, ``...``) would name a directory's parent or itself once it
    becomes a path in the artifact store, so every surface refuses all of them alike.
    """
    return isinstance(name, str) and bool(_NAME_RE.fullmatch(name)) and set(name) != {"."}
