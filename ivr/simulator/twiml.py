"""Parse a webhook's TwiML and validate it the way Twilio does before running a call on it.

`parse_twiml` takes the body and Content-Type of a webhook response and returns the verbs of its
`<Response>` as `Verb` trees, or raises `TwimlError` naming every problem Twilio would refuse (or
log as an error and skip), each with its line in the document.

The rules follow Twilio's TwiML™ Voice reference: the verbs, the nouns each verb takes, every
documented attribute with its allowed values, and the text each element needs. Names of elements
and attributes are case-sensitive, as they are for Twilio, and so are values such as GET, POST,
true and false. SSML inside `<Say>` is checked for tag and attribute names; the values of most SSML
attributes (prosody rates, say-as formats…) and the attributes of the nouns of `<Connect>`,
`<Start>` and `<Stop>` (streams, relays, transcriptions) are not.

The XML parser resolves no DTD: a document type or entity declaration is refused outright, so
entity-expansion attacks cannot reach it.
"""

from __future__ import annotations

import codecs
import difflib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal
from xml.parsers import expat

MAX_TWIML_BYTES = 64 * 1024
"""Twilio refuses a response body over 64 kB (error 11750)."""

TWIML_CONTENT_TYPES = frozenset({"text/xml", "application/xml", "text/html"})
"""Content types Twilio runs as TwiML (its docs list these three); any other is refused."""

_MAX_PROBLEMS = 20
"""Problems listed in one error message; more are counted, not listed."""


class TwimlError(Exception):
    """Twilio would refuse this response; the message says why, as a QA person would want to read it.

    `problems` lists each problem on its own; the message joins them with "; "."""

    def __init__(self, problem: str, *more: str) -> None:
        self.problems: tuple[str, ...] = (problem, *more)
        listed = self.problems[:_MAX_PROBLEMS]
        message = "; ".join(listed)
        if len(self.problems) > len(listed):
            message += f"; and {len(self.problems) - len(listed)} more problems"
        super().__init__(message)


_NO_ATTRS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class Verb:
    """One element of a TwiML response: a verb such as `Say` or `Gather`, a noun such as `Number`
    or `Client`, or an SSML tag inside `<Say>` such as `break` or `say-as`."""

    name: str
    attrs: Mapping[str, str] = field(default_factory=lambda: _NO_ATTRS, hash=False)
    """As written in the document (names such as `numDigits` keep their case)."""
    text: str = ""
    """The element's own text, stripped ("" if none). For `<Say>` and SSML tags: the words spoken,
    the text inside SSML tags included in document order (a `<break>` counts as a space)."""
    children: tuple[Verb, ...] = ()

    def attr(self, name: str, default: str | None = None) -> str | None:
        return self.attrs.get(name, default)

    def int_attr(self, name: str, default: int) -> int:
        """The attribute as an integer, or `default` when it is absent."""
        value = self.attrs.get(name)
        return default if value is None else int(value.strip())


@dataclass(frozen=True)
class GatherInput:
    """What a `<Gather>` listens for: keys, words (in which language, with which hints), or both."""

    keys: bool
    speech: bool
    language: str
    """The language Twilio recognises speech in (its default: en-US)."""
    hints: tuple[str, ...]
    speech_timeout: str
    """auto, or whole seconds of silence after the words (Twilio's default: `timeout`)."""


def gather_input(gather: Verb) -> GatherInput:
    """The input a parsed `<Gather>` takes (Twilio's default `input` is dtmf)."""
    words = (gather.attr("input") or "dtmf").split()
    hints = tuple(h.strip() for h in (gather.attr("hints") or "").split(",") if h.strip())
    return GatherInput(
        keys="dtmf" in words,
        speech="speech" in words,
        language=gather.attr("language") or "en-US",
        hints=hints,
        speech_timeout=gather.attr("speechTimeout") or gather.attr("timeout") or "5",
    )


