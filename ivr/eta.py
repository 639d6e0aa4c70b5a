"""When an incident is expected to be fixed, as a caller hears it: their language, their time zone.

Pure: Babel and pytz only. The zone is the caller's country's (Twilio's `FromCountry`, an ISO code,
the first zone pytz lists for it), else the one the call flow falls back on (the team's); the zone
is always named, so a caller in Los Angeles who hears New York's time still hears which it is.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

import pytz
from babel import Locale
from babel.dates import get_timezone_name, tokenize_pattern

from ivr.hours import spoken_opening
from ivr.rules.prompts import BUILT_IN_WORDS, DateWords

_SAID_ZONE_NAMES = {("zh", "Asia/Shanghai"): "北京时间"}
"""Names callers say themselves where CLDR's differ: in Chinese, China's time is "Beijing time"
(CLDR has "China Standard Time", which no announcement in China uses)."""


def country_zone(country: str | None) -> str | None:
    """The first time zone pytz lists for an ISO country code ("DE": Europe/Berlin), or None when
    the country is unknown or missing."""
    if not country:
        return None
    zones = pytz.country_timezones.get(country.upper())
    return zones[0] if zones else None


def spoken_eta(
    eta: datetime, now: datetime, zone: str, locale: str, words: DateWords = BUILT_IN_WORDS
) -> str:
    """`eta` as said to a caller in `zone` speaking `locale` (a Babel locale, `Catalog.locale`):
    the day as that zone's calendar has it ("today", "tomorrow", else the date), the clock time
    and the zone's name: "heute um 19:00 MEZ", "北京时间 明天 02:00", "on Tuesday, December 8 at
    3:00 AM Japan Standard Time". Each carries its own preposition (`hours.spoken_opening`), so
    a prompt says "fixed {eta}"; `words` are the catalog's `dates:`."""
    if eta.tzinfo is None or now.tzinfo is None:
        raise ValueError("spoken_eta() needs aware datetimes")
    tz = pytz.timezone(zone)
    local = tz.normalize(eta.astimezone(tz))
    when, _ = spoken_opening(local, now, locale, words)
    name = zone_name(local, locale)
    return f"{name} {when}" if _zone_first(locale) else f"{when} {name}"


def zone_name(when: datetime, locale: str) -> str:
    """The name of `when`'s zone at that instant (standard or summer time), to be said aloud:
    the locale's abbreviation when it has a pronounceable one ("MEZ", "EST"), else the long name
    ("Japan Standard Time"), never an offset like "+0900"."""
    zone = getattr(when.tzinfo, "zone", None)
    babel_locale = Locale.parse(locale)
    said = _SAID_ZONE_NAMES.get((babel_locale.language, zone or ""))
    if said is not None:
        return said
    short = str(get_timezone_name(when, width="short", locale=babel_locale))
    if short.isalpha():
        return short
    return str(get_timezone_name(when, width="long", locale=babel_locale))


@lru_cache(maxsize=16)
def _zone_first(locale: str) -> bool:
    """Whether the locale names the zone before the time (its full time format: Chinese
    "zzzz HH:mm:ss", English "h:mm:ss a zzzz")."""
    pattern = str(Locale.parse(locale).time_formats["full"].pattern)
    fields = [value[0] for _, value in tokenize_pattern(pattern) if isinstance(value, tuple)]
    zone = next((i for i, f in enumerate(fields) if f in "zZvV"), None)
    hour = next((i for i, f in enumerate(fields) if f in "hHkK"), None)
    return zone is not None and hour is not None and zone < hour
