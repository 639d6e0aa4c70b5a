"""Scenario files for `ivr simulate --scenario FILE...`: scripted calls with expectations, for regression.

A scenario file is a YAML list of scenarios. Each scenario runs in-process, on a fresh app and database
of its own (so runs never influence each other), once per language when `languages` is given:

    - name: Security emergency, in hours, reaches the security desk    # required
      languages: [zh-CN, en-US, fr-FR, de-DE]  # optional: one run per language (codes from the rules)
      at: 2026-11-23T15:00:00Z                 # required: when the call is placed (formats of --at)
      from: "+14155550100"                     # optional: the caller's number (quote it)
      to: "+18005550199"                       # optional: the number called
      agents: [sec_desk]                       # optional: agents logged in before the call
      agents_login_after: 150                  # optional: they log in this many seconds into the call
                                               # instead, on the agent line (extension, PIN, 1)
      agent: {answers: true, answer_after: 5, talk_seconds: 60}   # optional: how agents behave
      keys: "{lang},3,1,w1,5"                  # the caller script (see ivr.simulator.caller); "{lang}"
                                               # is the run's language's key in the language menu
      say: ["my withdrawal never arrived"]     # optional: what each `s` of the script says, in order;
                                               # an item may be {text: ..., confidence: 0.4} (the
                                               # Confidence Twilio sends, default 0.9); may map
                                               # languages to lists, like `at`
      on_prompt: {survey_question: "5"}        # optional: at a menu whose last prompt is this id,
                                               # press these keys (the script is not used there)
      hangup_after: 600                        # optional: the caller hangs up after this many seconds
      hangup_at: "ticket number"               # optional: ... or on hearing a text containing this
      expect:                                  # optional: checked in order against the call's records
        - heard: {prompt: anti_fraud}          # a prompt id, recognised in any language ...
        - heard: {text: "BitP"}                # ... or a substring of what was said (both: both)
        - queue: security                      # the caller joined this queue
        - position: 1                          # this position was heard (`true`: any position)
        - agent: true                          # an agent answered
        - recorded: true                       # a voicemail was recorded
        - not_heard: {prompt: no_agents}       # never heard anywhere in the call (not ordered)
        - agent: false                         # `agent: false` / `recorded: false`: never, anywhere
      callback_expect:                         # optional: the callback the service places to the
        - heard: {prompt: callback_opening}    # caller (they asked for one), checked like `expect`
        - agent: true                          # against that call; `false`: none may be placed
      ticket: {outcome: answered, queue: security, language: "{language}"}   # optional
      exchange: ["known=+4915112345678@{language}"]  # optional: an exchange hook, the reference
                                               # implementation in-process (the values of
                                               # --exchange: known=NUMBER[@LANGUAGE][:vip][:sms],
                                               # down, slow); the script's `code` keys its code
      twilio:                                  # optional: what Twilio does to webhooks, on request
        retries: 1                             # every webhook is sent again (same URL, form and
                                               # I-Twilio-Idempotency-Token), the last answer counts
        status_delay: 30                       # the status callback comes 30 s after the call ends
        public_url: https://ivr.example.com    # Twilio signs this URL; the app is behind a proxy
        forwarded: true                        # ... that sends X-Forwarded-Proto/Host (or not)

An `error: "words"` expectation says the call must end with an error containing these words (such
as "HTTP 403" when the proxy does not forward the public host); that error then does not fail the run.

`at`, `from`, `agents` and each `ticket` value may instead map languages to values, with an optional
`default` for the others: `at: {zh-CN: 2026-11-23T03:00:00Z, default: 2026-11-23T10:00:00Z}`.

Ordered expectations each match a record after the one the previous expectation matched. `ticket` holds
fields of `ivr.simulator.report.ticket_fields` that must equal the ticket's, after the call has ended;
"{language}" in a value is the run's language, `true` means "set to anything", `null` means "not set".
A run also fails if the simulated call (or any call it led to) ends with an error, such as a response
Twilio would refuse, and if an agent told to log in on the agent line could not.

`run_scenario_files` prints one line per run, `ok  NAME [LANGUAGE]` or `FAIL NAME [LANGUAGE]: why`, then
`N passed, M failed`; it returns 0 when all passed, 1 when any failed, and 2 (running nothing) when a
file is malformed, with the file, line, scenario and key at fault.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TextIO

import yaml

from ivr.rules.bundle import Bundle
from ivr.rules.check import load_bundle
from ivr.rules.loader import RulesError
from ivr.simulator.caller import Press, ScriptedCaller, ScriptError, Step, Utter, parse_script
from ivr.simulator.engine import (
    AgentBehaviour,
    PromptMatcher,
    Record,
    SimulatedCall,
    SimulationError,
    Simulator,
)
from ivr.simulator.exchange import ExchangeSetup, parse_exchange
from ivr.simulator.progress import Progress
from ivr.simulator.report import ticket_fields
from ivr.simulator.session import SIMULATED_AGENT_PIN, in_process
from ivr.simulator.shared import parse_when, ticket_of

DEFAULT_FROM = "+14155550100"
DEFAULT_TO = "+18005550199"
AGENT_LINE_FROM = "+15550100190"
"""Who calls the agent line for an agent without a phone (a Twilio Client): any number will do."""
SCENARIO_KEYS = (
    "name",
    "languages",
    "at",
    "from",
    "to",
    "agents",
    "agents_login_after",
    "agent",
    "keys",
    "say",
    "on_prompt",
    "hangup_after",
    "hangup_at",
    "expect",
    "callback_expect",
    "ticket",
    "twilio",
    "exchange",
)
TWILIO_KEYS = ("retries", "status_delay", "public_url", "forwarded")
AGENT_KEYS = ("answers", "answer_after", "talk_seconds")
EXPECTATIONS = ("heard", "not_heard", "queue", "position", "agent", "recorded", "error")
HEARD_KEYS = ("prompt", "text")
SHOWN_AFTER_MISMATCH = 5
"""How many of the next records a mismatch report shows."""

Path_ = tuple[str | int, ...]
"""Where a value stands in a scenario file: indexes and keys from the top."""


class ScenarioError(ValueError):
    """A scenario file that cannot be run; the message names the file, line, scenario and key."""


class _Bad(Exception):
    """A problem at `path` inside one file, before the file and line are known."""

    def __init__(self, path: Path_, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


@dataclass(frozen=True)
class Expectation:
    """One line of `expect`: what to look for in the call's records."""

    kind: str
    prompt: str | None = None
    text: str | None = None
    queue: str | None = None
    position: int | None = None
    negative: bool = False
    """Must never happen anywhere in the call (not_heard, agent: false, recorded: false)."""

    def describe(self) -> str:
        """The expectation as written, for reports."""
        if self.kind in ("heard", "not_heard"):
            parts = []
            if self.prompt:
                parts.append(f"prompt {self.prompt}")
            if self.text:
                parts.append(f"text {self.text!r}")
            return f"{self.kind} {' and '.join(parts)}"
        if self.kind == "queue":
            return f"queue {self.queue}"
        if self.kind == "error":
            return f"error {self.text!r}"
        if self.kind == "position":
            return f"position {self.position if self.position is not None else '(any)'}"
        return f"{self.kind} {str(not self.negative).lower()}"

    def matches(self, record: Record) -> bool:
        """Whether this record is what the expectation (or, if negative, its opposite) looks for."""
        if self.kind in ("heard", "not_heard"):
            return (
                record.kind == "say"
                and (self.prompt is None or record.data.get("prompt") == self.prompt)
                and (self.text is None or self.text in record.text)
            )
        if self.kind == "queue":
            return record.kind == "queue" and record.data.get("queue") == self.queue
        if self.kind == "position":
            return record.kind == "position" and (
                self.position is None or record.data.get("position") == self.position
            )
        if self.kind == "agent":
            # The engine says "<target> answers; ..." for a <Dial> and "an agent takes the call" for
            # an <Enqueue> bridged by Twilio; "does not answer" must not count.
            return record.kind == "agent" and (
                " answers;" in record.text or "takes the call" in record.text
            )
        if self.kind == "recorded":
            return record.kind == "record" and "seconds" in record.data
        if self.kind == "error":
            return record.kind == "error" and self.text is not None and self.text in record.text
        raise AssertionError(self.kind)


