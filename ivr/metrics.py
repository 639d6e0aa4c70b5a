"""Prometheus metrics for operators, through the official client (`prometheus_client`); `GET /metrics`
(`ivr.web.metrics`) serves them.

Each app has its own `CollectorRegistry` (never the process-wide default), so that many apps in one
process (the tests, the simulator) do not share or clash over series.

Under `ivr serve` (gunicorn, one or more worker processes) the metrics are in prometheus_client's
multiprocess mode: `ivr serve` points `PROMETHEUS_MULTIPROC_DIR` at a fresh folder before the app is
created, every process writes its counters and histograms to its own files there, and a scrape,
whichever worker answers it, adds up the files of all of them (`MultiProcessCollector`), those of
workers that have exited included: a counter never goes back when gunicorn replaces a worker. What
is read from the stores at scrape time (`QueueCollector`) is the same whichever worker reads it, so
it is registered once on the scrape registry and never summed over processes. A `Gauge` object added
here later needs a `multiprocess_mode` (say "livesum", "max", "mostrecent"). What is measured:

* `ivr_webhook_duration_seconds{kind, status}` (Histogram): the time each Twilio webhook took, by
  webhook (`KINDS`, from the endpoint) and status-code class ("2xx", "4xx", "5xx").
* At scrape time (`QueueCollector`): callers waiting per line, agents by state (overall and per
  line), the journal backlog and spool (the same `Journal.backlog()` that `/healthz` reports), and
  `ivr_store_up{store}`. With Redis away, `ivr_store_up{store="redis"}` is 0 and the series read
  from Redis are left out: the endpoint still answers 200.
* `ivr_redis_errors_total` (Counter): Redis errors that the service caught and logged. Counted by a
  logging handler on the `ivr` logger that looks at the exception being handled when a record is
  logged (`sys.exc_info()`, also when the record has no `exc_info`): no call site changes, and what
  is counted is exactly what the logs show. Errors swallowed without a log line are not counted.
* `ivr_database_probe_failures_total` (Counter): database probes (by the background thread or
  `/healthz`) that found the database unreachable. Read at scrape time from `DatabaseHealth` in one
  process; in multiprocess mode counted as each probe fails, so that every worker's failures add up.
* `ivr_journal_held_records` (Gauge) and `ivr_journal_lost_records_total` (Counter): ticket changes
  held in memory because neither the spool nor Redis took them, and those given up to the log
  (`JOURNAL-LOST`). Each process holds its own: read from its `Journal` at scrape time in one process;
  in multiprocess mode kept in the files as they change (the gauge summed over live processes).

* `ivr_exchange_requests_total{operation, result}` (Counter) and `ivr_exchange_request_seconds
  {operation}` (Histogram): the calls to the exchange hook (`ivr.exchange.client`), by operation
  (lookup, verify_start, verify_check, lock) and how each ended (answered; unknown, a number the
  exchange does not know; error, timeout, refused: no answer; breaker_open: not asked), and the time
  of each request made. Only with `IVR_EXCHANGE_URL` set; counted as they happen, in every process.

`/metrics` is not a webhook (no Twilio signature) but it is not public (`ivr.web.metrics`).
"""

from __future__ import annotations

import logging
import os
import sys
import time
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask, Response, current_app, g, request
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    values,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from ivr.clock import wall_now  # the clock /healthz ages the stream with too
from ivr.exchange.client import OPERATIONS, RESULTS, HttpExchange, OnCall, Operation, Result

if TYPE_CHECKING:
    from ivr.services import Services

KINDS: dict[str, str] = {
    "voice.incoming": "incoming",
    "voice.input": "input",
    "voice.hold": "hold",
    "voice.whisper": "whisper",
    "voice.agent": "agent",
    "voice.recording": "recording",
    "voice.status": "status",
    "fallback.fallback": "fallback",
    "fallback.dialled": "fallback",
    "fallback.recorded": "fallback",
    "agent_line.agent_line": "agent_line",
}
"""Webhook endpoint -> the `kind` label of its latency; other endpoints are not timed."""

BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0)
"""Seconds; Twilio gives up on a webhook after 15 s."""
EXCHANGE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5)
"""Seconds; the exchange client gives up after 1.5 s."""

AGENT_STATES = ("available", "busy", "offline")

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus_client's switch to multiprocess mode: the folder where every process writes its files."""

PROBE_FAILURES = "ivr_database_probe_failures"
PROBE_FAILURES_HELP = "Database health probes that found the database unreachable."
HELD = "ivr_journal_held_records"
HELD_HELP = "Ticket changes held in memory: neither the spool nor Redis has taken them yet."
LOST = "ivr_journal_lost_records"
LOST_HELP = "Ticket changes given up to the log as JOURNAL-LOST lines (ivr journal replay)."

log = logging.getLogger(__name__)


@dataclass
class Metrics:
    """One app's scrape registry and the metrics updated as things happen (the rest are read at
    scrape). In multiprocess mode `registry` reads every process's files, `folder` is where."""

    registry: CollectorRegistry
    webhook_duration: Histogram
    redis_errors: Counter
    folder: Path | None = None


