"""Micro-benchmark of speech at the main menu: what words cost the router and a webhook.

Run from the project root: `.venv/bin/python -m bench.micro_speech` (or through `python -m bench.run`).

1. The router alone: every utterance of the speech corpora (bench/speech/corpus/) through
   `Router.route` at the main menu, several passes; median, p99 and max per utterance.
2. Webhooks in-process (`bench.profile.build_app`: signatures checked, SQLite, fakeredis), calls in
   turn: the language menu's answer (what the caller hears next is the main menu, listening), then
   at the main menu a key to a sub-menu (2: funds), a key to a queue (4: complaints; joining a
   queue is what most words lead to) or words (an English corpus sentence as `SpeechResult`), in
   rotation so all see the same machine; p50 and p99 of each kind.

Copied into an export of an older commit (`git archive C | tar -x -C DIR; cp bench/micro_speech.py
DIR/bench/`), it times that commit's main menu the same way: the figure the issue compares (the main
menu's answer within 1.2x of the p99 before speech). There, words are not heard (silence).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "bench" / "speech" / "corpus"
FALLBACK_SENTENCES = ("my withdrawal never arrived", "I want to speak to a person")


def sentences() -> list[tuple[str, str]]:
    """(language, what was said) of every corpus utterance (a fallback when there is no corpus)."""
    found = []
    for path in sorted(CORPUS.glob("*/*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        found += [(data["language"], u["said"]) for u in data["utterances"]]
    return found or [("en-US", text) for text in FALLBACK_SENTENCES]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def _summary_ms(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "count": len(ms),
        "p50_ms": round(statistics.median(ms), 3),
        "p99_ms": round(_percentile(ms, 0.99), 3),
        "max_ms": round(max(ms), 3),
    }


def router_times(passes: int) -> dict[str, Any]:
    """`Router.route` per utterance at the main menu (absent before speech: None)."""
    from ivr.rules.check import load_bundle

    bundle = load_bundle(ROOT / "routing_rules.yaml", ROOT / "voice_prompts")
    router = getattr(bundle, "router", None)
    if router is None:
        return {"skipped": "no router in this checkout"}
    from ivr.speech import Utterance

    said = sentences()
    for language, text in said:  # warm the stem cache as a running service has it warm
        router.route("main", language, Utterance(text, 0.9))
    times = []
    for _ in range(passes):
        for language, text in said:
            started = time.perf_counter()
            router.route("main", language, Utterance(text, 0.9))
            times.append(time.perf_counter() - started)
    return {"utterances": len(said), "passes": passes, **_summary_ms(times)}


def webhook_times(calls: int) -> dict[str, Any]:
    """The main menu's answer, and a key or words at it, in-process (see the module)."""
    from bench.loadgen import ACCOUNT_SID, CALLED_NUMBER
    from bench.profile import BASE_URL, TOKEN, build_app

    said = [text for language, text in sentences() if language == "en-US"]
    with tempfile.TemporaryDirectory(prefix="micro-speech-") as work:
        app = build_app(f"sqlite:///{work}/speech.sqlite3", "embedded://")
        client = app.test_client()
        validator = RequestValidator(TOKEN)
        kinds: dict[str, list[float]] = {
            "main_menu": [],
            "key_to_menu": [],
            "key_to_queue": [],
            "words": [],
        }
        for number in range(calls + 5):  # the first 5 calls warm imports, pools and caches
            base = {
                "AccountSid": ACCOUNT_SID,
                "CallSid": "CA" + uuid.uuid4().hex,
                "Direction": "inbound",
                "From": f"+1212555{number % 10_000:04d}",
                "To": CALLED_NUMBER,
                "CallStatus": "in-progress",
            }

            def post(path: str, form: dict[str, str]) -> tuple[float, str]:
                headers = {
                    "X-Twilio-Signature": validator.compute_signature(BASE_URL + path, form),
                    "I-Twilio-Idempotency-Token": uuid.uuid4().hex,
                }
                started = time.perf_counter()
                response = client.post(path, data=form, headers=headers)
                elapsed = time.perf_counter() - started
                if response.status_code >= 300:
                    raise RuntimeError(f"{path}: HTTP {response.status_code}")
                return elapsed, response.get_data(as_text=True)

            _, document = post("/voice/incoming", base)
            elapsed, document = post(_action(document), {**base, "Digits": "2"})
            menu = _action(document)
            turn = number % 3
            if turn == 0:
                form = {**base, "SpeechResult": said[number % len(said)], "Confidence": "0.9"}
                kind = "words"
            else:  # 2: the funds menu; 4: the complaints queue (most words end in a queue)
                form = {**base, "Digits": "2" if turn == 1 else "4"}
                kind = "key_to_menu" if turn == 1 else "key_to_queue"
            spoken, _ = post(menu, form)
            post("/voice/status", {**base, "CallStatus": "completed", "CallDuration": "30"})
            if number >= 5:
                kinds["main_menu"].append(elapsed)
                kinds[kind].append(spoken)
    return {kind: _summary_ms(times) for kind, times in kinds.items()}


def _action(document: str) -> str:
    """The action of the TwiML document's Gather, as a path (the app's URLs are relative)."""
    import xml.etree.ElementTree as ET

    gather = ET.fromstring(document).find("Gather")
    if gather is None:
        raise RuntimeError(f"no Gather in {document[:300]!r}")
    return gather.attrib["action"]


def run(quick: bool = False) -> dict[str, Any]:
    """Measure both; plain JSON-able data."""
    return {
        "router": router_times(passes=2 if quick else 10),
        "webhooks": webhook_times(calls=60 if quick else 900),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.micro_speech", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer passes and calls")
    args = parser.parse_args(argv)
    print(json.dumps(run(quick=args.quick), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
