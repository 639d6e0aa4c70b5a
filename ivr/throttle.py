"""One policy for every secret check: an agent's PIN (phone line or HTTP API) and an admin's password.

A check goes through three gates, in this order:

1. **At most `MAX_CONCURRENT_CHECKS` hashes at once in this process.** Each argon2 check takes 64 MiB
   and about 0.1 s of CPU; a check that would have to wait for one is not made but answered at once
   ("busy"), so a flood of guesses never holds the threads and cores that callers' webhooks need.
2. **The source's throttle** (`CallQueue.start_pin_check`, shared in Redis by every instance): a few
   free tries, then waits doubling from a minute to an hour (`ivr.credentials.PIN_DELAYS`). When
   Redis cannot be asked, no secret is checked ("unavailable"): a secret is never checked unthrottled.
3. **The check itself.** A right secret resets the source's count.

The source is whom a wrong guess slows down: the calling number or the client address, never the
account aimed at (`ivr.credentials.phone_source`, `client_source`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from redis.exceptions import RedisError

from ivr.credentials import PIN_DELAYS, WINDOW_SECONDS
from ivr.queue import CallQueue

log = logging.getLogger(__name__)

MAX_CONCURRENT_CHECKS: Final = 1
"""Hashes computed at once in one process (one core's worth on the 2-core machines it runs on); the
other checks of that moment are answered "busy" at once."""
_hashing = threading.BoundedSemaphore(MAX_CONCURRENT_CHECKS)

Outcome = Literal["right", "wrong", "throttled", "unavailable", "busy"]


@dataclass(frozen=True)
class SecretCheck:
    """What became of one secret check."""

    outcome: Outcome
    wait: float = 0.0
    """"throttled": seconds before the source may try again."""


def check_secret(queue: CallQueue, source: str, verify: Callable[[], bool]) -> SecretCheck:
    """Check a secret from `source` with `verify` (the hash check), through the gates above."""
    if not _hashing.acquire(blocking=False):
        log.warning("no secret checked for %s: %d checks under way", source, MAX_CONCURRENT_CHECKS)
        return SecretCheck("busy")
    try:
        try:
            wait = queue.start_pin_check(source, PIN_DELAYS, WINDOW_SECONDS)
        except RedisError:
            log.warning("no secret checked for %s: the throttle (Redis) is unavailable", source)
            return SecretCheck("unavailable")
        if wait > 0:
            log.warning(
                "no secret checked for %s: too many wrong tries, next in %.0f s", source, wait
            )
            return SecretCheck("throttled", wait)
        right = verify()
    finally:
        _hashing.release()
    if not right:
        return SecretCheck("wrong")
    try:
        queue.pin_right(source)
    except RedisError:  # its count stays: the next check from there waits a little longer
        log.warning("a right secret from %s could not reset its count", source)
    return SecretCheck("right")
