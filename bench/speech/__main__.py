"""`python -m bench.speech`: run the speech corpora through the shipped router, write the report.

    .venv/bin/python -m bench.speech [--set heldout] [--out docs/qa/speech.md] [--corpus DIR]

Exits 2 when a corpus file does not follow the format or names an issue the rules do not have;
a target missed does not change the exit status (the figures are reported, not asserted).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.speech import (
    CORPUS,
    MENU,
    PROMPTS,
    REPORT,
    ROOT,
    RULES,
    SETS,
    CorpusError,
    leaves,
    load_corpora,
    problems,
    report,
    run_all,
    summary,
)
from ivr.rules.check import load_bundle
from ivr.speech.router import Route, Utterance


def commit() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    dirty = subprocess.run(
        ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, timeout=10
    ).stdout.strip()
    return (done.stdout.strip() or "unknown") + (" (with uncommitted changes)" if dirty else "")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.speech", description=__doc__)
    parser.add_argument(
        "--set", choices=SETS, action="append", help="only this set (may be repeated)"
    )
    parser.add_argument("--out", type=Path, default=REPORT, help="the report (docs/qa/speech.md)")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="folder of <set>/<lang>.yaml")
    parser.add_argument("--rules", type=Path, default=RULES, help=argparse.SUPPRESS)
    parser.add_argument("--prompts", type=Path, default=PROMPTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    bundle = load_bundle(args.rules, args.prompts)
    try:
        corpora = load_corpora(args.corpus, args.set or SETS, bundle.rules.language_codes)
    except CorpusError as exc:
        print(exc, file=sys.stderr)
        return 2
    wrong = [p for corpus in corpora for p in problems(corpus, leaves(bundle.rules))]
    if not corpora:
        wrong.append(f"{args.corpus}: no corpus files of the sets {args.set or list(SETS)}")
    if wrong:
        print("\n".join(wrong), file=sys.stderr)
        return 2

    def route(language: str, said: Utterance) -> Route:
        return bundle.router.route(MENU, language, said)

    results = run_all(bundle.rules, route, corpora)
    command = ".venv/bin/python -m bench.speech" + (" " + " ".join(argv) if argv else "")
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report(results, bundle.rules, command, commit(), date), encoding="utf-8")
    print(summary(results))
    shown = args.out.resolve()
    print(f"\nwrote {shown.relative_to(ROOT) if shown.is_relative_to(ROOT) else shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
