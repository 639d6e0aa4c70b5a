"""Lookups the call flow makes on every request, precomputed once per loaded version of the rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.rules.loader import load_rules
from ivr.rules.schema import Rules
from tests.support import RULES, write_rules


@pytest.fixture(scope="module")
def shipped() -> Rules:
    return load_rules(RULES)[0]


def test_pound_goes_back_to_the_menu_that_leads_to_this_one(shipped: Rules) -> None:
    assert dict(shipped.menu_parents) == {
        "account": "main",
        "funds": "main",
        "security": "main",
        "self_service": "main",
    }
    assert shipped.parent_menu("funds") == "main"
    assert shipped.parent_menu("main") is None
    assert shipped.parent_menu("no_such_menu") is None


def test_a_menu_reached_from_several_menus_goes_back_to_the_first_found_nearest_main(
    tmp_path: Path,
) -> None:
    shared = '  shared:\n    options:\n      "1": {label: opt_hours, say: answer_hours}\n\n'
    path, _ = write_rules(
        tmp_path,
        # `shared` is reached from account, funds and (deeper) from itself; `main` from account.
        (
            '      "3": {label: opt_account_other, queue: account, issue: account_other}\n',
            '      "3": {label: opt_account_other, queue: account, issue: account_other}\n'
            '      "4": {label: opt_records, menu: shared}\n'
            '      "5": {label: opt_account, menu: main}\n',
        ),
        (
            '      "3": {label: opt_records, queue: funds, issue: transaction_records}\n',
            '      "3": {label: opt_records, queue: funds, issue: transaction_records}\n'
            '      "4": {label: opt_records, menu: shared}\n',
        ),
        ("  self_service:\n", shared + "  self_service:\n"),
    )
    rules, _ = load_rules(path)
    assert rules.parent_menu("shared") == "account"  # account comes before funds in the main menu
    assert rules.parent_menu("main") is None  # going back from main is the language menu
    assert rules.parent_menu("account") == "main"


def test_the_parents_cannot_be_changed(shipped: Rules) -> None:
    with pytest.raises(TypeError):
        shipped.menu_parents["funds"] = "security"  # type: ignore[index]


@pytest.mark.parametrize(
    ("number", "language"),
    [
        ("+8613800000000", "zh-CN"),
        ("+85291234567", "zh-CN"),
        ("+4930123456", "de-DE"),
        ("+4520123456", "fr-FR"),  # only the shorter "+4" matches
        ("+12125550100", "en-US"),
        ("+99912345", None),
        ("", None),
    ],
)
def test_the_longest_calling_code_picks_the_language(
    tmp_path: Path, number: str, language: str | None
) -> None:
    path, _ = write_rules(tmp_path, ('  "+43": de-DE\n', '  "+43": de-DE\n  "+4": fr-FR\n'))
    rules, _ = load_rules(path)
    assert rules.language_for_caller(number) == language


def test_language_keys(shipped: Rules) -> None:
    assert [shipped.language_for_key(k) for k in "12349"] == [
        "zh-CN",
        "en-US",
        "fr-FR",
        "de-DE",
        None,
    ]
    assert shipped.language_codes == ("zh-CN", "en-US", "fr-FR", "de-DE")


def test_agents_serving_a_line_in_the_order_listed(shipped: Rules) -> None:
    assert shipped.agents_serving("general", "en-US") == ("li_wei", "emma", "lucas", "anna")
    assert shipped.agents_serving("general", "fr-FR") == ("lucas",)
    assert shipped.agents_serving("security", "fr-FR") == ("sec_desk",)
    assert shipped.agents_serving("security", "xx-XX") == ()
    assert shipped.agents_serving("no_such_queue", "en-US") == ()


def test_an_agent_is_found_by_extension(shipped: Rules) -> None:
    found = shipped.agent_by_extension("102")
    assert found is not None and found[0] == "emma" and found[1].name == "Emma Clarke"
    assert shipped.agent_by_extension("999") is None
    assert shipped.agent_by_extension("") is None
