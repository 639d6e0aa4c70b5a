"""`ivr exchange serve`: the reference implementation on a port of its own, as an exchange's
developer runs it to try the contract, and as a line can be pointed at it."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

from ivr.exchange.client import HttpExchange
from tests.exchange.support import CALL, GERMAN, SECRET
from tests.faults import free_port, wait_until
from tests.instances import stop_group
from tests.support import IVR, ROOT, ivr_environment, run_ivr


def test_it_serves_the_reference_and_prints_the_codes_it_sends(tmp_path: Path) -> None:
    port = free_port()
    output = tmp_path / "exchange.out"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [str(IVR), "exchange", "serve", "--port", str(port)],
            cwd=ROOT,
            env=ivr_environment(IVR_EXCHANGE_SECRET=SECRET),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        exchange = HttpExchange(f"http://127.0.0.1:{port}", SECRET)

        def listening() -> bool:
            assert process.poll() is None, output.read_text()
            return f"reference exchange on http://127.0.0.1:{port}/" in output.read_text()

        wait_until(listening, timeout=30)
        account = exchange.lookup(GERMAN.number, CALL)
        assert account is not None and account.account == GERMAN.account
        verification = exchange.start_verification(account.account, CALL)
        assert verification is not None

        def code_printed() -> str | None:
            found = re.search(
                r"^code (\d{6}) sent to acct-demo-de by app$", output.read_text(), re.M
            )
            return found.group(1) if found else None

        code = wait_until(code_printed, timeout=5)
        assert exchange.check_code(verification.verification, code) is True
        assert (
            HttpExchange(f"http://127.0.0.1:{port}", "another-secret-" * 3).lookup(
                GERMAN.number, CALL
            )
            is None
        )  # refused: not our secret
    finally:
        started = time.monotonic()
        stop_group(process)
        assert time.monotonic() - started < 5
    shown = output.read_text()
    assert "+4915112345678: acct-demo-de, de-DE, standard, codes by app" in shown
    assert "+14155550123: acct-demo-vip, en-US, vip, codes by sms" in shown


def test_it_refuses_to_start_without_a_secret_in_one_line(tmp_path: Path) -> None:
    result = run_ivr(
        "exchange", "serve", "--port", str(free_port()), cwd=tmp_path, IVR_EXCHANGE_SECRET=""
    )
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("IVR_EXCHANGE_SECRET must be set, at least 32 characters")
    assert result.stderr.count("\n") == 1