def parse_twiml(body: bytes | str, content_type: str | None = "text/xml") -> tuple[Verb, ...]:
    """The verbs of a TwiML <Response>, validated the way Twilio validates them; raises TwimlError."""
    charset = _check_content_type(content_type)
    raw = body.encode("utf-8") if isinstance(body, str) else body
    if len(raw) > MAX_TWIML_BYTES:
        raise TwimlError(f"response is {len(raw)} bytes, Twilio's limit is {MAX_TWIML_BYTES}")
    if not raw.strip():
        raise TwimlError("empty response body: Twilio needs a TwiML document")
    root = _parse_xml(_decode(body, charset))
    if root.name != "Response":
        raise TwimlError(f"root element must be <Response>, got <{root.name}>")
    problems: list[str] = []
    _check(root, problems)
    if problems:
        raise TwimlError(*problems)
    return tuple(_verb(child) for child in root.children)


# --- HTTP: content type, size, charset -----------------------------------------------------------


def _check_content_type(content_type: str | None) -> str | None:
    """The charset the content type names, if any; raises unless the type is TwiML."""
    if content_type is None or not content_type.strip():
        raise TwimlError("no content type: Twilio needs Content-Type text/xml or application/xml")
    mime, _, parameters = content_type.partition(";")
    mime = mime.strip().lower()
    if mime not in TWIML_CONTENT_TYPES:
        raise TwimlError(f"content type {mime} is not TwiML (use text/xml or application/xml)")
    for parameter in parameters.split(";"):
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"')
    return None


def _decode(body: bytes | str, charset: str | None) -> bytes | str:
    """The body to parse: text as is, or bytes decoded with the charset of the content type (bytes
    without one are left to the XML declaration, UTF-8 by default)."""
    if isinstance(body, str) or charset is None:
        return body
    try:
        codecs.lookup(charset)
    except LookupError:
        raise TwimlError(f"unknown charset {charset!r} in the content type") from None
    try:
        return body.decode(charset)
    except UnicodeDecodeError as exc:
        raise TwimlError(f"body is not valid {charset}: {exc.reason} at byte {exc.start}") from None


# --- XML -------------------------------------------------------------------------------------------


@dataclass
class _Node:
    name: str
    attrs: dict[str, str]
    line: int
    content: list[str | _Node] = field(default_factory=list)

    @property
    def children(self) -> list[_Node]:
        return [item for item in self.content if isinstance(item, _Node)]

    @property
    def own_text(self) -> str:
        return "".join(item for item in self.content if isinstance(item, str)).strip()


_DECLARATION = re.compile(r"<!(DOCTYPE|ENTITY)")
_MAX_DEPTH = 50
"""TwiML nests a few levels (Response, Dial, Client, Parameter; SSML a few more): deeper is refused
before it can exhaust the validator's recursion."""


def _parse_xml(document: bytes | str) -> _Node:
    text = document if isinstance(document, str) else document.decode("latin-1")
    if found := _DECLARATION.search(text):
        raise TwimlError(f"<!{found.group(1)}> declarations are not allowed in TwiML")

    parser = expat.ParserCreate()  # no namespace processing: <amazon:effect> is a plain name
    parser.buffer_text = True
    roots: list[_Node] = []
    open_nodes: list[_Node] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        if len(open_nodes) >= _MAX_DEPTH:
            raise TwimlError(
                f"elements nested more than {_MAX_DEPTH} deep [line {parser.CurrentLineNumber}]"
            )
        node = _Node(name, attrs, parser.CurrentLineNumber)
        (open_nodes[-1].content if open_nodes else roots).append(node)
        open_nodes.append(node)

    def end(name: str) -> None:
        open_nodes.pop()

    def characters(data: str) -> None:
        if open_nodes:
            open_nodes[-1].content.append(data)

    def declaration(*_: object) -> None:
        # Also guards encodings the text search above cannot read (UTF-16).
        raise TwimlError("<!DOCTYPE> and <!ENTITY> declarations are not allowed in TwiML")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = characters
    parser.StartDoctypeDeclHandler = declaration
    parser.EntityDeclHandler = declaration
    try:
        parser.Parse(document, True)
    except expat.ExpatError as exc:
        reason = expat.ErrorString(exc.code) if exc.code is not None else str(exc)
        raise TwimlError(
            f"not XML: {reason} at line {exc.lineno}, column {exc.offset + 1}"
        ) from None
    except ValueError as exc:  # e.g. an encoding expat does not know
        raise TwimlError(f"not XML: {exc}") from None
    return roots[0]


