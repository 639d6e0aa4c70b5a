"""`ivr rules` (the history of the live rules: show, diff, roll back, stage a draft for testers,
promote it) and `ivr incident` (the incident notice). They read and change $DATABASE_URL; every
instance takes a change up within $IVR_RULES_RELOAD_SECONDS (2 s by default)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ivr.clock import clock_from
from ivr.command import CommandError, reading_database
from ivr.config import Settings
from ivr.incidents import Incident
from ivr.rules.loader import RulesError
from ivr.rules.release import (
    Files,
    Released,
    live_rules,
    promote,
    publish,
    rollback,
    start_incident_as_written,
)
from ivr.rules.store import RulesStore, Sources, StoreError, Version


def add_parser(commands: Any) -> None:
    """Register `ivr rules ...` and `ivr incident ...` on the `ivr` command's subparsers."""
    rules = commands.add_parser(
        "rules", help="rules versions: history, show, diff, rollback, drafts", description=__doc__
    )
    sub = rules.add_subparsers(dest="rules_command", required=True)

    history = sub.add_parser("history", help="every version, oldest first, and incidents")
    history.add_argument("--json", action="store_true", help="the versions as JSON")
    history.set_defaults(run=_history)

    show = sub.add_parser("show", help="a version's rules file (or one prompt catalog)")
    show.add_argument("version", help="a version number, `live` or `draft`")
    show.add_argument("--catalog", metavar="LANGUAGE", help="show this language's prompt catalog")
    show.set_defaults(run=_show)

    diff = sub.add_parser("diff", help="what changed from version A to B, in plain words")
    diff.add_argument("a", help="a version number, `live` or `draft`")
    diff.add_argument("b", help="a version number, `live` or `draft`")
    diff.set_defaults(run=_diff)

    back = sub.add_parser("rollback", help="make an earlier version live again (a new version)")
    back.add_argument("version", type=int)
    back.add_argument(
        "--no-write", action="store_true", help="leave this machine's rules files as they are"
    )
    back.set_defaults(run=_rollback)

    release = sub.add_parser(
        "publish", help="make a rules file live, or with --draft stage it for the testers"
    )
    release.add_argument("file", nargs="?", help="rules file (default: $ROUTING_RULES)")
    release.add_argument("--prompts", help="voice prompt folder (default: $VOICE_PROMPTS)")
    release.add_argument(
        "--draft", action="store_true", help="only the numbers under `testers:` hear it"
    )
    release.add_argument("--note", default="", help="a word on what the change is for")
    release.add_argument(
        "--no-write", action="store_true", help="leave this machine's rules files as they are"
    )
    release.set_defaults(run=_publish)

    up = sub.add_parser("promote", help="make the draft live for everyone")
    up.add_argument(
        "--no-write", action="store_true", help="leave this machine's rules files as they are"
    )
    up.set_defaults(run=_promote)

    discard = sub.add_parser("discard-draft", help="testers hear the live version again")
    discard.set_defaults(run=_discard)

    incident = commands.add_parser(
        "incident", help="the incident notice callers hear before they queue", description=__doc__
    )
    isub = incident.add_subparsers(dest="incident_command", required=True)
    begin = isub.add_parser("start", help="switch the incident notice on (on every instance)")
    begin.add_argument(
        "--issues", required=True, help="the issues it concerns, comma-separated (withdrawal,...)"
    )
    begin.add_argument(
        "--eta", help='when it should be fixed: "2026-12-07 18:00 UTC" (said in callers\' zones)'
    )
    begin.add_argument("--languages", help="only callers of these languages (comma-separated)")
    begin.set_defaults(run=_incident_start)
    end = isub.add_parser("end", help="switch the incident notice off")
    end.set_defaults(run=_incident_end)
    status = isub.add_parser("status", help="the incident notice that is on, and past ones")
    status.add_argument("--json", action="store_true")
    status.set_defaults(run=_incident_status)


