"""The pure call flow, driven by tables of (where the caller is, what they press) -> what happens."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ivr.clock import epoch_ms
from ivr.flow import (
    Caller,
    CallState,
    Decision,
    Dial,
    Flow,
    Gather,
    GoTo,
    Hangup,
    Heard,
    HoldInfo,
    Pause,
    QueueRequest,
    Record,
    Say,
    TextMessage,
)
from ivr.rules.bundle import Bundle
from ivr.rules.check import load_bundle
from ivr.tickets.changes import Outcome, QueueEvent
from ivr.waits import WaitEstimate
from tests.support import prompt_texts, write_rules

ROOT = Path(__file__).resolve().parents[2]
MONDAY_AFTERNOON = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # New York 10:00, Berlin 16:00
SATURDAY = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
MAINTENANCE = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)

US_CALLER = Caller("+14155550100", "4821093")
GERMAN_CALLER = Caller("+4930123456", "4821093")
UNKNOWN_CALLER = Caller("+99955501", "4821093")
ANONYMOUS = Caller(None, "4821093")


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle(ROOT / "routing_rules.yaml", ROOT / "voice_prompts")


OTHER_LANGUAGES_OFF = ("  other_languages: true", "  other_languages: false")
"""The edit that switches off the after-hours offer of another language's open team."""


@pytest.fixture(scope="module")
def offering_bundle(bundle: Bundle) -> Bundle:
    """The shipped rules, which offer another language's open team after hours."""
    assert bundle.rules.after_hours.other_languages
    return bundle


@pytest.fixture(scope="module")
def plain_bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    """The shipped rules with `after_hours.other_languages` switched off."""
    path, _ = write_rules(tmp_path_factory.mktemp("rules"), OTHER_LANGUAGES_OFF)
    return load_bundle(path, ROOT / "voice_prompts")


def queued(
    queue: str, language: str, priority: int, at: datetime = MONDAY_AFTERNOON
) -> QueueRequest:
    """The queue request a caller makes at `at` (the arrival time travels with it)."""
    return QueueRequest(queue, language, priority, epoch_ms(at))


def flow_at(bundle: Bundle, now: datetime = MONDAY_AFTERNOON) -> Flow:
    return Flow(bundle, now)


def heard(decision: Decision) -> list[str]:
    """Every prompt id the caller hears, in order, including inside menus."""
    ids: list[str] = []
    for action in decision.actions:
        if isinstance(action, Say):
            ids.append(action.prompt)
        elif isinstance(action, Gather):
            ids += [s.prompt for s in action.speech if isinstance(s, Say)]
    return ids


def texts(decision: Decision) -> str:
    parts = []
    for action in decision.actions:
        speech = action.speech if isinstance(action, Gather) else (action,)
        parts += [s.text for s in speech if isinstance(s, Say)]
    return " ".join(parts)


def listening_at(decision: Decision) -> CallState | None:
    """The state the next key will be sent to (the last menu of the decision)."""
    gathers = [a for a in decision.actions if isinstance(a, Gather)]
    return gathers[-1].then if gathers else None


def menu(language: str, menu_id: str, tries: int = 0) -> CallState:
    return CallState("menu", language, menu_id, tries=tries)


# --- answering and the language menu -------------------------------------------------------------


def test_answer_greets_warns_and_offers_each_language_in_its_own_voice(bundle: Bundle) -> None:
    decision = flow_at(bundle).answer(US_CALLER)
    gather = decision.actions[0]
    assert isinstance(gather, Gather)
    assert heard(decision)[:2] == ["greeting", "anti_fraud"]
    options = [s for s in gather.speech if isinstance(s, Say) and s.prompt == "language_option"]
    assert [s.language for s in options] == ["zh-CN", "en-US", "fr-FR", "de-DE"]
    assert "中文" in options[0].text and "1" in options[0].text
    assert "Deutsch" in options[3].text and "4" in options[3].text
    assert "never ask for your password" in texts(decision)
    assert gather.then == CallState("language")


def test_greeting_is_in_the_language_of_the_callers_country(bundle: Bundle) -> None:
    decision = flow_at(bundle).answer(GERMAN_CALLER)
    first = decision.actions[0]
    assert isinstance(first, Gather)
    greeting = first.speech[0]
    assert isinstance(greeting, Say) and greeting.language == "de-DE"


def test_service_announcement_plays_only_inside_its_window(bundle: Bundle) -> None:
    assert "announcement_maintenance" in heard(flow_at(bundle, MAINTENANCE).answer(US_CALLER))
    assert "announcement_maintenance" not in heard(flow_at(bundle).answer(US_CALLER))


@pytest.mark.parametrize(
    ("caller", "state", "digits", "language", "then", "hears"),
    [
        (US_CALLER, CallState("language"), "2", "en-US", menu("en-US", "main"), ["main_intro"]),
        (US_CALLER, CallState("language"), "1", "zh-CN", menu("zh-CN", "main"), ["greeting"]),
        (GERMAN_CALLER, CallState("language"), None, "de-DE", menu("de-DE", "main"), []),
        (
            UNKNOWN_CALLER,
            CallState("language"),
            None,
            None,
            CallState("language", tries=1),
            ["no_input"],
        ),
        (
            UNKNOWN_CALLER,
            CallState("language"),
            "9",
            None,
            CallState("language", tries=1),
            ["not_an_option"],
        ),
        (
            UNKNOWN_CALLER,
            CallState("language"),
            "abc",
            None,
            CallState("language", tries=1),
            ["not_an_option"],
        ),
        (
            UNKNOWN_CALLER,
            CallState("language", tries=2),
            None,
            "en-US",
            menu("en-US", "main"),
            ["no_input", "main_intro"],
        ),
        (US_CALLER, CallState("language", tries=1), "*", None, CallState("language", tries=1), []),
        (US_CALLER, CallState("language"), "#", None, CallState("language"), []),
        (US_CALLER, None, "3", "fr-FR", menu("fr-FR", "main"), ["greeting", "anti_fraud"]),
    ],
)
def test_language_menu(
    bundle: Bundle,
    caller: Caller,
    state: CallState | None,
    digits: str | None,
    language: str | None,
    then: CallState,
    hears: list[str],
) -> None:
    decision = flow_at(bundle).on_input(state, digits, caller)
    assert listening_at(decision) == then
    assert decision.ticket.language == language
    spoken = heard(decision)
    for prompt in hears:
        assert prompt in spoken


def test_a_caller_who_picks_another_language_hears_the_safety_notice_in_it(bundle: Bundle) -> None:
    decision = flow_at(bundle).on_input(CallState("language"), "3", US_CALLER)
    gather = decision.actions[0]
    assert isinstance(gather, Gather)
    notice = [s for s in gather.speech if isinstance(s, Say) and s.prompt == "anti_fraud"]
    assert notice and notice[0].language == "fr-FR"


