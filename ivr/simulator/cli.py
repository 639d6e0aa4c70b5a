"""`ivr simulate`: place simulated calls and print what the caller hears and does."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ivr.command import count, positive_int, positive_seconds, seconds
from ivr.config import Settings
from ivr.rules.check import load_bundle
from ivr.rules.loader import RulesError
from ivr.simulator.caller import (
    Caller,
    InteractiveCaller,
    ScriptedCaller,
    ScriptError,
    Utter,
    parse_script,
)
from ivr.simulator.engine import AgentBehaviour, SimulatedCall, SimulationError, Simulator
from ivr.simulator.exchange import parse_exchange
from ivr.simulator.progress import Progress
from ivr.simulator.progress import wanted as progress_wanted
from ivr.simulator.report import printer, summary_lines, summary_of, ticket_line, ticket_record
from ivr.simulator.session import CatalogMatcher, OverHttp, in_process
from ivr.simulator.shared import parse_when, ticket_of
from ivr.simulator.versions import ChosenVersion, choose_version, compare

DEFAULT_SCRIPTS = ["2,2,2", "2,6,1,w2,h", "2,0", "1,3,1"]
"""`--calls` without `--keys`: a withdrawal, a self-service answer, the operator, a Chinese caller."""


UNSIGNED = (
    "ivr simulate: TWILIO_AUTH_TOKEN is not set, so requests go unsigned: only a development "
    "server (ivr serve --dev) accepts them"
)
NOT_SIGNED_FOR_IT = (
    "ivr simulate: the server refused the unsigned requests (HTTP 403): it checks Twilio's "
    "signature, so set TWILIO_AUTH_TOKEN to its auth token"
)
WRONG_SIGNATURE = (
    "ivr simulate: the server refused the signed requests (HTTP 403): TWILIO_AUTH_TOKEN is not "
    "its auth token, or it checks signatures against another URL (its PUBLIC_BASE_URL)"
)


def add_parser(commands: Any) -> None:
    simulate = commands.add_parser(
        "simulate",
        help="place simulated calls (a Twilio stand-in) and print what the caller hears",
        description=__doc__,
    )
    simulate.add_argument("--from", dest="number", default="+14155550100", help="caller's number")
    simulate.add_argument("--to", default="+18005550199", help="the support number called")
    simulate.add_argument("--keys", default="", help='caller script, e.g. "2,w10,1,t,r12,h30"')
    simulate.add_argument(
        "--say",
        action="append",
        default=[],
        metavar="TEXT",
        help="words the caller says, one per s in --keys, in order (repeatable)",
    )
    simulate.add_argument(
        "--speech-confidence",
        type=_confidence,
        default=0.9,
        help="the Confidence Twilio sends with the --say words (0-1, default 0.9)",
    )
    simulate.add_argument(
        "--interactive", action="store_true", help="type keys (or s WORDS) as prompts come"
    )
    simulate.add_argument("--hangup-after", type=seconds, help="hang up after this many seconds")
    simulate.add_argument("--hangup-at", help="hang up on hearing a prompt containing this text")
    simulate.add_argument("--at", help="in-process: the date and time of the call")
    simulate.add_argument(
        "--url",
        help="call a running server instead (signs with TWILIO_AUTH_TOKEN; unsigned without it, "
        "for ivr serve --dev)",
    )
    simulate.add_argument("--json", action="store_true", help="machine-readable records")
    simulate.add_argument("--verbose", action="store_true", help="also print each webhook request")
    simulate.add_argument("--rules", help="rules file (default: $ROUTING_RULES)")
    simulate.add_argument("--prompts", help="prompt folder (default: $VOICE_PROMPTS)")
    simulate.add_argument(
        "--rules-version",
        metavar="VERSION",
        help="simulate a rules version stored in $DATABASE_URL instead of the files: its number, "
        "live or draft (instead of --rules and --prompts)",
    )
    simulate.add_argument(
        "--draft",
        action="store_true",
        help="simulate the draft the testers hear (--rules-version draft)",
    )
    simulate.add_argument("--agents", default="", help="agents logged in, e.g. emma,anna")
    simulate.add_argument("--agent-answers-after", type=seconds, default=5.0)
    simulate.add_argument(
        "--agent-talks", type=seconds, default=60.0, help="seconds per conversation"
    )
    simulate.add_argument("--agent-no-answer", action="store_true", help="agents never pick up")
    simulate.add_argument(
        "--play-seconds", type=positive_seconds, default=30.0, help="length of one <Play>"
    )
    simulate.add_argument(
        "--calls", type=positive_int, default=1, help="many calls at once (a summary)"
    )
    simulate.add_argument(
        "--retries",
        type=count,
        default=0,
        help="in-process: send every webhook this many more times, as Twilio retries one whose "
        "answer it lost (same URL, form and I-Twilio-Idempotency-Token)",
    )
    simulate.add_argument(
        "--status-delay",
        type=seconds,
        default=0.0,
        help="in-process: seconds between a call's end and its status callback",
    )
    simulate.add_argument(
        "--public-url",
        help="in-process: the URL Twilio requests and signs, while the app is reached at another "
        "address through a proxy that forwards the public scheme and host",
    )
    simulate.add_argument(
        "--proxy-hides-host",
        action="store_true",
        help="with --public-url: the proxy does not forward them, and PUBLIC_BASE_URL is not set "
        "(the mistake that makes every webhook fail its signature check)",
    )
    simulate.add_argument("--spread", type=seconds, default=10.0, help="seconds between arrivals")
    simulate.add_argument("--seed", type=int, default=1, help="random seed for --calls")
    simulate.add_argument(
        "--exchange",
        action="append",
        metavar="SPEC",
        help="in-process: an exchange hook (the reference implementation) that knows these "
        "numbers: known=NUMBER[@LANGUAGE][:vip][:sms],...; or down, or slow; the script's "
        "`code` keys the code it sent",
    )
    simulate.add_argument("--scenario", nargs="+", metavar="FILE", help="run scenario files")
    simulate.add_argument("--explore", action="store_true", help="walk every menu path")
    simulate.add_argument(
        "--explore-at",
        action="append",
        metavar="WHEN",
        help="with --explore: also walk at this instant (repeatable): a time, open, closed or holiday",
    )
    simulate.add_argument(
        "--load",
        nargs="+",
        metavar="FILE",
        help="run load scenarios (scenarios/waits/) and report how right the announced waits were",
    )
    simulate.add_argument(
        "--estimator",
        choices=("formula", "live"),
        help="with --load: set every queue's wait_estimate to this for the run",
    )
    simulate.set_defaults(run=main)


def main(args: argparse.Namespace) -> int:
    show = progress_wanted(args.json, args.verbose)
    try:
        chosen = _chosen_version(args)
        if args.scenario:
            from ivr.simulator.scenario import run_scenario_files

            files = [Path(f) for f in args.scenario]
            return run_scenario_files(files, _paths(args), sys.stdout, show)
        if args.load:
            from ivr.simulator.load import load_command

            rules, prompts = _paths(args)
            files = [Path(f) for f in args.load]
            return load_command(files, rules, prompts, args.estimator, args.json, sys.stdout, show)
        if args.estimator:
            raise ValueError("--estimator applies to --load runs only")
        if args.explore:
            from ivr.simulator.explore import explore_command

            compared = None if chosen is None else compare(chosen, Settings.from_env())
            explored: int = explore_command(args, _paths(args), sys.stdout, show, compared)
            return explored
        if args.calls > 1:
            return _many(args)
        return _one(args)
    except (ScriptError, SimulationError, RulesError, ValueError) as exc:
        print(f"ivr simulate: {exc}", file=sys.stderr)
        return 2


def _chosen_version(args: argparse.Namespace) -> ChosenVersion | None:
    """The stored version `--rules-version` or `--draft` names, its files standing in for
    `--rules` and `--prompts` from here on; None without either."""
    asked = args.rules_version
    if args.draft:
        if asked not in (None, "draft"):
            raise ValueError("--draft is --rules-version draft: give one of them")
        asked = "draft"
    if asked is None:
        return None
    if args.rules or args.prompts:
        raise ValueError(
            "--rules-version and --draft take the stored version's rules and prompts: "
            "leave out --rules and --prompts"
        )
    if args.url:
        raise ValueError(
            "--rules-version and --draft choose what an in-process run serves; the server at "
            "--url serves its own (call it from a tester's number to hear its draft)"
        )
    chosen = choose_version(asked.strip(), Settings.from_env())
    args.rules, args.prompts = str(chosen.rules), str(chosen.prompts)
    return chosen


def _confidence(text: str) -> float:
    """A speech recognition confidence, as Twilio sends it: 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number from 0 to 1") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number from 0 to 1")
    return value


