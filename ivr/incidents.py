"""An incident notice: what callers about some issues hear before they queue while it is on.

A plain value (no store): `ivr.rules.store` keeps incidents in the database, `ivr.rules.live`
hands the one that is on to every webhook, and the call flow decides who hears it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


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
