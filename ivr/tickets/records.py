"""Journal records: what one webhook learned about one call, as a line of JSON in the ticket journal.

A webhook never writes the database. It appends one `JournalRecord` to the journal (a Redis stream, or
a local spool file when Redis is unreachable) and answers; a writer later turns the records into ticket
rows (`ivr.tickets.projection`). Records are facts with a time, not instructions: applying one twice or
out of order gives the same ticket, which is what makes the journal safe to retry and to replay.

Pure: no database and no Redis here.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from ivr.tickets.changes import LATEST_WINS, EventRecord, Outcome, QueueEvent, TicketChange

FORMAT_VERSION = 1
"""The version every record is written with: the lowest that can express what it holds (all of it,
today). Bump `READS_UP_TO`, and write the new version only for the records that need it, when a
record gains something an older reader would misread if it took it for version 1: a field whose
absence means something else, a new meaning for an existing one. A new ticket field, event name or
outcome needs no bump: an older reader holds a record naming one for a newer process
(`NewerRecord`), which reads it. See docs/operators/upgrading.md."""

READS_UP_TO = 1
"""The highest record version this code reads; a record above it waits for a newer process."""

NO_CALL = ""
"""The call SID of records that belong to no call: agent logins and logouts."""


class BadRecord(ValueError):
    """A journal line that is not a record at all (not JSON, no id, a wrong type): it is set aside
    for an operator, never applied."""


class NewerRecord(ValueError):
    """A record a newer release wrote that this code cannot read: its version is above
    `READS_UP_TO`, or it names a ticket field, event or outcome this code does not know (a newer
    release that did not bump the version). It is left for a newer process, not rejected."""

    def __init__(self, version: int, reason: str) -> None:
        super().__init__(reason)
        self.version = version
        """The version a process must read to take it: the record's own, or one above ours."""


@dataclass(frozen=True)
class CallEnd:
    """Twilio's final status callback for a call."""

    status: str
    duration: int | None = None


