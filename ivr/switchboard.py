"""The steps of a call that touch the queue (Redis), the tickets (SQL) and Twilio's REST API together.

The views call these; each step is best effort where a failure must not cost the caller their call
(a Redis or database hiccup is logged and the hold loop tries again next round).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import urlencode

from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from ivr.clock import Clock
from ivr.db import Database
from ivr.flow import CallState, HoldInfo
from ivr.queue import Assignment, CallQueue, HangUp
from ivr.rules.schema import Rules
from ivr.telephony import Telephony
from ivr.tickets import events as ticket_events
from ivr.tickets import service as tickets
from ivr.tickets.changes import EventRecord, Outcome, QueueEvent, TicketChange
from ivr.twiml import state_url
from ivr.waits import estimate_wait

log = logging.getLogger(__name__)


@dataclass
class Switchboard:
    queue: CallQueue
    db: Database
    telephony: Telephony
    clock: Clock

    # --- connecting callers and agents ---------------------------------------------------------

    def dispatch(self) -> list[Assignment]:
        """Hand waiting callers to free agents and move each to their agent (atomic in Redis)."""
        try:
            assignments = self.queue.dispatch()
        except RedisError:
            log.exception("dispatch failed; the next hold round or agent change retries")
            return []
        for assignment in assignments:
            self._deliver(assignment)
        return assignments

    def _deliver(self, assignment: Assignment) -> None:
        hold = CallState("hold", assignment.language, None, assignment.queue, assignment.priority)
        if assignment.callback_number is None:
            # Without REST credentials the caller's next hold round finds the assignment instead.
            self.telephony.redirect(assignment.call_sid, state_url(hold))
            return
        our_number = self._number_called(assignment.call_sid)
        sid = None
        if our_number:
            sid = self.telephony.call(
                assignment.callback_number,
                our_number,
                state_url(replace(hold, origin=assignment.call_sid)),
                "/voice/status?" + urlencode({"origin": assignment.call_sid}),
            )
        record = EventRecord(
            QueueEvent.CALLBACKDIAL,
            assignment.queue,
            assignment.language,
            agent=assignment.agent,
            data={"result": "dialled" if sid else "failed", "to": assignment.callback_number},
        )
        self.log(assignment.call_sid, record)
        if sid is None:
            # The callback cannot be placed: free the agent; the ticket keeps the request and the
            # number, for a person to call back by hand.
            self.hang_up(assignment.call_sid)

    def _number_called(self, call_sid: str) -> str | None:
        try:
            with self.db.session() as session:
                ticket = tickets.get_ticket(session, call_sid)
                return ticket.called if ticket else None
        except SQLAlchemyError:
            log.exception("cannot read the ticket of %s", call_sid)
            return None

    def assignment(self, call_sid: str) -> Assignment | None:
        """The agent this caller has been handed to, if any."""
        try:
            return self.queue.assignment(call_sid)
        except RedisError:
            log.exception("cannot read the assignment of %s", call_sid)
            return None

    def hold_info(self, call_sid: str, state: CallState, rules: Rules) -> HoldInfo:
        """Where a holding caller stands, rejoining the queue if Redis lost them."""
        assert state.queue is not None and state.language is not None
        queue = rules.queues[state.queue]
        can_call_back = self.telephony.enabled
        try:
            place = self.queue.place(call_sid)
            if place is None:
                priority = state.priority if state.priority is not None else queue.priority
                place = self.queue.join(call_sid, state.queue, state.language, priority)
            self.queue.heartbeat(call_sid)
            agents = rules.agents_serving(state.queue, state.language)
            load = self.queue.line_load(state.queue, state.language, agents)
        except RedisError:
            log.exception("queue unavailable while %s holds", call_sid)
            return HoldInfo(position=None, can_call_back=False)
        waited = self._seconds_since(place.enqueued_at)
        estimate = estimate_wait(
            place.position,
            load.agents_available,
            load.agents_busy,
            load.recent_talk_seconds,
            queue.default_handle_time,
        )
        return HoldInfo(
            position=place.position,
            waited_seconds=waited,
            estimated_wait=estimate,
            agents_logged_in=load.agents_available + load.agents_busy,
            can_call_back=can_call_back,
        )

    def answered(self, call_sid: str) -> Assignment | None:
        """The agent picked up: the caller leaves the queue; record the wait."""
        try:
            assignment = self.queue.connected(call_sid)
        except RedisError:
            log.exception("cannot mark %s connected", call_sid)
            return None
        if assignment is None:
            return None
        wait = self._seconds_since(assignment.enqueued_at)
        try:
            self.queue.record_answered(assignment.queue, assignment.language, wait)
        except RedisError:
            log.exception("cannot record the wait of %s", call_sid)
        record = EventRecord(
            QueueEvent.CONNECT,
            assignment.queue,
            assignment.language,
            agent=assignment.agent,
            wait_seconds=wait,
        )
        self.record(
            call_sid,
            TicketChange(outcome=Outcome.ANSWERED, agent=assignment.agent, events=(record,)),
        )
        return assignment

    def conversation_ended(
        self, call_sid: str, agent: str, state: CallState, talk_seconds: int, by_caller: bool
    ) -> None:
        """The agent is free again; remember how long the conversation took."""
        assert state.queue is not None and state.language is not None
        try:
            self.queue.finish_call(agent, call_sid)
            self.queue.record_talk(state.queue, state.language, talk_seconds)
        except RedisError:
            log.exception("cannot free agent %s", agent)
        event = QueueEvent.COMPLETECALLER if by_caller else QueueEvent.COMPLETEAGENT
        record = EventRecord(
            event, state.queue, state.language, agent=agent, talk_seconds=talk_seconds
        )
        self.log(call_sid, record)
        self.dispatch()

    def not_answered(self, call_sid: str, agent: str, state: CallState) -> None:
        """The agent did not pick up: the caller goes back to the front of the line."""
        try:
            self.queue.return_to_queue(call_sid)
        except RedisError:
            log.exception("cannot requeue %s; the next hold round rejoins it", call_sid)
        record = EventRecord(QueueEvent.RINGNOANSWER, state.queue, state.language, agent=agent)
        self.record(call_sid, TicketChange(outcome=Outcome.QUEUED, events=(record,)))
        self.dispatch()

    def hang_up(self, call_sid: str) -> HangUp | None:
        """The caller's call ended: leave the queue (unless a callback keeps the place)."""
        try:
            result = self.queue.hang_up(call_sid)
        except RedisError:
            log.exception("cannot take %s out of the queue; its heartbeat will expire", call_sid)
            return None
        if result.left is not None:
            place = result.left
            waited = self._seconds_since(place.enqueued_at)
            record = EventRecord(
                QueueEvent.ABANDON,
                place.queue,
                place.language,
                position=place.position,
                wait_seconds=waited,
            )
            self.log(call_sid, record)
        if result.freed_agent is not None:
            self.dispatch()
        return result

    def agent_done_with(self, agent: str, call_sid: str) -> None:
        """Free an agent still marked busy with a call that has ended (a missed Dial action)."""
        try:
            if self.queue.agent_call(agent) == call_sid:
                self.queue.finish_call(agent, call_sid)
                self.dispatch()
        except RedisError:
            log.exception("cannot free agent %s", agent)

    def _seconds_since(self, instant: datetime) -> int:
        return max(0, round((self.clock.now() - instant).total_seconds()))

    # --- tickets ------------------------------------------------------------------------------

    def record(self, call_sid: str, change: TicketChange, token: str | None = None) -> None:
        """Apply a change to the call's ticket; a database failure is logged, not raised."""
        try:
            with self.db.session() as session:
                tickets.apply_change(session, call_sid, change, now=self.clock.now(), token=token)
        except SQLAlchemyError:
            log.exception("could not update the ticket of %s", call_sid)

    def log(self, call_sid: str, *records: EventRecord) -> None:
        """Log queue events (no ticket change); a database failure is logged, not raised."""
        try:
            with self.db.session() as session:
                ticket_events.log_events(session, call_sid, records, now=self.clock.now())
        except SQLAlchemyError:
            log.exception("could not log %s for %s", [r.event for r in records], call_sid)
