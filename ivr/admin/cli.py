"""`ivr admins`: the admin dashboard's accounts in $IVR_ADMINS (salted argon2 hashes)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ivr.admin.accounts import AdminFileError, AdminStore, password_problem, user_problem
from ivr.config import ConfigError, Settings
from ivr.hash_file import read_new_secret


def add_parser(commands: Any) -> None:
    """Add `ivr admins set-password|list|remove` to the `ivr` command's subparsers."""
    admins = commands.add_parser("admins", help="the admin dashboard's accounts ($IVR_ADMINS)")
    admin_commands = admins.add_subparsers(dest="admins_command", required=True)
    set_password = admin_commands.add_parser(
        "set-password", help="create an account or change its password (stored as a salted hash)"
    )
    set_password.add_argument("user")
    set_password.add_argument(
        "--password-stdin", action="store_true", help="read the password from one line of stdin"
    )
    set_password.set_defaults(run=_set_password)
    listing = admin_commands.add_parser("list", help="the accounts")
    listing.set_defaults(run=_list)
    remove = admin_commands.add_parser("remove", help="delete an account")
    remove.add_argument("user")
    remove.set_defaults(run=_remove)


def _store() -> AdminStore | None:
    try:
        return AdminStore(Settings.from_env().admins)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None


def _set_password(args: argparse.Namespace) -> int:
    problem = user_problem(args.user)
    if problem:
        print(f"not set: {problem}", file=sys.stderr)
        return 1
    store = _store()
    password = read_new_secret(
        "password", "--password-stdin", from_stdin=args.password_stdin, strip=False
    )
    if store is None or password is None:
        return 1
    problem = password_problem(password)
    if problem:
        print(f"not set: {problem}", file=sys.stderr)
        return 1
    try:
        store.set_password(args.user, password)
    except (AdminFileError, OSError) as exc:
        print(f"not set: {exc}", file=sys.stderr)
        return 1
    print(f"password of {args.user} set in {store.path} (a running server uses it at once)")
    return 0


def _list(args: argparse.Namespace) -> int:
    store = _store()
    if store is None:
        return 1
    try:
        users = store.users()
    except AdminFileError as exc:
        print(exc, file=sys.stderr)
        return 1
    if not users:
        print(f"no admin accounts in {store.path} (ivr admins set-password USER)")
    for user in users:
        print(user)
    return 0


def _remove(args: argparse.Namespace) -> int:
    store = _store()
    if store is None:
        return 1
    try:
        removed = store.remove(args.user)
    except (AdminFileError, OSError) as exc:
        print(f"not removed: {exc}", file=sys.stderr)
        return 1
    if not removed:
        print(f"no admin {args.user!r} in {store.path}", file=sys.stderr)
        return 1
    print(
        f"{args.user} removed: they can no longer log in (a session open now ends at its timeout)"
    )
    return 0
