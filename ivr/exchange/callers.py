"""Who is calling, call by call: asked of the exchange when a call arrives, kept for every instance.

`look_up` starts the exchange's lookup in a thread of this process and answers at once, so the
first webhook never waits for it; the caller hears `Flow.answer`'s second of silence meanwhile. What
the exchange said (and later what the caller did: verified, locked) is kept in Redis
(`CallQueue.remember_caller`), because the next webhook of the call may reach another instance. While
Redis is away the process that asked keeps it too, and a call it cannot find out about goes on as a
stranger's: never held up, never refused.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from typing import Final

from redis.exceptions import RedisError

from ivr.exchange.contract import Account
from ivr.exchange.hook import Exchange, KnownCaller
from ivr.queue import CallQueue

log = logging.getLogger(__name__)

LOOKUP_THREADS: Final = 8
"""Lookups under way at once in one process (each waits on the exchange for at most its deadline)."""
REMEMBERED_CALLS: Final = 2_000
"""Calls whose lookup this process keeps in memory (for Redis outages and its own next webhook)."""
_UNKNOWN: Final = {"known": "0"}


class KnownCallers:
    """The exchange's word on each call's caller, asked once per call and shared by every instance."""

    def __init__(self, exchange: Exchange, queue: CallQueue) -> None:
        self.exchange = exchange
        self._queue = queue
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._pool: ThreadPoolExecutor | None = None
        self._lookups: OrderedDict[str, Future[dict[str, str]]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.exchange.enabled

    def look_up(self, call_sid: str, number: str | None) -> None:
        """Ask the exchange who is calling, in the background (once per call and process)."""
        if not self.enabled or not number:
            return
        with self._lock:
            self._after_fork()
            if call_sid in self._lookups:
                return  # Twilio's retry of the first webhook
            if self._pool is None:
                self._pool = ThreadPoolExecutor(LOOKUP_THREADS, thread_name_prefix="ivr-lookup")
            self._lookups[call_sid] = self._pool.submit(self._ask, call_sid, number)
            while len(self._lookups) > REMEMBERED_CALLS:
                self._lookups.popitem(last=False)

    def _ask(self, call_sid: str, number: str) -> dict[str, str]:
        account = self.exchange.lookup(number, call_sid)
        facts = _UNKNOWN if account is None else _facts_of(account)
        self._remember(call_sid, facts)
        return facts

    def wait(self, call_sid: str, seconds: float) -> KnownCaller | None:
        """The caller, once the lookup answered; waits at most `seconds` for it (this process's
        lookup, else the one another instance made), then goes on with a stranger."""
        with self._lock:
            self._after_fork()
            mine = self._lookups.get(call_sid)
        if mine is not None:
            try:
                return _caller_of(mine.result(timeout=max(0.0, seconds)))
            except FutureTimeout:
                return None
        deadline = time.monotonic() + seconds
        while True:
            facts = self._facts(call_sid)
            if facts or time.monotonic() >= deadline:
                return _caller_of(facts)
            time.sleep(0.05)

    def of(self, call_sid: str) -> KnownCaller | None:
        """The caller as far as the call has got (None: a stranger, or nothing known yet)."""
        if not self.enabled:
            return None
        return _caller_of(self._facts(call_sid))

    def verified(self, call_sid: str, channel: str) -> None:
        """The caller keyed the code the exchange sent to their `channel`."""
        self._remember(call_sid, {"verified": channel})

    def locked(self, call_sid: str, at: datetime) -> None:
        """The exchange locked the caller's account at `at`."""
        self._remember(call_sid, {"locked_ms": str(int(at.timestamp() * 1000))})

    def _facts(self, call_sid: str) -> dict[str, str]:
        try:
            return self._queue.known_caller(call_sid)
        except RedisError:
            with self._lock:
                mine = self._lookups.get(call_sid)
            done = mine is not None and mine.done() and mine.exception() is None
            return mine.result() if mine is not None and done else {}

    def _remember(self, call_sid: str, facts: dict[str, str]) -> None:
        try:
            self._queue.remember_caller(call_sid, facts)
        except RedisError:
            log.warning("what the exchange said of call %s is kept in this process only", call_sid)

    def _after_fork(self) -> None:
        # A forked worker has none of its parent's threads: a pool of its own, no parent's lookups.
        if self._pid != os.getpid():
            self._pid, self._pool = os.getpid(), None
            self._lookups.clear()


def _facts_of(account: Account) -> dict[str, str]:
    facts = {"known": "1", "account": account.account, "tier": account.tier or "standard"}
    if account.language:
        facts["language"] = account.language
    return facts


def _caller_of(facts: dict[str, str]) -> KnownCaller | None:
    if facts.get("known") != "1" or not facts.get("account"):
        return None
    locked_ms = facts.get("locked_ms", "")
    return KnownCaller(
        account=facts["account"],
        language=facts.get("language") or None,
        vip=facts.get("tier") == "vip",
        verified=facts.get("verified") or None,
        locked_at=datetime.fromtimestamp(int(locked_ms) / 1000, UTC)
        if locked_ms.isdigit()
        else None,
    )
