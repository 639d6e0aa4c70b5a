"""Structured logs (`IVR_LOG_FORMAT=json`): one JSON object per line, with the call's SID.

Each line has `time` (UTC, ISO 8601), `level`, `logger` and `message`; `call_sid` when it was logged
while a webhook request with a `CallSid` form field was being handled; `exc_info` (the formatted
traceback) when an exception was logged. The default ("text") leaves logging as it is.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from flask import has_request_context, request


class CallSidFilter(logging.Filter):
    """Adds `call_sid` to records logged during a request that carries a `CallSid`; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "call_sid"):
            record.call_sid = _call_sid()
        return True


def _call_sid() -> str | None:
    if not has_request_context():  # background threads, the CLI
        return None
    try:
        sid = request.form.get("CallSid")
    except Exception:  # a body too large or malformed must not break the log line about it
        return None
    return sid or None


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        call_sid = getattr(record, "call_sid", None)
        if call_sid:
            line["call_sid"] = call_sid
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc_info"] = record.exc_text
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def json_handler() -> logging.Handler:
    """A handler to standard error that writes JSON lines with the call's SID."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(CallSidFilter())
    return handler


def configure(log_format: str) -> None:
    """With "json", the root logger writes JSON lines (replacing its handlers); "text": unchanged."""
    if log_format != "json":
        return
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(json_handler())
