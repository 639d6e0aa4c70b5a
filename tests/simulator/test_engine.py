"""The simulator's TwiML interpreter against hand-written TwiML: each verb's edge cases as Twilio
documents them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import pytest

from ivr.simulator.caller import ScriptedCaller, parse_script
from ivr.simulator.engine import AgentBehaviour, Reply, SimulatedCall, Simulator
from ivr.simulator.session import sign

START = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
Page = str | Callable[[dict[str, str]], str] | Reply


@dataclass
class Pages:
    """A pretend app: TwiML per path, and every request Twilio's stand-in made to it."""

    pages: dict[str, Page]
    base_url: str = "http://app.test"
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    def send(
        self, method: str, url: str, params: dict[str, str], headers: dict[str, str] | None = None
    ) -> Reply:
        parts = urlsplit(url)
        self.requests.append((method, parts.path, {**dict(parse_qsl(parts.query)), **params}))
        self.headers.append(dict(headers or {}))
        page = self.pages.get(parts.path, "<Response><Hangup/></Response>")
        if isinstance(page, Reply):
            return page
        body = page(params) if callable(page) else page
        return Reply(200, "text/xml", body.encode(), 0.01)

    def posted(self, path: str) -> list[dict[str, str]]:
        return [p for _, request_path, p in self.requests if request_path == path]


def call_with(
    pages: dict[str, Page], keys: str = "", hangup_after: float | None = None, **options: object
) -> tuple[SimulatedCall, Pages, Simulator]:
    app = Pages(pages)
    sim = Simulator(app, START, **options)  # type: ignore[arg-type]
    caller = ScriptedCaller(parse_script(keys))
    call = sim.place_call(
        "+14155550100", "+18005550199", caller, start_path="/start", hangup_after=hangup_after
    )
    sim.run()
    return call, app, sim


GATHER = (
    '<Response><Gather action="/menu" numDigits="1"><Say>Press 1.</Say></Gather>'
    "<Say>Nothing pressed.</Say><Redirect>/again</Redirect></Response>"
)


def test_a_gather_that_hears_nothing_falls_through_to_the_next_verb() -> None:
    call, app, _ = call_with({"/start": GATHER}, keys="t")
    assert app.posted("/menu") == []
    assert call.heard == ["Press 1.", "Nothing pressed."]
    assert app.posted("/again")


def test_action_on_empty_result_posts_empty_digits() -> None:
    twiml = '<Response><Gather action="/menu" actionOnEmptyResult="true"><Say>Hi</Say></Gather></Response>'
    _, app, _ = call_with({"/start": twiml}, keys="t")
    assert app.posted("/menu")[0]["Digits"] == ""


@pytest.mark.parametrize(
    ("attributes", "keys", "digits", "finished_on"),
    [
        ('numDigits="1"', "12", "1", ""),
        ("", "104#", "104", "#"),
        ('finishOnKey=""', "#", "#", ""),
        ("", "104", "104", ""),  # no # and no numDigits: submitted when the time-out passes
    ],
)
def test_gather_collects_digits_like_twilio(
    attributes: str, keys: str, digits: str, finished_on: str
) -> None:
    twiml = f'<Response><Gather action="/menu" {attributes}><Say>Hi</Say></Gather></Response>'
    _, app, _ = call_with({"/start": twiml}, keys=keys)
    [posted] = app.posted("/menu")
    assert (posted["Digits"], posted["FinishedOnKey"]) == (digits, finished_on)


def test_gather_time_out_is_waited_after_the_prompts() -> None:
    twiml = (
        '<Response><Gather action="/menu" timeout="7"><Say>Hi</Say></Gather><Hangup/></Response>'
    )
    call, _, _ = call_with({"/start": twiml}, keys="t")
    hangup = next(r for r in call.records if r.kind == "hangup")
    assert hangup.at == pytest.approx(1.0 + 7.0)  # one second of speech, then the time-out


