"""`ivr check` on what callers may say at a menu that listens: a phrase two options share is an
error where the admin wrote the second one; a phrase listed twice, an option callers cannot say in a
language, a catalog without `operator` phrases, a `phrases` key no option has, a comma inside a phrase
and hints Twilio would not take are warnings.

The setups are small menus of their own (a listening main menu with two sub-menus) in the shipped
rules, and the shipped catalogs with their `phrases:` replaced by the few below, so the tests do not
depend on the shipped phrases. `‸` in replacement text marks where the admin must be pointed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ivr.rules.bundle import Bundle
from ivr.rules.check import load_bundle
from tests.rules.test_check import bundle_problems
from tests.support import PROMPTS, RULES, edit

pytestmark = pytest.mark.usefixtures("each_yaml_loader")

MENUS = """main_menu: main
menus:
  main:
    intro: main_intro
    listen: true
    options:
      "1": {label: opt_account, menu: account}
      "2": {label: opt_funds, menu: funds}
      "3": {label: opt_app, queue: tech, issue: app_problem}

  account:
    intro: prepare_account
    options:
      "1": {label: opt_login, queue: account, issue: login}

  funds:
    intro: prepare_transaction
    options:
      "1": {label: opt_deposit, queue: funds, issue: deposit}
      "2": {label: opt_withdrawal, queue: funds, issue: withdrawal}
"""

PHRASES = {
    "zh-CN": """phrases:
  operator: [人工]
  opt_account: [账户]
  opt_funds: [资金]
  opt_app: [应用]
  opt_login: [登录]
  opt_deposit: [充值]
  opt_withdrawal: [提现]
""",
    "en-US": """phrases:
  operator: [a person, agent]
  opt_account: [my account]
  opt_funds: [money]
  opt_app: [the app]
  opt_login: [log in]
  opt_deposit: [deposit]
  opt_withdrawal: [withdrawal]
""",
    "fr-FR": """phrases:
  operator: [conseiller]
  opt_account: [compte]
  opt_funds: [argent]
  opt_app: [application]
  opt_login: [connexion]
  opt_deposit: [dépôt]
  opt_withdrawal: [retrait]
""",
    "de-DE": """phrases:
  operator: [Mitarbeiter]
  opt_account: [Konto]
  opt_funds: [Geld]
  opt_app: [App]
  opt_login: [Anmeldung]
  opt_deposit: [Einzahlung]
  opt_withdrawal: [Auszahlung]
