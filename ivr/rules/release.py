"""Releasing a change: what the CLI, the dashboard and the incident endpoint do with the store.

Each action changes the store (`ivr.rules.store`), which every instance takes up within its poll
interval. Where this machine has the rules files, a rollback, a promotion or a publication also
writes the new live version's files there, so that the file an admin opens next is the one
callers hear (an edit of it afterwards is published as a new version, as any edit is).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ivr.incidents import Incident, parse_eta
from ivr.rules.schema import Rules
from ivr.rules.store import RulesStore, Sources, StoreError, Version

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Files:
    """This machine's rules file and prompt catalogs (`ROUTING_RULES`, `VOICE_PROMPTS`)."""

    rules: Path
    prompts: Path

    def write(self, sources: Sources) -> str | None:
        """Write `sources` there; None, or why they could not be written (read-only, ...)."""
        try:
            sources.write_to(self.rules, self.prompts)
        except OSError as exc:
            log.warning("the live version could not be written to %s: %s", self.rules, exc)
            return f"{self.rules} was not rewritten ({exc.strerror or exc})"
        return None


@dataclass(frozen=True)
class Released:
    """A version that went live, and what became of this machine's files."""

    version: Version
    files_note: str | None = None
    """None when the files were rewritten (or none were given); else why they were not."""


def rollback(
    store: RulesStore, version_id: int, by: str, now: datetime, files: Files | None
) -> Released:
    """Make an earlier version live again (a new version in the history)."""
    version = store.rollback(version_id, by, now)
    return Released(version, _write(store, version, files))


def publish(
    store: RulesStore, sources: Sources, by: str, now: datetime, files: Files | None
) -> tuple[Released, bool]:
    """Make `sources` live; (what is live, whether it is a new version)."""
    version, new = store.publish(sources, by, now)
    return Released(version, _write(store, version, files)), new


def promote(store: RulesStore, by: str, now: datetime, files: Files | None) -> Released:
    """Make the draft live for everyone."""
    version = store.promote(by, now)
    return Released(version, _write(store, version, files))


def _write(store: RulesStore, version: Version, files: Files | None) -> str | None:
    return None if files is None else files.write(store.sources(version.id))


def issues_of(rules: Rules) -> list[str]:
    """Every issue a caller can choose in the menus on their way to a queue (what an incident
    may concern: its notice is heard before they queue)."""
    found = {
        option.issue_name
        for menu in rules.menus.values()
        for option in menu.options.values()
        if option.queue is not None
    }
    return sorted(found)


def start_incident(
    store: RulesStore,
    rules: Rules,
    issues: Iterable[str],
    eta: datetime | None,
    languages: Iterable[str] | None,
    by: str,
    now: datetime,
) -> Incident:
    """Switch the incident notice on, for issues and languages the live rules have."""
    wanted = {issue.strip() for issue in issues if issue.strip()}
    known = issues_of(rules)
    unknown = sorted(wanted - set(known))
    if not wanted:
        raise StoreError(f"name the issues it concerns (the menus have: {', '.join(known)})")
    if unknown:
        raise StoreError(
            f"no menu option records the issue {', '.join(unknown)} "
            f"(the menus have: {', '.join(known)})"
        )
    chosen = None
    if languages is not None:
        chosen = {language.strip() for language in languages if language.strip()}
        strange = sorted(chosen - set(rules.language_codes))
        if strange or not chosen:
            raise StoreError(
                f"the line does not speak {', '.join(strange) or 'no language'} "
                f"(it speaks: {', '.join(rules.language_codes)})"
            )
    if eta is not None and eta <= now:
        raise StoreError(f"the ETA {eta:%Y-%m-%d %H:%M} UTC has passed: give a time to come")
    return store.start_incident(
        frozenset(wanted), eta, None if chosen is None else frozenset(chosen), by, now
    )


def start_incident_as_written(
    store: RulesStore,
    rules: Rules,
    issues: Iterable[str],
    eta_text: str | None,
    languages: Iterable[str] | None,
    by: str,
    now: datetime,
) -> Incident:
    """Start an incident from what an admin wrote (the CLI's options, the form, a JSON body):
    `StoreError` with a sentence when it is wrong (an unknown issue or language, an ETA that is
    not a time or has passed)."""
    eta = None
    if eta_text is not None and eta_text.strip():
        try:
            eta = parse_eta(eta_text)
        except ValueError as exc:
            raise StoreError(str(exc)) from None
    return start_incident(store, rules, issues, eta, languages, by, now)


def live_rules(store: RulesStore) -> Rules | None:
    """The rules of the store's live version (None before anything was published)."""
    live_id = store.state().live_id
    if live_id is None:
        return None
    return store.bundle(live_id).rules
