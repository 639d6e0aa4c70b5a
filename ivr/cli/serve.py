"""`ivr serve`: the web service under gunicorn, its workers sharing one metrics folder and the
reference blocks handed to them, draining on stop (`ivr.drain`)."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from ivr import logs
from ivr.command import port, positive_int
from ivr.config import EMBEDDED_EXCHANGE, EMBEDDED_REDIS, ConfigError, Settings
from ivr.proxies import is_loopback
from ivr.rules.loader import RulesError

log = logging.getLogger("ivr.cli")
"""The logger `ivr serve` had as one module: log lines keep their logger name."""


def _schema_ready(settings: Settings, migrate: bool) -> str | None:
    """Bring the schema to the code's (or check it); why the service must not start, if it must not."""
    from sqlalchemy.exc import SQLAlchemyError

    from ivr.db import Database, failure_reason

    database = Database(settings.database_url)
    try:
        if migrate:
            database.upgrade()
        return database.schema().problem()
    except SQLAlchemyError as exc:
        # Unreachable, or a migration failed: the driver's words say which.
        doing = "upgrade" if migrate else "check"
        return f"cannot {doing} the database schema ({failure_reason(exc)})"
    finally:
        database.dispose()


def _serve(args: argparse.Namespace) -> int:
    if args.dev:
        os.environ["IVR_DEV_MODE"] = "1"
        # An exchange to talk to: the reference implementation in-process, with demo accounts
        # (an empty IVR_EXCHANGE_URL turns the hook off; a URL points it at a real one).
        os.environ.setdefault("IVR_EXCHANGE_URL", EMBEDDED_EXCHANGE)
    try:
        settings = Settings.from_env()
        settings.validate()
        logs.configure(settings.log_format)
        if settings.dev_mode and not is_loopback(args.host):
            raise ConfigError(
                f"development mode skips Twilio's signature check, so it serves this machine only: "
                f"--host {args.host} is not a loopback address (use 127.0.0.1, or leave out --dev "
                "and IVR_DEV_MODE)"
            )
        if not is_loopback(args.host) and not settings.trusted_proxies:
            raise ConfigError(
                f"--host {args.host} lets clients reach gunicorn directly, and a few slow clients "
                "can hold all its threads: put a buffering proxy in front (nginx, see docs/operators/"
                "production.md) and set IVR_TRUSTED_PROXIES to its addresses, or listen on "
                "127.0.0.1 behind a proxy on this machine"
            )
        problem = _schema_ready(settings, migrate=not args.no_migrate)
        if problem:
            raise ConfigError(problem)
    except (ConfigError, RulesError) as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1
    # Before the app and its metrics exist (and before prometheus_client is first imported): every
    # gunicorn worker, forked from this process, writes its metrics to the same fresh folder.
    metrics_dir, private_dir = prepare_metrics_dir()
    try:
        from ivr import create_app

        app = create_app(settings)
    except (ConfigError, RulesError) as exc:
        if private_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1
    workers = args.workers
    if settings.redis_url == EMBEDDED_REDIS and workers != 1:
        print("REDIS_URL is not set: the embedded Redis works in one process only, using 1 worker")
        workers = 1
    # The master's own block, one for each worker it starts, and one each to replace them later.
    _lease_for_workers(app, 2 * workers + 1)
    if settings.redis_url == EMBEDDED_REDIS:
        print("Queue state is in-process (embedded Redis): run one process only, or set REDIS_URL.")
    _run_gunicorn(
        app,
        f"{args.host}:{args.port}",
        workers,
        args.threads,
        metrics_dir,
        private_dir,
        drain_seconds=settings.drain_seconds,
    )
    return 0


def _lease_for_workers(app: Any, blocks: int) -> None:
    """In gunicorn's master: have `blocks` reference blocks at hand to give the workers it forks,
    so that a worker forked while the database is away (gunicorn replacing one) has one too."""
    from sqlalchemy.exc import SQLAlchemyError

    from ivr.tickets.references import BLOCK_SIZE, ReferencesExhausted

    services = app.extensions["ivr"]
    try:
        services.references.refill(needed=blocks * BLOCK_SIZE)
    except (SQLAlchemyError, ReferencesExhausted) as exc:
        log.warning("reference blocks for the workers: %s", exc)
    finally:
        services.db.dispose()  # a worker must not inherit the lease's pooled connection


METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""Where prometheus_client's multiprocess mode keeps each process's metrics (`ivr.metrics`)."""


def prepare_metrics_dir() -> tuple[Path, bool]:
    """A fresh folder for the metrics of `ivr serve`'s processes, set in `PROMETHEUS_MULTIPROC_DIR`,
    and whether it is private (made here, removed at exit). The operator's folder, if they set one,
    is kept but emptied of the files of an earlier run (prometheus_client's `*.db`, nothing else):
    counts left over from it would be added to this run's."""
    given = os.environ.get(METRICS_DIR_ENV, "").strip()
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for leftover in folder.glob("*.db"):
            leftover.unlink(missing_ok=True)
        private = False
    else:
        folder = Path(tempfile.mkdtemp(prefix="ivr-metrics-"))
        private = True
    os.environ[METRICS_DIR_ENV] = str(folder)
    return folder, private


def _run_gunicorn(
    app: Any,
    bind: str,
    workers: int,
    threads: int,
    metrics_dir: Path | None = None,
    private_metrics_dir: bool = False,
    *,
    drain_seconds: float = 0.0,
) -> None:
    from gunicorn.app.base import BaseApplication

    from ivr import drain

    services = app.extensions["ivr"]
    flag = drain.install(app)  # before the fork: every worker shares it

    def hand_over_references(server: Any, worker: Any) -> None:
        # In the master, before each fork: the worker starts with a reference block of its own, so
        # that it can number calls (and make outage references) even if the database is down then.
        services.references.set_aside_for_child()
        _lease_for_workers(app, workers + 1)  # replace it while the database answers

    def start_threads(worker: Any) -> None:
        # In each worker, right after the fork: the writer and upkeep threads of this process.
        from ivr.app import start_background

        # A Ctrl-C reaches the whole process group: the master drains (`ivr.drain`), and then
        # stops the workers gracefully; gunicorn's own SIGINT handler would end this one at once.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        start_background(app)

    def hand_over(server: Any, worker: Any) -> None:
        # In each worker, as it exits: its journal goes to the Redis stream (`ivr.drain`, step 4).
        if services.background is not None:
            services.background.finish()

    def worker_exited(server: Any, worker: Any) -> None:
        # In the master: the exited worker's counts stay in the folder; its live gauges go.
        if metrics_dir is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(worker.pid, str(metrics_dir))  # type: ignore[no-untyped-call]

    def server_exits(server: Any) -> None:
        if metrics_dir is not None and private_metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", bind)
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", drain.DrainingWorker)
            self.cfg.set("accesslog", "-")
            # Twilio gives up on a webhook after 15 s; never keep a worker longer than that.
            self.cfg.set("timeout", 20)
            self.cfg.set("graceful_timeout", drain.GRACEFUL_SECONDS)
            self.cfg.set("pre_fork", hand_over_references)
            self.cfg.set("post_worker_init", start_threads)
            self.cfg.set("worker_exit", hand_over)
            self.cfg.set("child_exit", worker_exited)
            self.cfg.set("on_exit", server_exits)

        def load(self) -> Any:
            return app

        def run(self) -> None:
            # gunicorn's own `run`, with the master that drains first (`ivr.drain`).
            drain.DrainingArbiter(self, flag, drain_seconds).run()

    Server().run()


def add_parser(commands: Any) -> None:
    """Add `ivr serve` to the `ivr` command."""
    serve = commands.add_parser("serve", help="run the service (gunicorn)")
    serve.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    # A default given as text goes through `type` too: a bad $PORT is refused like a bad --port.
    serve.add_argument("--port", type=port, default=os.environ.get("PORT", "5000"))
    serve.add_argument(
        "--workers", type=positive_int, default=1, help="processes (needs a real REDIS_URL)"
    )
    serve.add_argument("--threads", type=positive_int, default=8, help="threads per process")
    serve.add_argument(
        "--dev",
        action="store_true",
        help="development mode: no Twilio signature checks; loopback --host only",
    )
    serve.add_argument(
        "--no-migrate", action="store_true", help="do not upgrade the database first"
    )
    serve.set_defaults(run=_serve)