# --- Attribute values ------------------------------------------------------------------------------

_Check = Callable[[str], str | None]
"""Why a value is not allowed, or None when it is."""


def _any(value: str) -> str | None:
    return None


def _url(value: str) -> str | None:
    if not value.strip():
        return "must be a URL, got nothing"
    if any(character.isspace() for character in value.strip()):
        return "must be a URL without spaces"
    return None


def _method(value: str) -> str | None:
    return None if value in ("GET", "POST") else "must be GET or POST"


def _boolean(value: str) -> str | None:
    return None if value in ("true", "false") else "must be true or false"


def _integer(minimum: int, maximum: int | None = None) -> _Check:
    def check(value: str) -> str | None:
        text = value.strip()
        number = int(text) if text.isascii() and text.isdigit() else None
        if number is None or number < minimum or (maximum is not None and number > maximum):
            if maximum is not None:
                return f"must be a whole number from {minimum} to {maximum}"
            return f"must be a whole number of at least {minimum}"
        return None

    return check


def _one_of(*allowed: str) -> _Check:
    def check(value: str) -> str | None:
        return None if value in allowed else f"must be one of {', '.join(allowed)}"

    return check


def _some_of(*allowed: str) -> _Check:
    """One or more of `allowed`, separated by spaces (or commas)."""

    def check(value: str) -> str | None:
        words = value.replace(",", " ").split()
        if not words or any(word not in allowed for word in words):
            return f"must be one or more of {', '.join(allowed)}, separated by spaces"
        return None

    return check


def _keys(allowed: str, what: str) -> _Check:
    def check(value: str) -> str | None:
        return None if all(key in allowed for key in value) else f"must be made of {what}"

    return check


def _gather_input(value: str) -> str | None:
    words = value.split()
    if not words or len(set(words)) < len(words) or any(w not in ("dtmf", "speech") for w in words):
        return 'must be dtmf, speech or "dtmf speech"'
    return None


def _speech_timeout(value: str) -> str | None:
    if value.strip() == "auto" or _integer(1)(value) is None:
        return None
    return "must be auto or a whole number of at least 1"


HINTS_MAX = 500
HINT_CHARACTERS = 100
"""Twilio error 13330: "hints must be a comma-separated list of up to 500 entries, each entry can be
100 characters or fewer"."""


def _gather_hints(node: _Node) -> Iterator[str]:
    """Twilio refuses hints over its limits (error 13330); within them they are only a hint."""
    value = node.attrs.get("hints")
    if value is None:
        return
    entries = [entry.strip() for entry in value.split(",")]
    if len(entries) > HINTS_MAX:
        yield (
            f"<Gather> hints has {len(entries)} entries, Twilio allows at most {HINTS_MAX} "
            "(error 13330)"
        )
    for entry in entries:
        if len(entry) > HINT_CHARACTERS:
            shown = entry[:37] + "..."
            yield (
                f"<Gather> hints entry {shown!r} is {len(entry)} characters long, Twilio allows at "
                f"most {HINT_CHARACTERS} (error 13330)"
            )
            break


def _gather_speech_timeout(node: _Node) -> Iterator[str]:
    """Twilio warning 13335: "Gather: speechTimeout auto cannot be used with model default": the
    words would never be ended by a pause. Without a speechModel, Twilio chooses the model."""
    timeout = node.attrs.get("speechTimeout", "").strip()
    model = node.attrs.get("speechModel", "default").strip() or "default"
    if timeout == "auto" and model == "default":
        yield (
            '<Gather speechTimeout="auto"> needs a speechModel other than default: Twilio warns '
            '"speechTimeout auto cannot be used with model default" (warning 13335)'
        )


def _ssml_time(value: str) -> str | None:
    return None if re.fullmatch(r"\d+(\.\d+)?(s|ms)", value.strip()) else "must be like 500ms or 2s"


# --- Text -----------------------------------------------------------------------------------------

_PHONE_SEPARATORS = re.compile(r"[\s().-]")


