"""`ivr simulate` as QA uses it: one call, JSON records, many calls, a running server, bad input."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from ivr.cli import main
from ivr.simulator.caller import HangUp, Press, ScriptError, Silence, Speak, Wait, parse_script
from ivr.simulator.shared import parse_when
from tests.support import (
    AUTH_TOKEN,
    EXIT_READER_GONE,
    PROMPTS,
    RULES,
    STATE_SECRET,
    first_line_then_close,
    ivr_environment,
    write_rules,
)

MONDAY_NEW_YORK = "2026-11-23 10:00 America/New_York"


def simulate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    code = main(["simulate", "--rules", str(RULES), "--prompts", str(PROMPTS), *args])
    return code, capsys.readouterr().out.splitlines()


def test_one_call_prints_what_the_caller_hears_and_does_then_the_ticket(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, lines = simulate(capsys, "--at", MONDAY_NEW_YORK, "--keys", "2,6,1,w2,h")
    assert code == 0
    assert any(
        'hears     en-US Polly.Joanna: "Welcome to BitP customer support."' in line
        for line in lines
    )
    assert any("presses   presses 2" in line for line in lines)
    assert any("Our phone support is open Monday to Friday" in line for line in lines)
    assert any("hang-up   the caller hangs up" in line for line in lines)
    assert lines[-1].startswith("ticket ") and "outcome self_served" in lines[-1]
    assert "path language:2 > main:6 > self_service:1" in lines[-1]


def test_json_records_carry_the_same_facts(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = simulate(
        capsys, "--at", MONDAY_NEW_YORK, "--keys", "2,2,2,w1,4", "--agents", "emma", "--json"
    )
    assert code == 0
    records = [json.loads(line) for line in lines]
    kinds = {r["kind"] for r in records}
    assert {"say", "press", "queue", "dial", "agent", "status", "ticket"} <= kinds
    first = next(r for r in records if r["kind"] == "say")
    assert first["language"] == "en-US" and first["voice"] == "Polly.Joanna"
    assert first["prompt"] == "greeting"
    ticket = records[-1]
    assert (ticket["outcome"], ticket["agent"], ticket["satisfaction"]) == ("answered", "emma", 4)


def test_christmas_morning_in_berlin_hears_the_team_is_closed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, lines = simulate(
        capsys,
        "--at",
        "2026-12-25 09:00 Europe/Berlin",
        "--from",
        "+4930123456",
        "--keys",
        "4,2,2,1,r8",
    )
    assert code == 0
    assert any(
        "Montag, 28. Dezember um 08:00" in line for line in lines
    )  # 25th and 26th are holidays
    assert "outcome voicemail" in lines[-1]


def test_a_silent_caller_after_hours_is_let_go_once_the_silence_limit_has_passed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The issue's call: funds, withdrawal, at night, then nothing. It went round menu -> empty
    # voicemail -> menu until the simulator's 30-minute limit (24 empty recordings); now the
    # caller hears why and goodbye at the first silence past silence_limit (300 s), and the
    # ticket, written through the journal like any other, says so.
    code, lines = simulate(
        capsys, "--at", "2026-11-24 22:00 America/New_York", "--keys", "2,2,2", "--json"
    )
    assert code == 0
    records = [json.loads(line) for line in lines]
    last_key = max(r["at"] for r in records if r["kind"] == "press")
    said = [r for r in records if r["kind"] == "say"]
    assert [r["prompt"] for r in said[-2:]] == ["silence_goodbye", "goodbye"]
    assert {r["language"] for r in said[-2:]} == {"en-US"}
    [hangup] = [r for r in records if r["kind"] == "hangup"]
    assert hangup["text"] == "the service hangs up"
    assert 300 <= hangup["at"] - last_key <= 360
    empty = [r for r in records if r["kind"] == "record" and r["text"].startswith("nothing")]
    assert 1 <= len(empty) <= 4
    assert records[-1]["kind"] == "ticket"
    assert (records[-1]["outcome"], records[-1]["issue"]) == ("no_input", "withdrawal")


def test_many_calls_print_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = simulate(
        capsys,
        "--at",
        MONDAY_NEW_YORK,
        "--calls",
        "12",
        "--agents",
        "emma,li_wei",
        "--keys",
        "2,2,2|2,0|2,6,1",
        "--agent-talks",
        "120",
    )
    assert code == 0
    text = "\n".join(lines)
    assert text.startswith("12 calls: ")
    assert "reached an agent: " in text and "errors: 0" in text
    positions = next(line for line in lines if line.startswith("positions heard: "))
    assert "1" in positions.split(": ")[1].split(", ")


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> Iterator[str]:
    """The real app behind a real HTTP server on a free local port."""
    from ivr import create_app
    from ivr.config import Settings

    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/server.sqlite3",
        twilio_auth_token=AUTH_TOKEN,
        routing_rules=RULES,
        voice_prompts=PROMPTS,
        spool_dir=Path(str(tmp_path)) / "spool",
        state_secrets=(STATE_SECRET,),
    )
    app = create_app(settings)
    from ivr.services import services

    with app.app_context():
        services().db.upgrade()
        background = services().background
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    if background is not None:
        background.stop()


def test_url_mode_signs_requests_the_server_accepts(
    server: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    code, lines = simulate(capsys, "--url", server, "--keys", "2,6,2,h")
    assert code == 0
    assert any("support@bitp.example" in line for line in lines)
    assert "not visible over --url" in lines[-1]


def test_url_mode_with_the_wrong_token_is_refused_and_says_so(
    server: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "not-the-token")
    code = main(["simulate", "--url", server, "--keys", "2"])
    out, err = capsys.readouterr()
    assert code == 1
    assert any("ERROR" in line and "HTTP 403" in line for line in out.splitlines())
    assert err == (
        "ivr simulate: the server refused the signed requests (HTTP 403): TWILIO_AUTH_TOKEN is "
        "not its auth token, or it checks signatures against another URL (its PUBLIC_BASE_URL)\n"
    )


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`ivr serve --dev` (gunicorn) on a free port, as the README starts it: no auth token."""
    from tests.instances import Instance

    folder = tmp_path_factory.mktemp("dev-server")
    env = ivr_environment(
        IVR_DEV_MODE="1",  # what `ivr serve --dev` sets
        DATABASE_URL=f"sqlite:///{folder}/dev.sqlite3",
        IVR_SPOOL_DIR=str(folder / "spool"),
        IVR_SECRET=STATE_SECRET,
    )
    env.pop("TWILIO_AUTH_TOKEN", None)
    instance = Instance.start(env, folder / "serve.log")
    try:
        instance.wait_ready()
        yield f"http://127.0.0.1:{instance.port}"
    finally:
        instance.stop()