def test_redirect_with_get_sends_the_fields_in_the_query() -> None:
    twiml = '<Response><Redirect method="GET">/next?a=1</Redirect></Response>'
    _, app, _ = call_with({"/start": twiml})
    method, path, params = app.requests[1]
    assert (method, path, params["a"], params["CallSid"]) == (
        "GET",
        "/next",
        "1",
        app.requests[0][2]["CallSid"],
    )


def test_relative_urls_resolve_against_the_current_document() -> None:
    _, app, _ = call_with(
        {
            "/start": "<Response><Redirect>/voice/a</Redirect></Response>",
            "/voice/a": "<Response><Redirect>b</Redirect></Response>",
        }
    )
    assert [path for _, path, _ in app.requests][:3] == ["/start", "/voice/a", "/voice/b"]


def test_first_request_is_ringing_then_in_progress_with_twilios_fields() -> None:
    _, app, _ = call_with({"/start": "<Response><Redirect>/next</Redirect></Response>"})
    first, second = app.requests[0][2], app.requests[1][2]
    assert first["CallStatus"] == "ringing" and second["CallStatus"] == "in-progress"
    for name in ("AccountSid", "CallSid", "From", "To", "Direction", "ApiVersion"):
        assert name in first
    assert first["Direction"] == "inbound" and first["From"] == "+14155550100"


def test_record_posts_the_recording_to_its_action() -> None:
    twiml = '<Response><Record action="/saved" maxLength="30"/><Say>No message.</Say></Response>'
    call, app, _ = call_with({"/start": twiml}, keys="r12")
    [posted] = app.posted("/saved")
    assert posted["RecordingDuration"] == "12" and posted["RecordingUrl"].startswith("https://")
    assert "No message." not in call.heard


def test_record_with_nothing_said_skips_the_action_and_goes_on() -> None:
    twiml = '<Response><Record action="/saved"/><Say>No message.</Say></Response>'
    call, app, _ = call_with({"/start": twiml})
    assert app.posted("/saved") == [] and "No message." in call.heard


def test_record_is_cut_at_max_length() -> None:
    twiml = '<Response><Record action="/saved" maxLength="10"/></Response>'
    _, app, _ = call_with({"/start": twiml}, keys="r60")
    assert app.posted("/saved")[0]["RecordingDuration"] == "10"


DIAL = (
    '<Response><Dial action="/after" timeout="20">'
    '<Number url="/whisper">+4930000000104</Number></Dial></Response>'
)


def test_dial_runs_the_whisper_on_the_agents_leg_then_reports_the_conversation() -> None:
    pages: dict[str, Page] = {
        "/start": DIAL,
        "/whisper": "<Response><Say>Call for you</Say></Response>",
    }
    call, app, _ = call_with(pages, agent=AgentBehaviour(answer_after=4, talk_seconds=90))
    [whisper] = app.posted("/whisper")
    assert whisper["ParentCallSid"] == call.sid and whisper["CallSid"] != call.sid
    [after] = app.posted("/after")
    # Our model: the agent's leg lasts from its answer to its hang-up, so DialCallDuration is the
    # whisper ("Call for you": 1.2 s at 2.5 words a second) and the 90 s of conversation.
    assert (after["DialCallStatus"], after["DialCallDuration"]) == ("completed", "91")
    assert call.reached_agent
    # The caller's wait ends when the agent picks up, as the line measures it; they are put
    # through once the agent has heard the whisper.
    assert call.answered_at is not None and call.connected_at is not None
    assert call.connected_at - call.answered_at == pytest.approx(1.2)


def test_dial_that_nobody_answers_reports_no_answer_after_its_timeout() -> None:
    call, app, _ = call_with({"/start": DIAL}, agent=AgentBehaviour(answers=False))
    [after] = app.posted("/after")
    assert after["DialCallStatus"] == "no-answer" and not call.reached_agent


def test_a_caller_hanging_up_mid_conversation_still_gets_the_dial_action_then_status() -> None:
    pages: dict[str, Page] = {"/start": DIAL, "/whisper": "<Response/>"}
    _, app, _ = call_with(pages, hangup_after=30, agent=AgentBehaviour(talk_seconds=300))
    [after] = app.posted("/after")
    assert after["CallStatus"] == "completed"


