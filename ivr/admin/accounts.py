"""The admin dashboard's accounts: salted argon2 password hashes in one JSON file, never committed.

`ivr admins set-password` writes the file (`IVR_ADMINS`, JSON: `{"admins": {"ada": "$argon2id$..."}}`)
atomically and readable by its owner only; the server reads it at every login, so an account added,
changed or removed takes effect without a restart. The hashing is `ivr.credentials`' (argon2-cffi's
`PasswordHasher`); a stored hash is verified at the cost it was made with.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ivr.hash_file import HashFileError, read_hashes, write_hashes

MIN_PASSWORD_LENGTH: Final = 12
MAX_PASSWORD_LENGTH: Final = 1024
"""Longer passwords are refused before hashing: nobody types more, and hashing costs memory."""
_USER: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class AdminFileError(HashFileError):
    """The accounts file exists but is not one this service wrote."""


def user_problem(user: str) -> str | None:
    """Why `user` may not be an admin's user name, or None when it may."""
    if not _USER.fullmatch(user):
        return "a user name is 1 to 64 letters, digits, '.', '_' or '-'"
    return None


def password_problem(password: str) -> str | None:
    """Why `password` may not be an admin's password, or None when it may."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"a password has at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"a password has at most {MAX_PASSWORD_LENGTH} characters"
    return None


class AdminStore:
    """The admins' password hashes in one JSON file; safe to share between threads."""

    def __init__(self, path: Path, hasher: PasswordHasher | None = None) -> None:
        self.path = path
        self._hasher = hasher or PasswordHasher()
        self._lock = threading.Lock()
        self._dummy: str | None = None

    def verify(self, user: str, password: str) -> bool:
        """True when `password` is `user`'s. An unknown user costs a hash all the same, so the time
        taken does not tell which user names exist."""
        if len(password) > MAX_PASSWORD_LENGTH:
            return False
        stored = self._read().get(user)
        try:
            self._hasher.verify(stored or self._dummy_hash(), password)
        except (VerificationError, InvalidHashError):
            return False
        return stored is not None

    def set_password(self, user: str, password: str) -> None:
        """Create the account or change its password; ValueError for a bad user name or password."""
        problem = user_problem(user) or password_problem(password)
        if problem:
            raise ValueError(problem)
        hashed = self._hasher.hash(password)
        with self._lock:
            hashes = self._read()
            hashes[user] = hashed
            self._write(hashes)

    def remove(self, user: str) -> bool:
        """Delete the account (it can no longer log in); False if there was none."""
        with self._lock:
            hashes = self._read()
            if hashes.pop(user, None) is None:
                return False
            self._write(hashes)
            return True

    def stamp(self, user: str) -> str | None:
        """A short fingerprint of the account's password hash (None: no such account): a session
        started under one password ends when the password changes."""
        stored = self._read().get(user)
        return None if stored is None else hashlib.sha256(stored.encode()).hexdigest()[:16]

    def users(self) -> list[str]:
        """The account names, sorted."""
        return sorted(self._read())

    def _read(self) -> dict[str, str]:
        try:
            return read_hashes(self.path, "admins", "a file of admin accounts", "ivr admins")
        except HashFileError as exc:
            raise AdminFileError(str(exc)) from exc

    def _write(self, hashes: Mapping[str, str]) -> None:
        """Replace the file at once (a reader sees the old one or the new one), owner-only (0600)."""
        write_hashes(self.path, "admins", hashes)

    def _dummy_hash(self) -> str:
        if self._dummy is None:
            self._dummy = self._hasher.hash("not anybody's password")
        return self._dummy
