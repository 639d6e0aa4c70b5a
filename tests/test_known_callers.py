"""Callers the exchange knows, in the pure call flow: greeted in their language, VIPs queued higher,
"lock my account now" with a code the exchange sends, verified once for the whole call."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ivr.clock import FrozenClock
from ivr.db import Database
from ivr.exchange.contract import Account, Verification
from ivr.exchange.hook import KnownCaller
from ivr.exchange.reference import EmbeddedExchange
from ivr.flow import (
    CODE_DIGITS,
    CODE_TRIES,
    LOCK_NOW,
    Caller,
    CallState,
    Flow,
    Gather,
    GoTo,
    Pause,
)
from ivr.rules.bundle import Bundle
from ivr.rules.check import load_bundle
from ivr.tickets.listing import timeline
from tests.conftest import AGENT_PINS
from tests.exchange.support import SECRET as EXCHANGE_SECRET
from tests.exchange.support import ServedReference
from tests.flow.test_engine import ROOT, flow_at, heard, listening_at, texts
from tests.support import (
    FakeExchange,
    Phone,
    new_call_sid,
    parse,
    prompt_texts,
    reference_in,
    signed_post,
    spoken,
    ticket_of,
    write_rules,
)

NIGHT = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # 03:00 UTC: every team but security is closed
KNOWN = KnownCaller("acct-4711", language="de-DE")
ANNA = Caller("+4915112345678", "4821093", KNOWN)
VIP = Caller("+14155550100", "4821093", KnownCaller("acct-9", language="en-US", vip=True))
STRANGER = Caller("+4915100000000", "4821093")
SECURITY = CallState("menu", "de-DE", "security")


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle(ROOT / "routing_rules.yaml", ROOT / "voice_prompts")


def test_the_lookup_gets_a_second_of_silence_and_the_first_answer_waits_for_nothing(
    bundle: Bundle,
) -> None:
    decision = flow_at(bundle).answer(STRANGER, look_up=True)
    assert decision.actions == (Pause(1), GoTo(CallState("greet")))


def test_a_known_caller_is_greeted_in_their_language_straight_into_the_main_menu(
    bundle: Bundle,
) -> None:
    decision = flow_at(bundle).greet(replace(ANNA, number="+14155550100"))  # a US number
    spoken = [s for s in decision.actions[0].speech]  # type: ignore[union-attr]
    assert {s.language for s in spoken} == {"de-DE"}
    greeting = [*bundle.rules.greeting, "other_language_key", "main_intro"]
    assert heard(decision)[: len(greeting)] == greeting
    assert listening_at(decision) == CallState("menu", "de-DE", "main")
    assert decision.ticket.account == "acct-4711" and decision.ticket.language == "de-DE"
    # One key away: # at the main menu is the language menu.
    back = flow_at(bundle).on_input(CallState("menu", "de-DE", "main"), "#", ANNA)
    assert listening_at(back) == CallState("language")


def test_a_stranger_is_greeted_as_before(bundle: Bundle) -> None:
    flow = flow_at(bundle)
    assert flow.greet(STRANGER).actions == flow.answer(STRANGER).actions
    assert flow.greet(STRANGER).ticket.account is None


def test_a_known_caller_whose_language_the_line_does_not_speak_gets_the_suggested_one(
    bundle: Bundle,
) -> None:
    caller = replace(ANNA, known=replace(KNOWN, language="es-ES"))
    decision = flow_at(bundle).greet(caller)
    assert listening_at(decision) == CallState("menu", "de-DE", "main")  # +49: German


def test_a_vip_waits_with_the_priority_the_rules_give_vips(bundle: Bundle) -> None:
    funds = CallState("menu", "en-US", "funds")
    vip = flow_at(bundle).on_input(funds, "1", VIP)
    plain = flow_at(bundle).on_input(funds, "1", replace(VIP, known=None))
    assert vip.join is not None and plain.join is not None
    assert plain.join.priority < bundle.rules.known_callers.vip_priority == vip.join.priority
    # An option's own higher priority still wins.
    urgent = flow_at(bundle).on_input(CallState("menu", "en-US", "security"), "3", VIP)
    assert urgent.join is not None and urgent.join.priority == 90


def test_a_known_caller_in_a_security_emergency_is_offered_the_lock_first(bundle: Bundle) -> None:
    decision = flow_at(bundle, NIGHT).on_input(SECURITY, "1", ANNA)
    assert heard(decision) == ["lock_offer"]
    offer = listening_at(decision)
    assert offer == CallState("lock_offer", "de-DE", "security", "security", 100)
    assert decision.join is None
    assert (decision.ticket.menu_step, decision.ticket.issue) == (
        "security:1",
        "account_compromised",
    )
    # A stranger, or an account locked already in this call: straight to the security team.
    assert flow_at(bundle, NIGHT).on_input(SECURITY, "1", STRANGER).join is not None
    locked = replace(ANNA, known=replace(KNOWN, locked_at=NIGHT))
    assert flow_at(bundle, NIGHT).on_input(SECURITY, "1", locked).join is not None


OFFER = CallState("lock_offer", "de-DE", "security", "security", 100)


def test_waiting_for_the_security_team_instead_queues_at_top_priority(bundle: Bundle) -> None:
    decision = flow_at(bundle, NIGHT).lock_offered(OFFER, "2", ANNA)
    assert decision.join is not None and (decision.join.queue, decision.join.priority) == (
        "security",
        100,
    )


def test_the_code_is_asked_for_where_the_exchange_sent_it(bundle: Bundle) -> None:
    sent = Verification(verification="v-1", channel="sms")
    decision = flow_at(bundle, NIGHT).lock_offered(OFFER, LOCK_NOW, ANNA, sent)
    [gather] = decision.actions
    assert isinstance(gather, Gather)
    assert heard(decision) == ["lock_code_sent_sms"]
    assert gather.several_digits and gather.num_digits == CODE_DIGITS
    assert gather.then == replace(OFFER, step="lock_code", verification="v-1", stage="sms")
    assert decision.join is None


@pytest.mark.parametrize(
    ("sent", "said"),
    [(None, "lock_unavailable"), ("throttled", "lock_throttled")],
)
def test_no_code_sent_means_no_lock_and_the_security_team(
    bundle: Bundle, sent: str | None, said: str
) -> None:
    decision = flow_at(bundle, NIGHT).lock_offered(OFFER, LOCK_NOW, ANNA, sent)  # type: ignore[arg-type]
    assert heard(decision)[0] == said
    assert decision.join is not None and decision.join.priority == 100
    assert not decision.ticket.locked


def test_rules_may_lock_without_a_code_when_none_could_be_sent(tmp_path: Path) -> None:
    path, _ = write_rules(
        tmp_path, ("  lock_without_verification: false", "  lock_without_verification: true")
    )
    bundle = load_bundle(path, ROOT / "voice_prompts")
    decision = Flow(bundle, NIGHT).lock_offered(OFFER, LOCK_NOW, ANNA, None)
    assert decision.actions == (GoTo(replace(OFFER, step="lock")),)


ASKING = replace(OFFER, step="lock_code", verification="v-1", stage="app")


def test_the_right_code_verifies_the_caller_and_goes_on_to_the_lock(bundle: Bundle) -> None:
    decision = flow_at(bundle, NIGHT).code_keyed(ASKING, True, True)
    assert decision.actions == (GoTo(replace(ASKING, step="lock", verification=None)),)
    assert decision.ticket.verified == "app"


def test_three_wrong_codes_lock_nothing_and_go_to_the_security_team(bundle: Bundle) -> None:
    flow = flow_at(bundle, NIGHT)
    state = ASKING
    for _ in range(CODE_TRIES - 1):
        decision = flow.code_keyed(state, True, False)
        assert heard(decision) == ["lock_code_wrong"]
        state = listening_at(decision)  # type: ignore[assignment]
        assert state is not None and state.step == "lock_code"
    last = flow.code_keyed(state, True, False)
    assert heard(last)[0] == "lock_not_verified" and last.join is not None
    assert last.ticket.verified is None and not last.ticket.locked


def test_silence_asks_again_and_an_exchange_that_does_not_check_sends_on(bundle: Bundle) -> None:
    flow = flow_at(bundle, NIGHT)
    assert heard(flow.code_keyed(ASKING, False, None)) == ["no_input"]
    gone = flow.code_keyed(ASKING, True, None)
    assert heard(gone)[0] == "lock_unavailable" and gone.join is not None


def test_a_locked_account_is_said_with_the_reference_then_the_security_team(bundle: Bundle) -> None:
    locking = replace(ASKING, step="lock", verification=None)
    decision = flow_at(bundle, NIGHT).account_locked(locking, ANNA, True)
    assert heard(decision)[:2] == ["lock_done", "ticket_reference"]
    assert "4 8 2 1 0 9 3" in texts(decision)
    assert decision.ticket.locked and decision.join is not None
    assert decision.join.priority == 100
    failed = flow_at(bundle, NIGHT).account_locked(locking, ANNA, None)
    assert heard(failed)[0] == "lock_unavailable" and not failed.ticket.locked


def test_the_agent_hears_that_the_caller_is_verified_and_when_the_account_was_locked(
    bundle: Bundle,
) -> None:
    whisper = CallState("whisper", "de-DE", None, "security", 100, agent="sec_desk")
    flow = flow_at(bundle, NIGHT)
    done = replace(KNOWN, verified="app", locked_at=NIGHT)
    decision = flow.whisper(whisper, "4821093", done)
    assert heard(decision) == ["agent_whisper", "whisper_verified", "whisper_locked"]
    assert heard(flow.whisper(whisper, "4821093", KNOWN)) == ["agent_whisper"]
    assert heard(flow.whisper(whisper, "4821093")) == ["agent_whisper"]


# --- whole calls through the webhooks, the exchange faked at its interface -----------------------


@pytest.fixture
def exchange() -> FakeExchange:
    return FakeExchange(known={ANNA.number or "": Account(account="acct-4711", language="de-DE")})


@pytest.fixture
def night_client(
    app_factory: Callable[..., Flask], clock: FrozenClock, exchange: FakeExchange
) -> FlaskClient:
    clock.set(NIGHT)
    return app_factory(exchange=exchange).test_client()


def asking_to_lock(client: FlaskClient) -> Phone:
    """Anna calls, is greeted, chooses the security emergency "taken over", and asks for the lock:
    the exchange has sent her a code."""
    phone = Phone(client, caller=ANNA.number or "")
    phone.dial()
    phone.follow()  # after the second of silence: the greeting
    for key in ("3", "1", LOCK_NOW):
        phone.press(key)
    return phone


def test_a_known_caller_locks_their_account_at_3_am_with_nobody_logged_in(
    night_client: FlaskClient, exchange: FakeExchange, database: Database
) -> None:
    phone = Phone(night_client, caller=ANNA.number or "")
    phone.dial()
    assert phone.twiml is not None and phone.twiml.find("Pause") is not None
    phone.follow()  # after the second of silence: greeted in German, the main menu
    assert "Für eine andere Sprache drücken Sie die Rautetaste." in phone.heard
    phone.press("3")  # a security emergency
    phone.press("1")  # my account has been taken over
    assert prompt_texts("de-DE")["lock_offer"] in phone.last_heard()
    phone.press(LOCK_NOW)
    assert "Wir haben einen sechsstelligen Code an die BitP-App" in phone.last_heard()
    phone.press(exchange.codes["v-1"])
    phone.follow()  # to the lock
    reference = reference_in(phone.twiml)
    assert reference is not None
    assert prompt_texts("de-DE")["lock_done"] in phone.last_heard()
    assert " ".join(reference) in phone.last_heard()
    assert exchange.locks == [
        {"account": "acct-4711", "call": phone.sid, "reference": reference, "verified": True}
    ]
    phone.follow()  # please hold: the security line, at top priority
    ticket = ticket_of(database, phone.sid)
    assert (ticket.account, ticket.verified_by, ticket.queue) == ("acct-4711", "app", "security")
    assert ticket.verified_at == ticket.locked_at == NIGHT
    assert ticket.priority == 100
    # The code itself is nowhere: not in the menu path, not on the ticket.
    assert exchange.codes["v-1"] not in " ".join(ticket.menu_path)


def test_the_same_call_with_the_exchange_down_reaches_the_security_line(
    night_client: FlaskClient, exchange: FakeExchange, database: Database
) -> None:
    exchange.down = True
    phone = Phone(night_client, caller=ANNA.number or "")
    phone.dial()
    phone.follow()  # a stranger now: the language menu
    for key in ("4", "3", "1"):  # Deutsch, security, taken over
        phone.press(key)
    phone.follow()
    ticket = ticket_of(database, phone.sid)
    assert (ticket.queue, ticket.priority, ticket.account) == ("security", 100, None)
    assert exchange.locks == []


def test_a_wrong_code_three_times_locks_nothing(
    night_client: FlaskClient, exchange: FakeExchange, database: Database
) -> None:
    phone = asking_to_lock(night_client)
    for _ in range(CODE_TRIES):
        phone.press("000000")
    assert prompt_texts("de-DE")["lock_not_verified"] in phone.last_heard()
    assert exchange.locks == []
    ticket = ticket_of(database, phone.sid)
    assert ticket.verified_at is None and ticket.locked_at is None and ticket.queue == "security"


def test_codes_for_one_account_are_throttled(
    night_client: FlaskClient, exchange: FakeExchange
) -> None:
    code_sent = prompt_texts("de-DE")["lock_code_sent_app"].replace("{brand}", "BitP")
    sent = []
    for _ in range(7):  # seven calls in a row from Anna's number, each asking for a code
        phone = asking_to_lock(night_client)
        sent.append(code_sent in phone.last_heard())
    assert sent[:5] == [True] * 5 and sent[-1] is False
    assert len([a for a in exchange.asked if a.startswith("verify")]) == 5
    assert prompt_texts("de-DE")["lock_throttled"] in phone.last_heard()


# --- the reference exchange: in-process, and over TCP behind a fault proxy -----------------------


def test_done_when_the_reference_exchange_locks_the_account_of_a_known_caller_at_3_am(
    app_factory: Callable[..., Flask], clock: FrozenClock, database: Database
) -> None:
    clock.set(NIGHT)
    exchange = EmbeddedExchange("reference-exchange-secret-0123456789abcdef", clock)
    client = app_factory(exchange=exchange).test_client()
    phone = Phone(client, caller="+4915112345678")  # the reference knows it: acct-demo-de, German
    phone.dial()
    phone.follow()
    for key in ("3", "1", LOCK_NOW):
        phone.press(key)
    phone.press(exchange.reference.codes_sent["acct-demo-de"])
    phone.follow()
    reference = reference_in(phone.twiml)
    assert reference is not None and " ".join(reference) in phone.last_heard()
    lock = exchange.reference.locks["acct-demo-de"]
    assert (lock.call, lock.reference, lock.verified) == (phone.sid, reference, True)
    phone.follow()
    ticket = ticket_of(database, phone.sid)
    assert (ticket.account, ticket.verified_by, ticket.queue) == ("acct-demo-de", "app", "security")
    assert ticket.locked_at is not None


@pytest.mark.parametrize("fault", ["stall", "refuse", "drop"])
def test_the_exchange_away_sends_a_known_caller_to_the_security_line_in_time(
    app_factory: Callable[..., Flask],
    clock: FrozenClock,
    database: Database,
    served_exchange: ServedReference,
    fault: str,
) -> None:
    clock.set(NIGHT)
    app = app_factory(exchange_url=served_exchange.url, exchange_secret=EXCHANGE_SECRET)
    slowest = 0.0

    def timed(step: Callable[[], object]) -> None:
        nonlocal slowest
        started = time.monotonic()
        step()
        slowest = max(slowest, time.monotonic() - started)

    # Known when the call arrives; the exchange goes away before the caller asks for the lock.
    phone = Phone(app.test_client(), caller="+4915112345678")
    timed(phone.dial)
    timed(phone.follow)
    timed(lambda: phone.press("3"))
    timed(lambda: phone.press("1"))
    assert prompt_texts("de-DE")["lock_offer"] in phone.last_heard()
    getattr(served_exchange.proxy, fault)()
    timed(lambda: phone.press(LOCK_NOW))
    assert prompt_texts("de-DE")["lock_unavailable"] in phone.last_heard()
    timed(phone.follow)  # please hold
    # Another known caller arrives while it is away: greeted as a stranger, not held up.
    other = Phone(app.test_client(), caller="+4915112345678")
    timed(other.dial)
    timed(other.follow)
    assert other.twiml is not None and other.twiml.find("Gather") is not None
    assert slowest < 2.0, f"a webhook took {slowest:.2f} s"
    ticket = ticket_of(database, phone.sid)
    assert (ticket.queue, ticket.priority, ticket.locked_at) == ("security", 100, None)
    health = app.test_client().get("/healthz")
    assert health.status_code == 200 and health.get_json()["exchange"].startswith("degraded")


def test_an_exchange_refusing_our_signature_leaves_the_caller_a_stranger_in_time(
    app_factory: Callable[..., Flask], clock: FrozenClock, served_exchange: ServedReference
) -> None:
    clock.set(NIGHT)
    wrong = "not-the-exchanges-secret-0123456789abcdef"
    app = app_factory(exchange_url=served_exchange.url, exchange_secret=wrong)
    phone = Phone(app.test_client(), caller="+4915112345678")
    started = time.monotonic()
    phone.dial()
    phone.follow()
    assert time.monotonic() - started < 2.0
    gather = phone.twiml.find("Gather") if phone.twiml is not None else None
    assert gather is not None and gather.attrib["action"].startswith("/voice/input?step=language")


def test_the_agent_and_the_timeline_know_the_caller_was_verified_and_the_account_locked(
    night_client: FlaskClient,
    exchange: FakeExchange,
    database: Database,
    agent_pins: dict[str, str],
) -> None:
    phone = asking_to_lock(night_client)
    phone.press(exchange.codes["v-1"])
    phone.follow()  # locked
    phone.follow()  # please hold
    login = night_client.post(
        "/api/agents/sec_desk/login", auth=("sec_desk", AGENT_PINS["sec_desk"])
    )
    assert login.status_code == 200
    dial = phone.follow().find("Dial")  # the next hold round puts the caller through
    assert dial is not None
    whisper = {"CallSid": new_call_sid(), "ParentCallSid": phone.sid, "From": phone.caller}
    heard = " ".join(spoken(parse(signed_post(night_client, dial[0].attrib["url"], whisper))))
    assert "The caller is verified." in heard and "Account locked at" in heard
    with database.sessions() as session:
        ticket = ticket_of(database, phone.sid)
        story = [entry.text for entry in timeline(session, ticket)]
    assert any(text.startswith("verified: the code the exchange sent") for text in story)
    assert "account locked at the exchange (withdrawals and logins stopped)" in story
