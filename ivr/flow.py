"""The call flow: given the rules, where the caller is, what they pressed and the time, decide what next.

Pure: no Flask, Redis or SQL here. Every function returns a `Decision`: what the caller hears and may
press (rendered to TwiML by `twiml.py`), what to record on the ticket, and whether to join or leave a
hold queue (done by the views through the services). Where the caller is travels in the webhook URLs as
a `CallState`, so any app instance can take the next step of any call, and a restart loses nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from ivr import hours
from ivr.rules.check import Bundle
from ivr.rules.schema import Menu, Option, Rules, Target
from ivr.tickets.changes import Outcome, TicketChange, format_reference

Step = Literal["language", "menu", "closed", "hold", "voicemail"]
STEPS: tuple[Step, ...] = ("language", "menu", "closed", "hold", "voicemail")

OPERATOR, REPEAT, BACK = "0", "*", "#"
OFFER_VOICEMAIL, OFFER_CALLBACK = "1", "2"
_PHONE = re.compile(r"^\+?[1-9]\d{6,15}$")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


@dataclass(frozen=True)
class CallState:
    """Where a caller is in the flow. Carried in webhook URLs (see `to_params` / `from_params`)."""

    step: Step
    language: str | None = None
    menu: str | None = None
    queue: str | None = None
    priority: int | None = None
    tries: int = 0
    """Failed attempts in this menu; in `hold`, how many updates the caller has heard."""

    def to_params(self) -> dict[str, str]:
        params = {"step": self.step, "tries": str(self.tries)}
        for name in ("language", "menu", "queue", "priority"):
            value = getattr(self, name)
            if value is not None:
                params[name] = str(value)
        return params

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> CallState | None:
        """The state in a webhook's query string, or None when it is missing or not ours."""
        step = params.get("step")
        if step not in STEPS:
            return None
        values: dict[str, str | None] = {}
        for name in ("language", "menu", "queue"):
            value = params.get(name) or None
            if value is not None and not _NAME.match(value):
                return None
            values[name] = value
        try:
            tries = int(params.get("tries") or 0)
            priority = int(params["priority"]) if params.get("priority") else None
        except ValueError:
            return None
        if not 0 <= tries <= 10_000 or not (priority is None or 0 <= priority <= 100):
            return None
        return cls(step=step, tries=tries, priority=priority, **values)


@dataclass(frozen=True)
class Say:
    """One prompt, as text in a language; `audio` names a recording that replaces the text."""

    text: str
    language: str
    prompt: str
    audio: str | None = None


@dataclass(frozen=True)
class Pause:
    seconds: int


@dataclass(frozen=True)
class Music:
    url: str


Speech = Say | Pause | Music


@dataclass(frozen=True)
class Gather:
    """Speak while listening for one key; the key (or silence) is sent to the webhook of `then`."""

    speech: tuple[Speech, ...]
    then: CallState
    timeout: int


@dataclass(frozen=True)
class GoTo:
    """Continue with the webhook of `state` (a TwiML redirect)."""

    state: CallState


@dataclass(frozen=True)
class Record:
    """Record a voicemail; the recording is sent to the webhook of `then`."""

    then: CallState
    max_seconds: int


@dataclass(frozen=True)
class Hangup:
    pass


Action = Say | Pause | Music | Gather | GoTo | Record | Hangup


@dataclass(frozen=True)
class QueueRequest:
    queue: str
    language: str
    priority: int


@dataclass(frozen=True)
class Decision:
    actions: tuple[Action, ...]
    ticket: TicketChange = field(default_factory=TicketChange)
    join: QueueRequest | None = None


@dataclass(frozen=True)
class Caller:
    """What the flow knows about the call itself."""

    number: str | None
    reference: str
    """The ticket reference, read back after a voicemail or callback request ("" if unknown)."""

    def read_back(self, flow: Flow, language: str) -> tuple[Say, ...]:
        if not self.reference:
            return ()
        reference = format_reference(self.reference)
        return (flow.say("ticket_reference", language, reference=reference),)


