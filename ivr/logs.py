"""Structured logs (`IVR_LOG_FORMAT=json`): one JSON object per line, with the call's SID.

Each line has `time` (UTC, ISO 8601), `level`, `logger` and `message`; `call_sid` when it was logged
while a webhook request with a `CallSid` form field was being handled; `exc_info` (the formatted
traceback) when an exception was logged. The default ("text") writes one line per record.

Every way of running the service configures logging the same way, through `configure`: `ivr serve`
and `ivr worker` (the CLI) and `wsgi.py` (any WSGI server). The service's own log handlers (the
metrics' Redis error counter) hang on the `ivr` logger, so without a handler on the root logger
Python's last-resort fallback would stay silent and nothing would reach the operator.
"""

from __future__ import annotations

import json
import logging
import re
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


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_ESCAPES = {"\n": "\\n", "\r": "\\r"}
"""Escapes JSON reads too, so that a record in a log line (`JOURNAL-LOST`) can be read back."""
_LINE_BREAKING = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")


def one_line(text: str) -> str:
    """`text` with every control character and line break escaped as JSON does (`\\n`,
    `\\u2028`): what a caller or a request put in a field cannot start a log line of its own."""
    return _LINE_BREAKING.sub(lambda m: _ESCAPES.get(m.group(), f"\\u{ord(m.group()):04x}"), text)


class TextFormatter(logging.Formatter):
    """`TEXT_FORMAT`, each record's message on its one line (a traceback follows on its own lines)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = one_line(record.message)
        return super().formatMessage(record)


def text_handler() -> logging.Handler:
    """A handler to standard error that writes one text line per record."""
    handler = logging.StreamHandler()
    handler.setFormatter(TextFormatter(TEXT_FORMAT))
    return handler


def configure(log_format: str) -> None:
    """Log INFO and above to standard error: "json" as JSON lines (replacing the root logger's
    handlers), "text" as text lines (unless the root logger already has a handler, e.g. from
    gunicorn's `--log-config`, which is then left as it is)."""
    root = logging.getLogger()
    if log_format == "json":
        for handler in list(root.handlers):
            root.removeHandler(handler)
        root.addHandler(json_handler())
        root.setLevel(logging.INFO)
    else:
        logging.basicConfig(level=logging.INFO, handlers=[text_handler()])
    # Alembic announces each of its plugins at INFO as it is imported: not news to an operator.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # httpx announces every request at INFO: the exchange hook's are counted on /metrics instead,
    # and what goes wrong with them is logged once per kind by its client (`ivr.exchange.client`).
    logging.getLogger("httpx").setLevel(logging.WARNING)