@dataclass(frozen=True)
class TwilioOptions:
    """What Twilio does to the run's webhooks (`twilio:` in a scenario)."""

    retries: int = 0
    status_delay: float = 0.0
    public_url: str | None = None
    forwarded: bool = True


@dataclass(frozen=True)
class Run:
    """One scenario in one language, ready to run."""

    name: str
    language: str | None
    at: datetime
    number: str
    called: str
    agents: tuple[str, ...]
    agents_login_after: float | None
    agent: AgentBehaviour
    keys: str
    on_prompt: Mapping[str, str]
    hangup_after: float | None
    hangup_at: str | None
    expect: tuple[Expectation, ...]
    ticket: Mapping[str, Any] = field(default_factory=dict)
    twilio: TwilioOptions = field(default_factory=lambda: TwilioOptions())
    callback_expect: tuple[Expectation, ...] | None = None
    """What the callback the service places to the caller must do; () : no callback may be
    placed; None: not looked at."""
    exchange: ExchangeSetup | None = None
    """The exchange hook of the run (`ivr.simulator.exchange`); None: none."""
    said: tuple[Utter, ...] = ()
    """What the script's `s` steps say, in order."""

    @property
    def label(self) -> str:
        return f"{self.name} [{self.language}]" if self.language else self.name