def _phone_number(text: str) -> str | None:
    if re.fullmatch(r"\+?\d{3,15}", _PHONE_SEPARATORS.sub("", text)):
        return None
    return f"needs a phone number like +14155551212, got {text!r}"


def _url_text(text: str) -> str | None:
    return (
        None if not any(c.isspace() for c in text) else f"needs a URL without spaces, got {text!r}"
    )


def _sip_uri(text: str) -> str | None:
    return None if text.startswith(("sip:", "sips:")) else f"needs a sip: URI, got {text!r}"


def _client_identity(text: str) -> str | None:
    if len(text) > 256:
        return f"client identity is {len(text)} characters long, at most 256 are allowed"
    if any(c.isspace() or not c.isprintable() for c in text):
        return f"client identity must not contain spaces or control characters, got {text!r}"
    return None


def _queue_name(text: str) -> str | None:
    return (
        None
        if len(text) <= 64
        else f"queue name is {len(text)} characters long, at most 64 are allowed"
    )


# --- Element rules ---------------------------------------------------------------------------------

_Rule = Callable[["_Node"], Iterable[str]]
"""A rule about an element as a whole: the problems it finds."""


@dataclass(frozen=True)
class _Spec:
    attrs: Mapping[str, _Check] | None
    """The attributes allowed and their checks; None leaves attributes unchecked."""
    children: frozenset[str] = frozenset()
    text: Literal["none", "optional", "required"] = "none"
    text_name: str = "text"
    """What the text is, for messages: "a URL", "a phone number"…"""
    text_check: _Check | None = None
    rules: tuple[_Rule, ...] = ()


def _say_not_empty(node: _Node) -> Iterator[str]:
    if not _spoken_text(node):
        yield "empty <Say>: Twilio has nothing to say"


def _play_source(node: _Node) -> Iterator[str]:
    if not node.own_text and "digits" not in node.attrs:
        yield "<Play> needs a URL between its tags (or a digits attribute)"


def _one_target(noun: str, what: str) -> _Rule:
    """Exactly one of: text, or a nested `noun`."""

    def rule(node: _Node) -> Iterator[str]:
        nested = [child for child in node.children if child.name == noun]
        if node.own_text and nested:
            yield f"<{node.name}> has both text and <{noun}>: give {what} only once"
        elif not node.own_text and not nested:
            yield f"<{node.name}> needs {what} (as text or in <{noun}>)"
        elif len(nested) > 1:
            yield f"<{node.name}> has {len(nested)} <{noun}> elements, at most one is allowed"

    return rule


def _dial_target(node: _Node) -> Iterator[str]:
    nouns = node.children
    if node.own_text and nouns:
        yield "<Dial> has both a phone number as text and nested nouns: use one or the other"
    elif not node.own_text and not nouns:
        yield "empty <Dial>: give a phone number or a noun such as <Number> or <Client>"
    elif len(nouns) > 10:
        yield f"<Dial> has {len(nouns)} nouns, Twilio dials at most 10 at once"


def _enqueue_target(node: _Node) -> Iterator[str]:
    if not node.own_text and "workflowSid" not in node.attrs:
        yield "<Enqueue> needs a queue name between its tags (or a workflowSid attribute)"


def _required_attr(name: str) -> _Rule:
    def rule(node: _Node) -> Iterator[str]:
        if not node.attrs.get(name, "").strip():
            yield f"<{node.name}> needs a {name} attribute"

    return rule


# Attributes shared by several elements.
_ACTION: dict[str, _Check] = {"action": _url, "method": _method}
_RECORDING_EVENTS = _some_of("in-progress", "completed", "absent")
_TRIM = _one_of("trim-silence", "do-not-trim")
_FINISH_ON_KEY = _keys("0123456789*#", "the keys 0-9, * and # (or be empty)")


def _GATHER_FINISH_ON_KEY(value: str) -> str | None:
    """Twilio's <Gather> page: finishOnKey is one of "0-9, #, *, and '' (the empty string)": one key,
    unlike <Record>'s, which is a set of keys."""
    if len(value) > 1:
        return "must be one key (0-9, * or #) or empty: <Gather> finishes on a single key"
    return _FINISH_ON_KEY(value)


