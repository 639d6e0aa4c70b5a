"""The exchange hook in simulations: `--exchange`, a scenario's `exchange:`, and the script's `code`."""

from __future__ import annotations

import pytest

from ivr.clock import FrozenClock
from ivr.simulator.caller import KeyCode, Press, ScriptedCaller, Silence, parse_script
from ivr.simulator.exchange import parse_exchange, simulated_exchange
from tests.conftest import MONDAY_AFTERNOON
from tests.simulator.test_cli import simulate


def test_the_exchange_option_names_numbers_their_language_tier_and_channel() -> None:
    setup = parse_exchange(["known=+4915112345678@de-DE,+14155550123:vip:sms", "slow"])
    first, second = setup.known
    assert (first.number, first.language, first.tier, first.channel) == (
        "+4915112345678",
        "de-DE",
        "standard",
        "app",
    )
    assert (second.language, second.tier, second.channel) == (None, "vip", "sms")
    assert setup.mode == "slow"


@pytest.mark.parametrize(
    "spec", ["+4915112345678", "known=4915112345678", "known=+49151@german", "sometimes"]
)
def test_a_bad_exchange_option_says_what_it_should_look_like(spec: str) -> None:
    with pytest.raises(ValueError, match="known="):
        parse_exchange([spec])


def test_the_script_keys_the_code_the_exchange_sent_to_this_caller() -> None:
    assert parse_script("3,code") == [Press("3"), KeyCode()]
    setup = parse_exchange(["known=+4915112345678"])
    client, reference = simulated_exchange(setup, FrozenClock(MONDAY_AFTERNOON))
    account = client.lookup("+4915112345678", "CA" + "1" * 32)
    assert account is not None
    sent = client.start_verification(account.account, "CA" + "1" * 32)
    assert sent is not None and sent.channel == "app"
    code = reference.codes_sent[account.account]
    caller = ScriptedCaller([KeyCode(), KeyCode()], lambda: code)
    assert caller.next_step("menu", []) == Press(code)
    assert ScriptedCaller([KeyCode()], lambda: None).next_step("menu", []) == Silence()


def test_a_down_or_slow_exchange_does_not_answer() -> None:
    for mode in ("down", "slow"):
        client, _ = simulated_exchange(
            parse_exchange(["known=+4915112345678", mode]), FrozenClock(MONDAY_AFTERNOON)
        )
        assert client.lookup("+4915112345678", "CA" + "1" * 32) is None


def test_simulate_with_an_exchange_locks_a_known_callers_account(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, lines = simulate(
        capsys,
        "--at",
        "2026-11-25 03:00 UTC",
        "--from",
        "+4915112345678",
        "--exchange",
        "known=+4915112345678",
        "--keys",
        "3,1,1,code",
        "--hangup-after",
        "150",
    )
    assert code == 0
    last = lines[-1]
    assert "account acct-4915112345678" in last and "verified by a code to the app" in last
    assert "account locked" in last