# --- issue menus -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "digits", "then", "step"),
    [
        (menu("en-US", "main"), "1", menu("en-US", "account"), "main:1"),
        (menu("en-US", "main"), "2", menu("en-US", "funds"), "main:2"),
        (menu("en-US", "account", tries=1), "*", menu("en-US", "account", tries=1), None),
        (menu("en-US", "account"), "#", menu("en-US", "main"), None),
        (menu("en-US", "main"), "#", CallState("language"), None),
        (menu("en-US", "main"), "7", menu("en-US", "main", tries=1), None),
        (menu("en-US", "main"), None, menu("en-US", "main", tries=1), None),
        (menu("de-DE", "no_such_menu"), "1", menu("de-DE", "account"), "main:1"),
        (CallState("menu", "xx-XX", "main"), "1", CallState("language"), None),
    ],
)
def test_menu_keys(
    bundle: Bundle, state: CallState, digits: str | None, then: CallState, step: str | None
) -> None:
    decision = flow_at(bundle).on_input(state, digits, US_CALLER)
    assert listening_at(decision) == then
    assert decision.ticket.menu_step == step


def test_menu_options_are_read_with_their_keys_and_the_help_keys(bundle: Bundle) -> None:
    decision = flow_at(bundle).on_input(CallState("language"), "2", US_CALLER)
    text = texts(decision)
    assert "For account and login, press 1." in text
    assert "For a security emergency" in text
    assert "press star" in text and "press pound" in text and "press 0" in text


def test_wrong_keys_lead_to_the_fallback_queue_instead_of_a_hang_up(bundle: Bundle) -> None:
    flow = flow_at(bundle)
    decision = flow.on_input(menu("en-US", "main", tries=2), "8", US_CALLER)
    assert heard(decision)[:3] == ["not_an_option", "fallback_notice", "please_hold"]
    assert decision.join == queued("general", "en-US", 10)
    assert not any(isinstance(a, Hangup) for a in decision.actions)


def test_security_menu_gives_up_sooner_and_falls_back_to_the_security_desk(bundle: Bundle) -> None:
    decision = flow_at(bundle).on_input(menu("en-US", "security", tries=1), None, US_CALLER)
    assert decision.join == queued("security", "en-US", 90)


def test_zero_reaches_the_operator_queue_from_any_menu(bundle: Bundle) -> None:
    decision = flow_at(bundle).on_input(menu("fr-FR", "funds"), "0", US_CALLER)
    assert decision.join == queued("general", "fr-FR", 10)
    assert decision.ticket.issue == "operator"


@pytest.mark.parametrize(
    ("caller", "language"),
    [(GERMAN_CALLER, "de-DE"), (US_CALLER, "en-US"), (UNKNOWN_CALLER, "en-US")],
)
def test_zero_at_the_language_menu_puts_the_greeting_language_on_the_ticket(
    bundle: Bundle, caller: Caller, language: str
) -> None:
    decision = flow_at(bundle).on_input(CallState("language"), "0", caller)
    assert decision.join == queued("general", language, 10)
    assert decision.ticket.language == language
    assert (decision.ticket.issue, decision.ticket.menu_step) == ("operator", "language:0")


def test_self_service_answer_then_the_same_menu_again(bundle: Bundle) -> None:
    decision = flow_at(bundle).on_input(menu("en-US", "self_service"), "2", US_CALLER)
    assert heard(decision)[0] == "answer_email"
    assert "support@bitp.example" in texts(decision)
    assert listening_at(decision) == menu("en-US", "self_service")
    assert decision.ticket.outcome is Outcome.SELF_SERVED
    assert decision.ticket.issue == "faq_email"


# --- queues and business hours ---------------------------------------------------------------


def test_open_team_puts_the_caller_on_hold_with_the_options_priority(bundle: Bundle) -> None:
    decision = flow_at(bundle).on_input(menu("en-US", "security"), "2", US_CALLER)
    assert decision.join == queued("security", "en-US", 100)
    assert decision.ticket.queue == "security"
    assert decision.ticket.issue == "suspicious_withdrawal"
    assert decision.ticket.queued and decision.ticket.outcome is Outcome.QUEUED
    assert isinstance(decision.actions[-1], GoTo)
    assert decision.actions[-1].state.step == "hold"
    # The hold URLs carry when the caller joined: Redis may lose it, the caller keeps it.
    assert decision.actions[-1].state.since == epoch_ms(MONDAY_AFTERNOON) == 1_795_446_000_000


def test_language_decides_the_team_whose_hours_apply(bundle: Bundle) -> None:
    # Monday 15:00 UTC: 23:00 in Shanghai (closed), 16:00 in Berlin (open).
    chinese = flow_at(bundle).on_input(menu("zh-CN", "funds"), "1", US_CALLER)
    german = flow_at(bundle).on_input(menu("de-DE", "funds"), "1", US_CALLER)
    assert chinese.join is None and chinese.ticket.team == "asia"
    assert german.join == queued("funds", "de-DE", 30) and german.ticket.team == "europe"


def test_closed_team_says_when_it_opens_and_offers_voicemail_and_callback(bundle: Bundle) -> None:
    decision = flow_at(bundle, SATURDAY).on_input(menu("en-US", "funds"), "1", US_CALLER)
    assert decision.join is None
    assert decision.ticket.outcome is Outcome.CLOSED_HOURS
    text = texts(decision)
    assert "We open again on Monday, November 30" in text and "New York time" in text
    assert heard(decision)[1:] == ["offer_voicemail", "offer_callback", "offer_back"]
    assert listening_at(decision) == CallState("closed", "en-US", "funds", "funds", 30)


@pytest.mark.parametrize(
    ("language", "now", "expected"),
    [
        # Monday 06:00 in New York: the team opens at 08:00 the same day.
        ("en-US", datetime(2026, 11, 23, 11, 0, tzinfo=UTC), "We open again today at 8:00"),
        # Sunday 20:30 in New York: tomorrow, not "Monday, November 23".
        ("en-US", datetime(2026, 11, 23, 1, 30, tzinfo=UTC), "We open again tomorrow at 8:00"),
        # Monday 07:00 in Berlin.
        ("de-DE", datetime(2026, 11, 23, 6, 0, tzinfo=UTC), "Wir sind heute um 08:00, Ortszeit"),
        ("fr-FR", datetime(2026, 11, 23, 6, 0, tzinfo=UTC), "Nous rouvrons aujourd’hui à 08:00"),
        # Monday 07:00 in Shanghai is still Sunday in UTC: "today" is the team's day.
        ("zh-CN", datetime(2026, 11, 22, 23, 0, tzinfo=UTC), "我们将于上海时间今天 08:00恢复服务"),
        ("zh-CN", datetime(2026, 11, 22, 12, 0, tzinfo=UTC), "我们将于上海时间明天 08:00恢复服务"),
    ],
)
def test_a_team_opening_later_today_or_tomorrow_is_announced_as_such(
    bundle: Bundle, language: str, now: datetime, expected: str
) -> None:
    decision = flow_at(bundle, now).on_input(menu(language, "funds"), "1", US_CALLER)
    assert decision.ticket.outcome is Outcome.CLOSED_HOURS
    assert expected in texts(decision)
    assert "2026" not in texts(decision) and "November" not in texts(decision)


