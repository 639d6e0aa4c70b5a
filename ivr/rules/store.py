"""Every rules version that went live, the draft testers hear, and incident notices, in the database.

The database says which version is live on every instance; the rules file is where an edit enters.

- `publish` stores the rules file and prompt catalogs as a new version and makes it live. A
  version with the same content as the live one is not stored twice (several instances noticing
  one edit of a shared file publish it once).
- `rollback` makes an earlier version's content live again as a new version (`kind` rollback,
  `based_on` the version restored), so the history reads in the order things happened.
- `stage_draft` stores a version that only tester numbers hear; `promote` makes it live.
- `start_incident` / `end_incident` switch the incident notice on and off.

Each change bumps `rules_state.serial`, which every process polls (`ivr.rules.live`), so a change
is live everywhere within the poll interval. Every version is checked (`load_bundle`) before it is
stored: a version that could not run is never made live.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import JSON, Integer, String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, defer, mapped_column

from ivr.db import Base, Database
from ivr.incidents import Incident
from ivr.rules.bundle import Bundle
from ivr.rules.check import load_bundle
from ivr.rules.loader import Problem, RulesError

Kind = Literal["file", "publish", "rollback", "draft", "promote"]
KINDS: tuple[Kind, ...] = ("file", "publish", "rollback", "draft", "promote")
RULES_FILE_NAME = "routing_rules.yaml"
"""The name the rules file has in a stored version's own directory (`Sources.directory`)."""


class RulesVersionRow(Base):
    __tablename__ = "rules_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    by: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    sha256: Mapped[str] = mapped_column(String(64))
    content_sha256: Mapped[str] = mapped_column(String(64), index=True)
    rules_text: Mapped[str] = mapped_column(Text)
    catalogs: Mapped[dict[str, str]] = mapped_column(JSON)
    based_on: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(String(500), default="")


class IncidentRow(Base):
    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    issues: Mapped[list[str]] = mapped_column(JSON)
    languages: Mapped[list[str] | None] = mapped_column(JSON)
    eta: Mapped[datetime | None]
    started_at: Mapped[datetime]
    started_by: Mapped[str] = mapped_column(String(200))
    ended_at: Mapped[datetime | None]
    ended_by: Mapped[str | None] = mapped_column(String(200))


class RulesStateRow(Base):
    __tablename__ = "rules_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    serial: Mapped[int] = mapped_column(Integer)
    live_id: Mapped[int | None] = mapped_column(Integer)
    draft_id: Mapped[int | None] = mapped_column(Integer)
    incident_id: Mapped[int | None] = mapped_column(Integer)
    changed_at: Mapped[datetime]


class StoreError(Exception):
    """A change the store refuses, with a sentence for the admin (no such version, no draft...)."""