def test_url_mode_without_a_token_calls_a_development_server_unsigned(
    dev_server: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    code = main(["simulate", "--url", dev_server, "--keys", "2,6,2,h"])
    out, err = capsys.readouterr()
    assert code == 0, out
    assert "support@bitp.example" in out
    assert err == (
        "ivr simulate: TWILIO_AUTH_TOKEN is not set, so requests go unsigned: only a development "
        "server (ivr serve --dev) accepts them\n"
    )


def test_url_mode_without_a_token_against_a_server_that_checks_says_a_token_is_needed(
    server: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    code = main(["simulate", "--url", server, "--keys", "2"])
    out, err = capsys.readouterr()
    assert code == 1
    assert any("ERROR" in line and "HTTP 403" in line for line in out.splitlines())
    assert err.splitlines()[-1] == (
        "ivr simulate: the server refused the unsigned requests (HTTP 403): it checks Twilio's "
        "signature, so set TWILIO_AUTH_TOKEN to its auth token"
    )


def test_a_bad_caller_script_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["simulate", "--keys", "2,x9"])
    assert code == 2
    assert "'x9' is not a key" in capsys.readouterr().err


def test_interactive_mode_asks_at_each_menu(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter(["2", "6", "3", "h"])
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    code, lines = simulate(capsys, "--at", MONDAY_NEW_YORK, "--interactive")
    assert code == 0
    assert any("Before you contact us, please have ready" in line for line in lines)


@pytest.mark.parametrize(
    ("script", "steps"),
    [
        ("2, w10 ,1", [Press("2"), Wait(10), Press("1")]),
        ("t,r12,h30,h", [Silence(), Speak(12), HangUp(30), HangUp(0)]),
        ("104#", [Press("104#")]),
    ],
)
def test_caller_scripts(script: str, steps: list[object]) -> None:
    assert parse_script(script) == steps


@pytest.mark.parametrize("script", ["x", "w", "r", "2a", "h-1"])
def test_bad_caller_scripts(script: str) -> None:
    with pytest.raises(ScriptError):
        parse_script(script)


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2026-12-25T09:00+01:00", "2026-12-25T08:00:00+00:00"),
        ("2026-12-25T09:00Z", "2026-12-25T09:00:00+00:00"),
        ("2026-12-25 09:00 Europe/Berlin", "2026-12-25T08:00:00+00:00"),
        ("2026-07-01 19:59 Europe/Berlin", "2026-07-01T17:59:00+00:00"),
    ],
)
def test_when_a_call_happens(text: str, iso: str) -> None:
    assert parse_when(text).isoformat() == iso