""",
}


def write_setup(folder: Path) -> tuple[Path, Path]:
    """The shipped rules with `MENUS` and the shipped catalogs with `PHRASES`: (rules, prompts)."""
    text = RULES.read_text(encoding="utf-8")
    start = text.index("main_menu: main\nmenus:\n")
    end = text.index("\n# Teams and their opening hours")
    rules = folder / RULES.name
    rules.write_text(text[:start] + MENUS + text[end:], encoding="utf-8")
    prompts = folder / PROMPTS.name
    prompts.mkdir()
    for language, phrases in PHRASES.items():
        shipped = (PROMPTS / f"{language}.yaml").read_text(encoding="utf-8")
        # The shipped `phrases:` section (up to the next top-level key) gives way to ours.
        kept = re.sub(r"\nphrases:\n(?:[ #][^\n]*\n|\n)*", "\n", shipped, count=1)
        (prompts / f"{language}.yaml").write_text(kept + phrases, encoding="utf-8")
    return rules, prompts


def warnings_of(rules: Path, prompts: Path) -> list[str]:
    """What `ivr check` prints as warnings for rules that load."""
    return [str(warning) for warning in load_bundle(rules, prompts).warnings]


def test_phrases_for_every_option_in_every_language_pass_without_warnings(tmp_path: Path) -> None:
    rules, prompts = write_setup(tmp_path)
    bundle = load_bundle(rules, prompts)
    assert isinstance(bundle, Bundle)
    assert bundle.warnings == ()
    assert bundle.router.hints("main", "en-US") == (
        "my account, money, the app, log in, deposit, withdrawal, a person, agent"
    )


@pytest.mark.parametrize(
    ("language", "edits", "message"),
    [
        pytest.param(
            "en-US",
            [("  opt_withdrawal: [withdrawal]", "  opt_withdrawal: [withdrawal, ‸the apps]")],
            "'the apps' is also a phrase of opt_app (as 'the app', the same words): at menu "
            "'main' a caller who says it reaches neither opt_app nor opt_withdrawal",
            id="two-areas-after-stemming",
        ),
        pytest.param(
            "en-US",
            [
                ("  opt_deposit: [deposit]", "  opt_deposit: [deposit, withdrawal]"),
                ("  opt_withdrawal: [withdrawal]", "  opt_withdrawal: [‸withdrawal]"),
            ],
            "'withdrawal' is also a phrase of opt_deposit: at menu 'main' a caller who says "
            "it reaches neither opt_deposit nor opt_withdrawal",
            id="two-issues-of-one-area",
        ),
        pytest.param(
            "zh-CN",
            [("  opt_withdrawal: [提现]", "  opt_withdrawal: [提现, ‸登陆]")],
            "'登陆' is also a phrase of opt_login (as '登录', the same words): at menu 'main' a "
            "caller who says it reaches neither opt_login nor opt_withdrawal",
            id="chinese-homophone",
        ),
    ],
)
def test_a_phrase_two_options_share_is_an_error_at_the_second(
    tmp_path: Path, language: str, edits: list[tuple[str, str]], message: str
) -> None:
    """The router cannot choose between the two, so the caller who says it reaches neither."""
    rules, prompts = write_setup(tmp_path)
    catalog = prompts / f"{language}.yaml"
    [(line, column)] = edit(catalog, *edits)
    assert bundle_problems(rules, prompts) == [f"{catalog}:{line}:{column}: {message}"]


def test_an_area_and_an_issue_inside_it_may_share_a_phrase(tmp_path: Path) -> None:
    """The router then picks the issue: no problem to report."""
    rules, prompts = write_setup(tmp_path)
    edit(prompts / "en-US.yaml", ("  opt_funds: [money]", "  opt_funds: [money, withdrawal]"))
    assert warnings_of(rules, prompts) == []


def test_a_phrase_two_options_share_is_fine_when_no_menu_listens_for_both(tmp_path: Path) -> None:
    rules, prompts = write_setup(tmp_path)
    edit(rules, ("    listen: true\n", ""))
    edit(prompts / "en-US.yaml", ("  opt_deposit: [deposit]", "  opt_deposit: [deposit, money]"))
    assert warnings_of(rules, prompts) == []


def test_forms_of_one_word_for_one_option_are_fine(tmp_path: Path) -> None:
    """ "withdraw" and "withdrawal" route alike, and as Twilio hints they help recognition hear
    either: an admin may list both."""
    rules, prompts = write_setup(tmp_path)
    edit(prompts / "en-US.yaml", ("  opt_deposit: [deposit]", "  opt_deposit: [deposit, deposits]"))
    assert warnings_of(rules, prompts) == []


@pytest.mark.parametrize(
    ("edits", "message"),
    [
        pytest.param(
            [("  opt_deposit: [deposit]", "  opt_deposit: [deposit, ‸deposit]")],
            "'deposit' is already a phrase of opt_deposit",
            id="the-same-text",
        ),
        pytest.param(
            [("  opt_deposit: [deposit]", "  opt_deposit: [deposit, ‸Deposit ]")],
            "'Deposit' is already a phrase of opt_deposit",
            id="the-same-text-in-other-case",
        ),
    ],
)
def test_a_phrase_listed_twice_for_one_option_is_a_warning(
    tmp_path: Path, edits: list[tuple[str, str]], message: str
) -> None:
    rules, prompts = write_setup(tmp_path)
    catalog = prompts / "en-US.yaml"
    [(line, column)] = edit(catalog, *edits)
    assert warnings_of(rules, prompts) == [f"{catalog}:{line}:{column}: warning: {message}"]


def test_an_option_without_phrases_in_a_language_is_a_warning_at_its_label(tmp_path: Path) -> None:
    rules, prompts = write_setup(tmp_path)
    [(line, column)] = edit(rules, ('"1": {label: opt_login,', '"1": {label: ‸opt_login,'))
    edit(prompts / "fr-FR.yaml", ("  opt_login: [connexion]\n", ""))
    edit(prompts / "de-DE.yaml", ("  opt_login: [Anmeldung]\n", ""))
    assert warnings_of(rules, prompts) == [
        f"{rules}:{line}:{column}: warning: no phrases for opt_login in fr-FR "
        f"({prompts}/fr-FR.yaml) and de-DE ({prompts}/de-DE.yaml): callers who say it at menu "
        "'main' must press keys for it"
    ]


def test_a_catalog_without_operator_phrases_is_a_warning_at_its_phrases(tmp_path: Path) -> None:
    rules, prompts = write_setup(tmp_path)
    catalog = prompts / "fr-FR.yaml"
    [(line, column)] = edit(catalog, ("phrases:\n  operator: [conseiller]\n", "‸phrases:\n"))
    assert warnings_of(rules, prompts) == [
        f"{catalog}:{line}:{column}: warning: no 'operator' phrases: callers at a menu that "
        "listens cannot ask for a person by saying so (only by pressing 0)"
    ]


def test_a_phrases_key_no_option_has_is_a_warning_at_the_key(tmp_path: Path) -> None:
    rules, prompts = write_setup(tmp_path)
    catalog = prompts / "en-US.yaml"
    [(line, column)] = edit(
        catalog,
        (
            "  opt_withdrawal: [withdrawal]\n",
            "  opt_withdrawal: [withdrawal]\n  ‸opt_withdrawl: [cash out]\n",
        ),
    )
    assert warnings_of(rules, prompts) == [
        f"{catalog}:{line}:{column}: warning: 'opt_withdrawl' is neither 'operator' nor the label "
        "of an option: did you mean 'opt_withdrawal'?"
    ]


def test_a_comma_inside_a_phrase_is_a_warning(tmp_path: Path) -> None:
    """A comma separates Twilio's hints, and in a block list it most likely meant two phrases."""
    rules, prompts = write_setup(tmp_path)
    catalog = prompts / "en-US.yaml"
    [(line, column)] = edit(
        catalog,
        (
            "  opt_withdrawal: [withdrawal]",
            "  opt_withdrawal:\n    - withdrawal\n    - ‸withdraw, cash out",
        ),
    )
    assert warnings_of(rules, prompts) == [
        f"{catalog}:{line}:{column}: warning: 'withdraw, cash out' is one phrase, which callers "
        "must say whole: to give two, list them as two (a comma also separates Twilio's hints)"
    ]


