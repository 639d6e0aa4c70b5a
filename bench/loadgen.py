"""The load generator: whole calls placed the way Twilio places them.

It shares the machine's two cores with the servers it measures, so it is deliberately small: one
asyncio loop, a hand-written HTTP/1.1 client, no XML beyond finding the next URL and whether a hold
answer tells the caller their place. Each webhook opens a new connection and asks the server to
close it (`Connection: close`), as Twilio does not reuse connections between a call's webhooks;
`keep_alive=True` reuses one connection per call instead. Every request is signed like Twilio signs
it and carries Twilio's form fields and an `I-Twilio-Idempotency-Token`. Besides every webhook, each
whole call is recorded: the sum of its webhooks' latencies (the server time a caller waited on) and
its wall time from the first webhook's start to the status callback's answer.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import yaml
from twilio.request_validator import RequestValidator

TWILIO_GIVES_UP_SECONDS = 15.0
"""Twilio waits this long for a webhook; a slower answer is an error whatever it says."""

ACCOUNT_SID = "AC" + "b" * 32
CALLED_NUMBER = "+18005550100"
EXPECTED_MENU_PATH = ["language:2", "main:2", "funds:1"]
"""The ticket's menu path after the scripted call: English, funds, deposit."""

Route = tuple[str, str, str]
"""The keys a call presses: at the language menu, the main menu and the sub-menu."""
DEFAULT_ROUTE: Route = ("2", "2", "1")
"""English, funds, deposit: the line every phase's callers queue in unless told otherwise."""

POSITION_PROMPTS = ("queue_position", "queue_next", "many_ahead", "queue_urgent_first")
"""The prompts a hold answer tells the caller their place with (ivr/flow/engine.py `Flow.hold`)."""

KINDS = ("incoming", "language", "menu", "join", "hold", "status")
"""The webhook kinds reported: `join` is the sub-menu key that queues the caller (the menu
webhook whose answer is "please hold"), `menu` the main menu's."""


@dataclass(frozen=True)
class Target:
    """A server under test, reachable on 127.0.0.1:port, signing with `auth_token`.

    `public_url` is the address Twilio requests and signs, when it is not 127.0.0.1:port itself:
    an instance reached directly whose PUBLIC_BASE_URL is the proxy in front of it.
    """

    name: str
    port: int
    auth_token: str
    public_url: str | None = None

    @property
    def base_url(self) -> str:
        """What PUBLIC_BASE_URL is set to for this server: the URL Twilio signs."""
        return self.public_url or f"http://127.0.0.1:{self.port}"


@dataclass(frozen=True)
class Step:
    """One webhook of the scripted call and how its answer leads to the next one."""

    kind: str
    digits: str | None
    follow: str  # "gather": the <Gather>'s action; "redirect": the top-level <Redirect>
    next_kind: str


def call_script(route: Route = DEFAULT_ROUTE) -> tuple[Step, ...]:
    """incoming -> language -> menus -> queue -> 3 hold rounds; the status callback follows."""
    language, main, sub = route
    return (
        Step("incoming", None, "gather", "language"),
        Step("language", language, "gather", "menu"),  # 2: English
        Step("menu", main, "gather", "menu"),  # main menu; 2: deposits, withdrawals
        Step("join", sub, "redirect", "hold"),  # sub-menu; 1: deposit -> queued, "please hold"
        Step("hold", None, "redirect", "hold"),  # hold round 1 times out: the Gather's Redirect
        Step("hold", None, "redirect", "hold"),  # hold round 2
        Step("hold", None, "redirect", "hold"),  # hold round 3; then the caller hangs up
    )


CALL_SCRIPT = call_script()
"""The default call: English, funds, deposit, 3 hold rounds."""


def menu_path(route: Route) -> list[str]:
    """The ticket's menu path after a call along `route` (the menus `funds` and, in generated
    rules, others: the path names the menu by id, so this is the shipped rules' shape)."""
    return [f"language:{route[0]}", f"main:{route[1]}", f"funds:{route[2]}"]


def position_markers(prompts_dir: Path) -> tuple[str, ...]:
    """The fixed text of every prompt that tells a holding caller their place, in every
    language of `prompts_dir` (a position prompt is cut at its `{position}`)."""
    markers: list[str] = []
    for catalog in sorted(prompts_dir.glob("*.yaml")):
        loaded = yaml.safe_load(catalog.read_text(encoding="utf-8"))
        stack = [loaded]
        while stack:
            node = stack.pop()
            if not isinstance(node, dict):
                continue
            for key, value in node.items():
                if key in POSITION_PROMPTS and isinstance(value, str):
                    fixed = value.split("{", 1)[0].strip()
                    if fixed:
                        markers.append(fixed)
                elif isinstance(value, dict):
                    stack.append(value)
    return tuple(dict.fromkeys(markers))