# --- loading ----------------------------------------------------------------------------------------


def load_scenario_file(path: Path, bundle: Bundle) -> list[Run]:
    """Every run a scenario file asks for; raises ScenarioError saying what is wrong and where."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
        lines = _line_map(yaml.compose(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or exc
        raise ScenarioError(f"{where}: not valid YAML: {problem}") from exc
    if not isinstance(data, list) or not data:
        raise ScenarioError(f"{path}: must be a non-empty list of scenarios (- name: ...)")
    runs: list[Run] = []
    for index, item in enumerate(data):
        try:
            runs += _scenario(item, (index,), bundle)
        except _Bad as bad:
            line = _line_of(lines, bad.path)
            name = item.get("name") if isinstance(item, dict) else None
            who = f"scenario {index + 1}" + (f" ({name!r})" if isinstance(name, str) else "")
            inner = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in bad.path[1:])
            inner = inner.replace(".[", "[")
            at = f"{path}:{line}" if line else str(path)
            raise ScenarioError(
                f"{at}: {who}: {inner + ': ' if inner else ''}{bad.message}"
            ) from None
    return runs


def _line_map(
    node: yaml.Node | None, path: Path_ = (), out: dict[Path_, int] | None = None
) -> dict[Path_, int]:
    """The 1-based line of every value (and, for mapping values, of its key) in a composed file."""
    out = {} if out is None else out
    if node is None:
        return out
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _line_map(item, (*path, index), out)
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            _line_map(value, (*path, str(key.value)), out)
            # A problem with a value is reported on its key's line, where the reader looks for it.
            out[(*path, str(key.value))] = key.start_mark.line + 1
    return out


def _line_of(lines: Mapping[Path_, int], path: Path_) -> int | None:
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def _scenario(item: object, at: Path_, bundle: Bundle) -> list[Run]:
    rules = bundle.rules
    if not isinstance(item, dict):
        raise _Bad(at, "must be a mapping (name: ..., keys: ..., expect: ...)")
    unknown = [str(k) for k in item if k not in SCENARIO_KEYS]
    if unknown:
        raise _Bad((*at, unknown[0]), f"unknown key (known: {', '.join(SCENARIO_KEYS)})")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _Bad((*at, "name"), "required: a short sentence saying what is checked")
    languages = _languages(item, at, bundle)
    keys = item.get("keys", "")
    if isinstance(keys, int) and not isinstance(keys, bool):
        keys = str(keys)  # `keys: 2` is a natural way to write one key
    if not isinstance(keys, str):
        raise _Bad((*at, "keys"), 'must be a caller script in quotes, e.g. "{lang},3,1"')
    if "{lang}" in keys and languages == [None]:
        raise _Bad((*at, "keys"), "'{lang}' needs 'languages' to say which language's key it is")
    login_after = _seconds(item.get("agents_login_after"), (*at, "agents_login_after"))
    on_prompt = _on_prompt(item.get("on_prompt", {}), (*at, "on_prompt"), bundle)
    behaviour = _behaviour(item.get("agent", {}), (*at, "agent"))
    hangup_after = _seconds(item.get("hangup_after"), (*at, "hangup_after"))
    hangup_at = item.get("hangup_at")
    if hangup_at is not None and not isinstance(hangup_at, str):
        raise _Bad((*at, "hangup_at"), "must be a text the caller hears")
    called = _number(item.get("to", DEFAULT_TO), (*at, "to"))  # the same for every language
    expect = _expectations(item.get("expect", []), (*at, "expect"), bundle)
    callback_expect = _callback_expectations(item, (*at, "callback_expect"), bundle)
    ticket = _ticket(item.get("ticket", {}), (*at, "ticket"))
    twilio = _twilio(item.get("twilio", {}), (*at, "twilio"))
    exchange = item.get("exchange")
    if exchange is not None and (
        not isinstance(exchange, list) or not all(isinstance(v, str) for v in exchange)
    ):
        raise _Bad((*at, "exchange"), 'must be a list like ["known=+4915112345678@{language}"]')
    runs = []
    for language in languages:
        script = keys
        if language is not None:
            key = next(choice.key for choice in rules.languages if choice.code == language)
            script = keys.replace("{lang}", key)
        said = _said(*_for_language(item, "say", at, language, bundle))
        try:
            parse_script(script, said)
        except ScriptError as exc:
            raise _Bad((*at, "keys"), f"bad caller script: {exc}") from None
        runs.append(
            Run(
                name=name.strip(),
                language=language,
                at=_instant(*_for_language(item, "at", at, language, bundle)),
                number=_number(*_for_language(item, "from", at, language, bundle)),
                called=called,
                agents=_agents(*_for_language(item, "agents", at, language, bundle), bundle),
                agents_login_after=login_after,
                agent=behaviour,
                keys=script,
                on_prompt=on_prompt,
                hangup_after=hangup_after,
                hangup_at=hangup_at,
                expect=expect,
                ticket=_ticket_for(ticket, (*at, "ticket"), language, bundle),
                twilio=twilio,
                callback_expect=callback_expect,
                exchange=_exchange(exchange, (*at, "exchange"), language),
                said=said,
            )
        )
    return runs


def _languages(item: dict[str, Any], at: Path_, bundle: Bundle) -> list[str | None]:
    if "languages" not in item:
        return [None]
    value = item["languages"]
    if isinstance(value, str):
        value = [value]
    known = bundle.rules.language_codes
    if not isinstance(value, list) or not value:
        raise _Bad((*at, "languages"), "must be a list of language codes")
    for index, code in enumerate(value):
        if code not in known:
            raise _Bad(
                (*at, "languages", index),
                f"unknown language {code!r} (the rules have {', '.join(known)})",
            )
    return list(value)


def _for_language(
    item: dict[str, Any], key: str, at: Path_, language: str | None, bundle: Bundle
) -> tuple[object, Path_]:
    """`item[key]`, or when it maps languages to values, the value for this run's language."""
    where = (*at, key)
    if key not in item:
        return None, where
    value = item[key]
    if not isinstance(value, dict):
        return value, where
    for code in value:
        if code != "default" and code not in bundle.rules.language_codes:
            raise _Bad(
                (*where, str(code)), f"{code!r} is not a language of the rules (or 'default')"
            )
    if language is not None and language in value:
        return value[language], (*where, language)
    if "default" in value:
        return value["default"], (*where, "default")
    raise _Bad(where, f"nothing for {language or 'a run without languages'} and no 'default'")


