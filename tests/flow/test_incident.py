"""The incident notice in the call flow: who hears it, in what words, and what each key does.

Tables of (caller, where they are, what they press) -> what happens, as in test_engine.py; the ticket a
caller ends with is folded from the decisions' changes as the writer folds the journal."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ivr.clock import epoch_ms
from ivr.flow import (
    ASKED_CALLBACK,
    Caller,
    CallState,
    Decision,
    Flow,
    Gather,
    GoTo,
    HoldInfo,
    QueueRequest,
    Say,
)
from ivr.incidents import Incident
from ivr.rules.bundle import Bundle
from ivr.rules.check import load_bundle
from ivr.tickets.changes import Outcome, QueueEvent, TicketChange
from ivr.tickets.projection import TicketFields, project
from ivr.tickets.records import JournalRecord
from tests.flow.test_engine import MONDAY_AFTERNOON, ROOT, SATURDAY

MONDAY_MORNING_IN_CHINA = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # Shanghai 11:00
ETA = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)  # `--eta "2026-11-23 18:00 UTC"`

OUTAGE = Incident(7, frozenset({"withdrawal", "deposit"}), eta=ETA)
US_CALLER = Caller("+14155550100", "4821093", country="US")
GERMAN_CALLER = Caller("+4930123456", "4821093", country="DE")
CHINESE_CALLER = Caller("+8613800138000", "4821093", country="CN")
WITHDRAWAL, DEPOSIT, LOGIN = ("funds", "2"), ("funds", "1"), ("account", "1")


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle(ROOT / "routing_rules.yaml", ROOT / "voice_prompts")


def choose(
    bundle: Bundle,
    option: tuple[str, str],
    *,
    language: str = "en-US",
    caller: Caller = US_CALLER,
    incident: Incident | None = OUTAGE,
    now: datetime = MONDAY_AFTERNOON,
) -> Decision:
    """The caller presses the option's key in its menu."""
    menu_id, key = option
    flow = Flow(bundle, now, incident)
    return flow.on_input(CallState("menu", language, menu_id), key, caller)


def heard(decision: Decision) -> list[str]:
    ids: list[str] = []
    for action in decision.actions:
        speech = action.speech if isinstance(action, Gather) else (action,)
        ids += [s.prompt for s in speech if isinstance(s, Say)]
    return ids


def texts(decision: Decision) -> str:
    parts: list[str] = []
    for action in decision.actions:
        speech = action.speech if isinstance(action, Gather) else (action,)
        parts += [s.text for s in speech if isinstance(s, Say)]
    return " ".join(parts)


def notice_state(decision: Decision) -> CallState:
    """Where a caller who is to hear the notice is sent."""
    assert decision.join is None, "a caller who hears the notice does not queue yet"
    (goto,) = decision.actions
    assert isinstance(goto, GoTo) and goto.state.step == "incident"
    return goto.state


def asked(decision: Decision) -> CallState:
    """The state the caller's answer to the notice goes to."""
    gather = decision.actions[-1]
    assert isinstance(gather, Gather)
    return gather.then


def ticket(*changes: TicketChange) -> TicketFields:
    """The ticket the writer folds from these changes, one webhook a second."""
    records = [
        JournalRecord(f"r{i}", "CA1", MONDAY_AFTERNOON + timedelta(seconds=i), change=change)
        for i, change in enumerate(changes)
    ]
    fields, _ = project("CA1", records)
    return fields


# --- who hears it -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "language", "caller", "incident", "notice"),
    [
        (WITHDRAWAL, "en-US", US_CALLER, OUTAGE, True),
        (DEPOSIT, "de-DE", GERMAN_CALLER, OUTAGE, True),
        (LOGIN, "en-US", US_CALLER, OUTAGE, False),  # an issue the incident does not concern
        (WITHDRAWAL, "en-US", US_CALLER, None, False),  # no incident on
        # Only the languages it is for.
        (WITHDRAWAL, "de-DE", GERMAN_CALLER, replace(OUTAGE, languages=frozenset({"de-DE"})), True),
        (WITHDRAWAL, "en-US", US_CALLER, replace(OUTAGE, languages=frozenset({"de-DE"})), False),
        # Heard once in this call (an earlier queue, then back through the menus): not again.
        (WITHDRAWAL, "en-US", replace(US_CALLER, notice=7), OUTAGE, False),
    ],
)
def test_the_notice_is_for_callers_whose_issue_it_concerns(
    bundle: Bundle,
    option: tuple[str, str],
    language: str,
    caller: Caller,
    incident: Incident | None,
    notice: bool,
) -> None:
    decision = choose(bundle, option, language=language, caller=caller, incident=incident)
    if notice:
        assert notice_state(decision) == CallState("incident", language, "funds", "funds", 30)
        assert decision.ticket.outcome is None and not decision.ticket.queued
    else:
        assert decision.join is not None and heard(decision) == ["please_hold"]