def multiprocess_dir() -> Path | None:
    """The folder of multiprocess mode (`PROMETHEUS_MULTIPROC_DIR`), None in one-process mode."""
    value = os.environ.get(MULTIPROCESS_DIR_ENV, "").strip()
    return Path(value) if value else None


def install(app: Flask, s: Services) -> Metrics:
    """Create the app's registry and metrics, time its webhooks, count store errors."""
    folder = multiprocess_dir()
    if folder is None:
        registry = CollectorRegistry(auto_describe=True)
        own: CollectorRegistry | None = registry
    else:
        _require_multiprocess_values(folder)
        registry = scrape_registry(s, folder)
        own = None  # the files are the metrics: registered anywhere, they would be reported twice
    m = Metrics(
        registry=registry,
        webhook_duration=Histogram(
            "ivr_webhook_duration_seconds",
            "Time taken to answer a Twilio webhook, by webhook and status-code class.",
            ["kind", "status"],
            buckets=BUCKETS,
            registry=own,
        ),
        redis_errors=Counter(
            "ivr_redis_errors",
            "Redis errors caught and logged by the service.",
            registry=own,
        ),
        folder=folder,
    )
    if folder is None:
        registry.register(QueueCollector(s))
    else:
        s.health.on_failure = Counter(PROBE_FAILURES, PROBE_FAILURES_HELP, registry=None).inc
        s.journal.on_held = Gauge(HELD, HELD_HELP, registry=None, multiprocess_mode="livesum").set
        s.journal.on_lost = Counter(LOST, LOST_HELP, registry=None).inc
    if isinstance(s.exchange, HttpExchange):
        s.exchange.on_call = _exchange_metrics(own)
    app.extensions["ivr_metrics"] = m
    app.before_request(_start_timer)
    app.after_request(_observe)
    ivr_logger = logging.getLogger("ivr")
    for handler in list(ivr_logger.handlers):  # those of apps that are gone
        if isinstance(handler, RedisErrorCounter) and handler.orphaned:
            ivr_logger.removeHandler(handler)
    ivr_logger.addHandler(RedisErrorCounter(m))
    return m


def _exchange_metrics(registry: CollectorRegistry | None) -> OnCall:
    """The exchange client's `on_call`: counts each call, times each request made."""
    requests = Counter(
        "ivr_exchange_requests",
        "Calls to the exchange hook, by operation and result (answered, unknown, error, timeout, "
        "refused, breaker_open).",
        ["operation", "result"],
        registry=registry,
    )
    seconds = Histogram(
        "ivr_exchange_request_seconds",
        "Time taken by requests to the exchange hook (the client gives up after 1.5 s).",
        ["operation"],
        buckets=EXCHANGE_BUCKETS,
        registry=registry,
    )
    for operation in OPERATIONS:  # every series from the start: a rate over a new one is empty
        seconds.labels(operation)
        for result in RESULTS:
            requests.labels(operation, result)

    def on_call(operation: Operation, result: Result, took: float | None) -> None:
        requests.labels(operation, result).inc()
        if took is not None:
            seconds.labels(operation).observe(took)

    return on_call


def scrape_registry(s: Services, folder: Path) -> CollectorRegistry:
    """What a scrape reports in multiprocess mode: the figures read from the stores, once, and the
    files of every process under `folder` (counters and histograms added up)."""
    registry = CollectorRegistry()
    # The stores first: the probe this scrape makes is in the failures it reports, as in one process.
    registry.register(QueueCollector(s, this_process=False))
    MultiProcessCollector(registry, path=str(folder))  # type: ignore[no-untyped-call]
    return registry


def _require_multiprocess_values(folder: Path) -> None:
    """Fail at start-up, not with wrong figures later: prometheus_client picks how it stores values
    when it is first imported, so `PROMETHEUS_MULTIPROC_DIR` must be set before that."""
    if values.ValueClass is values.MutexValue:
        raise RuntimeError(
            f"{MULTIPROCESS_DIR_ENV} is set but prometheus_client was imported before it was: "
            "set it before the process starts"
        )
    if not folder.is_dir():
        raise RuntimeError(f"{MULTIPROCESS_DIR_ENV}={folder} is not a folder")


def _start_timer() -> None:
    g.ivr_started = time.perf_counter()


def _observe(response: Response) -> Response:
    # Registered after the app's other after-request hooks, so it runs before them (Flask runs
    # them in reverse): the time covers the signature check, the view and its error handlers.
    kind = KINDS.get(request.endpoint or "")
    started: float | None = g.get("ivr_started")
    if kind is not None and started is not None:
        m: Metrics = current_app.extensions["ivr_metrics"]
        status = f"{response.status_code // 100}xx"
        m.webhook_duration.labels(kind, status).observe(time.perf_counter() - started)
    return response


