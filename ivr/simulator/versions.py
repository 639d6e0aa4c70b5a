"""`ivr simulate --rules-version N|live|draft` (and `--draft`): simulate a rules version stored in the
database ($DATABASE_URL, `ivr.rules.store`) instead of the files on disk, and, for `--explore`, what
making that version live would do to the calls in progress.

The chosen version's files are written to a directory of their own (`Sources.directory`) and the
simulation runs on them as if `--rules DIR/routing_rules.yaml --prompts DIR/voice_prompts` had been
given: every mode (a call, `--calls`, `--scenario`, `--explore`, `--load`) works unchanged, and the
simulator's in-process app keeps its own throw-away database, so nothing of the line is touched.

Strands (`strands`): the queues and menus the live version has and the explored one removes. Calls
are pinned to the version they started with, so nothing is dropped: a caller waiting in a removed
queue, or standing in a removed menu, finishes on their version; new callers cannot get there. A
removed queue with callers waiting in it (read now from the line's Redis, $REDIS_URL) is a warning;
when Redis cannot be asked, the count is unknown and it is a warning too.
"""

from __future__ import annotations

from collections.abc import Iterable
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


@dataclass(frozen=True)
class Strand:
    """A queue or menu of the live version that the explored version removes."""

    what: Literal["queue", "menu"]
    id: str
    waiting: int | None = None
    """Queues: callers waiting in it now, every language (None: unknown). Menus: not counted."""
    by_language: dict[str, int] = field(default_factory=dict)
    unknown: str | None = None
    """Why the count is unknown (Redis not reachable, not configured)."""

    @property
    def warning(self) -> bool:
        """A removed queue that has (or may have) callers waiting in it."""
        return self.what == "queue" and self.waiting != 0

    @property
    def message(self) -> str:
        if self.what == "menu":
            return (
                f"menu {self.id} is removed: callers in it now finish on their version; "
                "new callers cannot reach it"
            )
        if self.waiting is None:
            return (
                f"queue {self.id} is removed and how many callers are waiting in it is unknown "
                f"({self.unknown}); any who are finish on the version they started with"
            )
        if self.waiting == 0:
            return f"queue {self.id} is removed; no caller is waiting in it now"
        callers = "1 caller is" if self.waiting == 1 else f"{self.waiting} callers are"
        return (
            f"queue {self.id} is removed but {callers} waiting in it "
            "(they finish on the version they started with)"
        )

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
        if self.what == "queue":
            data |= {"waiting": self.waiting, "by_language": self.by_language}
            if self.unknown:
                data["unknown"] = self.unknown
        return data


def strands(live: Rules, explored: Rules, settings: Settings) -> list[Strand]:
    """The queues and menus `live` has and `explored` removes, each removed queue with the callers
    waiting in it now on the line's Redis ($REDIS_URL)."""
    gone_queues = [q for q in live.queues if q not in explored.queues]
    gone_menus = [m for m in live.menus if m not in explored.menus]
    return [
        *count_waiting(gone_queues, live.language_codes, settings),
        *(Strand("menu", menu) for menu in gone_menus),
    ]


def count_waiting(queues: list[str], languages: Iterable[str], settings: Settings) -> list[Strand]:
    """Each queue with the callers waiting in it now, every language counted (`CallQueue.size`)."""
    if not queues:
        return []
    if settings.redis_url == EMBEDDED_REDIS:
        why = "REDIS_URL is not set: the line's Redis is not known"
        return [Strand("queue", q, unknown=why) for q in queues]
    languages = list(languages)
    try:
        client = connect(settings.redis_url)
    except ValueError as exc:
        return [Strand("queue", q, unknown=f"REDIS_URL: {exc}") for q in queues]
    try:
        line = CallQueue(client, clock_from(settings.clock_start, settings.clock_anchor))
        found = []
        for queue in queues:
            counts = {language: line.size(queue, language) for language in languages}
            found.append(
                Strand(
                    "queue",
                    queue,
                    sum(counts.values()),
                    {language: n for language, n in counts.items() if n},
                )
            )
        return found
    except redis.RedisError as exc:
        why = f"the line's Redis did not answer: {exc}"
        return [Strand("queue", q, unknown=why) for q in queues]
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
            return [f"explored {chosen.name} {against}: it removes no queue and no menu"]
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
