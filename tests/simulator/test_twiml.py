"""The TwiML parser accepts what Twilio runs and refuses, with a readable reason, what it would not."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from twilio.twiml.voice_response import VoiceResponse

from ivr import flow
from ivr.flow import CallState, Decision
from ivr.rules.loader import load_prompts
from ivr.simulator.twiml import MAX_TWIML_BYTES, TwimlError, Verb, gather_input, parse_twiml
from ivr.twiml import render
from tests.support import PROMPTS

# --- What the app sends is accepted ---------------------------------------------------------------


def _menu() -> VoiceResponse:
    response = VoiceResponse()
    gather = response.gather(
        input="dtmf",
        timeout=5,
        action="/voice/input?step=menu&tries=0",
        method="POST",
        num_digits=1,
        finish_on_key="",
    )
    gather.say("Press 1 for sales.", voice="Polly.Joanna", language="en-US")
    gather.play("/voice/audio/en-US/menu.mp3")
    gather.pause(length=2)
    response.redirect("/voice/input?step=menu&tries=1", method="POST")
    return response


def _pin() -> VoiceResponse:
    response = VoiceResponse()
    gather = response.gather(input="dtmf", timeout=10, action="/agent/voice", finish_on_key="#")
    gather.say("Type your extension, then press the pound key.")
    return response


def _voicemail() -> VoiceResponse:
    response = VoiceResponse()
    response.say("Leave a message after the beep.")
    response.record(
        action="/voice/recording?step=voicemail",
        method="POST",
        max_length=120,
        finish_on_key="#",
        play_beep=True,
        timeout=5,
        trim="trim-silence",
    )
    response.hangup()
    return response


def _dial_number() -> VoiceResponse:
    response = VoiceResponse()
    dial = response.dial(action="/voice/agent", method="POST", timeout=20, answer_on_bridge=True)
    dial.number("+14155551212", url="/voice/whisper?step=whisper", method="POST")
    return response


def _dial_client() -> VoiceResponse:
    response = VoiceResponse()
    dial = response.dial(action="/voice/agent", method="POST", timeout=20, answer_on_bridge=True)
    dial.client("agent_7", url="/voice/whisper?step=whisper", method="POST")
    return response


def _queue() -> VoiceResponse:
    response = VoiceResponse()
    response.enqueue("support", wait_url="/voice/hold", wait_url_method="POST", action="/done")
    response.leave()
    response.hangup()
    return response


def _ssml() -> VoiceResponse:
    response = VoiceResponse()
    say = response.say("Your reference is ", voice="Polly.Joanna", language="en-US")
    say.say_as("1234", interpret_as="digits")
    say.break_(time="500ms")
    say.emphasis("thank you", level="strong")
    response.play(digits="ww1w2")
    response.reject(reason="busy")
    return response


APP_TWIML: dict[str, Callable[[], VoiceResponse]] = {
    "gather with say, play and pause, then redirect": _menu,
    "gather several digits": _pin,
    "say, record, hangup": _voicemail,
    "dial a number with a whisper url": _dial_number,
    "dial a client with a whisper url": _dial_client,
    "enqueue with waitUrl, leave": _queue,
    "say with ssml, play digits, reject": _ssml,
}


@pytest.mark.parametrize("build", APP_TWIML.values(), ids=APP_TWIML.keys())
def test_twiml_built_with_the_twilio_library_is_accepted(
    build: Callable[[], VoiceResponse],
) -> None:
    response = build()
    verbs = parse_twiml(str(response), "text/xml")
    assert [verb.name for verb in verbs] == [element.name for element in response.verbs]


def _decisions() -> dict[str, Decision]:
    menu = CallState("menu", language="en-US", menu="main")
    agent = CallState("agent", language="en-US", queue="support", agent="a1")
    say = flow.Say("Welcome to support.", "en-US", "welcome")
    recorded = flow.Say("", "en-US", "welcome", audio="welcome.mp3")
    return {
        "gather one key": Decision((flow.Gather((say, recorded, flow.Pause(1)), menu, 5),)),
        "gather several digits": Decision((flow.Gather((say,), menu, 10, several_digits=True),)),
        "go to": Decision((say, flow.GoTo(menu))),
        "hold music": Decision((flow.Music("https://example.com/hold.mp3"), flow.GoTo(menu))),
        "record": Decision((say, flow.Record(menu, 120), flow.Hangup())),
        "dial a phone": Decision(
            (flow.Dial("+14155551212", None, agent, CallState("whisper", agent="a1")),)
        ),
        "dial a client": Decision((flow.Dial(None, "agent_a1", agent, CallState("whisper")),)),
    }


@pytest.mark.parametrize("name", _decisions().keys())
def test_what_the_app_renders_is_accepted(name: str) -> None:
    prompts, _ = load_prompts(PROMPTS, ("en-US",))
    decision = _decisions()[name]
    verbs = parse_twiml(render(decision, prompts), "text/xml; charset=utf-8")
    assert verbs


# --- The verbs that come back -----------------------------------------------------------------------


def test_verbs_keep_names_attributes_text_and_nesting() -> None:
    verbs = parse_twiml(str(_menu()), "application/xml")
    gather, redirect = verbs
    assert gather.name == "Gather"
    assert gather.attr("numDigits") == "1"
    assert gather.attr("finishOnKey") == ""
    assert gather.attr("speechTimeout") is None
    assert gather.attr("speechTimeout", "auto") == "auto"
    assert gather.int_attr("numDigits", 0) == 1
    assert gather.int_attr("maxSpeechTime", 60) == 60
    assert [child.name for child in gather.children] == ["Say", "Play", "Pause"]
    say, play, pause = gather.children
    assert say.text == "Press 1 for sales."
    assert say.attr("voice") == "Polly.Joanna"
    assert play.text == "/voice/audio/en-US/menu.mp3"
    assert pause.int_attr("length", 1) == 2
    assert redirect.text == "/voice/input?step=menu&tries=1"  # entities decoded
    with pytest.raises(TypeError):
        gather.attrs["numDigits"] = "2"  # type: ignore[index]


def test_say_text_includes_ssml_words_in_order() -> None:
    (say, *_) = parse_twiml(str(_ssml()))
    assert say.text == "Your reference is 1234 thank you"
    assert [child.name for child in say.children] == ["say-as", "break", "emphasis"]
    assert say.children[0].attr("interpret-as") == "digits"


def test_whitespace_and_comments_between_verbs_are_ignored() -> None:
    body = b"""<?xml version="1.0" encoding="UTF-8"?>
