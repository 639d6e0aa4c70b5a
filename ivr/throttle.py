"""One policy for every secret check: an agent's PIN (phone line or HTTP API), an admin's password,
and the verification codes the exchange sends a caller.

A secret check goes through three gates, in this order:

1. **At most `MAX_CONCURRENT_CHECKS` hashes at once in this process.** Each argon2 check takes 64 MiB
   and about 0.1 s of CPU; a check that would have to wait for one is not made but answered at once
   ("busy"), so a flood of guesses never holds the threads and cores that callers' webhooks need.
2. **The source's throttle**, shared in Redis by every instance: `FREE_CHECKS` free tries, then
   waits doubling from a minute to an hour (`delay_after`), forgotten after `WINDOW_SECONDS` without
   a try. **When Redis cannot be asked, nothing is checked ("unavailable"): the policy fails
   closed**, a secret is never checked unthrottled. The agent hears "try later" and the call ends;
   the admin gets a 503 page ("Logging in is not possible now ... Try again shortly.").
3. **The check itself.** A right secret resets the source's count.

The source is whom a wrong guess slows down: the calling number or the client address, never the
account aimed at (`phone_source`, `callback_source`, `client_source`, `admin_source`). Sending a
verification code is counted the same way (`wait_before`), per account and per calling number.

The counting itself (the key, the Lua script) is Redis's business and lives in `ivr.queue`
(`CallQueue.start_pin_check`, `pin_right`, key `pin_checks_key`); what is counted, how long a source
waits and what happens when Redis is away are decided here only.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from redis.exceptions import RedisError

from ivr.queue import CallQueue

log = logging.getLogger(__name__)

FREE_CHECKS: Final = 5
"""Checks a source gets without waiting (a typo or two, twice over)."""
FIRST_DELAY_SECONDS: Final = 60
MAX_DELAY_SECONDS: Final = 3600
WINDOW_SECONDS: Final = 24 * 3600
"""A source's count is forgotten after this long without a check from it (or at a right secret)."""

MAX_CONCURRENT_CHECKS: Final = 1
"""Hashes computed at once in one process (one core's worth on the 2-core machines it runs on); the
other checks of that moment are answered "busy" at once."""
_hashing = threading.BoundedSemaphore(MAX_CONCURRENT_CHECKS)

Outcome = Literal["right", "wrong", "throttled", "unavailable", "busy"]


def delay_after(checks: int) -> int:
    """Seconds a source must wait after its `checks`-th check in a row that was not right.

    The first `FREE_CHECKS` cost nothing; from then on the wait doubles, from a minute up to an hour.
    """
    if checks < FREE_CHECKS:
        return 0
    return min(FIRST_DELAY_SECONDS << (checks - FREE_CHECKS), MAX_DELAY_SECONDS)


def _schedule() -> tuple[int, ...]:
    delays = [delay_after(1)]
    while delays[-1] < MAX_DELAY_SECONDS:
        delays.append(delay_after(len(delays) + 1))
    return tuple(delays)


DELAYS: Final = _schedule()
"""`delay_after(1)`, `delay_after(2)`, ... up to the first capped one, which repeats from then on."""


def most_checks(seconds: int) -> int:
    """The most checks one source can have in `seconds`, guessing as fast as it is let."""
    checks, at = 0, 0
    while at < seconds:
        checks += 1
        at += delay_after(checks)
    return checks


def phone_source(number: str | None) -> str:
    """Whom to throttle for a PIN typed on the agent line: the calling number."""
    return f"phone:{number or 'anonymous'}"


def callback_source(agent_id: str) -> str:
    """Whom to throttle for a PIN typed on a call the agent line placed to the agent's own phone:
    that agent's phone (no caller ID can claim to be it)."""
    return f"agent-phone:{agent_id}"


def client_source(address: str | None) -> str:
    """Whom to throttle for a PIN sent to the HTTP API: the client's address, or the /64 network of
    an IPv6 address (one subscriber usually holds all of it)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return f"http:{address or 'unknown'}"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"http:{ip.ipv4_mapped}"
        return f"http:{ipaddress.IPv6Network((ip, 64), strict=False)}"
    return f"http:{ip}"


def admin_source(address: str | None) -> str:
    """Whom to throttle for an admin's password (login form or HTTP Basic): the client's address,
    counted apart from the same address's agent PINs."""
    return f"admin:{client_source(address)}"


def verification_sources(account: str, number: str | None) -> tuple[str, str]:
    """Whom to throttle for sending a caller a verification code: the account and the number."""
    return f"verify-account:{account}", f"verify-number:{number or 'anonymous'}"


def wait_before(queue: CallQueue, *sources: str) -> float | None:
    """Count a try of every source now: 0.0 when all may go ahead, else the longest of the seconds
    they must still wait; None when Redis cannot be asked (the caller must refuse: fail closed)."""
    try:
        return max(queue.start_pin_check(source, DELAYS, WINDOW_SECONDS) for source in sources)
    except RedisError:
        return None


def forgive(queue: CallQueue, *sources: str) -> bool:
    """A right secret: the sources' counts start afresh. False when Redis could not be told (the
    counts stay: the next try from there waits a little longer)."""
    try:
        for source in sources:
            queue.pin_right(source)
    except RedisError:
        return False
    return True


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
        wait = wait_before(queue, source)
        if wait is None:
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
    if not forgive(queue, source):
        log.warning("a right secret from %s could not reset its count", source)
    return SecretCheck("right")