ENQUEUE = (
    '<Response><Enqueue waitUrl="/wait" action="/left">support</Enqueue>'
    "<Say>not reached</Say></Response>"
)


def test_enqueue_loops_its_wait_url_with_queue_fields_until_leave() -> None:
    rounds: list[dict[str, str]] = []

    def wait(params: dict[str, str]) -> str:
        rounds.append(params)
        if len(rounds) < 3:
            return '<Response><Say>Please wait.</Say><Pause length="10"/></Response>'
        return "<Response><Leave/></Response>"

    _, app, _ = call_with({"/start": ENQUEUE, "/wait": wait})
    assert len(rounds) == 3
    assert rounds[0]["QueuePosition"] == "1" and rounds[0]["CurrentQueueSize"] == "1"
    assert int(rounds[2]["QueueTime"]) > int(rounds[0]["QueueTime"])
    assert "AvgQueueTime" in rounds[0]
    [left] = app.posted("/left")
    assert left["QueueResult"] == "leave"


def test_hanging_up_in_a_queue_reports_hangup_to_the_enqueue_action() -> None:
    wait = "<Response><Play>http://music.test/a.mp3</Play></Response>"
    _, app, _ = call_with({"/start": ENQUEUE, "/wait": wait}, hangup_after=45)
    assert app.posted("/left")[0]["QueueResult"] == "hangup"


def test_the_status_callback_is_posted_when_the_call_ends() -> None:
    app = Pages({"/start": "<Response><Say>Bye</Say><Hangup/></Response>"})
    sim = Simulator(app, START)
    sim.place_call("+1", "+2", ScriptedCaller([]), start_path="/start", status_path="/status")
    sim.run()
    [status] = app.posted("/status")
    assert status["CallStatus"] == "completed" and status["CallDuration"] == "1"


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(500, "text/plain", b"boom", 0.1), "HTTP 500"),
        (Reply(200, "text/xml", b"<Response><Say>x</Say></Response>", 16.0), "15 s"),
        (Reply(200, "text/xml", b"not xml", 0.1), "/start"),
    ],
)
def test_what_twilio_would_refuse_ends_the_call_with_the_reason(reply: Reply, message: str) -> None:
    call, _, _ = call_with({"/start": reply})
    assert call.errors and message in call.errors[0]


def test_a_rest_redirect_interrupts_hold_music_at_once() -> None:
    music = '<Response><Play loop="0">http://music.test/a.mp3</Play></Response>'
    app = Pages({"/start": music, "/moved": "<Response><Say>Moved</Say><Hangup/></Response>"})
    sim = Simulator(app, START)
    call = sim.place_call("+1", "+2", ScriptedCaller([]), start_path="/start")
    other = sim.place_call("+3", "+2", ScriptedCaller([]), at=20, start_path="/other")
    app.pages["/other"] = lambda params: (
        (sim.redirect(call.sid, "http://app.test/moved") and "<Response/>") or ""
    )
    sim.run()
    moved = next(r for r in call.records if r.kind == "redirect")
    assert moved.at == pytest.approx(20.0)
    assert "Moved" in call.heard and other.ended


def test_simulator_signatures_match_twilios_published_example() -> None:
    """Twilio's published request-validation example, as Twilio's helper libraries test it
    (twilio/twilio-python, tests/unit/test_request_validator.py): auth token 12345, this URL and form give
    RSOYDt4T1cUTdK1PDd93/VVr8B8=. Not found on the stored "Webhooks security" page itself
    (https://www.twilio.com/docs/usage/webhooks/webhooks-security), which says: "Twilio hashes
    the signature with the HMAC-SHA1 hashing algorithm using your account auth token as the secret
    key." A value computed elsewhere, not by the validator the app uses, so a wrong signing scheme
    fails here."""
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    assert sign("12345", url, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert sign("12345", url, {**params, "Digits": "1235"}) != "RSOYDt4T1cUTdK1PDd93/VVr8B8="
