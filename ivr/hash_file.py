"""A file of argon2 hashes by name (agents' PINs, admins' passwords): read it, replace it at once.

JSON, `{"<section>": {"<name>": "$argon2id$..."}}`, written to a temporary file and renamed over the
old one, so a reader sees the old file or the new one, never half of one; readable and writable by
its owner only (0600, as `mkstemp` creates it). Never committed.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path


class HashFileError(Exception):
    """The file exists but cannot be read, or is not one this service wrote."""


def read_hashes(path: Path, section: str, what: str, written_by: str) -> dict[str, str]:
    """The hashes in `path` (none when there is no file yet); `HashFileError` naming `what` (e.g.
    "a PIN file") and the command that writes it when the file is unreadable or not ours."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise HashFileError(f"{path}: cannot read {what}: {exc.strerror}") from exc
    not_ours = f"{path}: not {what} written by `{written_by}`"
    try:
        hashes = json.loads(text)[section]
    except (ValueError, KeyError, TypeError) as exc:
        raise HashFileError(not_ours) from exc
    if not isinstance(hashes, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v.startswith("$argon2")
        for k, v in hashes.items()
    ):
        raise HashFileError(not_ours)
    return dict(hashes)


def write_hashes(path: Path, section: str, hashes: Mapping[str, str]) -> None:
    """Replace the file at once with `hashes`, sorted by name, owner-only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump({section: dict(sorted(hashes.items()))}, file, indent=2)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def read_new_secret(what: str, stdin_flag: str, *, from_stdin: bool, strip: bool) -> str | None:
    """What `ivr agents set-pin` and `ivr admins set-password` hash into the file: one line of stdin
    (`stdin_flag`), or typed twice at the terminal without echo; None, said why, if neither.
    `strip`: leading and trailing spaces are not part of it (a PIN; a password keeps them)."""

    def clean(text: str) -> str:
        return text.strip() if strip else text.rstrip("\r\n")

    if from_stdin:
        return clean(sys.stdin.readline())
    if not sys.stdin.isatty():
        print(
            f"stdin is not a terminal: give {stdin_flag} to read the {what} from it",
            file=sys.stderr,
        )
        return None
    import getpass

    secret = clean(getpass.getpass(f"New {what}: "))
    if clean(getpass.getpass(f"The same {what} again: ")) != secret:
        print(f"the two {what}s differ: nothing changed", file=sys.stderr)
        return None
    return secret
