"""The engine of the call flow: given the rules, where the caller is, what they pressed (or said) and
the time, decide what happens next (a `Decision`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import wraps
from typing import Concatenate, Literal, ParamSpec

import pytz

from ivr import hours
from ivr.clock import epoch_ms
from ivr.eta import country_zone, spoken_eta
from ivr.exchange.contract import Verification
from ivr.exchange.hook import KnownCaller
from ivr.flow.decisions import (
    Decision,
    Dial,
    Gather,
    GoTo,
    Hangup,
    Listen,
    Music,
    Pause,
    QueueRequest,
    Record,
    Say,
    Speech,
    TextMessage,
)
from ivr.flow.state import CallState, Heard, Step
from ivr.incidents import Incident
from ivr.rules.bundle import Bundle
from ivr.rules.schema import Menu, Option, Queue, Rules, Target
from ivr.speech import Utterance
from ivr.tickets.changes import (
    SAID_OPERATOR,
    SAID_UNDERSTOOD_NOT,
    EventRecord,
    Outcome,
    QueueEvent,
    TicketChange,
    format_reference,
    said_for_ticket,
)
from ivr.waits import Spoken, WaitEstimate, say_minutes, spoken_wait

OPERATOR, REPEAT, BACK = "0", "*", "#"
SPOKEN = "said"
"""The menu path's step for words said at a menu (`main:said`), as `main:2` is for a key."""
OFFER_VOICEMAIL, OFFER_CALLBACK, OFFER_OTHER_LANGUAGE = "1", "2", "3"
SURVEY_ASKS = 2
"""How many times the caller hears the satisfaction question at most (silence or a wrong key
asks once more, then goodbye): after a conversation, a caller who says nothing has said enough."""
QUEUE_LABEL = "queue_label_"
"""Prompt id prefix naming a queue in a catalog (`queue_label_funds`), as the agent hears it."""
_NEEDS: dict[Step, frozenset[str]] = {
    "language": frozenset(),
    "menu": frozenset({"menu"}),
    "closed": frozenset({"queue"}),
    "hold": frozenset({"queue"}),
    "voicemail": frozenset(),
    "agent": frozenset({"queue", "agent"}),
    "whisper": frozenset({"queue", "agent"}),
    "survey": frozenset(),
    "agent_line": frozenset(),
    "greet": frozenset(),
    "lock_offer": frozenset({"queue"}),
    "lock_code": frozenset({"queue", "verification"}),
    "lock": frozenset({"queue"}),
    "confirm": frozenset({"menu", "choice"}),
    "incident": frozenset({"queue"}),
}
"""What each step's state must name, besides a language (every step but the language menu and the
greeting, which come before one is chosen)."""
_BEFORE_A_LANGUAGE = ("language", "greet")
LOCK_NOW = "1"
"""The key that has a known caller's account locked (`Option.lock_offer`)."""
CODE_DIGITS = 6
CODE_TRIES = 3
"""Codes a caller may key for one verification (the exchange counts them too)."""
LOOKUP_SECONDS = 1
"""The silence a caller hears while the exchange is asked who they are (`Flow.answer`)."""
_STAGES = ("extension", "pin", "options", "callback", "callback_pin")
_PHONE = re.compile(r"^\+?[1-9]\d{6,15}$")
CONFIRM_YES, CONFIRM_MENU = "1", "2"
"""At the one question after an unsure speech match: follow it, or hear the keypad menu."""
KEEP_WAITING, CALL_ME_BACK = "1", "2"
"""At an incident notice (`Flow.incident_notice`): queue as planned, or keep the place and be
called back (the hold callback, `on_hold_key`)."""
ASKED_CALLBACK = "callback"
"""The `stage` of a hold state whose first round is the hold callback key, pressed at the
incident notice (the hold webhook takes it as that key: `webhooks.hold`)."""


@dataclass(frozen=True)
class HoldInfo:
    """What the queue knows about a holding caller, gathered by the view for `Flow.hold`."""

    position: int | None
    """1 = next; None when the queue cannot be reached right now."""
    waited_seconds: int = 0
    estimate: WaitEstimate | None = None
    """The caller's predicted wait; None when unknown or nobody is logged in (`ivr.waits`)."""
    agents_logged_in: int | None = None
    """Agents logged in for the caller's queue and language; None when unknown."""
    can_call_back: bool = False
    """Whether the service can place a callback (Twilio REST credentials are configured)."""
    rejoined: bool = False
    """The caller's place had to be rebuilt this round (Redis lost it): the others may not be
    back yet, so the position is not worth announcing until the next round."""


@dataclass(frozen=True)
class Caller:
    """What the flow knows about the call itself."""

    number: str | None
    """The caller's number (on a callback we placed: the number we called)."""
    reference: str
    """The ticket reference, read back after a voicemail or callback request ("" if unknown)."""
    known: KnownCaller | None = None
    """What the exchange knows of the caller (None: a stranger, or no exchange hook)."""
    callback_code: str = ""
    """The code a callback to this caller opens with, to prove it is ours (`Signer.callback_code`):
    told when they ask for one; on a callback we placed, the one they were told ("" if unknown)."""
    country: str | None = None
    """The ISO code of the caller's country as Twilio knows it (`FromCountry`; on a callback we
    placed, `ToCountry`): an incident's ETA is said in its time zone (`ivr.eta`)."""
    notice: int | None = None
    """The incident notice this call already heard (its id; carried in every URL once heard)."""

    def read_back(self, flow: Flow, language: str) -> tuple[Say, ...]:
        if not self.reference:
            return ()
        reference = format_reference(self.reference)
        return (flow.say("ticket_reference", language, reference=reference),)


_Args = ParamSpec("_Args")


def _clock_starts(
    entry: Callable[Concatenate[Flow, _Args], Decision],
) -> Callable[Concatenate[Flow, _Args], Decision]:
    """For an entry point where the caller is not silent: the call begins, they hold or talk to an
    agent (what they asked for), or they just pressed a key. Their silence clock starts now."""

    @wraps(entry)
    def started(flow: Flow, /, *args: _Args.args, **kwargs: _Args.kwargs) -> Decision:
        return replace(entry(flow, *args, **kwargs), silent_since=flow.now_ms)

    return started


