"""Helpers shared by the tests.

A tiny Twilio stand-in for webhook tests that signs requests and follows the TwiML it gets back, and
tells Twilio's REST API fake (`ivr.simulator.rest.TwilioRest`, over `Calls`) which calls are in
progress; the tickets a call leaves behind; and copies of the shipped rules and prompt catalogs with
edits, where `‸` in replacement text marks the position a problem must point at.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import pty
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml
from flask import Flask
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator
from werkzeug.test import TestResponse

from ivr.db import Database
from ivr.exchange.contract import Account, Verification
from ivr.simulator.rest import TwilioRest
from ivr.telephony import TwilioTelephony
from ivr.tickets.changes import TicketChange
from ivr.tickets.models import Ticket
from ivr.tickets.reads import get_ticket
from ivr.tickets.records import JournalRecord
from ivr.tickets.writes import apply_records

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "routing_rules.yaml"
PROMPTS = ROOT / "voice_prompts"
HERE = "‸"
"""Marks, in replacement text, the position a problem must point at."""

AUTH_TOKEN = "test-auth-token-0123456789abcdef"
PUBLIC = "https://ivr.example.com"
"""The public URL of the app that has REST credentials (`rest_app`)."""
REST_ACCOUNT_SID = "AC" + "1" * 32
STATE_SECRET = "test-state-secret-0123456789abcdefghijklmnop"
"""The key that seals call state in the test apps' webhook URLs (`IVR_SECRET`)."""
BASE_URL = "http://localhost"
_sids = itertools.count(1)


def new_call_sid() -> str:
    return f"CA{next(_sids):032x}"


def sealed(client: FlaskClient, url: str, call_sid: str) -> str:
    """`url` (a path with a query string) sealed as the service seals the URLs it issues to the
    call `call_sid`: for tests that start a call in the middle of the flow."""
    found = client.application.extensions["ivr"]
    return str(found.signer.seal(url, call_sid, found.clock.now().timestamp()))


def signed_post(
    client: FlaskClient,
    path: str,
    form: dict[str, str],
    *,
    token: str = AUTH_TOKEN,
    base_url: str = BASE_URL,
    headers: dict[str, str] | None = None,
) -> TestResponse:
    """POST `form` to `path` as Twilio would, signed for the URL `base_url + path`."""
    signature = RequestValidator(token).compute_signature(base_url + path, form)
    return client.post(
        path, data=form, headers={"X-Twilio-Signature": signature, **(headers or {})}
    )


def parse(response: TestResponse) -> ET.Element:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/xml"
    root = ET.fromstring(response.get_data())
    assert root.tag == "Response"
    return root


def spoken(element: ET.Element) -> list[str]:
    """Texts of every <Say> in document order, including those inside <Gather>."""
    return [say.text or "" for say in element.iter("Say")]


class Calls:
    """The calls of a webhook test as Twilio knows them (`ivr.simulator.rest.PhoneNetwork`), so that
    `TwilioRest` answers a move as Twilio does: a caller's call is in progress from its first
    webhook (`Phone` dials) until its hang-up status callback (`Phone.hang_up`); a call the app
    places exists once created."""

    def __init__(self) -> None:
        self.in_progress: set[str] = set()
        self.moved: list[tuple[str, str]] = []
        """(call sid, URL) of every move Twilio made."""

    def place_outbound(self, to: str, from_: str, url: str, status_url: str | None) -> str:
        sid = new_call_sid()
        self.in_progress.add(sid)
        return sid

    def redirect(self, sid: str, url: str) -> bool:
        if sid not in self.in_progress:
            return False
        self.moved.append((sid, url))
        return True


def twilio_rest() -> TwilioRest:
    """Twilio's REST API for a test app, over the test's own `Calls`."""
    return TwilioRest(Calls())


def calls_of(app: Flask) -> Calls | None:
    """The `Calls` behind `app`, when its Twilio REST API is a `TwilioRest` over them."""
    telephony = getattr(app.extensions.get("ivr"), "telephony", None)
    if not isinstance(telephony, TwilioTelephony):
        return None
    rest = telephony.http_client  # the HTTP client the test gave `create_app`
    network = rest.network if isinstance(rest, TwilioRest) else None
    return network if isinstance(network, Calls) else None


