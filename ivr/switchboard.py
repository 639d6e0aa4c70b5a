"""Applies what the call flow decided: the ticket journal, the hold queue (Redis), Twilio's REST API
and texts to callers (`ivr.texts`).

The one place a decision takes effect (views are parse -> flow -> `apply` -> render; the agent line and
the agent API use it too). Nothing here waits on the database: ticket facts go to the journal
(`ivr.tickets.journal`, a local spool shipped to Redis), which a writer takes to the database later. A Redis
failure is logged and the call goes on: a caller on hold keeps their place in the URL state until the
next round finds Redis again.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from urllib.parse import urlencode

from redis.exceptions import RedisError

from ivr.clock import Clock, epoch_ms
from ivr.flow import CallState, Decision, HoldInfo, TextMessage
from ivr.queue import AgentStatus, Assignment, CallQueue, HangUp, LineLoad, NewerEntry, Place
from ivr.rules.schema import Queue, Rules
from ivr.signing import Signer
from ivr.telephony import Telephony
from ivr.texts import Texts
from ivr.tickets.changes import EventRecord, Outcome, QueueEvent, TicketChange
from ivr.tickets.journal import Journal
from ivr.tickets.records import NO_CALL, CallEnd, JournalRecord, record_id
from ivr.twiml import NOTICE, state_url
from ivr.waits import (
    LineHistories,
    LineHistory,
    WaitEstimate,
    line_estimate,
    sharing_agents,
)

log = logging.getLogger(__name__)

REMEMBERED_REFERENCES = 10_000
"""Calls whose reference this process remembers itself (for retries while Redis is away)."""


@dataclass(frozen=True)
class Call:
    """The fields every Twilio voice webhook carries, and the ticket it belongs to."""

    sid: str
    number: str | None
    called: str | None
    token: str
    """The request's fingerprint (`ivr.web.inbound.arrive`): the same for Twilio's retries of one webhook
    and for any replay of it, so what it journals counts once."""
    ticket_sid: str = ""
    """Whose ticket and place this is: a callback we placed carries the original call's sid."""
    reference: str | None = None
    """The ticket reference: carried in the webhook URLs, or given out by this request."""
    new_reference: bool = False
    """The reference was given out by this request and must be journaled."""
    called_back: bool = False
    """This is a callback we placed (its `From` is our number, its `To` the caller's)."""
    callback_code: str | None = None
    """On the first webhook of a callback we placed: the callback code its URL carries, which the
    caller hears before anything else (`Flow.open_callback`); None on every other request."""
    notice: int | None = None
    """The incident notice the call heard (its id), as its URL carries it (`Caller.notice`)."""
    rules_version: int | None = None
    """The rules version the call hears until it ends (`LiveRules.for_call`): carried in its URLs."""
    hands_back: bool = False
    """This webhook answers the caller's call and may still hand it back to the proxy
    (`ivr.web.inbound.HAND_BACKS`): a queue entry or agent a newer release wrote raises `NewerEntry` out
    of the switchboard, before anything is journaled, instead of going on as when Redis is away."""

    @property
    def owner(self) -> str:
        return self.ticket_sid or self.sid

    @property
    def their_number(self) -> str | None:
        """The caller's number: who called us, or whom our callback called."""
        return self.called if self.called_back else self.number

    @property
    def our_number(self) -> str | None:
        """Our number on this call: the one the caller called, or the one our callback came from."""
        return self.number if self.called_back else self.called

    def carry(self) -> dict[str, str]:
        """What every webhook URL of this call carries (see `twiml.render`)."""
        return carried(self.reference, self.notice, self.rules_version)


def hand_back_newer(call: Call, error: RedisError) -> None:
    """Raise `error` again when it is a newer release's queue entry or agent (`NewerEntry`) and the
    webhook may still hand the call back to the proxy (`Call.hands_back`); otherwise the caller
    goes on as when Redis is away, and the entry stays for a newer process."""
    if isinstance(error, NewerEntry) and call.hands_back:
        raise error


def carried(reference: str | None, notice: int | None, rules_version: int | None) -> dict[str, str]:
    """What every webhook URL of a call carries besides its state: the ticket reference, the
    incident notice it heard and its rules version, where known."""
    carry = {"ref": reference} if reference else {}
    if notice is not None:
        carry[NOTICE] = str(notice)
    if rules_version is not None:
        carry["rv"] = str(rules_version)
    return carry


@dataclass(frozen=True)
class Turn:
    """One round of holding: the agent whose turn it is, or where the caller stands."""

    agent: str | None
    info: HoldInfo
    ended: bool = False
    """The call has ended (its status callback came before this late or replayed poll)."""


@dataclass(frozen=True)
class EstimateMade:
    """One hold round's wait estimate and everything it was made from (`Switchboard.on_estimate`)."""

    call_sid: str
    queue: Queue
    place: Place
    load: LineLoad
    history: LineHistory | None
    estimate: WaitEstimate | None