def test_a_phrase_over_twilios_hint_length_is_a_warning_and_left_out_of_the_hints(
    tmp_path: Path,
) -> None:
    """Twilio: "hints must be a comma-separated list of up to 500 entries, each entry can be 100
    characters or fewer" (else warning 13330, and the hints are ignored)."""
    rules, prompts = write_setup(tmp_path)
    catalog = prompts / "en-US.yaml"
    longest = "the app " + "x" * 92  # 100 characters: Twilio takes it
    too_long = "the app " + "y" * 93
    [(line, column)] = edit(
        catalog, ("  opt_app: [the app]", f"  opt_app: [the app, {longest}, ‸{too_long}]")
    )
    assert warnings_of(rules, prompts) == [
        f"{catalog}:{line}:{column}: warning: this phrase has 101 characters, more than the 100 "
        "Twilio takes for a hint: it is left out of the hints (it still routes what callers say)"
    ]
    hints = load_bundle(rules, prompts).router.hints("main", "en-US").split(", ")
    assert longest in hints
    assert too_long not in hints


@pytest.mark.parametrize(
    ("over", "first_left_out"),
    [
        pytest.param(1, "  opt_withdrawal: [‸withdrawal]", id="one-over"),
        pytest.param(3, "  opt_login: [‸log in]", id="three-over"),
    ],
)
def test_more_hints_than_twilio_takes_is_a_warning_at_the_first_left_out(
    tmp_path: Path, over: int, first_left_out: str
) -> None:
    """Twilio: "hints must be a comma-separated list of up to 500 entries, each entry can be 100
    characters or fewer". The hints list the options in menu order (the main menu's, then the
    account menu's, then the funds menu's), so the ones past 500 are the last in that order."""
    rules, prompts = write_setup(tmp_path)
    catalog = prompts / "en-US.yaml"
    # With the 5 phrases of the other options, 500 + over in all.
    many = ", ".join(f"app problem {n}" for n in range(495 + over))
    edit(catalog, ("  opt_app: [the app]", f"  opt_app: [{many}]"))
    [(line, column)] = edit(catalog, (first_left_out.replace("‸", ""), first_left_out))
    which = "this one is" if over == 1 else f"this one and {over - 1} others are"
    assert warnings_of(rules, prompts) == [
        f"{catalog}:{line}:{column}: warning: menu 'main' listens for {500 + over} different "
        f"phrases in en-US, more than the 500 hints Twilio takes: {which} left out of the hints "
        "(they still route what callers say)"
    ]
    hints = load_bundle(rules, prompts).router.hints("main", "en-US").split(", ")
    assert len(hints) == 500
    assert "withdrawal" not in hints
    assert ("log in" in hints) == (over == 1)


def test_phrases_of_options_no_listening_menu_reaches_are_left_alone(tmp_path: Path) -> None:
    """Not a typo: the label is an option's. Only the funds menu listens here."""
    rules, prompts = write_setup(tmp_path)
    edit(
        rules,
        ("    listen: true\n", ""),
        ("    intro: prepare_transaction\n", "    intro: prepare_transaction\n    listen: true\n"),
    )
    assert warnings_of(rules, prompts) == []
    assert load_bundle(rules, prompts).router.hints("funds", "en-US") == (
        "deposit, withdrawal, a person, agent"
    )
