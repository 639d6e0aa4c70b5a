"""The rules the running service uses: reloaded when the files change, never replaced by a broken edit.

With a database (`ivr.rules.store`), the database says which version is live on every instance:
an edit of the files is published there as a new version, and each process polls the store's serial
and takes up what changed (a rollback, a promoted draft, an incident notice) within `check_every`
seconds. A call keeps the version it started with (`for_call`); tester numbers hear the draft
(`for_new_call`). Without a database, or while it is away, the files alone decide, as before.

At start-up the process serves its files at once (nothing waits on the database); its first look
at the store then decides: files whose content no stored version has are a new edit (a deploy)
and are published; files the store knows (an older copy on this machine) give way to the live
version. From then on, any change of the files is an edit and is published.

Two modes. In the foreground (the default, for the CLI and tests) `get()` itself looks at the files at
most every `check_every` seconds and loads a changed version on the request that noticed it. In the
background (for served apps) a daemon thread of each process does the looking and loading, and `get()`
only returns the version that is live: no request ever waits for a parse.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from ivr.clock import Clock
from ivr.incidents import Incident
from ivr.rules.bundle import Bundle
from ivr.rules.check import load_bundle
from ivr.rules.loader import Problem, RulesError
from ivr.rules.schema import Rules
from ivr.signing import SEAL_MAX_AGE

if TYPE_CHECKING:
    from ivr.rules.store import RulesStore, Sources

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
    version: int | None = None
    """The live version's number in the store; None without one (or before its first look)."""
    draft: int | None = None
    """The draft's number, when one is staged (tester numbers hear it)."""
    incident: Incident | None = None
    """The incident notice that is on."""


@dataclass(frozen=True)
class _Live:
    """The version being served and what is known about it, swapped as one reference."""

    bundle: Bundle
    loaded_at: datetime
    problems: tuple[Problem, ...] = ()
    sha256: str = ""
    files: tuple[str, ...] = ()
    version: int | None = None
    content: str = ""
    """`Sources.content_sha256` of what is served: the rules file's and the catalogs' content."""


