"""Rendering decisions as TwiML: every webhook URL carries the call's reference, documents are reused."""

from __future__ import annotations

import random
import shutil
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from ivr import twiml
from ivr.clock import epoch_ms
from ivr.flow import (
    Caller,
    CallState,
    Decision,
    Flow,
    Gather,
    GoTo,
    HoldInfo,
    Pause,
    Say,
)
from ivr.rules.check import load_bundle
from ivr.twiml import render
from ivr.waits import WaitEstimate
from tests.support import PROMPTS, RULES, reference_in

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def urls(document: str) -> list[str]:
    root = ET.fromstring(document)
    found = [e.attrib["action"] for e in root.iter() if "action" in e.attrib]
    return found + [e.text or "" for e in root.iter("Redirect")]


def test_every_webhook_url_carries_the_reference_and_only_it_differs() -> None:
    bundle = load_bundle(RULES, PROMPTS)
    flow = Flow(bundle, NOW)
    decision = flow.on_input(CallState("language"), "2", Caller("+14155550100", ""))

    first = render(decision, bundle.prompts, {"ref": "4821093"})
    second = render(decision, bundle.prompts, {"ref": "1377580"})
    plain = render(decision, bundle.prompts)

    assert urls(first) and all("ref=4821093" in url for url in urls(first))
    assert reference_in(ET.fromstring(second)) == "1377580"
    assert second == first.replace("4821093", "1377580")
    assert "ref=" not in plain
    assert plain == first.replace("&amp;ref=4821093", "")


def test_an_edited_prompt_catalog_is_rendered_afresh(tmp_path: Path) -> None:
    prompts = tmp_path / "voice_prompts"
    shutil.copytree(PROMPTS, prompts)
    before = load_bundle(RULES, prompts)
    catalog = prompts / "en-US.yaml"
    catalog.write_text(
        catalog.read_text(encoding="utf-8").replace("Please hold", "Kindly hold"), encoding="utf-8"
    )
    after = load_bundle(RULES, prompts)
    state = CallState("menu", "en-US", "funds")
    caller = Caller("+14155550100", "")

    old = render(Flow(before, NOW).on_input(state, "1", caller), before.prompts, {"ref": "4821093"})
    new = render(Flow(after, NOW).on_input(state, "1", caller), after.prompts, {"ref": "4821093"})

    assert "Please hold" in old and "Kindly hold" in new


def test_a_reference_that_is_not_digits_is_rendered_as_it_is_not_from_a_template() -> None:
    bundle = load_bundle(RULES, PROMPTS)
    decision = Flow(bundle, NOW).answer(Caller("+14155550100", ""))
    document = render(decision, bundle.prompts, {"ref": "a&b"})
    assert all("ref=a%26b" in url for url in urls(document))


def test_every_url_carries_the_decisions_silence_clock_and_only_it_differs() -> None:
    bundle = load_bundle(RULES, PROMPTS)
    caller = Caller("+14155550100", "")
    closed = CallState("closed", "en-US", "funds", "funds", 30)
    # Two callers at the same after-hours offer, silent since different times: the states the
    # flow derives from theirs carry their own clocks, the URLs the decision's.
    first = Flow(bundle, NOW).on_input(
        replace(closed, silent_since=epoch_ms(NOW) - 1000), None, caller
    )
    second = Flow(bundle, NOW).on_input(
        replace(closed, silent_since=epoch_ms(NOW) - 2000), None, caller
    )
    assert (first.silent_since, second.silent_since) == (epoch_ms(NOW) - 1000, epoch_ms(NOW) - 2000)

    one = render(first, bundle.prompts, {"ref": "4821093"})
    two = render(second, bundle.prompts, {"ref": "4821093"})

    assert urls(one) and all(f"silent_since={epoch_ms(NOW) - 1000}" in url for url in urls(one))
    assert all(url.count("silent_since=") == 1 for url in urls(one))
    assert two == one.replace(str(epoch_ms(NOW) - 1000), str(epoch_ms(NOW) - 2000))
    assert CallState.from_params(dict(parse_qsl(urlsplit(urls(one)[0]).query))) == replace(
        closed, tries=1, silent_since=epoch_ms(NOW) - 1000
    )


def test_a_decision_without_a_clock_gives_its_urls_none() -> None:
    bundle = load_bundle(RULES, PROMPTS)
    decision = Flow(bundle, NOW).answer(Caller("+14155550100", ""))
    assert "silent_since=" in render(decision, bundle.prompts)
    assert "silent_since=" not in render(replace(decision, silent_since=None), bundle.prompts)