def test_closed_hours_win_over_the_notice(bundle: Bundle) -> None:
    decision = choose(bundle, WITHDRAWAL, now=SATURDAY)
    assert "team_closed" in heard(decision)
    assert decision.ticket.outcome is Outcome.CLOSED_HOURS
    assert not any(isinstance(a, GoTo) for a in decision.actions)


def test_words_that_lead_to_a_concerned_issue_lead_to_the_notice(bundle: Bundle) -> None:
    flow = Flow(bundle, MONDAY_AFTERNOON, OUTAGE)
    # "Did you mean withdrawals?" 1: the caller's words are followed as if keyed (main 2, funds 2).
    confirm = CallState("confirm", "en-US", "main", choice="22")
    decision = flow.on_input(confirm, "1", US_CALLER)
    assert notice_state(decision).queue == "funds"
    assert decision.ticket.issue == "withdrawal"


# --- what they hear ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "caller", "now", "said"),
    [
        ("en-US", US_CALLER, MONDAY_AFTERNOON, "resolved today at 1:00 PM EST."),
        ("de-DE", GERMAN_CALLER, MONDAY_AFTERNOON, "Störung heute um 19:00 MEZ behoben"),
        ("fr-FR", replace(US_CALLER, country="FR"), MONDAY_AFTERNOON, "aujourd’hui à 19:00"),
        ("zh-CN", CHINESE_CALLER, MONDAY_MORNING_IN_CHINA, "预计将于北京时间 明天 02:00恢复"),
        # A country pytz does not know: the zone of the team the caller's queue uses (americas).
        ("en-US", replace(US_CALLER, country="XX"), MONDAY_AFTERNOON, "today at 1:00 PM EST"),
        ("de-DE", replace(GERMAN_CALLER, country=None), MONDAY_AFTERNOON, "19:00 MEZ"),
    ],
)
def test_the_notice_says_the_eta_in_the_callers_language_and_time_zone(
    bundle: Bundle, language: str, caller: Caller, now: datetime, said: str
) -> None:
    state = notice_state(choose(bundle, WITHDRAWAL, language=language, caller=caller, now=now))
    decision = Flow(bundle, now, OUTAGE).incident_notice(state, None, caller, True)
    assert heard(decision) == [
        "incident_notice",
        "incident_option_wait",
        "incident_option_callback",
    ]
    assert said in texts(decision)
    assert asked(decision) == replace(state, tries=1)
    # Counted on the ticket, and from now on carried in every URL of the call.
    assert decision.ticket == TicketChange(incident=7)
    assert decision.notice == 7


def test_the_notice_tells_callers_to_watch_the_official_announcements(bundle: Bundle) -> None:
    state = notice_state(choose(bundle, WITHDRAWAL))
    for language, words in [
        ("en-US", "official announcements on"),
        ("zh-CN", "官方公告"),
        ("fr-FR", "annonces officielles sur"),
        ("de-DE", "offiziellen Mitteilungen auf"),
    ]:
        flow = Flow(bundle, MONDAY_AFTERNOON, OUTAGE)
        said = texts(flow.incident_notice(replace(state, language=language), None, US_CALLER, True))
        assert words in said and bundle.rules.website in said


@pytest.mark.parametrize(
    ("eta", "prompt"),
    [
        (None, "incident_notice_no_eta"),
        (MONDAY_AFTERNOON - timedelta(minutes=5), "incident_notice_no_eta"),
    ],
)
def test_no_eta_or_one_gone_by_gives_the_notice_without_a_time(
    bundle: Bundle, eta: datetime | None, prompt: str
) -> None:
    state = notice_state(choose(bundle, WITHDRAWAL))
    flow = Flow(bundle, MONDAY_AFTERNOON, replace(OUTAGE, eta=eta))
    assert heard(flow.incident_notice(state, None, US_CALLER, True))[0] == prompt


def test_no_callback_is_offered_where_the_line_cannot_place_one(bundle: Bundle) -> None:
    state = notice_state(choose(bundle, WITHDRAWAL))
    decision = Flow(bundle, MONDAY_AFTERNOON, OUTAGE).incident_notice(state, None, US_CALLER, False)
    assert heard(decision) == ["incident_notice", "incident_option_wait"]


# --- what the keys do -------------------------------------------------------------------------


def answer(bundle: Bundle, digits: str | None, tries: int = 1) -> Decision:
    """The caller's answer to the notice they heard (`tries` 1: the first answer)."""
    state = replace(notice_state(choose(bundle, WITHDRAWAL)), tries=tries)
    return Flow(bundle, MONDAY_AFTERNOON, OUTAGE).incident_notice(state, digits, US_CALLER, True)


