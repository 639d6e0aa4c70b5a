"""The scale cases' pure parts: generated rules, /metrics and memory readings, position told."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import loadgen, scale
from ivr.rules.loader import load_rules
from tests.support import ROOT

BASE = scale.load_base(ROOT / "routing_rules.yaml")


def test_a_thousand_idle_agents_serve_no_line_the_calls_queue_in(tmp_path: Path) -> None:
    rules = scale.agents_rules(BASE, 1000, here=False)
    generated = {k: v for k, v in rules["agents"].items() if k.startswith("bench_agent_")}
    assert len(generated) == 1000
    assert all(scale.HERE[0] not in agent["queues"] for agent in generated.values())
    loaded, _ = load_rules(scale.write_rules(rules, tmp_path / "rules.yaml"))
    assert len(loaded.agents) == 1000 + len(BASE["agents"])


def test_agents_busy_here_all_serve_the_calls_line(tmp_path: Path) -> None:
    rules = scale.agents_rules(BASE, 10, here=True)
    generated = [v for k, v in rules["agents"].items() if k.startswith("bench_agent_")]
    assert [(a["queues"], a["languages"]) for a in generated] == [(["funds"], ["en-US"])] * 10
    load_rules(scale.write_rules(rules, tmp_path / "rules.yaml"))


def test_fifty_routes_reach_fifty_different_lines(tmp_path: Path) -> None:
    rules, routes = scale.busy_lines_rules(BASE)
    loaded, _ = load_rules(scale.write_rules(rules, tmp_path / "rules.yaml"))
    assert len(routes) == scale.BUSY_LINES == len(set(routes))
    languages = {entry["key"]: entry["code"] for entry in BASE["languages"]}
    menus = {"2": "funds", "1": "account"}
    lines = {
        (rules["menus"][menus[main]]["options"][sub]["queue"], languages[language])
        for language, main, sub in routes
    }
    assert len(lines) == 50
    assert all(queue in loaded.queues for queue, _ in lines)


def test_a_busy_lines_call_leaves_the_menu_path_of_its_route() -> None:
    assert scale.route_menu_path(("3", "1", "4")) == ["language:3", "main:1", "account:4"]
    assert scale.route_menu_path(loadgen.DEFAULT_ROUTE) == loadgen.EXPECTED_MENU_PATH


def test_redis_errors_are_summed_over_every_label_set() -> None:
    text = "\n".join(
        [
            "# HELP ivr_redis_errors_total Redis errors",
            "# TYPE ivr_redis_errors_total counter",
            'ivr_redis_errors_total{operation="hold"} 3.0',
            'ivr_redis_errors_total{operation="enter"} 2.0',
            "ivr_redis_errors_created 1.7e9",
            "ivr_redis_errors_total_other 99",
        ]
    )
    assert scale.metric_total(text, scale.REDIS_ERRORS) == 5.0
    assert scale.metric_total("ivr_redis_errors_total 4\n", scale.REDIS_ERRORS) == 4.0
    assert scale.metric_total("", scale.REDIS_ERRORS) == 0.0


def test_rss_and_parent_are_read_from_proc_texts() -> None:
    status = "Name:\tgunicorn\nVmPeak:\t 300000 kB\nVmRSS:\t  215344 kB\nThreads:\t9\n"
    assert scale.rss_kib(status) == 215344
    assert scale.rss_kib("Name:\tzombie\nState:\tZ\n") is None
    assert scale.parent_of("123 (gunicorn: worker (x) [app]) S 77 123 123 0") == 77


def test_this_process_is_found_among_its_parents_children() -> None:
    import os

    assert os.getpid() in scale.children(os.getppid())
    assert (scale.read_rss(os.getpid()) or 0) > 0


def test_rss_growth_is_measured_from_the_size_after_the_settling_time() -> None:
    samples = [
        scale.MemorySample(0, {"web worker 1": 100 * 1024, "redis-server": 10 * 1024}),
        scale.MemorySample(300, {"web worker 1": 200 * 1024, "redis-server": 10 * 1024}),
        scale.MemorySample(3600, {"web worker 1": 230 * 1024, "redis-server": 10 * 1024}),
    ]
    growth = scale.rss_growth(samples, settled_seconds=300)
    assert growth["web worker 1"]["settled_mib"] == 200
    assert growth["web worker 1"]["ratio"] == 1.15
    assert growth["redis-server"]["ratio"] == 1.0
    assert not growth["web worker 1"]["from_first_sample"]


def test_a_process_that_ended_before_settling_is_measured_from_its_first_sample() -> None:
    samples = [
        scale.MemorySample(0, {"old worker": 1024}),
        scale.MemorySample(60, {"old worker": 2048}),
    ]
    growth = scale.rss_growth(samples, settled_seconds=300)
    assert growth["old worker"]["from_first_sample"]
    assert growth["old worker"]["ratio"] == 2.0


@pytest.mark.parametrize(
    ("said", "told"),
    [
        ("You are number 7 in line.", True),
        ("You are next in line.", True),
        ("Vous êtes en position 3 dans la file d'attente.", True),
        ("您现在排在第12位。", True),
        ("Please hold.", False),
    ],
)
def test_a_hold_answer_tells_the_place_in_every_language(said: str, told: bool) -> None:
    markers = loadgen.position_markers(ROOT / "voice_prompts")
    document = f"<Response><Gather><Say>{said}</Say></Gather></Response>".encode()
    assert loadgen.tells_position(document, markers) is told


def test_the_sub_menu_key_that_queues_the_caller_is_reported_as_join() -> None:
    kinds = [step.kind for step in loadgen.call_script(("2", "2", "1"))]
    assert kinds == ["incoming", "language", "menu", "join", "hold", "hold", "hold"]