_DTMF_DIGITS = _keys("0123456789*#w", "the keys 0-9, * and #, and w for a half-second pause")
_STATUS_CALLBACK: dict[str, _Check] = {
    "url": _url,
    "method": _method,
    "statusCallbackEvent": _some_of("initiated", "ringing", "answered", "completed"),
    "statusCallback": _url,
    "statusCallbackMethod": _method,
}
_MACHINE_DETECTION: dict[str, _Check] = {
    "machineDetection": _one_of("Enable", "DetectMessageEnd"),
    "machineDetectionTimeout": _integer(3, 60),
    "machineDetectionSpeechThreshold": _integer(1000, 6000),
    "machineDetectionSpeechEndThreshold": _integer(500, 5000),
    "machineDetectionSilenceTimeout": _integer(2000, 10000),
    "amdStatusCallback": _url,
    "amdStatusCallbackMethod": _method,
}
_RING_TONES = (
    "at", "au", "be", "bg", "br", "ch", "cl", "cn", "cz", "de", "dk", "ee", "es", "fi", "fr", "gr",
    "hu", "il", "in", "it", "jp", "lt", "mx", "my", "nl", "no", "nz", "ph", "pl", "pt", "ru", "se",
    "sg", "th", "tw", "uk", "us", "us-old", "ve", "za",
)  # fmt: skip

VERBS = frozenset(
    {
        "Say", "Play", "Pause", "Gather", "Redirect", "Record", "Dial", "Enqueue", "Leave",
        "Hangup", "Reject", "Refer", "Connect", "Start", "Stop", "Pay",
    }
)  # fmt: skip
"""The verbs a voice <Response> may contain (<Prompt> goes inside <Pay>)."""

SSML_TAGS = frozenset(
    {
        "break", "emphasis", "lang", "p", "phoneme", "prosody", "s", "say-as", "sub", "w",
        "amazon:domain", "amazon:effect",
    }
)  # fmt: skip
"""The SSML tags Twilio accepts inside <Say>."""

_SPEECH = frozenset({"Say", "Play", "Pause"})
_DIAL_NOUNS = frozenset(
    {"Number", "Client", "Conference", "Queue", "Sip", "Sim", "Application", "WhatsApp"}
)
_MEDIA_NOUNS = frozenset({"Stream", "Siprec", "Transcription", "Recording"})
_CONNECT_NOUNS = frozenset(
    {
        "Room", "Stream", "VirtualAgent", "Conversation", "ConversationRelay", "Autopilot",
        "AiSession", "ConversationRelaySession",
    }
)  # fmt: skip
_PARAMETER = frozenset({"Parameter"})


def _ssml(attrs: Mapping[str, _Check], children: frozenset[str] = SSML_TAGS) -> _Spec:
    return _Spec(attrs, children, "optional")


def _unchecked(children: frozenset[str] = frozenset()) -> _Spec:
    return _Spec(None, children, "optional")