@dataclass
class Switchboard:
    queue: CallQueue
    journal: Journal
    telephony: Telephony
    clock: Clock
    signer: Signer
    histories: LineHistories = field(default_factory=LineHistories)
    """What the database says about each line, for the `live` wait estimate (kept fresh by the
    background database thread; empty until then)."""
    texts: Texts | None = None
    """Sends the texts decisions ask for (None: `Texts` over `telephony`)."""
    on_estimate: Callable[[EstimateMade], None] | None = None
    """Told of every hold round's estimate (the load simulator pairs each with the wait that
    followed, and compares other estimators on the same line state)."""
    _references: OrderedDict[str, str] = field(default_factory=OrderedDict, repr=False)
    _references_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.texts is None:
            self.texts = Texts(self.telephony)

    # --- ticket references ------------------------------------------------------------------------

    def reference_for(self, call_sid: str, new: Callable[[], str | None]) -> str | None:
        """The ticket reference of a call whose URL carries none: the one an earlier try of this
        webhook was given (Twilio retries a webhook it got no answer to in time, perhaps on another
        instance), else a new one from `new`. Redis keeps which; while it is away, this process."""
        with self._references_lock:
            known = self._references.get(call_sid)
        if known is not None:
            return known
        reference = new()
        if reference is None:
            return None
        try:
            reference = self.queue.claim_reference(call_sid, reference)
        except RedisError:
            log.warning("cannot tell whether call %s has a reference; keeping it here", call_sid)
        with self._references_lock:
            self._references[call_sid] = reference
            while len(self._references) > REMEMBERED_REFERENCES:
                self._references.popitem(last=False)
        return reference

    # --- decisions ----------------------------------------------------------------------------

    def apply(self, call: Call, decision: Decision, *, always: bool = False) -> None:
        """Journal what the decision records, move the caller in the queue, serve waiting callers.

        A record is journaled when the decision changes the ticket, when this request gave out the
        ticket reference, or `always` (the first webhook of a call, which creates its ticket).
        """
        sid = call.owner
        assignments: tuple[Assignment, ...] = ()
        try:
            if decision.leave:
                self.queue.leave(sid)
            if decision.join:
                join = decision.join
                if call.rules_version is not None:  # for the URL an agent's turn moves it to
                    self.queue.pin_rules_version(sid, call.rules_version)
                # Joining and handing callers to free agents (this one too) in one round trip.
                _, assignments = self.queue.enter(
                    sid,
                    join.queue,
                    join.language,
                    join.priority,
                    enqueued_ms=join.since,
                    leg=call.sid,  # a late or replayed webhook of an ended call queues nothing
                )
            if decision.callback_number:
                self.queue.request_callback(
                    sid,
                    decision.callback_number,
                    our_number=call.our_number,
                    reference=call.reference,
                    code=decision.ticket.callback_code,
                )
        except RedisError as error:
            hand_back_newer(call, error)  # before the journal: the handed-back request journals
            log.exception("queue change for %s failed; the hold loop will retry", sid)
        if always or call.new_reference or not decision.ticket.is_empty():
            self._journal(call, decision.ticket)
        for assignment in assignments:
            self._deliver(assignment)
        if decision.callback_number:
            self.dispatch()  # an agent may be free for this caller right now
        if decision.text is not None:
            self._text(call, decision.text)

    def _text(self, call: Call, message: TextMessage) -> None:
        """Hand the text over to be sent (`Texts`), once per call: Twilio's retries and any replay
        of the request send nothing more. When Redis cannot tell, it is sent: a caller would
        rather have their ticket number twice than not at all."""
        if not self.telephony.enabled or not call.our_number:
            return
        try:
            first = self.queue.claim_text(call.owner)
        except RedisError:
            log.warning("cannot tell whether call %s was texted; texting it", call.owner)
            first = True
        if first:
            assert self.texts is not None
            self.texts.send(message.to, call.our_number, message.body)

    def end(self, call: Call, status: str, duration: int | None) -> None:
        """The call ended (Twilio's final status callback): leave the queue, close the ticket.

        A caller who hangs up while waiting, or after an agent was assigned but before the agent
        answered, abandoned the line: journaled as ABANDON with the seconds since they joined it
        (the second kind has no position, names the agent being rung and says stage
        "connecting"). A callback we were placing that ends unanswered is a CALLBACKDIAL, not
        an abandonment."""
        sid = call.owner
        events: list[EventRecord] = []
        if sid != call.sid and status != "completed":
            # The callback we placed was not answered: the agent waiting for it is freed below.
            events.append(EventRecord(QueueEvent.CALLBACKDIAL, data={"result": status}))
        gone = self._hang_up(sid, leg=call.sid)
        if gone is not None and gone.left is not None:
            place = gone.left
            events.append(
                EventRecord(
                    QueueEvent.ABANDON,
                    place.queue,
                    place.language,
                    position=place.position,
                    wait_seconds=self._seconds_since(place.enqueued_at),
                )
            )
        elif gone is not None and gone.assigned is not None:
            assigned = gone.assigned
            if assigned.callback_number is None:
                # Held no place any more (position None): the agent was being rung.
                events.append(
                    EventRecord(
                        QueueEvent.ABANDON,
                        assigned.queue,
                        assigned.language,
                        agent=assigned.agent,
                        wait_seconds=self._seconds_since(assigned.enqueued_at),
                        data={"stage": "connecting"},
                    )
                )
        change = TicketChange(events=tuple(events))
        self._journal(call, change, purpose="end", end=CallEnd(status, duration))

    def first_time(self, call: Call) -> bool:
        """True unless this very request (Twilio's retry, or a replay) already took effect; True
        when Redis cannot tell (what the request does needs Redis anyway)."""
        try:
            return self.queue.first_time(call.token)
        except RedisError:
            log.warning("cannot tell whether %s's request is new; taking it as new", call.sid)
            return True

    # --- holding and connecting ----------------------------------------------------------------

    def hold_round(self, call: Call, state: CallState, rules: Rules) -> Turn:
        """One round of holding in one Redis round trip: whose turn it is, and where the caller stands.

        Rejoins a caller whom Redis lost (with the arrival time and priority the URL carries) and
        hands waiting callers to free agents on the way (writes; see `CallQueue.hold_round`)."""
        assert state.queue is not None and state.language is not None
        queue = rules.queues[state.queue]
        priority = state.priority if state.priority is not None else queue.priority
        since = state.since if state.since is not None else epoch_ms(self.clock.now())
        shares = rules.shared_lines(state.queue, state.language)
        try:
            round_ = self.queue.hold_round(
                call.owner,
                state.queue,
                state.language,
                priority,
                since,
                leg=call.sid,
                sharing=list(shares),
            )
        except RedisError as error:
            hand_back_newer(call, error)
            log.exception("queue unavailable while %s holds", call.owner)
            return Turn(None, HoldInfo(position=None, can_call_back=False))
        if round_.ended:
            return Turn(None, HoldInfo(position=None, can_call_back=False), ended=True)
        for assignment in round_.dispatched:
            if assignment.call_sid != call.owner:
                self._deliver(assignment)
        if round_.assignment is not None:
            return Turn(round_.assignment.agent, HoldInfo(position=0))
        place, load = round_.place, round_.load
        if place is None:
            return Turn(None, HoldInfo(position=None, can_call_back=False))
        history = self.histories.get(place.queue, place.language)
        shared = sharing_agents(shares, self.histories, history)
        # Callers of the other lines our agents serve who go first, each with our share of them.
        elsewhere = [
            (count, shares[line]) for line, count in round_.waiting_before.items() if count
        ]
        estimate = line_estimate(queue, place.position, place.priority, load, shared, elsewhere)
        if self.on_estimate is not None:
            self.on_estimate(EstimateMade(call.owner, queue, place, load, history, estimate))
        return Turn(
            None,
            HoldInfo(
                position=place.position,
                waited_seconds=self._seconds_since(place.enqueued_at),
                estimate=estimate,
                agents_logged_in=load.agents_available + load.agents_busy,
                can_call_back=self.telephony.enabled,
                rejoined=round_.rejoined,
            ),
        )

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
        hold = CallState(
            "hold",
            assignment.language,
            None,
            assignment.queue,
            assignment.priority,
            since=epoch_ms(assignment.enqueued_at),
        )
        carry = {"ref": assignment.reference} if assignment.reference else {}
        owner, now = assignment.call_sid, self.clock.now().timestamp()
        if assignment.callback_number is None:
            # Without REST credentials the caller's next hold round finds the assignment instead.
            url = self.signer.seal(state_url(hold, carry), owner, now)
            self.telephony.redirect(assignment.call_sid, url)
            return
        sid = None
        if assignment.our_number:
            # The callback's first webhook opens with the code the caller was given (a request
            # made before codes were given has none stored: it gets one, which proves nothing
            # but costs nothing). Only this first URL carries it: the opening is said once.
            code = assignment.callback_code or self.signer.callback_code(owner)
            # The new call's sid is not known yet: its URLs are the original call's (`origin`).
            sid = self.telephony.call(
                assignment.callback_number,
                assignment.our_number,
                self.signer.seal(
                    state_url(replace(hold, origin=owner), {**carry, "code": code}), owner, now
                ),
                self.signer.seal("/voice/status?" + urlencode({"origin": owner}), owner, now),
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
            self._hang_up(assignment.call_sid)

    def answered(self, call: Call) -> Assignment | None:
        """The agent picked up: the caller leaves the queue; record the wait, and for a caller
        who held, how long the agent took from being assigned to answering (the line's connect
        history, for the wait estimate)."""
        sid = call.owner
        try:
            assignment = self.queue.connected(sid)
        except RedisError:
            log.exception("cannot mark %s connected", sid)
            return None
        if assignment is None:
            return None
        wait = self._seconds_since(assignment.enqueued_at)
        try:
            if assignment.callback_number is None:
                # Only callers who held feed the line's wait history (the estimate callers on
                # hold hear): a callback's wait counts from when it was asked, overnight perhaps.
                self.queue.record_answered(assignment.queue, assignment.language, wait)
                connect = self._seconds_since(assignment.assigned_at)
                self.queue.record_connect(assignment.queue, assignment.language, connect)
        except RedisError:
            log.exception("cannot record the wait and connect time of %s", sid)
        record = EventRecord(
            QueueEvent.CONNECT,
            assignment.queue,
            assignment.language,
            agent=assignment.agent,
            wait_seconds=wait,
        )
        change = TicketChange(outcome=Outcome.ANSWERED, agent=assignment.agent, events=(record,))
        self._journal(call, change, purpose="answered")
        return assignment

    def conversation_ended(
        self, call: Call, agent: str, state: CallState, talk_seconds: int, by_caller: bool
    ) -> None:
        """The agent is free again; remember how long the conversation took."""
        assert state.queue is not None and state.language is not None
        try:
            self.queue.finish_call(agent, call.owner)
            self.queue.record_talk(state.queue, state.language, talk_seconds)
        except RedisError as error:
            hand_back_newer(call, error)
            log.exception("cannot free agent %s", agent)
        event = QueueEvent.COMPLETECALLER if by_caller else QueueEvent.COMPLETEAGENT
        record = EventRecord(
            event, state.queue, state.language, agent=agent, talk_seconds=talk_seconds
        )
        self._journal(call, TicketChange(events=(record,)), purpose="conversation")
        self.dispatch()

    def not_answered(self, call: Call, agent: str, state: CallState) -> None:
        """The agent did not pick up: the caller goes back to the front of the line."""
        try:
            self.queue.return_to_queue(call.owner)
        except RedisError as error:
            hand_back_newer(call, error)
            log.exception("cannot requeue %s; the next hold round rejoins it", call.owner)
        record = EventRecord(QueueEvent.RINGNOANSWER, state.queue, state.language, agent=agent)
        self._journal(
            call, TicketChange(outcome=Outcome.QUEUED, events=(record,)), purpose="no-answer"
        )
        self.dispatch()

    def _hang_up(self, call_sid: str, *, leg: str | None = None) -> HangUp | None:
        try:
            result = self.queue.hang_up(call_sid, leg=leg)
        except RedisError:
            log.exception("cannot take %s out of the queue; its heartbeat will expire", call_sid)
            return None
        if result.freed_agent is not None or result.released_agent is not None:
            self.dispatch()
        return result

    # --- agents ---------------------------------------------------------------------------------

    def agent_status(self, agent_id: str, lines: list[tuple[str, str]], login: bool) -> AgentStatus:
        """Log an agent in (to serve `lines`) or out; log the event; serve waiting callers."""
        if login:
            status = self.queue.agent_available(agent_id, lines)
            event = QueueEvent.AGENTLOGIN
        else:
            status = self.queue.agent_offline(agent_id)
            event = QueueEvent.AGENTLOGOFF
        self.log(NO_CALL, EventRecord(event, agent=agent_id, data={"status": status}))
        if status == "available":
            self.dispatch()  # a waiting caller may be handed over at once
        return status

    # --- the journal ----------------------------------------------------------------------------

    def log(self, call_sid: str, *records: EventRecord) -> None:
        """Journal queue events that come without a ticket change."""
        self.journal.append(
            JournalRecord(
                id=record_id(None, "events"),
                call_sid=call_sid,
                at=self.clock.now(),
                change=TicketChange(events=records),
            )
        )

    def _journal(
        self,
        call: Call,
        change: TicketChange,
        purpose: str = "decision",
        end: CallEnd | None = None,
    ) -> None:
        record = JournalRecord(
            id=record_id(call.token, f"{purpose}:{call.owner}"),
            call_sid=call.owner,
            at=self.clock.now(),
            reference=call.reference,
            # A callback we placed is not the caller's own call: its From is our number.
            caller=call.number if call.owner == call.sid else None,
            called=call.called if call.owner == call.sid else None,
            change=change,
            end=end,
        )
        self.journal.append(record)

    def _seconds_since(self, instant: datetime) -> int:
        return max(0, round((self.clock.now() - instant).total_seconds()))
