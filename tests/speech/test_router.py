"""Where what a caller says at the main menu leads, in the four languages of the shipped rules."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ivr.rules.bundle import Bundle
from ivr.rules.check import load_bundle
from ivr.speech import NOWHERE, Route, Router, Utterance
from ivr.speech.router import HINT_CHARACTERS, HINTS_MAX
from tests.support import PROMPTS, RULES

LANGUAGES = ["zh-CN", "en-US", "fr-FR", "de-DE"]


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle(RULES, PROMPTS)


def led_to(bundle: Bundle, route: Route) -> str:
    """Where the caller ends up: an issue, a sub-menu (only the area was clear), operator, menu."""
    if route.operator:
        return "operator"
    if not route.path:
        return "menu"
    menu = bundle.rules.menus["main"]
    for key in route.path:
        option = menu.options[key]
        if option.menu:
            menu = bundle.rules.menus[option.menu]
    return option.menu or option.issue_name


def heard(bundle: Bundle, language: str, said: str, confidence: float = 0.9) -> Route:
    return bundle.router.route("main", language, Utterance(said, confidence))


@pytest.mark.parametrize(
    ("language", "said", "issue"),
    [
        # the issue's examples
        ("en-US", "my USDT withdrawal has been pending since yesterday", "withdrawal"),
        ("zh-CN", "账户被盗了", "account_compromised"),
        ("fr-FR", "mon retrait est bloqué", "withdrawal"),
        # someone else changed the password: the account is in other hands (a takeover), not a
        # caller who cannot log in (the catalogs' phrases say so in each language)
        ("de-DE", "jemand hat mein Passwort geändert", "account_compromised"),
        ("en-US", "someone changed my password", "account_compromised"),
        ("en-US", "I forgot my password", "login"),
        ("de-DE", "Passwort vergessen", "login"),
        # a homophone recognition writes: 体现 for 提现 (ti xian), 冲值 for 充值 (chong zhi)
        ("zh-CN", "体现一直没到账", "withdrawal"),
        ("zh-CN", "冲值没有到账", "deposit"),
        # inflected forms
        ("en-US", "withdrawing keeps failing", "withdrawal"),
        ("fr-FR", "mes retraits sont bloqués", "withdrawal"),
        ("fr-FR", "j'ai déposé des euros", "deposit"),
        ("de-DE", "meine Auszahlungen kommen nicht an", "withdrawal"),
        # German compounds
        ("de-DE", "ich habe ein Auszahlungsproblem", "withdrawal"),
        ("de-DE", "wo ist mein Transaktionsverlauf", "transaction_records"),
        # a longer phrase keeps its words: "withdrawal" inside "a withdrawal I did not make"
        ("en-US", "there is a withdrawal I didn't make", "suspicious_withdrawal"),
        ("en-US", "my withdrawal didn't arrive", "withdrawal"),
        ("fr-FR", "il y a un retrait que je n'ai pas fait", "suspicious_withdrawal"),
        ("de-DE", "eine Auszahlung, die ich nicht gemacht habe", "suspicious_withdrawal"),
        ("zh-CN", "有一笔提现不是我操作的", "suspicious_withdrawal"),
        # a person and a topic: the topic's team are people too
        ("en-US", "I want to talk to someone about my withdrawal", "withdrawal"),
        ("zh-CN", "周末有人工服务吗", "faq_hours"),
    ],
)
def test_what_callers_say_leads_to_their_issue_without_asking(
    bundle: Bundle, language: str, said: str, issue: str
) -> None:
    route = heard(bundle, language, said)
    assert led_to(bundle, route) == issue
    assert not route.confirm
    assert route.sure >= bundle.rules.speech.confirm_below


@pytest.mark.parametrize(
    ("language", "said"),
    [
        ("en-US", "I want to speak to a person"),
        ("zh-CN", "我想跟人工客服说话"),
        ("fr-FR", "je veux parler à une personne"),
        ("de-DE", "ich möchte mit einer Person sprechen"),
    ],
)
def test_asking_for_a_person_leads_to_a_person(bundle: Bundle, language: str, said: str) -> None:
    route = heard(bundle, language, said)
    assert route.operator and route.path == () and not route.confirm


@pytest.mark.parametrize(
    ("language", "said"),
    [
        ("en-US", "is it going to rain tomorrow"),
        ("en-US", "what's the price of bitcoin today"),
        ("en-US", "uh the"),
        ("zh-CN", "明天天气怎么样"),
        ("zh-CN", "比特币今天多少钱"),
        ("fr-FR", "je me suis trompé de numéro"),
        ("de-DE", "ich möchte eine Pizza bestellen"),
        ("de-DE", "seit zwei Wochen"),  # "seit" is not the "Seite" of a website
    ],
)
def test_what_the_menu_does_not_offer_leads_nowhere(
    bundle: Bundle, language: str, said: str
) -> None:
    assert heard(bundle, language, said) == NOWHERE


def test_small_words_alone_lead_nowhere(bundle: Bundle) -> None:
    for language, said in [("en-US", "the my a"), ("de-DE", "nicht mein"), ("fr-FR", "pas le")]:
        assert not heard(bundle, language, said).understood, (language, said)


def test_the_caller_is_asked_when_twilio_was_unsure(bundle: Bundle) -> None:
    unsure = heard(bundle, "en-US", "my withdrawal is stuck", confidence=0.5)
    assert led_to(bundle, unsure) == "withdrawal"
    assert unsure.confirm
    assert heard(bundle, "en-US", "my withdrawal is stuck", confidence=0.2) == NOWHERE
    assert not heard(bundle, "en-US", "my withdrawal is stuck", confidence=0.9).confirm


def test_the_caller_is_asked_when_the_words_lean_one_way(bundle: Bundle) -> None:
    route = heard(bundle, "en-US", "my withdrawal is pending and the app is slow")
    assert led_to(bundle, route) == "withdrawal"
    assert route.confirm


def test_words_that_point_two_ways_alike_lead_to_the_keypad_menu(bundle: Bundle) -> None:
    assert heard(bundle, "en-US", "my deposit and my withdrawal and my password") == NOWHERE


def test_only_the_area_when_two_of_its_issues_are_said_alike(bundle: Bundle) -> None:
    route = heard(bundle, "en-US", "a deposit and a withdrawal")
    assert led_to(bundle, route) == "funds"


@pytest.mark.parametrize("language", LANGUAGES)
def test_hints_are_within_twilios_limits(bundle: Bundle, language: str) -> None:
    hints = bundle.router.hints("main", language).split(", ")
    assert 20 <= len(hints) <= HINTS_MAX
    assert all(0 < len(hint) <= HINT_CHARACTERS for hint in hints)
    assert len(set(hints)) == len(hints)


def test_hints_are_phrases_as_callers_say_them(bundle: Bundle) -> None:
    assert "cash out" in bundle.router.hints("main", "en-US").split(", ")
    assert "账户被盗" in bundle.router.hints("main", "zh-CN").split(", ")  # no space in Chinese


def test_hints_stop_at_twilios_limits_however_many_phrases(bundle: Bundle) -> None:
    catalog = bundle.prompts.catalog("en-US")
    many = ("word " * 30, *(f"phrase number {n}" for n in range(HINTS_MAX + 100)))
    phrases = {**catalog.phrases, "opt_withdrawal": many}
    prompts = replace(
        bundle.prompts,
        catalogs={**bundle.prompts.catalogs, "en-US": replace(catalog, phrases=phrases)},
    )
    hints = Router(bundle.rules, prompts).hints("main", "en-US").split(", ")
    assert len(hints) == HINTS_MAX
    assert all(len(hint) <= HINT_CHARACTERS for hint in hints)


def test_options_reach_two_menus_down(bundle: Bundle) -> None:
    options = dict(bundle.router.options("main"))
    assert options[("2", "2")] == "opt_withdrawal"
    assert options[("3", "2")] == "opt_suspicious_withdrawal"
    assert len(options) == 6 + 3 + 3 + 3 + 5
