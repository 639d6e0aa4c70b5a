"""Texts (SMS) to callers, sent on a thread of their own: no webhook waits for Twilio Messaging.

The flow decides that a caller gets their ticket number by text (`flow.TextMessage`, where the
rules' `sms_reference` switches it on); the switchboard hands it here and answers Twilio at once.
A send that is slow, fails, or is dropped (too many waiting) is logged and changes nothing of the
call: the caller heard their ticket number already, the text is a copy to keep.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass

from ivr.telephony import Telephony

log = logging.getLogger(__name__)

MAX_WAITING = 1000
"""Texts waiting to be sent at most; more are dropped (Twilio down for a while at peak time)."""
IDLE_SECONDS = 60.0
"""The sending thread ends after this long without a text; the next text starts another."""


@dataclass(frozen=True)
class _Text:
    to: str
    from_: str
    body: str


class Texts:
    """Sends texts one after another on a daemon thread, started on the first text in a process
    (a gunicorn worker forked after the app was built starts its own)."""

    def __init__(self, telephony: Telephony, max_waiting: int = MAX_WAITING) -> None:
        self._telephony = telephony
        self._max_waiting = max_waiting
        self._queue: queue.Queue[_Text] = queue.Queue(max_waiting)
        self._lock = threading.Lock()
        self._running_in: int | None = None
        """The process whose thread is sending (None: no thread is)."""

    def send(self, to: str, from_: str, body: str) -> None:
        """Hand a text over to be sent soon; returns at once."""
        with self._lock:
            if self._running_in != os.getpid():
                # A new process (or the thread ended idle): what a parent left waiting is its own.
                self._queue = queue.Queue(self._max_waiting)
                try:
                    threading.Thread(
                        target=self._work, args=(self._queue,), name="ivr-texts", daemon=True
                    ).start()
                except RuntimeError:  # no thread to be had: the call goes on without its text
                    log.exception("cannot start the texting thread: the text to %s is dropped", to)
                    return
                self._running_in = os.getpid()
            try:
                self._queue.put_nowait(_Text(to, from_, body))
            except queue.Full:
                log.warning(
                    "%d texts are waiting: the text to %s is dropped", self._max_waiting, to
                )

    def running(self) -> bool:
        """Whether a thread of this process is sending (or waiting for) texts."""
        with self._lock:
            return self._running_in == os.getpid()

    def drain(self, timeout: float) -> bool:
        """Wait until every text handed over has been tried; False if `timeout` seconds passed first."""
        deadline = time.monotonic() + timeout
        waiting = self._queue
        with waiting.all_tasks_done:
            while waiting.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                waiting.all_tasks_done.wait(left)
        return True

    def _work(self, waiting: queue.Queue[_Text]) -> None:
        while True:
            try:
                text = waiting.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if waiting.empty():  # `send` puts under the lock: nothing can slip in now
                        if self._queue is waiting:
                            self._running_in = None
                        return
                continue
            try:
                self._telephony.text(text.to, text.from_, text.body)  # logs its own failure
            except Exception:  # the thread must outlive any failure of the HTTP client
                log.exception("sending the text to %s failed", text.to)
            finally:
                waiting.task_done()
