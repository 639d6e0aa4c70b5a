"""What the dashboard's Rules and Incident pages and the incident endpoint need from the store.

The views stay thin: they read the request, call one function here or in `ivr.rules.release`,
and render. Nothing here imports Flask; the store, the release functions and the diff do the work.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ivr.incidents import Incident
from ivr.rules.diff import describe_changes
from ivr.rules.release import live_rules
from ivr.rules.schema import Rules
from ivr.rules.store import RulesStore, Sources, StoreError, Version


@dataclass(frozen=True)
class Event:
    """One line of the incident history: an incident switched on or off."""

    at: datetime
    incident: Incident
    started: bool


def newest_first(store: RulesStore) -> list[Version]:
    """Every stored version, the newest first (the way the Rules page lists them)."""
    return list(reversed(store.history()))


def incident_events(incidents: Iterable[Incident]) -> list[Event]:
    """Every start and end of an incident notice, the newest first."""
    events = []
    for incident in incidents:
        if incident.started_at is not None:
            events.append(Event(incident.started_at, incident, True))
        if incident.ended_at is not None:
            events.append(Event(incident.ended_at, incident, False))
    return sorted(events, key=lambda e: (e.at, e.incident.id, not e.started), reverse=True)


def changes_from_live(store: RulesStore, version_id: int) -> list[str]:
    """What hearing `version_id` instead of the live version changes, in the admin's words
    (`StoreError` when there is no live version or no such version)."""
    live_id = store.state().live_id
    if live_id is None:
        raise StoreError("no version is live yet: there is nothing to compare with")
    return describe_changes(store.bundle(live_id), store.bundle(version_id))


def pasted_sources(store: RulesStore, rules_text: str) -> Sources:
    """A pasted rules file with the live version's prompt catalogs (a browser sends CRLF line
    ends from a textarea: the stored file has the LF ends the file on disk has)."""
    live_id = store.state().live_id
    if live_id is None:
        raise StoreError("no version is live yet: a draft needs the live version's prompts")
    text = rules_text.replace("\r\n", "\n")
    if text and not text.endswith("\n"):
        text += "\n"
    return Sources(text, store.sources(live_id).catalogs)


def issues_and_languages(store: RulesStore, serving: Rules) -> tuple[Rules, list[str]]:
    """The rules an incident is checked against (the store's live version; `serving`, this
    process's, before anything was stored) and the languages they speak."""
    rules = live_rules(store) or serving
    return rules, list(rules.language_codes)


def incident_request(body: Any) -> tuple[list[str], str | None, list[str] | None]:
    """(issues, eta, languages) of the endpoint's JSON body; `StoreError` when its shape is wrong.
    No languages (absent, null or an empty list) means every language, as on the form."""
    if not isinstance(body, Mapping):
        raise StoreError(
            'send a JSON object: {"issues": ["withdrawal"], "eta": "2026-12-07 18:00 UTC", '
            '"languages": ["de-DE"]}'
        )
    unknown = sorted(set(body) - {"issues", "eta", "languages"})
    if unknown:
        raise StoreError(f"unknown field {', '.join(unknown)}: give issues, eta and languages")
    issues = _strings(body.get("issues"), "issues")
    if issues is None:
        raise StoreError('name the issues it concerns: "issues": ["withdrawal", ...]')
    eta = body.get("eta")
    if eta is not None and not isinstance(eta, str):
        raise StoreError('"eta" is a text like "2026-12-07 18:00 UTC"')
    languages = _strings(body.get("languages"), "languages")
    return issues, eta, languages or None


def _strings(value: Any, field: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise StoreError(f'"{field}" is a list of texts, like ["withdrawal", "deposit"]')
    return value
