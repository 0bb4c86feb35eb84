"""Autogenerate a migration for new or changed tables.

Usage: python scripts/new_migration.py "<message>" <rev_id> [<new_branch_label>]

With a branch label, starts a new independent migration branch (one per API surface, so
surfaces can add tables without editing each other's chain); without, extends the single head
of ``--head`` given by env MIGRATION_HEAD (e.g. ``torc@head``). Review the file it writes.
"""

from __future__ import annotations

import os
import sys
import tempfile

from alembic import command

from control_plane.db.session import _alembic_config, make_engine


def main() -> None:
    """Upgrade a scratch SQLite database to all heads, then autogenerate against it."""
    message, rev_id = sys.argv[1], sys.argv[2]
    branch = sys.argv[3] if len(sys.argv) > 3 else None
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/scratch.db")
        cfg = _alembic_config(engine)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "heads")
            kwargs: dict[str, object] = {"message": message, "autogenerate": True, "rev_id": rev_id}
            if branch:
                kwargs.update(head="base", branch_label=branch, splice=True)
            else:
                kwargs.update(head=os.environ.get("MIGRATION_HEAD", "head"))
            command.revision(cfg, **kwargs)


if __name__ == "__main__":
    main()