@dataclass(frozen=True)
class Sources:
    """What a version is made of: the rules file's text and each prompt catalog's (by file name)."""

    rules_text: str
    catalogs: dict[str, str]
    rules_name: str = field(default=RULES_FILE_NAME, compare=False)
    """What problems call the rules file (its path, or the version it is)."""
    prompts_name: str = field(default="voice_prompts", compare=False)
    """What problems call the prompt folder."""

    @classmethod
    def read(cls, rules_path: Path | str, prompts_dir: Path | str) -> Sources:
        """The files as they are on disk now."""
        prompts_dir = Path(prompts_dir)
        catalogs = {}
        if prompts_dir.is_dir():
            catalogs = {
                p.name: p.read_bytes().decode("utf-8") for p in sorted(prompts_dir.glob("*.yaml"))
            }
        text = Path(rules_path).read_bytes().decode("utf-8")
        return cls(text, catalogs, str(rules_path), str(prompts_dir))

    @property
    def sha256(self) -> str:
        """The rules file's SHA-256, as `sha256sum routing_rules.yaml` prints it."""
        return hashlib.sha256(self.rules_text.encode()).hexdigest()

    @property
    def content_sha256(self) -> str:
        """One digest of the rules file and every catalog: equal exactly when the contents are."""
        digest = hashlib.sha256(self.rules_text.encode())
        for name in sorted(self.catalogs):
            digest.update(f"\0{name}\0".encode())
            digest.update(self.catalogs[name].encode())
        return digest.hexdigest()

    def directory(self, audio_dir: Path | None) -> Path:
        """A directory holding these files (`routing_rules.yaml`, `voice_prompts/`), written once
        per content and kept for the process's life; recorded audio comes from `audio_dir`."""
        root = Path(tempfile.gettempdir()) / f"ivr-rules-{os.getuid()}" / self.content_sha256
        if (root / RULES_FILE_NAME).exists():
            return root
        root.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=".building-", dir=root.parent))
        prompts = building / "voice_prompts"
        prompts.mkdir()
        for name, text in self.catalogs.items():
            if "/" in name or not name.endswith(".yaml"):
                continue  # never a path out of the directory
            (prompts / name).write_bytes(text.encode())
        if audio_dir is not None and audio_dir.is_dir():
            (prompts / "audio").symlink_to(audio_dir.resolve(), target_is_directory=True)
        (building / RULES_FILE_NAME).write_bytes(self.rules_text.encode())
        with contextlib.suppress(OSError):  # another process wrote the same content first
            building.rename(root)
        return root

    def load(self, audio_dir: Path | None) -> Bundle:
        """Check and load these files as the service would (`RulesError` when they are bad)."""
        root = self.directory(audio_dir)
        try:
            return load_bundle(root / RULES_FILE_NAME, root / "voice_prompts")
        except RulesError as exc:  # said of the files the admin knows, not of this copy
            names = {
                str(root / RULES_FILE_NAME): self.rules_name,
                str(root / "voice_prompts"): self.prompts_name,
            }
            raise RulesError([_renamed(p, names) for p in exc.problems]) from None

    def write_to(self, rules_path: Path, prompts_dir: Path) -> None:
        """Replace the files on disk with these (each atomically), leaving other files alone."""
        prompts_dir.mkdir(parents=True, exist_ok=True)
        for name, text in self.catalogs.items():
            if "/" not in name and name.endswith(".yaml"):
                _replace(prompts_dir / name, text)
        _replace(rules_path, self.rules_text)


def _renamed(problem: Problem, names: dict[str, str]) -> Problem:
    for copy, name in names.items():
        if problem.file == copy or problem.file.startswith(copy + "/"):
            return dataclasses.replace(problem, file=name + problem.file[len(copy) :])
    return problem


def _replace(path: Path, text: str) -> None:
    if path.exists() and path.read_bytes() == text.encode():
        return
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(text.encode())
    temporary.replace(path)


@dataclass(frozen=True)
class Version:
    """One stored version, as the history lists it."""

    id: int
    at: datetime
    by: str
    kind: str
    sha256: str
    content_sha256: str
    based_on: int | None
    note: str
    live: bool
    draft: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sha256": self.sha256,
            "at": self.at.isoformat(),
            "by": self.by,
            "live": self.live,
            "draft": self.draft,
            "kind": self.kind,
            "based_on": self.based_on,
            "note": self.note,
        }

    @property
    def summary(self) -> str:
        """What this version was, in a few words ("rollback to version 3", "draft")."""
        if self.kind == "rollback":
            return f"rollback to version {self.based_on}"
        if self.kind == "promote":
            return f"draft {self.based_on} promoted"
        if self.kind == "file":
            return "edit of the rules file"
        return {"publish": "published", "draft": "draft"}.get(self.kind, self.kind)


@dataclass(frozen=True)
class LineState:
    """What every instance serves: the live version, the draft and the incident notice that is on."""

    serial: int
    live_id: int | None
    draft_id: int | None
    incident: Incident | None


def _incident(row: IncidentRow) -> Incident:
    return Incident(
        id=row.id,
        issues=frozenset(row.issues),
        eta=row.eta,
        languages=None if row.languages is None else frozenset(row.languages),
        started_at=row.started_at,
        started_by=row.started_by,
        ended_at=row.ended_at,
        ended_by=row.ended_by,
    )


