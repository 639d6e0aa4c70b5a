"""The URL call-state codec as security input: what a webhook URL's state may say, and what of it
this code takes.

The seal (`ivr.signing`) proves a URL is ours; the codec still reads every field as hostile. Its
contract: `from_params` gives back exactly the state `to_params` wrote, and None for anything else
(the view then starts the call over: `test_webhooks`); parameters of other layers (`ref`, `sig`,
`hb`, ...) are not its business; `newer_state` says whether a newer release wrote the state, which
the view asks first (`test_state_versions`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from ivr.clock import epoch_ms
from ivr.flow.state import MAX_SINCE_MS, STATE_READS_UP_TO, CallState, Heard, newer_state

SATURDAY = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
CLOSED = CallState("closed", "en-US", "funds", "funds", 30)
HOLD = CallState("hold", "en-US", "funds", "funds", 30)
WRITTEN = {**HOLD.to_params()}
"""A hold state as this code writes it, to garble field by field."""


def test_a_state_is_written_with_only_the_fields_it_has() -> None:
    assert HOLD.to_params() == {
        "step": "hold",
        "tries": "0",
        "language": "en-US",
        "menu": "funds",
        "queue": "funds",
        "priority": "30",
    }


@pytest.mark.parametrize(
    "state",
    [
        CallState("language"),
        CallState("menu", "zh-CN", "account", tries=2),
        CLOSED,
        HOLD,
        replace(CLOSED, silent_since=epoch_ms(SATURDAY)),
        CallState("language", silent_since=0),
        replace(HOLD, since=MAX_SINCE_MS - 1, heard=Heard(3, 3, None, 10)),
        CallState("lock_code", "de-DE", "security", "security", 90, verification="v-1.a:b_c"),
        CallState("confirm", "fr-FR", "main", choice="22"),
        CallState("agent_line", stage="pin", agent="emma"),
        CallState("whisper", "en-US", "funds", "funds", 30, agent="a1", origin="CA" + "0" * 32),
        replace(HOLD, tries=10_000, priority=100),
    ],
)
def test_state_survives_the_round_trip_through_a_url(state: CallState) -> None:
    assert CallState.from_params(state.to_params()) == state


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"step": "nowhere"},
        {"step": "menu", "tries": "x"},
        {"step": "menu", "menu": "<script>"},
        {"step": "hold", "priority": "1000"},
        {"step": "menu", "tries": "-1"},
        {"step": "menu", "silent_since": "soon"},
        {"step": "menu", "silent_since": "-1"},
        {"step": "menu", "silent_since": "+1764000000000"},
        {"step": "menu", "silent_since": " 1764000000000"},
        {"step": "menu", "silent_since": "1_764_000_000_000"},
        {"step": "menu", "silent_since": "１７６４"},  # full-width digits
        {"step": "menu", "silent_since": "10000000000000"},  # past MAX_SINCE_MS
        {"step": "hold", "since": "1_764_000_000_000"},
    ],
)
def test_tampered_state_is_rejected(params: dict[str, str]) -> None:
    assert CallState.from_params(params) is None


@pytest.mark.parametrize(
    "garbled",
    [
        {"step": "hol"},  # cut short
        {"step": "HOLD"},
        {"step": ""},
        {"priority": "3x"},
        {"tries": "1.0"},
        {"language": "en US"},
        {"menu": "funds/../admin"},
        {"queue": "fünds"},
        {"verification": "v 1"},
        {"choice": "20"},  # 0 leads nowhere: it is the operator key
        {"choice": "2#"},
        {"heard": "3:3:3"},  # a field cut off
        {"heard": "3:3:3:3:3"},
        {"heard": "-1:3:3:10"},
        {"heard": " 3:3:3:10"},
        {"heard": "3:3:x:10"},
    ],
)
def test_a_garbled_or_truncated_field_makes_the_whole_state_not_ours(
    garbled: dict[str, str],
) -> None:
    assert CallState.from_params({**WRITTEN, **garbled}) is None


@pytest.mark.parametrize(
    "oversized",
    [
        {"menu": "m" * 65},
        {"language": "x" * 65},
        {"agent": "a" * 65},
        {"origin": "C" * 65},
        {"stage": "s" * 65},
        {"verification": "v" * 129},
        {"choice": "1" * 9},
        {"tries": "10001"},
        {"tries": "9" * 5000},  # past the digits Python converts: refused, not a crash
        {"priority": "101"},
        {"since": str(MAX_SINCE_MS)},
        {"heard": "123456:3:3:10"},
    ],
)
def test_an_oversized_field_makes_the_whole_state_not_ours(oversized: dict[str, str]) -> None:
    assert CallState.from_params({**WRITTEN, **oversized}) is None


def test_the_largest_values_this_code_writes_are_read_back() -> None:
    params = {
        **WRITTEN,
        "menu": "m" * 64,
        "verification": "v" * 128,
        "choice": "9" * 8,
        "tries": "10000",
        "priority": "100",
        "since": str(MAX_SINCE_MS - 1),
        "heard": "99999:99999:99999:99999",
    }
    state = CallState.from_params(params)
    assert state is not None and state.to_params() == params


def test_an_empty_field_is_an_absent_one() -> None:
    params = {**WRITTEN, "agent": "", "heard": "", "since": "", "priority": ""}
    assert CallState.from_params(params) == replace(HOLD, priority=None)


def test_parameters_of_other_layers_are_left_to_them() -> None:
    """The ticket reference, the seal, hand-backs, the rules version and an incident notice travel
    in the same query string: the state is read as if they were not there."""
    others = {"ref": "4821093", "sig": "1764000000.abc", "hb": "1", "rv": "7", "evil": "<script>"}
    assert CallState.from_params({**WRITTEN, **others}) == HOLD


def test_a_forged_or_garbled_heard_value_is_not_our_state() -> None:
    params = {**HOLD.to_params(), "heard": "3:3:x:10"}
    assert CallState.from_params(params) is None
    assert CallState.from_params({**HOLD.to_params(), "heard": "3:3:3:10"}) == replace(
        HOLD, heard=Heard(3, 3, 3, 10)
    )


@pytest.mark.parametrize(
    "loose",
    [
        {"tries": "+1"},
        {"tries": " 1"},
        {"tries": "1_0"},
        {"tries": "١"},  # an Arabic-Indic digit: int() reads it as 1
        {"priority": "+5"},
        {"priority": "5 "},
        {"language": "en-US\n"},  # a trailing newline, which a `$` pattern lets through
        {"menu": "funds\n"},
        {"verification": "v1\n"},
        {"choice": "22\n"},
    ],
)
def test_a_value_python_would_read_but_this_code_never_writes_is_refused(
    loose: dict[str, str],
) -> None:
    assert CallState.from_params({**WRITTEN, **loose}) is None


@pytest.mark.parametrize("heard", ["²:3:3:10", "3:3:3:١٠"])
def test_other_scripts_digits_in_heard_are_refused_not_a_crash(heard: str) -> None:
    assert CallState.from_params({**WRITTEN, "heard": heard}) is None


# --- a state a newer release wrote ---------------------------------------------------------------


@pytest.mark.parametrize("version", [str(STATE_READS_UP_TO + 1), "99999999999999999999"])
def test_a_higher_version_is_a_newer_releases_state(version: str) -> None:
    assert newer_state({**WRITTEN, "sv": version})


@pytest.mark.parametrize("version", ["", "1", "0", "x", "-2", " 2", "+2", "²", "２"])
def test_a_version_this_code_reads_or_no_number_at_all_is_not_newer(version: str) -> None:
    """Only a plain number above ours hands the call back; anything else is read as this code's
    own (and then stands or falls on its fields)."""
    assert not newer_state({**WRITTEN, "sv": version})


def test_a_step_this_code_does_not_know_is_a_newer_releases_state() -> None:
    assert newer_state({**WRITTEN, "step": "transfer_out"})
    assert newer_state({**WRITTEN, "step": ""})  # a step, but none this code knows
    assert not newer_state({"tries": "0"})  # no step at all: not a state, not a newer one
    assert CallState.from_params({**WRITTEN, "step": "transfer_out"}) is None


def test_the_codec_reads_a_newer_version_as_it_reads_any_other() -> None:
    """`sv` is for `newer_state` to judge: the view asks it first and never reads a newer state."""
    assert CallState.from_params({**WRITTEN, "sv": "2"}) == HOLD
