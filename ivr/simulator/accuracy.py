"""How right the wait estimates callers hear are: what was said, read back, against the wait that followed.

Pure functions, no app and no simulator: `heard_interval` turns a spoken estimate ("about 5
minutes", "less than 10 minutes", "between 3 minutes and 6 minutes", in any of the catalogs'
languages) back into an interval and a point value in seconds; `summarize` computes, per queue and
overall, the error figures of the (estimate, actual wait) pairs a load run collected.

What a phrase means (minutes; an hour or day text stands for the minutes Babel says it that way):

    about N          [max(0, N - 1), N + 1]    point N
    less than N      [0, N]                    point N / 2
    between A and B  [A, B]                    point (A + B) / 2
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

from ivr.waits import WaitEstimate, say_minutes

WAIT_PROMPTS = ("queue_wait", "queue_wait_under", "queue_wait_between")
"""The prompts that tell a holding caller their wait."""
LONGEST_MINUTES = 2 * 24 * 60
"""Spoken durations are read back up to two days; longer ones are not recognised."""
OVERALL = "(all)"


@dataclass(frozen=True)
class Interval:
    """What a caller was told, in seconds."""

    low: float
    high: float
    point: float


@dataclass(frozen=True)
class Pair:
    """One estimate a caller heard, and how long they then waited for an agent (None: they never
    reached one while holding; `fate` says why)."""

    call: str
    queue: str
    language: str
    at: float
    """Simulation seconds when the estimate was heard."""
    instant: str
    """The same, as an ISO time."""
    prompt: str
    text: str
    low: float
    high: float
    point: float
    position: int | None
    """The position heard in the same hold round (None: none was said)."""
    first: bool
    """The caller's first estimate."""
    actual: float | None
    """Seconds from the estimate to the moment an agent answered."""
    fate: str
    """answered, abandoned, callback or waiting (still holding at the end of the run)."""
    history: int
    """Conversations the queue had finished in this run before the estimate."""

    @property
    def inside(self) -> bool:
        return self.actual is not None and self.low <= self.actual <= self.high

    def as_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["inside"] = self.inside if self.actual is not None else None
        return record


@dataclass(frozen=True)
class Round:
    """One hold round's wait estimates (the line's own and any compared with it, all made from the
    same line state) and the wait that followed: what the estimate is judged by, whether or not
    the caller heard it (the position rule says a wait only when it is news)."""

    call: str
    queue: str
    language: str
    at: float
    """Simulation seconds of the hold round."""
    position: int
    """1 = next in line."""
    priority: int
    agents_available: int
    """Agents serving the line, available, at the round."""
    agents_busy: int
    """Agents serving the line, talking or putting a caller through."""
    estimates: Mapping[str, WaitEstimate]
    """By estimator: the line's own under its `wait_estimate` name, then the compared ones."""
    actual: float | None
    """Seconds from the round to the moment an agent answered; None: none did while they held."""
    fate: str
    """answered, abandoned, callback or waiting."""
    history: int
    """Conversations the queue had finished in this run before the round."""

    @property
    def all_busy(self) -> bool:
        """Every agent serving the line was busy (the rounds the textbook models speak of)."""
        return self.agents_available == 0 and self.agents_busy > 0


# --- reading the spoken words back -------------------------------------------------------------


def _words(text: str) -> str:
    """Text as the simulator hears it: whitespace runs (Babel's no-break spaces too) as one space."""
    return " ".join(text.split())


@cache
def _spoken(locale: str) -> dict[str, tuple[int, int]]:
    """Every duration text `say_minutes` produces in `locale`, with the minutes that produce it."""
    found: dict[str, tuple[int, int]] = {}
    for minutes in range(1, LONGEST_MINUTES + 1):
        text = _words(say_minutes(minutes, locale)).casefold()
        low, _ = found.get(text, (minutes, minutes))
        found[text] = (low, minutes)
    return found


def spoken_minutes_range(text: str, locale: str) -> tuple[int, int] | None:
    """The whole minutes Babel would say as `text` in `locale` ("5 minutes" -> (5, 5); "2 hours"
    -> (90, 150)), or a bare number of minutes ("5"); None when it is neither."""
    words = _words(text).casefold()
    if words.isdigit():
        return int(words), int(words)
    return _spoken(locale).get(words)


def said_minutes(text: str, locale: str) -> float | None:
    """The number of minutes the words say: "5 minutes" 5, "2 hours" 120 (the round value in the
    range of minutes that are said that way), None when not a duration."""
    found = spoken_minutes_range(text, locale)
    if found is None:
        return None
    low, high = found
    for unit in (24 * 60, 60, 1):
        rounds = [m for m in range(low, high + 1) if m % unit == 0]
        if rounds:
            return float(rounds[0])
    return (low + high) / 2  # pragma: no cover - every range holds a multiple of a minute


