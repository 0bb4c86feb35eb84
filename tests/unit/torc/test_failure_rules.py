"""The failure-handler rule algorithm of the Ray runner and the server's rule checks."""

from __future__ import annotations

import pytest

from control_plane.errors import ValidationFailedError
from control_plane.services.torc.failure_handlers import parse_rules
from deployments.job_exec import failure_action

RULES = [
    {"exit_codes": [3, 4], "max_retries": 3},
    {"exit_codes": [5], "max_retries": 1},
    {"match_all_exit_codes": True, "max_retries": 2},
]


def test_failure_action_matches_exit_codes_first_then_match_all() -> None:
    assert failure_action(RULES, 4, 1) == ("retry", RULES[0])
    assert failure_action(RULES, 3, 2) == ("retry", RULES[0])
    assert failure_action(RULES, 3, 3) == ("exhausted", RULES[0])
    assert failure_action(RULES, 5, 1) == ("exhausted", RULES[1])
    assert failure_action(RULES, 9, 1) == ("retry", RULES[2])
    assert failure_action(RULES[:2], 9, 1) == ("no_match", None)
    assert failure_action([{"exit_codes": [1]}], 1, 2) == ("retry", {"exit_codes": [1]})
    assert failure_action([{"exit_codes": [1]}], 1, 3)[0] == "exhausted"


def test_parse_rules_accepts_strings_and_arrays_and_rejects_malformed_ones() -> None:
    assert parse_rules('[{"exit_codes": [1]}]') == [{"exit_codes": [1]}]
    assert parse_rules([{"match_all_exit_codes": True}]) == [{"match_all_exit_codes": True}]
    for bad in ("{", "{}", "[1]", '[{"exit_codes": [true]}]', '[{"max_retries": 1}]'):
        with pytest.raises(ValidationFailedError, match="Invalid rules"):
            parse_rules(bad)