def test_security_desk_is_open_around_the_clock(bundle: Bundle) -> None:
    decision = flow_at(bundle, SATURDAY).on_input(menu("zh-CN", "security"), "1", US_CALLER)
    assert decision.join == queued("security", "zh-CN", 100, SATURDAY)


CLOSED = CallState("closed", "en-US", "funds", "funds", 30)


def test_after_hours_voicemail_records_then_reads_back_the_ticket(bundle: Bundle) -> None:
    flow = flow_at(bundle, SATURDAY)
    decision = flow.on_input(CLOSED, "1", US_CALLER)
    record = next(a for a in decision.actions if isinstance(a, Record))
    assert record.then.step == "voicemail" and record.max_seconds == 120
    saved = flow.recorded(record.then, "https://api.twilio.com/rec/RE1", 14, US_CALLER)
    assert decision.ticket.outcome is None
    assert saved.ticket.outcome is Outcome.VOICEMAIL
    assert saved.ticket.recording_url == "https://api.twilio.com/rec/RE1"
    assert "4 8 2 1 0 9 3" in texts(saved)
    assert isinstance(saved.actions[-1], Hangup)


def test_an_empty_recording_goes_back_instead_of_hanging_up(bundle: Bundle) -> None:
    state = CallState("voicemail", "en-US", "funds", "funds", 30)
    decision = flow_at(bundle, SATURDAY).recorded(state, None, 0, US_CALLER)
    assert heard(decision) == ["voicemail_empty"]
    assert decision.actions[-1] == GoTo(CLOSED)


def test_after_hours_callback_is_logged_with_the_callers_number(bundle: Bundle) -> None:
    decision = flow_at(bundle, SATURDAY).on_input(CLOSED, "2", US_CALLER)
    assert decision.ticket.outcome is Outcome.CALLBACK
    assert decision.ticket.callback_number == "+14155550100"
    assert "4 8 2 1 0 9 3" in texts(decision)
    assert isinstance(decision.actions[-1], Hangup)


def test_callback_without_a_number_offers_voicemail_instead(bundle: Bundle) -> None:
    decision = flow_at(bundle, SATURDAY).on_input(CLOSED, "2", ANONYMOUS)
    assert any(isinstance(a, Record) for a in decision.actions)
    assert decision.ticket.outcome is None


SATELLITE_CALLER = Caller("+881631000000", "4821093")
"""A caller ID in a satellite range, billed at premium rates: calling it back is toll fraud."""


def test_a_number_outside_the_lines_countries_is_never_called_back(bundle: Bundle) -> None:
    after_hours = flow_at(bundle, SATURDAY).on_input(CLOSED, "2", SATELLITE_CALLER)
    assert heard(after_hours)[0] == "callback_not_this_number"
    assert any(isinstance(a, Record) for a in after_hours.actions)  # a voicemail instead
    assert after_hours.ticket.outcome is None and after_hours.ticket.callback_number is None
    holding = flow_at(bundle).on_hold_key(HOLD, "2", STAFFED, SATELLITE_CALLER)
    assert heard(holding)[0] == "callback_unavailable"
    assert holding.callback_number is None and listening_at(holding) is not None


def test_the_rules_name_the_numbers_the_line_calls_back(tmp_path: Path) -> None:
    path, _ = write_rules(
        tmp_path,
        ("satisfaction_survey:", 'callback_prefixes: ["+1415", "+49"]\nsatisfaction_survey:'),
    )
    narrow = load_bundle(path, ROOT / "voice_prompts")
    assert narrow.rules.may_call_back("+14155550100") and narrow.rules.may_call_back("+4930123")
    assert not narrow.rules.may_call_back("+12125550100")  # +1, but not +1415
    decision = flow_at(narrow, SATURDAY).on_input(CLOSED, "2", Caller("+12125550100", "4821093"))
    assert decision.ticket.callback_number is None


@pytest.mark.parametrize(
    ("digits", "then"),
    [
        ("#", menu("en-US", "funds")),
        ("*", CLOSED),
        ("5", CallState("closed", "en-US", "funds", "funds", 30, tries=1)),
    ],
)
def test_after_hours_keys(bundle: Bundle, digits: str, then: CallState) -> None:
    decision = flow_at(bundle, SATURDAY).on_input(CLOSED, digits, US_CALLER)
    assert listening_at(decision) == then


def test_silence_after_hours_ends_in_voicemail_not_a_hang_up(bundle: Bundle) -> None:
    state = CallState("closed", "en-US", "funds", "funds", 30, tries=2)
    decision = flow_at(bundle, SATURDAY).on_input(state, None, US_CALLER)
    assert any(isinstance(a, Record) for a in decision.actions)


# --- holding -----------------------------------------------------------------------------------

HOLD = CallState("hold", "en-US", "funds", "funds", 30)
STAFFED = HoldInfo(
    position=3,
    waited_seconds=60,
    estimate=WaitEstimate(400, 180, 600),
    agents_logged_in=2,
    can_call_back=True,
)


def hold_gather(decision: Decision) -> Gather:
    [gather] = [a for a in decision.actions if isinstance(a, Gather)]
    return gather


def test_hold_round_tells_position_and_wait_offers_keys_then_waits(bundle: Bundle) -> None:
    decision = flow_at(bundle).hold(HOLD, STAFFED)
    gather = hold_gather(decision)
    assert heard(decision) == [
        "queue_position",
        "queue_wait_between",
        "hold_option_position",
        "hold_option_callback",
        "hold_option_voicemail",
    ]
    text = texts(decision)
    assert "You are number 3 in line." in text
    # A median of 400 s, said as the range of its 10th and 90th percentiles (3 and 10 minutes).
    assert "Your estimated wait is between 3 minutes and 10 minutes." in text
    assert "without losing your place, press 2" in text
    # The shipped queues play no clip of unknown length: the caller hears their place every 30 s.
    assert gather.speech[-1] == Pause(30)
    assert gather.then == replace(HOLD, tries=1, heard=Heard(3, 3, 3, 10)) and gather.timeout == 1


@pytest.mark.parametrize(
    ("language", "minutes"),
    [
        ("zh-CN", "3分钟到10分钟"),
        ("fr-FR", "entre 3 minutes et 10 minutes"),
        ("de-DE", "zwischen 3 Minuten und 10 Minuten"),
    ],
)
def test_the_wait_is_spoken_naturally_in_each_language(
    bundle: Bundle, language: str, minutes: str
) -> None:
    decision = flow_at(bundle).hold(replace(HOLD, language=language), STAFFED)
    assert minutes in texts(decision)