SPOKEN_CHARACTERS_PER_SECOND = 15.0
"""How fast a `<Say>` is heard: ~150 words a minute."""
CJK_CHARACTERS_PER_SECOND = 4.0
"""The same for Chinese, which has no spaces and a syllable per character."""
CLIP_SECONDS = 5.0
"""A `<Play>`ed clip, whose length the TwiML does not say."""


def _heard(verb: ET.Element) -> float:
    """Seconds a caller spends hearing one verb (Say, Play, Pause; others take none)."""
    if verb.tag == "Say":
        text = (verb.text or "").strip()
        wide = sum(1 for char in text if "\u3000" <= char <= "\u9fff")
        return wide / CJK_CHARACTERS_PER_SECOND + (len(text) - wide) / SPOKEN_CHARACTERS_PER_SECOND
    if verb.tag == "Pause":
        return float(verb.get("length", "1"))
    if verb.tag == "Play":
        return CLIP_SECONDS
    return 0.0


def heard_seconds(document: bytes, pressing: bool) -> float:
    """How long a caller hears an answer before the next webhook: up to its `<Gather>`'s end
    (`pressing`: a key, once the prompt is heard) or, when nothing is pressed, also the Gather's
    `timeout` of silence (a hold round), then the `<Redirect>` at once."""
    try:
        root = ET.fromstring(document)
    except ET.ParseError:
        return 0.0
    total = 0.0
    for verb in root:
        if verb.tag == "Gather":
            total += sum(_heard(inner) for inner in verb)
            if pressing:
                return total
            total += float(verb.get("timeout", "5"))
        elif verb.tag == "Redirect":
            break
        else:
            total += _heard(verb)
    return total


def caller_pause(document: bytes, pressing: bool, rng: random.Random) -> float:
    """The pause a real caller makes after an answer: a key after 60-100 % of the prompt (and a
    second to press it), or the whole round when waiting (±5 %)."""
    heard = heard_seconds(document, pressing)
    if pressing:
        return heard * rng.uniform(0.6, 1.0) + 1.0
    return heard * rng.uniform(0.95, 1.05)


def tells_position(document: bytes, markers: Sequence[str]) -> bool:
    """Whether a TwiML answer says one of `markers` (a hold answer telling the caller's place)."""
    try:
        spoken = "".join(ET.fromstring(document).itertext())
    except ET.ParseError:
        return False
    return any(marker in spoken for marker in markers)


@dataclass
class Sample:
    """One request: its webhook kind, how long it took, when it ended, and what went wrong."""

    kind: str
    seconds: float
    ended: float
    error: str | None = None


@dataclass
class CallRecord:
    """One whole call: the sum of its webhooks' latencies, its wall time (first webhook sent to
    the status callback answered, pauses included), its webhooks and failed ones, and whether its
    first hold answer told the caller their place (None: it never reached the hold)."""

    call_sid: str
    server_seconds: float
    wall_seconds: float
    webhooks: int
    errors: int
    position_told: bool | None


@dataclass
class Phase:
    """A load shape: `calls` concurrent calls, `pause` seconds between webhooks, for `seconds`;
    call number i (0, 1, ...) presses `routes[i % len(routes)]`. `caller_pace`: instead of
    `pause`, each pause is as long as a caller would listen to the answer before (`caller_pause`)."""

    name: str
    calls: int
    pause: float
    seconds: float
    routes: tuple[Route, ...] = (DEFAULT_ROUTE,)
    caller_pace: bool = False


@dataclass
class PhaseRun:
    """What one phase against one target produced."""

    target: str
    phase: Phase
    started: float
    samples: list[Sample] = field(default_factory=list)
    call_sids: list[str] = field(default_factory=list)
    calls: list[CallRecord] = field(default_factory=list)
    cancelled_calls: int = 0
    wall_seconds: float = 0.0


class HttpError(Exception):
    """The connection failed or the answer was not HTTP we understand."""


class ClosedEarly(HttpError):
    """The server closed the connection before answering (an idle keep-alive it timed out)."""