class RulesStore:
    """The versions, the pointer to the live one and the draft, and incidents, in one database."""

    def __init__(self, db: Database, audio_dir: Path | None = None) -> None:
        self.db = db
        self.audio_dir = audio_dir
        """Where stored versions' recorded prompts come from (the running service's)."""

    # --- reading ------------------------------------------------------------------------------

    def serial(self) -> int:
        """The number every change bumps (0 before the first): cheap to poll."""
        with self.db.session() as session:
            serial = session.scalar(select(RulesStateRow.serial).where(RulesStateRow.id == 1))
            return serial or 0

    def state(self) -> LineState:
        """Which version is live, which is the draft, and the incident notice that is on."""
        with self.db.session() as session:
            row = session.get(RulesStateRow, 1)
            if row is None:
                return LineState(0, None, None, None)
            incident = session.get(IncidentRow, row.incident_id) if row.incident_id else None
            return LineState(
                row.serial,
                row.live_id,
                row.draft_id,
                _incident(incident) if incident is not None else None,
            )

    def history(self) -> list[Version]:
        """Every version, oldest first."""
        with self.db.session() as session:
            row = session.get(RulesStateRow, 1)
            live, draft = (row.live_id, row.draft_id) if row is not None else (None, None)
            text = (defer(RulesVersionRow.rules_text), defer(RulesVersionRow.catalogs))
            rows = session.scalars(
                select(RulesVersionRow).options(*text).order_by(RulesVersionRow.id)
            )
            return [_version(r, live, draft) for r in rows]

    def recently_live(self, since: datetime) -> list[int]:
        """The versions live at some moment since `since`, oldest first (the one live at `since`
        too): those calls in progress may have started on."""
        with self.db.session() as session:
            went_live = RulesVersionRow.kind != "draft"
            later = session.scalars(
                select(RulesVersionRow.id)
                .where(went_live, RulesVersionRow.at >= since)
                .order_by(RulesVersionRow.id)
            ).all()
            before = session.scalar(
                select(RulesVersionRow.id)
                .where(went_live, RulesVersionRow.at < since)
                .order_by(RulesVersionRow.id.desc())
                .limit(1)
            )
            return ([before] if before is not None else []) + list(later)

    def version(self, version_id: int) -> Version:
        """One version (`StoreError` when there is none)."""
        with self.db.session() as session:
            row = self._row(session, version_id)
            state = session.get(RulesStateRow, 1)
            live, draft = (state.live_id, state.draft_id) if state is not None else (None, None)
            return _version(row, live, draft)

    def sources(self, version_id: int) -> Sources:
        """The files of a version (`StoreError` when there is none)."""
        with self.db.session() as session:
            row = self._row(session, version_id)
            name = f"rules version {version_id}"
            return Sources(
                row.rules_text,
                dict(row.catalogs),
                f"{name}: {RULES_FILE_NAME}",
                f"{name}: voice_prompts",
            )

    def bundle(self, version_id: int) -> Bundle:
        """A version, loaded as the service runs it (`StoreError` when there is none)."""
        return self.sources(version_id).load(self.audio_dir)

    def known(self, content_sha256: str) -> bool:
        """Whether any stored version has this content."""
        with self.db.session() as session:
            found = session.scalar(
                select(RulesVersionRow.id)
                .where(RulesVersionRow.content_sha256 == content_sha256)
                .limit(1)
            )
            return found is not None

    def incidents(self) -> list[Incident]:
        """Every incident notice, oldest first."""
        with self.db.session() as session:
            rows = session.scalars(select(IncidentRow).order_by(IncidentRow.id))
            return [_incident(r) for r in rows]

    @staticmethod
    def _row(session: Session, version_id: int) -> RulesVersionRow:
        row = session.get(RulesVersionRow, version_id)
        if row is None:
            raise StoreError(f"there is no rules version {version_id}")
        return row

    # --- changing -----------------------------------------------------------------------------

    def publish(
        self,
        sources: Sources,
        by: str,
        now: datetime,
        *,
        kind: Kind = "publish",
        based_on: int | None = None,
        note: str = "",
    ) -> tuple[Version, bool]:
        """Make `sources` live as a new version; (the live version, whether it is new).

        Raises `RulesError` when the files could not run. When the live version already has this
        content, nothing is stored and the live version is returned."""
        sources.load(self.audio_dir)  # checked before anything is stored
        with self.db.session() as session:
            state = self._locked_state(session, now)
            if state.live_id is not None:
                live = self._row(session, state.live_id)
                if live.content_sha256 == sources.content_sha256 and kind in ("file", "publish"):
                    return _version(live, state.live_id, state.draft_id), False
            row = self._insert(session, sources, by, now, kind, based_on, note)
            state.live_id = row.id
            self._bump(state, now)
            return _version(row, state.live_id, state.draft_id), True

    def rollback(self, version_id: int, by: str, now: datetime) -> Version:
        """Make an earlier version's content live again, as a new version."""
        sources = self.sources(version_id)
        version, _ = self.publish(sources, by, now, kind="rollback", based_on=version_id)
        return version

    def stage_draft(self, sources: Sources, by: str, now: datetime, note: str = "") -> Version:
        """Store `sources` as the draft that tester numbers hear (replacing any earlier draft)."""
        sources.load(self.audio_dir)
        with self.db.session() as session:
            state = self._locked_state(session, now)
            row = self._insert(session, sources, by, now, "draft", None, note)
            state.draft_id = row.id
            self._bump(state, now)
            return _version(row, state.live_id, state.draft_id)

    def promote(self, by: str, now: datetime) -> Version:
        """Make the draft live for everyone (a new version based on it); there is no draft after."""
        draft_id = self.state().draft_id
        if draft_id is None:
            raise StoreError(
                "there is no draft to promote: stage one with `ivr rules publish --draft`"
            )
        sources = self.sources(draft_id)
        sources.load(self.audio_dir)
        with self.db.session() as session:
            state = self._locked_state(session, now)
            if state.draft_id != draft_id:
                raise StoreError("the draft changed meanwhile; look at it again before promoting")
            row = self._insert(session, sources, by, now, "promote", draft_id, "")
            state.live_id, state.draft_id = row.id, None
            self._bump(state, now)
            return _version(row, state.live_id, None)

    def drop_draft(self, now: datetime) -> bool:
        """Testers hear the live version again; False when there was no draft."""
        with self.db.session() as session:
            state = self._locked_state(session, now)
            if state.draft_id is None:
                return False
            state.draft_id = None
            self._bump(state, now)
            return True

    def start_incident(
        self,
        issues: frozenset[str],
        eta: datetime | None,
        languages: frozenset[str] | None,
        by: str,
        now: datetime,
    ) -> Incident:
        """Switch an incident notice on (ending the one that was on, if any)."""
        if not issues:
            raise StoreError("an incident needs at least one issue")
        with self.db.session() as session:
            state = self._locked_state(session, now)
            if state.incident_id is not None:
                self._end(session, state.incident_id, by, now)
            row = IncidentRow(
                issues=sorted(issues),
                languages=None if languages is None else sorted(languages),
                eta=eta,
                started_at=now,
                started_by=by[:200],
            )
            session.add(row)
            session.flush()
            state.incident_id = row.id
            self._bump(state, now)
            return _incident(row)

    def end_incident(self, by: str, now: datetime) -> Incident | None:
        """Switch the incident notice off; the incident that ended, or None when none was on."""
        with self.db.session() as session:
            state = self._locked_state(session, now)
            if state.incident_id is None:
                return None
            row = self._end(session, state.incident_id, by, now)
            state.incident_id = None
            self._bump(state, now)
            return _incident(row)

    @staticmethod
    def _end(session: Session, incident_id: int, by: str, now: datetime) -> IncidentRow:
        row = session.get(IncidentRow, incident_id)
        assert row is not None
        row.ended_at, row.ended_by = now, by[:200]
        return row

    def _locked_state(self, session: Session, now: datetime) -> RulesStateRow:
        """The state row, locked until the transaction ends (created when missing)."""
        statement = select(RulesStateRow).where(RulesStateRow.id == 1).with_for_update()
        row = session.scalars(statement).one_or_none()
        if row is not None:
            return row
        try:
            with session.begin_nested():
                session.add(RulesStateRow(id=1, serial=0, changed_at=now))
        except IntegrityError:  # another process created it first
            pass
        return session.scalars(statement).one()

    @staticmethod
    def _bump(state: RulesStateRow, now: datetime) -> None:
        state.serial += 1
        state.changed_at = now

    @staticmethod
    def _insert(
        session: Session,
        sources: Sources,
        by: str,
        now: datetime,
        kind: Kind,
        based_on: int | None,
        note: str,
    ) -> RulesVersionRow:
        row = RulesVersionRow(
            at=now,
            by=by[:200],
            kind=kind,
            sha256=sources.sha256,
            content_sha256=sources.content_sha256,
            rules_text=sources.rules_text,
            catalogs=sources.catalogs,
            based_on=based_on,
            note=note[:500],
        )
        session.add(row)
        session.flush()
        return row


def _version(row: RulesVersionRow, live_id: int | None, draft_id: int | None) -> Version:
    return Version(
        id=row.id,
        at=row.at,
        by=row.by,
        kind=row.kind,
        sha256=row.sha256,
        content_sha256=row.content_sha256,
        based_on=row.based_on,
        note=row.note,
        live=row.id == live_id,
        draft=row.id == draft_id,
    )
