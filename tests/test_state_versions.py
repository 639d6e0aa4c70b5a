"""URL state across releases: a webhook whose state a newer release wrote is not misread or
restarted at once; it is handed back to the proxy, which may give it to a newer instance.

Twilio, on `<Redirect>`: "The <Redirect> verb transfers control of a call to the TwiML at a
different URL. All verbs after <Redirect> are unreachable and ignored." and of its `method`:
"POST is the default." So the redirected request is the same webhook, POSTed again, with the URL
we give: which instance behind the proxy takes it is the proxy's choice.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree as ET

from flask.testing import FlaskClient

from ivr.flow import STATE_READS_UP_TO, STEPS, CallState, newer_state
from ivr.web.inbound import HAND_BACKS
from tests.support import new_call_sid, parse, sealed, signed_post, spoken

NEWER = "/voice/input?step=menu&language=en-US&menu=main&tries=0&sv=2"
"""A main-menu state as a release whose URL states are version 2 writes it."""


def handed_back(client: FlaskClient, url: str, sid: str) -> tuple[ET.Element, ET.Element]:
    """The <Pause> and <Redirect> of the answer to `url`, which must be a hand-back."""
    answer = list(parse(signed_post(client, url, {"CallSid": sid, "Digits": "1"})))
    assert [verb.tag for verb in answer] == ["Pause", "Redirect"]
    return answer[0], answer[1]


def test_a_state_this_code_writes_carries_no_version_and_reads_back() -> None:
    state = CallState(step="menu", language="en-US", menu="main")
    params = state.to_params()
    assert "sv" not in params  # version 1: what the previous release reads, as it always did
    assert not newer_state(params) and CallState.from_params(params) == state


def test_a_newer_version_or_an_unknown_step_is_a_newer_releases_state() -> None:
    assert STATE_READS_UP_TO == 1
    assert newer_state({"step": "menu", "sv": "2"})
    assert newer_state({"step": "transfer_out", "tries": "0"})
    assert not newer_state({"step": "menu", "sv": "1"})
    assert "transfer_out" not in STEPS


def test_a_newer_state_is_handed_back_to_the_same_webhook_after_a_pause(
    client: FlaskClient,
) -> None:
    sid = new_call_sid()
    pause, redirect = handed_back(client, sealed(client, NEWER, sid), sid)

    assert pause.attrib["length"] == "1"
    assert "method" not in redirect.attrib  # POST, as Twilio's default
    again = urlsplit(redirect.text or "")
    assert again.path == "/voice/input"
    query = parse_qs(again.query)
    assert query["sv"] == ["2"] and query["step"] == ["menu"] and query["hb"] == ["1"]
    # Sealed for this call: the next hand-back counts on, so the request was taken as ours.
    _, second = handed_back(client, redirect.text or "", sid)
    assert parse_qs(urlsplit(second.text or "").query)["hb"] == ["2"]


def test_after_the_last_hand_back_the_call_starts_over_and_is_never_dropped(
    client: FlaskClient,
) -> None:
    sid = new_call_sid()
    url = sealed(client, NEWER, sid)
    for _ in range(HAND_BACKS):
        url = handed_back(client, url, sid)[1].text or ""

    twiml = parse(signed_post(client, url, {"CallSid": sid, "Digits": "1"}))
    # What this code does with any URL state it cannot read: the language menu.
    gather = twiml.find("Gather")
    assert gather is not None and "step=language" in gather.attrib["action"]
    assert "For English, press 2." in spoken(twiml)


def test_an_unsealed_newer_state_is_not_handed_back_but_starts_over(client: FlaskClient) -> None:
    twiml = parse(signed_post(client, NEWER, {"CallSid": new_call_sid(), "Digits": "1"}))
    gather = twiml.find("Gather")
    assert gather is not None and "step=language" in gather.attrib["action"]