class Connection:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1:port, opened on first use."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """POST `body` to `path`; retries once on a fresh connection if a reused one was closed."""
        reused = self.writer is not None
        try:
            return await self._post(path, body, headers)
        except (ClosedEarly, ConnectionResetError, BrokenPipeError):
            self.close()
            # gunicorn closes idle keep-alive connections; the request never reached the app.
            if not reused:
                raise
        return await self._post(path, body, headers)

    async def _post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
        head += "Content-Type: application/x-www-form-urlencoded\r\n"
        head += f"Content-Length: {len(body)}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self.writer.write(head.encode("latin-1") + b"\r\n" + body)
        status_line = await self.reader.readline()
        if not status_line:
            raise ClosedEarly("closed before the status line")
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise HttpError(f"bad status line {status_line[:80]!r}")
        status = int(parts[1])
        length: int | None = None
        chunked = close = False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value
            elif name == "connection":
                close = value == "close"
        if chunked:
            payload = await self._read_chunked()
        elif length is not None:
            payload = await self.reader.readexactly(length)
        elif status in (204, 304):
            payload = b""
        else:
            payload, close = await self.reader.read(), True
        if close:
            self.close()
        return status, payload

    async def _read_chunked(self) -> bytes:
        assert self.reader is not None
        chunks: list[bytes] = []
        while True:
            size = int((await self.reader.readline()).split(b";")[0], 16)
            if size == 0:
                await self.reader.readline()
                return b"".join(chunks)
            chunks.append(await self.reader.readexactly(size))
            await self.reader.readline()

    def close(self) -> None:
        """Close the connection (a later `post` opens a new one)."""
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def kind_of(path_and_query: str) -> str:
    """The webhook kind a URL of the app stands for (the report's rows)."""
    split = urlsplit(path_and_query)
    if split.path == "/voice/input":
        step = parse_qs(split.query).get("step", [""])[0]
        return "language" if step == "language" else "menu"
    return split.path.removeprefix("/voice/") or "other"


def next_url(document: bytes, step: Step, current: str) -> str | None:
    """The path and query the answer to `step` sends the caller to next, None if it does not."""
    try:
        root = ET.fromstring(document)
    except ET.ParseError:
        return None
    if root.tag != "Response":
        return None
    if step.follow == "gather":
        verb = root.find("Gather")
        url = verb.get("action") if verb is not None else None
    else:
        verb = root.find("Redirect")
        url = verb.text if verb is not None else None
    if verb is None or not url or verb.get("method", "POST").upper() != "POST":
        return None
    # Twilio resolves relative URLs against the URL it requested; we keep path and query only, so
    # that the floor, answering with the app's documents, is asked on its own port.
    split = urlsplit(urljoin(f"http://twilio.invalid{current}", url.strip()))
    target = split.path + (f"?{split.query}" if split.query else "")
    return target if kind_of(target) == step.next_kind else None


class Caller:
    """Places whole calls against one target and records every request."""

    def __init__(
        self,
        target: Target,
        record: Callable[[Sample], None],
        *,
        keep_alive: bool = False,
        record_call: Callable[[CallRecord], None] | None = None,
        markers: Sequence[str] = (),
    ) -> None:
        self.target = target
        self.validator = RequestValidator(target.auth_token)
        self.record = record
        self.keep_alive = keep_alive
        self.record_call = record_call
        self.markers = markers

    async def _webhook(
        self, connection: Connection, path: str, form: dict[str, str], kind: str
    ) -> tuple[Sample, bytes]:
        try:
            return await self._send(connection, path, form, kind)
        finally:
            if not self.keep_alive:
                connection.close()

    async def _send(
        self, connection: Connection, path: str, form: dict[str, str], kind: str
    ) -> tuple[Sample, bytes]:
        body = urlencode(form).encode()
        headers = {
            "X-Twilio-Signature": self.validator.compute_signature(
                self.target.base_url + path, form
            ),
            "I-Twilio-Idempotency-Token": uuid.uuid4().hex,
            "User-Agent": "TwilioProxy/1.1",
        }
        if not self.keep_alive:
            headers["Connection"] = "close"
        started = time.monotonic()
        try:
            status, payload = await asyncio.wait_for(
                connection.post(path, body, headers), TWILIO_GIVES_UP_SECONDS
            )
        except TimeoutError:
            connection.close()
            ended = time.monotonic()
            return Sample(kind, ended - started, ended, "timeout"), b""
        except (HttpError, OSError, ValueError, asyncio.IncompleteReadError) as exc:
            connection.close()
            ended = time.monotonic()
            return Sample(kind, ended - started, ended, f"connection: {type(exc).__name__}"), b""
        ended = time.monotonic()
        error = None if 200 <= status < 300 else f"http {status}"
        return Sample(kind, ended - started, ended, error), payload

    async def call(
        self,
        call_sid: str,
        caller_number: str,
        pause: float,
        rng: random.Random,
        capture: dict[tuple[str, str | None], bytes] | None = None,
        route: Route = DEFAULT_ROUTE,
        caller_pace: bool = False,
    ) -> None:
        """One whole call: the script's webhooks, pauses between them, then the status callback."""
        connection = Connection(self.target.port)
        server_seconds = 0.0
        webhooks = errors = 0
        position_told: bool | None = None
        base = {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "CallSid": call_sid,
            "Direction": "inbound",
            "From": caller_number,
            "Caller": caller_number,
            "To": CALLED_NUMBER,
            "Called": CALLED_NUMBER,
        }
        started = time.monotonic()
        path: str | None = "/voice/incoming"
        document = b""
        try:
            for step in call_script(route):
                assert path is not None
                if step.kind != "incoming" and caller_pace:
                    await asyncio.sleep(caller_pause(document, step.digits is not None, rng))
                elif step.kind != "incoming" and pause > 0:
                    # Callers listen for varying times; a fixed pause would march them in lockstep.
                    await asyncio.sleep(pause * rng.uniform(0.8, 1.2))
                form = {
                    **base,
                    "CallStatus": "ringing" if step.kind == "incoming" else "in-progress",
                }
                if step.digits is not None:
                    form["Digits"] = step.digits
                sample, document = await self._webhook(connection, path, form, step.kind)
                if capture is not None:
                    capture[(path, step.digits)] = document
                following = None if sample.error else next_url(document, step, path)
                if sample.error is None and following is None:
                    sample.error = "bad TwiML"
                if step.kind == "hold" and position_told is None:
                    position_told = sample.error is None and tells_position(document, self.markers)
                self.record(sample)
                server_seconds += sample.seconds
                webhooks += 1
                errors += sample.error is not None
                if sample.error:
                    break  # Twilio apologises and hangs up; the status callback still comes
                path = following
            if caller_pace:  # the caller hangs up somewhere in the last answer
                await asyncio.sleep(heard_seconds(document, False) * rng.uniform(0.2, 1.0))
            elif pause > 0:
                await asyncio.sleep(pause * rng.uniform(0.8, 1.2))
            form = {**base, "CallStatus": "completed"}
            form["CallDuration"] = str(max(1, round(time.monotonic() - started)))
            sample, _ = await self._webhook(connection, "/voice/status", form, "status")
            self.record(sample)
            if self.record_call is not None:
                self.record_call(
                    CallRecord(
                        call_sid,
                        server_seconds + sample.seconds,
                        time.monotonic() - started,
                        webhooks + 1,
                        errors + (sample.error is not None),
                        position_told,
                    )
                )
        finally:
            connection.close()


def new_call_sid() -> str:
    """A CallSid shaped like Twilio's: CA and 32 hex digits, unique per call."""
    return "CA" + uuid.uuid4().hex


CALLER_SPREAD_SECONDS = 10.0
"""At a caller's pace, the first calls of a phase start over this long."""


async def run_phase(
    target: Target,
    phase: Phase,
    drain_seconds: float,
    seed: int = 1,
    *,
    keep_alive: bool = False,
    markers: Sequence[str] = (),
    until: threading.Event | None = None,
) -> PhaseRun:
    """Keep `phase.calls` calls going for `phase.seconds` (or until `until` is set, if sooner),
    then let the calls in progress end."""
    run = PhaseRun(target.name, phase, time.monotonic())
    caller = Caller(
        target,
        run.samples.append,
        keep_alive=keep_alive,
        record_call=run.calls.append,
        markers=markers,
    )
    deadline = run.started + phase.seconds

    async def line(index: int) -> None:
        rng = random.Random(seed * 100_003 + index)
        spread = CALLER_SPREAD_SECONDS if phase.caller_pace else phase.pause
        if spread > 0:  # spread the first webhooks over one pause, not all at once
            await asyncio.sleep(index * spread / phase.calls)
        number = 0
        while time.monotonic() < deadline and not (until is not None and until.is_set()):
            sid = new_call_sid()
            run.call_sids.append(sid)
            number += 1
            route = phase.routes[index % len(phase.routes)]
            number_ = f"+1212{index:03d}{number % 10_000:04d}"
            await caller.call(
                sid, number_, phase.pause, rng, route=route, caller_pace=phase.caller_pace
            )

    tasks = [asyncio.create_task(line(i)) for i in range(phase.calls)]
    _, pending = await asyncio.wait(tasks, timeout=phase.seconds + drain_seconds)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    run.cancelled_calls = len(pending)
    run.wall_seconds = time.monotonic() - run.started
    for task in tasks:
        failure = None if task.cancelled() else task.exception()
        if failure is not None:
            raise failure  # a bug in the generator, not a result
    return run


async def capture_call(target: Target) -> dict[tuple[str, str | None], bytes]:
    """One scripted call; returns the document answered to each (path and query, digits)."""
    documents: dict[tuple[str, str | None], bytes] = {}
    errors: list[Sample] = []

    def record(sample: Sample) -> None:
        if sample.error:
            errors.append(sample)

    await Caller(target, record).call(
        new_call_sid(), "+12125550000", 0, random.Random(0), documents
    )
    if errors:
        raise RuntimeError(f"the capture call failed: {errors}")
    return documents