<!-- the main menu -->
<Response>
    <Say>
        Hello
    </Say>
    <!-- then hang up -->
    <Hangup/>
</Response>
"""
    assert parse_twiml(body) == (Verb("Say", text="Hello"), Verb("Hangup"))


def test_an_empty_response_has_no_verbs() -> None:
    assert parse_twiml("<Response/>") == ()


def test_the_charset_of_the_content_type_decodes_the_body() -> None:
    body = "<Response><Say>Grüß Gott</Say></Response>".encode("iso-8859-1")
    (say,) = parse_twiml(body, "text/xml; charset=ISO-8859-1")
    assert say.text == "Grüß Gott"


def test_namespaced_ssml_needs_no_declaration() -> None:
    body = '<Response><Say><amazon:effect name="whispered">psst</amazon:effect></Say></Response>'
    (say,) = parse_twiml(body)
    assert say.children[0].name == "amazon:effect"
    assert say.text == "psst"


# --- What Twilio would refuse -------------------------------------------------------------------

REFUSED: list[tuple[str, str, str]] = [
    # (case, body inside <Response>, words the message must contain)
    (
        "misspelled attribute",
        '<Gather numDigit="1"><Say>Hi</Say></Gather>',
        "<Gather> does not allow attribute 'numDigit' (did you mean numDigits?)",
    ),
    (
        "attribute in the wrong case",
        '<Gather numdigits="1"/>',
        "'numdigits' (did you mean numDigits?)",
    ),
    ("attribute of another verb", '<Say timeout="3">Hi</Say>', "<Say> does not allow attribute"),
    ("unknown verb", "<Speak>Hi</Speak>", "unknown verb <Speak>"),
    ("verb in the wrong case", "<say>Hi</say>", "unknown verb <say> (did you mean <Say>?)"),
    ("obsolete Sms", "<Sms>Hi</Sms>", "<Sms> is obsolete"),
    ("messaging verb", "<Message>Hi</Message>", "<Message> is messaging TwiML"),
    (
        "Dial inside Gather",
        "<Gather><Dial>+14155551212</Dial></Gather>",
        "<Dial> is not allowed inside <Gather>",
    ),
    (
        "Gather inside Gather",
        "<Gather><Gather/></Gather>",
        "<Gather> is not allowed inside <Gather>",
    ),
    (
        "Redirect inside Gather",
        "<Gather><Redirect>/x</Redirect></Gather>",
        "<Redirect> is not allowed inside <Gather>",
    ),
    (
        "noun outside Dial",
        "<Number>+14155551212</Number>",
        "<Number> is not allowed inside <Response> (it belongs inside <Dial>)",
    ),
    (
        "Prompt outside Pay",
        "<Prompt><Say>Card number</Say></Prompt>",
        "<Prompt> is not allowed inside <Response> (it belongs inside <Pay>)",
    ),
    (
        "verb inside Play",
        "<Play><Say>Hi</Say></Play>",
        "<Say> is not allowed inside <Play> (<Play> takes no nested elements)",
    ),
    (
        "verb inside Record",
        "<Record><Say>Hi</Say></Record>",
        "<Say> is not allowed inside <Record>",
    ),
    (
        "verb inside Hangup",
        "<Hangup><Say>Bye</Say></Hangup>",
        "<Say> is not allowed inside <Hangup>",
    ),
    ("verb inside Leave", "<Leave><Hangup/></Leave>", "<Hangup> is not allowed inside <Leave>"),
    ("verb inside Pause", "<Pause><Say>Hi</Say></Pause>", "<Say> is not allowed inside <Pause>"),
    (
        "verb inside Reject",
        "<Reject><Say>No</Say></Reject>",
        "<Say> is not allowed inside <Reject>",
    ),
    (
        "verb inside Redirect",
        "<Redirect><Say>Hi</Say>/x</Redirect>",
        "<Say> is not allowed inside <Redirect>",
    ),
    (
        "verb inside Say",
        "<Say>Hi <Pause/></Say>",
        "<Pause> is not allowed inside <Say> (only text and SSML tags go there)",
    ),
    ("unknown SSML tag", "<Say>Hi <bold>there</bold></Say>", "unknown element <bold> inside <Say>"),
    ("verb inside Dial", "<Dial><Say>Hi</Say></Dial>", "<Say> is not allowed inside <Dial>"),
    (
        "verb inside Enqueue",
        "<Enqueue><Play>/m.mp3</Play>support</Enqueue>",
        "<Play> is not allowed inside <Enqueue>",
    ),
    (
        "verb inside Client",
        "<Dial><Client>bob<Say>Hi</Say></Client></Dial>",
        "<Say> is not allowed inside <Client>",
    ),
    ("text in Response", "Hello there", "<Response> does not take text"),
    ("text in Hangup", "<Hangup>now</Hangup>", "<Hangup> does not take text (found 'now')"),
    ("empty Say", "<Say></Say>", "empty <Say>"),
    ("blank Say", "<Say>   </Say>", "empty <Say>"),
    ("Say with only a break", '<Say><break time="1s"/></Say>', "empty <Say>"),
    ("Play without URL", "<Play/>", "<Play> needs a URL"),
    (
        "Play URL with spaces",
        "<Play>/audio/hold music.mp3</Play>",
        "<Play> needs a URL without spaces",
    ),
    (
        "Redirect without URL",
        '<Redirect method="POST"/>',
        "<Redirect> needs a URL between its tags",
    ),
    ("empty Dial", "<Dial/>", "empty <Dial>"),
    (
        "Dial to a name",
        "<Dial>bob</Dial>",
        "<Dial> needs a phone number like +14155551212, got 'bob'",
    ),
    (
        "Dial text and nouns",
        "<Dial>+14155551212<Number>+14155551213</Number></Dial>",
        "both a phone number as text and nested nouns",
    ),
    (
        "Dial eleven numbers",
        "<Dial>" + "<Number>+14155551212</Number>" * 11 + "</Dial>",
        "at most 10",
    ),
    (
        "Number not a number",
        "<Dial><Number>agent-7</Number></Dial>",
        "<Number> needs a phone number",
    ),
    ("empty Number", "<Dial><Number/></Dial>", "<Number> needs a phone number between its tags"),
    (
        "Client without identity",
        '<Dial><Client url="/w"/></Dial>',
        "<Client> needs a client identity",
    ),
    (
        "Client identity twice",
        "<Dial><Client>bob<Identity>bob</Identity></Client></Dial>",
        "<Client> has both text and <Identity>",
    ),
    (
        "Client identity with a space",
        "<Dial><Client>agent 7</Client></Dial>",
        "must not contain spaces",
    ),
    (
        "Parameter without name",
        '<Dial><Client><Identity>bob</Identity><Parameter value="1"/></Client></Dial>',
        "<Parameter> needs a name attribute",
    ),
    ("Enqueue without a queue", '<Enqueue waitUrl="/hold"/>', "<Enqueue> needs a queue name"),
    (
        "Enqueue name too long",
        "<Enqueue>" + "q" * 65 + "</Enqueue>",
        "queue name is 65 characters long",
    ),
    ("Sip without sip: URI", "<Dial><Sip>alice@example.com</Sip></Dial>", "<Sip> needs a sip: URI"),
    (
        "method lower case",
        '<Redirect method="post">/x</Redirect>',
        '<Redirect> method="post" is invalid: must be GET or POST',
    ),
    ("method PUT", '<Gather method="PUT"/>', "must be GET or POST"),
    (
        "timeout not a number",
        '<Gather timeout="five"/>',
        '<Gather> timeout="five" is invalid: must be a whole number',
    ),
    ("timeout with a unit", '<Dial timeout="20s">+14155551212</Dial>', "must be a whole number"),
    (
        "numDigits zero",
        '<Gather numDigits="0"/>',
        '<Gather> numDigits="0" is invalid: must be a whole number of at least 1',
    ),
    ("negative loop", '<Say loop="-1">Hi</Say>', '<Say> loop="-1" is invalid'),
    ("Play loop decimal", '<Play loop="1.5">/m.mp3</Play>', '<Play> loop="1.5" is invalid'),
    ("Pause length zero", '<Pause length="0"/>', '<Pause> length="0" is invalid'),
    ("Record maxLength empty", '<Record maxLength=""/>', '<Record> maxLength="" is invalid'),
    (
        "Dial timeLimit zero",
        '<Dial timeLimit="0">+14155551212</Dial>',
        '<Dial> timeLimit="0" is invalid',
    ),
    (
        "finishOnKey letter",
        '<Gather finishOnKey="x"/>',
        '<Gather> finishOnKey="x" is invalid: must be made of the keys 0-9, * and #',
    ),
    (
        "Record finishOnKey word",
        '<Record finishOnKey="hash"/>',
        '<Record> finishOnKey="hash" is invalid',
    ),
    (
        "boolean yes",
        '<Record playBeep="yes"/>',
        '<Record> playBeep="yes" is invalid: must be true or false',
    ),
    (
        "boolean capitalised",
        '<Dial answerOnBridge="True">+14155551212</Dial>',
        "must be true or false",
    ),
    ("actionOnEmptyResult 1", '<Gather actionOnEmptyResult="1"/>', "must be true or false"),
    ("hangupOnStar", '<Dial hangupOnStar="no">+14155551212</Dial>', "must be true or false"),
    ("input voice", '<Gather input="voice"/>', 'must be dtmf, speech or "dtmf speech"'),
    (
        "input with a comma",
        '<Gather input="dtmf,speech"/>',
        'must be dtmf, speech or "dtmf speech"',
    ),
    (
        "speechTimeout word",
        '<Gather input="speech" speechTimeout="fast"/>',
        "must be auto or a whole number",
    ),
    (
        "Reject reason",
        '<Reject reason="declined"/>',
        '<Reject> reason="declined" is invalid: must be one of rejected, busy',
    ),
    ("Record trim", '<Record trim="yes"/>', "must be one of trim-silence, do-not-trim"),
    (
        "Dial record",
        '<Dial record="always">+14155551212</Dial>',
        '<Dial> record="always" is invalid',
    ),
    ("Dial ringTone", '<Dial ringTone="gb">+14155551212</Dial>', '<Dial> ringTone="gb" is invalid'),
    (
        "status callback event",
        '<Dial><Number statusCallbackEvent="ringing hungup">+14155551212</Number></Dial>',
        "must be one or more of initiated, ringing, answered, completed",
    ),
    (
        "machineDetection",
        '<Dial><Number machineDetection="true">+14155551212</Number></Dial>',
        "must be one of Enable, DetectMessageEnd",
    ),
    ("Play digits", '<Play digits="12a"/>', '<Play> digits="12a" is invalid'),
    (
        "Number sendDigits",
        '<Dial><Number sendDigits="ext 12">+14155551212</Number></Dial>',
        "sendDigits",
    ),
    (
        "action with a space",
        '<Gather action="/voice/input?step=main menu"/>',
        "must be a URL without spaces",
    ),
    (
        "Leave with an attribute",
        '<Leave reason="done"/>',
        "<Leave> does not allow attribute 'reason'",
    ),
    (
        "Hangup with an attribute",
        '<Hangup reason="busy"/>',
        "<Hangup> does not allow attribute 'reason'",
    ),
    (
        "SSML attribute",
        '<Say>Hi<break tiem="1s"/></Say>',
        "<break> does not allow attribute 'tiem' (did you mean time?)",
    ),
    (
        "SSML break time",
        '<Say>Hi<break time="1 second"/></Say>',
        '<break> time="1 second" is invalid',
    ),
]


@pytest.mark.parametrize(
    ("inside", "expected"), [(b, e) for _, b, e in REFUSED], ids=[c for c, _, _ in REFUSED]
)
def test_what_twilio_would_refuse_is_refused_with_a_reason(inside: str, expected: str) -> None:
    with pytest.raises(TwimlError) as caught:
        parse_twiml(f"<Response>{inside}</Response>")
    assert expected in str(caught.value)
    assert "[line 1]" in str(caught.value)


def test_every_problem_is_reported_with_its_line() -> None:
    body = """<Response>
  <Gather numDigit="1">
    <Dial>+14155551212</Dial>
  </Gather>
  <Say/>
