"""The interpreter against Twilio's TwiML pages, one behaviour per test, each quoting the sentence of
the documentation it follows: timing of prompts, keys and time-outs, <Record>, queues, the whisper,
voices and audio, and what Twilio does to webhooks (retries, late status callbacks)."""

from __future__ import annotations

import pytest

from ivr.simulator.caller import ScriptedCaller, Utter, parse_script
from ivr.simulator.engine import (
    AgentBehaviour,
    Reply,
    SimulatedCall,
    Simulator,
    speaking_seconds,
)
from ivr.simulator.twiml import TwimlError, parse_twiml
from ivr.voices import BUILT_IN
from tests.simulator.test_engine import START, Page, Pages, call_with

MUSIC = "http://music.test/strings.mp3"
HOLD = (
    '<Response><Gather action="/key" numDigits="1" finishOnKey="" timeout="1">'
    f"<Say>You are number one.</Say><Play>{MUSIC}</Play></Gather>"
    "<Redirect>/hold</Redirect></Response>"
)


def at(call: object, kind: str, text: str = "") -> list[float]:
    return [r.at for r in call.records if r.kind == kind and text in r.text]  # type: ignore[attr-defined]


# --- <Gather>: prompts, keys and the time-out -----------------------------------------------------


def test_a_key_interrupts_the_prompt_nested_in_a_gather() -> None:
    """Twilio's <Gather> page: "When a <Gather> contains nested <Say> or <Play> verbs, the timeout
    begins either after the audio completes or when the caller presses their first key."
    (https://www.twilio.com/docs/voice/twiml/gather)"""
    long_menu = " ".join(["word"] * 50)  # 20 s of speech
    twiml = (
        f'<Response><Gather action="/menu" numDigits="1"><Say>{long_menu}</Say></Gather></Response>'
    )
    call, app, _ = call_with({"/start": twiml}, keys="w3,1")
    [posted] = app.posted("/menu")
    assert posted["Digits"] == "1"
    [request] = [r for r in call.records if r.kind == "request" and r.text.endswith("/menu")]
    assert request.at == pytest.approx(3.0)  # not after the 20 s of the prompt
    assert at(call, "interrupted")


def test_a_play_lasts_as_long_as_its_audio_so_hold_rounds_follow_the_clip() -> None:
    """Twilio's <Play> page: "The <Play> verb plays an audio file back to the caller."
    (https://www.twilio.com/docs/voice/twiml/play) A round of a 240 s clip lasts 240 s, not a
    fixed 30 s: the position is heard once per clip."""
    call, _, _ = call_with(
        {"/start": "<Response><Redirect>/hold</Redirect></Response>", "/hold": HOLD},
        hangup_after=600,
        clips={MUSIC: 240.0},
    )
    rounds = at(call, "say", "number one")
    assert len(rounds) == 3
    assert rounds[1] - rounds[0] == pytest.approx(240 + 1.6 + 1, abs=0.5)


def test_a_wait_while_holding_lets_the_hold_rounds_go_on() -> None:
    """Twilio's <Gather> page: "The timeout attribute specifies how long Twilio should wait for the
    caller provide input on the call. This includes either pressing another digit or saying another
    word." (https://www.twilio.com/docs/voice/twiml/gather)
    A caller who waits 100 s hears the rounds go on (1 s time-out each), then their key cuts the
    music."""
    call, app, _ = call_with(
        {"/start": "<Response><Redirect>/hold</Redirect></Response>", "/hold": HOLD},
        keys="w100,2",
        clips={MUSIC: 20.0},
    )
    assert len(at(call, "say", "number one")) >= 4  # rounds were heard during the wait
    [key] = app.posted("/key")
    assert key["Digits"] == "2"
    [request] = [r for r in call.records if r.kind == "request" and r.text.endswith("/key")]
    assert request.at == pytest.approx(100.0)


