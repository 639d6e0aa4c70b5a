"""What the dashboard shows, gathered from the services: the live queues and today's figures.

Plain dictionaries of JSON-ready values: the HTML pages and `/admin/api/*` render the same data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ivr.queue import LineLoad
from ivr.rules.schema import Queue, Rules
from ivr.services import Services
from ivr.tickets.events import (
    calls_per_hour,
    incident_counts,
    queue_stats,
    speech_counts,
    voicemails_per_queue,
)
from ivr.waits import WaitEstimate, line_estimate


@dataclass(frozen=True)
class _Line:
    queue_id: str
    queue: Queue
    language: str
    load: LineLoad
    earliest: datetime | None
    """When the caller waiting longest arrived (None when nobody waits)."""


def _lines(s: Services, rules: Rules) -> Iterator[_Line]:
    """Every line with callers waiting or agents logged in, in the rules' order."""
    for queue_id, queue in rules.queues.items():
        for language in rules.language_codes:
            load = s.queue.line_load(queue_id, language)
            if load.waiting == 0 and load.agents_available + load.agents_busy == 0:
                continue
            earliest = s.queue.earliest_arrival(queue_id, language) if load.waiting else None
            yield _Line(queue_id, queue, language, load, earliest)


def _unattended(line: _Line) -> dict[str, Any] | None:
    """The banner's entry for a line with callers waiting and no agent logged in to serve it."""
    if not line.load.waiting or line.load.agents_available + line.load.agents_busy:
        return None
    return {
        "queue": line.queue_id,
        "language": line.language,
        "waiting": line.load.waiting,
        "since": None if line.earliest is None else line.earliest.isoformat(),
    }


def unattended(s: Services) -> list[dict[str, Any]]:
    """The lines where callers wait and no agent who serves them is logged in (what the
    dashboard's banner names): queue, language, how many wait and since when (ISO)."""
    return [u for line in _lines(s, s.rules.get().rules) if (u := _unattended(line)) is not None]


def live_queues(s: Services) -> dict[str, Any]:
    """Callers waiting per queue and language (lines with callers or agents), every agent, and
    the lines nobody is logged in to serve (`unattended`)."""
    rules = s.rules.get().rules
    now = s.clock.now()
    lines: list[dict[str, Any]] = []
    unserved: list[dict[str, Any]] = []
    for line in _lines(s, rules):
        load, earliest = line.load, line.earliest
        lines.append(
            {
                "queue": line.queue_id,
                "language": line.language,
                "waiting": load.waiting,
                "longest_wait_seconds": (
                    None if earliest is None else max(0, int((now - earliest).total_seconds()))
                ),
                # What a caller joining now would be told (the median).
                "estimated_wait_seconds": _median(
                    line_estimate(
                        line.queue,
                        load.waiting + 1,
                        line.queue.priority,
                        load,
                        s.switchboard.histories.get(line.queue_id, line.language),
                    )
                ),
                "agents_available": load.agents_available,
                "agents_busy": load.agents_busy,
            }
        )
        if (entry := _unattended(line)) is not None:
            unserved.append(entry)
    statuses = s.queue.agents_at_a_glance(list(rules.agents))
    agents_out = [
        {
            "agent": agent_id,
            "name": agent.name,
            "status": statuses.get(agent_id, "offline"),
            "call": s.queue.agent_call(agent_id) if statuses.get(agent_id) == "busy" else None,
        }
        for agent_id, agent in rules.agents.items()
    ]
    return {"lines": lines, "agents": agents_out, "unattended": unserved, "at": now.isoformat()}


def start_of_day(now: datetime) -> datetime:
    """Midnight (UTC) of the day `now` is in: the dashboard's "today"."""
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def today(s: Services) -> dict[str, Any]:
    """Each queue's figures since midnight UTC, and the calls per hour of the last 24 hours."""
    rules = s.rules.get().rules
    now = s.clock.now()
    since = start_of_day(now)
    targets = {queue_id: queue.service_level for queue_id, queue in rules.queues.items()}
    # The chart's last bar is the hour now is in, so the 24 bars end at the next full hour.
    chart_until = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    chart_since = chart_until - timedelta(hours=24)
    with s.db.sessions() as session:
        stats = {
            row.queue: row
            for row in queue_stats(
                session, since=since, until=now + timedelta(seconds=1), service_level=targets
            )
        }
        voicemails = voicemails_per_queue(session, since=since, until=now + timedelta(seconds=1))
        hourly = calls_per_hour(session, since=chart_since, until=chart_until)
        listening = [menu_id for menu_id, menu in rules.menus.items() if menu.listen]
        speech = speech_counts(
            session, since=since, until=now + timedelta(seconds=1), listening=listening
        )
        incidents = incident_counts(session, since=since, until=now + timedelta(seconds=1))
    queues = []
    for queue_id in [*rules.queues, *sorted(set(stats) - set(rules.queues))]:
        row = stats.get(queue_id)
        queues.append(
            {
                "queue": queue_id,
                "offered": row.offered if row else 0,
                "answered": row.answered if row else 0,
                "abandoned": row.abandoned if row else 0,
                "average_wait_seconds": row.average_wait_seconds if row else None,
                "longest_wait_seconds": row.longest_wait_seconds if row else None,
                "service_level": row.service_level if row else None,
                "service_level_target_seconds": targets.get(queue_id),
                "abandon_rate": row.abandon_rate if row else None,
                "callbacks": row.callbacks if row else 0,
                "voicemails": voicemails.get(queue_id, 0),
            }
        )
    return {
        "since": since.isoformat(),
        "at": now.isoformat(),
        "queues": queues,
        "speech": {
            "menus": listening,
            # Of the calls that reached a menu that listens, those that spoke there.
            "speech_share": _share(speech.spoke, speech.reached),
            # Of the calls that spoke, those the line asked once what they meant.
            "clarification_rate": _share(speech.asked, speech.said),
        },
        "incident_notices": {
            # Callers who heard an incident notice, and of them those who hung up after it
            # without queueing: the calls the notice saved.
            "heard": incidents.heard,
            "calls_saved": _share(incidents.saved, incidents.heard),
        },
        "last_24h": [
            {"hour": (chart_since + timedelta(hours=i)).isoformat(), "calls": count}
            for i, count in enumerate(hourly)
        ],
    }


def _share(part: int, whole: int) -> dict[str, Any]:
    """A figure with its counts: `ratio` is None when `whole` is 0 (nobody to count)."""
    return {"part": part, "whole": whole, "ratio": part / whole if whole else None}


def _median(estimate: WaitEstimate | None) -> int | None:
    return None if estimate is None else estimate.median
