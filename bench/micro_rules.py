"""Micro-benchmark of the rules: load time at 10 and 1,000 menus, and what a request waits during a reload.

Run from the project root: `.venv/bin/python -m bench.micro_rules` (or through `python -m bench.run`).

1. `load_bundle` (parse, validate, check the rules and the prompt catalogs) on generated rules with 10
   and 1,000 menus, median of several runs, with libyaml and with the pure-Python YAML parser (the
   fallback, and what every load cost before libyaml was used).
2. `LiveRules` in background mode with 1,000 menus: a thread calls `get()` in a tight loop while an edit
   is being reloaded; we report the longest `get()` during the load next to the load time. For
   contrast, the foreground mode: the `get()` that notices the edit does the load itself.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

from ivr.clock import SystemClock
from ivr.rules import live as live_module
from ivr.rules import loader
from ivr.rules.bundle import Bundle
from ivr.rules.check import load_bundle
from ivr.rules.live import LiveRules
from tests.rules.big_rules import write_big_rules

SIZES = (10, 1000)
BIG = 1000
LOOP_BOUND_SECONDS = 15.0
"""The `get()` loop and the wait for a reload end after this long whatever happens."""


def _edit(rules: Path, old: str, new: str) -> None:
    """Change the rules file as an editor that renames a new file over it does (so the watcher never
    reads half a file), its mtime moved forward so that the change is seen at once."""
    text = rules.read_text(encoding="utf-8")
    assert old in text
    later = rules.stat().st_mtime_ns + 1_000_000_000
    edited = rules.with_name(rules.name + ".new")
    edited.write_text(text.replace(old, new, 1), encoding="utf-8")
    os.utime(edited, ns=(later, later))
    os.replace(edited, rules)


def _median_load(rules: Path, prompts: Path, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        load_bundle(rules, prompts)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def load_times(work: Path, runs: int) -> dict[str, dict[str, float]]:
    """Median load time in seconds per menu count and YAML parser."""
    parsers = {"pure_python": loader.PURE_LOADER}
    if loader.FAST_LOADER is not None:
        parsers["libyaml"] = loader.FAST_LOADER
    default = loader.YAML_LOADER
    found: dict[str, dict[str, float]] = {}
    try:
        for menus in SIZES:
            folder = work / f"load-{menus}"
            folder.mkdir()
            rules, prompts = write_big_rules(folder, menus)
            found[str(menus)] = {}
            for name, parser in parsers.items():
                loader.YAML_LOADER = parser
                # The pure-Python parser takes seconds at 1,000 menus: fewer runs there.
                count = (
                    runs if parser is not loader.PURE_LOADER or menus < BIG else max(1, runs // 2)
                )
                found[str(menus)][name] = _median_load(rules, prompts, count)
    finally:
        loader.YAML_LOADER = default
    return found


class _GetLoop:
    """A thread calling `get()` as fast as it can, recording when each call started and its length."""

    def __init__(self, live: LiveRules) -> None:
        self.live = live
        self.calls: list[tuple[float, float]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="get-loop", daemon=True)

    def _run(self) -> None:
        deadline = time.perf_counter() + LOOP_BOUND_SECONDS
        calls = self.calls
        get = self.live.get
        while not self.stop.is_set():
            started = time.perf_counter()
            get()
            calls.append((started, time.perf_counter() - started))
            if started > deadline:
                break

    def during(self, start: float, end: float) -> list[float]:
        """Lengths of the calls that overlapped [start, end]."""
        return [took for began, took in self.calls if began <= end and began + took >= start]


class _SleepProbe:
    """A thread sleeping 1 ms at a time, recording how late it wakes: what any other thread of the
    process (a request doing more than `get()`) waits for the GIL and the garbage collector."""

    NAP = 0.001

    def __init__(self) -> None:
        self.naps: list[tuple[float, float]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="sleep-probe", daemon=True)

    def _run(self) -> None:
        deadline = time.perf_counter() + LOOP_BOUND_SECONDS
        while not self.stop.is_set() and time.perf_counter() < deadline:
            started = time.perf_counter()
            time.sleep(self.NAP)
            self.naps.append((started, time.perf_counter() - started - self.NAP))

    def during(self, start: float, end: float) -> list[float]:
        """How late each nap that overlapped [start, end] ended."""
        return [late for began, late in self.naps if began <= end and began + late >= start]


def _timed_loads(
    windows: list[tuple[float, float]],
) -> Callable[[Path | str, Path | str], Bundle]:
    def timed(rules_path: Path | str, prompts_dir: Path | str) -> Bundle:
        started = time.perf_counter()
        try:
            return load_bundle(rules_path, prompts_dir)
        finally:
            windows.append((started, time.perf_counter()))

    return timed


def background_reload(work: Path) -> dict[str, Any]:
    """Longest `get()` while the background thread reloads a 1,000-menu edit, and the load time."""
    folder = work / "background"
    folder.mkdir()
    rules, prompts = write_big_rules(folder, BIG)
    live = LiveRules(rules, prompts, SystemClock(), check_every=0.05, background=True)
    windows: list[tuple[float, float]] = []
    loop, probe = _GetLoop(live), _SleepProbe()
    # The watcher's loads are timed where it calls them, so the window is exactly the load's.
    with mock.patch.object(live_module, "load_bundle", _timed_loads(windows)):
        try:
            served = live.get()
            loop.thread.start()
            probe.thread.start()
            time.sleep(0.2)  # some calls before the edit, for the baseline
            edited = time.perf_counter()
            _edit(rules, "brand: BitP", "brand: BitQ")
            deadline = time.perf_counter() + LOOP_BOUND_SECONDS
            while live.get() is served and time.perf_counter() < deadline:
                time.sleep(0.005)
            live_at = time.perf_counter()
            time.sleep(0.2)
        finally:
            loop.stop.set()
            probe.stop.set()
            loop.thread.join(LOOP_BOUND_SECONDS)
            probe.thread.join(LOOP_BOUND_SECONDS)
            live.stop()
    if not windows or live.get() is served:
        return {"error": "the edit never went live"}
    start, end = windows[0]
    during = loop.during(start, end)
    before = [took for began, took in loop.calls if began < edited]
    return {
        "menus": BIG,
        "load_s": end - start,
        "edit_live_after_s": live_at - edited,
        "get_calls_during_load": len(during),
        "get_max_during_load_s": max(during, default=0.0),
        "get_p99_during_load_s": _percentile(during, 99),
        "get_max_before_edit_s": max(before, default=0.0),
        "get_calls_total": len(loop.calls),
        "other_thread_max_delay_during_load_s": max(probe.during(start, end), default=0.0),
        "other_thread_max_delay_before_edit_s": max(
            (late for began, late in probe.naps if began < edited), default=0.0
        ),
    }


def foreground_reload(work: Path) -> dict[str, Any]:
    """For contrast: in the foreground, the `get()` that notices the edit waits for the whole load."""
    folder = work / "foreground"
    folder.mkdir()
    rules, prompts = write_big_rules(folder, BIG)
    live = LiveRules(rules, prompts, SystemClock(), check_every=0)
    live.get()
    _edit(rules, "brand: BitP", "brand: BitQ")
    started = time.perf_counter()
    bundle = live.get()
    took = time.perf_counter() - started
    return {"menus": BIG, "get_after_edit_s": took, "went_live": bundle.rules.brand == "BitQ"}


def _percentile(values: list[float], percent: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * percent / 100))]


def run(quick: bool = False) -> dict[str, Any]:
    """Measure everything; plain JSON-able data, times in seconds."""
    runs = 3 if quick else 5
    with tempfile.TemporaryDirectory(prefix="micro-rules-") as work:
        folder = Path(work)
        return {
            "libyaml": loader.FAST_LOADER is not None,
            "runs": runs,
            "load_s": load_times(folder, runs),
            "background": background_reload(folder),
            "foreground": foreground_reload(folder),
        }


BACKGROUND_ROWS = (
    ("load time (sharing the GIL with the loop)", "load_s"),
    ("edit live after", "edit_live_after_s"),
    ("get() calls during the load", "get_calls_during_load"),
    ("longest get() during the load", "get_max_during_load_s"),
    ("p99 get() during the load", "get_p99_during_load_s"),
    ("longest get() before the edit", "get_max_before_edit_s"),
    ("longest delay of another thread, during load", "other_thread_max_delay_during_load_s"),
    ("longest delay of another thread, before edit", "other_thread_max_delay_before_edit_s"),
)


def _ms(seconds: object) -> str:
    return f"{float(seconds) * 1000:.1f} ms" if isinstance(seconds, int | float) else "-"


def main() -> int:
    """Print the table."""
    result = run(quick="--quick" in sys.argv)
    print(f"rules loading (median of {result['runs']} runs; load_bundle: parse, validate, check)")
    print(f"{'menus':>6}  {'libyaml':>10}  {'pure Python':>11}  ratio")
    for menus, times in result["load_s"].items():
        fast, pure = times.get("libyaml"), times["pure_python"]
        ratio = f"{pure / fast:.1f}x" if fast else "-"
        print(f"{menus:>6}  {_ms(fast):>10}  {_ms(pure):>11}  {ratio:>5}")
    background = result["background"]
    print(f"\nbackground reload of {BIG} menus while a thread calls get() in a tight loop")
    if "error" in background:
        print(f"  {background['error']}")
    for label, key in BACKGROUND_ROWS if "error" not in background else ():
        value = background[key]
        shown = str(value) if key.startswith("get_calls") else _ms(value)
        print(f"  {label:<46} {shown:>10}")
    took = result["foreground"]["get_after_edit_s"]
    print(f"\nforeground mode (CLI, tests): the get() that notices the edit {_ms(took):>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