def _said(value: object, at: Path_) -> tuple[Utter, ...]:
    """The `say:` list: texts, or {text, confidence} mappings."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _Bad(at, 'must be a list of what the caller says, e.g. ["my withdrawal is late"]')
    said = []
    for index, item in enumerate(value):
        where = (*at, index)
        text, confidence = item, 0.9
        if isinstance(item, dict):
            unknown = [str(k) for k in item if k not in ("text", "confidence")]
            if unknown:
                raise _Bad((*where, unknown[0]), "unknown key (known: text, confidence)")
            text, confidence = item.get("text"), item.get("confidence", 0.9)
        if not isinstance(text, str) or not text.strip():
            raise _Bad(
                where, "must be some words the caller says (or {text: ..., confidence: ...})"
            )
        if isinstance(confidence, bool) or not isinstance(confidence, int | float):
            raise _Bad(where, "confidence must be a number from 0 to 1")
        if not 0 <= confidence <= 1:
            raise _Bad(where, "confidence must be a number from 0 to 1")
        said.append(Utter(text.strip(), float(confidence)))
    return tuple(said)


def _exchange(specs: list[str] | None, at: Path_, language: str | None) -> ExchangeSetup | None:
    if specs is None:
        return None
    try:
        return parse_exchange([_fill(spec, language or "") for spec in specs])
    except ValueError as exc:
        raise _Bad(at, str(exc)) from None


def _instant(value: object, at: Path_) -> datetime:
    if value is None:
        # Regression runs must not depend on the day they run: no "now" default.
        raise _Bad(at, "required: when the call is placed, e.g. 2026-11-23T15:00:00Z")
    if isinstance(value, datetime):
        # YAML reads an unquoted timestamp itself; one without a zone is UTC by the YAML spec.
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        raise _Bad(at, f"{value} has no time of day; write e.g. {value}T10:00:00Z")
    if not isinstance(value, str):
        raise _Bad(
            at, "must be an instant like 2026-11-23T15:00:00Z or '2026-11-23 10:00 Europe/Berlin'"
        )
    try:
        return parse_when(value)
    except ValueError as exc:
        raise _Bad(at, f"{value!r} is not an instant: {exc}") from None


def _agents(value: object, at: Path_, bundle: Bundle) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise _Bad(at, "must be a list of agent ids from the rules")
    for index, agent in enumerate(value):
        if agent not in bundle.rules.agents:
            raise _Bad(
                (*at, index),
                f"no agent {agent!r} in the rules (known: {', '.join(bundle.rules.agents)})",
            )
    return tuple(value)


def _behaviour(value: object, at: Path_) -> AgentBehaviour:
    if not isinstance(value, dict):
        raise _Bad(at, f"must be a mapping with some of {', '.join(AGENT_KEYS)}")
    for key in value:
        if key not in AGENT_KEYS:
            raise _Bad((*at, str(key)), f"unknown key (known: {', '.join(AGENT_KEYS)})")
    answers = value.get("answers", True)
    if not isinstance(answers, bool):
        raise _Bad((*at, "answers"), "must be true or false")
    default = AgentBehaviour()
    answer_after = _seconds(value.get("answer_after"), (*at, "answer_after"))
    talk = _seconds(value.get("talk_seconds"), (*at, "talk_seconds"))
    return AgentBehaviour(
        answers=answers,
        answer_after=default.answer_after if answer_after is None else answer_after,
        talk_seconds=default.talk_seconds if talk is None else talk,
    )


def _twilio(value: object, at: Path_) -> TwilioOptions:
    if not isinstance(value, dict):
        raise _Bad(at, f"must be a mapping with some of {', '.join(TWILIO_KEYS)}")
    for key in value:
        if key not in TWILIO_KEYS:
            raise _Bad((*at, str(key)), f"unknown key (known: {', '.join(TWILIO_KEYS)})")
    retries = value.get("retries", 0)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 5:
        raise _Bad((*at, "retries"), "must be a number of retries from 0 to 5")
    url = value.get("public_url")
    if url is not None and (not isinstance(url, str) or not re.match(r"https?://[^/\s]+$", url)):
        raise _Bad((*at, "public_url"), "must be a scheme and host, e.g. https://ivr.example.com")
    forwarded = value.get("forwarded", True)
    if not isinstance(forwarded, bool):
        raise _Bad((*at, "forwarded"), "must be true or false")
    delay = _seconds(value.get("status_delay"), (*at, "status_delay"))
    return TwilioOptions(retries, delay or 0.0, url, forwarded)


def _on_prompt(value: object, at: Path_, bundle: Bundle) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _Bad(at, 'must map prompt ids to keys, e.g. {survey_question: "5"}')
    prompts = {p for catalog in bundle.prompts.catalogs.values() for p in catalog.texts}
    found = {}
    for prompt, keys in value.items():
        if prompt not in prompts:
            raise _Bad((*at, str(prompt)), f"no prompt {prompt!r} in the prompt catalogs")
        if isinstance(keys, int) and not isinstance(keys, bool):
            keys = str(keys)
        if not isinstance(keys, str) or not re.fullmatch(r"[0-9*#]+", keys):
            raise _Bad((*at, str(prompt)), f"{keys!r} is not keys to press (0-9, *, #)")
        found[prompt] = keys
    return found


def _seconds(value: object, at: Path_) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _Bad(at, f"must be a number of seconds, not {value!r}")
    return float(value)


def _number(value: object, at: Path_) -> str:
    if value is None:
        return DEFAULT_FROM
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML reads +14155550100 as the integer 14155550100: the caller's country would be lost.
        raise _Bad(at, f'write the phone number in quotes: "+{value}"')
    if not isinstance(value, str) or not re.fullmatch(r"\+?\d{3,16}|anonymous", value):
        raise _Bad(at, f'{value!r} is not a phone number like "+14155550100"')
    return value


def _expectations(value: object, at: Path_, bundle: Bundle) -> tuple[Expectation, ...]:
    if not isinstance(value, list):
        raise _Bad(at, "must be a list, one expectation per item (- heard: ...)")
    prompts = {p for catalog in bundle.prompts.catalogs.values() for p in catalog.texts}
    found = []
    for index, item in enumerate(value):
        where = (*at, index)
        if not isinstance(item, dict) or len(item) != 1:
            raise _Bad(where, f"each item must be one of {', '.join(EXPECTATIONS)} (one per item)")
        ((kind, wanted),) = item.items()
        where = (*where, str(kind))
        if kind not in EXPECTATIONS:
            raise _Bad(where, f"unknown expectation (known: {', '.join(EXPECTATIONS)})")
        if kind in ("heard", "not_heard"):
            if not isinstance(wanted, dict) or not wanted or set(wanted) - set(HEARD_KEYS):
                raise _Bad(where, "must be {prompt: <id>} and/or {text: <words>}")
            prompt, text = wanted.get("prompt"), wanted.get("text")
            if prompt is not None and prompt not in prompts:
                raise _Bad((*where, "prompt"), f"no prompt {prompt!r} in the prompt catalogs")
            if text is not None and (not isinstance(text, str) or not text):
                raise _Bad((*where, "text"), "must be some words the caller hears")
            found.append(Expectation(kind, prompt=prompt, text=text, negative=kind == "not_heard"))
        elif kind == "error":
            if not isinstance(wanted, str) or not wanted:
                raise _Bad(where, 'must be words of the error, e.g. "HTTP 403"')
            found.append(Expectation(kind, text=wanted))
        elif kind == "queue":
            if wanted not in bundle.rules.queues:
                raise _Bad(where, f"no queue {wanted!r} in the rules")
            found.append(Expectation(kind, queue=wanted))
        elif kind == "position":
            if wanted is True:
                found.append(Expectation(kind))
            elif isinstance(wanted, int) and not isinstance(wanted, bool) and wanted >= 1:
                found.append(Expectation(kind, position=wanted))
            else:
                raise _Bad(where, "must be a place in line (1, 2, ...) or true (any)")
        else:
            if not isinstance(wanted, bool):
                raise _Bad(where, "must be true or false")
            found.append(Expectation(kind, negative=not wanted))
    return tuple(found)


def _callback_expectations(
    item: dict[str, Any], at: Path_, bundle: Bundle
) -> tuple[Expectation, ...] | None:
    if "callback_expect" not in item:
        return None
    value = item["callback_expect"]
    if value is False:
        return ()
    if value is True or value == []:
        raise _Bad(at, "must be a list of expectations, or false (no callback may be placed)")
    return _expectations(value, at, bundle)


class _Blank:
    """A ticket with every attribute unset: `ticket_fields` of it names every field there is."""

    def __getattr__(self, name: str) -> None:
        return None


def _ticket(value: object, at: Path_) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(at, "must be a mapping of ticket fields to values")
    known = list(ticket_fields(_Blank()))
    for key in value:
        if key not in known:
            raise _Bad((*at, str(key)), f"unknown ticket field (known: {', '.join(known)})")
    return dict(value)


def _ticket_for(
    ticket: Mapping[str, Any], at: Path_, language: str | None, bundle: Bundle
) -> dict[str, Any]:
    """The expected ticket of one run: per-language values picked, "{language}" filled in."""
    resolved = {}
    for key in ticket:
        wanted, where = _for_language(dict(ticket), key, at, language, bundle)
        if "{language}" in repr(wanted):
            if language is None:
                raise _Bad(where, "'{language}' needs 'languages'")
            wanted = _fill(wanted, language)
        resolved[key] = wanted
    return resolved


def _fill(value: Any, language: str) -> Any:
    if isinstance(value, str):
        return value.replace("{language}", language)
    if isinstance(value, list):
        return [_fill(item, language) for item in value]
    return value


# --- running ----------------------------------------------------------------------------------------


def run_scenario_files(
    files: list[Path], paths: tuple[Path, Path], out: TextIO, show_progress: bool = False
) -> int:
    """Run every scenario of every file; print a line per run and a summary; 0 ok, 1 failed, 2 malformed.
    `show_progress`: a bar of the runs on the terminal (`ivr.simulator.progress`)."""
    rules, prompts = paths
    try:
        bundle = load_bundle(rules, prompts)
    except RulesError as exc:
        print(f"the rules ({rules}, {prompts}) do not load:", file=out)
        for reason in exc.problems:
            print(f"  {reason}", file=out)
        return 2
    runs: list[Run] = []
    malformed: list[str] = []
    for path in files:
        try:
            runs += load_scenario_file(path, bundle)
        except ScenarioError as exc:
            malformed.append(str(exc))
    if malformed:  # run nothing: a half-run suite would read as a pass of what did run
        for message in malformed:
            print(message, file=out)
        return 2
    failed = 0
    with Progress(show_progress, "scenarios", "runs", total=len(runs)) as progress:
        for run in runs:
            problem = run_one(run, rules, prompts)
            if problem is None:
                progress.write(f"ok  {run.label}", out)
            else:
                failed += 1
                progress.write(f"FAIL {run.label}: {problem}", out)
            progress.advance()
    print(f"{len(runs) - failed} passed, {failed} failed", file=out, flush=True)
    return 1 if failed else 0


def run_one(run: Run, rules: Path, prompts: Path) -> str | None:
    """Place the run's call on a fresh in-process app; None if every expectation held, else why not."""
    early = () if run.agents_login_after is not None else run.agents
    try:
        with in_process(
            run.at,
            rules,
            prompts,
            agents=early,
            agent=run.agent,
            retries=run.twilio.retries,
            status_delay=run.twilio.status_delay,
            public_url=run.twilio.public_url,
            forwarded=run.twilio.forwarded,
            exchange=run.exchange,
        ) as session:
            simulator = session.simulator
            caller = _ScenarioCaller(
                parse_script(run.keys, run.said),
                run.on_prompt,
                simulator.matcher,
                session.code_for(run.number),
            )
            call = simulator.place_call(
                run.number, run.called, caller, hangup_at_text=run.hangup_at
            )
            if run.hangup_after is not None:
                call.deadline = call.started + run.hangup_after
            logins = {}
            if run.agents_login_after is not None:
                with session.app.app_context():
                    logins = _agent_line_calls(simulator, run, run.agents_login_after)
            simulator.run()
            ticket = ticket_of(session.app, call.sid)
            others = [c for c in simulator.calls.values() if c is not call]
    except SimulationError as exc:
        return f"the simulation could not run: {exc}"
    problems = _login_problems(logins)
    return verdict(run, call, others, ticket, problems)


