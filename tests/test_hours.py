"""Business hours as a caller experiences them: open or closed, until when, and from when."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import pytest
import pytz

from ivr import hours
from ivr.hours import DayHours, Status, format_opening, hours_on, spoken_opening, status
from ivr.rules.schema import Team, TimeRange


def team(weekly: Any, zone: str = "Europe/Berlin", **extra: Any) -> Team:
    return Team.model_validate({"timezone": zone, "weekly": weekly, **extra})


def local(text: str, zone: str = "Europe/Berlin", is_dst: bool | None = None) -> datetime:
    """A wall-clock time in a zone; strict unless told which of two repeated times is meant."""
    return pytz.timezone(zone).localize(datetime.fromisoformat(text), is_dst=is_dst)


def show(when: datetime | None) -> str | None:
    """Wall clock with zone abbreviation, then the UTC instant: what callers and logs see."""
    if when is None:
        return None
    return f"{when:%a %Y-%m-%d %H:%M %Z} = {when.astimezone(UTC):%d %H:%MZ}"


def check(subject: Team, now: datetime) -> tuple[bool, str, str | None, str | None]:
    result = status(subject, now)
    for when in (result.closes_at, result.next_open):
        # Times come back in the team's zone, normalized (its offset matches its wall clock).
        if when is not None:
            zone = pytz.timezone(subject.timezone)
            assert getattr(when.tzinfo, "zone", None) == subject.timezone
            assert when.utcoffset() == zone.normalize(when).utcoffset()
    return result.is_open, result.reason, show(result.closes_at), show(result.next_open)


OFFICE = team(
    {"mon-fri": "08:00-20:00"},
    holidays={"country": "DE"},
    overrides=[
        {"date": "2026-12-24", "hours": "08:00-12:00"},
        {"date": "2026-11-24", "hours": "closed"},
    ],
)
NEW_YORK_OFFICE = team({"mon-fri": "09:00-17:00"}, zone="America/New_York")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(
            local("2026-11-23 09:00"),
            (True, "weekly", "Mon 2026-11-23 20:00 CET = 23 19:00Z", None),
            id="monday-morning-open",
        ),
        pytest.param(
            local("2026-11-23 07:59"),
            (False, "weekly", None, "Mon 2026-11-23 08:00 CET = 23 07:00Z"),
            id="before-opening",
        ),
        pytest.param(
            local("2026-11-23 08:00"),
            (True, "weekly", "Mon 2026-11-23 20:00 CET = 23 19:00Z", None),
            id="opening-minute-is-open",
        ),
        pytest.param(
            local("2026-11-21 12:00"),
            (False, "weekly", None, "Mon 2026-11-23 08:00 CET = 23 07:00Z"),
            id="saturday-closed-until-monday",
        ),
        pytest.param(
            local("2026-11-27 19:59"),
            (True, "weekly", "Fri 2026-11-27 20:00 CET = 27 19:00Z", None),
            id="friday-19:59-open",
        ),
        pytest.param(
            local("2026-11-27 19:59:59.999999"),
            (True, "weekly", "Fri 2026-11-27 20:00 CET = 27 19:00Z", None),
            id="last-microsecond-open",
        ),
        pytest.param(
            local("2026-11-27 20:00"),
            (False, "weekly", None, "Mon 2026-11-30 08:00 CET = 30 07:00Z"),
            id="friday-20:00-closed-end-exclusive",
        ),
    ],
)
def test_weekday_office(now: datetime, expected: tuple[bool, str, str | None, str | None]) -> None:
    assert check(OFFICE, now) == expected


@pytest.mark.parametrize(
    "caller_zone",
    [UTC, timezone(timedelta(hours=-3)), pytz.timezone("Asia/Tokyo"), ZoneInfo("America/New_York")],
    ids=str,
)
@pytest.mark.parametrize(
    "instant",
    [local("2026-11-23 09:00"), local("2026-11-21 12:00"), local("2026-11-27 20:00")],
    ids=["open", "weekend", "closing-time"],
)
def test_zone_of_now_does_not_matter(instant: datetime, caller_zone: Any) -> None:
    assert status(OFFICE, instant.astimezone(caller_zone)) == status(OFFICE, instant)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        status(OFFICE, datetime(2026, 11, 23, 9, 0))


SUNDAY_NIGHT = team({"sun": "01:00-05:00"})


@pytest.mark.parametrize(
    ("subject", "now", "expected"),
    [
        # Spring forward, Berlin 2026-03-29: 02:00 CET jumps to 03:00 CEST.
        pytest.param(
            SUNDAY_NIGHT,
            local("2026-03-28 12:00"),
            (False, "weekly", None, "Sun 2026-03-29 01:00 CET = 29 00:00Z"),
            id="spring-sunday-range-next-open",
        ),
        pytest.param(
            SUNDAY_NIGHT,
            local("2026-03-29 01:30"),
            (True, "weekly", "Sun 2026-03-29 05:00 CEST = 29 03:00Z", None),
            id="spring-sunday-range-before-jump",
        ),
        pytest.param(
            SUNDAY_NIGHT,
            local("2026-03-29 03:30"),
            (True, "weekly", "Sun 2026-03-29 05:00 CEST = 29 03:00Z", None),
            id="spring-sunday-range-after-jump",
        ),
        pytest.param(
            team({"sun": "02:30-05:00"}),
            local("2026-03-28 12:00"),
            (False, "weekly", None, "Sun 2026-03-29 03:00 CEST = 29 01:00Z"),
            id="spring-start-in-gap-opens-at-gap-end",
        ),
        pytest.param(
            team({"sun": "02:30-05:00"}),
            datetime(2026, 3, 29, 0, 59, tzinfo=UTC),
            (False, "weekly", None, "Sun 2026-03-29 03:00 CEST = 29 01:00Z"),
            id="spring-start-in-gap-minute-before",
        ),
        pytest.param(
            team({"sun": "02:30-05:00"}),
            datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
            (True, "weekly", "Sun 2026-03-29 05:00 CEST = 29 03:00Z", None),
            id="spring-start-in-gap-open-at-gap-end",
        ),
        pytest.param(
            team({"sun": "02:00-02:45"}),
            local("2026-03-28 12:00"),
            (False, "weekly", None, "Sun 2026-04-05 02:00 CEST = 05 00:00Z"),
            id="spring-range-wholly-skipped-never-happens",
        ),
        pytest.param(
            team({"sun": ["01:00-02:30", "03:00-04:00"]}),
            local("2026-03-29 01:45"),
            (True, "weekly", "Sun 2026-03-29 04:00 CEST = 29 02:00Z", None),
            id="spring-ranges-touching-across-the-gap-join",
        ),
        pytest.param(
            team({"mon-fri": "08:00-20:00"}),
            local("2026-03-26 21:00"),
            (False, "weekly", None, "Fri 2026-03-27 08:00 CET = 27 07:00Z"),
            id="spring-friday-08:00-is-07:00Z",
        ),
        pytest.param(
            team({"mon-fri": "08:00-20:00"}),
            local("2026-03-27 21:00"),
            (False, "weekly", None, "Mon 2026-03-30 08:00 CEST = 30 06:00Z"),
            id="spring-monday-08:00-is-06:00Z",
        ),
        pytest.param(
            team({"mon-fri": "08:00-20:00"}),
            local("2026-03-30 09:00"),
            (True, "weekly", "Mon 2026-03-30 20:00 CEST = 30 18:00Z", None),
            id="spring-monday-closes-18:00Z",
        ),
        # Fall back, Berlin 2026-10-25: 03:00 CEST returns to 02:00 CET; 02:xx happens twice.
        pytest.param(
            SUNDAY_NIGHT,
            local("2026-10-25 02:30", is_dst=True),
            (True, "weekly", "Sun 2026-10-25 05:00 CET = 25 04:00Z", None),
            id="fall-sunday-range-first-02:30",
        ),
        pytest.param(
            SUNDAY_NIGHT,
            local("2026-10-25 02:30", is_dst=False),
            (True, "weekly", "Sun 2026-10-25 05:00 CET = 25 04:00Z", None),
            id="fall-sunday-range-second-02:30",
        ),
        pytest.param(
            team({"sun": "02:30-05:00"}),
            local("2026-10-24 12:00"),
            (False, "weekly", None, "Sun 2026-10-25 02:30 CEST = 25 00:30Z"),
            id="fall-ambiguous-start-is-first-occurrence",
        ),
        pytest.param(
            team({"sun": "01:00-02:30"}),
            local("2026-10-25 02:10", is_dst=True),
            (True, "weekly", "Sun 2026-10-25 02:30 CEST = 25 00:30Z", None),
            id="fall-ambiguous-end-is-first-occurrence",
        ),
        pytest.param(
            team({"sun": "01:00-02:30"}),
            local("2026-10-25 02:10", is_dst=False),
            (False, "weekly", None, "Sun 2026-11-01 01:00 CET = 01 00:00Z"),
            id="fall-repeated-hour-after-closing-stays-closed",
        ),
        pytest.param(
            team({"mon-fri": "08:00-20:00"}),
            local("2026-10-23 21:00"),
            (False, "weekly", None, "Mon 2026-10-26 08:00 CET = 26 07:00Z"),
            id="fall-monday-08:00-is-07:00Z",
        ),
        # New York springs forward on 2026-03-08: 02:00 EST jumps to 03:00 EDT.
        pytest.param(
            NEW_YORK_OFFICE,
            local("2026-03-05 18:00", "America/New_York"),
            (False, "weekly", None, "Fri 2026-03-06 09:00 EST = 06 14:00Z"),
            id="new-york-friday-09:00-is-14:00Z",
        ),
        pytest.param(
            NEW_YORK_OFFICE,
            local("2026-03-06 18:00", "America/New_York"),
            (False, "weekly", None, "Mon 2026-03-09 09:00 EDT = 09 13:00Z"),
            id="new-york-monday-09:00-is-13:00Z",
        ),
        pytest.param(
            team({"sun": "02:30-04:00"}, zone="America/New_York"),
            local("2026-03-07 12:00", "America/New_York"),
            (False, "weekly", None, "Sun 2026-03-08 03:00 EDT = 08 07:00Z"),
            id="new-york-start-in-gap",
        ),
        pytest.param(
            team({"sun": "01:30-03:00"}, zone="America/New_York"),
            local("2026-10-31 12:00", "America/New_York"),
            (False, "weekly", None, "Sun 2026-11-01 01:30 EDT = 01 05:30Z"),
            id="new-york-fall-back-first-occurrence",
        ),
        # Santiago changes its clocks at midnight: 2026-04-05 00:00 -03 goes back to Saturday
        # 23:00 -04, and 2026-09-06 00:00 -04 never happens (01:00 -03 follows 23:59 -04).
        pytest.param(
            team({"sat": "22:00-24:00", "sun": "00:00-02:00"}, zone="America/Santiago"),
            local("2026-04-04 23:30", "America/Santiago", is_dst=False),
            (True, "weekly", "Sun 2026-04-05 02:00 -04 = 05 06:00Z", None),
            id="santiago-saturday-repeated-after-midnight",
        ),
        pytest.param(
            team({"sat": "22:00-24:00", "sun": "00:00-02:00"}, zone="America/Santiago"),
            local("2026-09-05 23:30", "America/Santiago"),
            (True, "weekly", "Sun 2026-09-06 02:00 -03 = 06 05:00Z", None),
            id="santiago-skipped-midnight-still-joins",
        ),
        pytest.param(
            team({"sun": "00:00-02:00"}, zone="America/Santiago"),
            local("2026-09-05 12:00", "America/Santiago"),
            (False, "weekly", None, "Sun 2026-09-06 01:00 -03 = 06 04:00Z"),
            id="santiago-skipped-midnight-opens-at-01:00",
        ),
        # Samoa skipped all of 2011-12-30 when it crossed the date line.
        pytest.param(
            team({"daily": "09:00-10:00"}, zone="Pacific/Apia"),
            local("2011-12-29 12:00", "Pacific/Apia"),
            (False, "weekly", None, "Sat 2011-12-31 09:00 +14 = 30 19:00Z"),
            id="apia-skipped-day",
        ),
    ],
)
def test_daylight_saving(
    subject: Team, now: datetime, expected: tuple[bool, str, str | None, str | None]
) -> None:
    assert check(subject, now) == expected


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 11, 23), DayHours((TimeRange.parse("08:00-20:00"),), "weekly")),
        (date(2026, 11, 22), DayHours((), "weekly")),
        (date(2026, 12, 25), DayHours((), "holiday: Christmas Day")),
        (date(2026, 12, 26), DayHours((), "holiday: Second Day of Christmas")),
        (date(2026, 12, 24), DayHours((TimeRange.parse("08:00-12:00"),), "override")),
        (date(2026, 11, 24), DayHours((), "override")),
    ],
    ids=str,
)
def test_hours_on(day: date, expected: DayHours) -> None:
    assert hours_on(OFFICE, day) == expected


def test_override_note_is_part_of_the_reason() -> None:
    subject = team(
        {"mon-fri": "08:00-20:00"},
        holidays={"country": "DE"},
        overrides=[{"date": "2026-12-25", "hours": "10:00-14:00", "note": "Christmas hotline"}],
    )
    assert hours_on(subject, date(2026, 12, 25)) == DayHours(
        (TimeRange.parse("10:00-14:00"),), "override: Christmas hotline"
    )


@pytest.mark.parametrize(
    ("subject", "now", "expected"),
    [
        pytest.param(
            OFFICE,
            local("2026-12-25 10:00"),
            (False, "holiday: Christmas Day", None, "Mon 2026-12-28 08:00 CET = 28 07:00Z"),
            id="christmas-closed-until-monday",
        ),
        pytest.param(
            OFFICE,
            local("2026-12-24 11:00"),
            (True, "override", "Thu 2026-12-24 12:00 CET = 24 11:00Z", None),
            id="christmas-eve-short-day-open",
        ),
        pytest.param(
            OFFICE,
            local("2026-12-24 12:00"),
            (False, "override", None, "Mon 2026-12-28 08:00 CET = 28 07:00Z"),
            id="christmas-eve-after-noon-closed",
        ),
        pytest.param(
            team(
                {"mon-fri": "08:00-20:00"},
                holidays={"country": "DE"},
                overrides=[{"date": "2026-12-25", "hours": "10:00-14:00", "note": "hotline"}],
            ),
            local("2026-12-25 11:00"),
            (True, "override: hotline", "Fri 2026-12-25 14:00 CET = 25 13:00Z", None),
            id="override-on-holiday-wins",
        ),
        pytest.param(
            OFFICE,
            local("2026-11-24 10:00"),
            (False, "override", None, "Wed 2026-11-25 08:00 CET = 25 07:00Z"),
            id="override-closes-a-weekday",
        ),
        pytest.param(
            team({"mon-fri": "08:00-20:00"}, holidays={"country": "US", "subdivision": "NY"}),
            local("2026-07-03 10:00"),
            (
                False,
                "holiday: Independence Day (observed)",
                None,
                "Mon 2026-07-06 08:00 CEST = 06 06:00Z",
            ),
            id="subdivision-calendar",
        ),
    ],
)
def test_holidays_and_overrides(
    subject: Team, now: datetime, expected: tuple[bool, str, str | None, str | None]
) -> None:
    assert check(subject, now) == expected


def test_holiday_calendars_are_built_once_per_year(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[tuple[str, int]] = []
    real = holidays.country_holidays

    def counting(country: str, **kwargs: Any) -> Any:
        built.append((country, kwargs["years"]))
        return real(country, **kwargs)

    hours._holiday_names.cache_clear()
    monkeypatch.setattr(holidays, "country_holidays", counting)
    try:
        for _ in range(3):
            status(OFFICE, local("2026-12-25 10:00"))
            status(OFFICE, local("2027-01-04 10:00"))
        assert built == [("DE", 2026), ("DE", 2027)]
    finally:
        hours._holiday_names.cache_clear()


ALWAYS = team("always")


@pytest.mark.parametrize(
    ("subject", "now", "expected"),
    [
        pytest.param(
            ALWAYS, local("2026-03-29 03:00"), (True, "weekly", None, None), id="always-open"
        ),
        pytest.param(
            team("always", overrides=[{"date": "2026-12-05", "hours": "closed"}]),
            local("2026-11-23 09:00"),
            (True, "weekly", "Sat 2026-12-05 00:00 CET = 04 23:00Z", None),
            id="always-open-until-a-closed-day-12-days-ahead",
        ),
        pytest.param(
            team("always", overrides=[{"date": "2026-12-15", "hours": "closed"}]),
            local("2026-11-23 09:00"),
            (True, "weekly", None, None),
            id="closed-day-beyond-14-days-is-not-announced",
        ),
        pytest.param(
            team({"daily": "closed"}),
            local("2026-11-23 09:00"),
            (False, "weekly", None, None),
            id="never-open",
        ),
        pytest.param(
            team({}, overrides=[{"date": "2027-11-20", "hours": "09:00-10:00"}]),
            local("2026-11-23 09:00"),
            (False, "weekly", None, "Sat 2027-11-20 09:00 CET = 20 08:00Z"),
            id="next-open-within-366-days",
        ),
        pytest.param(
            team({}, overrides=[{"date": "2027-11-26", "hours": "09:00-10:00"}]),
            local("2026-11-23 09:00"),
            (False, "weekly", None, None),
            id="next-open-beyond-366-days-is-never",
        ),
        pytest.param(
            team({"mon-fri": "00:00-24:00"}),
            local("2026-11-27 21:00"),
            (True, "weekly", "Sat 2026-11-28 00:00 CET = 27 23:00Z", None),
            id="whole-weekdays-friday-evening",
        ),
        pytest.param(
            team({"mon-fri": "00:00-24:00"}),
            local("2026-11-23 09:00"),
            (True, "weekly", "Sat 2026-11-28 00:00 CET = 27 23:00Z", None),
            id="whole-weekdays-monday-runs-to-saturday",
        ),
        pytest.param(
            team({"mon-fri": "00:00-24:00"}),
            local("2026-11-22 23:59"),
            (False, "weekly", None, "Mon 2026-11-23 00:00 CET = 22 23:00Z"),
            id="whole-weekdays-sunday-night",
        ),
        pytest.param(
            team({"mon-fri": ["00:00-08:00", "20:00-24:00"]}),
            local("2026-11-23 21:00"),
            (True, "weekly", "Tue 2026-11-24 08:00 CET = 24 07:00Z", None),
            id="night-shift-across-midnight",
        ),
        pytest.param(
            team({"mon-fri": ["00:00-08:00", "20:00-24:00"]}),
            local("2026-11-27 21:00"),
            (True, "weekly", "Sat 2026-11-28 00:00 CET = 27 23:00Z", None),
            id="night-shift-friday-ends-at-midnight",
        ),
        pytest.param(
            team({"sat": "20:00-24:00", "sun": "00:00-08:00"}),
            local("2026-03-28 21:00"),
            (True, "weekly", "Sun 2026-03-29 08:00 CEST = 29 06:00Z", None),
            id="overnight-across-spring-forward",
        ),
        pytest.param(
            team({"mon": ["08:00-12:00", "10:00-14:00", "14:00-15:00"]}),
            local("2026-11-23 09:00"),
            (True, "weekly", "Mon 2026-11-23 15:00 CET = 23 14:00Z", None),
            id="overlapping-and-touching-ranges-join",
        ),
        pytest.param(
            team({"mon": ["08:00-12:00", "13:00-17:00"]}),
            local("2026-11-23 12:30"),
            (False, "weekly", None, "Mon 2026-11-23 13:00 CET = 23 12:00Z"),
            id="lunch-break",
        ),
    ],
)
def test_always_never_and_overnight(
    subject: Team, now: datetime, expected: tuple[bool, str, str | None, str | None]
) -> None:
    assert check(subject, now) == expected


def test_status_is_a_plain_value() -> None:
    result = status(ALWAYS, local("2026-11-23 09:00"))
    assert result == Status(is_open=True, reason="weekly", closes_at=None, next_open=None)


MONDAY_8 = local("2026-11-23 08:00")


@pytest.mark.parametrize(
    ("code", "parts", "city"),
    [
        ("en-US", ["Monday", "November", "23", "8:00", "AM"], "Berlin"),
        ("de-DE", ["Montag", "23.", "November", "08:00"], "Berlin"),
        ("fr-FR", ["lundi", "23", "novembre", "08:00"], "Berlin"),
        ("zh-CN", ["11月", "23日", "星期一", "08:00"], "柏林"),
        ("en-GB", ["Monday", "23", "November", "08:00"], "Berlin"),
        ("pt-BR", ["segunda-feira", "23", "novembro", "08:00"], "Berlim"),
        # Babel ids, as the prompt catalogs spell them, work as well.
        ("zh_Hans_CN", ["11月", "23日", "星期一", "08:00"], "柏林"),
        ("de_DE", ["Montag", "23.", "November", "08:00"], "Berlin"),
    ],
)
def test_format_opening(code: str, parts: list[str], city: str) -> None:
    words, place = format_opening(MONDAY_8, code)
    assert place == city
    positions = [words.find(part) for part in parts]
    assert -1 not in positions, (words, parts)
    assert "2026" not in words  # the caller only needs the next few days, not the year


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("en-US", "Monday, November 23 at 8:00"),
        ("de-DE", "Montag, 23. November um 08:00"),
        ("fr-FR", "lundi 23 novembre à 08:00"),
        ("zh-CN", "11月23日星期一 08:00"),
    ],
)
def test_format_opening_reads_naturally(code: str, expected: str) -> None:
    words, _ = format_opening(MONDAY_8, code)
    # Only the space before AM/PM varies between CLDR versions (plain or narrow no-break).
    assert words.startswith(expected)


def test_format_opening_uses_the_wall_clock_of_the_team_zone() -> None:
    opening = status(NEW_YORK_OFFICE, local("2026-03-06 18:00", "America/New_York")).next_open
    assert opening is not None
    assert format_opening(opening, "en-US")[1] == "New York"
    assert format_opening(opening, "zh-CN") == ("3月9日星期一 09:00", "纽约")
    # A pytz time moved by plain arithmetic still reads as the right wall clock.
    assert format_opening(MONDAY_8 + timedelta(days=150), "de-DE")[0].startswith(
        "Donnerstag, 22. April um 09:00"
    )


@pytest.mark.parametrize("bad", ["xx-YY", "", "not a locale"])
def test_format_opening_unknown_locale(bad: str) -> None:
    with pytest.raises(ValueError, match="locale"):
        format_opening(MONDAY_8, bad)


def test_format_opening_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="aware"):
        format_opening(datetime(2026, 11, 23, 8, 0), "en-US")


@pytest.mark.parametrize(
    ("code", "today", "tomorrow", "later"),
    [
        ("en-US", "today at 8:00", "tomorrow at 8:00", "on Monday, November 23 at 8:00"),
        ("de-DE", "heute um 08:00", "morgen um 08:00", "am Montag, 23. November um 08:00"),
        ("fr-FR", "aujourd’hui à 08:00", "demain à 08:00", "le lundi 23 novembre à 08:00"),
        ("zh-CN", "今天 08:00", "明天 08:00", "11月23日星期一 08:00"),
    ],
)
def test_an_opening_today_or_tomorrow_is_said_so_in_each_language(
    code: str, today: str, tomorrow: str, later: str
) -> None:
    assert spoken_opening(MONDAY_8, local("2026-11-23 06:30"), code)[0].startswith(today)
    assert spoken_opening(MONDAY_8, local("2026-11-22 21:00"), code)[0].startswith(tomorrow)
    assert spoken_opening(MONDAY_8, local("2026-11-20 19:00"), code)[0].startswith(later)


def test_today_is_the_team_zones_day_not_utcs() -> None:
    # 23:30 UTC on Sunday is already Monday 00:30 in Berlin: the 08:00 opening is "today".
    words, city = spoken_opening(MONDAY_8, datetime(2026, 11, 22, 23, 30, tzinfo=UTC), "en-US")
    assert words.startswith("today at 8:00") and city == "Berlin"
