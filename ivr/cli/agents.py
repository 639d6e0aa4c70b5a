"""`ivr agents`: the agents named in the rules and their PINs (`$IVR_AGENT_PINS`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ivr.config import Settings
from ivr.credentials import PinFileError, PinStore, pin_problem
from ivr.hash_file import read_new_secret
from ivr.rules.loader import RulesError, load_rules
from ivr.rules.schema import Rules


def _agent_rules(args: argparse.Namespace, settings: Settings) -> tuple[Path, Rules] | None:
    """The rules naming the agents (`--rules`, else $ROUTING_RULES); None, said why, if broken."""
    rules_file = Path(args.rules) if args.rules else settings.routing_rules
    try:
        rules, _ = load_rules(rules_file)
    except RulesError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None
    return rules_file, rules


def _set_pin(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    found = _agent_rules(args, settings)
    if found is None:
        return 1
    rules_file, rules = found
    if args.agent not in rules.agents:
        known = ", ".join(sorted(rules.agents)) or "none"
        print(f"no agent {args.agent!r} in {rules_file} (its agents: {known})", file=sys.stderr)
        return 1
    pin = read_new_secret("PIN", "--pin-stdin", from_stdin=args.pin_stdin, strip=True)
    if pin is None:
        return 1
    problem = pin_problem(pin)
    if problem:
        print(f"PIN not set: {problem}", file=sys.stderr)
        return 1
    store = PinStore(settings.agent_pins)
    try:
        store.set_pin(args.agent, pin)
    except (PinFileError, OSError) as exc:
        print(f"PIN not set: {exc}", file=sys.stderr)
        return 1
    print(f"PIN of {args.agent} set in {settings.agent_pins} (a running server uses it at once)")
    return 0


def _remove_pin(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    try:
        removed = PinStore(settings.agent_pins).remove(args.agent)
    except (PinFileError, OSError) as exc:
        print(f"PIN not removed: {exc}", file=sys.stderr)
        return 1
    if not removed:
        print(f"{args.agent} has no PIN in {settings.agent_pins}", file=sys.stderr)
        return 1
    print(f"PIN of {args.agent} removed: {args.agent} can no longer log in")
    return 0


def _list_agents(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    found = _agent_rules(args, settings)
    if found is None:
        return 1
    _, rules = found
    store = PinStore(settings.agent_pins)
    try:
        with_pins = store.agents()
    except PinFileError as exc:
        print(exc, file=sys.stderr)
        return 1
    width = max([len("AGENT"), *map(len, rules.agents)])
    print(f"{'AGENT':<{width}}  EXTENSION  PIN")
    for agent_id, agent in rules.agents.items():
        state = "set" if agent_id in with_pins else "not set: cannot log in"
        print(f"{agent_id:<{width}}  {agent.extension:<9}  {state}")
    for agent_id in sorted(with_pins - set(rules.agents)):
        print(f"{agent_id} has a PIN but is not in the rules (ivr agents remove-pin {agent_id})")
    return 0


def add_parser(commands: Any) -> None:
    """Add `ivr agents` and its subcommands to the `ivr` command."""
    agents = commands.add_parser("agents", help="the agents and their PINs ($IVR_AGENT_PINS)")
    agent_commands = agents.add_subparsers(dest="agents_command", required=True)
    rules_help = "rules file naming the agents (default: $ROUTING_RULES or routing_rules.yaml)"
    set_pin = agent_commands.add_parser(
        "set-pin", help="set an agent's PIN (6-12 digits), stored as a salted hash"
    )
    set_pin.add_argument("agent", help="the agent's id in the rules file")
    set_pin.add_argument("--rules", help=rules_help)
    set_pin.add_argument(
        "--pin-stdin", action="store_true", help="read the PIN from one line of stdin (scripts)"
    )
    set_pin.set_defaults(run=_set_pin)
    remove_pin = agent_commands.add_parser("remove-pin", help="remove an agent's PIN")
    remove_pin.add_argument("agent")
    remove_pin.set_defaults(run=_remove_pin)
    listing = agent_commands.add_parser(
        "list", help="the agents in the rules, their extensions, whether each has a PIN"
    )
    listing.add_argument("--rules", help=rules_help)
    listing.set_defaults(run=_list_agents)
