"""ORM tables, one module per resource family; ``load_all_tables`` registers them all."""

from __future__ import annotations

import importlib
import pkgutil


def load_all_tables() -> None:
    """Import every table module so ``Base.metadata`` knows all tables."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
