"""What a TorchServe management command reports on success: an outcome and TorchServe's text."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Outcome(Enum):
    """Whether a command finished, or goes on in the background."""

    DONE = "done"
    ACCEPTED = "accepted"


@dataclass(frozen=True)
class StatusResult:
    """A command's outcome and its message, worded as TorchServe words it."""

    message: str
    outcome: Outcome = Outcome.DONE