def test_waits_at_a_menu_do_not_add_up_past_its_timeout() -> None:
    """Twilio's <Gather> page: "When Twilio executes this TwiML, it will pause for up to five seconds
    to wait for the caller to enter digits on their keypad."
    (https://www.twilio.com/docs/api_reference/TwiML/gather) After 4 s and 4 s of waiting, the menu
    has timed out at 5 s; the key goes to what follows."""
    twiml = '<Response><Gather action="/menu" timeout="5"/><Redirect>/again</Redirect></Response>'
    again = '<Response><Gather action="/second" numDigits="1" timeout="5"/></Response>'
    _, app, _ = call_with({"/start": twiml, "/again": again}, keys="w4,w4,1")
    assert app.posted("/menu") == []
    assert app.posted("/second")[0]["Digits"] == "1"


def test_gather_finish_on_key_is_one_key() -> None:
    """Twilio's <Gather> page lists finishOnKey's values as "0-9, #, *, and '' (the empty string)"
    (https://www.twilio.com/docs/voice/twiml/gather): one key. Its <Record> page: "Unlike <Gather>,
    you may specify more than one character as a finishOnKey value."
    (https://www.twilio.com/docs/voice/twiml/record)"""
    with pytest.raises(TwimlError, match="one key"):
        parse_twiml('<Response><Gather finishOnKey="#*"/></Response>')
    parse_twiml('<Response><Record finishOnKey="#*"/></Response>')


def test_say_loop_zero_repeats_until_a_key() -> None:
    """Twilio's <Say> page: "Specifying 0 will cause the <Say> verb to loop until either the call is
    hung up or 1,000 iterations are performed." (https://www.twilio.com/docs/voice/twiml/say) In a
    <Gather> a key ends it. It is not played once."""
    twiml = (
        '<Response><Gather action="/menu" numDigits="1">'
        '<Say loop="0">Press a key.</Say></Gather></Response>'
    )
    call, _, _ = call_with({"/start": twiml}, keys="w60,3")
    [request] = [r for r in call.records if r.kind == "request" and r.text.endswith("/menu")]
    assert request.at == pytest.approx(60.0)


# --- <Record> ---------------------------------------------------------------------------------------


def test_a_caller_who_speaks_then_hangs_up_still_leaves_a_recording() -> None:
    """Twilio's <Record> page: Digits is "The key (if any) pressed to end the recording, or hangup
    if the caller hung up." (https://www.twilio.com/docs/voice/twiml/record)
    The action URL is requested with the recording."""
    twiml = '<Response><Record action="/saved"/><Say>Thanks.</Say></Response>'
    call, app, _ = call_with({"/start": twiml}, keys="r12,h")
    [posted] = app.posted("/saved")
    assert (posted["Digits"], posted["RecordingDuration"]) == ("hangup", "12")
    assert "Thanks." not in call.heard and call.ended


def test_speech_ended_by_silence_posts_no_invented_key() -> None:
    """Twilio's <Record> page: "The timeout attribute tells Twilio to end the recording after a
    number of seconds of silence has passed." "The default is 5 seconds."
    (https://www.twilio.com/docs/voice/twiml/record) With finishOnKey="*" and no key pressed there
    is no key to report."""
    twiml = '<Response><Record action="/saved" finishOnKey="*"/></Response>'
    call, app, _ = call_with({"/start": twiml}, keys="r8")
    [posted] = app.posted("/saved")
    assert "Digits" not in posted and posted["RecordingDuration"] == "8"
    [request] = [r for r in call.records if r.kind == "request" and r.text.endswith("/saved")]
    assert request.at == pytest.approx(8 + 5)


def test_the_finishing_key_ends_a_recording() -> None:
    """Twilio's <Record> page: "The finishOnKey attribute lets you choose a set of digits that, when
    entered, end the recording." (https://www.twilio.com/docs/voice/twiml/record)"""
    _, app, _ = call_with(
        {"/start": '<Response><Record action="/saved" finishOnKey="*"/></Response>'}, keys="r5,*"
    )
    assert app.posted("/saved")[0]["Digits"] == "*"


# --- <Dial>, <Queue>, <Enqueue>, <Leave> -------------------------------------------------------------