class Flow:
    """Decisions for one version of the rules. Cheap to create; make one per request."""

    def __init__(self, bundle: Bundle, now: datetime) -> None:
        self.rules: Rules = bundle.rules
        self.prompts = bundle.prompts
        self.now = now

    # --- speech -------------------------------------------------------------------------------

    def say(self, prompt: str, language: str, **params: str) -> Say:
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

    def answer(self, caller: Caller) -> Decision:
        """A new call: greeting, anti-fraud notice, any service announcement, the language menu."""
        language = self.suggested_language(caller)
        return Decision((self._language_menu(0, self._greeting(language)),))

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
        self, language: str, menu_id: str, tries: int, before: tuple[Speech, ...] = ()
    ) -> Gather:
        menu = self.rules.menus[menu_id]
        speech: list[Speech] = list(before)
        if menu.intro and tries == 0:
            speech.append(self.say(menu.intro, language))
        for key, option in menu.options.items():
            label = self._text(option.label, language)
            speech.append(self.say("press_key", language, label=label, key=key))
        speech.append(self.say("menu_keys", language))
        return Gather(
            tuple(speech), CallState("menu", language, menu_id, tries=tries), self._timeout
        )

    def parent_menu(self, menu_id: str) -> str | None:
        """The menu one step closer to the main menu (None for the main menu itself)."""
        parents: dict[str, str] = {}
        todo = [self.rules.main_menu]
        while todo:
            current = todo.pop(0)
            for option in self.rules.menus[current].options.values():
                if (
                    option.menu
                    and option.menu not in parents
                    and option.menu != self.rules.main_menu
                ):
                    parents[option.menu] = current
                    todo.append(option.menu)
        return parents.get(menu_id)

    def _on_menu(self, state: CallState, digits: str | None, caller: Caller) -> Decision:
        language = state.language
        assert language is not None
        menu_id = state.menu if state.menu in self.rules.menus else self.rules.main_menu
        menu = self.rules.menus[menu_id]
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
        self, state: CallState, digits: str | None, menu: Menu, menu_id: str, caller: Caller
    ) -> Decision:
        language = state.language
        assert language is not None
        tries = state.tries + 1
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
        return self._to_queue(target.queue, language, menu_id, priority, issue, step)

    def _operator(self, language: str, menu: str | None) -> Decision:
        step = f"{menu or 'language'}:{OPERATOR}"
        return self._to_queue(self.rules.operator_queue, language, menu, None, "operator", step)

    # --- queues and business hours ----------------------------------------------------------------

    def _to_queue(
        self,
        queue_id: str,
        language: str,
        menu_id: str | None,
        priority: int | None,
        issue: str | None,
        step: str | None,
    ) -> Decision:
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
        hold = CallState("hold", language, menu_id, queue_id, priority)
        return Decision(
            (self.say("please_hold", language), GoTo(hold)),
            replace(change, queued=True, outcome=Outcome.QUEUED),
            QueueRequest(queue_id, language, priority),
        )

    def hold(self, state: CallState, position: int | None) -> Decision:
        """One round of holding: where the caller stands (if known), then music until the next update."""
        language, queue_id = state.language, state.queue
        assert language is not None and queue_id is not None
        queue = self.rules.queues[queue_id]
        speech: list[Action] = []
        if state.tries > 0 or position is None:
            speech.append(self.say("hold_thanks", language))
        if position is None:
            pass  # the queue is unreachable right now; say nothing rather than something wrong
        elif position <= 1:
            speech.append(self.say("queue_next", language))
        else:
            speech.append(self.say("queue_position", language, position=str(position)))
        speech.append(Music(queue.hold_music) if queue.hold_music else Pause(queue.announce_every))
        return Decision((*speech, GoTo(replace(state, tries=state.tries + 1))))

    def _closed_gather(self, state: CallState, next_open: datetime | None, first: bool) -> Gather:
        language = state.language
        assert language is not None
        speech: list[Speech] = []
        if first:
            if next_open is None:
                speech.append(self.say("team_closed_no_opening", language))
            else:
                when, city = hours.format_opening(next_open, self.prompts.catalog(language).locale)
                speech.append(self.say("team_closed", language, when=when, city=city))
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
        if digits == BACK:
            menu_id = state.menu if state.menu in self.rules.menus else self.rules.main_menu
            return Decision((self._menu_gather(language, menu_id, 0),))
        if digits == OPERATOR and queue_id != self.rules.operator_queue:
            return self._operator(language, state.menu)
        if digits in (REPEAT, OPERATOR):
            status = hours.status(self._team(queue_id, language), self.now)
            return Decision((self._closed_gather(state, status.next_open, first=True),))
        tries = state.tries + 1
        problem = self.say("no_input" if digits is None else "not_an_option", language)
        if tries < self.rules.defaults.max_tries:
            return Decision(
                (problem, self._closed_gather(replace(state, tries=tries), None, False))
            )
        # Nobody is there to answer and the caller is not choosing: take a message rather than hang up.
        if after_hours.voicemail:
            decision = self._voicemail(state)
        elif after_hours.callback and _callable(caller.number):
            decision = self._callback(state, caller)
        else:
            return Decision((problem, self.say("goodbye", language), Hangup()))
        return replace(decision, actions=(problem, *decision.actions))

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
            return Decision((self.say("voicemail_empty", language), GoTo(back)))
        return Decision(
            (
                self.say("voicemail_saved", language),
                *caller.read_back(self, language),
                self.say("goodbye", language),
                Hangup(),
            ),
            TicketChange(outcome=Outcome.VOICEMAIL, recording_url=url, recording_duration=seconds),
        )

    def _callback(self, state: CallState, caller: Caller) -> Decision:
        language = state.language
        assert language is not None
        if not _callable(caller.number):
            return (
                self._voicemail(state)
                if self.rules.after_hours.voicemail
                else Decision(
                    (
                        self.say("callback_no_number", language),
                        self.say("goodbye", language),
                        Hangup(),
                    )
                )
            )
        assert caller.number is not None
        number = " ".join(caller.number.lstrip("+"))
        return Decision(
            (
                self.say("callback_confirmed", language, number=number),
                *caller.read_back(self, language),
                self.say("goodbye", language),
                Hangup(),
            ),
            TicketChange(outcome=Outcome.CALLBACK, callback_number=caller.number),
        )

    # --- entry point for keys ---------------------------------------------------------------------

    def on_input(self, state: CallState | None, digits: str | None, caller: Caller) -> Decision:
        """The caller pressed `digits` (None: nothing before the timeout) at `state`."""
        digits = _clean(digits)
        if state is None or state.step == "language":
            return self._on_language(state or CallState("language"), digits, caller)
        if state.language not in self.rules.language_codes:
            # The rules changed under this call (or the URL is not ours): start the menus again.
            return Decision((self._language_menu(0),))
        if state.step == "menu":
            return self._on_menu(state, digits, caller)
        if state.step == "closed":
            return self._on_closed(state, digits, caller)
        if state.step == "hold" and state.queue in self.rules.queues:
            return Decision((GoTo(state),))
        return Decision((self._menu_gather(state.language, self.rules.main_menu, 0),))

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


def _clean(digits: str | None) -> str | None:
    """Twilio sends one key; anything else (empty, several, letters) is treated as a wrong key."""
    if digits is None or digits == "":
        return None
    return digits if len(digits) == 1 and digits in "0123456789*#" else "?"


def _callable(number: str | None) -> bool:
    return bool(number and _PHONE.match(number))
