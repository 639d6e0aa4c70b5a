"""`ivr simulate --explore`: call every reachable menu path in-process and report what is wrong.

The walk is breadth first over *menu states*. A state is where a `<Gather>` sends the caller's key:
the app keeps where the caller is in the query string of that action URL (step, language, menu,
queue ...), so a state is the URL without `tries`, which makes a menu and its retries one state.
From each state every key 1-9, 0, *, # and silence (`t`) is tried, each in a fresh call that replays
the keys leading there plus that key, and hangs up at the next menu. A wrong key or silence that only
makes the menu repeat is pressed again (up to `MAX_REPEATS` in a row) until the menu's fallback acts.
A path stops when the call leaves the menus (a queue, an agent, a voicemail, a callback request) or
ends. Every call starts at the same virtual instant, so business hours do not drift during the walk.
The app takes milliseconds a request and a walk makes hundreds of calls, so by default the walk spares
it the requests whose answers it already knows (see `explore`).

At a menu that listens (`<Gather input="dtmf speech">`) the caller also speaks: every phrase of every
option reachable by speech and of a person (the catalog's `phrases`), an off-topic sentence, and
silence. A phrase of an option must lead where that option's keys lead, or to the one question about
it (`words_elsewhere` otherwise); the other checks apply to speech as to keys. A spoken step of a path
is shown in quotes: `2 > "withdrawal"`.

Problems: dead ends (the service hangs up on a caller who reached nothing), loops with no way out,
speech in another language than the caller chose (or empty, or with an unfilled `{placeholder}`),
speech that asks the caller for a secret (`ivr.rules.secrets`), anything Twilio would refuse, and
menus of the rules no path reaches. Then, from every state found, a caller who presses nothing more
(an answering machine, a pocket dial) stays on the line: the service must let them go at the first
webhook once they have been silent for the rules' `silence_limit` (time on hold or talking to an
agent does not count); where it keeps them instead, that is a problem too.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import pytz

from ivr.hours import status
from ivr.language_id import wrong_language
from ivr.rules.prompts import OPERATOR_PHRASES, Prompts
from ivr.rules.schema import Rules
from ivr.rules.secrets import asked_secret, problem_text
from ivr.signing import SEAL_PARAM, Signer
from ivr.simulator.caller import HangUp, ScriptedCaller, Speak, Step, Utter, parse_script
from ivr.simulator.engine import Record as SimRecord
from ivr.simulator.engine import Reply, SimulatedCall, Transport
from ivr.simulator.progress import Progress
from ivr.simulator.session import InProcessSession, in_process
from ivr.simulator.shared import parse_when, ticket_of
from ivr.simulator.twiml import TwimlError, Verb, gather_input, parse_twiml
from ivr.tickets.changes import Outcome

if TYPE_CHECKING:
    from ivr.simulator.versions import Comparison

KEYS: tuple[str, ...] = (*"1234567890", "*", "#", "t")
"""What the caller tries at each menu, in order; `t` is silence until the menu times out."""
MAX_DEPTH = 12
MAX_CALLS = 4000
MAX_REPEATS = 10
"""Wrong keys or silences in a row followed, to see what a menu's fallback does."""
VOICEMAIL_SECONDS = 10
DEFAULT_NUMBER = "+14155550100"
DEFAULT_CALLED = "+18005550199"

OFFER_OTHER_LANGUAGE_PROMPT = "offer_other_language"
"""Said in the language of the team it offers, not the caller's (see `Flow._open_language`)."""

EXIT = "<exit>"
"""Edge target: the caller reached a queue, an agent, a voicemail recording or a callback request."""
END = "<end>"
"""Edge target: the service ended the call with the caller having reached none of those."""
ERROR = "<error>"
"""Edge target: the call failed (Twilio would refuse a response, or a webhook failed)."""
UNKNOWN = "<unknown>"
"""Edge target: not known where it leads (a limit of the walk or of the simulator cut it short)."""
LET_GO = "<let go>"
"""Edge target: the caller had pressed nothing for `silence_limit` and the service said goodbye
(ticket outcome no_input): the polite end of a silent call, not a dead end, and no way out."""
SENTINELS = frozenset({EXIT, END, ERROR, UNKNOWN, LET_GO})

REACHED_OUTCOMES = frozenset({"voicemail", "callback", "answered", "queued"})
_SERVICE_HANGUPS = ("the service hangs up", "end of the TwiML document", "call rejected")
_PLACEHOLDER = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")
_AUDIO_LANGUAGE = re.compile(r"/voice/audio/([^/]+)/")
_MACRO_LANGUAGES = {"cmn": "zh"}
"""Twilio names Mandarin voices cmn-CN; the catalogs call the language zh-CN."""

LABELS = {
    "dead_end": "dead end",
    "no_way_out": "loop with no way out",
    "wrong_language": "wrong language",
    "empty_say": "empty <Say>",
    "placeholder": "unfilled placeholder",
    "twilio_error": "Twilio error",
    "unreached_menu": "menu never reached",
    "kept_silent": "silent caller kept",
    "asks_for_secret": "asks for a secret",
    "words_elsewhere": "words lead elsewhere",
}

OPERATOR_KEY = "0"
"""The key for a person in every menu (`ivr.flow.engine.OPERATOR`): where `operator` phrases must lead."""
OFF_TOPIC = {
    "zh": "明天天气怎么样",
    "en": "what is the weather like tomorrow",
    "fr": "quel temps fera-t-il demain",
    "de": "wie wird das Wetter morgen",
}
"""A sentence about nothing the line offers, by base language: it must lead somewhere sensible."""


def spoken(text: str) -> str:
    """The path step that says `text` (keys are never quoted)."""
    return f'"{text}"'


def _path_steps(path: Iterable[str]) -> list[Step]:
    """The caller's steps for a path of keys, `t` and spoken words."""
    steps: list[Step] = []
    for item in path:
        if len(item) >= 2 and item.startswith('"') and item.endswith('"'):
            steps.append(Utter(item[1:-1]))
        else:
            steps += parse_script(item)
    return steps