KEEP_VERSIONS = 16
"""Versions a process keeps loaded for the calls pinned to them (more are loaded again on demand)."""
LOADS_PER_LOOK = 4
"""Versions a look at the store loads at most for calls that asked (each takes a fraction of a second)."""
MAX_WANTED = 64
"""Versions asked for and waiting to be loaded, at most (a flood of made-up numbers loads nothing:
only sealed URLs name versions, but the bound costs nothing)."""


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
        store: RulesStore | None = None,
    ) -> None:
        self._rules_path = rules_path
        self._prompts_dir = prompts_dir
        self._clock = clock
        self._check_every = check_every
        self._background = background
        self._store = store
        self._lock = threading.Lock()
        self._stamp = self._fingerprint()
        # A bad file at start-up is fatal.
        self._live = _Live(load_bundle(rules_path, prompts_dir), clock.now(), (), *self._version())
        self._adjust: Callable[[Rules], Rules] | None = None
        self._versions_lock = threading.Lock()
        self._versions: OrderedDict[int, tuple[Bundle, str]] = OrderedDict()
        """Stored versions loaded for pinned calls, with their `Sources.content_sha256`, the most
        recently used last."""
        self._wanted: set[int] = set()
        """Versions calls asked for that this process has not loaded: its next look loads them."""
        self._serial: int | None = None
        """The store's serial this process has taken up; None before its first look."""
        self._unpublished = store is not None
        """The files on disk are not (known to be) in the store: the next look publishes them."""
        self._first_look = True
        self._draft: tuple[int, Bundle] | None = None
        self._incident: Incident | None = None
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
        """Serve every version's rules as `change` makes them (the simulator's `--estimator`)."""
        with self._lock:
            self._adjust = change
            live = self._live
            self._live = dataclasses.replace(live, bundle=self._adjusted(live.bundle))
            with self._versions_lock:
                self._versions.clear()
            if self._draft is not None:
                self._draft = (self._draft[0], self._adjusted(self._draft[1]))

    def _adjusted(self, bundle: Bundle) -> Bundle:
        if self._adjust is None:
            return bundle
        return dataclasses.replace(bundle, rules=self._adjust(bundle.rules))

    # --- versions: which one a call hears -------------------------------------------------------

    @property
    def version(self) -> int | None:
        """The live version's number in the store (None without a store, or before its first look)."""
        return self._live.version

    @property
    def store(self) -> RulesStore | None:
        return self._store

    def incident(self) -> Incident | None:
        """The incident notice that is on, as of this process's last look at the store."""
        return self._incident

    def for_new_call(self, number: str | None) -> tuple[int | None, Bundle]:
        """The version a call starting now hears: the draft for a tester's number, else the live one."""
        live, draft = self._live, self._draft
        testers = (*live.bundle.rules.testers, *(draft[1].rules.testers if draft else ()))
        if draft is not None and number and number in testers:
            return draft
        return live.version, live.bundle

    def for_call(self, version: int | None) -> tuple[int | None, Bundle]:
        """The version a call in progress started with (None: the live one).

        No webhook waits on the database: a version this process does not have in memory gives the
        live one this time (the flow takes the call on from where the live rules can, `Flow.admit`,
        never dropping it) and is loaded at the process's next look at the store. At its first
        look a process loads every version that was live in the last `SEAL_MAX_AGE`, so this
        is for versions older than any call, or a database that was away."""
        live = self._live
        if version is None or version == live.version:
            return live.version, live.bundle
        draft = self._draft
        if draft is not None and draft[0] == version:
            return draft
        with self._versions_lock:
            kept = self._versions.get(version)
            if kept is not None:
                self._versions.move_to_end(version)
            elif self._store is not None and len(self._wanted) < MAX_WANTED:
                self._wanted.add(version)  # loaded at this process's next look, off the request
        if kept is not None:
            return version, kept[0]
        return live.version, live.bundle

    def _load_wanted(self, store: RulesStore) -> None:
        """Load the versions calls asked for that this process did not have (a few per look)."""
        with self._versions_lock:
            wanted = sorted(self._wanted)[:LOADS_PER_LOOK]
        for version in wanted:
            try:
                sources = store.sources(version)
                bundle = self._adjusted(sources.load(store.audio_dir))
                self._keep(version, bundle, sources.content_sha256)
            except Exception:
                log.exception(
                    "rules version %s could not be loaded; calls on it hear the live one", version
                )
            with self._versions_lock:
                self._wanted.discard(version)

    def _preload(self, store: RulesStore) -> None:
        """At the first look: the versions live in the last `SEAL_MAX_AGE` (calls started on them
        may still be going: another process served them, or this one before a restart)."""
        recent = store.recently_live(self._clock.now() - timedelta(seconds=SEAL_MAX_AGE))
        with self._versions_lock:
            self._wanted.update(v for v in recent[-(KEEP_VERSIONS - 1) :] if v != self.version)

    def _keep(self, version: int, bundle: Bundle, content: str) -> None:
        with self._versions_lock:
            self._versions[version] = (bundle, content)
            self._versions.move_to_end(version)
            while len(self._versions) > KEEP_VERSIONS:
                self._versions.popitem(last=False)

    def _kept(self, version: int, content: str) -> Bundle | None:
        """A loaded bundle of `version`, or of another version with the same content (a rollback
        to a version this process holds goes live without a load)."""
        with self._versions_lock:
            kept = self._versions.get(version)
            if kept is None:
                same = [held for held in self._versions.values() if held[1] == content]
                kept = same[-1] if same else None
            return kept[0] if kept is not None else None

    # --- the files and the store ----------------------------------------------------------------

    def reload_if_changed(self) -> bool:
        """Take up an edit of the files and what changed in the store; True when a new version
        went live."""
        with self._lock:
            self._next_check = time.monotonic() + self._check_every
            changed = self._files_changed()
            if self._store is not None:
                changed = self._sync() or changed
            return changed

    def sync(self) -> bool:
        """Look at the files and the store now (tests, and `ivr` commands that just changed it)."""
        return self.reload_if_changed()

    def _files_changed(self) -> bool:
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
            if live.version is not None:  # calls in progress stay on it
                self._keep(live.version, live.bundle, live.content)
            # Served at once; with a store, the next step publishes it and it gets its number.
            self._live = _Live(self._adjusted(bundle), self._clock.now(), (), *self._version())
            self._unpublished = self._store is not None
            log.info("rules reloaded from %s", self._rules_path)
            return True
        self._live = dataclasses.replace(live, problems=problems)
        for problem in problems:
            log.error("rules not reloaded, still serving the last good version: %s", problem)
        return False

    def _sync(self) -> bool:
        """Publish an edit of the files, then take up the store's live version, draft and
        incident when its serial moved. A store that is away changes nothing: the process goes on
        serving what it has, and tries again at its next look."""
        from ivr.rules.store import Sources

        store = self._store
        assert store is not None
        try:
            if self._unpublished:
                sources = Sources.read(self._rules_path, self._prompts_dir)
                # Only what loaded well is published (a broken edit since waits for its fix); at
                # start-up, files the store knows are an older copy: the live version wins.
                if sources.content_sha256 == self._live.content and not (
                    self._first_look and store.known(sources.content_sha256)
                ):
                    self._publish(store, sources)
                self._unpublished = False
            serial = store.serial()
            went_live = serial != self._serial and self._take_up(store)
            if self._first_look:
                self._preload(store)
                self._first_look = False
            if self._wanted:
                self._load_wanted(store)
            return went_live
        except Exception:
            log.exception("rules store unreachable; serving the version this process has")
            return False

    def _publish(self, store: RulesStore, sources: Sources) -> None:
        by = f"file on {socket.gethostname()}"
        try:
            version, new = store.publish(sources, by, self._clock.now(), kind="file")
        except RulesError as exc:  # e.g. written between our load and this read
            self._live = dataclasses.replace(self._live, problems=tuple(exc.problems))
            return
        if new:
            log.info("rules file published as version %s", version.id)
        if version.content_sha256 == sources.content_sha256:
            self._live = dataclasses.replace(self._live, version=version.id)

    def _take_up(self, store: RulesStore) -> bool:
        state = store.state()
        live = self._live
        went_live = False
        if state.live_id is not None and state.live_id != live.version:
            version = store.version(state.live_id)
            if version.content_sha256 == live.content:  # what this process serves already
                self._live = dataclasses.replace(live, version=version.id)
            else:
                bundle = self._kept(version.id, version.content_sha256)
                if bundle is None:
                    bundle = self._adjusted(store.bundle(version.id))
                if live.version is not None:
                    # calls in progress may still need it
                    self._keep(live.version, live.bundle, live.content)
                self._live = _Live(
                    bundle,
                    self._clock.now(),
                    live.problems,
                    version.sha256,
                    live.files,
                    version.id,
                    version.content_sha256,
                )
                went_live = True
                log.info("rules version %s is live", version.id)
        if state.draft_id is None:
            self._draft = None
        elif self._draft is None or self._draft[0] != state.draft_id:
            draft = self._adjusted(store.bundle(state.draft_id))
            self._draft = (state.draft_id, draft)
        self._incident = state.incident
        self._serial = state.serial
        return went_live

    def status(self) -> RulesStatus:
        """Which version is live, and the problems of a newer one that is not."""
        live = self._live
        return RulesStatus(
            str(self._rules_path),
            live.loaded_at,
            live.problems,
            live.sha256,
            live.files,
            live.version,
            self._draft[0] if self._draft is not None else None,
            self._incident,
        )

    def _version(self) -> tuple[str, tuple[str, ...], None, str]:
        """The rules file's SHA-256, the files a load reads (for the admin dashboard), no version
        number yet, and the content's digest (`Sources.content_sha256`)."""
        from ivr.rules.store import Sources

        try:
            sources = Sources.read(self._rules_path, self._prompts_dir)
        except (OSError, UnicodeDecodeError):
            return "", (str(self._rules_path),), None, ""
        catalogs = sorted(self._prompts_dir.glob("*.yaml")) if self._prompts_dir.is_dir() else []
        files = (str(self._rules_path), *map(str, catalogs))
        return sources.sha256, files, None, sources.content_sha256

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