class _ScenarioCaller(ScriptedCaller):
    """The scripted caller, except at a menu whose last prompt has an `on_prompt` answer."""

    def __init__(
        self,
        steps: list[Step],
        on_prompt: Mapping[str, str],
        matcher: PromptMatcher | None,
        code: Callable[[], str | None] | None = None,
    ) -> None:
        super().__init__(steps, code)
        self._on_prompt = on_prompt
        self._matcher = matcher

    def next_step(self, at: str, heard: list[str]) -> Step | None:
        if at == "menu" and heard and self._on_prompt and self._matcher is not None:
            found = self._matcher.identify(heard[-1])
            if found and found[0] in self._on_prompt:
                return Press(self._on_prompt[found[0]])
        return super().next_step(at, heard)


def _agent_line_calls(simulator: Simulator, run: Run, after: float) -> dict[str, SimulatedCall]:
    """Each agent calls the agent line `after` seconds into the call and logs in, as a person would."""
    from ivr.services import services

    rules = services().rules.get().rules
    calls = {}
    for agent_id in run.agents:
        agent = rules.agents[agent_id]
        script = parse_script(f"{agent.extension}#,{SIMULATED_AGENT_PIN}#,1")
        calls[agent_id] = simulator.place_call(
            agent.phone or AGENT_LINE_FROM,
            run.called,
            ScriptedCaller(script),
            at=after,
            start_path="/agent/voice",
            status_path=None,  # the agent line's calls are not support calls: no ticket to close
        )
    return calls


