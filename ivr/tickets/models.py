"""Tables for call tickets and queue events. The schema itself is created by the Alembic migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from ivr.db import Base, SafeString
from ivr.tickets.changes import Outcome, QueueEvent
from ivr.tickets.references import LONGEST


def _utcnow() -> datetime:
    return datetime.now(UTC)


class OutcomeType(TypeDecorator[Outcome]):
    """An `Outcome` stored as its plain string value."""

    impl = String(20)
    cache_ok = True

    def process_bind_param(self, value: Outcome | None, dialect: Dialect) -> str | None:
        """Store the enum's value (and reject strings that are not outcomes)."""
        return None if value is None else Outcome(value).value

    def process_result_value(self, value: Any | None, dialect: Dialect) -> Outcome | None:
        """Read the value back as an `Outcome`."""
        return None if value is None else Outcome(value)


class QueueEventType(TypeDecorator[QueueEvent]):
    """A `QueueEvent` stored as its plain string value."""

    impl = String(20)
    cache_ok = True

    def process_bind_param(self, value: QueueEvent | None, dialect: Dialect) -> str | None:
        """Store the enum's value (and reject strings that are not queue events)."""
        return None if value is None else QueueEvent(value).value

    def process_result_value(self, value: Any | None, dialect: Dialect) -> QueueEvent | None:
        """Read the value back as a `QueueEvent`."""
        return None if value is None else QueueEvent(value)


