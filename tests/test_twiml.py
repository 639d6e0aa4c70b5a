"""Rendering decisions as TwiML: every webhook URL carries the call's reference, documents are reused."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from ivr.flow import Caller, CallState, Flow
from ivr.rules.check import load_bundle
from ivr.twiml import render
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