class RedisErrorCounter(logging.Handler):
    """Counts log records written while a `RedisError` is being handled (once per exception).

    Holds its metrics weakly: once their app is gone (tests build many apps) it counts nothing, and
    the next `install` takes it off the logger. Never from `emit` itself: the logger is walking its
    handlers then, and taking one out of the list would skip the handler after it."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__()
        self._metrics = weakref.ref(metrics)
        self._mark = f"_ivr_counted_{id(self)}"

    @property
    def orphaned(self) -> bool:
        return self._metrics() is None

    def emit(self, record: logging.LogRecord) -> None:
        metrics = self._metrics()
        if metrics is None:
            return
        error = record.exc_info[1] if record.exc_info else sys.exc_info()[1]
        if isinstance(error, RedisError) and not getattr(error, self._mark, False):
            setattr(error, self._mark, True)  # logged again further up: still one error
            metrics.redis_errors.inc()


class QueueCollector(Collector):
    """The gauges read when scraped: lines, agents, journal, and whether the stores answer."""

    def __init__(self, s: Services, this_process: bool = True) -> None:
        self._s = s
        self._this_process = this_process
        """Report this process's own tallies: probe failures, records held and lost (off in
        multiprocess mode, where every process keeps them in its files)."""

    def describe(self) -> Iterable[Metric]:
        return []  # the series depend on the rules and the stores: nothing to check at register

    def collect(self) -> Iterator[Metric]:
        s = self._s
        redis_up = s.queue.ping()
        threads = s.background is not None and s.background.running()
        database = s.health.latest() if threads else s.health.probe()
        up = GaugeMetricFamily("ivr_store_up", "1 when the store answers.", labels=["store"])
        up.add_metric(["redis"], 1.0 if redis_up else 0.0)
        up.add_metric(["database"], 1.0 if database.reachable else 0.0)
        yield up
        if self._this_process:
            yield CounterMetricFamily(
                PROBE_FAILURES, PROBE_FAILURES_HELP, value=s.health.failures()
            )
            yield GaugeMetricFamily(HELD, HELD_HELP, value=s.journal.held())
            yield CounterMetricFamily(LOST, LOST_HELP, value=s.journal.lost())
        yield from _journal(s)
        if redis_up:
            try:
                yield from _queue(s)
            except RedisError:
                log.warning("metrics: the queue could not be read", exc_info=True)


def _journal(s: Services) -> Iterator[Metric]:
    backlog = s.journal.backlog()  # never raises; the stream's figures are None with Redis away

    def gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, documentation, value=value)

    if backlog.stream is not None:
        yield gauge(
            "ivr_journal_stream_entries",
            "Ticket changes in the Redis stream, not yet written to the database.",
            backlog.stream,
        )
        oldest = (
            0.0
            if backlog.oldest_at is None
            else max(0.0, (wall_now() - backlog.oldest_at).total_seconds())
        )
        yield gauge(
            "ivr_journal_oldest_seconds",
            "Age of the oldest ticket change waiting in the stream (0 when none waits).",
            oldest,
        )
    if backlog.rejected is not None:
        yield gauge(
            "ivr_journal_rejected_entries",
            "Ticket changes the writer could not apply (kept aside for a person).",
            backlog.rejected,
        )
    if backlog.newer is not None:
        newer = GaugeMetricFamily(
            "ivr_journal_newer_entries",
            "Ticket changes a newer release wrote that wait for a process that reads their version.",
            labels=["version"],
        )
        for version, count in backlog.newer.items():
            newer.add_metric([str(version)], count)
        yield newer
    yield gauge("ivr_journal_spool_files", "Spool files not yet shipped.", backlog.spool_files)
    yield gauge("ivr_journal_spool_bytes", "Bytes in the spool.", backlog.spool_bytes)
    yield gauge(
        "ivr_journal_spool_writable",
        "1 when the spool can take ticket changes (0: its last write failed, or the disk is full).",
        1.0 if s.journal.spool.writable() else 0.0,
    )


def _queue(s: Services) -> Iterator[Metric]:
    rules = s.rules.get().rules
    waiting = GaugeMetricFamily(
        "ivr_callers_waiting", "Callers waiting in a line.", labels=["queue", "language"]
    )
    line_agents = GaugeMetricFamily(
        "ivr_line_agents",
        "Agents logged in to serve a line, by state: available or busy.",
        labels=["queue", "language", "state"],
    )
    for queue_id in rules.queues:
        for language in rules.language_codes:
            load = s.queue.line_load(queue_id, language)
            waiting.add_metric([queue_id, language], load.waiting)
            line_agents.add_metric([queue_id, language, "available"], load.agents_available)
            line_agents.add_metric([queue_id, language, "busy"], load.agents_busy)
    statuses = s.queue.agents_at_a_glance(list(rules.agents))
    agents = GaugeMetricFamily("ivr_agents", "Agents of the rules, by state.", labels=["state"])
    for state in AGENT_STATES:
        agents.add_metric([state], sum(1 for v in statuses.values() if v == state))
    yield waiting
    yield line_agents
    yield agents
