"""The benchmark's scale cases: rules with many agents or many lines, agents logged in (or busy)
straight through `CallQueue`, Redis errors from `/metrics`, and the memory of every process.

Cases (each started on an app of its own, with its own rules file, see `bench.run`):

* `agents_idle_elsewhere`: 1,000 agents logged in and available on lines other than the one the
  calls queue in (so they never take one), against the same run with 10 agents.
* `agents_busy_here`: 1,000 agents serving the callers' line, every one busy with a call of its
  own (entered, handed over and connected through the `CallQueue` API), against 10 such agents.
* `busy_lines_50`: callers in 50 lines at once (13 queues x 4 languages, 50 of them used).
* `soak`: 50 concurrent calls for an hour (`--soak-seconds`), the RSS of every process sampled.
"""

from __future__ import annotations

import copy
import re
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.loadgen import Route

HERE = ("funds", "en-US")
"""The line the benchmark's calls queue in (English, funds, deposit)."""
ELSEWHERE_QUEUES = ["general", "account", "tech", "supervisors"]
"""Queues of the shipped rules that no benchmark call reaches (with en-US: the idle agents' lines)."""

BUSY_LINE_QUEUES = 13
"""Queues of the `busy_lines_50` rules: 9 under the funds menu, 4 under the account menu."""
BUSY_LINES = 50
LANGUAGE_KEYS = ("1", "2", "3", "4")
"""The shipped language menu: zh-CN, en-US, fr-FR, de-DE."""
ALWAYS_OPEN_TEAM = "security_desk"
"""A team of the shipped rules that is open at every hour (`weekly: always`)."""


def agent_id(number: int) -> str:
    """The id of generated agent `number` (1, 2, ...)."""
    return f"bench_agent_{number:04d}"


def generated_agents(count: int, queues: Sequence[str], languages: Sequence[str]) -> dict[str, Any]:
    """`count` agents for a rules file's `agents:`, each serving `queues` in `languages`,
    reached on a Twilio Client identity (no phone numbers to make up)."""
    return {
        agent_id(n): {
            "name": f"Bench agent {n}",
            "extension": str(50_000 + n),
            "languages": list(languages),
            "queues": list(queues),
            "client": agent_id(n),
        }
        for n in range(1, count + 1)
    }


def agents_rules(base: dict[str, Any], count: int, here: bool) -> dict[str, Any]:
    """The rules `base` with `count` generated agents added: serving the calls' line (`here`), or
    serving only lines no benchmark call reaches."""
    rules = copy.deepcopy(base)
    if here:
        agents = generated_agents(count, [HERE[0]], [HERE[1]])
    else:
        agents = generated_agents(count, ELSEWHERE_QUEUES, [HERE[1]])
    rules["agents"] = {**rules.get("agents", {}), **agents}
    return rules


def busy_line_queue(number: int) -> str:
    """The id of generated queue `number` (1 to `BUSY_LINE_QUEUES`)."""
    return f"line_{number:02d}"


def busy_lines_rules(base: dict[str, Any]) -> tuple[dict[str, Any], list[Route]]:
    """The rules `base` with 13 queues open at every hour (the funds menu's keys 1-9 and the
    account menu's 1-4 lead to one each), and the 50 routes (language, main menu and sub-menu
    keys) that reach 50 different lines of them; one agent per queue, for `ivr check`."""
    rules = copy.deepcopy(base)
    menus = rules["menus"]
    funds_options = list(menus["funds"]["options"].values())
    account_options = list(menus["account"]["options"].values())
    routes: list[Route] = []
    queues: dict[str, Any] = {}
    number = 0
    for main_key, menu, keys, templates in (
        ("2", "funds", "123456789", funds_options),
        ("1", "account", "1234", account_options),
    ):
        options = {}
        for index, key in enumerate(keys):
            number += 1
            queue = busy_line_queue(number)
            template = templates[index % len(templates)]
            options[key] = {"label": template["label"], "queue": queue, "issue": f"issue_{queue}"}
            queues[queue] = {"team": ALWAYS_OPEN_TEAM, "priority": 30}
            routes += [(language, main_key, key) for language in LANGUAGE_KEYS]
        menus[menu]["options"] = options
    rules["queues"] = {**rules["queues"], **queues}
    languages = [entry["code"] for entry in rules["languages"]]
    rules["agents"] = {
        **rules.get("agents", {}),
        **generated_agents(1, list(queues), languages),
    }
    return rules, routes[:BUSY_LINES]