def test_later_rounds_rotate_comfort_messages_and_first_in_line_hears_next(bundle: Bundle) -> None:
    flow = flow_at(bundle)
    general = CallState("hold", "en-US", "main", "general", 10)
    info = replace(STAFFED, position=1, estimate=WaitEstimate(0, 0, 0))
    comforts = [heard(flow.hold(replace(general, tries=n), info))[0] for n in (1, 2, 3, 4)]
    assert comforts == [
        "hold_comfort_prepare",
        "hold_comfort_safety",
        "hold_comfort_email",
        "hold_comfort_prepare",
    ]
    assert "queue_next" in heard(flow.hold(replace(general, tries=1), info))
    assert "queue_wait" not in heard(flow.hold(replace(general, tries=1), info))


def test_options_are_repeated_every_third_round_not_every_round(bundle: Bundle) -> None:
    flow = flow_at(bundle)
    assert "hold_option_position" not in heard(flow.hold(replace(HOLD, tries=1), STAFFED))
    assert "hold_option_position" in heard(flow.hold(replace(HOLD, tries=3), STAFFED))


def test_positions_above_the_limit_are_not_counted_out(bundle: Bundle) -> None:
    general = CallState("hold", "en-US", "main", "general", 10)
    decision = flow_at(bundle).hold(general, replace(STAFFED, position=21))
    assert "many_ahead" in heard(decision) and "queue_position" not in heard(decision)


def test_queue_without_music_pauses_for_its_update_interval(bundle: Bundle) -> None:
    security = CallState("hold", "en-US", "security", "security", 90)
    gather = hold_gather(flow_at(bundle).hold(security, STAFFED))
    assert gather.speech[-1] == Pause(20)


def test_unknown_position_is_not_announced(bundle: Bundle) -> None:
    decision = flow_at(bundle).hold(replace(HOLD, tries=1), HoldInfo(position=None))
    assert heard(decision) == ["hold_thanks"]


def test_no_agent_logged_in_is_said_and_options_offered_every_round(bundle: Bundle) -> None:
    info = HoldInfo(position=1, agents_logged_in=0, can_call_back=True)
    decision = flow_at(bundle).hold(replace(HOLD, tries=1), info)
    assert heard(decision)[1:3] == ["no_agents", "queue_next"]
    assert "hold_option_callback" in heard(decision)


def test_without_rest_credentials_no_callback_is_offered(bundle: Bundle) -> None:
    decision = flow_at(bundle).hold(HOLD, replace(STAFFED, can_call_back=False))
    assert "hold_option_callback" not in heard(decision)


def test_a_full_queue_turns_the_newcomer_to_voicemail_or_callback(bundle: Bundle) -> None:
    general = CallState("hold", "en-US", "main", "general", 10)
    decision = flow_at(bundle).hold(general, replace(STAFFED, position=51))
    assert decision.leave
    assert heard(decision) == ["queue_full", "offer_voicemail", "offer_callback", "offer_back"]
    assert listening_at(decision) == replace(general, step="closed")
    assert [e.event for e in decision.ticket.events] == [QueueEvent.EXITFULL]


def test_a_long_wait_is_apologised_for_with_the_way_out(bundle: Bundle) -> None:
    general = CallState("hold", "en-US", "main", "general", 10, tries=7)
    decision = flow_at(bundle).hold(general, replace(STAFFED, waited_seconds=1300))
    assert "wait_too_long" in heard(decision) and "hold_option_callback" in heard(decision)
    assert not decision.leave


@pytest.mark.parametrize("key", ["1", "*", "0"])
def test_position_key_repeats_the_update(bundle: Bundle, key: str) -> None:
    decision = flow_at(bundle).on_hold_key(replace(HOLD, tries=5), key, STAFFED, US_CALLER)
    assert heard(decision)[0] == "queue_position"


def test_callback_key_keeps_the_place_and_hangs_up(bundle: Bundle) -> None:
    decision = flow_at(bundle).on_hold_key(HOLD, "2", STAFFED, US_CALLER)
    assert decision.callback_number == "+14155550100" and not decision.leave
    assert decision.ticket.outcome is Outcome.CALLBACK
    assert [e.event for e in decision.ticket.events] == [QueueEvent.CALLBACK]
    assert "You keep your place in line" in texts(decision)
    assert "4 8 2 1 0 9 3" in texts(decision)
    assert isinstance(decision.actions[-1], Hangup)


@pytest.mark.parametrize(
    ("info", "caller"),
    [(replace(STAFFED, can_call_back=False), US_CALLER), (STAFFED, ANONYMOUS)],
)
def test_callback_key_when_no_callback_is_possible_keeps_holding(
    bundle: Bundle, info: HoldInfo, caller: Caller
) -> None:
    decision = flow_at(bundle).on_hold_key(HOLD, "2", info, caller)
    assert heard(decision)[0] == "callback_unavailable"
    assert decision.callback_number is None and listening_at(decision) is not None


def test_voicemail_key_leaves_the_queue_and_records(bundle: Bundle) -> None:
    decision = flow_at(bundle).on_hold_key(HOLD, "3", STAFFED, US_CALLER)
    assert decision.leave
    assert any(isinstance(a, Record) for a in decision.actions)
    [event] = decision.ticket.events
    assert event.event is QueueEvent.EXITWITHKEY and event.data["to"] == "voicemail"


@pytest.mark.parametrize(
    ("info", "event"),
    [
        (replace(STAFFED, waited_seconds=1250), QueueEvent.EXITWITHTIMEOUT),
        (replace(STAFFED, agents_logged_in=0, estimate=None), QueueEvent.EXITEMPTY),
    ],
)
def test_leaving_after_the_max_wait_or_with_nobody_logged_in_is_logged_as_such(
    bundle: Bundle, info: HoldInfo, event: QueueEvent
) -> None:
    general = CallState("hold", "en-US", "main", "general", 10, tries=9)
    decision = flow_at(bundle).on_hold_key(general, "3", info, US_CALLER)
    assert [e.event for e in decision.ticket.events] == [event]


def test_other_keys_while_holding_are_answered_and_holding_goes_on(bundle: Bundle) -> None:
    decision = flow_at(bundle).on_hold_key(HOLD, "7", STAFFED, US_CALLER)
    assert heard(decision)[0] == "not_an_option" and not decision.leave


# --- after hours: another language's team that is open now ----------------------------------------

# Monday 15:00 UTC: Shanghai 23:00 (the Chinese team is closed), New York 10:00 and Berlin 16:00 (open).
CHINESE_CLOSED = CallState("closed", "zh-CN", "funds", "funds", 30)


