"""An incident's ETA as callers hear it: their language, their country's time zone, the day when
it is not today there."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ivr.eta import country_zone, spoken_eta, zone_name

ETA = datetime(2026, 12, 7, 18, 0, tzinfo=UTC)  # what `--eta "2026-12-07 18:00 UTC"` gives
SAME_DAY = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
TWO_DAYS_BEFORE = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("country", "zone"),
    [
        ("DE", "Europe/Berlin"),
        ("CN", "Asia/Shanghai"),
        ("US", "America/New_York"),  # pytz's first zone of the country
        ("fr", "Europe/Paris"),  # Twilio sends upper case; lower case is not refused
        ("XX", None),
        ("", None),
        (None, None),
    ],
)
def test_a_country_gives_its_first_time_zone(country: str | None, zone: str | None) -> None:
    assert country_zone(country) == zone


@pytest.mark.parametrize(
    ("locale", "zone", "now", "said"),
    [
        # A German caller in Germany: Babel's abbreviation, which Germans say ("MEZ").
        ("de_DE", "Europe/Berlin", SAME_DAY, "heute um 19:00 MEZ"),
        ("de_DE", "Europe/Berlin", TWO_DAYS_BEFORE, "am Montag, 7. Dezember um 19:00 MEZ"),
        # A Chinese caller in China: Beijing time, named first, as Chinese announcements do; at
        # 18:00 UTC it is already the next day there.
        ("zh_Hans_CN", "Asia/Shanghai", SAME_DAY, "北京时间 明天 02:00"),
        ("zh_Hans_CN", "Asia/Shanghai", TWO_DAYS_BEFORE, "北京时间 12月8日星期二 02:00"),
        # A Chinese speaker in Germany hears Central European time in Chinese.
        ("zh_Hans_CN", "Europe/Berlin", SAME_DAY, "中欧标准时间 今天 19:00"),
        ("en_US", "America/New_York", SAME_DAY, "today at 1:00 PM EST"),
        # No pronounceable abbreviation ("+0900"): the long name.
        (
            "en_US",
            "Asia/Tokyo",
            TWO_DAYS_BEFORE,
            "on Tuesday, December 8 at 3:00 AM Japan Standard Time",
        ),
        ("fr_FR", "Europe/Paris", SAME_DAY, "aujourd’hui à 19:00 heure normale d’Europe centrale"),
    ],
)
def test_the_eta_is_said_in_the_callers_language_and_zone(
    locale: str, zone: str, now: datetime, said: str
) -> None:
    assert spoken_eta(ETA, now, zone, locale) == said


def test_summer_time_is_named_as_such() -> None:
    july = datetime(2026, 7, 1, 16, 0, tzinfo=UTC)
    assert spoken_eta(july, july - timedelta(hours=2), "Europe/Berlin", "de_DE") == (
        "heute um 18:00 MESZ"
    )
    assert zone_name(july.astimezone(UTC), "en_US") == "UTC"


def test_an_eta_without_a_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        spoken_eta(ETA.replace(tzinfo=None), SAME_DAY, "Europe/Berlin", "de_DE")
