"""The `ivr` command: run the service and its ticket writer, check a rules file, manage the database
and the agents' PINs."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ivr import logs
from ivr.command import CommandError, count, port, positive_int
from ivr.config import EMBEDDED_EXCHANGE, EMBEDDED_REDIS, ConfigError, Settings
from ivr.credentials import PinFileError, PinStore, pin_problem
from ivr.hash_file import read_new_secret
from ivr.proxies import is_loopback
from ivr.rules.check import load_bundle
from ivr.rules.loader import RulesError, load_rules
from ivr.rules.schema import Rules

log = logging.getLogger(__name__)


def _check(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    rules_file = Path(args.file) if args.file else settings.routing_rules
    prompts_dir = Path(args.prompts) if args.prompts else settings.voice_prompts
    try:
        bundle = load_bundle(rules_file, prompts_dir)
    except RulesError as exc:
        for problem in exc.problems:
            print(problem)
        return 1
    for warning in bundle.warnings:  # worth a look, but the rules load and serve
        print(warning)
    rules = bundle.rules
    warned = f", {len(bundle.warnings)} warning(s)" if bundle.warnings else ""
    print(
        f"{rules_file}: ok ({len(rules.languages)} languages, {len(rules.menus)} menus, "
        f"{len(rules.queues)} queues, {len(rules.teams)} teams{warned})"
    )
    return 0


def _upgrade(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from ivr.db import Database, failure_reason

    settings = Settings.from_env()
    database = Database(settings.database_url)
    try:
        database.upgrade()
        print(f"database at revision {database.current_revision()}")
    except SQLAlchemyError as exc:
        raise CommandError(f"cannot upgrade the database schema ({failure_reason(exc)})") from exc
    finally:
        database.dispose()
    return 0


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
                "can hold all its threads: put a buffering proxy in front (nginx, see the README's "
                "Production section) and set IVR_TRUSTED_PROXIES to its addresses, or listen on "
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


def _worker(args: argparse.Namespace) -> int:
    """`ivr worker`: write tickets from the journal, keep the queues tidy and place after-hours
    callbacks when their team opens, until stopped."""
    import threading

    from ivr.app import build_services
    from ivr.clock import clock_from

    try:
        settings = Settings.from_env().with_overrides(writer="thread")
        settings.validate()
        logs.configure(settings.log_format)
    except ConfigError as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1
    clock = clock_from(settings.clock_start, settings.clock_anchor)
    try:
        s = build_services(settings, clock)
    except RulesError as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1
    if args.drain:
        from ivr.tickets.writer import StoreUnavailable

        try:
            written = s.writer.drain()
        except StoreUnavailable as exc:
            print(f"nothing written: {exc}", file=sys.stderr)
            return 1
        print(f"wrote {written} journal records")
        return 0
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if args.nice:
        # Tickets can wait a moment; callers on the same host cannot: webhooks get the CPU first.
        os.nice(args.nice)
    assert s.background is not None
    s.background.ensure_started()
    logging.getLogger(__name__).info(
        "ivr worker %s: writing tickets and placing after-hours callbacks", s.writer.consumer
    )
    stop.wait()
    # The batch being applied is committed whole (and acknowledged) or not at all: give it time.
    s.background.finish(timeout=WORKER_FINISH_SECONDS)
    return 0


WORKER_FINISH_SECONDS = 25.0
"""How long `ivr worker` waits on SIGTERM for the batch it is applying: PostgreSQL statements time out
after 10 s, and a batch is a lease and one transaction. Past it the process exits anyway; the open
transaction dies with its connection (nothing half-written) and its entries go to another writer."""


def _agent_rules(args: argparse.Namespace, settings: Settings) -> tuple[Path, Rules] | None:
    """The rules naming the agents (`--rules`, else $ROUTING_RULES); None, said why, if broken."""
    rules_file = Path(args.rules) if args.rules else settings.routing_rules
    try:
        rules, _ = load_rules(rules_file)
    except RulesError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None
    return rules_file, rules


def _set_pin(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    found = _agent_rules(args, settings)
    if found is None:
        return 1
    rules_file, rules = found
    if args.agent not in rules.agents:
        known = ", ".join(sorted(rules.agents)) or "none"
        print(f"no agent {args.agent!r} in {rules_file} (its agents: {known})", file=sys.stderr)
        return 1
    pin = read_new_secret("PIN", "--pin-stdin", from_stdin=args.pin_stdin, strip=True)
    if pin is None:
        return 1
    problem = pin_problem(pin)
    if problem:
        print(f"PIN not set: {problem}", file=sys.stderr)
        return 1
    store = PinStore(settings.agent_pins)
    try:
        store.set_pin(args.agent, pin)
    except (PinFileError, OSError) as exc:
        print(f"PIN not set: {exc}", file=sys.stderr)
        return 1
    print(f"PIN of {args.agent} set in {settings.agent_pins} (a running server uses it at once)")
    return 0


def _remove_pin(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    try:
        removed = PinStore(settings.agent_pins).remove(args.agent)
    except (PinFileError, OSError) as exc:
        print(f"PIN not removed: {exc}", file=sys.stderr)
        return 1
    if not removed:
        print(f"{args.agent} has no PIN in {settings.agent_pins}", file=sys.stderr)
        return 1
    print(f"PIN of {args.agent} removed: {args.agent} can no longer log in")
    return 0


def _list_agents(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    found = _agent_rules(args, settings)
    if found is None:
        return 1
    _, rules = found
    store = PinStore(settings.agent_pins)
    try:
        with_pins = store.agents()
    except PinFileError as exc:
        print(exc, file=sys.stderr)
        return 1
    width = max([len("AGENT"), *map(len, rules.agents)])
    print(f"{'AGENT':<{width}}  EXTENSION  PIN")
    for agent_id, agent in rules.agents.items():
        state = "set" if agent_id in with_pins else "not set: cannot log in"
        print(f"{agent_id:<{width}}  {agent.extension:<9}  {state}")
    for agent_id in sorted(with_pins - set(rules.agents)):
        print(f"{agent_id} has a PIN but is not in the rules (ivr agents remove-pin {agent_id})")
    return 0


def _version() -> str:
    """The installed package's version (pyproject.toml's, as the installer recorded it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ivr")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(version unknown: the package is not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivr", description=__doc__)
    parser.add_argument("--version", action="version", version=f"ivr {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser("check", help="validate a rules file and its voice prompts")
    check.add_argument(
        "file", nargs="?", help="rules file (default: $ROUTING_RULES or routing_rules.yaml)"
    )
    check.add_argument(
        "--prompts", help="voice prompt folder (default: $VOICE_PROMPTS or voice_prompts)"
    )
    check.set_defaults(run=_check)

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

    worker = commands.add_parser(
        "worker", help="write tickets from the journal to the database (run one or more)"
    )
    worker.add_argument("--drain", action="store_true", help="write what is waiting now, then exit")
    worker.add_argument(
        "--nice",
        type=count,
        default=10,
        help="lower the worker's CPU priority by this much (default 10; 0 keeps it)",
    )
    worker.set_defaults(run=_worker)

    from ivr.simulator.cli import add_parser as add_simulate

    add_simulate(commands)

    from ivr.tickets.cli import add_parser as add_tickets

    add_tickets(commands)

    from ivr.tickets.replay import add_parser as add_journal

    add_journal(commands)

    from ivr.diagram import add_parser as add_diagram

    add_diagram(commands)

    from ivr.admin.cli import add_parser as add_admins

    add_admins(commands)

    from ivr.exchange.cli import add_parser as add_exchange

    add_exchange(commands)

    from ivr.rules.cli import add_parser as add_rules

    add_rules(commands)

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_commands.add_parser("upgrade", help="create or upgrade the schema (Alembic)")
    upgrade.set_defaults(run=_upgrade)

    agents = commands.add_parser("agents", help="the agents and their PINs ($IVR_AGENT_PINS)")
    agent_commands = agents.add_subparsers(dest="agents_command", required=True)
    rules_help = "rules file naming the agents (default: $ROUTING_RULES or routing_rules.yaml)"
    set_pin = agent_commands.add_parser(
        "set-pin", help="set an agent's PIN (6-12 digits), stored as a salted hash"
    )
    set_pin.add_argument("agent", help="the agent's id in the rules file")
    set_pin.add_argument("--rules", help=rules_help)
    set_pin.add_argument(
        "--pin-stdin", action="store_true", help="read the PIN from one line of stdin (scripts)"
    )
    set_pin.set_defaults(run=_set_pin)
    remove_pin = agent_commands.add_parser("remove-pin", help="remove an agent's PIN")
    remove_pin.add_argument("agent")
    remove_pin.set_defaults(run=_remove_pin)
    listing = agent_commands.add_parser(
        "list", help="the agents in the rules, their extensions, whether each has a PIN"
    )
    listing.add_argument("--rules", help=rules_help)
    listing.set_defaults(run=_list_agents)
    return parser


EXIT_READER_GONE = 128 + signal.SIGPIPE
"""The status of a command whose reader went away (`ivr tickets list | head`): what the shell
reports for a program that SIGPIPE ended, as `cat` and `grep` end there."""


def main(argv: Sequence[str] | None = None) -> int:
    """`ivr`: run the subcommand; its exit status."""
    logs.configure("text")  # `serve` and `worker` switch to IVR_LOG_FORMAT once it is read
    args = build_parser().parse_args(argv)
    try:
        result = _run(args)
        sys.stdout.flush()  # a reader gone by now is found here, not in Python's flush at exit
    except BrokenPipeError:
        # Nobody reads the rest: stop without a traceback. Python flushes stdout once more at
        # exit, which would fail again, so stdout now points at /dev/null (Python's own advice,
        # "Note on SIGPIPE" in the signal module's documentation).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_READER_GONE
    return result


def _run(args: argparse.Namespace) -> int:
    try:
        result: int = args.run(args)
    except CommandError as exc:
        print(exc, file=sys.stderr)
        return 1
    return result


if __name__ == "__main__":
    sys.exit(main())