def test_a_closed_team_offers_the_open_team_of_another_language_in_that_language_first(
    offering_bundle: Bundle,
) -> None:
    decision = flow_at(offering_bundle).on_input(menu("zh-CN", "funds"), "2", US_CALLER)
    assert decision.ticket.outcome is Outcome.CLOSED_HOURS and decision.join is None
    assert heard(decision) == [
        "team_closed",
        "offer_other_language",
        "offer_voicemail",
        "offer_callback",
        "offer_back",
    ]
    [gather] = decision.actions
    assert isinstance(gather, Gather)
    offer = gather.speech[1]
    assert isinstance(offer, Say) and offer.language == "en-US"  # the first open one in menu order
    assert offer.text == "To speak with our English team now, press 3."
    assert listening_at(decision) == CHINESE_CLOSED


def test_pressing_3_puts_the_caller_in_the_same_queue_in_the_offered_language(
    offering_bundle: Bundle,
) -> None:
    decision = flow_at(offering_bundle).on_input(CHINESE_CLOSED, "3", US_CALLER)
    assert decision.join == queued("funds", "en-US", 30)
    assert decision.ticket.language == "en-US"
    assert (decision.ticket.team, decision.ticket.outcome) == ("americas", Outcome.QUEUED)
    assert decision.ticket.menu_step == "closed:3"
    assert heard(decision) == ["please_hold"]
    [say, goto] = decision.actions
    assert isinstance(say, Say) and say.language == "en-US"
    assert isinstance(goto, GoTo) and goto.state.language == "en-US"


def test_the_offer_is_repeated_with_the_other_options_after_a_wrong_key(
    offering_bundle: Bundle,
) -> None:
    decision = flow_at(offering_bundle).on_input(CHINESE_CLOSED, "7", US_CALLER)
    assert heard(decision)[:2] == ["not_an_option", "offer_other_language"]


def test_without_the_setting_no_other_language_is_offered_and_3_is_not_an_option(
    plain_bundle: Bundle,
) -> None:
    flow = flow_at(plain_bundle)
    assert "offer_other_language" not in heard(
        flow.on_input(menu("zh-CN", "funds"), "2", US_CALLER)
    )
    decision = flow.on_input(CHINESE_CLOSED, "3", US_CALLER)
    assert decision.join is None and heard(decision)[0] == "not_an_option"


def test_nothing_is_offered_when_every_team_is_closed(offering_bundle: Bundle) -> None:
    flow = flow_at(offering_bundle, SATURDAY)
    decision = flow.on_input(menu("zh-CN", "funds"), "2", US_CALLER)
    assert heard(decision) == ["team_closed", "offer_voicemail", "offer_callback", "offer_back"]
    assert flow.on_input(CHINESE_CLOSED, "3", US_CALLER).join is None


def test_a_team_of_the_same_team_is_not_offered_as_another(offering_bundle: Bundle) -> None:
    # Monday 06:00 UTC: Berlin 07:00 (closed, serves French and German), Shanghai 14:00 (open).
    early = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
    decision = flow_at(offering_bundle, early).on_input(menu("fr-FR", "funds"), "2", US_CALLER)
    offers = [
        s
        for a in decision.actions
        if isinstance(a, Gather)
        for s in a.speech
        if isinstance(s, Say) and s.prompt == "offer_other_language"
    ]
    assert [s.language for s in offers] == ["zh-CN"]


def test_an_open_but_full_queue_offers_no_other_language(offering_bundle: Bundle) -> None:
    full = HoldInfo(position=51, agents_logged_in=2)
    state = CallState("hold", "en-US", None, "general", 10)
    decision = flow_at(offering_bundle).hold(state, full)
    assert "queue_full" in heard(decision) and "offer_other_language" not in heard(decision)


# --- the agent ---------------------------------------------------------------------------------


def test_connect_rings_the_agent_who_first_hears_who_is_calling(bundle: Bundle) -> None:
    flow = flow_at(bundle)
    decision = flow.connect(HOLD, "anna")
    dial = decision.actions[-1]
    assert isinstance(dial, Dial) and dial.phone == "+4930000000104" and dial.client is None
    assert dial.then == replace(HOLD, step="agent", agent="anna")
    assert dial.whisper.step == "whisper"
    assert decision.ticket.agent == "anna"
    whisper = flow.whisper(dial.whisper, "4821093")
    [said] = whisper.actions
    assert isinstance(said, Say) and said.language == "de-DE"  # Anna's first language
    assert "Ein- und Auszahlungen" in said.text and "English" in said.text
    assert "4 8 2 1 0 9 3" in said.text


@pytest.mark.parametrize(
    ("agent", "language", "label"),
    [
        ("li_wei", "zh-CN", "充值与提现"),
        ("emma", "en-US", "deposits and withdrawals"),
        ("lucas", "fr-FR", "dépôts et retraits"),
        ("anna", "de-DE", "Ein- und Auszahlungen"),
    ],
)
def test_the_whisper_names_the_queue_in_the_agents_language_not_by_its_id(
    bundle: Bundle, agent: str, language: str, label: str
) -> None:
    [said] = flow_at(bundle).whisper(replace(HOLD, step="whisper", agent=agent), "4821093").actions
    assert isinstance(said, Say) and said.language == language
    assert label in said.text and "funds" not in said.text


def test_a_queue_without_a_label_prompt_is_named_by_the_option_leading_to_it(
    bundle: Bundle,
) -> None:
    catalogs = {
        code: replace(c, texts={k: v for k, v in c.texts.items() if k != "queue_label_funds"})
        for code, c in bundle.prompts.catalogs.items()
    }
    unlabelled = Bundle(bundle.rules, replace(bundle.prompts, catalogs=catalogs))
    assert flow_at(unlabelled).queue_label("funds", "en-US") == "a deposit"


def test_a_client_agent_is_dialled_by_identity(bundle: Bundle) -> None:
    dial = flow_at(bundle).connect(HOLD, "emma").actions[-1]
    assert isinstance(dial, Dial) and dial.client == "emma" and dial.phone is None


def test_after_the_conversation_the_caller_is_asked_for_a_score(bundle: Bundle) -> None:
    state = replace(HOLD, step="agent", agent="emma")
    decision = flow_at(bundle).after_agent(state, answered=True)
    assert heard(decision) == ["survey_question"]
    assert listening_at(decision) == replace(state, step="survey")


def test_an_unanswered_agent_sends_the_caller_back_to_hold(bundle: Bundle) -> None:
    state = replace(HOLD, step="agent", agent="emma")
    decision = flow_at(bundle).after_agent(state, answered=False)
    assert heard(decision) == ["agent_unavailable"]
    assert decision.actions[-1] == GoTo(replace(HOLD, tries=1))