@dataclass
class Phone:
    """One call, walked through the webhooks the way Twilio would (enough for these tests)."""

    client: FlaskClient
    caller: str = "+14155550100"
    called: str = "+18005550199"
    sid: str = field(default_factory=new_call_sid)
    twiml: ET.Element | None = None
    heard: list[str] = field(default_factory=list)
    base_url: str = BASE_URL
    country: str | None = None
    """Twilio's `FromCountry` of the caller (ISO code), sent with every webhook when set."""
    network: Calls | None = None
    """Where Twilio keeps the call in progress; by default the `Calls` of the client's app."""

    def __post_init__(self) -> None:
        app = getattr(self.client, "application", None)  # None: a wrapper of a test client
        if self.network is None and app is not None:
            self.network = calls_of(app)

    def form(self, **extra: str) -> dict[str, str]:
        country = {"FromCountry": self.country} if self.country else {}
        return {
            "CallSid": self.sid,
            "AccountSid": "AC" + "0" * 32,
            "From": self.caller,
            "To": self.called,
            "CallStatus": "in-progress",
            "Direction": "inbound",
            **country,
            **extra,
        }

    def _post(self, url: str, **extra: str) -> ET.Element:
        if self.network is not None:
            self.network.in_progress.add(self.sid)
        form = self.form(**extra)
        self.twiml = parse(signed_post(self.client, url, form, base_url=self.base_url))
        self.heard += spoken(self.twiml)
        return self.twiml

    def redirected_to(self, path: str) -> ET.Element:
        """Twilio moved the call to `path` (a REST update of the live call)."""
        return self._post(path)

    def dial(self) -> ET.Element:
        return self._post("/voice/incoming", CallStatus="ringing")

    def _gather(self) -> ET.Element:
        assert self.twiml is not None
        gather = self.twiml.find("Gather")
        assert gather is not None, "the caller is not at a menu"
        return gather

    def press(self, key: str) -> ET.Element:
        return self._post(self._gather().attrib["action"], Digits=key)

    def wait_silently(self) -> ET.Element:
        """Let the Gather time out: Twilio follows the <Redirect> after it."""
        self._gather()
        return self.follow()

    def follow(self) -> ET.Element:
        assert self.twiml is not None
        redirect = self.twiml.find("Redirect")
        assert redirect is not None, "no <Redirect> to follow"
        return self._post(redirect.text or "")

    def record(self, url: str, seconds: int) -> ET.Element:
        assert self.twiml is not None
        record = self.twiml.find("Record")
        assert record is not None, "not recording"
        return self._post(
            record.attrib["action"], RecordingUrl=url, RecordingDuration=str(seconds), Digits="#"
        )

    def say_nothing(self, rounds: int, between: Callable[[], object]) -> int:
        """Press nothing and record nothing until the service hangs up, calling `between` before
        each round (to let the call's time pass); the rounds it took, at most `rounds`.

        A `<Gather>` that hears nothing and a `<Record>` that records nothing both go on to the
        `<Redirect>` after them."""
        for done in range(rounds):
            assert self.twiml is not None
            if self.twiml.find("Hangup") is not None:
                return done
            between()
            self.follow()
        return rounds

    def gone(self) -> None:
        """The caller hangs up: the call is over for Twilio (a move of it is refused, 21220), which
        posts its status callback a moment later (`hang_up`)."""
        if self.network is not None:
            self.network.in_progress.discard(self.sid)

    def hang_up(self, status: str = "completed", duration: int = 42) -> Any:
        """The caller hangs up, and Twilio's status callback says so."""
        self.gone()
        response = signed_post(
            self.client,
            "/voice/status",
            self.form(CallStatus=status, CallDuration=str(duration)),
            base_url=self.base_url,
        )
        assert response.status_code in (200, 204), response.get_data(as_text=True)
        return response

    def last_heard(self) -> str:
        return " ".join(spoken(self.twiml)) if self.twiml is not None else ""