def by_cli() -> str:
    """Who made a change from the command line."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name (a container without a passwd entry)
        return "cli"


@contextmanager
def _store(doing: str) -> Iterator[tuple[RulesStore, Settings]]:
    settings = Settings.from_env()
    with reading_database(settings.database_url, doing) as database:
        try:
            yield RulesStore(database, settings.voice_prompts / "audio"), settings
        except StoreError as exc:
            raise CommandError(f"cannot {doing}: {exc}") from exc
        except RulesError as exc:
            problems = "\n".join(str(p) for p in exc.problems)
            raise CommandError(f"cannot {doing}: the rules have problems:\n{problems}") from exc


def _now(settings: Settings) -> Any:
    return clock_from(settings.clock_start, settings.clock_anchor).now()


def _files(args: argparse.Namespace, settings: Settings) -> Files | None:
    return None if args.no_write else Files(settings.routing_rules, settings.voice_prompts)


def version_id(store: RulesStore, given: str) -> int:
    """A version named on the command line: its number, `live` or `draft`."""
    if given in ("live", "draft"):
        state = store.state()
        found = state.live_id if given == "live" else state.draft_id
        if found is None:
            raise StoreError(f"there is no {given} version yet")
        return found
    try:
        return int(given)
    except ValueError:
        raise StoreError(
            f"{given!r} is not a version: give its number, `live` or `draft`"
        ) from None


def _mark(version: Version) -> str:
    return "live" if version.live else "draft" if version.draft else ""


def _history(args: argparse.Namespace) -> int:
    with _store("read the rules history") as (store, _):
        versions = store.history()
        incidents = store.incidents()
    if args.json:
        print(json.dumps([v.as_json() for v in versions], indent=2))
        return 0
    if not versions:
        print("no version stored yet: the first instance to start publishes its rules file")
    rows = [(v.at, _version_line(v)) for v in versions]
    for incident in incidents:
        assert incident.started_at is not None  # every stored incident has started
        rows.append(
            (incident.started_at, f"     incident {incident.id} on   {_incident(incident)}")
        )
        if incident.ended_at is not None:
            rows.append(
                (incident.ended_at, f"     incident {incident.id} off  by {incident.ended_by}")
            )
    for at, line in sorted(rows, key=lambda row: row[0]):
        print(f"{at:%Y-%m-%d %H:%M:%S}Z  {line}")
    return 0


def _version_line(v: Version) -> str:
    return f"{v.id:>4} {_mark(v):<5} {v.sha256[:12]}  {v.summary} by {v.by}" + (
        f": {v.note}" if v.note else ""
    )


def _incident(incident: Incident) -> str:
    eta = f", ETA {incident.eta:%Y-%m-%d %H:%M} UTC" if incident.eta else ""
    languages = f", languages {','.join(sorted(incident.languages))}" if incident.languages else ""
    return f"issues {','.join(sorted(incident.issues))}{eta}{languages} by {incident.started_by}"


def _show(args: argparse.Namespace) -> int:
    with _store("show the version") as (store, _):
        sources = store.sources(version_id(store, args.version))
    if args.catalog:
        text = sources.catalogs.get(f"{args.catalog}.yaml")
        if text is None:
            raise CommandError(
                f"version {args.version} has no catalog {args.catalog} "
                f"(it has: {', '.join(n.removesuffix('.yaml') for n in sorted(sources.catalogs))})"
            )
        sys.stdout.write(text)
    else:
        sys.stdout.write(sources.rules_text)
    return 0


def _diff(args: argparse.Namespace) -> int:
    from ivr.rules.diff import describe_changes

    with _store("compare the versions") as (store, _):
        a, b = version_id(store, args.a), version_id(store, args.b)
        old, new = store.bundle(a), store.bundle(b)
    changes = describe_changes(old, new)
    print(f"from version {a} to version {b}:")
    for change in changes or ["nothing changed"]:
        print(f"  {change}")
    return 0


def _released(released: Released, what: str, settings: Settings) -> None:
    v = released.version
    print(
        f"version {v.id} ({what}) is live; every instance takes it up within "
        f"{settings.rules_reload_seconds:g} s"
    )
    if released.files_note:
        print(f"note: {released.files_note}", file=sys.stderr)


def _rollback(args: argparse.Namespace) -> int:
    with _store("roll back") as (store, settings):
        released = rollback(store, args.version, by_cli(), _now(settings), _files(args, settings))
    _released(released, f"rollback to version {args.version}", settings)
    return 0


def _publish(args: argparse.Namespace) -> int:
    with _store("publish the rules") as (store, settings):
        rules_file = Path(args.file) if args.file else settings.routing_rules
        prompts = Path(args.prompts) if args.prompts else settings.voice_prompts
        try:
            sources = Sources.read(rules_file, prompts)
        except OSError as exc:
            raise CommandError(f"cannot read {rules_file}: {exc.strerror or exc}") from exc
        now = _now(settings)
        if args.draft:
            draft = store.stage_draft(sources, by_cli(), now, args.note)
            print(
                f"draft version {draft.id} staged: the numbers under `testers:` hear it within "
                f"{settings.rules_reload_seconds:g} s; `ivr rules promote` makes it live"
            )
            return 0
        same = rules_file == settings.routing_rules and prompts == settings.voice_prompts
        files = None if same else _files(args, settings)
        released, new = publish(store, sources, by_cli(), now, files)
    if new:
        _released(released, "published", settings)
    else:
        print(f"version {released.version.id} is live already with these files: nothing changed")
    return 0


def _promote(args: argparse.Namespace) -> int:
    with _store("promote the draft") as (store, settings):
        released = promote(store, by_cli(), _now(settings), _files(args, settings))
    _released(released, f"draft {released.version.based_on} promoted", settings)
    return 0


def _discard(args: argparse.Namespace) -> int:
    with _store("discard the draft") as (store, settings):
        dropped = store.drop_draft(_now(settings))
    print("draft discarded: testers hear the live version" if dropped else "there is no draft")
    return 0


def _incident_start(args: argparse.Namespace) -> int:
    languages = args.languages.split(",") if args.languages else None
    with _store("start the incident") as (store, settings):
        rules = live_rules(store)
        if rules is None:
            raise CommandError("cannot start the incident: no rules version is live yet")
        issues = args.issues.split(",")
        now = _now(settings)
        incident = start_incident_as_written(
            store, rules, issues, args.eta, languages, by_cli(), now
        )
    print(
        f"incident {incident.id} on: {_incident(incident)}; every instance plays it within "
        f"{settings.rules_reload_seconds:g} s"
    )
    return 0


def _incident_end(args: argparse.Namespace) -> int:
    with _store("end the incident") as (store, settings):
        ended = store.end_incident(by_cli(), _now(settings))
    if ended is None:
        print("no incident notice is on")
    else:
        print(f"incident {ended.id} off: callers no longer hear it")
    return 0


def _incident_status(args: argparse.Namespace) -> int:
    with _store("read the incidents") as (store, _):
        on = store.state().incident
        incidents = store.incidents()
    if args.json:
        print(
            json.dumps(
                {
                    "on": None if on is None else incident_json(on),
                    "incidents": [incident_json(i) for i in incidents],
                },
                indent=2,
            )
        )
        return 0
    print(f"on: incident {on.id}, {_incident(on)}" if on else "no incident notice is on")
    return 0


def incident_json(incident: Incident) -> dict[str, Any]:
    """An incident as the CLI and the HTTP endpoint show it."""
    return {
        "id": incident.id,
        "issues": sorted(incident.issues),
        "languages": None if incident.languages is None else sorted(incident.languages),
        "eta": incident.eta.isoformat() if incident.eta else None,
        "started_at": incident.started_at.isoformat() if incident.started_at else None,
        "started_by": incident.started_by,
        "ended_at": incident.ended_at.isoformat() if incident.ended_at else None,
        "ended_by": incident.ended_by,
    }