_SPECS: dict[str, _Spec] = {
    "Response": _Spec({}, VERBS, text_name="text (words to speak go in <Say>)"),
    # Verbs
    "Say": _Spec(
        {"voice": _any, "language": _any, "loop": _integer(0)},
        SSML_TAGS,
        "optional",
        rules=(_say_not_empty,),
    ),
    "Play": _Spec(
        {"loop": _integer(0), "digits": _DTMF_DIGITS},
        text="optional",
        text_check=_url_text,
        rules=(_play_source,),
    ),
    "Pause": _Spec({"length": _integer(1)}),
    "Gather": _Spec(
        {
            **_ACTION,
            "timeout": _integer(1),
            "finishOnKey": _GATHER_FINISH_ON_KEY,
            "numDigits": _integer(1),
            "input": _gather_input,
            "speechTimeout": _speech_timeout,
            "maxSpeechTime": _integer(1),
            "speechModel": _any,
            "language": _any,
            "hints": _any,
            "profanityFilter": _boolean,
            "partialResultCallback": _url,
            "partialResultCallbackMethod": _method,
            "actionOnEmptyResult": _boolean,
            "enhanced": _boolean,
            "bargeIn": _boolean,
            "debug": _boolean,
        },
        _SPEECH,
        rules=(_gather_hints, _gather_speech_timeout),
    ),
    "Redirect": _Spec(
        {"method": _method}, text="required", text_name="a URL", text_check=_url_text
    ),
    "Record": _Spec(
        {
            **_ACTION,
            "timeout": _integer(0),
            "finishOnKey": _FINISH_ON_KEY,
            "maxLength": _integer(1),
            "playBeep": _boolean,
            "trim": _TRIM,
            "recordingStatusCallback": _url,
            "recordingStatusCallbackMethod": _method,
            "recordingStatusCallbackEvent": _RECORDING_EVENTS,
            "recordingConfigurationId": _any,
            "storageUrl": _url,
            "storageUrlMethod": _method,
            "transcribe": _boolean,
            "transcribeCallback": _url,
        }
    ),
    "Dial": _Spec(
        {
            **_ACTION,
            "timeout": _integer(1),
            "hangupOnStar": _boolean,
            "timeLimit": _integer(1),
            "callerId": _any,
            "record": _one_of(
                "do-not-record",
                "record-from-answer",
                "record-from-ringing",
                "record-from-answer-dual",
                "record-from-ringing-dual",
                "true",
                "false",
            ),
            "trim": _TRIM,
            "recordingStatusCallback": _url,
            "recordingStatusCallbackMethod": _method,
            "recordingStatusCallbackEvent": _RECORDING_EVENTS,
            "recordingConfigurationId": _any,
            "answerOnBridge": _boolean,
            "ringTone": _one_of(*_RING_TONES),
            "recordingTrack": _one_of("both", "inbound", "outbound"),
            "sequential": _boolean,
            "referUrl": _url,
            "referMethod": _method,
            "events": _any,
            "passports": _any,
        },
        _DIAL_NOUNS,
        "optional",
        "a phone number",
        _phone_number,
        (_dial_target,),
    ),
    "Enqueue": _Spec(
        {
            **_ACTION,
            "waitUrl": _url,
            "waitUrlMethod": _method,
            "workflowSid": _any,
        },
        frozenset({"Task"}),
        "optional",
        "a queue name",
        _queue_name,
        (_enqueue_target,),
    ),
    "Leave": _Spec({}),
    "Hangup": _Spec({}, _PARAMETER),
    "Reject": _Spec({"reason": _one_of("rejected", "busy")}, _PARAMETER),
    "Refer": _Spec(_ACTION, frozenset({"Sip"})),
    "Connect": _Spec(_ACTION, _CONNECT_NOUNS),
    "Start": _Spec(_ACTION, _MEDIA_NOUNS),
    "Stop": _Spec({}, _MEDIA_NOUNS),
    "Pay": _Spec(
        {
            "input": _one_of("dtmf"),
            "action": _url,
            "bankAccountType": _any,
            "statusCallback": _url,
            "statusCallbackMethod": _method,
            "timeout": _integer(1),
            "maxAttempts": _integer(1),
            "securityCode": _boolean,
            "postalCode": _any,
            "minPostalCodeLength": _integer(1),
            "paymentConnector": _any,
            "paymentMethod": _any,
            "tokenType": _any,
            "chargeAmount": _any,
            "currency": _any,
            "description": _any,
            "validCardTypes": _any,
            "language": _any,
        },
        frozenset({"Prompt", "Parameter"}),
    ),
    "Prompt": _Spec(
        {
            "for": _any,
            "errorType": _any,
            "cardType": _any,
            "attempt": _any,
            "requireMatchingInputs": _boolean,
        },
        _SPEECH,
    ),
    # Nouns of <Dial>
    "Number": _Spec(
        {"sendDigits": _DTMF_DIGITS, "byoc": _any, **_STATUS_CALLBACK, **_MACHINE_DETECTION},
        text="required",
        text_name="a phone number",
        text_check=_phone_number,
    ),
    "Client": _Spec(
        _STATUS_CALLBACK,
        frozenset({"Identity", "Parameter"}),
        "optional",
        "a client identity",
        _client_identity,
        (_one_target("Identity", "a client identity"),),
    ),
    "Identity": _Spec(
        {}, text="required", text_name="a client identity", text_check=_client_identity
    ),
    "Conference": _Spec(
        {
            "muted": _boolean,
            "beep": _one_of("true", "false", "onEnter", "onExit"),
            "startConferenceOnEnter": _boolean,
            "endConferenceOnExit": _boolean,
            "waitUrl": _url,
            "waitMethod": _method,
            "maxParticipants": _integer(2, 250),
            "record": _one_of("do-not-record", "record-from-start"),
            "region": _any,
            "coach": _any,
            "trim": _TRIM,
            "statusCallbackEvent": _some_of(
                "start", "end", "join", "leave", "mute", "hold", "modify", "speaker", "announcement"
            ),
            "statusCallback": _url,
            "statusCallbackMethod": _method,
            "recordingStatusCallback": _url,
            "recordingStatusCallbackMethod": _method,
            "recordingStatusCallbackEvent": _RECORDING_EVENTS,
            "recordingConfigurationId": _any,
            "eventCallbackUrl": _url,
            "jitterBufferSize": _one_of("large", "medium", "small", "off"),
            "participantLabel": _any,
        },
        text="required",
        text_name="a conference name",
    ),
    "Queue": _Spec(
        {"url": _url, "method": _method, "reservationSid": _any, "postWorkActivitySid": _any},
        text="required",
        text_name="a queue name",
        text_check=_queue_name,
    ),
    "Sip": _Spec(
        {"username": _any, "password": _any, **_STATUS_CALLBACK, **_MACHINE_DETECTION},
        text="required",
        text_name="a sip: URI",
        text_check=_sip_uri,
    ),
    "Sim": _Spec({}, text="required", text_name="a SIM SID"),
    "Application": _Spec(
        {**_STATUS_CALLBACK, "customerId": _any, "copyParentTo": _boolean},
        frozenset({"ApplicationSid", "Parameter"}),
        "optional",
        "an application SID",
        rules=(_one_target("ApplicationSid", "an application SID"),),
    ),
    "ApplicationSid": _Spec({}, text="required", text_name="an application SID"),
    "WhatsApp": _Spec(
        _STATUS_CALLBACK, text="required", text_name="a phone number", text_check=_phone_number
    ),
    "Parameter": _Spec({"name": _any, "value": _any}, rules=(_required_attr("name"),)),
    # Noun of <Enqueue>
    "Task": _Spec(
        {"priority": _integer(0), "timeout": _integer(1)},
        text="required",
        text_name="task attributes (JSON)",
    ),
    # Nouns of <Connect>, <Start> and <Stop>: which go where, attributes unchecked
    "Stream": _unchecked(_PARAMETER),
    "Siprec": _unchecked(_PARAMETER),
    "Transcription": _unchecked(frozenset({"Config", "Parameter"})),
    "Recording": _unchecked(),
    "Room": _unchecked(),
    "VirtualAgent": _unchecked(frozenset({"Config", "Parameter"})),
    "Conversation": _unchecked(),
    "ConversationRelay": _unchecked(frozenset({"Language", "Parameter"})),
    "Language": _unchecked(),
    "Config": _unchecked(),
    "Autopilot": _unchecked(),
    "AiSession": _unchecked(),
    "ConversationRelaySession": _unchecked(),
    # SSML inside <Say>
    "break": _Spec(
        {
            "strength": _one_of("none", "x-weak", "weak", "medium", "strong", "x-strong"),
            "time": _ssml_time,
        }
    ),
    "emphasis": _ssml({"level": _one_of("strong", "moderate", "reduced")}),
    "lang": _ssml({"xml:lang": _any}),
    "p": _ssml({}),
    "s": _ssml({}),
    "phoneme": _ssml(
        {
            "alphabet": _one_of(
                "ipa",
                "x-sampa",
                "x-amazon-jyutping",
                "x-amazon-pinyin",
                "x-amazon-pron-kana",
                "x-amazon-yomigana",
            ),
            "ph": _any,
        },
        frozenset(),
    ),
    "prosody": _ssml({"volume": _any, "rate": _any, "pitch": _any}),
    "say-as": _ssml({"interpret-as": _any, "format": _any}, frozenset()),
    "sub": _ssml({"alias": _any}, frozenset()),
    "w": _ssml({"role": _any}),
    "amazon:domain": _ssml({"name": _any}),
    "amazon:effect": _ssml({"name": _any, "vocal-tract-length": _any, "phonation": _any}),
}