def route_menu_path(route: Route) -> list[str]:
    """The ticket's menu path of a call along `route` in the `busy_lines_rules` rules."""
    sub_menu = "funds" if route[1] == "2" else "account"
    return [f"language:{route[0]}", f"main:{route[1]}", f"{sub_menu}:{route[2]}"]


def write_rules(rules: dict[str, Any], path: Path) -> Path:
    """Write generated rules as YAML (the app reads them from ROUTING_RULES)."""
    path.write_text(yaml.safe_dump(rules, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def load_base(path: Path) -> dict[str, Any]:
    """The shipped rules file as data."""
    loaded: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


# --- /metrics ------------------------------------------------------------------------------------

REDIS_ERRORS = "ivr_redis_errors_total"
"""The counter of Redis errors the service caught (ivr/metrics.py)."""


def metric_total(text: str, name: str) -> float:
    """The sum over every label set of metric `name` in a Prometheus text exposition."""
    total = 0.0
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^}}]*\}})?\s+([-+0-9.eEinfNa]+)")
    for line in text.splitlines():
        match = pattern.match(line)
        if match:
            total += float(match.group(1))
    return total


def scrape(base_url: str) -> str:
    """`GET /metrics` of an instance (it answers loopback without a token)."""
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=10) as response:
        text: str = response.read().decode("utf-8")
        return text


# --- memory --------------------------------------------------------------------------------------


def rss_kib(status: str) -> int | None:
    """VmRSS in KiB from a /proc/PID/status text (None: a process without one, e.g. a zombie)."""
    match = re.search(r"^VmRSS:\s+(\d+)\s+kB", status, re.MULTILINE)
    return int(match.group(1)) if match else None


def parent_of(stat: str) -> int:
    """The parent PID from a /proc/PID/stat text (the command may hold spaces and parentheses)."""
    return int(stat.rsplit(")", 1)[1].split()[1])


def children(pid: int, proc: Path = Path("/proc")) -> list[int]:
    """The PIDs whose parent is `pid`, in ascending order."""
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if parent_of((entry / "stat").read_text()) == pid:
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue  # it ended meanwhile
    return sorted(found)


def read_rss(pid: int, proc: Path = Path("/proc")) -> int | None:
    """The RSS of `pid` in KiB, None when it has ended."""
    try:
        return rss_kib((proc / str(pid) / "status").read_text())
    except OSError:
        return None


@dataclass
class MemorySample:
    """The RSS (KiB) of every watched process at `seconds` after the soak started."""

    seconds: float
    rss: dict[str, int]


def processes_to_watch(app_master: int, worker: int, redis: int) -> dict[str, int]:
    """Names and PIDs: the gunicorn master of `ivr serve`, each of its web workers, the
    `ivr worker` and redis-server."""
    watched = {"gunicorn master": app_master}
    for number, pid in enumerate(children(app_master), start=1):
        watched[f"web worker {number} (pid {pid})"] = pid
    watched["ivr worker"] = worker
    watched["redis-server"] = redis
    return watched


def sample(watched: dict[str, int], seconds: float) -> MemorySample:
    """One reading of every watched process still running."""
    rss = {}
    for name, pid in watched.items():
        value = read_rss(pid)
        if value is not None:
            rss[name] = value
    return MemorySample(seconds, rss)


def rss_growth(
    samples: Sequence[MemorySample], settled_seconds: float = 300.0
) -> dict[str, dict[str, Any]]:
    """Per process: its RSS at the first sample at or after `settled_seconds` (the size it
    settled at, the issue's "after the first 5 minutes"), at the last sample, and last / settled
    (the target: at most 1.10). A process never sampled that late is measured from its first
    sample, and says so."""
    names = list(dict.fromkeys(name for s in samples for name in s.rss))
    growth: dict[str, dict[str, Any]] = {}
    for name in names:
        mine = [s for s in samples if name in s.rss]
        settled = next((s for s in mine if s.seconds >= settled_seconds), mine[0])
        last = mine[-1]
        first_mib, last_mib = settled.rss[name] / 1024, last.rss[name] / 1024
        growth[name] = {
            "settled_at_seconds": round(settled.seconds),
            "settled_mib": round(first_mib, 1),
            "last_at_seconds": round(last.seconds),
            "last_mib": round(last_mib, 1),
            "ratio": round(last_mib / first_mib, 3) if first_mib else None,
            "from_first_sample": settled.seconds < settled_seconds,
        }
    return growth
