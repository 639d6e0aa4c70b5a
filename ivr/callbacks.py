"""After-hours callbacks: calling back, once the team opens, the callers who asked while it was closed.

A caller who reaches a closed team may ask to be called back (`Flow._callback`): the ticket gets the
outcome `callback` and the number, and the call ends. Nothing is in any line then. A round here,
run every 30 s by every process's background threads (`ivr.background`, `ivr serve` and
`ivr worker` alike), finds those requests in the database and puts each one that is due into its
line as a place kept for a callback, exactly like the place a holding caller keeps when they ask to
be called back (`CallQueue.restore_callback`). From there the switchboard does what it does for
those: when an agent is free it places the call and logs CALLBACKDIAL (`Switchboard._deliver`), and
an unanswered call logs its final status (`Switchboard.end`). So a try is one placed call, and the
tries are counted from the ticket's events in the database, not from anything kept in Redis.

A request is due when
- its queue's team for the ticket's language is open now (`ivr.hours`, in the team's zone);
- it was asked less than `after_hours.callback_keep_days` ago, and fewer than
  `after_hours.callback_tries` calls were placed for it;
- its previous try, if any, ended unanswered at least `after_hours.callback_retry_minutes` ago (a
  try that never said how it ended, a call a voicemail picked up or whose status callback was
  lost, counts as ended `TRY_SETTLE` after it was placed).

Its place is put in the line at the time the caller asked, with the ticket's priority, so that
requests are served in the order they were made and ahead of later callers of the same priority,
and it is kept until the team closes (the sweep then removes a place no agent reached; the next
opening tries again). A request with no tries left, or asked too long ago, is given up. Each
step leaves an event on the ticket (CALLBACKQUEUED, CALLBACKGIVEUP), so that `ivr tickets show`
tells the whole story.

Several processes run the same round. Each step is claimed in Redis first (`SET NX` on a key per
call, try and opening, `CallQueue.claim_callback_step`), and only the process that claims it acts:
the database may not show a try yet for a while after it happened (the journal reaches it through
the writer), and the claim, kept until the team closes plus `CLAIM_MARGIN`, covers that while. The
key names the end of the opening too, so a try no agent reached before closing is taken again at
the next opening even by a clock that does not run at Redis's pace (a test's, the simulator's). A
Redis error skips the rest of the round, which the next round retries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from redis.exceptions import RedisError

from ivr import hours
from ivr.clock import epoch_ms
from ivr.rules.schema import Rules
from ivr.services import Services
from ivr.tickets import reads as tickets
from ivr.tickets.changes import EventRecord, QueueEvent
from ivr.tickets.reads import CallbackRequest

log = logging.getLogger(__name__)

TRY_SETTLE = timedelta(hours=1)
"""A placed try whose unanswered end was never logged counts as ended this long after it was
placed: Twilio calls a call a voicemail answered `completed`, and a status callback may be lost."""
CLAIM_MARGIN = timedelta(minutes=30)
"""A try's claim outlives the place it puts in line by this much: time for the writer to bring the
try's events to the database, so that no other process takes the same try again."""
GIVE_UP_CLAIM = timedelta(hours=1)
"""How long the claim of a give-up lasts: until the writer has stored it."""


@dataclass(frozen=True)
class Try:
    """Put the request in its line now, for try `number`, kept until `keep_until`."""

    number: int
    keep_until: datetime


@dataclass(frozen=True)
class GiveUp:
    """Stop trying: `tries` calls went unanswered, or the request is older than the keep window."""

    reason: str
    """"tries" or "expired"."""


Step = Try | GiveUp | None
"""What a request needs now; None: nothing yet (closed, a try in progress, too early to retry)."""


def next_step(request: CallbackRequest, rules: Rules, now: datetime) -> Step:
    """What one after-hours callback request needs at `now` (pure)."""
    if request.given_up or request.queue not in rules.queues:
        return None
    settings = rules.after_hours
    expires = request.asked_at + timedelta(days=settings.callback_keep_days)
    ended = None
    if request.tries:
        last = request.tries[-1]
        ended = last.ended_at or last.placed_at + TRY_SETTLE
        if now < ended:
            return None  # the try is still going on, as far as anyone knows
        if len(request.tries) >= settings.callback_tries:
            return GiveUp("tries")
    if now >= expires:
        return GiveUp("expired")
    if ended is not None and now < ended + timedelta(minutes=settings.callback_retry_minutes):
        return None
    queue = rules.queues.get(request.queue)
    if queue is None:  # removed from the live version: kept until it expires, should it come back
        return None
    team = rules.teams.get(queue.team_for(request.language))
    if team is None:
        return None
    status = hours.status(team, now)
    if not status.is_open:
        return None
    closes = status.closes_at
    return Try(len(request.tries) + 1, expires if closes is None else min(closes, expires))


def schedule_due(s: Services) -> int:
    """One round: put every after-hours callback that is due in its line (then hand them to
    free agents), and log the requests given up; how many were put in line."""
    if not s.telephony.enabled:
        return 0  # no call can be placed: the tickets keep the numbers for a person
    now = s.clock.now()
    rules = s.rules.get().rules
    # Twice the keep window: a request that expired while no round ran is still seen, and given up.
    since = now - 2 * timedelta(days=rules.after_hours.callback_keep_days)
    with s.db.sessions() as session:
        requests = tickets.after_hours_callbacks(session, since=since)
    put = due = 0
    try:
        for request in requests:
            step = next_step(request, rules, now)
            if isinstance(step, Try):
                due += 1
                put += _put_in_line(s, request, step, now, rules.after_hours.callback_tries)
            elif isinstance(step, GiveUp):
                _give_up(s, request, step)
    except RedisError as exc:
        log.warning("after-hours callbacks: Redis unavailable, round skipped (%s)", exc)
        return put  # the places put in line meanwhile are handed over by the next dispatch
    if due:
        # An agent may be free for them right now; also for a place put in line by an earlier
        # round (here or elsewhere) that could not hand it over.
        s.switchboard.dispatch()
    return put


def _put_in_line(
    s: Services, request: CallbackRequest, step: Try, now: datetime, tries: int
) -> bool:
    claim = step.keep_until - now + CLAIM_MARGIN
    if not s.queue.claim_callback_step(
        request.call_sid, f"try-{step.number}-{epoch_ms(step.keep_until)}", _seconds(claim)
    ):
        return False  # another process took this try
    placed = s.queue.restore_callback(
        request.call_sid,
        request.queue,
        request.language,
        request.priority,
        epoch_ms(request.asked_at),
        request.number,
        our_number=request.our_number,
        reference=request.reference,
        keep_until_ms=epoch_ms(step.keep_until),
        code=request.callback_code,
    )
    if placed:
        record = EventRecord(
            QueueEvent.CALLBACKQUEUED,
            request.queue,
            request.language,
            data={"try": str(step.number), "of": str(tries)},
        )
        s.switchboard.log(request.call_sid, record)
    return placed


def _give_up(s: Services, request: CallbackRequest, step: GiveUp) -> None:
    if not s.queue.claim_callback_step(request.call_sid, "give-up", _seconds(GIVE_UP_CLAIM)):
        return
    record = EventRecord(
        QueueEvent.CALLBACKGIVEUP,
        request.queue,
        request.language,
        data={"reason": step.reason, "tries": str(len(request.tries))},
    )
    s.switchboard.log(request.call_sid, record)
    log.info(
        "after-hours callback of ticket %s given up (%s, %d tries)",
        request.reference,
        step.reason,
        len(request.tries),
    )


def _seconds(span: timedelta) -> int:
    return max(1, int(span.total_seconds()))
