"""`ivr simulate --rules-version N|live|draft` (and `--draft`): simulate a rules version stored in the
database ($DATABASE_URL, `ivr.rules.store`) instead of the files on disk, and, for `--explore`, what
making that version live would do to the calls in progress.

The chosen version's files are written to a directory of their own (`Sources.directory`) and the
simulation runs on them as if `--rules DIR/routing_rules.yaml --prompts DIR/voice_prompts` had been
given: every mode (a call, `--calls`, `--scenario`, `--explore`, `--load`) works unchanged, and the
simulator's in-process app keeps its own throw-away database, so nothing of the line is touched.

Strands (`strands`): the queues, languages and menus the live version has and the explored one
removes. Calls are pinned to the version they started with, so nothing is dropped: a caller waiting
in a removed queue (or in a removed language's lines), or standing in a removed menu, finishes on
their version; new callers cannot get there. A removed queue or language with callers waiting (read
now from the line's Redis, $REDIS_URL) is a warning; when Redis cannot be asked, the count is
unknown and it is a warning too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import redis

from ivr.clock import clock_from
from ivr.command import CommandError, reading_database
from ivr.config import EMBEDDED_REDIS, Settings
from ivr.queue import CallQueue, connect
from ivr.rules.check import load_bundle
from ivr.rules.cli import version_id
from ivr.rules.schema import Rules
from ivr.rules.store import RULES_FILE_NAME, RulesStore, Sources, StoreError


@dataclass(frozen=True)
class ChosenVersion:
    """A stored version to simulate: its files on disk, and the live version's to compare with."""

    asked: str
    """As given on the command line: a number, `live` or `draft`."""
    id: int
    rules: Path
    prompts: Path
    live_id: int | None
    live_rules: Path | None
    live_prompts: Path | None

    @property
    def name(self) -> str:
        """'version 12', 'the draft (version 14)', 'the live version (12)'."""
        if self.asked == "draft":
            return f"the draft (version {self.id})"
        if self.id == self.live_id:
            return f"the live version ({self.id})"
        return f"version {self.id}"


def choose_version(asked: str, settings: Settings) -> ChosenVersion:
    """The version `asked` names in $DATABASE_URL, its files written out; `CommandError` when the
    database cannot be read or there is no such version."""
    doing = f"simulate rules version {asked}"
    audio = settings.voice_prompts / "audio"
    with reading_database(settings.database_url, doing) as database:
        store = RulesStore(database, audio)
        try:
            chosen = version_id(store, asked)
            sources = store.sources(chosen)
            live_id = store.state().live_id
            live = store.sources(live_id) if live_id is not None else None
        except StoreError as exc:
            raise CommandError(f"cannot {doing}: {exc}") from exc
    folder = sources.directory(audio)
    live_folder = _folder(live, audio)
    return ChosenVersion(
        asked,
        chosen,
        folder / RULES_FILE_NAME,
        folder / "voice_prompts",
        live_id,
        None if live_folder is None else live_folder / RULES_FILE_NAME,
        None if live_folder is None else live_folder / "voice_prompts",
    )


def _folder(sources: Sources | None, audio: Path) -> Path | None:
    return None if sources is None else sources.directory(audio)


# --- what the change would strand -----------------------------------------------------------------


Removed = Literal["queue", "language", "menu"]


@dataclass(frozen=True)
class Strand:
    """A queue, a language or a menu of the live version that the explored version removes."""

    what: Removed
    id: str
    waiting: int | None = None
    """Callers waiting now in the lines removed (None: unknown). Menus: not counted."""
    parts: dict[str, int] = field(default_factory=dict)
    """Those callers by line: by language for a queue, by queue for a language (none: 0)."""
    unknown: str | None = None
    """Why the count is unknown (Redis not reachable, not configured)."""

    @property
    def warning(self) -> bool:
        """Lines removed that have (or may have) callers waiting in them."""
        return self.what != "menu" and self.waiting != 0

    @property
    def message(self) -> str:
        if self.what == "menu":
            return (
                f"menu {self.id} is removed: callers in it now finish on their version; "
                "new callers cannot reach it"
            )
        where = "in it" if self.what == "queue" else "in its queues"
        removed = f"{self.what} {self.id} is removed"
        if self.waiting is None:
            return (
                f"{removed} and how many callers are waiting {where} is unknown "
                f"({self.unknown}); any who are finish on the version they started with"
            )
        if self.waiting == 0:
            return f"{removed}; no caller is waiting {where} now"
        callers = "1 caller is" if self.waiting == 1 else f"{self.waiting} callers are"
        if self.what == "language":
            where += ": " + ", ".join(f"{queue} {n}" for queue, n in self.parts.items())
        return f"{removed} but {callers} waiting {where} (they finish on the version they started with)"

    def line(self) -> str:
        return f"{'warning' if self.warning else 'note'}: {self.message}"

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": "strand",
            "level": "warning" if self.warning else "note",
            "removed": self.what,
            "id": self.id,
            "message": self.message,
        }
        if self.what != "menu":
            by = "by_language" if self.what == "queue" else "by_queue"
            data |= {"waiting": self.waiting, by: self.parts}
            if self.unknown:
                data["unknown"] = self.unknown
        return data