def _said(args: argparse.Namespace) -> list[Utter]:
    """The --say texts, in order, with --speech-confidence."""
    texts = [text.strip() for text in args.say]
    if any(not text for text in texts):
        raise ScriptError("--say needs some words")
    return [Utter(text, args.speech_confidence) for text in texts]


Codes = Callable[[str], Callable[[], str | None]]
"""Where the code the exchange sent to the caller from a number is read."""


def _no_codes(number: str) -> Callable[[], str | None]:
    return lambda: None


def _paths(args: argparse.Namespace) -> tuple[Path, Path]:
    settings = Settings.from_env()
    rules = Path(args.rules) if args.rules else settings.routing_rules
    prompts = Path(args.prompts) if args.prompts else settings.voice_prompts
    return rules, prompts


def _behaviour(args: argparse.Namespace) -> AgentBehaviour:
    return AgentBehaviour(
        answers=not args.agent_no_answer,
        answer_after=args.agent_answers_after,
        talk_seconds=args.agent_talks,
    )


@contextmanager
def _simulator(
    args: argparse.Namespace, quiet: bool = False
) -> Iterator[tuple[Simulator, Any, Codes]]:
    """A simulator in-process (with the app, for tickets) or against `--url` (app is None), and
    where a caller's exchange codes are read (`--exchange`)."""
    emit = None if quiet else printer(sys.stdout, args.json, args.verbose)
    rules, prompts = _paths(args)
    if args.url:
        token = os.environ.get("TWILIO_AUTH_TOKEN") or None
        if token is None:
            print(UNSIGNED, file=sys.stderr)
        transport = OverHttp(args.url, token)
        matcher = None
        with contextlib.suppress(RulesError):  # without local rules, prompts are not recognised
            matcher = CatalogMatcher(load_bundle(rules, prompts))
        simulator = Simulator(
            transport,
            datetime.now(UTC),
            matcher=matcher,
            agent=_behaviour(args),
            play_seconds=args.play_seconds,
            on_record=emit,
        )
        if args.exchange:
            raise ValueError("--exchange is for in-process runs: the server at --url has its own")
        yield simulator, None, _no_codes
        if transport.refused:
            print(NOT_SIGNED_FOR_IT if token is None else WRONG_SIGNATURE, file=sys.stderr)
        return
    at = parse_when(args.at) if args.at else datetime.now(UTC)
    agents = tuple(a.strip() for a in args.agents.split(",") if a.strip())
    with in_process(
        at,
        rules,
        prompts,
        agents=agents,
        agent=_behaviour(args),
        play_seconds=args.play_seconds,
        on_record=emit,
        retries=args.retries,
        status_delay=args.status_delay,
        public_url=args.public_url,
        forwarded=not args.proxy_hides_host,
        exchange=parse_exchange(args.exchange) if args.exchange else None,
    ) as session:
        yield session.simulator, session.app, session.code_for