@dataclass(frozen=True)
class Problem:
    """One thing wrong, with the keys that show it (None for problems of the rules as a whole)."""

    kind: str
    path: tuple[str, ...] | None
    message: str
    details: Mapping[str, Any] = field(default_factory=dict, hash=False)
    """For --json: the same facts as fields (state, language, prompts ...)."""

    @property
    def keys(self) -> str:
        return format_path(self.path or ())

    def line(self) -> str:
        label = LABELS.get(self.kind, self.kind)
        if self.path is None:
            return f"{label}: {self.message}"
        return f"{label} at {self.keys}: {self.message}"

    def as_json(self) -> str:
        data: dict[str, Any] = {"kind": self.kind}
        if self.path is not None:
            data["path"] = list(self.path)
            data["keys"] = self.keys
        data["message"] = self.message
        return json.dumps({**data, **self.details}, ensure_ascii=False)


@dataclass
class MenuGraph:
    """The menu states the walk found, where each key led, and the first key path to each state."""

    paths: dict[str, tuple[str, ...]] = field(default_factory=dict)
    edges: dict[str, dict[str, str]] = field(default_factory=dict)
    """state -> key -> the state it led to, or EXIT, END, ERROR or UNKNOWN; only expanded states."""
    menus: set[str] = field(default_factory=set)
    """Menu ids seen as `menu=` in any URL of the walk."""


@dataclass
class ExploreReport:
    problems: list[Problem]
    graph: MenuGraph
    calls: int
    requests: int
    """Webhook requests the app answered (fewer than the calls made: see `explore`'s `fast`)."""
    seconds: float
    complete: bool
    """False when the depth or call limit stopped the walk before every path was followed."""
    at: datetime | None = None
    """The simulated instant every call of the walk started at."""

    @property
    def states(self) -> int:
        return len(self.graph.paths)

    def summary(self) -> dict[str, Any]:
        return {
            "kind": "summary",
            "states": self.states,
            "calls": self.calls,
            "requests": self.requests,
            "problems": len(self.problems),
            "seconds": round(self.seconds, 2),
            "menus_visited": sorted(self.graph.menus),
            "complete": self.complete,
            "at": format_instant(self.at) if self.at else None,
        }

    def summary_line(self) -> str:
        found = f"{len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}"
        when = f" at {format_instant(self.at)}" if self.at else ""
        line = (
            f"explored {self.states} menu states{when} in {self.calls} calls "
            f"({self.seconds:.1f} s): "
            f"{found if self.problems else 'no problems'}"
        )
        if not self.complete:
            line += " (the walk stopped at its depth or call limit: some paths were not followed)"
        return line


def format_path(path: Iterable[str]) -> str:
    return " > ".join(path) or "(no keys)"