class Flow:
    """Decisions for one version of the rules. Cheap to create; make one per request."""

    def __init__(self, bundle: Bundle, now: datetime, incident: Incident | None = None) -> None:
        self.rules: Rules = bundle.rules
        self.prompts = bundle.prompts
        self.router = bundle.router
        self.now = now
        self.now_ms = epoch_ms(now)
        self.incident = incident
        """The incident notice that is on (`ivr incident start`), None when none is."""

    # --- speech -------------------------------------------------------------------------------

    def say(self, prompt: str, language: str, /, **params: str) -> Say:
        catalog = self.prompts.catalog(language)
        values = {
            "brand": self.rules.brand,
            "email": self.rules.support_email,
            "website": self.rules.website,
            **params,
        }
        text = catalog.texts[prompt].format_map(_Blank(values))
        audio = catalog.audio.get(prompt) if not params else None
        return Say(text=text, language=language, prompt=prompt, audio=audio)

    def _text(self, prompt: str, language: str) -> str:
        return self.say(prompt, language).text

    # --- the language menu --------------------------------------------------------------------

    def suggested_language(self, caller: Caller) -> str:
        return (caller.number and self.rules.language_for_caller(caller.number)) or (
            self.rules.defaults.language
        )

    @_clock_starts
    def answer(self, caller: Caller, *, look_up: bool = False) -> Decision:
        """A new call: greeting, anti-fraud notice, any service announcement, the language menu.

        `look_up`: the exchange is being asked who is calling; the caller hears a second of silence
        while it answers, then `greet` (this answer itself waits for nothing)."""
        if look_up:
            return Decision((Pause(LOOKUP_SECONDS), GoTo(CallState("greet"))))
        language = self.suggested_language(caller)
        return Decision((self._language_menu(0, self._greeting(language)),))

    @_clock_starts
    def greet(self, caller: Caller) -> Decision:
        """After the lookup: a caller the exchange knows is greeted in their own language and goes
        straight to the main menu (the language menu one key away); a stranger as `answer`."""
        known = caller.known
        if known is None:
            return self.answer(caller)
        language = known.language if known.language in self.rules.language_codes else None
        language = language or self.suggested_language(caller)
        other = self.say("other_language_key", language)
        menu = self._menu_gather(
            language, self.rules.main_menu, 0, (*self._greeting(language), other)
        )
        return Decision((menu,), TicketChange(language=language, account=known.account))

    def _greeting(self, language: str) -> tuple[Say, ...]:
        prompts = [
            *self.rules.greeting,
            *(a.prompt for a in self.rules.active_announcements(self.now)),
        ]
        return tuple(self.say(p, language) for p in prompts)

    def _language_menu(self, tries: int, before: tuple[Speech, ...] = ()) -> Gather:
        options = tuple(
            self.say("language_option", choice.code, key=choice.key)
            for choice in self.rules.languages
        )
        return Gather(before + options, CallState("language", tries=tries), self._timeout)

    @property
    def _timeout(self) -> int:
        return self.rules.defaults.gather_timeout

    def _on_language(self, state: CallState, digits: str | None, caller: Caller) -> Decision:
        suggested = self.suggested_language(caller)
        if digits == OPERATOR:
            return self._operator(suggested, menu=None)
        chosen = self.rules.language_for_key(digits) if digits else None
        if chosen:
            return self._language_chosen(chosen, f"language:{digits}", greeted_in=suggested)
        if digits in (REPEAT, BACK):
            return Decision((self._language_menu(state.tries),))
        if digits is None and caller.number and self.rules.language_for_caller(caller.number):
            # Silence from a caller whose country tells us their language: carry on in it.
            return self._language_chosen(suggested, "language:auto", greeted_in=suggested)
        tries = state.tries + 1
        problem = self.say("no_input" if digits is None else "not_an_option", suggested)
        if tries >= self.rules.defaults.max_tries:
            return self._language_chosen(
                suggested, "language:fallback", greeted_in=suggested, before=(problem,)
            )
        return Decision((problem, self._language_menu(tries)))

    def _language_chosen(
        self, language: str, step: str, greeted_in: str, before: tuple[Speech, ...] = ()
    ) -> Decision:
        # Callers who chose another language than the greeting's hear the safety notice again,
        # in words they understand.
        greeting = self._greeting(language) if language != greeted_in else ()
        menu = self._menu_gather(language, self.rules.main_menu, 0, before + greeting)
        return Decision((menu,), TicketChange(language=language, menu_step=step))

    # --- issue menus ----------------------------------------------------------------------------

    def _menu_gather(
        self,
        language: str,
        menu_id: str,
        tries: int,
        before: tuple[Speech, ...] = (),
        listen: bool | None = None,
    ) -> Gather:
        """A menu's options and keys. A menu that listens (`Menu.listen`) takes speech too, the
        first time it is heard (`listen` None) or when `listen` says so: after a wrong key, a
        silence or words it did not understand, the caller hears the keypad menu."""
        menu = self.rules.menus[menu_id]
        speech: list[Speech] = list(before)
        if menu.intro and tries == 0:
            speech.append(self.say(menu.intro, language))
        listening = None
        if menu.listen and (tries == 0 if listen is None else listen):
            speech.append(self.say("speech_intro", language))
            listening = Listen(
                self.prompts.catalog(language).listen_language,
                self.router.hints(menu_id, language),
            )
        for key, option in menu.options.items():
            label = self._text(option.label, language)
            speech.append(self.say("press_key", language, label=label, key=key))
        speech.append(self.say("menu_keys", language))
        return Gather(
            tuple(speech),
            CallState("menu", language, menu_id, tries=tries),
            self._timeout,
            listen=listening,
        )

    def parent_menu(self, menu_id: str) -> str | None:
        """The menu one step closer to the main menu (None for the main menu itself)."""
        return self.rules.parent_menu(menu_id)  # computed once per loaded version of the rules

    def _on_menu(
        self, state: CallState, digits: str | None, caller: Caller, said: Utterance | None = None
    ) -> Decision:
        language = state.language
        assert language is not None
        menu_id = state.menu if state.menu in self.rules.menus else self.rules.main_menu
        menu = self.rules.menus[menu_id]
        if digits is None and said is not None and menu.listen:
            return self._on_speech(state, said, menu_id, caller)
        if digits == OPERATOR:
            return self._operator(language, menu=menu_id)
        if digits == REPEAT:
            return Decision((self._menu_gather(language, menu_id, state.tries),))
        if digits == BACK:
            parent = self.parent_menu(menu_id)
            if parent is None:
                return Decision((self._language_menu(0),))
            return Decision((self._menu_gather(language, parent, 0),))
        option = menu.options.get(digits) if digits else None
        if option is not None:
            return self._go(option, language, menu_id, caller, step=f"{menu_id}:{digits}")
        return self._retry(state, digits, menu, menu_id, caller)

    def _retry(
        self,
        state: CallState,
        digits: str | None,
        menu: Menu,
        menu_id: str,
        caller: Caller,
        problem: Say | None = None,
    ) -> Decision:
        language = state.language
        assert language is not None
        tries = state.tries + 1
        if problem is None:
            problem = self.say("no_input" if digits is None else "not_an_option", language)
        if tries < (menu.max_tries or self.rules.defaults.max_tries):
            return Decision((problem, self._menu_gather(language, menu_id, tries)))
        fallback = menu.fallback or self.rules.defaults.fallback
        decision = self._go(fallback, language, menu_id, caller, step=f"{menu_id}:fallback")
        notice = (problem, self.say("fallback_notice", language))
        return replace(decision, actions=notice + decision.actions)

    def _go(
        self, target: Target, language: str, menu_id: str, caller: Caller, step: str
    ) -> Decision:
        """Follow a menu option (or a fallback) to where it leads."""
        issue = target.issue_name if isinstance(target, Option) else None
        if target.menu:
            return Decision(
                (self._menu_gather(language, target.menu, 0),),
                TicketChange(menu_step=step),
            )
        if target.say:
            answer = self.say(target.say, language)
            return Decision(
                (answer, self._menu_gather(language, menu_id, 0)),
                TicketChange(menu_step=step, issue=issue, outcome=Outcome.SELF_SERVED),
            )
        if target.voicemail:
            decision = self._voicemail(CallState("menu", language, menu_id))
            return replace(decision, ticket=replace(decision.ticket, menu_step=step, issue=issue))
        assert target.queue is not None
        priority = target.priority if isinstance(target, Option) else None
        known = caller.known
        if known is not None and known.vip:
            queued = self.rules.queues[target.queue].priority if priority is None else priority
            priority = max(queued, self.rules.known_callers.vip_priority)
        if isinstance(target, Option) and target.lock_offer and known and not known.locked_at:
            offer = CallState("lock_offer", language, menu_id, target.queue, priority)
            gather = Gather((self.say("lock_offer", language),), offer, self._timeout)
            return Decision((gather,), TicketChange(menu_step=step, issue=issue))
        return self._to_queue(target.queue, language, menu_id, priority, issue, step, caller)

    # --- speech at a menu that listens -------------------------------------------------------

    def _on_speech(
        self, state: CallState, said: Utterance, menu_id: str, caller: Caller
    ) -> Decision:
        """The caller said something at a menu that listens (`ivr.speech.Router` decides where
        it leads): follow it when sure, ask once when unsure, the keypad menu when not understood;
        the ticket keeps what was said and where it led."""
        language = state.language
        assert language is not None
        route = self.router.route(menu_id, language, said)
        heard = TicketChange(
            menu_step=f"{menu_id}:{SPOKEN}", said=said_for_ticket(said.text), said_checked=False
        )
        if route.operator:
            return _noted(self._operator(language, menu=menu_id), heard, SAID_OPERATOR)
        if not route.path:
            menu = self.rules.menus[menu_id]
            problem = self.say("speech_not_understood", language)
            decision = self._retry(state, None, menu, menu_id, caller, problem)
            return _noted(decision, heard, SAID_UNDERSTOOD_NOT)
        if route.confirm:
            ask = CallState("confirm", language, menu_id, choice="".join(route.path))
            return Decision((self._confirm_gather(ask),), replace(heard, said_checked=True))
        return self._follow(menu_id, route.path, language, caller, heard)

    def _confirm_gather(self, ask: CallState) -> Gather:
        """The one question: "You want help with <the option's label>. Press 1 ... or 2 ..."."""
        language, menu_id, choice = ask.language, ask.menu, ask.choice
        assert language is not None and menu_id is not None and choice is not None
        _, option = self.rules.option_at(menu_id, choice)
        label = self._text(option.label, language)
        return Gather((self.say("speech_confirm", language, label=label),), ask, self._timeout)

    def _follow(
        self,
        menu_id: str,
        path: tuple[str, ...] | str,
        language: str,
        caller: Caller,
        heard: TicketChange,
    ) -> Decision:
        """Where the keys `path` lead from `menu_id`, as if the caller had pressed them."""
        at, option = self.rules.option_at(menu_id, path)
        decision = self._go(option, language, at, caller, step=f"{at}:{path[-1]}")
        led_to = option.menu if option.menu else option.issue_name
        # The ticket's path reads as what happened: the words at the menu spoken at, then the
        # option they led to (for a sub-menu, where the caller goes on with keys).
        return _noted(decision, heard, led_to)

    def _on_confirm(self, state: CallState, digits: str | None, caller: Caller) -> Decision:
        """The one question after an unsure match: 1 follows it, 2 (or anything but 0 and *)
        gives the keypad menu the words were said at; never a second question."""
        language, menu_id, choice = state.language, state.menu, state.choice
        assert language is not None and menu_id is not None and choice is not None
        if digits == OPERATOR:
            return _noted(self._operator(language, menu=menu_id), TicketChange(), SAID_OPERATOR)
        if digits == REPEAT:
            return Decision((self._confirm_gather(state),))
        if digits == CONFIRM_YES:
            # The menu path already reads `main:said` (from the question); the caller pressed no
            # key of the menu the option is in, so no step of it is added.
            followed = self._follow(menu_id, choice, language, caller, TicketChange())
            return replace(followed, ticket=replace(followed.ticket, menu_step=None))
        before = () if digits == CONFIRM_MENU else (self.say("speech_choose", language),)
        gather = self._menu_gather(language, menu_id, 0, before, listen=False)
        return Decision((gather,), TicketChange(said_to=SAID_UNDERSTOOD_NOT))

    def _operator(self, language: str, menu: str | None) -> Decision:
        step = f"{menu or 'language'}:{OPERATOR}"
        decision = self._to_queue(self.rules.operator_queue, language, menu, None, "operator", step)
        # From the language menu (or an apology) no language is on the ticket yet: the caller is
        # served in the one they were greeted in, so the ticket says so.
        return replace(decision, ticket=replace(decision.ticket, language=language))

    # --- queues and business hours ----------------------------------------------------------------

    def _to_queue(
        self,
        queue_id: str,
        language: str,
        menu_id: str | None,
        priority: int | None,
        issue: str | None,
        step: str | None,
        caller: Caller | None = None,
    ) -> Decision:
        """The caller's chosen queue: its team's after-hours offer when closed; else, when an
        incident notice concerns the caller (`caller`: one who chose `issue` at a menu) and they
        have not heard it in this call, the notice first (`incident_notice`); else they join."""
        queue = self.rules.queues[queue_id]
        team_id = queue.team_for(language)
        priority = queue.priority if priority is None else priority
        change = TicketChange(
            menu_step=step, issue=issue, queue=queue_id, team=team_id, priority=priority
        )
        status = hours.status(self.rules.teams[team_id], self.now)
        if not status.is_open:
            closed = CallState("closed", language, menu_id, queue_id, priority)
            return Decision(
                (self._closed_gather(closed, status.next_open, first=True),),
                replace(change, outcome=Outcome.CLOSED_HOURS),
            )
        if caller is not None and caller.notice is None and self._concerned(issue, language):
            notice = CallState("incident", language, menu_id, queue_id, priority)
            return Decision((GoTo(notice),), change)
        since = epoch_ms(self.now)
        hold = CallState("hold", language, menu_id, queue_id, priority, since=since)
        enter = EventRecord(
            QueueEvent.ENTERQUEUE, queue_id, language, data={"priority": str(priority)}
        )
        return Decision(
            (self.say("please_hold", language), GoTo(hold)),
            replace(change, queued=True, outcome=Outcome.QUEUED, events=(enter,)),
            QueueRequest(queue_id, language, priority, since),
        )

    # --- an incident notice (`ivr incident start`) -------------------------------------------------

    def _concerned(self, issue: str | None, language: str) -> bool:
        return self.incident is not None and self.incident.concerns(issue, language)

    @_clock_starts
    def incident_notice(
        self, state: CallState, digits: str | None, caller: Caller, can_call_back: bool
    ) -> Decision:
        """The incident notice a caller hears before their queue, and their answer to it.

        First (`tries` 0) the notice, with when the exchange expects a fix in the caller's time
        zone, and its keys: KEEP_WAITING (or 0) queues as planned, CALL_ME_BACK keeps the place and
        has the caller called back, as the hold callback key does (offered where that is:
        `can_call_back` and a hold callback key). Silence, or wrong keys past the tries, keeps them
        waiting: nobody is dropped for not answering a notice. The ticket records which notice
        they heard (`TicketChange.incident`)."""
        language = state.language
        assert language is not None and state.queue is not None
        incident = self.incident
        if state.tries == 0:
            if incident is None:  # it ended since the caller chose: nothing to tell
                return self._after_notice(state)
            asked = replace(state, tries=1)
            gather = self._notice_gather(asked, incident, caller, can_call_back)
            return Decision((gather,), TicketChange(incident=incident.id), notice=incident.id)
        key = _clean(digits)
        if key in (None, KEEP_WAITING, OPERATOR):
            return self._after_notice(state)
        if key == CALL_ME_BACK and self.rules.hold_keys.callback:
            return self._after_notice(state, callback=True)
        if key == REPEAT and incident is not None:
            return Decision((self._notice_gather(state, incident, caller, can_call_back),))
        problem = self.say("not_an_option", language)
        if state.tries >= self.rules.defaults.max_tries or incident is None:
            decision = self._after_notice(state)
            return replace(decision, actions=(problem, *decision.actions))
        again = replace(state, tries=state.tries + 1)
        keys = self._notice_keys(language, can_call_back)
        return Decision((problem, Gather(keys, again, self._timeout)))

    def _notice_gather(
        self, state: CallState, incident: Incident, caller: Caller, can_call_back: bool
    ) -> Gather:
        language, queue_id = state.language, state.queue
        assert language is not None and queue_id is not None
        if incident.eta is None or incident.eta <= self.now:
            # An ETA gone by is no promise to repeat: the notice without one.
            notice = self.say("incident_notice_no_eta", language)
        else:
            zone = country_zone(caller.country) or self._team(queue_id, language).timezone
            catalog = self.prompts.catalog(language)
            eta = spoken_eta(incident.eta, self.now, zone, catalog.locale, catalog.dates)
            notice = self.say("incident_notice", language, eta=eta)
        keys = self._notice_keys(language, can_call_back)
        return Gather((notice, *keys), state, self._timeout)

    def _notice_keys(self, language: str, can_call_back: bool) -> tuple[Say, ...]:
        wait = self.say("incident_option_wait", language, key=KEEP_WAITING)
        if not (can_call_back and self.rules.hold_keys.callback):
            return (wait,)
        return (wait, self.say("incident_option_callback", language, key=CALL_ME_BACK))

    def _after_notice(self, state: CallState, *, callback: bool = False) -> Decision:
        """The queue the caller chose, as without the notice (its after-hours offer if the team
        closed meanwhile); with `callback`, the first hold round takes the hold callback key."""
        language, queue_id = state.language, state.queue
        assert language is not None and queue_id is not None
        decision = self._to_queue(queue_id, language, state.menu, state.priority, None, None)
        if not callback or decision.join is None:
            return decision
        hold = CallState(
            "hold",
            language,
            state.menu,
            queue_id,
            decision.join.priority,
            since=decision.join.since,
            stage=ASKED_CALLBACK,
        )
        return replace(decision, actions=(GoTo(hold),))

    @_clock_starts
    def hold(self, state: CallState, info: HoldInfo) -> Decision:
        """One round of holding: updates on the caller's place and wait, options, then music."""
        language, queue_id = state.language, state.queue
        assert language is not None and queue_id is not None
        queue = self.rules.queues[queue_id]
        first = state.tries == 0
        if first and queue.max_length and info.position and info.position > queue.max_length:
            return self._overflow(state, "queue_full", QueueEvent.EXITFULL, info)
        if info.agents_logged_in == 0 and info.waited_seconds >= self.rules.defaults.silence_limit:
            # Nobody can answer, and the caller has held as long as a silent one is kept: offer
            # what the line can do instead, rather than hold an answering machine for hours.
            return self._overflow(state, "no_agents", QueueEvent.EXITEMPTY, info)
        speech: list[Speech] = []
        if not first:
            speech.append(self._comfort(queue.comfort, state.tries, language))
        if info.agents_logged_in == 0:
            speech.append(self.say("no_agents", language))
        stand, heard = self._where_you_stand(queue, info, language, state.heard or Heard(), first)
        speech += stand
        too_long = _too_long(queue, info)
        if too_long:
            speech.append(self.say("wait_too_long", language))
        if first or too_long or info.agents_logged_in == 0 or state.tries % 3 == 0:
            speech += self._hold_options(info, language)
        speech.append(Music(queue.hold_music) if queue.hold_music else Pause(queue.announce_every))
        # Listening through the music lets a key interrupt it; silence goes on to the next round.
        then = replace(state, tries=state.tries + 1, heard=heard if heard != Heard() else None)
        return Decision((Gather(tuple(speech), then, 1),))

    def _comfort(self, comfort: tuple[str, ...], round_: int, language: str) -> Say:
        if not comfort:
            return self.say("hold_thanks", language)
        return self.say(comfort[(round_ - 1) % len(comfort)], language)

    def _where_you_stand(
        self, queue: Queue, info: HoldInfo, language: str, heard: Heard, asked: bool
    ) -> tuple[list[Speech], Heard]:
        """The position and wait to tell the caller, and what they have then been told.

        With `position_only_down`, a position higher than the one last announced is not said
        (urgent calls are being served first), and the wait is said only when it is news: the
        first time, once the caller has moved forward, or when it has grown. Otherwise the caller
        hears no wait, or, when they asked (`asked`: the position key), the one they heard last;
        never a shorter one for standing still."""
        speech: list[Speech] = []
        position = info.position
        if position is None or info.rejoined:
            # The queue is unreachable, or being rebuilt: say nothing rather than something wrong.
            return speech, heard
        only_down = queue.position_only_down
        announced = heard.announced
        if queue.announce_position:
            if only_down and announced is not None and position > announced:
                speech.append(self.say("queue_urgent_first", language))
            else:
                announced = position
                if position <= 1:
                    speech.append(self.say("queue_next", language))
                elif queue.announce_position_limit and position > queue.announce_position_limit:
                    speech.append(self.say("many_ahead", language))
                else:
                    speech.append(self.say("queue_position", language, position=str(position)))
        low, high = heard.low, heard.high
        at = position
        if queue.announce_wait and info.estimate is not None and info.estimate.median > 0:
            said: Spoken | None
            said = spoken_wait(info.estimate, queue.wait_speech)
            moved_forward = heard.at is None or position < heard.at
            if only_down and high is not None and not moved_forward and said.high <= high:
                # Not news: no shorter wait for standing still, and no repeat unless asked.
                said = Spoken(low or 0, high) if asked else None
                at = heard.at if heard.at is not None else position
            if said is not None:
                speech.append(self._say_wait(said, queue, language))
                low, high = said.low, said.high
        return speech, Heard(announced, at, low, high)

    def _say_wait(self, said: Spoken, queue: Queue, language: str) -> Say:
        locale = self.prompts.catalog(language).locale
        if said.low == said.high:
            return self.say("queue_wait", language, wait=say_minutes(said.high, locale))
        if said.low == 0:
            return self.say("queue_wait_under", language, wait=say_minutes(said.high, locale))
        return self.say(
            "queue_wait_between",
            language,
            low=say_minutes(said.low, locale),
            high=say_minutes(said.high, locale),
        )

    def _hold_options(self, info: HoldInfo, language: str) -> list[Speech]:
        keys = self.rules.hold_keys
        options: list[Speech] = []
        if keys.position:
            options.append(self.say("hold_option_position", language, key=keys.position))
        if keys.callback and info.can_call_back:
            options.append(self.say("hold_option_callback", language, key=keys.callback))
        if keys.voicemail and self.rules.after_hours.voicemail:
            options.append(self.say("hold_option_voicemail", language, key=keys.voicemail))
        return options

    def _overflow(
        self, state: CallState, reason: str, event: QueueEvent, info: HoldInfo
    ) -> Decision:
        """The queue cannot take the caller: leave it and offer voicemail or a callback request."""
        language, queue_id = state.language, state.queue
        assert language is not None and queue_id is not None
        offer = replace(state, step="closed", tries=0)
        record = EventRecord(event, queue_id, language, position=info.position)
        return Decision(
            (self.say(reason, language), self._closed_gather(offer, None, first=False)),
            TicketChange(events=(record,)),
            leave=True,
        )

    @_clock_starts
    def on_hold_key(
        self, state: CallState, digits: str | None, info: HoldInfo, caller: Caller
    ) -> Decision:
        """A key pressed while holding: position again, a callback that keeps the place, or voicemail."""
        language, queue_id = state.language, state.queue
        assert language is not None and queue_id is not None
        keys = self.rules.hold_keys
        key = _clean(digits)
        if key is None:
            return self.hold(state, info)
        if key in (keys.position, REPEAT, OPERATOR):
            return self.hold(replace(state, tries=0), info)
        if key == keys.callback:
            if not (info.can_call_back and self._callable(caller.number)):
                again = self.hold(state, info)
                unavailable = self.say("callback_unavailable", language)
                return replace(again, actions=(unavailable, *again.actions))
            record = EventRecord(
                QueueEvent.CALLBACK,
                queue_id,
                language,
                position=info.position,
                wait_seconds=info.waited_seconds,
                data={"key": key},
            )
            decision = self._callback_promised("callback_kept", language, caller, (record,))
            return replace(decision, callback_number=caller.number)
        if key == keys.voicemail and self.rules.after_hours.voicemail:
            # Named like Asterisk: why the caller gave up matters more than the key they used.
            if info.agents_logged_in == 0:
                event = QueueEvent.EXITEMPTY
            elif _too_long(self.rules.queues[queue_id], info):
                event = QueueEvent.EXITWITHTIMEOUT
            else:
                event = QueueEvent.EXITWITHKEY
            record = EventRecord(
                event,
                queue_id,
                language,
                position=info.position,
                wait_seconds=info.waited_seconds,
                data={"key": key, "to": "voicemail"},
            )
            decision = self._voicemail(state)
            return replace(decision, ticket=TicketChange(events=(record,)), leave=True)
        again = self.hold(state, info)
        return replace(again, actions=(self.say("not_an_option", language), *again.actions))

    # --- the agent ------------------------------------------------------------------------------

    @_clock_starts
    def connect(self, state: CallState, agent_id: str) -> Decision:
        """The caller's turn has come: ring the agent (who first hears who is calling)."""
        language = state.language
        assert language is not None
        agent = self.rules.agents[agent_id]
        then = replace(state, step="agent", agent=agent_id, tries=0)
        return Decision(
            (
                self.say("connecting", language),
                Dial(agent.phone, agent.client, then, replace(then, step="whisper")),
            ),
            TicketChange(agent=agent_id),
        )

    def whisper(
        self, state: CallState, reference: str, known: KnownCaller | None = None
    ) -> Decision:
        """What the agent hears on answering, before the caller is put through: the queue, the
        caller's language, the ticket, and whether the caller was verified and locked their account
        in this call (nobody asks them again)."""
        agent = self.rules.agents.get(state.agent or "")
        language = agent.languages[0] if agent else self.rules.defaults.language
        caller_language = self.prompts.catalog(state.language or language).name
        said = [
            self.say(
                "agent_whisper",
                language,
                queue=self.queue_label(state.queue, language) if state.queue else "",
                language=caller_language,
                reference=format_reference(reference),
            )
        ]
        if known is not None and known.verified:
            said.append(self.say("whisper_verified", language))
        if known is not None and known.locked_at is not None and state.queue:
            zone = pytz.timezone(self._team(state.queue, state.language or language).timezone)
            at = known.locked_at.astimezone(zone).strftime("%H:%M")
            said.append(self.say("whisper_locked", language, time=at))
        return Decision(tuple(said))

    def queue_label(self, queue_id: str, language: str) -> str:
        """What a queue is called in `language`: its `queue_label_<id>` prompt; without one, the
        label of the first menu option leading straight to it; else (never silent) its id."""
        texts = self.prompts.catalog(language).texts
        prompt = QUEUE_LABEL + queue_id.replace("-", "_")
        if prompt in texts:
            return self._text(prompt, language)
        for menu in self.rules.menus.values():
            for option in menu.options.values():
                if option.queue == queue_id and option.label in texts:
                    return self._text(option.label, language)
        return queue_id

    @_clock_starts
    def after_agent(self, state: CallState, answered: bool) -> Decision:
        """The `<Dial>` to the agent ended: survey after a conversation, back in line if unanswered."""
        language = state.language
        assert language is not None
        if not answered:
            hold = replace(state, step="hold", agent=None, tries=1)
            return Decision((self.say("agent_unavailable", language), GoTo(hold)))
        if not self.rules.satisfaction_survey:
            return Decision((self.say("goodbye", language), Hangup()))
        return Decision((self._survey(replace(state, step="survey", tries=0)),))

    def _survey(self, state: CallState) -> Gather:
        assert state.language is not None
        return Gather((self.say("survey_question", state.language),), state, self._timeout)

    def _on_survey(self, state: CallState, digits: str | None) -> Decision:
        language = state.language
        assert language is not None
        if digits and digits in "12345":
            return Decision(
                (self.say("survey_thanks", language), self.say("goodbye", language), Hangup()),
                TicketChange(satisfaction=int(digits)),
            )
        # The conversation is over and the score is optional: ask once more at most, then let go.
        if state.tries + 1 >= SURVEY_ASKS:
            return Decision((self.say("goodbye", language), Hangup()))
        problem = self.say("no_input" if digits is None else "not_an_option", language)
        return Decision((problem, self._survey(replace(state, tries=state.tries + 1))))

    def _closed_gather(self, state: CallState, next_open: datetime | None, first: bool) -> Gather:
        language = state.language
        assert language is not None
        speech: list[Speech] = []
        if first:
            if next_open is None:
                speech.append(self.say("team_closed_no_opening", language))
            else:
                catalog = self.prompts.catalog(language)
                when, city = hours.spoken_opening(
                    next_open, self.now, catalog.locale, catalog.dates
                )
                speech.append(self.say("team_closed", language, when=when, city=city))
        other = self._open_language(state)
        if other is not None:
            # Said in the language of the team on offer: a caller who can take it understands it.
            speech.append(self.say("offer_other_language", other))
        if self.rules.after_hours.voicemail:
            speech.append(self.say("offer_voicemail", language))
        if self.rules.after_hours.callback:
            speech.append(self.say("offer_callback", language))
        speech.append(self.say("offer_back", language))
        return Gather(tuple(speech), state, self._timeout)

    def _on_closed(self, state: CallState, digits: str | None, caller: Caller) -> Decision:
        language, queue_id = state.language, state.queue
        assert language is not None
        if queue_id not in self.rules.queues:
            return Decision((self._menu_gather(language, self.rules.main_menu, 0),))
        after_hours = self.rules.after_hours
        if digits == OFFER_VOICEMAIL and after_hours.voicemail:
            return self._voicemail(state)
        if digits == OFFER_CALLBACK and after_hours.callback:
            return self._callback(state, caller)
        if digits == OFFER_OTHER_LANGUAGE:
            other = self._open_language(state)
            if other is not None:
                step = f"closed:{OFFER_OTHER_LANGUAGE}"
                decision = self._to_queue(queue_id, other, state.menu, state.priority, None, step)
                return replace(decision, ticket=replace(decision.ticket, language=other))
        if digits == BACK:
            menu_id = state.menu if state.menu in self.rules.menus else self.rules.main_menu
            return Decision((self._menu_gather(language, menu_id, 0),))
        if digits == OPERATOR and queue_id != self.rules.operator_queue:
            return self._operator(language, state.menu)
        if digits in (REPEAT, OPERATOR):
            # Closed hours say when the team opens; a full or unstaffed queue just repeats the offer.
            status = hours.status(self._team(queue_id, language), self.now)
            first = not status.is_open
            return Decision((self._closed_gather(state, status.next_open, first=first),))
        tries = state.tries + 1
        problem = self.say("no_input" if digits is None else "not_an_option", language)
        if tries < self.rules.defaults.max_tries:
            return Decision(
                (problem, self._closed_gather(replace(state, tries=tries), None, False))
            )
        # Nobody is there to answer and the caller is not choosing: take a message rather than hang
        # up. Never a callback they did not ask for: callers are told that a call they did not
        # expect is a scam, and ours must never look like one.
        if not after_hours.voicemail:
            return Decision((problem, self.say("goodbye", language), Hangup()))
        decision = self._voicemail(state)
        return replace(decision, actions=(problem, *decision.actions))

    def _open_language(self, state: CallState) -> str | None:
        """Another language whose team for the caller's queue is open now, when the caller's own
        team is closed and the rules offer it (`after_hours.other_languages`); languages are tried
        in the order of the language menu, and one nobody serves in that queue is skipped."""
        language, queue_id = state.language, state.queue
        if not self.rules.after_hours.other_languages or queue_id not in self.rules.queues:
            return None
        assert language is not None and queue_id is not None
        queue = self.rules.queues[queue_id]
        own = queue.team_for(language)
        if hours.status(self.rules.teams[own], self.now).is_open:
            return None  # open but full or unstaffed: another language's team is no answer to that
        for other in self.rules.language_codes:
            team = queue.team_for(other)
            if other == language or team == own:
                continue
            if self.rules.agents and not self.rules.agents_serving(queue_id, other):
                continue
            if hours.status(self.rules.teams[team], self.now).is_open:
                return other
        return None

    def _team(self, queue_id: str, language: str) -> hours.Team:
        return self.rules.teams[self.rules.queues[queue_id].team_for(language)]

    # --- voicemail and callbacks ----------------------------------------------------------------

    def _voicemail(self, origin: CallState) -> Decision:
        language = origin.language
        assert language is not None
        recording = replace(origin, step="voicemail", tries=0)
        return Decision(
            (
                self.say("voicemail_instructions", language),
                Record(recording, self.rules.after_hours.max_recording_seconds),
                # Twilio skips the action when nothing was recorded and goes on here.
                self.say("voicemail_empty", language),
                GoTo(replace(origin, step="closed" if origin.queue else "menu", tries=0)),
            )
        )

    def recorded(self, state: CallState, url: str | None, seconds: int, caller: Caller) -> Decision:
        """The voicemail recording is done: keep it on the ticket and read back the reference."""
        language = state.language
        assert language is not None
        if not url or seconds <= 0:
            back = replace(state, step="closed" if state.queue else "menu", tries=0)
            return Decision(
                (self.say("voicemail_empty", language), GoTo(back)),
                silent_since=self._silent_since(state),
            )
        return Decision(
            (
                self.say("voicemail_saved", language),
                *caller.read_back(self, language),
                self.say("goodbye", language),
                Hangup(),
            ),
            TicketChange(outcome=Outcome.VOICEMAIL, recording_url=url, recording_duration=seconds),
            text=self._text_message("sms_reference", language, caller),
        )

    def _callback(self, state: CallState, caller: Caller) -> Decision:
        language = state.language
        assert language is not None
        if not self._callable(caller.number):
            if not self.rules.after_hours.voicemail:
                unavailable = self.say("callback_unavailable", language)
                return Decision((unavailable, self.say("goodbye", language), Hangup()))
            # Why not, then the voicemail the prompt offers.
            reason = "callback_not_this_number" if _phone(caller.number) else "callback_no_number"
            voicemail = self._voicemail(state)
            return replace(voicemail, actions=(self.say(reason, language), *voicemail.actions))
        return self._callback_promised("callback_confirmed", language, caller)

    def _callable(self, number: str | None) -> bool:
        """A number the line may call back: a phone number, where the rules let it call."""
        return _phone(number) and self.rules.may_call_back(number or "")

    def _callback_promised(
        self, prompt: str, language: str, caller: Caller, events: tuple[EventRecord, ...] = ()
    ) -> Decision:
        """Tell the caller we will call them back (number spelled out), read back the ticket and
        the callback code the callback will open with (and text them both), end."""
        assert caller.number is not None
        number = " ".join(caller.number.lstrip("+"))
        code = caller.callback_code
        told = (self.say("callback_code", language, code=format_reference(code)),) if code else ()
        return Decision(
            (
                self.say(prompt, language, number=number),
                *caller.read_back(self, language),
                *told,
                self.say("goodbye", language),
                Hangup(),
            ),
            TicketChange(
                outcome=Outcome.CALLBACK,
                callback_number=caller.number,
                callback_code=code or None,
                events=events,
            ),
            text=self._text_message("sms_callback" if code else "sms_reference", language, caller),
        )

    # --- lock my account now (a known caller, `Option.lock_offer`) -----------------------------

    @_clock_starts
    def lock_offered(
        self,
        state: CallState,
        digits: str | None,
        caller: Caller,
        sent: Verification | Literal["throttled"] | None = None,
    ) -> Decision:
        """The caller answered the offer to lock their account. For `LOCK_NOW` the view has asked
        the exchange to send a code: `sent` says where it went ("throttled": too many lately; None:
        the exchange did not answer)."""
        language = state.language
        assert language is not None
        if digits != LOCK_NOW or caller.known is None:
            return self._after_lock(state, ())
        if isinstance(sent, Verification):
            asking = replace(
                state,
                step="lock_code",
                tries=0,
                verification=sent.verification,
                stage=sent.channel,  # where the code went: recorded once it is right
            )
            return Decision((self._code_gather(asking, f"lock_code_sent_{sent.channel}"),))
        if sent is None and self.rules.known_callers.lock_without_verification:
            return Decision((GoTo(replace(state, step="lock", stage=None)),))
        reason = "lock_throttled" if sent == "throttled" else "lock_unavailable"
        return self._after_lock(state, (self.say(reason, language),))

    @_clock_starts
    def code_keyed(self, state: CallState, keyed: bool, checked: bool | None) -> Decision:
        """The caller keyed a code (`keyed`; else the time to key one ran out), and `checked` is the
        exchange's word on it (None: it did not answer)."""
        language = state.language
        assert language is not None
        if keyed and checked:
            # The lock step knows the caller was verified by the channel in `stage`.
            locking = replace(state, step="lock", tries=0, verification=None)
            return Decision((GoTo(locking),), TicketChange(verified=state.stage))
        if keyed and checked is None:
            return self._after_lock(state, (self.say("lock_unavailable", language),))
        tries = state.tries + 1
        if tries < CODE_TRIES:
            again = "lock_code_wrong" if keyed else "no_input"
            return Decision((self._code_gather(replace(state, tries=tries), again),))
        return self._after_lock(state, (self.say("lock_not_verified", language),))

    @_clock_starts
    def account_locked(self, state: CallState, caller: Caller, locked: bool | None) -> Decision:
        """The exchange was asked to lock the account (`locked`: its answer, None: none): say so,
        read the reference, then the security team (or its after-hours offer)."""
        language = state.language
        assert language is not None
        if not locked:
            return self._after_lock(state, (self.say("lock_unavailable", language),))
        said = (self.say("lock_done", language), *caller.read_back(self, language))
        decision = self._after_lock(state, said)
        return replace(decision, ticket=replace(decision.ticket, locked=True))

    def _code_gather(self, state: CallState, prompt: str) -> Gather:
        assert state.language is not None
        return Gather(
            (self.say(prompt, state.language),),
            state,
            self._timeout * 2,  # six digits take longer than one key
            several_digits=True,
            num_digits=CODE_DIGITS,
        )

    def _after_lock(self, state: CallState, before: tuple[Speech, ...]) -> Decision:
        """To the queue the option named, at its priority (its team's after-hours offer when closed)."""
        assert state.language is not None and state.queue is not None
        decision = self._to_queue(
            state.queue, state.language, state.menu, state.priority, issue=None, step=None
        )
        return replace(decision, actions=(*before, *decision.actions))

    def _text_message(self, prompt: str, language: str, caller: Caller) -> TextMessage | None:
        """The ticket number (and callback code) by text, where the rules switch it on, to a
        number the line may call (`callback_prefixes`: no texts to premium-rate numbers). The
        text carries no account data: the ticket number, the code, the support email."""
        if not (self.rules.sms_reference and caller.reference and self._callable(caller.number)):
            return None
        assert caller.number is not None
        params = {"reference": caller.reference, "code": caller.callback_code}
        return TextMessage(caller.number, self.say(prompt, language, **params).text)

    def open_callback(self, decision: Decision, state: CallState, caller: Caller) -> Decision:
        """The first answer to a callback we placed: before anything else it says (an agent
        being put through, or holding), who is calling, the callback code the caller was given,
        their ticket number and the anti-fraud notice, in their language."""
        language = state.language
        assert language is not None
        code = format_reference(caller.callback_code)
        proof = (
            self.say("callback_opening", language, code=code),
            *caller.read_back(self, language),
            *(self.say(prompt, language) for prompt in self.rules.callback_notice),
        )
        return replace(decision, actions=(*proof, *decision.actions))

    # --- the state a webhook brings -----------------------------------------------------------

    def admit(self, state: CallState | None) -> CallState | None:
        """`state` when it fits the rules as they are now, else None (the view then `restart`s).

        It fits when every field its step needs is there and every menu, queue, agent and
        language it names exists. The URL state is sealed (only this service issues it), but
        the rules may have changed since it was issued."""
        if state is None:
            return None
        rules = self.rules
        if state.step not in _BEFORE_A_LANGUAGE and state.language not in rules.language_codes:
            return None
        if state.step == "confirm" and not self._leads(state.menu, state.choice):
            return None
        for name, known in (
            (state.menu, rules.menus),
            (state.queue, rules.queues),
            (state.agent, rules.agents),
        ):
            if name is not None and name not in known:
                return None
        needs = _NEEDS[state.step]
        if "menu" in needs and state.menu is None:
            return None
        if "queue" in needs and state.queue is None:
            return None
        if "agent" in needs and state.agent is None:
            return None
        if "verification" in needs and state.verification is None:
            return None
        if state.step == "agent_line":
            return (
                state
                if state.stage in _STAGES
                and (state.stage in ("extension", "pin") or state.agent is not None)
                else None
            )
        return state

    def _leads(self, menu_id: str | None, choice: str | None) -> bool:
        """Whether the keys `choice` still lead somewhere from `menu_id` under these rules."""
        if menu_id is None or not choice:
            return False
        try:
            self.rules.option_at(menu_id, choice)
        except KeyError:
            return False
        return True

    @_clock_starts
    def restart(self, state: CallState | None) -> Decision:
        """Where a call goes whose URL state is not ours, or no longer fits the rules: the main
        menu in the caller's language when that is known, else the language menu."""
        if state is not None and state.language in self.rules.language_codes:
            return Decision((self._menu_gather(state.language, self.rules.main_menu, 0),))
        return Decision((self._language_menu(0),))

    # --- entry point for keys ---------------------------------------------------------------------

    def on_input(
        self,
        state: CallState | None,
        digits: str | None,
        caller: Caller,
        said: Utterance | None = None,
    ) -> Decision:
        """The caller pressed `digits` (None: nothing before the timeout) at `state`, or, at a
        menu that listens, `said` something (a key always wins over words).

        A key or words start the caller's silence clock again; a silence once `silence_limit`
        has passed since the last key lets the caller go (`_let_go`)."""
        digits = _clean(digits)
        if digits is not None or not said or not said.text.strip():
            said = None
        if digits is not None or said is not None:
            silent_since = self.now_ms
        else:
            silent_since = self._silent_since(state)
            if self.now_ms - silent_since >= self.rules.defaults.silence_limit * 1000:
                return self._let_go(state, caller)
        return replace(self._on_input(state, digits, caller, said), silent_since=silent_since)

    def _silent_since(self, state: CallState | None) -> int:
        """Since when the caller has been silent: as the state says, else (a URL issued before
        the clock was carried) from now; never later than now (another instance's clock)."""
        if state is None or state.silent_since is None:
            return self.now_ms
        return min(state.silent_since, self.now_ms)

    def _let_go(self, state: CallState | None, caller: Caller) -> Decision:
        """A caller silent for `silence_limit` (an answering machine, a pocket dial, someone who
        put the phone down): say why and goodbye, and end the call; the ticket says `no_input`.

        In the caller's language; before they chose one, in the greeting's."""
        language = state.language if state is not None else None
        if language not in self.rules.language_codes:
            language = self.suggested_language(caller)
        return Decision(
            (self.say("silence_goodbye", language), self.say("goodbye", language), Hangup()),
            TicketChange(outcome=Outcome.NO_INPUT),
        )

    def _on_input(
        self,
        state: CallState | None,
        digits: str | None,
        caller: Caller,
        said: Utterance | None = None,
    ) -> Decision:
        if state is None or state.step == "language":
            return self._on_language(state or CallState("language"), digits, caller)
        if state.language not in self.rules.language_codes:
            # The rules changed under this call (or the URL is not ours): start the menus again.
            return Decision((self._language_menu(0),))
        if state.step == "menu":
            return self._on_menu(state, digits, caller, said)
        if state.step == "confirm":
            return self._on_confirm(state, digits, caller)
        if state.step == "closed":
            return self._on_closed(state, digits, caller)
        if state.step == "survey":
            return self._on_survey(state, digits)
        if state.step == "hold" and state.queue in self.rules.queues:
            return Decision((GoTo(state),))
        return Decision((self._menu_gather(state.language, self.rules.main_menu, 0),))

    @_clock_starts
    def apology(self, language: str | None) -> Decision:
        """Something failed on our side: say so and send the caller to a person."""
        language = (
            language if language in self.rules.language_codes else self.rules.defaults.language
        )
        decision = self._operator(language, menu=None)
        return replace(
            decision, actions=(self.say("technical_problem", language), *decision.actions)
        )


class _Blank(dict[str, str]):
    """Fills a placeholder a translator forgot with nothing rather than failing the call."""

    def __missing__(self, key: str) -> str:
        return ""


def _noted(decision: Decision, heard: TicketChange, led_to: str) -> Decision:
    """`decision` with what the caller said on its ticket change, and where it led."""
    said = replace(heard, said_to=led_to)
    ticket = decision.ticket
    merged = replace(
        ticket,
        menu_step=said.menu_step or ticket.menu_step,
        said=said.said,
        said_to=said.said_to,
        said_checked=said.said_checked,
    )
    return replace(decision, ticket=merged)


def _clean(digits: str | None) -> str | None:
    """Twilio sends one key; anything else (empty, several, letters) is treated as a wrong key."""
    if digits is None or digits == "":
        return None
    return digits if len(digits) == 1 and digits in "0123456789*#" else "?"


def _too_long(queue: Queue, info: HoldInfo) -> bool:
    """The caller waited past the queue's `max_wait`, or is told a wait that would take them past it."""
    if queue.max_wait is None:
        return False
    told = info.estimate.median if info.estimate is not None else 0
    return info.waited_seconds + told >= queue.max_wait


def _phone(number: str | None) -> bool:
    return bool(number and _PHONE.match(number))
