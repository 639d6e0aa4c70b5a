"""The rules the running service uses: reloaded when the files change, never replaced by a broken edit.

Two modes. In the foreground (the default, for the CLI and tests) `get()` itself looks at the files at
most every `check_every` seconds and loads a changed version on the request that noticed it. In the
background (for served apps) a daemon thread of each process does the looking and loading, and `get()`
only returns the version that is live: no request ever waits for a parse.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ivr.clock import Clock
from ivr.rules.check import Bundle, load_bundle
from ivr.rules.loader import Problem, RulesError
from ivr.rules.schema import Rules

log = logging.getLogger(__name__)

MIN_BACKGROUND_INTERVAL = 0.05
"""Seconds between two looks of the background thread at least, so `check_every=0` is not a busy loop."""


@dataclass(frozen=True)
class RulesStatus:
    """What `/healthz` reports about the rules."""

    file: str
    loaded_at: datetime
    problems: tuple[Problem, ...]
    """Problems of the newest edit, which is *not* being served; empty when the files on disk are live."""
    sha256: str = ""
    """SHA-256 (hex) of the rules file as it was when the live version was loaded."""
    files: tuple[str, ...] = ()
    """The files the live version was loaded from: the rules file, then the prompt catalogs."""


@dataclass(frozen=True)
class _Live:
    """The version being served and what is known about it, swapped as one reference."""

    bundle: Bundle
    loaded_at: datetime
    problems: tuple[Problem, ...] = ()
    sha256: str = ""
    files: tuple[str, ...] = ()


_start_lock = threading.Lock()
"""Serialises starting watcher threads; replaced in a forked child, where a holder may not exist."""


def _reset_start_lock() -> None:
    global _start_lock
    _start_lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_reset_start_lock)


class LiveRules:
    """Holds the last good `Bundle` and replaces it when the files change and the new version is good.

    With `background=True`, a daemon thread checks the files every `check_every` seconds and loads a
    changed version off the request path. Threads do not survive a fork (gunicorn may create the app
    in its master and fork the workers), so the thread belongs to one process: `start()` starts it in
    the calling process unless it already runs there, and `get()` calls `start()`, so each worker
    starts its own on its first request.
    """

    def __init__(
        self,
        rules_path: Path,
        prompts_dir: Path,
        clock: Clock,
        check_every: float = 2.0,
        *,
        background: bool = False,
    ) -> None:
        self._rules_path = rules_path
        self._prompts_dir = prompts_dir
        self._clock = clock
        self._check_every = check_every
        self._background = background
        self._lock = threading.Lock()
        self._stamp = self._fingerprint()
        # A bad file at start-up is fatal.
        self._live = _Live(load_bundle(rules_path, prompts_dir), clock.now(), (), *self._version())
        self._next_check = time.monotonic() + check_every
        self._watcher: threading.Thread | None = None
        self._watcher_pid: int | None = None
        self._stop = threading.Event()

    def _fingerprint(self) -> tuple[tuple[str, float, int], ...]:
        files = [self._rules_path]
        if self._prompts_dir.is_dir():
            files += sorted(self._prompts_dir.glob("*.yaml"))
            audio = self._prompts_dir / "audio"
            if audio.is_dir():
                files += sorted(p for p in audio.rglob("*") if p.is_file())
        stamp = []
        for file in files:
            try:
                stat = file.stat()
            except OSError:
                continue
            stamp.append((str(file), stat.st_mtime, stat.st_size))
        return tuple(stamp)

    def get(self) -> Bundle:
        """The rules to serve this request with."""
        if self._background:
            if self._watcher_pid != os.getpid():
                self.start()
        elif time.monotonic() >= self._next_check:
            self.reload_if_changed()
        return self._live.bundle

    def adjust(self, change: Callable[[Rules], Rules]) -> None:
        """Serve the loaded rules as `change` makes them (the simulator's `--estimator`), until the
        files change and are loaded again."""
        with self._lock:
            live = self._live
            bundle = dataclasses.replace(live.bundle, rules=change(live.bundle.rules))
            self._live = dataclasses.replace(live, bundle=bundle)

    def reload_if_changed(self) -> bool:
        """Reload when the files changed; True when a new version went live."""
        with self._lock:
            self._next_check = time.monotonic() + self._check_every
            stamp = self._fingerprint()
            if stamp == self._stamp:
                return False
            self._stamp = stamp
            live = self._live
            try:
                bundle = load_bundle(self._rules_path, self._prompts_dir)
            except RulesError as exc:
                problems = tuple(exc.problems)
            # Whatever else went wrong, the line stays up on the last good rules.
            except Exception as exc:
                log.exception("rules could not be loaded")
                problems = (Problem(str(self._rules_path), 1, 1, f"cannot load: {exc}"),)
            else:
                self._live = _Live(bundle, self._clock.now(), (), *self._version())
                log.info("rules reloaded from %s", self._rules_path)
                return True
            self._live = _Live(live.bundle, live.loaded_at, problems, live.sha256, live.files)
            for problem in problems:
                log.error("rules not reloaded, still serving the last good version: %s", problem)
            return False

    def status(self) -> RulesStatus:
        """Which version is live, and the problems of a newer one that is not."""
        live = self._live
        return RulesStatus(
            str(self._rules_path), live.loaded_at, live.problems, live.sha256, live.files
        )

    def _version(self) -> tuple[str, tuple[str, ...]]:
        """The rules file's SHA-256 and the files a load reads (for the admin dashboard)."""
        try:
            digest = hashlib.sha256(self._rules_path.read_bytes()).hexdigest()
        except OSError:
            digest = ""
        catalogs = sorted(self._prompts_dir.glob("*.yaml")) if self._prompts_dir.is_dir() else []
        return digest, (str(self._rules_path), *map(str, catalogs))

    # --- background mode ------------------------------------------------------------------------

    @property
    def watching(self) -> bool:
        """True while a background thread of this process looks after the files."""
        watcher = self._watcher
        return self._watcher_pid == os.getpid() and watcher is not None and watcher.is_alive()

    def start(self) -> None:
        """Start this process's background thread, unless it runs already (also after `stop()`)."""
        pid = os.getpid()
        with _start_lock:
            if self._watcher_pid == pid:
                return
            if self._watcher_pid is not None:
                # A forked child: the parent's thread is gone, and it may have held the lock.
                self._lock = threading.Lock()
            self._background = True
            self._stop = threading.Event()
            self._watcher = threading.Thread(
                target=self._watch, args=(self._stop,), name="ivr-rules-watcher", daemon=True
            )
            self._watcher.start()
            self._watcher_pid = pid

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the background thread (for tests); `get()` serves the current version from then on."""
        with _start_lock:
            self._background = False
            self._next_check = float("inf")  # nor does `get()` check in the foreground instead
            self._stop.set()
            watcher, self._watcher, self._watcher_pid = self._watcher, None, None
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join(timeout)

    def _watch(self, stop: threading.Event) -> None:
        interval = max(self._check_every, MIN_BACKGROUND_INTERVAL)
        # Look at once: the files may have changed between loading and forking this worker.
        while not stop.is_set():
            try:
                self.reload_if_changed()
            except Exception:  # the thread must outlive any surprise, or edits stop going live
                log.exception("rules watcher: checking the files failed")
            stop.wait(interval)