class Ticket(Base):
    """One ticket per call: who called, what they chose, and how the call ended."""

    __tablename__ = "tickets"
    __table_args__ = (CheckConstraint("satisfaction BETWEEN 1 AND 5", name="satisfaction_range"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(SafeString(64), unique=True)
    reference: Mapped[str] = mapped_column(SafeString(LONGEST), unique=True)
    caller: Mapped[str | None] = mapped_column(SafeString(32))
    called: Mapped[str | None] = mapped_column(SafeString(32))
    language: Mapped[str | None] = mapped_column(SafeString(16))
    # Reassign rather than mutate: SQLAlchemy does not see in-place changes to a JSON value.
    menu_path: Mapped[list[str]] = mapped_column(JSON, default=list)
    issue: Mapped[str | None] = mapped_column(SafeString(64))
    queue: Mapped[str | None] = mapped_column(SafeString(64))
    team: Mapped[str | None] = mapped_column(SafeString(64))
    priority: Mapped[int | None]
    arrived_at: Mapped[datetime] = mapped_column(index=True)
    queued_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    outcome: Mapped[Outcome | None] = mapped_column(OutcomeType(), index=True)
    call_status: Mapped[str | None] = mapped_column(SafeString(20))
    wait_seconds: Mapped[int | None]
    duration_seconds: Mapped[int | None]
    agent: Mapped[str | None] = mapped_column(SafeString(128))
    recording_url: Mapped[str | None] = mapped_column(SafeString(500))
    recording_duration: Mapped[int | None]
    callback_number: Mapped[str | None] = mapped_column(SafeString(32))
    satisfaction: Mapped[int | None]
    account: Mapped[str | None] = mapped_column(SafeString(128), index=True)
    """The caller's account at the exchange (`ivr.exchange`), when the exchange knew the number."""
    verified_by: Mapped[str | None] = mapped_column(SafeString(8))
    """How the caller proved who they are: "app" or "sms" (where the exchange sent their code)."""
    verified_at: Mapped[datetime | None]
    locked_at: Mapped[datetime | None]
    """When the exchange locked the account at the caller's request."""
    callback_code: Mapped[str | None] = mapped_column(SafeString(8))
    """What a callback we place opens with, so that the caller knows it is ours."""
    said: Mapped[str | None] = mapped_column(SafeString(200))
    """What the caller said at a menu that listens (via Twilio's speech recognition, so untrusted
    text; runs of 4 digits or more masked, `said_for_ticket`)."""
    said_to: Mapped[str | None] = mapped_column(SafeString(64))
    """Where the words led: an issue, a sub-menu, "operator", or "menu" (not understood or declined:
    the keypad menu)."""
    said_checked: Mapped[bool | None]
    """True: the match was unsure and the line asked once before following it."""
    incident: Mapped[int | None]
    """The incident notice the caller heard before their queue (`incidents.id`; not a foreign
    key: a ticket outlives what it heard, as queue events outlive their tickets)."""
    # Bookkeeping of the row itself, hence the real clock rather than the call flow's `now`.
    created_at: Mapped[datetime] = mapped_column(default=_utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=_utcnow, onupdate=_utcnow)

    def __repr__(self) -> str:
        return f"Ticket(call_sid={self.call_sid!r}, reference={self.reference!r})"


class TicketChangeRow(Base):
    """One journal record the writer applied: the facts a ticket is folded from, and its history."""

    __tablename__ = "ticket_changes"
    __table_args__ = (
        Index("ix_ticket_changes_call_sid_at", "call_sid", "at"),
        # Retention (`tickets.retention`) finds the oldest records without reading the others.
        Index("ix_ticket_changes_at", "at"),
    )

    # The record's own id: a record delivered twice (a retried webhook, a writer that died before
    # acknowledging) is stored once.
    id: Mapped[str] = mapped_column(SafeString(64), primary_key=True)
    call_sid: Mapped[str] = mapped_column(SafeString(64))
    at: Mapped[datetime]
    seq: Mapped[int] = mapped_column(BigInteger)
    body: Mapped[str] = mapped_column(Text)
    """The record as the journal carried it (JSON, see `ivr.tickets.records`)."""
    written_at: Mapped[datetime] = mapped_column(default=_utcnow)


class PrunedCall(Base):
    """A call whose journal records retention deleted (`tickets.retention`): the ticket stays as it
    was folded, and the ids it was folded from are kept, so that a late repeat of one of them is
    known for what it is and a late new record is set aside rather than folded into a new ticket."""

    __tablename__ = "pruned_calls"

    call_sid: Mapped[str] = mapped_column(SafeString(64), primary_key=True)
    pruned_at: Mapped[datetime]
    # Reassign rather than mutate: SQLAlchemy does not see in-place changes to a JSON value.
    record_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    """The ids of the records deleted: the row takes about 330 bytes for a call's 5 records, which
    took about 3,100 with their indexes."""


class ReferenceBlock(Base):
    """A block of ticket reference serial numbers leased by one process (see `tickets.references`)."""

    __tablename__ = "reference_blocks"

    id: Mapped[int] = mapped_column(primary_key=True)
    leased_at: Mapped[datetime] = mapped_column(default=_utcnow)
    leased_by: Mapped[str] = mapped_column(SafeString(128))


class QueueEventRow(Base):
    """One queue event of a call (or of an agent), like a line of Asterisk's queue_log."""

    __tablename__ = "queue_events"
    __table_args__ = (
        # The reports: one queue over a time range, or one kind of event over a time range.
        Index("ix_queue_events_queue_at", "queue", "at"),
        Index("ix_queue_events_event_at", "event", "at"),
        # An event comes from one journal record (and its place in it): applied once.
        UniqueConstraint("change_id", "change_index"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Not a foreign key: agent events have no call, and a call's events may come before its ticket.
    call_sid: Mapped[str] = mapped_column(SafeString(64), index=True)
    # Indexed so that deleting old tickets does not scan the whole event log to null the links.
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL"), index=True
    )
    event: Mapped[QueueEvent] = mapped_column(QueueEventType())
    at: Mapped[datetime]
    queue: Mapped[str | None] = mapped_column(SafeString(64))
    language: Mapped[str | None] = mapped_column(SafeString(16))
    agent: Mapped[str | None] = mapped_column(SafeString(128))
    position: Mapped[int | None]
    wait_seconds: Mapped[int | None]
    talk_seconds: Mapped[int | None]
    # Reassign rather than mutate: SQLAlchemy does not see in-place changes to a JSON value.
    data: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    change_id: Mapped[str | None] = mapped_column(SafeString(64))
    change_index: Mapped[int | None]

    def __repr__(self) -> str:
        return f"QueueEventRow(call_sid={self.call_sid!r}, event={self.event!r}, at={self.at!r})"
