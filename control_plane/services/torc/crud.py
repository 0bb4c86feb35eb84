"""A small CRUD core shared by the simple Torc resources (files, user data, events...)."""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.orm import Session

from control_plane.errors import NotFoundError, ValidationFailedError
from control_plane.services.torc.common import (
    MAX_LIMIT,
    drop_none,
    envelope,
    get_workflow_or_raise,
    paginate,
)


class TorcCrud:
    """CRUD over one table whose rows belong to a workflow.

    Subclasses set ``table``, ``label`` (for "<label> not found with ID: n"), ``list_key``
    (the seed's envelope key) and ``fields`` (the wire fields), and may override ``prepare``
    (validate and derive columns) and ``to_dict``.
    """

    table: ClassVar[Any]
    label: ClassVar[str]
    list_key: ClassVar[str]
    fields: ClassVar[tuple[str, ...]]
    always: ClassVar[tuple[str, ...]] = ()
    required: ClassVar[tuple[str, ...]] = ("workflow_id", "name")

    def __init__(self, session: Session) -> None:
        self.session = session

    def to_dict(self, row: Any) -> dict[str, Any]:
        """The wire form of a row (nulls omitted)."""
        return drop_none({f: getattr(row, f) for f in self.fields}, keep=self.always)

    def prepare(self, data: dict[str, Any], row: Any | None) -> dict[str, Any]:  # noqa: ARG002
        """Validate a create/update payload and return the column values to write."""
        return data

    def get_row(self, item_id: int) -> Any:
        """The row.

        Raises:
            NotFoundError: unknown id.
        """
        row = self.session.get(self.table, item_id)
        if row is None:
            raise NotFoundError(
                f"{self.label} not found with ID: {item_id}",
                code=f"{self.list_key.rstrip('s')}_not_found",
            )
        return row

    def get(self, item_id: int) -> dict[str, Any]:
        """One item by id."""
        return self.to_dict(self.get_row(item_id))

    def create(self, data: dict[str, Any]) -> dict[str, Any]:
        """Insert an item (its workflow must exist).

        Raises:
            ValidationFailedError: a required field is missing.
            NotFoundError: unknown workflow.
        """
        missing = [k for k in self.required if data.get(k) is None]
        if missing:
            raise ValidationFailedError(
                f"Got no {', '.join(missing)}; required to create {self.label.lower()}",
                code="missing_field",
                fields=missing,
            )
        get_workflow_or_raise(self.session, data["workflow_id"])
        values = self.prepare({k: v for k, v in data.items() if k != "id"}, None)
        row = self.table(**values)
        self.session.add(row)
        self.session.flush()
        self.after_create(row, data)
        self.session.commit()
        return self.to_dict(row)

    def create_many(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Insert up to 10,000 items of one workflow in one transaction, in order.

        Raises:
            ValidationFailedError: mixed workflows, too many items, a missing field.
            NotFoundError: unknown workflow.
        """
        if not items:
            return []
        if len(items) > MAX_LIMIT:
            raise ValidationFailedError(
                f"Got {len(items)} items; at most {MAX_LIMIT} per request", code="too_many_items"
            )
        workflow_ids = {i.get("workflow_id") for i in items}
        if len(workflow_ids) != 1:
            raise ValidationFailedError(
                f"Got items of workflows {sorted(map(str, workflow_ids))}; a batch must share "
                "one workflow_id",
                code="mixed_workflows",
            )
        for index, data in enumerate(items):
            missing = [k for k in self.required if data.get(k) is None]
            if missing:
                raise ValidationFailedError(
                    f"Got no {', '.join(missing)} in item {index}; required to create "
                    f"{self.label.lower()}",
                    code="missing_field",
                    fields=missing,
                )
        get_workflow_or_raise(self.session, items[0]["workflow_id"])
        rows = [
            self.table(**self.prepare({k: v for k, v in d.items() if k != "id"}, None))
            for d in items
        ]
        self.session.add_all(rows)
        self.session.flush()
        self.session.commit()
        return [self.to_dict(r) for r in rows]

    def after_create(self, row: Any, data: dict[str, Any]) -> None:
        """Hook for side effects inside the create transaction."""

    def update(self, item_id: int, data: dict[str, Any]) -> dict[str, Any]:
        """Update an item; fields absent or null keep their value."""
        row = self.get_row(item_id)
        values = self.prepare({k: v for k, v in data.items() if k != "id"}, row)
        if "workflow_id" in values and values["workflow_id"] != row.workflow_id:
            get_workflow_or_raise(self.session, values["workflow_id"])
        for key, value in values.items():
            setattr(row, key, value)
        self.session.commit()
        return self.to_dict(row)

    def delete(self, item_id: int) -> dict[str, Any]:
        """Delete an item and return what it was."""
        row = self.get_row(item_id)
        body = self.to_dict(row)
        self.session.delete(row)
        self.session.commit()
        return body

    def delete_all(self, workflow_id: int) -> int:
        """Delete every item of a workflow; returns how many."""
        get_workflow_or_raise(self.session, workflow_id)
        result = self.session.execute(
            delete(self.table).where(self.table.workflow_id == workflow_id)
        )
        self.session.commit()
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def list(
        self,
        workflow_id: int,
        *,
        where: list[ColumnElement[bool]] | None = None,
        offset: int = 0,
        limit: int | None = None,
        sort_by: str | None = None,
        reverse_sort: bool = False,
    ) -> dict[str, Any]:
        """A page of a workflow's items in torc's envelope."""
        get_workflow_or_raise(self.session, workflow_id)
        query = select(self.table).where(self.table.workflow_id == workflow_id)
        for clause in where or []:
            query = query.where(clause)
        rows, total, _ = paginate(
            self.session,
            query,
            offset=offset,
            limit=limit,
            sort_by=sort_by,
            reverse_sort=reverse_sort,
            columns=self.table.__table__.c,
        )
        return envelope([self.to_dict(r) for r in rows], offset, total, self.list_key)
