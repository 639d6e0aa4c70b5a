"""How long a waiting caller will probably wait, from what the queue has actually done.

    estimated wait = ceil(position / agents) x average handling time

`agents` are the agents logged in for the caller's queue and language (available or on a call);
`average handling time` is the mean length of that line's last 50 conversations, or the queue's
`default_handle_time` until it has any. A caller at position 3 with 2 agents whose calls last 4
minutes on average waits about ceil(3 / 2) x 4 = 8 minutes. When an agent is free right now and the
caller is among the first in line, the estimate is zero: they are being connected.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta

from babel.dates import format_timedelta


def estimate_wait(
    position: int,
    agents_available: int,
    agents_busy: int,
    recent_talk_seconds: Sequence[int],
    default_handle_seconds: int,
) -> int | None:
    """Seconds a caller at `position` (1 = next) can expect to wait; None when no agent is logged in."""
    agents = agents_available + agents_busy
    if agents <= 0:
        return None
    if position <= agents_available:
        return 0
    talks = [t for t in recent_talk_seconds if t > 0]
    handle = sum(talks) / len(talks) if talks else default_handle_seconds
    return math.ceil(math.ceil(position / agents) * handle)


def spoken_minutes(seconds: int) -> int:
    """Whole minutes to announce: rounded up, at least one (nobody is promised "zero minutes")."""
    return max(1, math.ceil(seconds / 60))


def say_minutes(minutes: int, locale: str) -> str:
    """ "5 minutes", "5分钟", "5 minutes", "5 Minuten", "2 hours": Babel's words for a duration."""
    words: str = format_timedelta(
        timedelta(minutes=minutes), threshold=1, format="long", locale=locale
    )
    return words