DIAL = '<Response><Dial action="/after"><Number url="/whisper">+4930000000104</Number></Dial></Response>'


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(200, "text/xml", b"<Response/>", 16.0), "15 s"),
        (Reply(302, "text/html", b"", 0.1), "3xx"),
    ],
)
def test_the_whisper_is_a_webhook_with_twilios_limits(reply: Reply, message: str) -> None:
    """Twilio's <Number> page: "The url attribute allows you to specify a url for a TwiML document
    that will run on the called party's end, after she answers, but before the parties are
    connected." (https://www.twilio.com/docs/voice/twiml/number) It is a webhook like any other.
    The simulator's own rules, not quoted from a Twilio page: it waits 15 s for the page and ends
    the call on a 3xx. (The <Gather> page says of a 3xx on an action URL: "Twilio follows this
    redirect, but won't resend the Digits parameter." (https://www.twilio.com/docs/voice/twiml/gather))"""
    call, _, _ = call_with({"/start": DIAL, "/whisper": reply})
    assert call.errors and message in call.errors[0] and "whisper" in call.errors[0]


def test_the_whisper_takes_the_time_it_speaks() -> None:
    """The caller is connected once the agent has heard the whisper: its speech takes call time."""
    pages: dict[str, Page] = {
        "/start": DIAL,
        "/whisper": f"<Response><Say>{' '.join(['word'] * 25)}</Say></Response>",
    }
    call, _, _ = call_with(pages, agent=AgentBehaviour(answer_after=4, talk_seconds=30))
    [answered] = [r.at for r in call.records if r.kind == "agent" and "answers" in r.text]
    assert answered == pytest.approx(4 + 10)


def test_leave_outside_a_queue_ends_the_call_with_a_reason() -> None:
    """Twilio's <Leave> page: "The <Leave> verb is used in conjunction with <Enqueue> to manage
    control of a call that is in a queue." (https://www.twilio.com/docs/voice/twiml/leave)"""
    call, _, _ = call_with({"/start": "<Response><Leave/></Response>"})
    assert call.errors == ["<Leave> outside an <Enqueue> waitUrl: the call is in no queue"]


def test_dial_queue_connects_the_first_caller_of_the_queue() -> None:
    """Twilio's <Queue> page: "When dialing a queue, the caller will be connected with the first
    enqueued call in the specified queue." (https://www.twilio.com/docs/voice/twiml/queue) It rings
    no phone."""
    wait = f'<Response><Play loop="0">{MUSIC}</Play></Response>'
    app = Pages(
        {
            "/caller": '<Response><Enqueue waitUrl="/wait" action="/left">support</Enqueue></Response>',
            "/wait": wait,
            "/agent": '<Response><Dial action="/done"><Queue url="/about">support</Queue></Dial></Response>',
            "/about": "<Response><Say>An agent is here.</Say></Response>",
        }
    )
    sim = Simulator(app, START, agent=AgentBehaviour(talk_seconds=30))
    caller = sim.place_call("+1", "+2", ScriptedCaller([]), start_path="/caller")
    agent = sim.place_call("+3", "+2", ScriptedCaller([]), at=50, start_path="/agent")
    sim.run()
    assert app.posted("/done")[0]["DialCallStatus"] == "completed"
    assert app.posted("/left")[0]["QueueResult"] == "bridged"
    assert "An agent is here." in caller.heard and agent.reached_agent and caller.reached_agent
    assert not any("rings" in r.text for r in agent.records)


def test_dial_queue_that_does_not_exist_reports_an_error_status() -> None:
    """Twilio's <Queue> page: "If the queue does not exist, Dial will post an error status to its
    action URL." (https://www.twilio.com/docs/voice/twiml/queue)"""
    twiml = '<Response><Dial action="/done"><Queue>nobody</Queue></Dial></Response>'
    _, app, _ = call_with({"/start": twiml})
    assert app.posted("/done")[0]["DialCallStatus"] == "failed"


ENQUEUE = '<Response><Enqueue waitUrl="/wait" action="/left">support</Enqueue></Response>'


