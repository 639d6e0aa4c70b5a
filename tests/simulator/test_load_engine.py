"""What the engine does for load runs: patience on hold, agent shifts on the timeline, the prompt
listener, and conversation lengths drawn one by one."""

from __future__ import annotations

import itertools

from ivr.simulator.caller import ScriptedCaller, parse_script
from ivr.simulator.engine import AgentBehaviour, SimulatedCall, Simulator
from tests.simulator.test_engine import START, Pages

HOLD_THEN_AGENT = {
    # Held for 30 s (a prompt and a pause), then put through to an agent.
    "/start": "<Response><Redirect>/hold?queue=funds&amp;round=1</Redirect></Response>",
    "/hold": '<Response><Say>Please hold.</Say><Pause length="29"/>'
    "<Redirect>/agent</Redirect></Response>",
    "/agent": "<Response><Dial><Number>+15550001</Number></Dial></Response>",
}


def place(
    pages: dict[str, object], patience: float | None, agent: AgentBehaviour | None = None
) -> tuple[SimulatedCall, Simulator]:
    sim = Simulator(Pages(pages), START, agent=agent)  # type: ignore[arg-type]
    call = sim.place_call(
        "+14155550100",
        "+18005550199",
        ScriptedCaller(parse_script("")),
        start_path="/start",
        patience=patience,
    )
    return call, sim


def test_a_patient_caller_is_answered_and_talks_to_the_end() -> None:
    call, sim = place(HOLD_THEN_AGENT, patience=60, agent=AgentBehaviour(talk_seconds=300))
    sim.run()
    assert call.connected_at is not None and call.agent_done_at is not None
    # The patience counted while holding only: the conversation is not cut off at 60 s.
    assert call.agent_done_at - call.connected_at == 300


def test_an_impatient_caller_hangs_up_that_long_after_joining_the_queue() -> None:
    call, sim = place(HOLD_THEN_AGENT, patience=10)
    sim.run()
    assert call.connected_at is None and not call.reached_agent
    joined = next(r.at for r in call.records if r.kind == "queue")
    assert call.ended_at - joined == 10


def put_through_on_round(put_through: int) -> dict[str, object]:
    """An app whose hold round `put_through` answers with "connecting" and a <Dial> to an agent,
    whose leg hears a whisper first; each other round is 10 s of holding. An unanswered <Dial>
    goes back to hold, as the app's /agent does."""
    rounds = itertools.count(1)

    def hold(params: dict[str, str]) -> str:
        if next(rounds) == put_through:
            return (
                "<Response><Say>We are connecting you with an agent now.</Say>"
                '<Dial action="/agent" timeout="30"><Number url="/whisper">+15550001</Number>'
                "</Dial></Response>"
            )
        return '<Response><Say>Please hold.</Say><Pause length="9"/>' + AGAIN

    return {
        "/start": "<Response>" + AGAIN,
        "/hold": hold,
        "/whisper": "<Response><Say>Support call for withdrawals, in English.</Say></Response>",
        "/agent": lambda params: (
            "<Response><Hangup/></Response>"
            if params["DialCallStatus"] == "completed"
            else "<Response><Say>The agent is not available.</Say>" + AGAIN
        ),
    }


AGAIN = "<Redirect>/hold?queue=funds</Redirect></Response>"


def hold_requests(call: SimulatedCall) -> list[float]:
    return [r.at for r in call.records if r.kind == "request" and r.text.startswith("POST /hold")]


def test_patience_stops_when_an_agent_is_assigned_so_ring_and_whisper_do_not_lose_the_caller() -> (
    None
):
    # Held 10 s, then "connecting" (about 3 s), a 20 s ring and the whisper (about 2 s): the caller's
    # 15 s of patience would run out while the agent's phone rings if it counted the connecting.
    agent = AgentBehaviour(answer_after=20, talk_seconds=60)
    call, sim = place(put_through_on_round(2), patience=15, agent=agent)
    sim.run()
    assert call.connected_at is not None and call.agent_done_at is not None
    assert call.connected_at - hold_requests(call)[1] > 15


def test_a_caller_put_back_on_hold_gives_up_after_the_rest_of_their_patience() -> None:
    # Twilio's <Dial> page: "The <Dial> verb will end the new call if: The called party does not
    # pick up." Then "Twilio will make a GET or POST request to the action URL", whose TwiML (the
    # app's) puts the caller back on hold. Held 10 s of 25, so 15 s are left after the 30 s ring.
    call, sim = place(put_through_on_round(2), patience=25, agent=AgentBehaviour(answers=False))
    sim.run()
    assert call.connected_at is None and not call.reached_agent
    first, assigned, back = hold_requests(call)[:3]
    assert assigned - first == 10
    assert back - assigned > 30  # "connecting", the 30 s of ringing, "not available"
    assert call.ended_at - back == 15


def test_each_conversation_lasts_its_own_drawn_length() -> None:
    lengths = itertools.count(100, 50)
    agent = AgentBehaviour(talk=lambda: float(next(lengths)))
    first, sim = place(HOLD_THEN_AGENT, patience=None, agent=agent)
    second = sim.place_call(
        "+14155550101", "+18005550199", ScriptedCaller([]), start_path="/start", at=1
    )
    sim.run()
    talks = sorted(
        c.agent_done_at - c.connected_at  # type: ignore[operator]
        for c in (first, second)
    )
    assert talks == [100, 150]


def test_scheduled_actions_run_in_time_order_with_the_calls() -> None:
    call, sim = place(HOLD_THEN_AGENT, patience=None)
    seen: list[tuple[str, float, bool]] = []
    sim.schedule(20, lambda: seen.append(("login", sim.t, not call.ended)))
    sim.schedule(5, lambda: seen.append(("early", sim.t, not call.ended)))
    sim.run()
    assert seen == [("early", 5, True), ("login", 20, True)]


def test_the_prompt_listener_hears_what_the_matcher_recognises() -> None:
    class Matcher:
        def identify(self, text: str) -> tuple[str, dict[str, str]] | None:
            return ("please_hold", {}) if text == "Please hold." else None

    heard: list[tuple[str, str, str]] = []
    sim = Simulator(Pages(HOLD_THEN_AGENT), START, matcher=Matcher())  # type: ignore[arg-type]
    sim.on_prompt = lambda call, prompt, params, language: heard.append(
        (prompt, call.heard[-1], language)
    )
    sim.place_call("+14155550100", "+18005550199", ScriptedCaller([]), start_path="/start")
    sim.run()
    assert heard == [("please_hold", "Please hold.", "en-US")]