@dataclass(frozen=True)
class JournalRecord:
    """One webhook's facts about one call (or an agent event), with the instant they happened."""

    id: str
    """Unique; derived from Twilio's idempotency token when there is one, so a retried webhook writes
    the same record again and it is applied once."""
    call_sid: str
    at: datetime
    seq: int = field(default_factory=time.time_ns)
    """Orders records of the same instant (a frozen test clock, one millisecond); wall-clock ns."""
    reference: str | None = None
    """The ticket reference the caller was given (and may hear read back)."""
    caller: str | None = None
    called: str | None = None
    change: TicketChange = field(default_factory=TicketChange)
    end: CallEnd | None = None

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("a journal record needs an aware datetime")

    def to_json(self) -> str:
        """The record as one line of ASCII JSON: nothing a caller sent (a line or paragraph
        separator, a NUL) can break the line, wherever it is read back (spool, log, replay)."""
        body: dict[str, Any] = {
            "v": FORMAT_VERSION,
            "id": self.id,
            "call": self.call_sid,
            "at": self.at.isoformat(),
            "seq": self.seq,
        }
        for name, value in (("ref", self.reference), ("from", self.caller), ("to", self.called)):
            if value:
                body[name] = value
        change = _change_body(self.change)
        if change:
            body["change"] = change
        if self.end is not None:
            body["end"] = {"status": self.end.status, "duration": self.end.duration}
        return json.dumps(body, ensure_ascii=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> JournalRecord:
        """Parse a line written by `to_json` of this release or an older one; `NewerRecord` when
        a newer release wrote something this code cannot read, `BadRecord` when it is no record."""
        try:
            body = json.loads(text)
            if not isinstance(body, dict):
                raise BadRecord("not a journal record")
            version = body.get("v")
            if type(version) is not int or version < 1:
                raise BadRecord(f"not a journal record version: {version!r}")
            if version > READS_UP_TO:
                raise NewerRecord(
                    version, f"version {version} record (this code reads {READS_UP_TO})"
                )
            end = body.get("end")
            return cls(
                id=_text(body["id"]),
                call_sid=str(body["call"]),
                at=datetime.fromisoformat(body["at"]),
                seq=int(body["seq"]),
                reference=_optional(body.get("ref")),
                caller=_optional(body.get("from")),
                called=_optional(body.get("to")),
                change=_change_from(body.get("change") or {}),
                end=None if end is None else CallEnd(str(end["status"]), _int(end.get("duration"))),
            )
        except (BadRecord, NewerRecord):
            raise
        except _Unknown as exc:
            # Written as a version this code reads, yet naming what it does not know: a newer
            # release wrote it without bumping the version. Leave it for one that knows the name.
            raise NewerRecord(READS_UP_TO + 1, f"written by a newer release: {exc}") from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise BadRecord(f"unreadable journal record: {exc!r}") from exc


def record_id(token: str | None, purpose: str) -> str:
    """A record id: the same for every retry of one Twilio webhook (same idempotency token), else new."""
    if token:
        return hashlib.sha256(f"{purpose}\n{token}".encode()).hexdigest()[:32]
    return uuid.uuid4().hex


_SCALARS = ("language", "menu_step", "verified", *LATEST_WINS)


def _change_body(change: TicketChange) -> dict[str, Any]:
    body: dict[str, Any] = {
        name: getattr(change, name) for name in _SCALARS if getattr(change, name) is not None
    }
    if change.outcome is not None:
        body["outcome"] = change.outcome.value
    if change.queued:
        body["queued"] = True
    if change.locked:
        body["locked"] = True
    if change.events:
        body["events"] = [_event_body(e) for e in change.events]
    return body


def _change_from(body: dict[str, Any]) -> TicketChange:
    known = {f.name for f in fields(TicketChange)}
    unknown = set(body) - known
    if unknown:
        raise _Unknown(f"unknown ticket fields {sorted(unknown)}")
    values: dict[str, Any] = {name: body[name] for name in _SCALARS if body.get(name) is not None}
    for name in ("priority", "recording_duration", "satisfaction", "incident"):
        if name in values:
            values[name] = int(values[name])
    if not isinstance(values.get("said_checked", False), bool):
        # A string "false" would read as true on the ticket: only JSON's own booleans are kept.
        raise BadRecord(f"said_checked must be true or false, not {values['said_checked']!r}")
    if body.get("outcome") is not None:
        values["outcome"] = _known(Outcome, body["outcome"], "outcome")
    return TicketChange(
        **values,
        queued=bool(body.get("queued")),
        locked=bool(body.get("locked")),
        events=tuple(_event_from(e) for e in body.get("events") or ()),
    )


def _event_body(record: EventRecord) -> dict[str, Any]:
    body: dict[str, Any] = {"event": record.event.value}
    for name in ("queue", "language", "agent", "position", "wait_seconds", "talk_seconds"):
        value = getattr(record, name)
        if value is not None:
            body[name] = value
    if record.data:
        body["data"] = dict(record.data)
    return body


def _event_from(body: dict[str, Any]) -> EventRecord:
    return EventRecord(
        _known(QueueEvent, body["event"], "queue event"),
        queue=_optional(body.get("queue")),
        language=_optional(body.get("language")),
        agent=_optional(body.get("agent")),
        position=_int(body.get("position")),
        wait_seconds=_int(body.get("wait_seconds")),
        talk_seconds=_int(body.get("talk_seconds")),
        data={str(k): str(v) for k, v in (body.get("data") or {}).items()},
    )


class _Unknown(Exception):
    """A well-formed name this code does not know (a ticket field, an event, an outcome)."""


_E = TypeVar("_E", bound=StrEnum)


def _known(kind: type[_E], value: Any, what: str) -> _E:
    if not isinstance(value, str):
        raise BadRecord(f"{what} must be a string, not {value!r}")
    try:
        return kind(value)
    except ValueError:
        raise _Unknown(f"unknown {what} {value!r}") from None


def _optional(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise BadRecord(f"expected a non-empty string, got {value!r}")
    return value


def _int(value: Any) -> int | None:
    return None if value is None else int(value)