def reference_in(twiml: ET.Element | None) -> str | None:
    """The ticket reference the webhook URLs of a TwiML document carry, if any."""
    for element in [] if twiml is None else twiml.iter():
        for url in (element.attrib.get("action"), element.text):
            if url and url.startswith("/voice/"):
                found = parse_qs(urlsplit(url).query).get("ref")
                if found:
                    return found[0]
    return None


def ticket_of(database: Database, sid: str) -> Ticket:
    with database.session() as session:
        ticket = get_ticket(session, sid)
        assert ticket is not None, f"no ticket for {sid}"
        return ticket


def prompt_texts(language: str) -> dict[str, str]:
    """The texts of the shipped prompt catalog for `language`, by prompt name."""
    data = yaml.safe_load((PROMPTS / f"{language}.yaml").read_text(encoding="utf-8"))
    texts: dict[str, str] = data["prompts"]
    return texts


# --- the installed `ivr` command -------------------------------------------------------------------

IVR = Path(sys.executable).with_name("ivr")
"""The console script installed next to this Python."""
EXIT_READER_GONE = 141
"""How a command ends whose reader went away: as one that SIGPIPE (13) ended, 128 + 13."""
LOCAL_SETTINGS = {"ROUTING_RULES", "VOICE_PROMPTS", "DATABASE_URL"}
"""Settings of the environment the tests run in that a command run by a test must not inherit."""


def ivr_environment(**env: str) -> dict[str, str]:
    """A copy of this process's environment without `LOCAL_SETTINGS`, with `env` on top."""
    environment = {k: v for k, v in os.environ.items() if k not in LOCAL_SETTINGS}
    environment.update(env)
    return environment


