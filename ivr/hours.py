"""Business hours: is a team open at a given instant, until when, and when it opens next.

Pure logic: the caller passes the time in (see `ivr.clock`), nothing here reads the clock or any
store. Opening hours are wall-clock ranges in the team's zone; they are turned into real instants
(pytz `localize`/`normalize`) so that daylight saving changes move the UTC times, not the hours.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from types import MappingProxyType

import holidays
import pytz
from babel import Locale, UnknownLocaleError
from babel.dates import (
    format_datetime,
    get_timezone_location,
    match_skeleton,
    tokenize_pattern,
    untokenize_pattern,
)

from ivr.rules.prompts import BUILT_IN_WORDS, DateWords
from ivr.rules.schema import Team, TimeRange

# Team is re-exported so callers can annotate with `hours.Team` without importing the schema.
__all__ = [
    "DayHours",
    "Status",
    "Team",
    "TimeRange",
    "format_opening",
    "hours_on",
    "spoken_opening",
    "status",
]

OPEN_HORIZON = timedelta(days=14)
"""An opening lasting longer than this is reported without a closing time (24/7 teams)."""
NEXT_OPEN_HORIZON_DAYS = 366
"""How many days ahead `status` looks for the next opening before answering "never"."""

HOLIDAY_LANGUAGE = "en_US"
"""Holiday names in reasons; without it the `holidays` package follows the server's locale."""

_CATALOG_LOCALES = {"zh-CN": "zh_Hans_CN", "en-US": "en_US", "fr-FR": "fr_FR", "de-DE": "de_DE"}
_DATE_SKELETON = "MMMMEEEEd"
# CLDR's "atTime" glue ("Monday, November 23 at 8:00 AM"); Babel does not ship it yet, so other
# languages fall back to Babel's plain date-time glue.
_AT_TIME = {"en": "{1} 'at' {0}", "de": "{1} 'um' {0}", "fr": "{1} 'à' {0}", "zh": "{1} {0}"}
# How a sentence leads into a date ("we open again on Monday..."); a relative day ("today",
# CLDR's own word) needs none, so the preposition belongs to the words, not to the prompt.
_ON_DATE = {"en": "on {0}", "de": "am {0}", "fr": "le {0}", "zh": "{0}"}
_DATE_WORDS_EXAMPLE = {"at_time": "{day} at {time}", "on_date": "on {date}"}


def missing_date_words(locale: str, words: DateWords) -> dict[str, str]:
    """The `dates:` settings a catalog of `locale` lacks (neither built in nor given), each with
    an example of how it is written."""
    language = _locale(locale).language
    missing = {}
    if not words.at_time and language not in _AT_TIME:
        missing["at_time"] = _DATE_WORDS_EXAMPLE["at_time"]
    if not words.on_date and language not in _ON_DATE:
        missing["on_date"] = _DATE_WORDS_EXAMPLE["on_date"]
    return missing


def _babel_glue(at_time: str) -> str:
    """`DateWords.at_time` as Babel's date-time glue: {day} is {1}, {time} is {0}, words quoted."""
    parts = re.split(r"(\{day\}|\{time\})", at_time)
    glue = {"{day}": "{1}", "{time}": "{0}"}
    return "".join(
        glue.get(part) or ("'" + part.replace("'", "''") + "'" if part.strip() else part)
        for part in parts
    )


@dataclass(frozen=True)
class DayHours:
    """Opening ranges of one local date and where they come from."""

    ranges: tuple[TimeRange, ...]
    reason: str


@dataclass(frozen=True)
class Status:
    """Whether a team is open at an instant, and the next change a caller cares about."""

    is_open: bool
    reason: str
    closes_at: datetime | None
    next_open: datetime | None


@lru_cache(maxsize=256)
def _holiday_names(country: str, subdivision: str | None, year: int) -> Mapping[date, str]:
    """Public holidays of one year (slow to build, hence cached); read-only as it is shared."""
    calendar = holidays.country_holidays(
        country, subdiv=subdivision, years=year, language=HOLIDAY_LANGUAGE
    )
    return MappingProxyType(dict(calendar))


