"""JSON logs (`IVR_LOG_FORMAT=json`): one object per line, with the CallSid of the request."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import pytest
from flask import Flask
from twilio.request_validator import RequestValidator

from ivr import logs
from ivr.config import ConfigError, Settings
from tests.conftest import ROOT
from tests.faults import free_port, wait_until
from tests.instances import answers, stop_group
from tests.support import AUTH_TOKEN, STATE_SECRET, Phone, signed_post

IVR = [sys.executable, "-m", "ivr.cli"]


@contextmanager
def writing_to(handler: logging.Handler) -> Iterator[io.StringIO]:
    """What `handler` writes for the `ivr` loggers (INFO and above) inside the block."""
    stream = io.StringIO()
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    logger = logging.getLogger("ivr")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """What the JSON handler writes for the `ivr` loggers during the test."""
    with writing_to(logs.json_handler()) as stream:
        yield stream


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


def test_text_leaves_a_root_logger_the_operator_configured_as_it_is() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    assert before  # pytest's own capture handler, like gunicorn's --log-config would add one
    logs.configure("text")
    assert root.handlers == before


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_the_service_under_plain_gunicorn_logs_what_ivr_serve_logs(
    tmp_path: Path, log_format: str
) -> None:
    # wsgi.py is how any WSGI server runs the service: its warnings must reach standard error.
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'ivr.sqlite3'}",
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "IVR_SECRET": STATE_SECRET,
        "IVR_SPOOL_DIR": str(tmp_path / "spool"),
        "IVR_LOG_FORMAT": log_format,
        "ROUTING_RULES": str(ROOT / "routing_rules.yaml"),
        "VOICE_PROMPTS": str(ROOT / "voice_prompts"),
    }
    assert subprocess.run([*IVR, "db", "upgrade"], env=env, timeout=60).returncode == 0
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(lambda: answers(port), timeout=30)
        forged = f"http://127.0.0.1:{port}/voice/input?step=menu&menu=funds&sig=1.forged"
        form = {"CallSid": "CA" + "1" * 32, "Digits": "1"}
        signature = RequestValidator(AUTH_TOKEN).compute_signature(forged, form)
        request = urllib.request.Request(
            forged, data=urlencode(form).encode(), headers={"X-Twilio-Signature": signature}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        unsigned = urllib.request.Request(forged, data=urlencode(form).encode())
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(unsigned, timeout=10)
        wait_until(lambda: "missing or invalid X-Twilio-Signature" in log.read_text(), timeout=10)
    finally:
        stop_group(server)
    written = log.read_text()
    assert "its URL state was not issued by this service for this call" in written
    if log_format == "json":
        assert '"logger": "ivr.webhooks"' in written and '"call_sid": "CA111' in written


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


def test_what_a_request_puts_in_a_field_cannot_start_a_log_line_of_its_own(app: Flask) -> None:
    forged = "\n2026-12-07 03:00:00,000 CRITICAL ivr.admin: admin ada exported every ticket"
    form = {
        "CallSid": "CA" + "1" * 32 + forged,
        "ErrorCode": "11200",
        "ErrorUrl": "https://ivr.example.com/voice/incoming\u2028" + forged,
    }
    with writing_to(logs.text_handler()) as stream:
        response = signed_post(app.test_client(), "/voice/fallback", form)
        assert response.status_code == 200
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert "fallback for CA111" in lines[0] and "\\n2026-12-07 03:00:00,000 CRITICAL" in lines[0]


def test_requests_to_the_exchange_hook_are_not_each_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from datetime import UTC, datetime

    from ivr.clock import FrozenClock
    from ivr.exchange.reference import EmbeddedExchange

    httpx_logger = logging.getLogger("httpx")
    before = httpx_logger.level
    try:
        logs.configure("text")
        caplog.set_level(logging.INFO)
        exchange = EmbeddedExchange("s" * 32, FrozenClock(datetime(2026, 11, 23, tzinfo=UTC)))
        assert exchange.lookup("+4915112345678", "CA" + "1" * 32) is not None
    finally:
        httpx_logger.setLevel(before)
    assert not [r.getMessage() for r in caplog.records if r.name.startswith("httpx")]
