"""Queue events (Asterisk queue_log style): a call's history and per-queue statistics.

Events reach the table through the ticket journal: a webhook journals them with the call's other facts
and the writer stores them (`writes.apply_records`), linked to the call's ticket and taking its queue
and language when they name none. Like the service, every function here is one unit of work on the
session it is given and commits before returning.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Text, case, cast, false, func, literal, or_, select
from sqlalchemy.orm import Session

from ivr.tickets.changes import Outcome, QueueEvent
from ivr.tickets.models import QueueEventRow, Ticket
from ivr.tickets.unit_of_work import unit_of_work
from ivr.waits import LineHistory

DEFAULT_SERVICE_LEVEL_SECONDS = 60
"""Answer-time target of a queue that `queue_stats` is given no target for."""


@dataclass(frozen=True)
class QueueStats:
    """What one queue did over a time range; rates are None when their denominator is zero."""

    queue: str
    offered: int  # ENTERQUEUE
    answered: int  # CONNECT
    abandoned: int  # ABANDON
    callbacks: int  # CALLBACK
    exited: int  # EXITWITHKEY + EXITWITHTIMEOUT
    refused: int  # EXITFULL + EXITEMPTY: never entered, so not part of `offered`
    average_wait_seconds: float | None  # of CONNECT wait_seconds
    longest_wait_seconds: int | None  # of CONNECT wait_seconds
    average_talk_seconds: float | None  # of COMPLETECALLER / COMPLETEAGENT talk_seconds
    abandon_rate: float | None  # abandoned / offered
    service_level: float | None  # CONNECTs within the queue's target / (answered + abandoned)


def events_of(session: Session, call_sid: str) -> list[QueueEventRow]:
    """The events of a call, oldest first (events logged together keep their order)."""
    query = (
        select(QueueEventRow)
        .where(QueueEventRow.call_sid == call_sid)
        .order_by(QueueEventRow.at, QueueEventRow.id)
    )
    with unit_of_work(session):
        return list(session.scalars(query))


def queue_stats(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    service_level: Mapping[str, int] | int = DEFAULT_SERVICE_LEVEL_SECONDS,
    queue: str | None = None,
) -> list[QueueStats]:
    """Per-queue statistics of events in [since, until), by queue name; targets in seconds."""
    # A queue gets a row when it has any event in the range (even only an agent's login); events
    # without a queue have no row to go to. Queues missing from a `service_level` mapping get
    # DEFAULT_SERVICE_LEVEL_SECONDS, so a queue added to the rules still gets a figure.
    e = QueueEventRow
    connect = e.event == QueueEvent.CONNECT
    target = _target(service_level)
    query = (
        select(
            e.queue,
            _count(e.event == QueueEvent.ENTERQUEUE).label("offered"),
            _count(connect).label("answered"),
            _count(e.event == QueueEvent.ABANDON).label("abandoned"),
            _count(e.event == QueueEvent.CALLBACK).label("callbacks"),
            _count(e.event.in_([QueueEvent.EXITWITHKEY, QueueEvent.EXITWITHTIMEOUT])).label(
                "exited"
            ),
            _count(e.event.in_([QueueEvent.EXITFULL, QueueEvent.EXITEMPTY])).label("refused"),
            func.avg(case((connect, e.wait_seconds))).label("average_wait"),
            func.max(case((connect, e.wait_seconds))).label("longest_wait"),
            func.avg(
                case(
                    (
                        e.event.in_([QueueEvent.COMPLETECALLER, QueueEvent.COMPLETEAGENT]),
                        e.talk_seconds,
                    )
                )
            ).label("average_talk"),
            _count(connect & (e.wait_seconds <= target)).label("within_target"),
        )
        .where(e.queue.is_not(None), e.at >= since, e.at < until)
        .group_by(e.queue)
        .order_by(e.queue)
    )
    if queue is not None:
        query = query.where(e.queue == queue)
    with unit_of_work(session):
        rows = session.execute(query).all()
    return [
        QueueStats(
            queue=row.queue,
            offered=row.offered,
            answered=row.answered,
            abandoned=row.abandoned,
            callbacks=row.callbacks,
            exited=row.exited,
            refused=row.refused,
            average_wait_seconds=_float(row.average_wait),
            longest_wait_seconds=row.longest_wait,
            average_talk_seconds=_float(row.average_talk),
            abandon_rate=_ratio(row.abandoned, row.offered),
            service_level=_ratio(row.within_target, row.answered + row.abandoned),
        )
        for row in rows
    ]


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    # COUNT of a CASE without ELSE counts the matching rows; portable where FILTER is not.
    return func.count(case((condition, 1)))


def _target(service_level: Mapping[str, int] | int) -> ColumnElement[int]:
    if isinstance(service_level, int):
        return literal(service_level)
    if not service_level:
        return literal(DEFAULT_SERVICE_LEVEL_SECONDS)
    return case(dict(service_level), value=QueueEventRow.queue, else_=DEFAULT_SERVICE_LEVEL_SECONDS)


def _float(value: Any) -> float | None:
    # PostgreSQL's AVG of integers is a Decimal, SQLite's a float.
    return None if value is None else float(value)


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def calls_per_hour(session: Session, *, since: datetime, until: datetime) -> list[int]:
    """Calls that arrived in each hour from `since` (aware) up to `until`, oldest hour first; for
    the admin dashboard's chart. One query of the arrival times, bucketed here (portable)."""
    hours = max(0, math.ceil((until - since).total_seconds() / 3600))
    counts = [0] * hours
    query = select(Ticket.arrived_at).where(Ticket.arrived_at >= since, Ticket.arrived_at < until)
    with unit_of_work(session):
        arrivals = list(session.scalars(query))
    for arrived in arrivals:
        if arrived.tzinfo is None:  # SQLite hands back naive UTC
            arrived = arrived.replace(tzinfo=UTC)
        index = int((arrived - since).total_seconds() // 3600)
        if 0 <= index < hours:
            counts[index] += 1
    return counts


def voicemails_per_queue(session: Session, *, since: datetime, until: datetime) -> dict[str, int]:
    """Tickets that arrived in [since, until) and ended in a voicemail, by queue (the queue they
    were in or headed for); the figure `queue_stats` has no event for."""
    query = (
        select(Ticket.queue, func.count())
        .where(
            Ticket.outcome == Outcome.VOICEMAIL,
            Ticket.queue.is_not(None),
            Ticket.arrived_at >= since,
            Ticket.arrived_at < until,
        )
        .group_by(Ticket.queue)
    )
    with unit_of_work(session):
        return {queue: count for queue, count in session.execute(query).all() if queue}


@dataclass(frozen=True)
class SpeechCounts:
    """How callers used the menus that listen (`ivr.speech`) over a time range of arrivals."""

    reached: int
    """Calls whose menu path has a step at a menu that listens: a key or words said there."""
    spoke: int
    """Of those, calls that said something (the ticket has `said`)."""
    said: int
    """Calls that said something at all (`said`), whatever the menus listen to now."""
    asked: int
    """Of those, calls the line asked once what they meant (`said_checked`)."""


def speech_counts(
    session: Session, *, since: datetime, until: datetime, listening: Iterable[str]
) -> SpeechCounts:
    """`SpeechCounts` of the calls that arrived in [since, until); `listening`: the ids of the
    menus that listen in the current rules. One query, counted in the database."""
    # A step at menu "main" is the JSON string "main:<key or said>": its text has `"main:` in it
    # (menu ids are plain names; the autoescape keeps a `_` in one from matching any character).
    path = cast(Ticket.menu_path, Text)
    steps = [path.contains(f'"{menu}:', autoescape=True) for menu in listening]
    reached = or_(*steps) if steps else false()
    said = Ticket.said.is_not(None)
    query = select(
        _count(reached).label("reached"),
        _count(reached & said).label("spoke"),
        _count(said).label("said"),
        _count(said & Ticket.said_checked.is_(True)).label("asked"),
    ).where(Ticket.arrived_at >= since, Ticket.arrived_at < until)
    with unit_of_work(session):
        row = session.execute(query).one()
    return SpeechCounts(reached=row.reached, spoke=row.spoke, said=row.said, asked=row.asked)


@dataclass(frozen=True)
class IncidentCounts:
    """What incident notices (`ivr incident start`) did over a time range of arrivals."""

    heard: int
    """Calls that heard an incident notice before their queue (the ticket has `incident`)."""
    saved: int
    """Of those, calls that hung up after it without queueing: calls the notice answered, that
    would otherwise have waited for an agent ("calls saved")."""


def incident_counts(session: Session, *, since: datetime, until: datetime) -> IncidentCounts:
    """`IncidentCounts` of the calls that arrived in [since, until). One query."""
    heard = Ticket.incident.is_not(None)
    # Ended, never queued, and nothing else settled it (a voicemail, a closed team's offer):
    # the writer settles such an end as abandoned.
    saved = heard & Ticket.queued_at.is_(None) & (Ticket.outcome == Outcome.ABANDONED)
    query = select(_count(heard).label("heard"), _count(saved).label("saved")).where(
        Ticket.arrived_at >= since, Ticket.arrived_at < until
    )
    with unit_of_work(session):
        row = session.execute(query).one()
    return IncidentCounts(heard=row.heard, saved=row.saved)


TALK_SAMPLES = 200
"""Conversations a line's handling-time distribution is read from (the newest)."""
HISTORY_DAYS = 7
"""How far back the abandonment and arrival rates of a line are read."""
LONGEST_WAIT_SECONDS = 4 * 3600
"""Longer waits are callbacks kept overnight, not time spent holding: left out of the patience."""


Line = tuple[str, str]
"""(queue, language)."""


def line_histories(session: Session, now: datetime) -> dict[Line, LineHistory]:
    """What the database says about every line that has queue events, for the `live` wait
    estimate (`ivr.waits`): its newest `TALK_SAMPLES` conversations' lengths, its abandonment rate
    per second waited over the last `HISTORY_DAYS`, and how often callers of each priority join
    it, the higher of the last hour's rate and the rate at this hour of the day over the last
    `HISTORY_DAYS`. Three queries for all lines together."""
    e = QueueEventRow
    since = now - timedelta(days=HISTORY_DAYS)
    newest = (
        select(
            e.queue,
            e.language,
            e.talk_seconds,
            func.row_number()
            .over(partition_by=(e.queue, e.language), order_by=(e.at.desc(), e.id.desc()))
            .label("n"),
        )
        .where(
            e.event.in_((QueueEvent.COMPLETECALLER, QueueEvent.COMPLETEAGENT)),
            e.talk_seconds > 0,
            e.queue.is_not(None),
            e.language.is_not(None),
        )
        .subquery()
    )
    with unit_of_work(session):
        talks = session.execute(
            select(newest.c.queue, newest.c.language, newest.c.talk_seconds).where(
                newest.c.n <= TALK_SAMPLES
            )
        ).all()
        waited = session.execute(
            select(e.queue, e.language, e.event, func.count(), func.sum(e.wait_seconds))
            .where(
                e.event.in_((QueueEvent.CONNECT, QueueEvent.ABANDON)),
                e.at >= since,
                e.wait_seconds <= LONGEST_WAIT_SECONDS,
            )
            .group_by(e.queue, e.language, e.event)
        ).all()
        joins = session.execute(
            select(e.queue, e.language, e.at, Ticket.priority)
            .join(Ticket, Ticket.call_sid == e.call_sid)
            .where(e.event == QueueEvent.ENTERQUEUE, e.at >= since)
        ).all()
    talk_seconds: dict[Line, list[float]] = {}
    for queue, language, seconds in talks:
        talk_seconds.setdefault((queue, language), []).append(float(seconds))
    abandoned: dict[Line, int] = {}
    seconds_waited: dict[Line, int] = {}
    for queue, language, event, count, total in waited:
        if queue is None or language is None:
            continue
        line = (queue, language)
        if event == QueueEvent.ABANDON:
            abandoned[line] = abandoned.get(line, 0) + int(count)
        seconds_waited[line] = seconds_waited.get(line, 0) + int(total or 0)
    joined: dict[Line, list[tuple[datetime, int]]] = {}
    for queue, language, at, priority in joins:
        if queue is not None and language is not None:
            joined.setdefault((queue, language), []).append((at, int(priority or 0)))
    histories: dict[Line, LineHistory] = {}
    for line in {*talk_seconds, *seconds_waited, *joined}:
        lately, usual = _arrival_rates(joined.get(line, []), now)
        histories[line] = LineHistory(
            talk_seconds=tuple(talk_seconds.get(line, ())),
            abandon_rate=(
                abandoned.get(line, 0) / seconds_waited[line] if seconds_waited.get(line) else 0.0
            ),
            arrivals_per_second=lately,
            usual_arrivals_per_second=usual,
        )
    return histories


def _arrival_rates(
    joins: Sequence[tuple[datetime, int]], now: datetime
) -> tuple[dict[int, float], dict[int, float]]:
    """By priority, in one pass over the joins: the rate lately (the higher of the last hour's and
    the usual one) and the usual rate (at this hour of the day over the last `HISTORY_DAYS`)."""
    last_hour: dict[int, int] = {}
    same_hour: dict[int, int] = {}
    days: set[Any] = set()
    for at, priority in joins:
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        if now - at <= timedelta(hours=1):
            last_hour[priority] = last_hour.get(priority, 0) + 1
        if at.hour == now.hour and at.date() != now.date():
            same_hour[priority] = same_hour.get(priority, 0) + 1
            days.add(at.date())
    usual = {p: n / (len(days) * 3600) for p, n in same_hour.items()}
    rates = {p: n / 3600 for p, n in last_hour.items()}
    for p, rate in usual.items():
        rates[p] = max(rates.get(p, 0.0), rate)
    return rates, usual
