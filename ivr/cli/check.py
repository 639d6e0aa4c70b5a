"""`ivr check`: validate a rules file and its voice prompts."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ivr.config import Settings
from ivr.rules.check import load_bundle
from ivr.rules.loader import RulesError


def _check(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    rules_file = Path(args.file) if args.file else settings.routing_rules
    prompts_dir = Path(args.prompts) if args.prompts else settings.voice_prompts
    try:
        bundle = load_bundle(rules_file, prompts_dir)
    except RulesError as exc:
        for problem in exc.problems:
            print(problem)
        return 1
    for warning in bundle.warnings:  # worth a look, but the rules load and serve
        print(warning)
    rules = bundle.rules
    warned = f", {len(bundle.warnings)} warning(s)" if bundle.warnings else ""
    print(
        f"{rules_file}: ok ({len(rules.languages)} languages, {len(rules.menus)} menus, "
        f"{len(rules.queues)} queues, {len(rules.teams)} teams{warned})"
    )
    return 0


def add_parser(commands: Any) -> None:
    """Add `ivr check` to the `ivr` command."""
    check = commands.add_parser("check", help="validate a rules file and its voice prompts")
    check.add_argument(
        "file", nargs="?", help="rules file (default: $ROUTING_RULES or routing_rules.yaml)"
    )
    check.add_argument(
        "--prompts", help="voice prompt folder (default: $VOICE_PROMPTS or voice_prompts)"
    )
    check.set_defaults(run=_check)