@pytest.mark.parametrize("digits", [None, "9"])
def test_the_survey_is_asked_once_more_at_most_then_the_caller_is_let_go(
    bundle: Bundle, digits: str | None
) -> None:
    flow = flow_at(bundle)
    decision = flow.after_agent(replace(HOLD, step="agent", agent="emma"), answered=True)
    asked = 1
    for _ in range(5):  # bounded: the flow must end the call well before this
        state = listening_at(decision)
        if state is None:
            break
        decision = flow.on_input(state, digits, US_CALLER)
        asked += heard(decision).count("survey_question")
    assert asked == 2
    assert heard(decision)[-1] == "goodbye" and isinstance(decision.actions[-1], Hangup)
    assert decision.ticket.satisfaction is None


@pytest.mark.parametrize(("digits", "score"), [("5", 5), ("1", 1), ("9", None), (None, None)])
def test_survey_keys(bundle: Bundle, digits: str | None, score: int | None) -> None:
    state = replace(HOLD, step="survey", agent="emma")
    decision = flow_at(bundle).on_input(state, digits, US_CALLER)
    assert decision.ticket.satisfaction == score
    if score:
        assert isinstance(decision.actions[-1], Hangup)
    else:
        assert listening_at(decision) == replace(state, tries=1)


# --- callers who say nothing ---------------------------------------------------------------------

SURVEY = replace(HOLD, step="survey", agent="emma")


def silent_for(seconds: float, now: datetime = SATURDAY) -> int:
    """The silence clock of a caller who, at `now`, has pressed nothing for `seconds`."""
    return epoch_ms(now) - round(seconds * 1000)


def next_silence(decision: Decision) -> CallState | None:
    """Where a caller who says nothing goes next, with the clock the decision's URLs carry: the
    menu times out, or Twilio goes on past a recording that caught nothing to the redirect."""
    onward = [a for a in decision.actions if isinstance(a, Gather | GoTo)]
    if not onward:
        return None
    last = onward[-1]
    state = last.then if isinstance(last, Gather) else last.state
    return replace(state, silent_since=decision.silent_since)


def test_the_shipped_rules_let_a_silent_caller_go_after_five_minutes(bundle: Bundle) -> None:
    assert bundle.rules.defaults.silence_limit == 300


@pytest.mark.parametrize("state", [CLOSED, menu("en-US", "funds", 2), SURVEY])
def test_a_caller_silent_for_the_limit_hears_why_then_goodbye_and_the_call_ends(
    bundle: Bundle, state: CallState
) -> None:
    silent = replace(state, silent_since=silent_for(300))
    decision = flow_at(bundle, SATURDAY).on_input(silent, None, US_CALLER)
    assert heard(decision) == ["silence_goodbye", "goodbye"]
    assert "We have not heard from you for a while" in texts(decision)
    assert isinstance(decision.actions[-1], Hangup)
    assert decision.ticket.outcome is Outcome.NO_INPUT


def test_a_caller_silent_for_less_is_asked_again_and_the_clock_runs_on(bundle: Bundle) -> None:
    since = silent_for(299)
    decision = flow_at(bundle, SATURDAY).on_input(
        replace(CLOSED, silent_since=since), None, US_CALLER
    )
    assert heard(decision)[0] == "no_input"
    assert decision.silent_since == since
    assert decision.ticket.outcome is None


@pytest.mark.parametrize("digits", ["*", "7", "#", "1"])
def test_any_key_starts_the_silence_clock_again(bundle: Bundle, digits: str) -> None:
    long_silent = replace(CLOSED, silent_since=silent_for(3600))
    decision = flow_at(bundle, SATURDAY).on_input(long_silent, digits, US_CALLER)
    assert "silence_goodbye" not in heard(decision)
    assert decision.silent_since == epoch_ms(SATURDAY)


@pytest.mark.parametrize(
    ("caller", "language"), [(GERMAN_CALLER, "de-DE"), (UNKNOWN_CALLER, "en-US")]
)
def test_a_caller_who_never_chose_a_language_is_let_go_in_the_greetings(
    bundle: Bundle, caller: Caller, language: str
) -> None:
    state = CallState("language", silent_since=silent_for(300, MONDAY_AFTERNOON))
    decision = flow_at(bundle).on_input(state, None, caller)
    assert heard(decision) == ["silence_goodbye", "goodbye"]
    assert {a.language for a in decision.actions if isinstance(a, Say)} == {language}


def test_an_empty_recording_is_still_silence(bundle: Bundle) -> None:
    flow, since = flow_at(bundle, SATURDAY), silent_for(100)
    offered = flow.on_input(replace(CLOSED, tries=2, silent_since=since), None, US_CALLER)
    assert any(isinstance(a, Record) for a in offered.actions)
    assert offered.silent_since == since
    recording = CallState("voicemail", "en-US", "funds", "funds", 30, silent_since=since)
    assert flow.recorded(recording, None, 0, US_CALLER).silent_since == since


def test_the_call_beginning_holding_and_talking_start_the_clock_again(bundle: Bundle) -> None:
    flow, now = flow_at(bundle), epoch_ms(MONDAY_AFTERNOON)
    holding = replace(HOLD, silent_since=silent_for(3600, MONDAY_AFTERNOON))
    talked = replace(holding, step="agent", agent="emma")
    assert flow.answer(US_CALLER).silent_since == now
    assert flow.hold(holding, STAFFED).silent_since == now
    assert flow.on_hold_key(holding, "3", STAFFED, US_CALLER).silent_since == now
    assert flow.connect(holding, "emma").silent_since == now
    assert flow.after_agent(talked, answered=True).silent_since == now
    assert flow.after_agent(talked, answered=False).silent_since == now
    assert flow.restart(holding).silent_since == now


def test_a_silent_caller_after_hours_is_let_go_instead_of_cycling_through_voicemail(
    bundle: Bundle,
) -> None:
    # The team is closed: silences lead to the voicemail, which records nothing and goes back to
    # the offer, again and again. Each round takes about 30 s of call time.
    at, decision = SATURDAY, flow_at(bundle, SATURDAY).on_input(CLOSED, "5", US_CALLER)
    recordings = 0
    for _ in range(100):  # bounded: 30 minutes of rounds
        state = next_silence(decision)
        if state is None:
            break
        at += timedelta(seconds=30)
        decision = flow_at(bundle, at).on_input(state, None, US_CALLER)
        recordings += sum(isinstance(a, Record) for a in decision.actions)
    assert heard(decision) == ["silence_goodbye", "goodbye"]
    assert decision.ticket.outcome is Outcome.NO_INPUT
    assert timedelta(seconds=300) <= at - SATURDAY <= timedelta(seconds=330)
    assert 1 <= recordings <= 4


def test_apology_sends_the_caller_to_a_person(bundle: Bundle) -> None:
    decision = flow_at(bundle).apology("fr-FR")
    assert heard(decision)[0] == "technical_problem"
    assert decision.join == queued("general", "fr-FR", 10)


NOT_IN_THE_FLOW = (
    "flask",
    "redis",
    "sqlalchemy",
    "werkzeug",
    "ivr.rules.check",
    "ivr.rules.loader",
    "mutagen",
    "yaml",
)
"""What the pure modules never load: no web framework, no store, and no rules checker (with its
YAML parser and audio library): the flow takes rules already checked (`ivr.rules.bundle`)."""