def test_a_rest_redirect_out_of_a_queue_posts_the_enqueue_action() -> None:
    """Twilio's <Enqueue> page: "A request is made to this URL when the call leaves the queue,
    describing the dequeue reason and details about the time spent in the queue"; QueueResult
    redirected: "While in the queue, the call was redirected out of the queue, typically by a REST
    API request." (https://www.twilio.com/docs/voice/twiml/enqueue)"""
    app = Pages(
        {
            "/start": ENQUEUE,
            "/wait": f'<Response><Play loop="0">{MUSIC}</Play></Response>',
            "/moved": "<Response><Hangup/></Response>",
        }
    )
    sim = Simulator(app, START)
    call = sim.place_call("+1", "+2", ScriptedCaller([]), start_path="/start")
    app.pages["/other"] = lambda params: (
        (sim.redirect(call.sid, "http://app.test/moved") and "<Response/>") or ""
    )
    sim.place_call("+3", "+2", ScriptedCaller([]), at=40, start_path="/other")
    sim.run()
    assert app.posted("/left")[0]["QueueResult"] == "redirected"
    assert app.posted("/moved")


def test_a_full_queue_is_reported_as_queue_full() -> None:
    """Twilio's <Enqueue> page: queue-full means "The targeted queue was full, thus the enqueue
    attempt was rejected." "The default maximum length of the queue is 1000." (https://www.twilio.com/docs/voice/twiml/enqueue)"""
    sim = Simulator(
        Pages({"/start": ENQUEUE, "/wait": "<Response><Pause length='30'/></Response>"}),
        START,
        queue_size=1,
    )
    sim.place_call("+1", "+2", ScriptedCaller([]), start_path="/start", hangup_after=60)
    sim.place_call("+3", "+2", ScriptedCaller([]), at=5, start_path="/start", hangup_after=60)
    sim.run()
    results = [p["QueueResult"] for p in sim.transport.posted("/left")]  # type: ignore[attr-defined]
    assert results == ["queue-full", "hangup"]


def test_queue_sids_are_the_same_from_run_to_run() -> None:
    """A transcript is reproducible: the QueueSid does not come from Python's randomised hash()."""
    sids = []
    for _ in range(2):
        _, app, _ = call_with({"/start": ENQUEUE, "/wait": "<Response><Leave/></Response>"})
        sids.append(app.posted("/left")[0]["QueueSid"])
    assert sids[0] == sids[1] and sids[0].startswith("QU") and len(sids[0]) == 34


def test_max_queue_size_is_not_an_enqueue_attribute() -> None:
    """Twilio's <Enqueue> page lists action, method, waitUrl, waitUrlMethod and workflowSid, and of
    the queue's maximum length says: "This can be modified using the REST API." (https://www.twilio.com/docs/voice/twiml/enqueue)"""
    with pytest.raises(TwimlError, match="maxQueueSize"):
        parse_twiml('<Response><Enqueue maxQueueSize="5">support</Enqueue></Response>')


# --- voices and audio --------------------------------------------------------------------------------


def test_a_voice_that_does_not_speak_its_language_is_refused() -> None:
    """Twilio's <Say> page: "Using an invalid combination of voice and language may result in error
    and <Say> instruction failure." (https://www.twilio.com/docs/voice/twiml/say)"""
    twiml = '<Response><Say voice="Polly.Zhiyu" language="de-DE">Hallo</Say></Response>'
    call, _, _ = call_with({"/start": twiml}, voice_problem=BUILT_IN.problem)
    assert call.errors and "Polly.Zhiyu" in call.errors[0]
    fine = '<Response><Say voice="Polly.Vicki" language="de-DE">Hallo</Say></Response>'
    call, _, _ = call_with({"/start": fine}, voice_problem=BUILT_IN.problem)
    assert call.errors == []