_GONE = {
    "Sms": "<Sms> is obsolete and no longer works in voice TwiML; send texts with the Messaging API",
    "Message": "<Message> is messaging TwiML and does nothing in a voice call",
}


# --- Validation ----------------------------------------------------------------------------------


def _check(node: _Node, problems: list[str]) -> None:
    spec = _SPECS[node.name]
    at = f" [line {node.line}]"
    if spec.attrs is not None:
        for name, value in node.attrs.items():
            if _is_namespace(name):
                continue
            check = spec.attrs.get(name)
            if check is None:
                suggestion = _did_you_mean(name, spec.attrs)
                problems.append(f"<{node.name}> does not allow attribute {name!r}{suggestion}{at}")
            elif (reason := check(value)) is not None:
                problems.append(f'<{node.name}> {name}="{value}" is invalid: {reason}{at}')

    text = node.own_text
    if spec.text == "none" and text:
        shown = text if len(text) <= 40 else text[:37] + "..."
        what = spec.text_name if node.name == "Response" else "text"
        problems.append(f"<{node.name}> does not take {what} (found {shown!r}){at}")
    elif spec.text == "required" and not text:
        problems.append(f"<{node.name}> needs {spec.text_name} between its tags{at}")
    elif text and spec.text_check is not None and (reason := spec.text_check(text)) is not None:
        problems.append(f"<{node.name}> {reason}{at}")

    for child in node.children:
        where = f" [line {child.line}]"
        if child.name in _GONE:
            problems.append(_GONE[child.name] + where)
        elif child.name in spec.children:
            _check(child, problems)
        elif child.name in _SPECS:
            problems.append(_misplaced(child.name, node.name, spec) + where)
        elif node.name == "Response":
            problems.append(f"unknown verb <{child.name}>{_did_you_mean(child.name, VERBS)}{where}")
        else:
            suggestion = _did_you_mean(child.name, spec.children)
            problems.append(
                f"unknown element <{child.name}> inside <{node.name}>{suggestion}{where}"
            )

    for rule in spec.rules:
        problems.extend(problem + at for problem in rule(node))


