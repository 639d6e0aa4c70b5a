"""The agents' PINs: what the PIN file holds and which PINs are refused."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest
from argon2 import PasswordHasher, profiles

from ivr.credentials import PinFileError, PinStore, pin_problem

DAY = 24 * 3600
CHEAP = PasswordHasher.from_parameters(profiles.CHEAPEST)


@pytest.fixture
def store(tmp_path: Path) -> PinStore:
    return PinStore(tmp_path / "instance" / "agent_pins.json", CHEAP)


def test_the_pin_file_holds_salted_hashes_only_and_only_its_owner_may_read_it(
    store: PinStore,
) -> None:
    store.set_pins({"emma": "730152", "anna": "730152"})
    text = store.path.read_text()
    assert "730152" not in text
    hashes = json.loads(text)["agents"]
    assert hashes["emma"].startswith("$argon2id$")
    assert hashes["emma"] != hashes["anna"]  # salted: the same PIN never looks the same
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert [p.name for p in store.path.parent.iterdir()] == ["agent_pins.json"]  # no temporary left


def test_the_right_pin_is_accepted_and_no_other(store: PinStore) -> None:
    store.set_pin("emma", "730152")
    assert store.verify("emma", "730152")
    assert not store.verify("emma", "730153")
    assert not store.verify("emma", "")
    assert not store.verify("anna", "730152")  # an agent without a PIN cannot log in at all
    assert store.has_pin("emma") and not store.has_pin("anna")


def test_a_pin_set_elsewhere_is_used_without_a_restart(store: PinStore) -> None:
    running = PinStore(store.path)  # the server's store, at argon2's default cost
    assert not running.verify("emma", "730152")  # no file yet
    store.set_pin("emma", "730152")  # `ivr agents set-pin`, another process
    assert running.verify("emma", "730152")
    store.set_pin("emma", "604731")
    assert not running.verify("emma", "730152") and running.verify("emma", "604731")
    assert store.remove("emma") and not store.remove("emma")
    assert not running.verify("emma", "604731")


def test_a_broken_pin_file_keeps_the_pins_read_before_and_is_never_overwritten(
    store: PinStore,
) -> None:
    store.set_pin("emma", "730152")
    running = PinStore(store.path)
    assert running.verify("emma", "730152")
    store.path.write_text("{not json")
    os.utime(store.path, ns=(1, 1))
    assert running.verify("emma", "730152")
    with pytest.raises(PinFileError, match="not a PIN file written by `ivr agents`"):
        store.set_pin("anna", "517394")
    assert store.path.read_text() == "{not json"


@pytest.mark.parametrize(
    ("pin", "problem"),
    [
        ("73015", "a PIN is 6 to 12 digits (0-9)"),
        ("7301527301527", "a PIN is 6 to 12 digits (0-9)"),
        ("73O152", "a PIN is 6 to 12 digits (0-9)"),
        ("７３０１５２", "a PIN is 6 to 12 digits (0-9)"),  # digits, but not ones a phone has
        ("000000", "repeats one to three digits"),
        ("12121212", "repeats one to three digits"),
        ("147147", "repeats one to three digits"),
        ("123456", "a run of digits"),
        ("654321", "a run of digits"),
        ("890123", "a run of digits"),
    ],
)
def test_short_and_guessable_pins_are_refused(store: PinStore, pin: str, problem: str) -> None:
    assert problem in (pin_problem(pin) or "")
    with pytest.raises(ValueError, match=re.escape(problem)):
        store.set_pin("emma", pin)
    assert not store.path.exists()


@pytest.mark.parametrize("pin", ["730152", "480613", "918273645501"])
def test_a_pin_of_six_to_twelve_unpatterned_digits_is_accepted(pin: str) -> None:
    assert pin_problem(pin) is None
