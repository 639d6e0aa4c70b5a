"""What the call flow records on a call's ticket: plain values, no database.

The call-flow engine imports this module, so it must stay free of SQLAlchemy.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import StrEnum


class Outcome(StrEnum):
    """How a call ended up, from the support line's point of view."""

    SELF_SERVED = "self_served"
    QUEUED = "queued"
    ANSWERED = "answered"
    ABANDONED = "abandoned"
    VOICEMAIL = "voicemail"
    CALLBACK = "callback"
    CLOSED_HOURS = "closed_hours"


FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
"""Twilio `CallStatus` values that end a call."""


@dataclass(frozen=True)
class TicketChange:
    """Facts the call flow learned on one webhook, to record on the call's ticket."""

    language: str | None = None
    menu_step: str | None = None  # appended to the ticket's menu path, e.g. "lang:2", "main:1"
    issue: str | None = None
    queue: str | None = None
    team: str | None = None
    priority: int | None = None
    outcome: Outcome | None = None
    queued: bool = False  # sets queued_at = now (only the first time)
    callback_number: str | None = None
    recording_url: str | None = None
    recording_duration: int | None = None

    def is_empty(self) -> bool:
        """True when the change would record nothing."""
        return not self.queued and all(
            getattr(self, f.name) is None for f in fields(self) if f.name != "queued"
        )


def format_reference(reference: str) -> str:
    """A ticket reference spelled digit by digit for text-to-speech, e.g. "4 8 2 1 0 9 3"."""
    return " ".join(reference.replace(" ", ""))
