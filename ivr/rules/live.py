"""The rules the running service uses: reloaded when the files change, never replaced by a broken edit."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ivr.clock import Clock
from ivr.rules.check import Bundle, load_bundle
from ivr.rules.loader import Problem, RulesError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RulesStatus:
    """What `/healthz` reports about the rules."""

    file: str
    loaded_at: datetime
    problems: tuple[Problem, ...]
    """Problems of the newest edit, which is *not* being served; empty when the files on disk are live."""


class LiveRules:
    """Holds the last good `Bundle`; checks the files' modification times at most every few seconds."""

    def __init__(
        self, rules_path: Path, prompts_dir: Path, clock: Clock, check_every: float = 2.0
    ) -> None:
        self._rules_path = rules_path
        self._prompts_dir = prompts_dir
        self._clock = clock
        self._check_every = check_every
        self._lock = threading.Lock()
        self._stamp = self._fingerprint()
        self._bundle = load_bundle(rules_path, prompts_dir)  # a bad file at start-up is fatal
        self._loaded_at = clock.now()
        self._problems: tuple[Problem, ...] = ()
        self._next_check = time.monotonic() + check_every

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
        if time.monotonic() >= self._next_check:
            self.reload_if_changed()
        return self._bundle

    def reload_if_changed(self) -> bool:
        """Reload when the files changed; True when a new version went live."""
        with self._lock:
            self._next_check = time.monotonic() + self._check_every
            stamp = self._fingerprint()
            if stamp == self._stamp:
                return False
            self._stamp = stamp
            try:
                bundle = load_bundle(self._rules_path, self._prompts_dir)
            except RulesError as exc:
                self._problems = tuple(exc.problems)
            except (
                Exception
            ) as exc:  # whatever went wrong, the line stays up on the last good rules
                log.exception("rules could not be loaded")
                self._problems = (Problem(str(self._rules_path), 1, 1, f"cannot load: {exc}"),)
            else:
                self._bundle = bundle
                self._loaded_at = self._clock.now()
                self._problems = ()
                log.info("rules reloaded from %s", self._rules_path)
                return True
            for problem in self._problems:
                log.error("rules not reloaded, still serving the last good version: %s", problem)
            return False

    def status(self) -> RulesStatus:
        return RulesStatus(str(self._rules_path), self._loaded_at, self._problems)
