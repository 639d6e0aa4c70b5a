"""JSON logs (`IVR_LOG_FORMAT=json`): one object per line, with the CallSid of the request."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from flask import Flask

from ivr import logs
from ivr.config import ConfigError, Settings
from tests.support import Phone


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """What the JSON handler writes for the `ivr` loggers during the test."""
    stream = io.StringIO()
    handler = logs.json_handler()
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    logger = logging.getLogger("ivr")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_is_one_json_object_with_time_level_logger_and_message(
    lines: io.StringIO,
) -> None:
    logging.getLogger("ivr.writer").warning("wrote %d of %d", 3, 4)

    (record,) = records(lines)
    assert record["level"] == "WARNING"
    assert record["logger"] == "ivr.writer"
    assert record["message"] == "wrote 3 of 4"
    assert str(record["time"]).endswith("+00:00")
    assert "call_sid" not in record  # not logged during a request


def test_a_log_during_a_webhook_carries_its_call_sid(app: Flask, lines: io.StringIO) -> None:
    phone = Phone(app.test_client())
    with app.test_request_context("/voice/incoming", method="POST", data={"CallSid": phone.sid}):
        logging.getLogger("ivr.switchboard").warning("queue unavailable")
    with app.test_request_context("/admin/", method="GET"):
        logging.getLogger("ivr.admin").warning("no call here")

    during, elsewhere = records(lines)
    assert during["call_sid"] == phone.sid
    assert "call_sid" not in elsewhere


def test_an_exception_is_formatted_into_the_line(lines: io.StringIO) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("ivr.webhooks").exception("webhook failed")

    (record,) = records(lines)
    assert record["message"] == "webhook failed"
    assert "Traceback" in str(record["exc_info"]) and "RuntimeError: boom" in str(
        record["exc_info"]
    )


def test_text_logs_stay_as_they_are_by_default() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    logs.configure("text")
    assert root.handlers == before


def test_json_replaces_the_root_handlers_with_the_json_one() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        logs.configure("json")
        (handler,) = root.handlers
        assert isinstance(handler.formatter, logs.JsonFormatter)
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in before:
            root.addHandler(handler)


def test_an_unknown_log_format_is_refused() -> None:
    with pytest.raises(ConfigError, match="IVR_LOG_FORMAT"):
        Settings.from_env({"IVR_LOG_FORMAT": "xml"})
