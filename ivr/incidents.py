"""An incident notice: what callers about some issues hear before they queue while it is on.

A plain value (no store): `ivr.rules.store` keeps incidents in the database, `ivr.rules.live`
hands the one that is on to every webhook, and the call flow decides who hears it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@dataclass(frozen=True)
class Incident:
    """An incident notice that admins switched on (`ivr incident start`)."""

    id: int
    issues: frozenset[str]
    """The ticket issues it concerns (the `issue` of menu options: withdrawal, deposit, ...)."""
    eta: datetime | None = None
    """When the exchange expects it fixed (aware); None: no time is said."""
    languages: frozenset[str] | None = None
    """The caller languages that hear it; None: every language."""
    started_at: datetime | None = None
    started_by: str = ""
    ended_at: datetime | None = None
    ended_by: str | None = None

    def concerns(self, issue: str | None, language: str) -> bool:
        """Whether a caller who chose `issue`, speaking `language`, hears the notice."""
        if issue is None or issue not in self.issues:
            return False
        return self.languages is None or language in self.languages


_ZONE_AT_END = re.compile(r"^(?P<when>.+?)\s+(?P<zone>UTC|GMT|Z|[A-Za-z_]+/[A-Za-z_/+-]+)$")


def parse_eta(text: str) -> datetime:
    """An ETA as admins write it: "2026-12-07 18:00 UTC", "2026-12-07 19:00 Europe/Berlin" or
    ISO 8601 with an offset ("2026-12-07T18:00+01:00"). A time without a zone is refused
    (`ValueError`): whose 18:00 would it be?"""
    text = text.strip()
    found = _ZONE_AT_END.match(text)
    try:
        if found:
            when = datetime.fromisoformat(found["when"].replace(" ", "T", 1))
            if when.tzinfo is not None:
                raise ValueError
            zone = found["zone"]
            tz = UTC if zone in ("UTC", "GMT", "Z") else ZoneInfo(zone)
            return when.replace(tzinfo=tz).astimezone(UTC)
        when = datetime.fromisoformat(text.replace(" ", "T", 1))
    except (ValueError, ZoneInfoNotFoundError):
        raise ValueError(
            f"{text!r} is not a time: write it like '2026-12-07 18:00 UTC', "
            "'2026-12-07 19:00 Europe/Berlin' or '2026-12-07T18:00+01:00'"
        ) from None
    if when.tzinfo is None:
        raise ValueError(
            f"{text!r} has no time zone: add one ('2026-12-07 18:00 UTC') so that every caller "
            "hears the right time"
        )
    return when.astimezone(UTC)