Line = tuple[str, str]
"""A queue and a language: one line of callers."""


def strands(live: Rules, explored: Rules, settings: Settings) -> list[Strand]:
    """The queues, languages and menus `live` has and `explored` removes, with the callers waiting
    now in the lines removed, on the line's Redis ($REDIS_URL)."""
    queues = [q for q in live.queues if q not in explored.queues]
    kept = [q for q in live.queues if q in explored.queues]
    languages = [code for code in live.language_codes if code not in explored.language_codes]
    by_queue = {q: [(q, code) for code in live.language_codes] for q in queues}
    by_language = {code: [(q, code) for q in kept] for code in languages}
    counts = waiting(
        [line for lines in [*by_queue.values(), *by_language.values()] for line in lines], settings
    )
    found: list[Strand] = []
    removed: tuple[tuple[Removed, dict[str, list[Line]], int], ...] = (
        ("queue", by_queue, 1),
        ("language", by_language, 0),
    )
    for what, groups, part in removed:
        for name, lines in groups.items():
            if isinstance(counts, str):
                found.append(Strand(what, name, unknown=counts))
                continue
            parts = {line[part]: counts[line] for line in lines if counts[line]}
            found.append(Strand(what, name, sum(parts.values()), parts))
    return [*found, *(Strand("menu", menu) for menu in live.menus if menu not in explored.menus)]


def waiting(lines: list[Line], settings: Settings) -> dict[Line, int] | str:
    """The callers waiting now in each line (`CallQueue.size`), or why they cannot be counted."""
    if not lines:
        return {}
    if settings.redis_url == EMBEDDED_REDIS:
        return "REDIS_URL is not set: the line's Redis is not known"
    try:
        client = connect(settings.redis_url)
    except ValueError as exc:
        return f"REDIS_URL: {exc}"
    try:
        line = CallQueue(client, clock_from(settings.clock_start, settings.clock_anchor))
        return {(queue, language): line.size(queue, language) for queue, language in lines}
    except redis.RedisError as exc:
        return f"the line's Redis did not answer: {exc}"
    finally:
        client.close()


@dataclass(frozen=True)
class Comparison:
    """The explored version against the live one: what making it live would strand."""

    chosen: ChosenVersion
    strands: list[Strand]

    @property
    def warnings(self) -> int:
        return sum(1 for s in self.strands if s.warning)

    def lines(self) -> list[str]:
        """The report's lines: what is compared, then one line per queue or menu removed."""
        chosen = self.chosen
        if chosen.live_id is None:
            return [f"explored {chosen.name}; no version is live yet, so no call is in progress"]
        if chosen.id == chosen.live_id:
            return [f"explored {chosen.name}: calls in progress keep everything they can reach"]
        against = f"against the live version ({chosen.live_id})"
        if not self.strands:
            return [f"explored {chosen.name} {against}: it removes no queue, language or menu"]
        return [f"explored {chosen.name} {against}:", *(s.line() for s in self.strands)]

    def records(self) -> list[dict[str, Any]]:
        """For --json: one record per queue or menu removed."""
        where = {"version": self.chosen.id, "live_version": self.chosen.live_id}
        return [{**s.as_json(), **where} for s in self.strands]


def compare(chosen: ChosenVersion, settings: Settings) -> Comparison:
    """What making `chosen` live would strand (nothing when it is the live version)."""
    if chosen.id == chosen.live_id or chosen.live_rules is None or chosen.live_prompts is None:
        return Comparison(chosen, [])
    live = load_bundle(chosen.live_rules, chosen.live_prompts).rules
    explored = load_bundle(chosen.rules, chosen.prompts).rules
    return Comparison(chosen, strands(live, explored, settings))
