"""`hold_keys`: an option left out of the section is switched off, as the rules file's comment says
("remove one to switch that option off"), not silently given its default key. Walked through the
webhooks, since what matters is what a holding caller hears and what their key does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from ivr.rules.loader import load_rules
from ivr.rules.schema import DEFAULT_HOLD_KEYS
from tests.support import PUBLIC, REST_ACCOUNT_SID, Phone, prompt_texts, write_rules

TEXTS = prompt_texts("en-US")
SHIPPED_KEYS = 'hold_keys:\n  position: "1"\n  callback: "2"\n  voicemail: "3"\n'


def holding_caller(app_factory: Callable[..., Flask], rules: Path | None) -> Phone:
    """An English caller in the `account` queue, hearing their first hold round (with the options),
    on a service with Twilio REST credentials, so that callbacks are possible."""
    overrides = {"routing_rules": rules} if rules else {}
    app = app_factory(twilio_account_sid=REST_ACCOUNT_SID, public_base_url=PUBLIC, **overrides)
    phone = Phone(app.test_client(), caller="+14155550100", base_url=PUBLIC)
    phone.dial()
    phone.press("2")  # English
    phone.press("1")  # account and login
    phone.press("1")  # login problems: the account queue
    phone.follow()
    return phone


def callback_offer() -> str:
    return TEXTS["hold_option_callback"].format(key="2")


def test_the_shipped_rules_offer_the_callback(app_factory: Callable[..., Flask]) -> None:
    phone = holding_caller(app_factory, None)
    assert callback_offer() in phone.heard
    assert TEXTS["hold_option_position"].format(key="1") in phone.heard


@pytest.mark.parametrize(
    "keys",
    [
        pytest.param('hold_keys:\n  position: "1"\n  voicemail: "3"\n', id="callback-left-out"),
        pytest.param(
            'hold_keys:\n  position: "1"\n  callback: null\n  voicemail: "3"\n', id="callback-null"
        ),
    ],
)
def test_a_callback_left_out_of_hold_keys_is_switched_off(
    app_factory: Callable[..., Flask], tmp_path: Path, keys: str
) -> None:
    rules, _ = write_rules(tmp_path, (SHIPPED_KEYS, keys))
    phone = holding_caller(app_factory, rules)
    assert callback_offer() not in phone.heard
    assert TEXTS["hold_option_position"].format(key="1") in phone.heard
    assert TEXTS["hold_option_voicemail"].format(key="3") in phone.heard
    phone.press("2")  # the key that used to ask for a callback: now nothing is promised
    assert TEXTS["callback_kept"].split("{")[0] not in phone.last_heard()
    assert phone.twiml is not None and phone.twiml.find("Gather") is not None  # still holding


def test_without_a_hold_keys_section_all_three_options_are_on(tmp_path: Path) -> None:
    rules_file, _ = write_rules(tmp_path, (SHIPPED_KEYS, ""))
    rules, _ = load_rules(rules_file)
    assert rules.hold_keys == DEFAULT_HOLD_KEYS
    assert (rules.hold_keys.position, rules.hold_keys.callback, rules.hold_keys.voicemail) == (
        "1",
        "2",
        "3",
    )


def test_an_empty_hold_keys_section_switches_every_option_off(tmp_path: Path) -> None:
    rules_file, _ = write_rules(tmp_path, (SHIPPED_KEYS, "hold_keys: {}\n"))
    rules, _ = load_rules(rules_file)
    assert (rules.hold_keys.position, rules.hold_keys.callback, rules.hold_keys.voicemail) == (
        None,
        None,
        None,
    )