def heard_interval(prompt: str, params: Mapping[str, str], locale: str) -> Interval | None:
    """The interval and point value (seconds) a wait prompt told the caller; None if not one."""
    if prompt == "queue_wait":
        found = spoken_minutes_range(params.get("wait", ""), locale)
        said = said_minutes(params.get("wait", ""), locale)
        if found is None or said is None:
            return None
        return Interval(max(0, found[0] - 1) * 60.0, (found[1] + 1) * 60.0, said * 60.0)
    if prompt == "queue_wait_under":
        said = said_minutes(params.get("wait", ""), locale)
        return None if said is None else Interval(0.0, said * 60.0, said * 30.0)
    if prompt == "queue_wait_between":
        low = said_minutes(params.get("low", ""), locale)
        high = said_minutes(params.get("high", ""), locale)
        if low is None or high is None:
            return None
        return Interval(low * 60.0, high * 60.0, (low + high) * 30.0)
    return None


# --- the figures -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    """The accuracy of one set of (estimate, actual) pairs."""

    measured: int
    mae_seconds: float | None
    mean_actual_seconds: float | None
    mae_percent: float | None
    """MAE as a share of the mean actual wait."""
    median_relative_error: float | None
    """Median of |point - actual| / actual over pairs with actual > 0."""
    bias_seconds: float | None
    """Mean of point - actual: positive, callers were answered earlier than told."""
    inside_share: float | None
    """Share whose actual wait fell inside the interval told."""


def figures(pairs: Sequence[Pair]) -> Figures:
    """MAE, MAE % of the mean wait, median relative error, bias and inside share of measured pairs."""
    measured = [p for p in pairs if p.actual is not None]
    if not measured:
        return Figures(0, None, None, None, None, None, None)
    actual = [p.actual for p in measured if p.actual is not None]
    errors = [p.point - a for p, a in zip(measured, actual, strict=True)]
    mae = statistics.fmean(abs(e) for e in errors)
    mean_actual = statistics.fmean(actual)
    relative = [abs(e) / a for e, a in zip(errors, actual, strict=True) if a > 0]
    return Figures(
        measured=len(measured),
        mae_seconds=mae,
        mean_actual_seconds=mean_actual,
        mae_percent=100.0 * mae / mean_actual if mean_actual > 0 else None,
        median_relative_error=statistics.median(relative) if relative else None,
        bias_seconds=statistics.fmean(errors),
        inside_share=sum(1 for p in measured if p.inside) / len(measured),
    )


def firsts(pairs: Iterable[Pair]) -> list[Pair]:
    """Each caller's first estimate."""
    return [p for p in pairs if p.first]


def summarize(pairs: Sequence[Pair], history_at_least: int = 30) -> dict[str, dict[str, Any]]:
    """Per queue (and `OVERALL`): counts, the figures over every estimate, over each caller's first
    estimate, and over the estimates heard once the queue had `history_at_least` conversations."""
    groups: dict[str, list[Pair]] = {OVERALL: list(pairs)}
    for pair in pairs:
        groups.setdefault(pair.queue, []).append(pair)
    summary: dict[str, dict[str, Any]] = {}
    for queue, group in groups.items():
        first = firsts(group)
        fates: dict[str, int] = {}
        for pair in first:
            fates[pair.fate] = fates.get(pair.fate, 0) + 1
        summary[queue] = {
            "announcements": len(group),
            "callers": len(first),
            "callers_measured": sum(1 for p in first if p.actual is not None),
            "fates": dict(sorted(fates.items())),
            "every_announcement": asdict(figures(group)),
            "first_announcement": asdict(figures(first)),
            "with_history": asdict(figures([p for p in group if p.history >= history_at_least])),
        }
    return dict(sorted(summary.items(), key=lambda item: (item[0] != OVERALL, item[0])))


def bias_words(bias: float | None) -> str:
    """ "+40 s (early)": positive bias means callers were answered before the time they were told."""
    if bias is None:
        return "-"
    side = "early" if bias > 0 else "late" if bias < 0 else "on time"
    return f"{bias:+.0f} s ({side})"


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.0f}%"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} s"


def figure_words(values: Mapping[str, Any]) -> str:
    """One line of figures: MAE, % of the mean wait, median relative error, bias, inside share."""
    if not values["measured"]:
        return "nothing measured"
    mae_percent = values["mae_percent"]
    relative = values["median_relative_error"]
    return (
        f"measured {values['measured']}, MAE {_seconds(values['mae_seconds'])}"
        f" ({'-' if mae_percent is None else f'{mae_percent:.0f}%'} of mean wait"
        f" {_seconds(values['mean_actual_seconds'])}),"
        f" median relative error {'-' if relative is None else f'{100 * relative:.0f}%'},"
        f" bias {bias_words(values['bias_seconds'])},"
        f" inside {_percent(values['inside_share'])}"
    )


def summary_lines(
    summary: Mapping[str, Mapping[str, Any]], history_at_least: int = 30
) -> list[str]:
    """The printed summary: per queue, what was announced and what came of it."""
    lines: list[str] = []
    for queue, part in summary.items():
        fates = ", ".join(f"{k} {v}" for k, v in part["fates"].items()) or "-"
        lines.append(
            f"{queue}: {part['announcements']} estimates heard by {part['callers']} callers"
            f" ({fates})"
        )
        lines.append(f"  every estimate:  {figure_words(part['every_announcement'])}")
        lines.append(f"  first per caller: {figure_words(part['first_announcement'])}")
        lines.append(
            f"  after {history_at_least}+ conversations: {figure_words(part['with_history'])}"
        )
    return lines