</Response>"""
    with pytest.raises(TwimlError) as caught:
        parse_twiml(body)
    assert caught.value.problems == (
        "<Gather> does not allow attribute 'numDigit' (did you mean numDigits?) [line 2]",
        "<Dial> is not allowed inside <Gather> (<Gather> may only contain Pause, Play, Say) [line 3]",
        "empty <Say>: Twilio has nothing to say [line 5]",
    )
    assert str(caught.value) == "; ".join(caught.value.problems)


def test_a_long_list_of_problems_is_cut_short() -> None:
    with pytest.raises(TwimlError) as caught:
        parse_twiml("<Response>" + "<Say/>" * 30 + "</Response>")
    assert len(caught.value.problems) == 30
    assert str(caught.value).endswith("; and 10 more problems")


# --- The document as a whole --------------------------------------------------------------------

DOCUMENTS: list[tuple[str, bytes | str, str | None, str]] = [
    # (case, body, content type, words the message must contain)
    ("no content type", "<Response/>", None, "no content type"),
    ("blank content type", "<Response/>", "", "no content type"),
    ("json", '{"say": "hi"}', "application/json", "content type application/json is not TwiML"),
    ("plain text", "Hello", "text/plain", "content type text/plain is not TwiML"),
    ("unknown charset", b"<Response/>", "text/xml; charset=klingon", "unknown charset 'klingon'"),
    (
        "wrong charset",
        "<Response><Say>\u00e9</Say></Response>".encode("latin-1"),
        "text/xml; charset=utf-8",
        "body is not valid utf-8",
    ),
    ("empty body", b"", "text/xml", "empty response body"),
    ("blank body", "  \n ", "text/xml", "empty response body"),
    (
        "wrong root",
        "<Reponse><Say>Hi</Say></Reponse>",
        "text/xml",
        "root element must be <Response>, got <Reponse>",
    ),
    (
        "lower-case root",
        "<response/>",
        "text/xml",
        "root element must be <Response>, got <response>",
    ),
    (
        "html page",
        "<html><body>Internal Server Error</body></html>",
        "text/xml",
        "root element must be <Response>, got <html>",
    ),
    (
        "mismatched tag",
        "<Response>\n  <Say>Hi\n</Response>",
        "text/xml",
        "not XML: mismatched tag at line 3, column 3",
    ),
    (
        "unclosed document",
        "<Response>\n<Say>Hi</Say>",
        "text/xml",
        "not XML: no element found at line 2, column 14",
    ),
    (
        "bare ampersand",
        "<Response><Redirect>/x?a=1&b=2</Redirect></Response>",
        "text/xml",
        "not XML: not well-formed (invalid token) at line 1, column ",
    ),
    (
        "text after the root",
        "<Response/><Response/>",
        "text/xml",
        "not XML: junk after document element at line 1, column 12",
    ),
    (
        "undefined entity",
        "<Response><Say>&nbsp;</Say></Response>",
        "text/xml",
        "not XML: undefined entity at line 1, column 16",
    ),
    (
        "doctype",
        '<?xml version="1.0"?><!DOCTYPE Response><Response/>',
        "text/xml",
        "<!DOCTYPE> declarations are not allowed",
    ),
    (
        "billion laughs",
        '<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        "<Response><Say>&b;</Say></Response>",
        "text/xml",
        "declarations are not allowed",
    ),
    (
        "doctype in UTF-16",
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r><Response/>'.encode("utf-16"),
        "text/xml",
        "declarations are not allowed",
    ),
    (
        "nested too deep",
        "<Response><Say>" + "<p>" * 60 + "x" + "</p>" * 60 + "</Say></Response>",
        "text/xml",
        "nested more than 50 deep",
    ),
]


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [(b, t, e) for _, b, t, e in DOCUMENTS],
    ids=[c for c, _, _, _ in DOCUMENTS],
)
def test_documents_twilio_cannot_run_are_refused(
    body: bytes | str, content_type: str | None, expected: str
) -> None:
    with pytest.raises(TwimlError) as caught:
        parse_twiml(body, content_type)
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    "content_type",
    [
        "text/xml",
        "application/xml",
        "Text/XML; charset=UTF-8",
        'application/xml; charset="utf-8"',
        "text/html; charset=utf-8",  # Twilio's docs: text/html is run as TwiML too
    ],
)
def test_xml_content_types_are_accepted(content_type: str) -> None:
    assert parse_twiml(b"<Response><Hangup/></Response>", content_type) == (Verb("Hangup"),)


def test_the_size_limit_is_64_kb() -> None:
    def padded(size: int) -> bytes:
        head, tail = b"<Response><!--", b"--><Hangup/></Response>"
        return head + b"x" * (size - len(head) - len(tail)) + tail

    assert parse_twiml(padded(MAX_TWIML_BYTES)) == (Verb("Hangup"),)
    with pytest.raises(TwimlError, match="response is 65537 bytes, Twilio's limit is 65536"):
        parse_twiml(padded(MAX_TWIML_BYTES + 1))


def test_the_size_limit_counts_bytes_not_characters() -> None:
    words = "日本語" * 7300  # 21 900 characters, 65 700 bytes in UTF-8
    with pytest.raises(TwimlError, match="Twilio's limit is 65536"):
        parse_twiml(f"<Response><Say>{words}</Say></Response>")


def test_a_gather_says_whether_it_takes_speech_and_in_which_language() -> None:
    [gather] = parse_twiml(
        '<Response><Gather input="dtmf speech" language="cmn-Hans-CN" speechTimeout="auto" '
        'speechModel="phone_call" hints="提现, 充值" action="/menu"><Say>请讲</Say></Gather>'
        "</Response>"
    )
    takes = gather_input(gather)
    assert (takes.keys, takes.speech, takes.language) == (True, True, "cmn-Hans-CN")
    assert takes.hints == ("提现", "充值")
    assert takes.speech_timeout == "auto"
    [keys_only] = parse_twiml('<Response><Gather action="/menu"/></Response>')
    assert (gather_input(keys_only).keys, gather_input(keys_only).speech) == (True, False)
    assert gather_input(keys_only).language == "en-US"  # Twilio's default


def test_hints_over_twilios_limits_are_refused_as_error_13330() -> None:
    """Twilio error 13330: "hints must be a comma-separated list of up to 500 entries, each entry
    can be 100 characters or fewer"."""
    fine = ", ".join(f"phrase {n}" for n in range(500))
    parse_twiml(f'<Response><Gather input="dtmf speech" hints="{fine}"/></Response>')
    parse_twiml(f'<Response><Gather input="speech" hints="{"a" * 100}"/></Response>')
    too_many = fine + ", one more"
    with pytest.raises(
        TwimlError, match="501 entries, Twilio allows at most 500 \\(error 13330\\)"
    ):
        parse_twiml(f'<Response><Gather input="speech" hints="{too_many}"/></Response>')
    with pytest.raises(TwimlError, match="is 101 characters long, Twilio allows at most 100"):
        parse_twiml(f'<Response><Gather input="speech" hints="ok, {"b" * 101}"/></Response>')


def test_speech_timeout_auto_needs_a_speech_model_other_than_default() -> None:
    """Twilio warning 13335: "Gather: speechTimeout auto cannot be used with model default"."""
    for model in ("", ' speechModel="default"'):
        with pytest.raises(TwimlError, match="13335"):
            parse_twiml(
                f'<Response><Gather input="speech" speechTimeout="auto"{model} action="/m"/>'
                "</Response>"
            )
    parse_twiml('<Response><Gather input="speech" speechTimeout="3" action="/m"/></Response>')