def hours_on(team: Team, day: date) -> DayHours:
    """The team's opening ranges on a local date: override, else holiday (closed), else weekly."""
    for override in team.overrides:
        if override.date == day:
            reason = f"override: {override.note}" if override.note else "override"
            return DayHours(override.hours, reason)
    if team.holidays is not None:
        calendar = team.holidays
        name = _holiday_names(calendar.country, calendar.subdivision, day.year).get(day)
        if name is not None:
            return DayHours((), f"holiday: {name}")
    return DayHours(team.weekly.get(day.weekday(), ()), "weekly")


def _wall_clock(timestamp: int, zone: pytz.BaseTzInfo) -> datetime:
    return datetime.fromtimestamp(timestamp, zone).replace(tzinfo=None)


@lru_cache(maxsize=8192)  # pure, and asked for the same few days and hours by every caller
def _local_instant(zone: pytz.BaseTzInfo, day: date, minute: int) -> datetime:
    """The instant a wall-clock time happens: first occurrence if repeated, gap end if skipped."""
    # Built by addition so that minute 1440 (24:00) becomes midnight of the next day.
    naive = datetime.combine(day, time()) + timedelta(minutes=minute)
    # Asking for both DST flags yields both occurrences of a repeated time; for a skipped time it
    # yields the two instants on either side of the gap (wall clock before it, then after it).
    candidates = sorted(
        zone.normalize(zone.localize(naive, is_dst=is_dst)) for is_dst in (True, False)
    )
    exact = [c for c in candidates if c.replace(tzinfo=None) == naive]
    if exact:
        return exact[0]
    # A skipped time opens at the first valid instant after it, the transition itself. pytz keeps
    # its transition list private, so bisect for it between the two guesses (whole seconds).
    low, high = (int(c.timestamp()) for c in candidates)
    if _wall_clock(low, zone) > naive or _wall_clock(high, zone) < naive:
        return candidates[-1]  # pytz guessed outside a simple gap; never earlier than asked for
    while high - low > 1:
        middle = (low + high) // 2
        if _wall_clock(middle, zone) > naive:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, zone)


def _openings(team: Team, first: date, last: date) -> Iterator[tuple[datetime, datetime, str]]:
    """Opening intervals [start, end) as instants in the team's zone, dates `first`..`last`."""
    zone = pytz.timezone(team.timezone)
    day = first
    while day <= last:
        hours = hours_on(team, day)
        for span in hours.ranges:
            start = _local_instant(zone, day, span.start)
            end = _local_instant(zone, day, span.end)
            # A range lying wholly in a skipped hour never happens.
            if start < end:
                yield start, end, hours.reason
        day += timedelta(days=1)


def status(team: Team, now: datetime) -> Status:
    """Whether the team is open at `now` (aware, any zone), and until when or from when."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("status() needs an aware datetime")
    today = now.astimezone(pytz.timezone(team.timezone)).date()
    # Ranges are compared as instants rather than minutes of the local day: in the hour repeated
    # when clocks fall back the wall clock cannot tell whether a range ending (or starting) in it
    # is over, and instants keep `is_open` consistent with `closes_at` and `next_open`.
    # Earlier dates cannot matter: their ranges end by today's midnight, whose first occurrence
    # (or, if skipped, the end of the gap) is no later than any instant dated today.
    openings = _openings(team, today, today + timedelta(days=NEXT_OPEN_HORIZON_DAYS))
    for start, end, reason in openings:
        if start <= now < end:
            return Status(True, reason, _closing(end, openings, now + OPEN_HORIZON), None)
        if start > now:
            return Status(False, hours_on(team, today).reason, None, start)
    return Status(False, hours_on(team, today).reason, None, None)


def _closing(
    end: datetime, following: Iterator[tuple[datetime, datetime, str]], limit: datetime
) -> datetime | None:
    """Where an opening ending at `end` really ends once back-to-back ranges are joined."""
    for start, later_end, _ in following:
        if end > limit:
            return None
        if start > end:
            return end
        end = max(end, later_end)
    return None if end > limit else end


def _locale(code: str) -> Locale:
    try:
        return Locale.parse(_CATALOG_LOCALES.get(code) or code.replace("-", "_"))
    except (ValueError, UnknownLocaleError) as exc:
        raise ValueError(f"unknown locale {code!r}") from exc


@lru_cache(maxsize=32)
def _opening_pattern(code: str, at_time: str = "") -> tuple[Locale, str]:
    """A Babel pattern for weekday, day, month and time in the locale's own order and clock."""
    locale, glue, date_pattern, time_pattern = _opening_parts(code, at_time)
    return locale, glue.replace("{1}", date_pattern).replace("{0}", time_pattern)