def test_the_summary_agrees_with_the_tickets_including_callbacks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, lines = simulate(
        capsys,
        "--at",
        MONDAY_NEW_YORK,
        "--calls",
        "20",
        "--agents",
        "emma",
        "--keys",
        "2,2,2,2|2,2,2",
        "--agent-talks",
        "90",
        "--json",
    )
    assert code == 0
    summary = json.loads(lines[-1])
    assert summary["callbacks_placed"] > 0  # some callers asked to be called back (hold key 2)
    reached = summary["answered_while_holding"] + summary["answered_by_callback"]
    assert reached == summary["outcomes"].get("answered", 0)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "tomorrow",
            "'tomorrow' is not a date and time; write e.g. '2026-12-25 09:00 Europe/Berlin'",
        ),
        ("2026-13-01 09:00 Europe/Berlin", "is not a date and time"),
        ("2026-12-25 09:00 Mars/Base", "unknown time zone 'Mars/Base'"),
        ("2026-12-25T09:00+01:00 Europe/Berlin", "has an offset and a zone: give only one"),
    ],
)
def test_a_time_that_cannot_be_read_is_refused_saying_what_to_write(text: str, says: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_when(text)
    assert says in str(refused.value)


@pytest.mark.parametrize("text", ["2026-12-25 09:00", "2026-12-25T09:00", "2026-12-25"])
def test_a_time_without_a_zone_is_refused_not_read_as_utc(text: str) -> None:
    """Teams open by their own clock: a guessed zone would simulate another hour than meant."""
    with pytest.raises(ValueError) as refused:
        parse_when(text)
    assert "has no time zone; write e.g. '2026-12-25 09:00 Europe/Berlin'" in str(refused.value)


def test_a_wall_clock_time_skipped_by_daylight_saving_is_refused_naming_the_change() -> None:
    with pytest.raises(ValueError) as refused:
        parse_when("2026-03-29 02:30 Europe/Berlin")
    assert str(refused.value) == (
        "2026-03-29 02:30 does not exist in Europe/Berlin: clocks go forward from UTC+01:00 to "
        "UTC+02:00 on 2026-03-29 (daylight saving time), so that wall-clock time is skipped; "
        "pick a time outside the gap"
    )


def test_a_wall_clock_time_repeated_by_daylight_saving_is_refused_with_both_offsets() -> None:
    with pytest.raises(ValueError) as refused:
        parse_when("2026-11-01 01:30 America/New_York")
    message = str(refused.value)
    assert (
        "happens twice in America/New_York: clocks go back from UTC-04:00 to UTC-05:00" in message
    )
    assert "2026-11-01T01:30-04:00 (the first) or 2026-11-01T01:30-05:00 (the second)" in message
    # Either offset, as suggested, is then read as the instant it names.
    assert parse_when("2026-11-01T01:30-05:00").isoformat() == "2026-11-01T06:30:00+00:00"


@pytest.mark.parametrize(
    ("at", "says"),
    [
        ("next monday", "'next monday' is not a date and time"),
        ("2026-12-25 09:00", "has no time zone"),
        ("2026-03-29 02:30 Europe/Berlin", "does not exist in Europe/Berlin: clocks go forward"),
    ],
)
def test_simulate_at_answers_bad_input_with_a_message_and_exit_code_2(
    capsys: pytest.CaptureFixture[str], at: str, says: str
) -> None:
    code = main(["simulate", "--rules", str(RULES), "--prompts", str(PROMPTS), "--at", at])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("ivr simulate: ") and says in err and "Traceback" not in err


def test_the_summary_breaks_down_by_script_and_queue_with_waits_and_self_service(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, lines = simulate(
        capsys,
        "--at",
        MONDAY_NEW_YORK,
        "--calls",
        "8",
        "--agents",
        "emma",
        "--keys",
        "2,2,2|2,6,1,w2,h",
        "--agent-talks",
        "60",
        "--json",
    )
    assert code == 0
    summary = json.loads(lines[-1])
    by_script = summary["by_script"]
    assert set(by_script) == {"2,2,2", "2,6,1,w2,h"}
    # The callers who heard a self-service answer and hung up are self-served, none abandoned.
    assert by_script["2,6,1,w2,h"] == {"self_served": by_script["2,6,1,w2,h"]["self_served"]}
    assert sum(by_script["2,2,2"].values()) == summary["by_queue"]["funds"]
    waits = summary["wait_seconds"]
    assert waits["count"] == summary["by_queue"]["funds"] and waits["max"] >= waits["median"] >= 0
    assert summary["turned_away_queue_full"] == 0


def test_callers_turned_away_by_a_full_queue_are_counted_apart(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rules, _ = write_rules(
        tmp_path, ("    priority: 30\n", "    priority: 30\n    max_length: 2\n")
    )
    options = ["--calls", "6", "--spread", "1", "--keys", "2,2,2", "--hangup-after", "120"]
    code = main(
        [
            "simulate",
            "--rules",
            str(rules),
            "--prompts",
            str(PROMPTS),
            "--at",
            MONDAY_NEW_YORK,
            *options,
        ]
    )
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    # Nobody is logged in, so the first two stay in line and every later caller finds it full.
    assert "turned away (queue full): 4" in lines
    assert any(line.startswith("  script 2,2,2: ") for line in lines)
    assert any(line.startswith("by queue: funds 6") for line in lines)


def test_retries_resend_each_webhook_and_the_ticket_counts_each_step_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, lines = simulate(
        capsys, "--at", MONDAY_NEW_YORK, "--keys", "2,6,1,w2,h", "--retries", "2"
    )
    assert code == 0
    assert sum("Twilio retries POST /voice/input" in line for line in lines) == 6  # 3 keys, 2 each
    assert (
        lines[-1].startswith("ticket ")
        and "path language:2 > main:6 > self_service:1," in lines[-1]
    )


def test_a_public_url_the_app_is_not_told_of_fails_every_signature_and_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    public = ("--public-url", "https://ivr.example.com")
    code, lines = simulate(capsys, "--at", MONDAY_NEW_YORK, "--keys", "2,h", *public)
    assert code == 0  # a proxy that forwards the public scheme and host: the call goes through
    code, lines = simulate(
        capsys, "--at", MONDAY_NEW_YORK, "--keys", "2,h", *public, "--proxy-hides-host"
    )
    assert code == 1
    assert any("ERROR" in line and "answered HTTP 403" in line for line in lines)


def test_a_transcript_read_by_head_ends_quietly(tmp_path: Path) -> None:
    line, status, err = first_line_then_close(
        "simulate",
        "--rules",
        str(RULES),
        "--prompts",
        str(PROMPTS),
        "--at",
        MONDAY_NEW_YORK,
        "--keys",
        "2,2,2,w3600",  # half an hour on hold (the call's limit) and every request: a long transcript
        "--verbose",
        cwd=tmp_path,
    )
    assert "request   POST /voice/incoming" in line
    assert status == EXIT_READER_GONE
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def test_say_speaks_at_the_listening_menu_and_the_ticket_has_the_issue(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, lines = simulate(
        capsys, "--at", MONDAY_NEW_YORK, "--keys", "2,s", "--say", "my withdrawal never arrived",
        "--hangup-after", "120",
    )  # fmt: skip
    assert code == 0
    assert any(
        'says "my withdrawal never arrived" (en-US, confidence 0.9)' in line for line in lines
    )
    assert "issue withdrawal, queue funds" in lines[-1]


def test_low_speech_confidence_asks_once(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = simulate(
        capsys, "--at", MONDAY_NEW_YORK, "--keys", "2,s", "--say", "my withdrawal never arrived",
        "--speech-confidence", "0.4", "--hangup-after", "80",
    )  # fmt: skip
    assert code == 0
    assert any("You want help with a withdrawal. Press 1" in line for line in lines)


@pytest.mark.parametrize(
    ("keys", "said"),
    [("2,s", []), ("2,s,s", ["one"]), ("2", ["left over"]), ("2,s", [" "])],
)
def test_s_and_say_must_match_or_it_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], keys: str, said: list[str]
) -> None:
    options = [item for text in said for item in ("--say", text)]
    code, _ = simulate(capsys, "--at", MONDAY_NEW_YORK, "--keys", keys, *options)
    assert code == 2
