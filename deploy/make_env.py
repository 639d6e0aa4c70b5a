"""Write the env file of a compose line (`.env`): every secret the line needs, freshly random.

    python3 deploy/make_env.py            # writes .env next to compose.yaml, never over one

compose.yaml reads it twice: as each ivr container's environment (`env_file`), and for the
passwords it hands PostgreSQL and Redis. Only the standard library: it runs before anything is
installed. TWILIO_AUTH_TOKEN is your Twilio account's own: it is taken from the environment when
set there, and is otherwise a random stand-in that makes every real Twilio request fail its
signature check until you replace it.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path

DEFAULT_PATH = Path(__file__).resolve().parent.parent / ".env"
DATABASE_USER = "ivr"
DATABASE_NAME = "ivr"


def fresh_secret() -> str:
    """43 URL-safe characters (256 random bits): longer than IVR_SECRET's 32-character minimum, and
    safe in a URL's password without quoting."""
    return secrets.token_urlsafe(32)


def env_file(twilio_auth_token: str | None, now: datetime) -> str:
    """The text of a fresh env file."""
    postgres_password = fresh_secret()
    redis_password = fresh_secret()
    token_line = (
        f"TWILIO_AUTH_TOKEN={twilio_auth_token}"
        if twilio_auth_token
        else "# A random stand-in: put your Twilio account's auth token here.\n"
        f"TWILIO_AUTH_TOKEN={fresh_secret()}"
    )
    return f"""\
# The secrets of one ivr line, made by deploy/make_env.py at {now:%Y-%m-%d %H:%M} UTC.
# Keep this file out of the repository (.gitignore and .dockerignore leave it out) and readable by
# you only. Every ivr container of compose.yaml gets these settings (docs/operators/settings.md).
{token_line}
# Seals the call state in webhook URLs; to rotate it, set NEW,OLD for a few hours, then NEW.
IVR_SECRET={fresh_secret()}
# /metrics asks for "Authorization: Bearer <this>".
IVR_METRICS_TOKEN={fresh_secret()}
# PostgreSQL and Redis of the line: compose.yaml gives the passwords to the servers as well.
POSTGRES_PASSWORD={postgres_password}
REDIS_PASSWORD={redis_password}
DATABASE_URL=postgresql://{DATABASE_USER}:{postgres_password}@postgres:5432/{DATABASE_NAME}
REDIS_URL=redis://:{redis_password}@redis:6379/0
# Optional: with TWILIO_ACCOUNT_SID and PUBLIC_BASE_URL the line also moves callers to agents and
# places callbacks through Twilio's REST API.
# TWILIO_ACCOUNT_SID=AC...
# PUBLIC_BASE_URL=https://support.example.com
"""


def main(argv: list[str] | None = None) -> int:
    """Write the env file; 1 (and nothing written) when it exists already."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_PATH, help="default: .env")
    args = parser.parse_args(argv)
    path: Path = args.out
    text = env_file(os.environ.get("TWILIO_AUTH_TOKEN"), datetime.now(UTC))
    try:
        # Created readable by its owner only, and never over an existing file: its secrets are
        # what the database and the sealed URLs of calls in progress were made with.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        print(f"{path} exists already: keeping it (delete it first to start over)", file=sys.stderr)
        return 1
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
