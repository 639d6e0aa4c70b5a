"""`ivr exchange serve`: the exchange hook's reference implementation on a port of its own, for an
exchange's developers to try with curl, and for a line to be pointed at (`IVR_EXCHANGE_URL`)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ivr.command import CommandError, port
from ivr.config import MIN_SECRET_LENGTH
from ivr.exchange.reference import DEMO_ACCOUNTS, AccountOnFile, create_reference_app


def add_parser(commands: Any) -> None:
    """Add `ivr exchange serve` to the `ivr` command's subparsers."""
    exchange = commands.add_parser("exchange", help="the exchange hook's reference implementation")
    exchange_commands = exchange.add_subparsers(dest="exchange_command", required=True)
    serve = exchange_commands.add_parser(
        "serve",
        help="serve the reference implementation (demo accounts, codes printed) until stopped",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=port, default="8099")
    serve.set_defaults(run=_serve)


def _serve(args: argparse.Namespace) -> int:
    from werkzeug.serving import make_server

    secret = os.environ.get("IVR_EXCHANGE_SECRET", "").strip()
    if len(secret) < MIN_SECRET_LENGTH:
        raise CommandError(
            f"IVR_EXCHANGE_SECRET must be set, at least {MIN_SECRET_LENGTH} characters: the key "
            "the line signs its requests with (give the line the same)"
        )
    app = create_reference_app(secret, DEMO_ACCOUNTS, deliver=_print_code)
    try:
        server = make_server(args.host, args.port, app, threaded=True)
    except OSError as exc:
        raise CommandError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    print(f"reference exchange on http://{args.host}:{args.port}/ivr/ (docs/exchange-hook.yaml)")
    for account in DEMO_ACCOUNTS:
        print(
            f"  {account.number}: {account.account}, {account.language}, {account.tier}, "
            f"codes by {account.channel}"
        )
    print("Codes it sends are printed here (it has no phones to send them to).", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _print_code(account: AccountOnFile, code: str) -> None:
    # The customer's phone, for a demo: a real exchange sends the code and never writes it down.
    print(
        f"code {code} sent to {account.account} by {account.channel}", file=sys.stdout, flush=True
    )