def test_a_missing_recording_of_the_app_is_an_error_and_a_served_one_is_measured() -> None:
    """Twilio's <Play> page: "Twilio retrieves the file from a URL that you provide."
    (https://www.twilio.com/docs/voice/twiml/play) A recording the app does not serve cannot be
    played."""
    pages: dict[str, Page] = {
        "/start": "<Response><Play>/audio/hello.mp3</Play><Play>/audio/gone.mp3</Play></Response>",
        "/audio/hello.mp3": Reply(200, "audio/mpeg", b"seven seconds", 0.01),
        "/audio/gone.mp3": Reply(404, "text/plain", b"not found", 0.01),
    }
    call, _, _ = call_with(
        pages, measure=lambda body, url: 7.0 if body == b"seven seconds" else None
    )
    plays = [r for r in call.records if r.kind == "play"]
    assert plays[0].data["seconds"] == 7.0
    assert call.errors == ["<Play> /audio/gone.mp3 answered HTTP 404: no audio"]
    [error] = [r for r in call.records if r.kind == "error"]
    assert error.at == pytest.approx(7.0)


# --- webhooks ------------------------------------------------------------------------------------------


def test_a_retry_repeats_the_url_form_and_idempotency_token() -> None:
    """Twilio's "Webhooks (HTTP callbacks): Connection Overrides" page lists "HTTP callback
    connection retries on failures/timeouts"
    (https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides). Not verified on a
    Twilio page: that a retry carries the same I-Twilio-Idempotency-Token, so the app can recognise
    it; in substance that is what apps relying on the header assume."""
    _, app, _ = call_with(
        {"/start": '<Response><Gather action="/menu" numDigits="1"/></Response>'},
        keys="1",
        retries=1,
    )
    first, again = app.requests[0], app.requests[1]
    assert first == again
    assert (
        app.headers[0]["I-Twilio-Idempotency-Token"] == app.headers[1]["I-Twilio-Idempotency-Token"]
    )
    assert (
        app.headers[2]["I-Twilio-Idempotency-Token"] != app.headers[0]["I-Twilio-Idempotency-Token"]
    )
    assert len(app.posted("/menu")) == 2


def test_a_late_status_callback_comes_after_the_call_ended() -> None:
    """Not verified on a Twilio page: in substance, Twilio does not promise the order of webhooks,
    so the final status callback may come after the call's last TwiML request."""
    app = Pages({"/start": "<Response><Say>Bye</Say><Hangup/></Response>"})
    sim = Simulator(app, START, status_delay=45)
    call = sim.place_call(
        "+1", "+2", ScriptedCaller([]), start_path="/start", status_path="/status"
    )
    sim.run()
    [status] = app.posted("/status")
    assert status["CallDuration"] == "1"
    [record] = [r for r in call.records if r.kind == "status"]
    assert record.at == pytest.approx(1 + 45) and "45 s late" in record.text


def test_caller_script_is_unchanged() -> None:
    assert (
        parse_script("w4,1") and ScriptedCaller(parse_script("1")).next_step("menu", []) is not None
    )


# --- <Gather input="dtmf speech">: the caller speaks ----------------------------------------------

GATHER_PAGE = "https://www.twilio.com/docs/voice/twiml/gather"
LISTENING = (
    '<Response><Gather input="dtmf speech" language="fr-FR" speechTimeout="2" hints="retrait"'
    ' action="/menu" numDigits="1" timeout="5"><Say>Dites-nous pourquoi vous appelez.</Say>'
    "</Gather><Redirect>/silence</Redirect></Response>"
)
KEYS_ONLY = (
    '<Response><Gather action="/menu" numDigits="1" timeout="5"><Say>Press 1.</Say></Gather>'
    "<Redirect>/silence</Redirect></Response>"
)


def speaking(pages: dict[str, str], keys: str, *said: Utter) -> tuple[SimulatedCall, Pages]:
    app = Pages(dict(pages))
    sim = Simulator(app, START)
    caller = ScriptedCaller(parse_script(keys, said))
    call = sim.place_call("+14155550100", "+18005550199", caller, start_path="/start")
    sim.run()
    return call, app