def run_ivr(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the installed `ivr` script, with `env` on top of a copy of this process's environment."""
    return subprocess.run(
        [str(IVR), *args],
        cwd=cwd,
        env=ivr_environment(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def first_line_then_close(*args: str, cwd: Path, **env: str) -> tuple[str, int, str]:
    """Run `ivr` with its output read by someone who takes one line and leaves, as `| head -1`
    does: (that line, the exit status, everything on stderr)."""
    with (
        (cwd / "ivr-stderr.txt").open("w+", encoding="utf-8") as err,
        subprocess.Popen(
            [str(IVR), *args],
            cwd=cwd,
            env=ivr_environment(**env),
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        ) as process,
    ):
        assert process.stdout is not None
        line = process.stdout.readline()
        process.stdout.close()
        status = process.wait(timeout=120)
        err.seek(0)
        return line, status, err.read()


def with_stderr_on_a_terminal(*args: str, cwd: Path, **env: str) -> tuple[int, str, str]:
    """Run `ivr` with stderr on a pseudo-terminal of 80x24 (stdout a pipe), as someone at a terminal
    who sends the output to a file: (exit status, stdout, what the terminal showed)."""
    main, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    with (
        (cwd / "ivr-stdout.txt").open("w+", encoding="utf-8") as out,
        subprocess.Popen(
            [str(IVR), *args], cwd=cwd, env=ivr_environment(**env), stdout=out, stderr=terminal
        ) as process,
    ):
        os.close(terminal)
        shown = bytearray()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 1.0)
            try:
                chunk = os.read(main, 65536) if ready else b""
            except OSError:  # EIO: the process closed its end of the terminal
                break
            if ready and not chunk:
                break
            shown += chunk
        os.close(main)
        status = process.wait(timeout=10)
        out.seek(0)
        return status, out.read(), shown.decode("utf-8", "replace")


# --- edited copies of the shipped rules and catalogs ----------------------------------------------


def copy_project(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the shipped rules file and prompt folder: (rules file, prompt folder)."""
    rules = tmp_path / RULES.name
    shutil.copy(RULES, rules)
    prompts = tmp_path / PROMPTS.name
    shutil.copytree(PROMPTS, prompts)
    return rules, prompts


def apply_edits(
    text: str, *edits: tuple[str, str], where: str = "the text"
) -> tuple[str, list[tuple[int, int]]]:
    """`text` with each (old, new) replacement made and every ‸ removed, and the (line, column) each
    ‸ stood at, in text order. Each `old` must occur exactly once (in `where`)."""
    for old, new in edits:
        assert text.count(old) == 1, f"{old!r} must occur exactly once in {where}"
        text = text.replace(old, new)
    spots: list[tuple[int, int]] = []
    while HERE in text:
        index = text.index(HERE)
        spots.append((text.count("\n", 0, index) + 1, index - text.rfind("\n", 0, index)))
        text = text[:index] + text[index + len(HERE) :]
    return text, spots


def edit(path: Path, *edits: tuple[str, str]) -> list[tuple[int, int]]:
    """Apply `edits` to `path` and move its mtime forward, so that the change is seen even on file
    systems with coarse timestamps; returns the (line, column) of each ‸, in file order."""
    before = path.stat().st_mtime_ns
    text, spots = apply_edits(path.read_text(encoding="utf-8"), *edits, where=path.name)
    path.write_text(text, encoding="utf-8")
    later = max(before, path.stat().st_mtime_ns) + 5_000_000_000
    os.utime(path, ns=(later, later))
    return spots


def write_rules(folder: Path, *edits: tuple[str, str]) -> tuple[Path, list[tuple[int, int]]]:
    """The shipped rules with `edits` applied, written to `folder`: (that file, each ‸'s position)."""
    path = folder / RULES.name
    shutil.copy(RULES, path)
    return path, edit(path, *edits)


# --- journal records -----------------------------------------------------------------------------

_record_ids = itertools.count(1)
_test_references = itertools.count(2_000_001)


def journal_record(
    call_sid: str, at: datetime, *, id: str | None = None, **fields: Any
) -> JournalRecord:
    """A journal record; `fields` are JournalRecord fields (reference, caller, called, end, seq) or
    TicketChange fields."""
    own = {k: fields.pop(k) for k in ("reference", "caller", "called", "end", "seq") if k in fields}
    return JournalRecord(
        id=id or f"test-{next(_record_ids)}",
        call_sid=call_sid,
        at=at,
        change=TicketChange(**fields),
        **own,
    )


def write_records(database: Database, *records: JournalRecord) -> None:
    """Apply journal records to the database, as the ticket writer does."""
    with database.sessions() as session:
        apply_records(session, records, new_reference=lambda: str(next(_test_references)))


@dataclass
class FakeExchange:
    """The exchange hook at its interface (`ivr.exchange.hook.Exchange`): knows the numbers given,
    sends "codes" it remembers, records every lock; `down` makes it answer nothing at all."""

    known: dict[str, Account] = field(default_factory=dict)
    channel: str = "app"
    down: bool = False
    codes: dict[str, str] = field(default_factory=dict)
    """The code sent for each verification."""
    locks: list[dict[str, object]] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)
    enabled: bool = True

    def lookup(self, caller: str, call: str) -> Account | None:
        self.asked.append(f"lookup {caller}")
        return None if self.down else self.known.get(caller)

    def start_verification(self, account: str, call: str) -> Verification | None:
        self.asked.append(f"verify {account}")
        if self.down:
            return None
        verification = f"v-{len(self.codes) + 1}"
        self.codes[verification] = f"{314159 + len(self.codes):06d}"
        return Verification(verification=verification, channel=self.channel)  # type: ignore[arg-type]

    def check_code(self, verification: str, code: str) -> bool | None:
        self.asked.append(f"check {verification}")
        return None if self.down else self.codes.get(verification) == code

    def lock(self, account: str, call: str, reference: str, verified: bool) -> bool | None:
        self.asked.append(f"lock {account}")
        if self.down:
            return None
        self.locks.append(
            {"account": account, "call": call, "reference": reference, "verified": verified}
        )
        return True


def downgrade(database: Database, revision: str) -> None:
    """Take `database`'s schema back to `revision` with Alembic (the service only ever upgrades:
    the migration tests check that each migration's downgrade works too)."""
    from alembic import command

    config = database.alembic_config()
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