@lru_cache(maxsize=32)
def _opening_parts(code: str, at_time: str = "") -> tuple[Locale, str, str, str]:
    """The locale, its "{1} at {0}" glue (`at_time`, a `DateWords.at_time`, else built in), and
    its date and time patterns for an opening."""
    locale = _locale(code)
    skeletons = locale.datetime_skeletons
    key = match_skeleton(_DATE_SKELETON, skeletons, allow_different_fields=False)
    date_pattern = str(skeletons[key].pattern) if key else str(locale.date_formats["full"].pattern)
    # Babel picks the closest skeleton but, unlike ICU, keeps its abbreviated widths ("Mon, Nov");
    # spoken text wants full names, so widen text fields (numeric months stay numeric, e.g. zh).
    tokens: list[tuple[str, str | tuple[str, int]]] = []
    for kind, value in tokenize_pattern(date_pattern):
        if isinstance(value, tuple):
            char, width = value
            if (char in "Ec" and width < 4) or (char in "ML" and width == 3):
                value = (char, 4)
        tokens.append((kind, value))
    date_pattern = untokenize_pattern(tokens)

    # The locale's short time format tells whether it reads the clock in 12 or 24 hours.
    short_time = str(locale.time_formats["short"].pattern)
    twelve_hour = any(
        isinstance(value, tuple) and value[0] in "hK" for _, value in tokenize_pattern(short_time)
    )
    time_key = "hm" if twelve_hour else "Hm"
    time_pattern = str(skeletons[time_key].pattern) if time_key in skeletons else short_time

    glue = (
        _babel_glue(at_time)
        if at_time
        else _AT_TIME.get(locale.language) or str(locale.datetime_formats["long"])
    )
    return locale, glue, date_pattern, time_pattern


def format_opening(
    when: datetime, locale: str, words: DateWords = BUILT_IN_WORDS
) -> tuple[str, str]:
    """Words for an opening time in the caller's language, and the city of the team's zone."""
    zone = when.tzinfo
    if zone is None or when.utcoffset() is None:
        raise ValueError("format_opening() needs an aware datetime in the team's zone")
    if isinstance(zone, pytz.BaseTzInfo):
        # Arithmetic on a pytz datetime can leave a stale offset; normalize fixes the wall clock.
        when = zone.normalize(when)
        zone = when.tzinfo
    babel_locale, pattern = _opening_pattern(locale, words.at_time)
    said = format_datetime(when, pattern, tzinfo=zone, locale=babel_locale)
    city = get_timezone_location(zone, locale=babel_locale, return_city=True)
    return str(said), str(city)


def spoken_opening(
    when: datetime, now: datetime, locale: str, words: DateWords = BUILT_IN_WORDS
) -> tuple[str, str]:
    """Words for an opening as a caller at `now` hears them, and the city of the team's zone.

    Later the same day in the team's zone is "today at 2:00 PM", the next day "tomorrow at
    8:00 AM" (CLDR's words for the locale), any later day "on Monday, November 30 at 8:00 AM";
    `words` (the catalog's `dates:`) where the built-in glue has none for the language."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("spoken_opening() needs an aware `now`")
    said, city = format_opening(when, locale, words)
    zone = when.tzinfo
    if isinstance(zone, pytz.BaseTzInfo):
        when = zone.normalize(when)
    days = (when.date() - now.astimezone(when.tzinfo).date()).days
    babel_locale, glue, _, time_pattern = _opening_parts(locale, words.at_time)
    relative: Mapping[int, str] = babel_locale._data["date_fields"]["day"]["relative"]
    if days not in (0, 1) or days not in relative:
        if words.on_date:
            return words.on_date.replace("{date}", said), city
        return _ON_DATE.get(babel_locale.language, "{0}").replace("{0}", said), city
    at_time = format_datetime(when, time_pattern, tzinfo=when.tzinfo, locale=babel_locale)
    # The glue is a Babel pattern ("{1} 'at' {0}"): its quotes only mark literal text.
    spoken = glue.replace("'", "").replace("{1}", relative[days]).replace("{0}", str(at_time))
    return spoken, city