@pytest.mark.parametrize("module", ["ivr.flow", "ivr.hours", "ivr.agent_line"])
def test_the_pure_modules_load_no_web_framework_no_store_and_no_rules_checker(module: str) -> None:
    import subprocess
    import sys

    probe = (
        f"import sys, {module}; print(sorted(m for m in {NOT_IN_THE_FLOW!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert loaded == "[]"


# --- what a holding caller is told: never a place further back, never better news for nothing -----


def told(flow: Flow, state: CallState, info: HoldInfo) -> tuple[str, CallState]:
    decision = flow.hold(state, info)
    return texts(decision), hold_gather(decision).then


def test_a_caller_pushed_back_by_urgent_calls_is_not_told_a_higher_position(bundle: Bundle) -> None:
    flow = flow_at(bundle)
    text, then = told(flow, HOLD, STAFFED)  # number 3
    assert "You are number 3 in line." in text
    # Two security emergencies join ahead: the caller is now fourth, then fifth.
    for position in (4, 5):
        text, then = told(flow, then, replace(STAFFED, position=position))
        assert "number" not in text
        assert "Urgent calls are being answered first. You keep your place in line." in text
    # Back to third, then second: announced again, downwards only.
    text, then = told(flow, then, replace(STAFFED, position=3))
    assert "You are number 3 in line." in text
    text, then = told(flow, then, replace(STAFFED, position=2))
    assert "You are number 2 in line." in text


def test_with_position_only_down_off_the_caller_hears_the_position_as_it_is(bundle: Bundle) -> None:
    rules = bundle.rules
    queues = {
        **rules.queues,
        "funds": replace_queue(rules.queues["funds"], position_only_down=False),
    }
    flow = flow_at(Bundle(rules.model_copy(update={"queues": queues}), bundle.prompts))
    _, then = told(flow, HOLD, STAFFED)
    text, _ = told(flow, then, replace(STAFFED, position=5))
    assert "You are number 5 in line." in text


def test_a_shorter_wait_is_not_said_unless_the_caller_moved_forward(bundle: Bundle) -> None:
    flow = flow_at(bundle)
    text, then = told(flow, HOLD, STAFFED)  # position 3, 400 s: between 3 and 10 minutes
    assert "between 3 minutes and 10 minutes" in text
    # Same place, a rosier estimate (an agent logged in): no better news for standing still,
    # and the same wait is not said again every round either...
    text, then = told(flow, then, replace(STAFFED, estimate=WaitEstimate(100, 40, 160)))
    assert "estimated wait" not in text
    # ...unless the caller asks for their position again: the wait they heard last.
    asked = flow.on_hold_key(
        then, "1", replace(STAFFED, estimate=WaitEstimate(100, 40, 160)), US_CALLER
    )
    assert "between 3 minutes and 10 minutes" in texts(asked)
    # A longer estimate is said: bad news is news.
    text, then = told(flow, then, replace(STAFFED, estimate=WaitEstimate(900, 480, 1320)))
    assert "between 8 minutes and 22 minutes" in text
    # Moved forward to second: the shorter estimate is said.
    text, then = told(flow, then, replace(STAFFED, position=2, estimate=WaitEstimate(200, 60, 360)))
    assert "between 1 minute and 6 minutes" in text


@pytest.mark.parametrize(
    ("speech", "spoken"),
    [
        ("about", "Your estimated wait is about 7 minutes."),
        ("under", "Your estimated wait is less than 10 minutes."),
        ("between", "Your estimated wait is between 3 minutes and 10 minutes."),
    ],
)
def test_each_queue_says_the_wait_its_way(bundle: Bundle, speech: str, spoken: str) -> None:
    rules = bundle.rules
    queues = {**rules.queues, "funds": replace_queue(rules.queues["funds"], wait_speech=speech)}
    flow = flow_at(Bundle(rules.model_copy(update={"queues": queues}), bundle.prompts))
    assert spoken in texts(flow.hold(HOLD, STAFFED))


def test_a_short_estimate_is_said_as_less_than_a_few_minutes(bundle: Bundle) -> None:
    # 20 to 110 s rounds to "between 0 and 2", which is said as "less than 2 minutes".
    text = texts(flow_at(bundle).hold(HOLD, replace(STAFFED, estimate=WaitEstimate(50, 20, 110))))
    assert "Your estimated wait is less than 2 minutes." in text


def test_a_place_rebuilt_after_redis_lost_it_is_not_announced_until_the_others_are_back(
    bundle: Bundle,
) -> None:
    decision = flow_at(bundle).hold(HOLD, replace(STAFFED, position=1, rejoined=True))
    assert not {"queue_next", "queue_position", "queue_wait_between"} & set(heard(decision))
    assert hold_gather(decision).then.heard is None


def replace_queue(queue: Any, **changes: Any) -> Any:
    return queue.model_copy(update=changes)


def test_a_caller_held_as_long_as_the_silence_limit_with_nobody_logged_in_is_offered_a_message(
    bundle: Bundle,
) -> None:
    limit = bundle.rules.defaults.silence_limit
    empty = replace(STAFFED, agents_logged_in=0, estimate=None)
    holding = flow_at(bundle).hold(replace(HOLD, tries=4), replace(empty, waited_seconds=limit - 1))
    assert listening_at(holding) is not None and not holding.leave
    offered = flow_at(bundle).hold(replace(HOLD, tries=5), replace(empty, waited_seconds=limit))
    assert heard(offered)[0] == "no_agents" and offered.leave
    assert [e.event for e in offered.ticket.events] == [QueueEvent.EXITEMPTY]
    offer = listening_at(offered)
    assert offer is not None and offer.step == "closed"  # voicemail or a callback, or # back
    # Agents logged in but busy: the caller holds on, however long (waiting is what they chose).
    busy = flow_at(bundle).hold(replace(HOLD, tries=5), replace(STAFFED, waited_seconds=3 * limit))
    assert not busy.leave


# --- callbacks only when asked ----------------------------------------------------------------------

VOICEMAIL_OFF = (
    ("  voicemail: true\n", "  voicemail: false\n"),
    ('      "5": {label: opt_voicemail, voicemail: true, issue: voicemail}\n', ""),
)
"""The edits that switch voicemail off (after hours, while holding and in the menus)."""


def test_a_caller_silent_after_hours_is_never_promised_a_callback_they_did_not_ask_for(
    tmp_path: Path,
) -> None:
    # Without voicemail, a caller who pressed nothing used to be told "we will call you back".
    path, _ = write_rules(tmp_path, *VOICEMAIL_OFF)
    no_voicemail = load_bundle(path, ROOT / "voice_prompts")
    assert no_voicemail.rules.after_hours.callback
    last_try = replace(CLOSED, tries=no_voicemail.rules.defaults.max_tries - 1)
    decision = flow_at(no_voicemail, SATURDAY).on_input(last_try, None, US_CALLER)
    assert decision.ticket.callback_number is None and decision.ticket.outcome is None
    assert decision.callback_number is None
    assert heard(decision) == ["no_input", "goodbye"] and isinstance(decision.actions[-1], Hangup)


@pytest.mark.parametrize("voicemail", [True, False])
def test_only_the_callback_key_asks_for_a_callback(tmp_path: Path, voicemail: bool) -> None:
    path, _ = write_rules(tmp_path, *(() if voicemail else VOICEMAIL_OFF))
    rules = load_bundle(path, ROOT / "voice_prompts")
    keys: list[str | None] = [*"0123456789*#", "12", None]
    max_tries = rules.rules.defaults.max_tries
    asked = set()
    for key in keys:
        for tries in range(max_tries):
            after_hours = flow_at(rules, SATURDAY).on_input(
                replace(CLOSED, tries=tries), key, US_CALLER
            )
            if after_hours.ticket.callback_number or after_hours.callback_number:
                asked.add(("closed", key))
        for info in (STAFFED, replace(STAFFED, agents_logged_in=0, waited_seconds=10**5)):
            for tries in (0, 1, 3):
                holding = flow_at(rules).on_hold_key(
                    replace(HOLD, tries=tries), key, info, US_CALLER
                )
                if holding.ticket.callback_number or holding.callback_number:
                    asked.add(("hold", key))
            if (round_ := flow_at(rules).hold(HOLD, info)).callback_number:
                asked.add(("hold round", None))
            assert round_.ticket.callback_number is None
    assert asked == {("closed", "2"), ("hold", "2")}


# --- callbacks that prove themselves ---------------------------------------------------------------

LANGUAGES = ("zh-CN", "en-US", "fr-FR", "de-DE")
ASKING = replace(US_CALLER, callback_code="4712")
"""A caller whose callback code (`Signer.callback_code`) is 4712."""


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_caller_who_asks_for_a_callback_hears_their_callback_code_with_the_ticket_number(
    bundle: Bundle, language: str
) -> None:
    for decision in (
        flow_at(bundle).on_hold_key(replace(HOLD, language=language), "2", STAFFED, ASKING),
        flow_at(bundle, SATURDAY).on_input(replace(CLOSED, language=language), "2", ASKING),
    ):
        kept_or_confirmed = heard(decision)[0]
        assert heard(decision) == [
            kept_or_confirmed,
            "ticket_reference",
            "callback_code",
            "goodbye",
        ]
        [code] = [a for a in decision.actions if isinstance(a, Say) and a.prompt == "callback_code"]
        assert code.language == language and "4 7 1 2" in code.text
        assert decision.ticket.outcome is Outcome.CALLBACK
        assert decision.ticket.callback_code == "4712"  # travels with the request


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_callback_we_placed_opens_with_who_calls_the_code_the_ticket_and_the_anti_fraud_notice(
    bundle: Bundle, language: str
) -> None:
    flow = flow_at(bundle)
    state = replace(HOLD, language=language, origin="CA" + "1" * 32)
    agent = bundle.rules.agents_serving("funds", language)[0]
    opened = flow.open_callback(flow.connect(state, agent), state, ASKING)
    # All of it before the agent is rung (the <Dial>), so before any agent speaks.
    assert heard(opened) == ["callback_opening", "ticket_reference", "anti_fraud", "connecting"]
    assert isinstance(opened.actions[-1], Dial)
    says = [a for a in opened.actions if isinstance(a, Say)]
    assert {s.language for s in says} == {language}
    assert "BitP" in says[0].text and "4 7 1 2" in says[0].text
    assert "4 8 2 1 0 9 3" in says[1].text
    assert says[2] == flow.say("anti_fraud", language)  # the greeting's, word for word


def test_the_rules_choose_what_a_callback_says_after_the_proof(tmp_path: Path) -> None:
    state = replace(HOLD, origin="CA" + "1" * 32)
    path, _ = write_rules(
        tmp_path, ("callback_opening: [anti_fraud]", "callback_opening: [hold_comfort_safety]")
    )
    chosen = flow_at(load_bundle(path, ROOT / "voice_prompts"))
    opened = chosen.open_callback(chosen.hold(state, STAFFED), state, ASKING)
    assert heard(opened)[:3] == ["callback_opening", "ticket_reference", "hold_comfort_safety"]
    # Left out: the greeting after its welcome, the anti-fraud notice of the shipped rules.
    path, _ = write_rules(tmp_path, ("callback_opening: [anti_fraud]\n", ""))
    default = flow_at(load_bundle(path, ROOT / "voice_prompts"))
    assert default.rules.callback_opening is None
    opened = default.open_callback(default.hold(state, STAFFED), state, ASKING)
    assert heard(opened)[:3] == ["callback_opening", "ticket_reference", "anti_fraud"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_ticket_number_and_callback_code_go_by_text_in_the_callers_language(
    bundle: Bundle, language: str
) -> None:
    texts_of = prompt_texts(language)
    values = {"brand": "BitP", "email": "support@bitp.example", "reference": "4821093"}
    callback = flow_at(bundle).on_hold_key(replace(HOLD, language=language), "2", STAFFED, ASKING)
    # Nothing of the caller's account: the ticket number, the code and the support email.
    body = texts_of["sms_callback"].format(**values, code="4712")
    assert callback.text == TextMessage("+14155550100", body)
    voicemail = flow_at(bundle, SATURDAY).recorded(
        replace(CLOSED, step="voicemail", language=language), "https://api.twilio.com/r", 9, ASKING
    )
    assert voicemail.text == TextMessage("+14155550100", texts_of["sms_reference"].format(**values))


def test_no_text_where_the_rules_do_not_switch_it_on_or_the_line_would_not_call(
    bundle: Bundle, tmp_path: Path
) -> None:
    path, _ = write_rules(tmp_path, ("sms_reference: true", "sms_reference: false"))
    off = load_bundle(path, ROOT / "voice_prompts")
    assert flow_at(off).on_hold_key(HOLD, "2", STAFFED, ASKING).text is None
    # A premium-rate or satellite number is never texted (SMS pumping), nor a call with no ticket.
    satellite = replace(SATELLITE_CALLER, callback_code="4712")
    saved = flow_at(bundle).recorded(replace(CLOSED, step="voicemail"), "https://x/r", 9, satellite)
    assert saved.text is None
    no_ticket = replace(ASKING, reference="")
    assert flow_at(bundle).on_hold_key(HOLD, "2", STAFFED, no_ticket).text is None
    write_rules(tmp_path, ("sms_reference: true\n", ""))
    assert (
        load_bundle(tmp_path / "routing_rules.yaml", ROOT / "voice_prompts").rules.sms_reference
        is False
    )