def _one(args: argparse.Namespace) -> int:
    with _simulator(args) as (simulator, app, codes):
        caller: Caller = (
            InteractiveCaller()
            if args.interactive
            else ScriptedCaller(parse_script(args.keys, _said(args)), codes(args.number))
        )
        call = simulator.place_call(
            args.number,
            args.to,
            caller,
            hangup_at_text=args.hangup_at,
            hangup_after=args.hangup_after,
        )
        simulator.run()
        fields = ticket_of(app, call.sid)
    if fields:
        print(ticket_record(call.sid, fields) if args.json else ticket_line(fields))
    elif app is None and not args.json:
        print("ticket: not visible over --url (see the server's database)")
    return 1 if call.errors else 0


def _many(args: argparse.Namespace) -> int:
    """N calls with a spread of keys and hang-up times; prints a summary."""
    rng = random.Random(args.seed)
    # A self-service caller hangs up after the answer; one who stayed silent would be sent to the
    # fallback queue, and counted there, after the menu's tries.
    scripts = [s.strip() for s in args.keys.split("|") if s.strip()] or DEFAULT_SCRIPTS
    calls: list[SimulatedCall] = []
    chosen: list[str] = []
    with (
        _simulator(args, quiet=not args.verbose) as (simulator, app, codes),
        Progress(progress_wanted(args.json, args.verbose), "calls", "calls", args.calls) as bar,
    ):
        simulator.on_call_done = lambda call: bar.advance() if call.direction == "inbound" else None
        for index in range(args.calls):
            chosen.append(rng.choice(scripts))
            number = f"+1415555{index:04d}"
            caller = ScriptedCaller(parse_script(chosen[-1], _said(args)), codes(number))
            patience = args.hangup_after or rng.uniform(60, 900)
            calls.append(
                simulator.place_call(
                    number, args.to, caller, at=index * args.spread, hangup_after=patience
                )
            )
        simulator.run()
        bar.close()
        outcomes: Counter[str] = Counter()
        rows = []
        for script, call in zip(chosen, calls, strict=True):
            fields = ticket_of(app, call.sid)
            rows.append((script, fields, call.records))
            if fields:
                outcomes[fields["outcome"] or "none"] += 1
            else:
                outcomes["agent reached" if call.reached_agent else "no agent reached"] += 1
        breakdown = summary_of(rows)
        callbacks = [c for c in simulator.calls.values() if c.direction == "outbound-api"]
    everyone = calls + callbacks
    errors = [e for call in everyone for e in call.errors]
    positions = sorted({p for call in calls for p in call.positions})
    summary = {
        "calls": len(calls),
        "outcomes": dict(outcomes),
        "answered_while_holding": sum(1 for c in calls if c.reached_agent),
        "callbacks_placed": len(callbacks),
        "answered_by_callback": sum(1 for c in callbacks if c.reached_agent),
        "positions_heard": positions,
        "by_script": breakdown["by_script"],
        "by_queue": breakdown["by_queue"],
        "wait_seconds": breakdown["wait_seconds"],
        "turned_away_queue_full": breakdown["turned_away_queue_full"],
        "errors": errors,
    }
    if args.json:
        print(json.dumps({"kind": "summary", **summary}, ensure_ascii=False))
    else:
        print(f"{len(calls)} calls: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
        print(
            f"reached an agent: {summary['answered_while_holding']} while holding, "
            f"{summary['answered_by_callback']} of {len(callbacks)} called back"
        )
        print(f"positions heard: {', '.join(map(str, positions)) or '-'}")
        for line in summary_lines(breakdown):
            print(line)
        print(f"errors: {len(errors)}")
        for error in errors[:20]:
            print(f"  {error}")
    return 1 if errors else 0
