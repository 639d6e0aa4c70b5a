"""The support line: a Flask app answering Twilio's voice webhooks.

`create_app` lives in `ivr.app`; it is re-exported here lazily, so that importing a pure module such as
`ivr.flow` or `ivr.hours` loads neither Flask, Redis nor SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(*args: Any, **kwargs: Any) -> Flask:
    """Build the app (see `ivr.app.create_app`)."""
    from ivr.app import create_app as build

    return build(*args, **kwargs)
