"""The call flow at a menu that listens: words lead where keys would, a key always wins, and what
the line did not understand (or was unsure of) never sends a caller to a wrong queue."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from ivr.flow import CallState, Decision, Flow, Gather, Say
from ivr.rules.bundle import Bundle
from ivr.rules.check import load_bundle
from ivr.rules.prompts import Prompts
from ivr.speech import Utterance
from tests.flow.test_engine import MONDAY_AFTERNOON, US_CALLER, heard, listening_at, menu
from tests.support import write_rules

ROOT = Path(__file__).resolve().parents[2]
WITHDRAWAL_NEVER_ARRIVED = {
    "en-US": "my withdrawal never arrived",
    "zh-CN": "我的提现一直没有到账",
    "fr-FR": "mon retrait n'est jamais arrivé",
    "de-DE": "meine Auszahlung ist nie angekommen",
}
OFF_TOPIC = "what is the weather like tomorrow"


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle(ROOT / "routing_rules.yaml", ROOT / "voice_prompts")


@pytest.fixture(scope="module")
def keypad_bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    """The shipped rules with the main menu's listening switched off: today's keypad menu."""
    edit = ("    listen: true", "    listen: false")
    path, _ = write_rules(tmp_path_factory.mktemp("rules"), edit)
    return load_bundle(path, ROOT / "voice_prompts")


@pytest.fixture(scope="module")
def plain_phrases(bundle: Bundle) -> Bundle:
    """The shipped rules with a few plain English phrases, so that these tests follow the flow's
    mechanics and not how well the shipped phrases are written (tests/speech/ checks those)."""
    phrases = {
        "operator": ("a person",),
        "opt_funds": ("money",),
        "opt_deposit": ("deposit",),
        "opt_withdrawal": ("withdrawal",),
        "opt_account": ("account",),
    }
    english = replace(bundle.prompts.catalog("en-US"), phrases=phrases)
    catalogs = {**bundle.prompts.catalogs, "en-US": english}
    return Bundle(bundle.rules, Prompts(catalogs, bundle.prompts.audio_root))


def flow(bundle: Bundle) -> Flow:
    return Flow(bundle, MONDAY_AFTERNOON)


def say(
    bundle: Bundle, text: str, confidence: float = 0.9, at: CallState | None = None
) -> Decision:
    state = at or menu("en-US", "main")
    return flow(bundle).on_input(state, None, US_CALLER, Utterance(text, confidence))


def main_gather(decision: Decision) -> Gather:
    gathers = [a for a in decision.actions if isinstance(a, Gather)]
    assert gathers, decision
    return gathers[-1]


# --- what a caller hears at a menu that listens ---------------------------------------------


@pytest.mark.parametrize(
    ("language", "listens_in"),
    [("en-US", "en-US"), ("zh-CN", "cmn-Hans-CN"), ("fr-FR", "fr-FR"), ("de-DE", "de-DE")],
)
def test_the_main_menu_invites_words_and_listens_in_the_callers_language(
    bundle: Bundle, language: str, listens_in: str
) -> None:
    chosen = flow(bundle).on_input(
        CallState("language"),
        {"zh-CN": "1", "en-US": "2", "fr-FR": "3", "de-DE": "4"}[language],
        US_CALLER,
    )
    gather = main_gather(chosen)
    assert gather.then == menu(language, "main")
    assert gather.listen is not None
    assert gather.listen.language == listens_in
    ids = heard(chosen)
    # The invitation comes after the menu's introduction and before the first option.
    assert ids.index("main_intro") < ids.index("speech_intro") < ids.index("press_key")
    # Twilio is told what callers are likely to say: the options' phrases in that language.
    for phrase in bundle.prompts.catalog(language).phrases["opt_withdrawal"][:3]:
        assert phrase in gather.listen.hints


def test_menus_that_do_not_listen_and_a_second_try_are_the_keypad_menu(bundle: Bundle) -> None:
    funds = flow(bundle).on_input(menu("en-US", "main"), "2", US_CALLER)
    assert main_gather(funds).listen is None and "speech_intro" not in heard(funds)
    wrong_key = flow(bundle).on_input(menu("en-US", "main"), "9", US_CALLER)
    assert listening_at(wrong_key) == menu("en-US", "main", tries=1)
    assert main_gather(wrong_key).listen is None and "speech_intro" not in heard(wrong_key)


# --- words that lead somewhere ---------------------------------------------------------------


@pytest.mark.parametrize("language", list(WITHDRAWAL_NEVER_ARRIVED))
def test_a_caller_who_says_their_withdrawal_never_arrived_reaches_the_funds_queue(
    bundle: Bundle, language: str
) -> None:
    text = WITHDRAWAL_NEVER_ARRIVED[language]
    decision = say(bundle, text, at=menu(language, "main"))
    # At this hour the Asian team is closed: the Chinese caller hears its hours and may leave a
    # message or ask for a callback, on a ticket that says where they wanted to go.
    if language != "zh-CN":
        assert decision.join is not None and decision.join.queue == "funds"
        assert decision.join.language == language
    ticket = decision.ticket
    assert (ticket.issue, ticket.queue) == ("withdrawal", "funds")
    assert (ticket.said, ticket.said_to, ticket.said_checked) == (text, "withdrawal", False)
    assert ticket.menu_step == "main:said"


def test_words_that_only_name_the_area_lead_to_its_menu(plain_phrases: Bundle) -> None:
    decision = say(plain_phrases, "i have a question about money")
    assert listening_at(decision) == menu("en-US", "funds")
    assert decision.join is None
    assert (decision.ticket.said_to, decision.ticket.menu_step) == ("funds", "main:said")


@pytest.mark.parametrize(
    "text",
    ["I want to speak to a person", "我想找人工客服", "je veux parler à une personne"],
)
def test_asking_for_a_person_goes_to_the_operator_queue(bundle: Bundle, text: str) -> None:
    language = {"I": "en-US", "我": "zh-CN", "j": "fr-FR"}[text[0]]
    decision = say(bundle, text, at=menu(language, "main"))
    assert decision.ticket.queue == bundle.rules.operator_queue
    assert (decision.ticket.issue, decision.ticket.said_to) == ("operator", "operator")


def test_a_spoken_card_number_is_not_kept_on_the_ticket(bundle: Bundle) -> None:
    decision = say(bundle, "my withdrawal to card 4111 1111 1111 1111 never arrived")
    assert decision.ticket.said == "my withdrawal to card ################### never arrived"


# --- unsure: one question -------------------------------------------------------------------


def ask(bundle: Bundle) -> Decision:
    """Words the line is unsure of: Twilio heard them with a confidence of 0.4."""
    decision = say(bundle, "withdrawal", confidence=0.4)
    assert listening_at(decision) == CallState("confirm", "en-US", "main", choice="22")
    return decision


def test_unsure_words_get_one_question_naming_where_they_lead(plain_phrases: Bundle) -> None:
    decision = ask(plain_phrases)
    assert heard(decision) == ["speech_confirm"]
    spoken = main_gather(decision).speech[0]
    assert isinstance(spoken, Say)
    assert spoken.text == (
        "You want help with a withdrawal. Press 1 if that is right, or 2 to choose from the menu."
    )
    assert main_gather(decision).listen is None  # the answer is a key
    assert (decision.ticket.said_checked, decision.ticket.said_to) == (True, None)
    assert decision.join is None


def test_pressing_1_follows_the_words(plain_phrases: Bundle) -> None:
    at = listening_at(ask(plain_phrases))
    decision = flow(plain_phrases).on_input(at, "1", US_CALLER)
    assert decision.join is not None and decision.join.queue == "funds"
    assert (decision.ticket.issue, decision.ticket.said_to) == ("withdrawal", "withdrawal")
    assert decision.ticket.menu_step is None  # the path already says main:said; no key of funds


@pytest.mark.parametrize(
    ("key", "before"), [("2", []), ("5", ["speech_choose"]), (None, ["speech_choose"])]
)
def test_anything_but_1_gives_the_keypad_menu_and_no_second_question(
    plain_phrases: Bundle, key: str | None, before: list[str]
) -> None:
    at = listening_at(ask(plain_phrases))
    decision = flow(plain_phrases).on_input(at, key, US_CALLER)
    assert decision.join is None
    assert listening_at(decision) == menu("en-US", "main")
    assert main_gather(decision).listen is None
    assert heard(decision)[: len(before) + 1] == [*before, "main_intro"]
    assert decision.ticket.said_to == "menu"


def test_0_and_star_keep_their_meaning_at_the_question(plain_phrases: Bundle) -> None:
    at = listening_at(ask(plain_phrases))
    operator = flow(plain_phrases).on_input(at, "0", US_CALLER)
    assert operator.join is not None and operator.join.queue == plain_phrases.rules.operator_queue
    again = flow(plain_phrases).on_input(at, "*", US_CALLER)
    assert heard(again) == ["speech_confirm"] and listening_at(again) == at


def test_a_question_whose_choice_the_rules_no_longer_have_starts_the_menu_again(
    plain_phrases: Bundle,
) -> None:
    stale = CallState("confirm", "en-US", "main", choice="29")
    assert flow(plain_phrases).admit(stale) is None
    assert flow(plain_phrases).admit(CallState("confirm", "en-US", "main", choice="22"))


@pytest.mark.parametrize("choice", ["0", "2a", "", "123456789"])
def test_a_url_with_a_choice_that_is_not_keys_is_not_ours(choice: str) -> None:
    params = {"step": "confirm", "language": "en-US", "menu": "main", "choice": choice}
    state = CallState.from_params(params)
    assert state is None or state.choice is None


# --- not understood: the keypad menu, never a wrong queue ------------------------------------


def test_words_the_line_does_not_understand_give_the_keypad_menu(bundle: Bundle) -> None:
    decision = say(bundle, OFF_TOPIC)
    assert decision.join is None
    assert heard(decision)[0] == "speech_not_understood"
    assert listening_at(decision) == menu("en-US", "main", tries=1)
    assert main_gather(decision).listen is None
    assert (decision.ticket.said, decision.ticket.said_to) == (OFF_TOPIC, "menu")


def test_words_at_low_confidence_that_match_nothing_are_not_followed(bundle: Bundle) -> None:
    decision = say(bundle, "withdrawal", confidence=0.1)
    assert decision.join is None and decision.ticket.said_to == "menu"


def test_a_caller_who_keeps_saying_nothing_useful_reaches_a_person_not_a_wrong_queue(
    bundle: Bundle,
) -> None:
    at = menu("en-US", "main")
    decision = say(bundle, OFF_TOPIC, at=at)
    for _ in range(5):
        at = listening_at(decision)
        if decision.join is not None or at is None:
            break
        decision = flow(bundle).on_input(at, None, US_CALLER)
    assert decision.join is not None
    assert decision.join.queue == bundle.rules.defaults.fallback.queue


def test_words_at_a_menu_that_does_not_listen_count_as_silence(bundle: Bundle) -> None:
    decision = say(bundle, "withdrawal", at=menu("en-US", "funds"))
    silence = flow(bundle).on_input(menu("en-US", "funds"), None, US_CALLER)
    assert heard(decision) == heard(silence) and decision.ticket.said is None


# --- keys always win --------------------------------------------------------------------------


@pytest.mark.parametrize("key", [*"0123456789*#", None])
def test_every_key_works_at_a_listening_menu_as_at_the_keypad_menu(
    bundle: Bundle, keypad_bundle: Bundle, key: str | None
) -> None:
    listening = flow(bundle).on_input(menu("en-US", "main"), key, US_CALLER)
    keypad = flow(keypad_bundle).on_input(menu("en-US", "main"), key, US_CALLER)
    assert [p for p in heard(listening) if p != "speech_intro"] == heard(keypad)
    assert listening.ticket == keypad.ticket and listening.join == keypad.join
    assert listening_at(listening) == listening_at(keypad)


def test_a_key_wins_over_words_that_came_with_it(bundle: Bundle) -> None:
    decision = flow(bundle).on_input(
        menu("en-US", "main"), "4", US_CALLER, Utterance("my withdrawal never arrived", 0.9)
    )
    assert decision.join is not None and decision.join.queue == "supervisors"
    assert decision.ticket.said is None and decision.ticket.menu_step == "main:4"