def format_instant(at: datetime) -> str:
    """'2026-11-23 15:00 UTC': how the report names an instant (`--at` reads it back)."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


_NOT_STATE = frozenset({"tries", "ref", "since", "silent_since", SEAL_PARAM})
"""URL parameters that are about the call (its ticket, when it joined the queue, since when it has
been silent, the URL's seal), not the menu."""


def state_of(url: str) -> str:
    """A menu state: the Gather's action URL without `tries` and the call's own context, sorted."""
    parts = urlsplit(url)
    query = sorted((k, v) for k, v in parse_qsl(parts.query) if k not in _NOT_STATE)
    return parts.path + (f"?{urlencode(query)}" if query else "")


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def _tries(url: str) -> int:
    value = _query(url).get("tries", "0")
    return int(value) if value.isdigit() else 0


def describe(state: str) -> str:
    """A state as a person would name it: 'menu account (fr-FR)'."""
    params = _query(state)
    step, language = params.get("step", "?"), params.get("language")
    suffix = f" ({language})" if language else ""
    if step == "language":
        return "the language menu"
    if step == "menu":
        return f"menu {params.get('menu', '?')}{suffix}"
    if step == "closed":
        where = f" from menu {params['menu']}" if params.get("menu") else ""
        return f"the after-hours offer of queue {params.get('queue', '?')}{where}{suffix}"
    return f"{step} {params.get('queue') or params.get('menu') or ''}".rstrip() + suffix


def _base_language(tag: str) -> str:
    primary = tag.split("-")[0].lower()
    return _MACRO_LANGUAGES.get(primary, primary)


# --- the graph ------------------------------------------------------------------------------------


def loops_without_exit(graph: MenuGraph) -> list[Problem]:
    """Sets of states the caller can circle in but never leave for a queue, agent, voicemail or callback."""
    successors = {
        s: {t for t in keys.values() if t not in SENTINELS} for s, keys in graph.edges.items()
    }
    # A state not expanded (a limit cut the walk) might lead anywhere: count it as a way out.
    hopeful = {s for s, keys in graph.edges.items() if {EXIT, UNKNOWN} & set(keys.values())} | {
        s for s in graph.paths if s not in graph.edges
    }
    predecessors: dict[str, set[str]] = {}
    for source, targets in successors.items():
        for target in targets:
            predecessors.setdefault(target, set()).add(source)
    can_exit, todo = set(hopeful), list(hopeful)
    while todo:
        for source in predecessors.get(todo.pop(), ()):
            if source not in can_exit:
                can_exit.add(source)
                todo.append(source)
    trapped = [s for s in graph.paths if s in graph.edges and s not in can_exit]
    reach = {s: _reachable(s, successors, set(trapped)) for s in trapped}
    problems, reported = [], set[frozenset[str]]()
    for state in trapped:
        component = frozenset(t for t in reach[state] if state in reach[t])
        if state not in reach[state] or component in reported:
            continue  # not on a cycle: it only leads into dead ends or into a loop reported itself
        reported.add(component)
        names = [describe(s) for s in trapped if s in component]
        shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
        message = (
            f"{shown}: no key sequence from here reaches a queue, an agent, a voicemail or a "
            "callback request"
        )
        problems.append(Problem("no_way_out", graph.paths[state], message, {"states": names}))
    return problems


def _reachable(start: str, successors: Mapping[str, set[str]], within: set[str]) -> set[str]:
    """States reachable from `start` in one key or more, staying inside `within`."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in successors.get(todo.pop(), ()):
            if target in within and target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def unreached_menus(graph: MenuGraph, menus: Iterable[str], complete: bool = True) -> list[Problem]:
    """Menus defined in the rules whose id appears in no URL of the walk."""
    why = "" if complete else " (the walk stopped at its depth or call limit: it may be further)"
    return [
        Problem(
            "unreached_menu",
            None,
            f"menu {menu!r} is defined in the rules but no key path reaches it{why}",
            {"menu": menu},
        )
        for menu in menus
        if menu not in graph.menus
    ]


# --- one explored call ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Document:
    url: str
    pressed: int
    """Keys the caller had used when this was fetched: it belongs to the path up to there."""
    reply: Reply


_SEAL = re.compile(rf"&{SEAL_PARAM}=[0-9]+\.[A-Za-z0-9_-]+")
_SEALED_URL = re.compile(rb"(/[a-z/]+\?[^\"<>\s]*?)&amp;sig=([0-9]+\.[A-Za-z0-9_-]+)")


def _resealer(session: InProcessSession) -> Callable[[bytes, str], bytes]:
    """Reseals, for the call `sid`, the webhook URLs in a TwiML document the app made for another
    (the explored calls have no callbacks: each URL is the call's own)."""
    signer: Signer = session.app.extensions["ivr"].signer

    def reseal(body: bytes, sid: str) -> bytes:
        def again(match: re.Match[bytes]) -> bytes:
            url = html.unescape(match.group(1).decode())
            issued = int(match.group(2).split(b".")[0])
            return match.group(1) + b"&amp;sig=" + signer.seal_of(url, sid, issued).encode()

        return _SEALED_URL.sub(again, body)

    return reseal


class _Recorder:
    """Stands between the simulator and the app, keeping the TwiML the explored call fetched."""

    def __init__(self, inner: Transport, fast: bool) -> None:
        self.inner = inner
        self.base_url = inner.base_url
        self.fast = fast
        self.sid = ""
        self.call: SimulatedCall | None = None
        self.caller: _PathCaller | None = None
        self.documents: list[_Document] = []
        self.sent = 0
        self._answers: dict[tuple[str, str, tuple[tuple[str, str], ...]], Reply] = {}
        self._holds: set[str] = set()
        self._parsed: dict[bytes, tuple[Verb, ...] | None] = {}
        self.reseal: Callable[[bytes, str], bytes] | None = None
        """Seals the URLs of a TwiML document for another call (set by the walker)."""

    def watch(self, call: SimulatedCall, caller: _PathCaller) -> None:
        self.sid, self.call, self.caller, self.documents = call.sid, call, caller, []

    def send(self, method: str, url: str, params: dict[str, str]) -> Reply:
        call, caller = self.call, self.caller
        sid = params.get("CallSid") or _query(url).get("CallSid")
        if sid != self.sid or call is None or caller is None:
            self.sent += 1
            return self.inner.send(method, url, params)
        # Before its last key a call repeats requests an earlier call of the walk made at the same
        # virtual instant with the same keys; the app's answer to them was the same TwiML, but
        # for the seals of its URLs, which were the earlier call's: they are made this call's.
        request = (
            method,
            _SEAL.sub("", url),
            tuple(sorted((k, v) for k, v in params.items() if k != "CallSid")),
        )
        reply = self._answers.get(request) if self.fast and caller.replaying else None
        if reply is None:
            self.sent += 1
            reply = self.inner.send(method, url, params)
            self._answers[request] = reply
        elif self.reseal is not None:
            reply = replace(reply, body=self.reseal(reply.body, self.sid))
        self.documents.append(_Document(url, caller.pressed, reply))
        if urlsplit(url).path.endswith("/hold"):
            hold = state_of(url)
            if self.fast and hold in self._holds:
                # An earlier call went on from this place in line to the agent and the survey;
                # this caller has shown the way out and leaves (the status callback frees the line).
                call.deadline = call.sim.t
            self._holds.add(hold)
        return reply

    def verbs(self, document: _Document) -> tuple[Verb, ...] | None:
        """The document's TwiML, or None when it is none (a status callback) or Twilio refuses it."""
        reply = document.reply
        if reply.status != 200:
            return None
        if reply.body not in self._parsed:
            try:
                self._parsed[reply.body] = parse_twiml(reply.body, reply.content_type)
            except TwimlError:
                self._parsed[reply.body] = None  # the engine reports it as the call's error
        return self._parsed[reply.body]

    def gather_listens(self) -> str | None:
        """The speech language of the `<Gather>` the call is at, when it takes speech."""
        if not self.documents:
            return None
        for verb in self.verbs(self.documents[-1]) or ():
            if verb.name == "Gather":
                takes = gather_input(verb)
                return takes.language if takes.speech else None
        return None

    def gather_action(self) -> str:
        """Where the `<Gather>` the call is at sends its key ("" when the document has none)."""
        if not self.documents:
            return ""
        document = self.documents[-1]
        for verb in self.verbs(document) or ():
            if verb.name == "Gather":
                return urljoin(document.url, verb.attr("action") or document.url)
        return ""


class _PathCaller(ScriptedCaller):
    """Presses the keys of a path, then hangs up at the next menu; speaks into any recording."""

    def __init__(self, path: tuple[str, ...], recorder: _Recorder) -> None:
        super().__init__(_path_steps(path))
        self.recorder = recorder
        self.menus: list[str] = []
        """The Gather action URL at each menu the caller reached, in order."""
        self.listening: list[str | None] = []
        """The speech language of each of those menus (None: keys only)."""
        self.pressed = 0
        self.recorded = False
        self.call: SimulatedCall | None = None
        self._length = len(path)

    @property
    def replaying(self) -> bool:
        """Whether the caller is still pressing the keys that lead to the explored state."""
        return self.pressed < self._length

    def next_step(self, at: str, heard: list[str]) -> Step | None:
        if at == "record":
            self.recorded = True
            return Speak(VOICEMAIL_SECONDS)
        self.menus.append(self.recorder.gather_action())
        self.listening.append(self.recorder.gather_listens())
        step = super().next_step(at, heard)
        if step is None:
            call = self.call
            if self.recorder.fast and call and not (call.queues or call.reached_agent):
                # Nothing to free for a caller leaving a menu: spare the app the status callback.
                call.status_url = None
            return HangUp()
        self.pressed += 1
        return step


class _SilentCaller(_PathCaller):
    """Presses the keys of a path, then nothing more: lets every menu time out and says nothing
    into a recording, until the service ends the call (or the simulator's time limit does)."""

    def next_step(self, at: str, heard: list[str]) -> Step | None:
        if at == "record" or not self.replaying:
            return None
        return super().next_step(at, heard)


_NOT_SILENT = ("/voice/hold", "/voice/agent")
"""Webhooks of a hold round and of the end of a conversation: a caller there waits for an agent
or has just talked to one, which restarts their silence (holding is what they asked for)."""


@dataclass(frozen=True)
class Kept:
    """A silent caller the service kept past `silence_limit`."""

    url: str
    """The webhook requested once the caller had been silent for the limit, whose answer did
    not end the call (the service should have let them go there)."""
    due: float
    """How long the caller had been silent at that request, in seconds."""
    seconds: float
    """How long they stayed silent on the line in all."""
    ended_by_service: bool
    """Whether the service ended the call in the end (else the caller, at the time limit)."""


def kept_silent(records: Iterable[SimRecord], limit: float) -> Kept | None:
    """The first time a call's records show a silent caller kept: a webhook requested `limit`
    seconds or more after the caller's last key (or the call's start, their last hold round or
    conversation) that did not end the call, or silence past the limit until the caller hung up.

    A caller kept on hold is not kept silent: the last hold round is as recent as its clip."""
    quiet_from, due, holding = 0.0, None, False
    found: tuple[str, float] | None = None
    for record in records:
        if record.kind in ("press", "speech"):
            if found is not None:
                return _kept(found, record.at - quiet_from, ended_by_service=False)
            quiet_from, due, holding = record.at, None, False
        elif record.kind == "request":
            url = record.text.partition(" ")[2]
            if urlsplit(url).path in _NOT_SILENT:
                if found is not None:
                    return _kept(found, record.at - quiet_from, ended_by_service=False)
                quiet_from, due, holding = record.at, None, True
                continue
            holding = False
            if due is not None and found is None:
                found = due  # the service answered `due` and the call went on
            elif due is None and record.at - quiet_from >= limit:
                due = (url, record.at - quiet_from)
        elif record.kind == "hangup":
            by_service = record.text.startswith(_SERVICE_HANGUPS)
            if found is not None:
                return _kept(found, record.at - quiet_from, by_service)
            if not by_service and not holding and record.at - quiet_from > limit:
                return Kept("", record.at - quiet_from, record.at - quiet_from, False)
            return None
    return None


def _kept(found: tuple[str, float], seconds: float, ended_by_service: bool) -> Kept:
    url, due = found
    return Kept(url, due, seconds, ended_by_service)


def _place(url: str) -> str:
    """Where a silent caller is kept, in any language and whichever menu led there."""
    if not url:
        return "the call"
    query = _query(url)
    drop = {"language", *(("menu",) if query.get("step") != "menu" else ())}
    place = urlsplit(url).path + "?" + urlencode({k: v for k, v in query.items() if k not in drop})
    return describe(state_of(place))


@dataclass
class _KeptReport:
    """The shortest key path after which a silent caller is kept at one place, and how many."""

    path: tuple[str, ...]
    kept: Kept
    limit: int
    paths: int = 1

    def problem(self, where: str) -> Problem:
        kept = self.kept
        until = "the call ends" if kept.ended_by_service else "the caller hangs up"
        others = f" (so are callers silent after {self.paths - 1} other key paths)"
        message = (
            f"a caller who presses nothing more is still kept in {where} after {kept.due:.0f} s "
            f"of silence (silence_limit: {self.limit} s), {kept.seconds:.0f} s in all until "
            f"{until}{others if self.paths > 1 else ''}"
        )
        details = {
            "state": where,
            "silent_seconds": round(kept.seconds),
            "silence_limit": self.limit,
            "paths": self.paths,
        }
        return Problem("kept_silent", self.path, message, details)


@dataclass(frozen=True)
class _Result:
    """Where the last key of a path led."""

    path: tuple[str, ...]
    target: str
    """The next state, or EXIT, END, ERROR or UNKNOWN."""
    at: str
    """The full action URL where the last key was pressed ("" for the first call)."""
    then: str = ""
    """The full action URL of the next menu, if the call reached one."""
    response: bytes = b""
    """The app's answer to the last key, to tell wrong keys that behave alike."""
    listens: str | None = None
    """The speech language of the next menu's <Gather>, when it takes speech."""


# --- the walk -------------------------------------------------------------------------------------


def _offers_in_their_language(prompts: Prompts) -> frozenset[tuple[str, str]]:
    offers = set()
    for catalog in prompts.catalogs.values():
        text = catalog.texts.get(OFFER_OTHER_LANGUAGE_PROMPT)
        if text:
            offers.add((catalog.say_language, " ".join(text.split())))
    return frozenset(offers)


class _Walker:
    """Walks the menus of one in-process app breadth first and collects what is wrong."""

    def __init__(
        self,
        session: InProcessSession,
        number: str,
        called: str,
        max_depth: int,
        max_calls: int,
        fast: bool,
        languages: tuple[str, ...] = (),
        progress: Progress | None = None,
    ) -> None:
        self.session = session
        self.progress = progress
        self.languages = languages
        """The rules' languages: a prompt written in one of them but not the caller's is reported."""
        prompts = session.app.extensions["ivr"].rules.get().prompts
        self.offers = _offers_in_their_language(prompts)
        """(language, text) of what is meant to be said in another language than the caller's:
        the offer of an open team of another language, in that language."""
        self.number, self.called = number, called
        self.max_depth, self.max_calls = max_depth, max_calls
        self.recorder = _Recorder(session.simulator.transport, fast)
        # The engine names the prompt of every <Say>; the walk needs that only for its messages.
        self.matcher = session.simulator.matcher
        session.simulator.matcher = None if fast else self.matcher
        session.simulator.transport = self.recorder
        self.recorder.reseal = _resealer(session)
        self.graph = MenuGraph()
        self.calls = 0
        self.complete = True
        self._checked: set[tuple[bytes, str | None]] = set()
        self._chains: dict[tuple[str, bytes], _Result] = {}
        self._dead_ends: dict[str, Problem] = {}
        self._kept: dict[str, _KeptReport] = {}
        self._errors: dict[str, Problem] = {}
        self._speech: dict[tuple[str, str], Problem] = {}
        self._wrong: dict[tuple[str, str], tuple[tuple[str, ...], list[str], str]] = {}
        self._written: dict[tuple[str, str], Problem] = {}
        self._listening: dict[str, tuple[tuple[str, ...], str]] = {}
        """States whose menu listens: the path that reaches them listening and the language."""
        self._elsewhere: list[Problem] = []
        self._key_landings: dict[tuple[str, tuple[str, ...]], tuple[object, ...]] = {}
        """Where keys pressed at a listening state land (`_landing_by_keys`)."""
        self._last: SimulatedCall | None = None
        self.bundle = session.app.extensions["ivr"].rules.get()
        self._secret_words = {
            catalog.say_language: catalog.secret_words
            for catalog in self.bundle.prompts.catalogs.values()
            if catalog.secret_words is not None
        }
        """A catalog's own words for a secret, by the language its <Say> is spoken in."""

    # --- walking ---

    def walk(self) -> None:
        first = self._call(())
        if first.target in SENTINELS:
            return
        todo = deque([first.target])
        self.graph.paths[first.target] = ()
        if first.listens is not None:
            self._listening[first.target] = ((), first.listens)
        while todo:
            state = todo.popleft()
            path = self.graph.paths[state]
            if len(path) >= self.max_depth:
                self.complete = False
                continue
            edges: dict[str, str] = {}
            for key in KEYS:
                if self.calls >= self.max_calls:
                    self.complete = False
                    return
                result = self._try(state, path, key)
                edges[key] = result.target
                self._found(result, todo)
            if state in self._listening:
                for said, result in self._speak(state):
                    edges[said] = result.target
                    self._found(result, todo)
            self.graph.edges[state] = edges

    def _found(self, result: _Result, todo: deque[str]) -> None:
        """Note where a step led: a new state to expand, or a shorter path to a known one."""
        target = result.target
        if target in SENTINELS:
            return
        if result.listens is not None and target not in self._listening:
            self._listening[target] = (result.path, result.listens)
        if target not in self.graph.paths:
            self.graph.paths[target] = result.path
            todo.append(target)
        elif target not in self.graph.edges and len(result.path) < len(self.graph.paths[target]):
            # Reached more directly than first found (0 rather than 7 > 7 > 7): shorter
            # replays, and the path a problem there is reported with reads better.
            self.graph.paths[target] = result.path

    def _speak(self, state: str) -> Iterator[tuple[str, _Result]]:
        """At a listening menu: every phrase of every option (and of a person), which must lead
        where the option's keys lead or to the one question about it, then an off-topic sentence."""
        path, language = self._listening[state]
        menu = _query(state).get("menu", "")
        chosen = _query(state).get("language") or language
        phrases = self.bundle.prompts.catalog(chosen).phrases
        wanted = [(keys, label) for keys, label in self.bundle.router.options(menu)]
        wanted.append(((OPERATOR_KEY,), OPERATOR_PHRASES))
        for keys, label in wanted:
            for phrase in phrases.get(label, ()):
                if self.calls >= self.max_calls:
                    self.complete = False
                    return
                said = spoken(phrase)
                result = self._call((*path, said))
                landed = self._landing(result)
                yield said, result
                asked = _query(result.target)
                if asked.get("step") == "confirm" and asked.get("choice") == "".join(keys):
                    continue  # the one question about this option
                should = self._landing_by_keys(state, path, keys)
                if landed != should:
                    self._words_elsewhere(result.path, landed, should, phrase, label, keys, state)
        off_topic = OFF_TOPIC.get(_base_language(chosen))
        if off_topic and self.calls < self.max_calls:
            said = spoken(off_topic)
            yield said, self._call((*path, said))

    def _landing_by_keys(
        self, state: str, path: tuple[str, ...], keys: tuple[str, ...]
    ) -> tuple[object, ...]:
        """Where pressing `keys` at `state` lands, asked once per state and keys: every phrase of
        an option is compared with it."""
        known = self._key_landings.get((state, keys))
        if known is None:
            known = self._key_landings[(state, keys)] = self._landing(self._call((*path, *keys)))
        return known

    def _landing(self, result: _Result) -> tuple[object, ...]:
        """Where a path's last step left the caller: the next menu, or the queue and issue."""
        call = self._last
        if result.target not in SENTINELS or call is None:
            return (result.target,)
        ticket = ticket_of(self.session.app, call.sid)
        return (result.target, tuple(call.queues), ticket["issue"] if ticket else None)

    def _words_elsewhere(
        self,
        path: tuple[str, ...],
        landed: tuple[object, ...],
        should: tuple[object, ...],
        phrase: str,
        label: str,
        keys: tuple[str, ...],
        state: str,
    ) -> None:
        message = (
            f'in {describe(state)} "{phrase}", a phrase of {label}, leads to {_landed(landed)}, '
            f"not where the keys {format_path(keys)} lead ({_landed(should)})"
        )
        details = {"phrase": phrase, "label": label, "state": describe(state), "keys": list(keys)}
        self._elsewhere.append(Problem("words_elsewhere", path, message, details))

    def walk_silently(self, limit: int) -> None:
        """From every state the walk found, a caller who presses nothing more stays on the line;
        where the service keeps one past `limit` seconds of silence, that is a `kept_silent`."""
        for path in list(self.graph.paths.values()):
            if self.calls >= self.max_calls:
                self.complete = False
                return
            call = self._run(_SilentCaller(path, self.recorder), path)
            kept = kept_silent(call.records, limit)
            if kept is not None:
                self._kept_silent(path, kept, limit)

    def _try(self, state: str, path: tuple[str, ...], key: str) -> _Result:
        """Press `key` at `state`; if the menu only repeats, press it again until something else happens."""
        result = self._call((*path, key))
        if not self._is_retry(result, state):
            return result
        # Keys the app answers alike (7, 8 and 9 where only 1-3 are options) repeat alike too.
        chain = (state, result.response)
        if chain in self._chains:
            return self._chains[chain]
        repeats = 1
        while self._is_retry(result, state) and repeats < MAX_REPEATS:
            if self.calls >= self.max_calls:
                self.complete = False
                break
            result = self._call((*result.path, key))
            repeats += 1
        self._chains[chain] = result
        return result

    @staticmethod
    def _is_retry(result: _Result, state: str) -> bool:
        return result.target == state and _tries(result.then) > _tries(result.at)

    def _run(self, caller: _PathCaller, path: tuple[str, ...]) -> SimulatedCall:
        """A fresh call by `caller`, who presses `path`; the problems on the way are noted."""
        self.calls += 1
        if self.progress is not None:
            self.progress.advance()
        simulator = self.session.simulator
        simulator.rewind()  # each call starts at the explored instant: hours must not drift
        call = simulator.place_call(self.number, self.called, caller)
        caller.call = call
        self.recorder.watch(call, caller)
        simulator.run()
        simulator.calls.pop(call.sid, None)  # thousands of transcripts are not needed afterwards
        self._last = call
        for document in self.recorder.documents:
            self._note_menus(document)
            self._check_speech(document, path[: document.pressed])
        self._note_errors(call, path)
        return call

    def _call(self, path: tuple[str, ...]) -> _Result:
        """A fresh call pressing `path`; where its last key led, and any problems on the way."""
        caller = _PathCaller(path, self.recorder)
        call = self._run(caller, path)
        documents = self.recorder.documents
        count = len(path)
        at = caller.menus[count - 1] if 0 < count <= len(caller.menus) else ""
        response = next((d.reply.body for d in documents if d.pressed >= count), b"")
        then = caller.menus[count] if len(caller.menus) > count else None
        listens = caller.listening[count] if len(caller.listening) > count else None
        if self._reached(call, caller, ended=then is None):
            return _Result(path, EXIT, at, then or "", response)
        if then is not None:
            target = state_of(then) if then else UNKNOWN
            return _Result(path, target, at, then, response, listens)
        if call.errors:
            return _Result(path, ERROR, at, "", response)
        ending = next((r.text for r in reversed(call.records) if r.kind == "hangup"), "")
        if not ending.startswith(_SERVICE_HANGUPS):
            return _Result(path, UNKNOWN, at, "", response)
        if self._let_go(call):
            return _Result(path, LET_GO, at, "", response)
        self._dead_end(path, at, call, ending)
        return _Result(path, END, at, "", response)

    def _let_go(self, call: SimulatedCall) -> bool:
        """Whether the service ended the call because the caller had been silent too long."""
        ticket = ticket_of(self.session.app, call.sid)
        return bool(ticket and ticket["outcome"] == Outcome.NO_INPUT.value)

    def _reached(self, call: SimulatedCall, caller: _PathCaller, ended: bool) -> bool:
        """Whether the caller reached a queue, an agent, a voicemail or a callback request."""
        if call.queues or call.reached_agent or any(r.kind == "dial" for r in call.records):
            return True
        if not ended and not caller.recorded:
            return False  # a voicemail or a callback request ends the call: no need to look
        ticket = ticket_of(self.session.app, call.sid)
        return bool(ticket and ticket["outcome"] in REACHED_OUTCOMES)

    # --- problems ---

    def _dead_end(self, path: tuple[str, ...], at: str, call: SimulatedCall, ending: str) -> None:
        where = state_of(at) if at else ""
        place = f"in {describe(where)}, " if where else ""
        last = f' after "{call.heard[-1]}"' if call.heard else ""
        message = (
            f"{place}{ending}{last} without the caller reaching a queue, an agent, a voicemail "
            "or a callback request"
        )
        details = {"state": describe(where) if where else None, "ending": ending}
        problem = Problem("dead_end", path, message, details)
        known = self._dead_ends.get(where)
        # One report per state; the shortest path, and silence rather than a wrong key, reads best.
        if known is None or _rank(path) < _rank(known.path or ()):
            self._dead_ends[where] = problem

    def _kept_silent(self, path: tuple[str, ...], kept: Kept, limit: int) -> None:
        # One report per place, whatever the language or the menu that led there: the shortest
        # path shows it, and the others are counted.
        where = _place(kept.url)
        known = self._kept.get(where)
        if known is None:
            self._kept[where] = _KeptReport(path, kept, limit)
        elif _rank(path) < _rank(known.path):
            self._kept[where] = _KeptReport(path, kept, limit, known.paths + 1)
        else:
            known.paths += 1

    def _note_errors(self, call: SimulatedCall, path: tuple[str, ...]) -> None:
        steps = 0
        for record in call.records:
            if record.kind in ("press", "silence", "speech", "unheard"):
                steps += 1
            elif record.kind == "error":
                key = re.sub(r"tries=\d+", "tries=N", record.text)
                if key not in self._errors:
                    self._errors[key] = Problem("twilio_error", path[:steps], record.text)

    def _note_menus(self, document: _Document) -> None:
        menu = _query(document.url).get("menu")
        if menu:
            self.graph.menus.add(menu)

    def _check_speech(self, document: _Document, path: tuple[str, ...]) -> None:
        """Speech in the caller's language, never empty, with every placeholder filled."""
        verbs = self.recorder.verbs(document)
        # The same TwiML says the same wherever it comes; only a document without links takes
        # the caller's language from its own URL.
        seen = (document.reply.body, _query(document.url).get("language"))
        if verbs is None or seen in self._checked:
            return
        self._checked.add(seen)
        urls = [urljoin(document.url, u) for u in _urls(verbs)]
        for url in urls:
            menu = _query(url).get("menu")
            if menu:
                self.graph.menus.add(menu)
        language = _chosen_language(document.url, urls)
        where = describe(state_of(urls[0])) if urls else document.url
        for verb in _spoken(verbs):
            if verb.name == "Play":
                found = _AUDIO_LANGUAGE.search(verb.text)
                if language and found and found[1] != language:
                    self._wrong_language(language, found[1], verb.text, path)
                continue
            text = " ".join(verb.text.split())
            if not text:
                problem = Problem("empty_say", path, f"an empty <Say> in {where}", {"state": where})
                self._speech.setdefault(("empty_say", where), problem)
            elif placeholder := _PLACEHOLDER.search(text):
                message = f'"{text}" still has {placeholder[0]} in {where}'
                details = {"text": text, "placeholder": placeholder[0], "state": where}
                problem = Problem("placeholder", path, message, details)
                self._speech.setdefault(("placeholder", text), problem)
            heard = verb.attr("language") or "en-US"
            if text:
                self._check_secret(heard, text, path, where)
            if (heard, text) in self.offers:
                continue
            if language and text and _base_language(heard) != _base_language(language):
                self._wrong_language(language, heard, text, path)
            elif language and text:
                self._check_written(language, text, path, where)

    def _check_secret(self, spoken_in: str, text: str, path: tuple[str, ...], where: str) -> None:
        """Speech that asks the caller for a secret, in the words of the language it is spoken in."""
        if ("asks_for_secret", text) in self._speech:
            return
        found = self.matcher.identify(text) if self.matcher else None
        prompt = found[0] if found else None
        asked = asked_secret(text, spoken_in, prompt, self._secret_words.get(spoken_in))
        if asked is None:
            return
        named = f"prompt {prompt} " if prompt else ""
        message = f"{named}in {where} {problem_text(asked)}"
        details = {"prompt": prompt, "text": text, "secret": asked.secret, "state": where}
        self._speech[("asks_for_secret", text)] = Problem("asks_for_secret", path, message, details)

    def _check_written(self, chosen: str, text: str, path: tuple[str, ...], where: str) -> None:
        """A prompt spoken in the caller's voice but written in another of the rules' languages."""
        written_in = wrong_language(text, chosen, self.languages)
        if written_in is None or (chosen, text) in self._written:
            return
        found = self.matcher.identify(text) if self.matcher else None
        prompt = found[0] if found else None
        named = f"prompt {prompt} " if prompt else ""
        message = (
            f'after choosing {chosen} the caller hears {named}written in {written_in}: "{text}"'
        )
        details = {
            "language": chosen,
            "written_in": written_in,
            "prompt": prompt,
            "text": text,
            "state": where,
        }
        # The walk is breadth first: the first path to a text is among the shortest.
        self._written[(chosen, text)] = Problem("wrong_language", path, message, details)

    def _wrong_language(self, chosen: str, heard: str, text: str, path: tuple[str, ...]) -> None:
        found = self.matcher.identify(text) if self.matcher else None
        prompt = found[0] if found else text
        _, prompts, _ = self._wrong.setdefault((chosen, heard), (path, [], text))
        if prompt not in prompts:
            prompts.append(prompt)

    def problems(self) -> list[Problem]:
        wrong = []
        for (chosen, heard), (path, prompts, example) in self._wrong.items():
            shown = ", ".join(prompts[:5]) + (
                f" and {len(prompts) - 5} more" if len(prompts) > 5 else ""
            )
            message = (
                f"after choosing {chosen} the caller hears {heard}: {shown} "
                f'(for example "{example}")'
            )
            details = {"language": chosen, "heard": heard, "prompts": prompts}
            wrong.append(Problem("wrong_language", path, message, details))
        return [
            *self._errors.values(),
            *self._dead_ends.values(),
            *(report.problem(where) for where, report in self._kept.items()),
            *wrong,
            *self._written.values(),
            *self._speech.values(),
            *self._elsewhere,
        ]


def _landed(landing: tuple[object, ...]) -> str:
    """A landing of `_Walker._landing` as a person would name it."""
    target = str(landing[0])
    if target not in SENTINELS:
        return describe(target)
    queues, issue = landing[1:] if len(landing) == 3 else ((), None)
    if isinstance(queues, tuple) and queues:
        return f"queue {queues[-1]}" + (f" (issue {issue})" if issue else "")
    return target


def _rank(path: tuple[str, ...]) -> tuple[int, bool]:
    return len(path), not (path and path[-1] == "t")


def _urls(verbs: Iterable[Verb]) -> Iterator[str]:
    """The webhook URLs a document can send the call to, in document order."""
    for verb in verbs:
        if verb.name in ("Gather", "Record", "Dial", "Enqueue") and verb.attr("action"):
            yield verb.attr("action") or ""
        elif verb.name == "Redirect" and verb.text:
            yield verb.text


def _spoken(verbs: Iterable[Verb]) -> Iterator[Verb]:
    """`<Say>` and `<Play>`, also those inside a `<Gather>`."""
    for verb in verbs:
        if verb.name in ("Say", "Play"):
            yield verb
        elif verb.name == "Gather":
            yield from _spoken(verb.children)


def _chosen_language(url: str, urls: list[str]) -> str | None:
    """The caller's language for a document: the one its links carry on, else its own URL's.

    A document whose links carry no language is the language menu (each option in its own voice)."""
    if urls:
        return next((q["language"] for q in map(_query, urls) if q.get("language")), None)
    return _query(url).get("language")


# --- entry points ---------------------------------------------------------------------------------


def explore(
    rules: Path,
    prompts: Path,
    at: datetime,
    agents: tuple[str, ...] = (),
    *,
    number: str = DEFAULT_NUMBER,
    called: str = DEFAULT_CALLED,
    max_depth: int = MAX_DEPTH,
    max_calls: int = MAX_CALLS,
    fast: bool = True,
    progress: Progress | None = None,
) -> ExploreReport:
    """Walk every menu path reachable at `at` in-process and report the problems found.

    `fast` spares the app requests whose answers the walk already knows: the keys before a call's
    last get the TwiML the app gave the same requests earlier in the walk (same URL, keys and
    instant), a caller leaving a menu sends no status callback, and a caller reaching a place in line
    an earlier call went on from to the agent leaves. Without, every call runs like a real one."""
    from ivr.services import services

    started = time.perf_counter()
    with in_process(at, rules, prompts, agents=agents) as session:
        loaded = services().rules.get().rules
        menus = list(loaded.menus)
        languages = tuple(loaded.language_codes)
        walker = _Walker(session, number, called, max_depth, max_calls, fast, languages, progress)
        walker.walk()
        walker.walk_silently(loaded.defaults.silence_limit)
    graph = walker.graph
    problems = [
        *walker.problems(),
        *loops_without_exit(graph),
        *unreached_menus(graph, menus, walker.complete),
    ]
    seconds = time.perf_counter() - started
    return ExploreReport(
        problems, graph, walker.calls, walker.recorder.sent, seconds, walker.complete, at
    )


PRESETS = ("open", "closed", "holiday")
"""Instants named after the rules' hours, found from the current hour on (see `preset_instant`)."""
_PRESET_HOURS = {"open": 14 * 24, "closed": 14 * 24, "holiday": 366 * 24}


def preset_instant(name: str, rules: Rules, since: datetime) -> datetime:
    """The first whole hour from `since` that fits a preset of `PRESETS`.

    open: the most teams are open at once (the regional teams' hours need not overlap);
    closed: the fewest are; holiday: a team is closed for a public holiday at an hour its weekly
    hours would have it open. A ValueError when none comes in 14 days (366 for a holiday)."""
    from ivr.hours import hours_on

    if name not in PRESETS:
        raise ValueError(f"unknown instant {name!r}: a time, or one of {', '.join(PRESETS)}")
    teams = list(rules.teams.values())
    first = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    hours = [first + timedelta(hours=h) for h in range(1, _PRESET_HOURS[name] + 1)]
    if name == "holiday":
        for instant in hours:
            for team in teams:
                local = instant.astimezone(pytz.timezone(team.timezone))
                minute = local.hour * 60 + local.minute
                weekly = team.weekly.get(local.weekday(), ())
                if hours_on(team, local.date()).reason.startswith("holiday") and any(
                    r.start <= minute < r.end for r in weekly
                ):
                    return instant
        raise ValueError("no team has a public holiday on a working day within a year")
    open_teams = [sum(status(team, instant).is_open for team in teams) for instant in hours]
    best = max(open_teams) if name == "open" else min(open_teams)
    return hours[open_teams.index(best)]


def walk_instants(
    args: argparse.Namespace, rules: Path, prompts: Path, now: datetime
) -> list[tuple[str, datetime]]:
    """What `--at` and each `--explore-at` name, as (how it was asked for, instant); now without.

    A preset is the first such hour after the first time given, else after `now`."""
    asked = [a.strip() for a in [args.at, *(getattr(args, "explore_at", None) or [])] if a]
    if not asked:
        return [("now", now)]
    times = {text: parse_when(text) for text in asked if text.lower() not in PRESETS}
    since = next(iter(times.values()), now)
    presets = [text.lower() for text in asked if text.lower() in PRESETS]
    loaded = None
    if presets:
        from ivr.rules.check import load_bundle

        loaded = load_bundle(rules, prompts).rules
    instants = []
    for text in asked:
        if loaded is not None and text.lower() in PRESETS:
            instants.append((text.lower(), preset_instant(text.lower(), loaded, since)))
        else:
            instants.append((text, times[text]))
    return instants


def explore_command(
    args: argparse.Namespace,
    paths: tuple[Path, Path],
    out: TextIO,
    show_progress: bool = False,
    compared: Comparison | None = None,
) -> int:
    """`ivr simulate --explore`: one line (or JSON object) per problem, then a summary; 1 if any.

    With several instants (`--at` and `--explore-at`), one walk each, every line naming its instant.
    `show_progress`: a count of the calls of each walk on the terminal (`ivr.simulator.progress`).
    `compared`: a stored version explored against the live one (`--rules-version`): first what
    making it live would strand, warnings that do not change the exit status (calls are pinned to
    their version, so none is dropped)."""
    if getattr(args, "url", None):
        raise ValueError("--explore calls the app in-process; leave out --url")
    if compared is not None:
        if args.json:
            for record in compared.records():
                print(json.dumps(record, ensure_ascii=False), file=out)
        else:
            for line in compared.lines():
                print(line, file=out)
    agents = tuple(a.strip() for a in (args.agents or "").split(",") if a.strip())
    instants = walk_instants(args, paths[0], paths[1], datetime.now(UTC))
    found = 0
    for asked, at in instants:
        named = format_instant(at)
        with Progress(show_progress, f"exploring at {named}", "calls") as progress:
            report = explore(
                paths[0],
                paths[1],
                at,
                agents,
                number=getattr(args, "number", None) or DEFAULT_NUMBER,
                called=getattr(args, "to", None) or DEFAULT_CALLED,
                progress=progress,
            )
        found += len(report.problems)
        label = named if asked == named or asked not in PRESETS else f"{asked} {named}"
        prefix = f"[{label}] " if len(instants) > 1 else ""
        walk = {"at": named, **({"walk": asked} if asked in PRESETS else {})}
        for problem in report.problems:
            if args.json:
                print(
                    json.dumps({**json.loads(problem.as_json()), **walk}, ensure_ascii=False),
                    file=out,
                )
            else:
                print(prefix + problem.line(), file=out)
        if args.json:
            print(json.dumps({**report.summary(), **walk}, ensure_ascii=False), file=out)
        else:
            visited = sorted(report.graph.menus)
            print(f"{prefix}menus visited: {', '.join(visited) or '-'}", file=out)
            print(prefix + report.summary_line(), file=out)
    return 1 if found else 0