def _login_problems(logins: Mapping[str, SimulatedCall]) -> list[str]:
    problems = []
    for agent_id, line in logins.items():
        prompts = [r.data.get("prompt") for r in line.records if r.kind == "say"]
        # Logged in and at once handed a waiting caller, the agent line reports the agent busy.
        if not {"agent_now_available", "agent_busy_until_call_ends"} & set(prompts):
            heard = " | ".join(_show(r) for r in line.records if r.kind == "say")
            problems.append(f"agent {agent_id} did not log in on the agent line: {heard}")
    return problems


def verdict(
    run: Run,
    call: SimulatedCall,
    others: Sequence[SimulatedCall],
    ticket: Mapping[str, Any] | None,
    problems: Sequence[str] = (),
) -> str | None:
    """What differed from the run's expectations (None: nothing), in one line."""
    expected = [e.text for e in run.expect if e.kind == "error" and e.text]
    unexpected = [error for error in call.errors if not any(t in error for t in expected)]
    problems = [*problems, *(f"call error: {error}" for error in unexpected)]
    # Callbacks the app placed and the agents' logins belong to the scenario too: their errors count.
    problems += [
        f"call error on {c.direction} call {c.number}: {e}" for c in others for e in c.errors
    ]
    problems += _expected(run.expect, call)
    if run.callback_expect is not None:
        problems += _callback_problems(run.callback_expect, call, others)
    if run.ticket:
        problems += _ticket_problems(run, ticket)
    return "; ".join(problems) if problems else None