@pytest.mark.parametrize("digits", ["1", None, "0"])
def test_keep_waiting_or_silence_queues_with_the_ticket_of_a_call_without_the_notice(
    bundle: Bundle, digits: str | None
) -> None:
    chosen = choose(bundle, WITHDRAWAL)
    notice = Flow(bundle, MONDAY_AFTERNOON, OUTAGE).incident_notice(
        notice_state(chosen), None, US_CALLER, True
    )
    waiting = answer(bundle, digits)
    without = choose(bundle, WITHDRAWAL, incident=None)

    assert (
        waiting.join
        == without.join
        == QueueRequest("funds", "en-US", 30, epoch_ms(MONDAY_AFTERNOON))
    )
    assert heard(waiting) == heard(without) == ["please_hold"]
    assert waiting.actions[-1] == without.actions[-1]  # the same hold webhook
    with_notice = ticket(chosen.ticket, notice.ticket, waiting.ticket)
    assert with_notice.incident == 7
    assert replace(with_notice, incident=None, queued_at=None) == replace(
        ticket(without.ticket), queued_at=None
    )
    assert [e.event for e in waiting.ticket.events] == [QueueEvent.ENTERQUEUE]


def test_the_callback_key_queues_and_has_the_first_hold_round_take_the_callback(
    bundle: Bundle,
) -> None:
    decision = answer(bundle, "2")
    assert decision.join == QueueRequest("funds", "en-US", 30, epoch_ms(MONDAY_AFTERNOON))
    assert decision.ticket.queued and decision.ticket.outcome is Outcome.QUEUED
    (goto,) = decision.actions
    assert isinstance(goto, GoTo)
    hold = goto.state
    assert (hold.step, hold.queue, hold.stage) == ("hold", "funds", ASKED_CALLBACK)
    assert hold.since == epoch_ms(MONDAY_AFTERNOON)

    # That round (`webhooks.hold`) is the hold callback key: the place is kept, a call back promised.
    flow = Flow(bundle, MONDAY_AFTERNOON, OUTAGE)
    key = bundle.rules.hold_keys.callback
    info = HoldInfo(position=4, can_call_back=True)
    kept = flow.on_hold_key(replace(hold, stage=None), key, info, US_CALLER)
    assert kept.callback_number == US_CALLER.number
    assert kept.ticket.outcome is Outcome.CALLBACK
    assert "callback_kept" in heard(kept)


def test_a_number_the_line_may_not_call_gets_what_the_hold_callback_gives_it(
    bundle: Bundle,
) -> None:
    decision = answer(bundle, "2")
    (goto,) = decision.actions
    assert isinstance(goto, GoTo)
    flow = Flow(bundle, MONDAY_AFTERNOON, OUTAGE)
    info = HoldInfo(position=4, can_call_back=True)
    hidden = Caller(None, "4821093", country="US")
    kept = flow.on_hold_key(replace(goto.state, stage=None), "2", info, hidden)
    assert kept.callback_number is None
    assert heard(kept)[0] == "callback_unavailable"
    assert asked(kept).step == "hold"  # still holding, place kept


def test_a_wrong_key_hears_the_keys_again_and_keeps_waiting_after_the_tries(
    bundle: Bundle,
) -> None:
    first = answer(bundle, "9")
    assert heard(first) == ["not_an_option", "incident_option_wait", "incident_option_callback"]
    assert asked(first).tries == 2 and first.join is None
    assert heard(answer(bundle, "*"))[0] == "incident_notice"  # * repeats the notice
    last = answer(bundle, "9", tries=bundle.rules.defaults.max_tries)
    assert heard(last) == ["not_an_option", "please_hold"]
    assert last.join is not None  # never dropped


def test_an_incident_ended_before_the_notice_plays_queues_the_caller(bundle: Bundle) -> None:
    state = notice_state(choose(bundle, WITHDRAWAL))
    decision = Flow(bundle, MONDAY_AFTERNOON, None).incident_notice(state, None, US_CALLER, True)
    assert decision.join is not None and decision.ticket.incident is None


def test_a_team_closed_since_the_notice_gives_its_after_hours_offer(bundle: Bundle) -> None:
    state = replace(notice_state(choose(bundle, WITHDRAWAL)), tries=1)
    decision = Flow(bundle, SATURDAY, OUTAGE).incident_notice(state, "2", US_CALLER, True)
    assert decision.join is None and "team_closed" in heard(decision)


# --- the state in the URL ---------------------------------------------------------------------


def test_the_notice_state_survives_its_url_and_fits_the_rules(bundle: Bundle) -> None:
    flow = Flow(bundle, MONDAY_AFTERNOON, OUTAGE)
    state = notice_state(choose(bundle, WITHDRAWAL))
    for step in (state, replace(state, tries=2)):
        back = CallState.from_params(step.to_params())
        assert back == step
        assert flow.admit(back) == step
    assert flow.admit(replace(state, queue=None)) is None  # a notice is always before a queue
    assert flow.admit(replace(state, queue="gone")) is None
    hold = CallState("hold", "en-US", "funds", "funds", 30, since=1, stage=ASKED_CALLBACK)
    assert CallState.from_params(hold.to_params()) == hold