def _misplaced(name: str, parent: str, spec: _Spec) -> str:
    message = f"<{name}> is not allowed inside <{parent}>"
    if name not in VERBS and name not in SSML_TAGS:
        homes = sorted(home for home, other in _SPECS.items() if name in other.children)
        return message + f" (it belongs inside {' or '.join(f'<{home}>' for home in homes)})"
    if not spec.children:
        return message + f" (<{parent}> takes no nested elements)"
    if spec.children == SSML_TAGS:
        return message + " (only text and SSML tags go there)"
    return message + f" (<{parent}> may only contain {', '.join(sorted(spec.children))})"


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    options = list(candidates)
    same = [option for option in options if option.lower() == name.lower()]
    close = same or difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    if not close:
        return ""
    suggestion = f"<{close[0]}>" if close[0] in _SPECS else close[0]
    return f" (did you mean {suggestion}?)"


def _is_namespace(name: str) -> bool:
    return name == "xmlns" or name.startswith("xmlns:")


# --- Result ----------------------------------------------------------------------------------------


def _spoken_text(node: _Node) -> str:
    parts: list[str] = []
    for item in node.content:
        if isinstance(item, str):
            parts.append(item)
        elif item.name == "break":
            parts.append(" ")
        elif item.name in SSML_TAGS:
            parts.append(_spoken_text(item))
    return "".join(parts).strip()


def _verb(node: _Node) -> Verb:
    attrs = {name: value for name, value in node.attrs.items() if not _is_namespace(name)}
    speaks = node.name == "Say" or node.name in SSML_TAGS
    return Verb(
        name=node.name,
        attrs=MappingProxyType(attrs),
        text=_spoken_text(node) if speaks else node.own_text,
        children=tuple(_verb(child) for child in node.children),
    )