def _expected(expect: Sequence[Expectation], call: SimulatedCall) -> list[str]:
    """What differs from `expect` (ordered, then never-anywhere) in one call's records."""
    problems = _ordered(expect, call.records)
    for expectation in expect:
        if expectation.negative:
            hit = next((r for r in call.records if expectation.matches(r)), None)
            if hit is not None:
                problems.append(f"{expectation.describe()}: but at {hit.at:.0f} s: {_show(hit)}")
    return problems


def _callback_problems(
    expect: Sequence[Expectation], call: SimulatedCall, others: Sequence[SimulatedCall]
) -> list[str]:
    """The callbacks the service placed to the caller's number, against `callback_expect`."""
    callbacks = [c for c in others if c.direction == "outbound-api" and c.number == call.number]
    if not expect:
        return [f"callback: none expected, but {c.number} was called back" for c in callbacks]
    if not callbacks:
        return ["callback: none was placed"]
    return [f"callback: {problem}" for problem in _expected(expect, callbacks[0])]


def _ordered(expect: Sequence[Expectation], records: Sequence[Record]) -> list[str]:
    position = 0
    previous = "the start of the call"
    ordered = [e for e in expect if not e.negative]
    for step, expectation in enumerate(ordered, 1):
        found = next(
            (i for i in range(position, len(records)) if expectation.matches(records[i])), None
        )
        if found is None:
            after = [r for r in records[position:] if r.kind in _SHOWN]
            heard = " | ".join(_show(r) for r in after[:SHOWN_AFTER_MISMATCH])
            more = " | ..." if len(after) > SHOWN_AFTER_MISMATCH else ""
            instead = f"instead: {heard}{more}" if heard else "instead the call ended"
            return [f"step {step} ({expectation.describe()}) not found after {previous}; {instead}"]
        position = found + 1
        previous = f"step {step} ({expectation.describe()}) at {records[found].at:.0f} s"
    return []


_SHOWN = ("say", "queue", "position", "agent", "record", "hangup", "error", "redirect")
"""What a mismatch report shows of the call after the last match (not requests, music, key presses)."""


def _show(record: Record) -> str:
    if record.kind == "say":
        text = record.text if len(record.text) <= 60 else record.text[:57] + "..."
        prompt = record.data.get("prompt")
        return f'heard "{text}"' + (f" ({prompt})" if prompt else "")
    return f"{record.kind}: {record.text}"


def _ticket_problems(run: Run, ticket: Mapping[str, Any] | None) -> list[str]:
    if ticket is None:
        return ["no ticket was written for the call"]
    problems = []
    for key, wanted in run.ticket.items():
        actual = ticket.get(key)
        if wanted is True:
            good = actual not in (None, "", [])
            shown = "set"
        else:
            good = actual == wanted
            shown = repr(wanted)
        if not good:
            problems.append(f"ticket {key}: expected {shown}, got {actual!r}")
    return problems