def test_a_menu_that_listens_takes_keys_and_speech_in_the_callers_language() -> None:
    bundle = load_bundle(RULES, PROMPTS)
    caller = Caller("+14155550100", "")
    for key, listens_in in (("1", "cmn-Hans-CN"), ("2", "en-US"), ("3", "fr-FR"), ("4", "de-DE")):
        decision = Flow(bundle, NOW).on_input(CallState("language"), key, caller)
        gather = ET.fromstring(render(decision, bundle.prompts)).find("Gather")
        assert gather is not None
        assert gather.attrib["input"] == "dtmf speech"
        assert gather.attrib["language"] == listens_in
        # Not "auto": Twilio warns "Gather: speechTimeout auto cannot be used with model default"
        # (warning 13335), and the line leaves the model to Twilio.
        assert gather.attrib["speechTimeout"] == "2" and "speechModel" not in gather.attrib
        # One key still ends the menu at once, and # still reaches us ("go back").
        assert (gather.attrib["numDigits"], gather.attrib["finishOnKey"]) == ("1", "")
        hints = gather.attrib["hints"].split(", ")
        assert 0 < len(hints) <= 500 and all(0 < len(h) <= 100 for h in hints)

    funds = Flow(bundle, NOW).on_input(CallState("menu", "en-US", "main"), "2", caller)
    gather = ET.fromstring(render(funds, bundle.prompts)).find("Gather")
    assert gather is not None and gather.attrib["input"] == "dtmf"
    assert "language" not in gather.attrib and "hints" not in gather.attrib


def test_callers_holding_share_templates_and_hear_what_building_afresh_gives() -> None:
    """A thousand callers, each arriving at their own time, at their own place in line, hearing
    their own wait, round after round: a handful of document shapes serve them all, and every
    answer is byte for byte the document built verb by verb."""
    bundle = load_bundle(RULES, PROMPTS)
    hold = CallState("hold", "en-US", "funds", "funds", 30)
    seal = lambda url, state: f"{len(url)}.{state.tries}"  # noqa: E731  # differs per URL
    rng = random.Random(22)
    templates_before = len(twiml._TEMPLATES)
    for caller in range(1000):
        arrived = epoch_ms(NOW) - rng.randrange(3_600_000)
        state = replace(hold, since=arrived, tries=rng.randrange(12))
        for _ in range(3):
            position = rng.randrange(1, 400)
            median = rng.randrange(0, 3600)
            info = HoldInfo(
                position,
                waited_seconds=rng.randrange(bundle.rules.defaults.silence_limit),
                estimate=WaitEstimate(median, median // 2, median * 2),
                agents_logged_in=rng.choice((0, 3)),
                can_call_back=rng.random() < 0.5,
            )
            decision = Flow(bundle, NOW).hold(state, info)
            carry = {"ref": str(4_000_000 + caller)}
            document = render(decision, bundle.prompts, carry, seal)
            assert document == twiml._render_afresh(decision, bundle.prompts, carry, seal)
            gather = decision.actions[-1]
            assert isinstance(gather, Gather) and gather.then.step == "hold"
            state = gather.then

    assert len(twiml._TEMPLATES) - templates_before <= 50


def test_words_and_urls_with_characters_xml_escapes_are_filled_in_escaped() -> None:
    bundle = load_bundle(RULES, PROMPTS)
    decision = Decision(
        (
            Say('Tom & Jerry <say> "hi"', "en-US", "custom"),
            Say("", "en-US", "empty"),
            GoTo(CallState("menu", "en-US", "funds", silent_since=5)),
        )
    )
    for carry in ({"ref": 'a&b<c>"d'}, {"ref": "1234567", "x": "\t\n"}):
        document = render(decision, bundle.prompts, carry)
        assert document == twiml._render_afresh(decision, bundle.prompts, carry)
    assert ET.fromstring(document).find("Say").text == 'Tom & Jerry <say> "hi"'  # type: ignore[union-attr]


def test_the_least_recently_used_template_goes_first_when_the_cache_is_full() -> None:
    bundle = load_bundle(RULES, PROMPTS)
    templates = twiml._Templates(2)
    shapes = [(Pause(seconds),) for seconds in (1, 2, 3)]
    first = templates.get(bundle.prompts, shapes[0], 0)
    templates.get(bundle.prompts, shapes[1], 0)
    assert templates.get(bundle.prompts, shapes[0], 0) is first  # used again: now the newest
    templates.get(bundle.prompts, shapes[2], 0)  # full: the second goes

    assert len(templates) == 2
    assert templates.get(bundle.prompts, shapes[0], 0) is first
    assert templates.get(bundle.prompts, shapes[1], 0).filled([]).count("<Pause") == 1


def test_webhook_urls_quote_their_values_exactly_as_urlencode_does() -> None:
    values = ["", "4821093", "a b", "a+b", "a&b=c", "x_y.z-~", "é", "中文", "1:2::4", "\n", "%41"]
    params = {f"k{index}": value for index, value in enumerate(values)} | {"a b": "c"}
    assert twiml._query(params) == urlencode(params)