def test_words_at_a_gather_that_takes_keys_only_are_silence() -> None:
    """Twilio's <Gather> page lists `input` as "dtmf , speech , dtmf speech" with the default
    "dtmf": a Gather that was not asked for speech does not transcribe it. Our model (the stored
    copy of the page read here does not say it in one sentence): words there are silence, the
    Gather times out and the Redirect after it runs, as for a caller who says nothing."""
    call, app = speaking({"/start": KEYS_ONLY}, "s", Utter("my withdrawal"))
    assert app.posted("/menu") == []
    assert len(app.posted("/silence")) == 1
    assert [r.kind for r in call.records if r.kind in ("unheard", "silence")] == [
        "unheard",
        "silence",
    ]


def test_words_at_a_listening_gather_post_speech_result_and_confidence_without_digits() -> None:
    """Twilio's <Gather> page: "This input could include speech, digits pressed on the keypad, or
    both", and "Twilio then sends the user's input as a parameter in a POST request to ... the
    action URL". Words go as `SpeechResult` with Twilio's `Confidence` (0 to 1), the parameters
    the line reads; our model posts no `Digits` with them."""
    call, app = speaking({"/start": LISTENING}, "s", Utter("mon retrait", 0.42))
    [posted] = app.posted("/menu")
    assert posted["SpeechResult"] == "mon retrait"
    assert posted["Confidence"] == "0.42"
    assert "Digits" not in posted
    assert app.posted("/silence") == []
    [said] = [r for r in call.records if r.kind == "speech"]
    assert said.data["language"] == "fr-FR"


def test_a_key_first_at_a_listening_gather_posts_digits_without_speech_result() -> None:
    """With input "dtmf speech" the caller may press or speak ("speech, digits pressed on the
    keypad, or both", Twilio's <Gather> page). Our model, not a quoted sentence: what comes first
    ends the Gather; a key first is posted as Digits with no SpeechResult, and words after it are
    for the next menu. The line lets a key win either way (tests/flow/test_speech.py)."""
    pages = {"/start": LISTENING, "/menu": KEYS_ONLY}
    call, app = speaking(pages, "2,s", Utter("mon retrait"))
    first = app.posted("/menu")[0]
    assert first["Digits"] == "2"
    assert "SpeechResult" not in first and "Confidence" not in first
    assert [r.kind for r in call.records if r.kind in ("press", "unheard")] == ["press", "unheard"]


def test_speech_timeout_posts_the_words_once_after_the_pause() -> None:
    """speechTimeout ends the words after a pause (auto: Twilio's own pause; the line sends a
    number, because Twilio warns "Gather: speechTimeout auto cannot be used with model default",
    warning 13335). Partial results would go only to a partialResultCallback, which the line does
    not set: our model posts the whole words to the action in one request, after the pause."""
    words = "mon retrait n'est jamais arrivé"
    call, app = speaking({"/start": LISTENING}, "s", Utter(words))
    assert [p["SpeechResult"] for p in app.posted("/menu")] == [words]
    [said] = at(call, "speech")
    [request] = [r.at for r in call.records if r.kind == "request" and r.text.endswith("/menu")]
    assert request == pytest.approx(said + speaking_seconds(words) + 2)


def test_silence_at_a_listening_gather_times_out_and_runs_the_next_verb() -> None:
    """Twilio's <Gather> page: "When Twilio executes this TwiML, it will pause for up to five
    seconds to wait for the caller to enter digits" (timeout, 5 by default). With nothing said or
    pressed the Gather ends without a request and the next verb runs: our Redirect."""
    call, app = speaking({"/start": LISTENING}, "t")
    assert app.posted("/menu") == []
    [silence] = at(call, "silence")
    [redirect] = [r.at for r in call.records if r.kind == "request" and r.text.endswith("/silence")]
    assert redirect == pytest.approx(silence)
    prompt_end = speaking_seconds("Dites-nous pourquoi vous appelez.")
    assert silence == pytest.approx(prompt_end + 5)


def test_hints_are_only_a_hint_the_words_are_posted_as_said() -> None:
    """Twilio's <Gather> page lists hints as "words, phrases that have many words", class tokens:
    they help recognition; the simulator transcribes exactly what the caller says, hint or not."""
    _, app = speaking({"/start": LISTENING}, "s", Utter("mon retraite"))
    assert app.posted("/menu")[0]["SpeechResult"] == "mon retraite"
