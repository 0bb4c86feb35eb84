"""Torc failure handlers: retry rules that runners apply to failed jobs.

``rules`` is stored as the JSON string clients send (torc's ``FailureHandlerModel``) and is
checked on write, so a runner never meets malformed rules; the server never applies them.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from control_plane.db.tables.torc import TorcFailureHandler, TorcJob
from control_plane.errors import ValidationFailedError
from control_plane.services.torc.crud import TorcCrud

DEFAULT_MAX_RETRIES = 3
_RULE_KEYS = {"exit_codes", "match_all_exit_codes", "recovery_script", "max_retries"}


def _bad(message: str) -> ValidationFailedError:
    return ValidationFailedError(f"Invalid rules: {message}", code="invalid_rules", field="rules")


def parse_rules(rules: Any) -> list[dict[str, Any]]:
    """The rules of a handler: a JSON array (or its string) of rule objects.

    Each rule: ``exit_codes`` (list of integers), ``match_all_exit_codes`` (bool),
    ``recovery_script`` (string), ``max_retries`` (integer >= 0, default 3).

    Raises:
        ValidationFailedError: not JSON, not an array, or a malformed rule.
    """
    if isinstance(rules, str):
        try:
            rules = json.loads(rules)
        except ValueError as exc:
            raise _bad(f"not JSON ({exc})") from None
    if not isinstance(rules, list):
        raise _bad("expected a JSON array of rules")
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            raise _bad(f"rule {i} is not an object")
        unknown = sorted(set(rule) - _RULE_KEYS)
        if unknown:
            raise _bad(f"rule {i} has unknown keys {unknown}")
        codes = rule.get("exit_codes", [])
        if not isinstance(codes, list) or not all(
            isinstance(c, int) and not isinstance(c, bool) for c in codes
        ):
            raise _bad(f"rule {i}: exit_codes must be a list of integers")
        if not isinstance(rule.get("match_all_exit_codes", False), bool):
            raise _bad(f"rule {i}: match_all_exit_codes must be a boolean")
        script = rule.get("recovery_script")
        if script is not None and not isinstance(script, str):
            raise _bad(f"rule {i}: recovery_script must be a string")
        retries = rule.get("max_retries", DEFAULT_MAX_RETRIES)
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise _bad(f"rule {i}: max_retries must be an integer >= 0")
        if not codes and not rule.get("match_all_exit_codes", False):
            raise _bad(f"rule {i} matches nothing (no exit_codes, no match_all_exit_codes)")
    return rules


class FailureHandlerService(TorcCrud):
    """CRUD for ``/failure_handlers``."""

    table = TorcFailureHandler
    label = "Failure handler"
    list_key = "failure_handlers"
    required = ("workflow_id", "name", "rules")
    fields = ("id", "workflow_id", "name", "rules")

    def prepare(self, data: dict[str, Any], row: Any | None) -> dict[str, Any]:  # noqa: ARG002
        """Check the rules; store them as a JSON string."""
        values = {k: v for k, v in data.items() if v is not None}
        if "rules" in values:
            rules = values["rules"]
            parse_rules(rules)
            values["rules"] = rules if isinstance(rules, str) else json.dumps(rules)
        return values

    def delete(self, item_id: int) -> dict[str, Any]:
        """Delete a handler; its jobs keep running without one (torc: FK ``SET NULL``)."""
        self.get_row(item_id)
        self.session.execute(
            update(TorcJob)
            .where(TorcJob.failure_handler_id == item_id)
            .values(failure_handler_id=None)
            .execution_options(synchronize_session=False)
        )
        return super().delete(item_id)


def check_failure_handlers(session: Session, workflow_id: int, jobs: list[dict[str, Any]]) -> None:
    """Every ``failure_handler_id`` names a handler of the workflow.

    Raises:
        ValidationFailedError: naming the first unknown id.
    """
    wanted = {j["failure_handler_id"] for j in jobs if j.get("failure_handler_id") is not None}
    if not wanted:
        return
    found = set(
        session.scalars(
            select(TorcFailureHandler.id).where(
                TorcFailureHandler.id.in_(sorted(wanted)),
                TorcFailureHandler.workflow_id == workflow_id,
            )
        )
    )
    missing = sorted(wanted - found)
    if missing:
        raise ValidationFailedError(
            f"Got failure_handler_id {missing[0]}; no such failure handler in workflow "
            f"{workflow_id}",
            code="unknown_reference",
            field="failure_handler_id",
        )
