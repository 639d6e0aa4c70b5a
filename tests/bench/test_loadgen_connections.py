"""The load generator opens a new connection per webhook, as Twilio does (or reuses one on request)."""

from __future__ import annotations

import asyncio

import pytest

from bench.loadgen import Caller, Connection, Sample, Target

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 11\r\n\r\n<Response/>"


async def webhooks_over(keep_alive: bool, count: int) -> tuple[int, list[bytes]]:
    """(connections the server saw, the requests' heads) for `count` webhooks of one caller."""
    connections = 0
    heads: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break  # the client closed it
            heads.append(head)
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            await reader.readexactly(length)
            writer.write(ANSWER)
            await writer.drain()
            if b"connection: close" in head.lower():
                break
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    samples: list[Sample] = []
    caller = Caller(Target("t", port, "token"), samples.append, keep_alive=keep_alive)
    connection = Connection(port)
    try:
        for _ in range(count):
            sample, _ = await caller._webhook(connection, "/voice/hold", {"CallSid": "CA1"}, "hold")
            assert sample.error is None
    finally:
        connection.close()
        server.close()
        await server.wait_closed()
    return connections, heads


@pytest.mark.parametrize(("keep_alive", "connections"), [(False, 3), (True, 1)])
def test_webhooks_of_one_call_use_a_connection_each_unless_kept_alive(
    keep_alive: bool, connections: int
) -> None:
    seen, heads = asyncio.run(webhooks_over(keep_alive, 3))
    assert seen == connections
    assert all((b"Connection: close" in head) is not keep_alive for head in heads)


MENU = (
    b'<Response><Gather timeout="6" action="/voice/input?step=menu" numDigits="1">'
    b'<Say>For deposits, press 1. For withdrawals, press 2.</Say><Pause length="1"/></Gather>'
    b'<Redirect method="POST">/voice/input?step=menu</Redirect></Response>'
)
HOLD = (
    b'<Response><Gather timeout="30" action="/voice/hold" numDigits="1">'
    b"<Say>You are number 7 in line.</Say></Gather>"
    b'<Redirect method="POST">/voice/hold</Redirect></Response>'
)


def test_a_caller_presses_a_key_once_the_prompt_is_heard() -> None:
    from bench.loadgen import heard_seconds

    spoken = len("For deposits, press 1. For withdrawals, press 2.") / 15.0
    assert heard_seconds(MENU, pressing=True) == pytest.approx(spoken + 1.0)


def test_a_hold_round_lasts_its_speech_and_its_silence() -> None:
    from bench.loadgen import heard_seconds

    spoken = len("You are number 7 in line.") / 15.0
    assert heard_seconds(HOLD, pressing=False) == pytest.approx(spoken + 30.0)


def test_chinese_is_heard_a_character_at_a_time() -> None:
    from bench.loadgen import heard_seconds

    document = "<Response><Say>您现在排在第12位。</Say></Response>".encode()
    assert heard_seconds(document, pressing=False) == pytest.approx(
        8 / 4.0 + 2 / 15.0
    )  # 8 wide characters, "12"


def test_a_callers_pauses_stay_within_what_they_hear() -> None:
    import random

    from bench.loadgen import caller_pause, heard_seconds

    rng = random.Random(3)
    heard = heard_seconds(HOLD, pressing=False)
    pauses = [caller_pause(HOLD, False, rng) for _ in range(200)]
    assert all(0.95 * heard <= p <= 1.05 * heard for p in pauses)
    keyed = heard_seconds(MENU, pressing=True)
    presses = [caller_pause(MENU, True, rng) for _ in range(200)]
    assert all(0.6 * keyed + 1.0 <= p <= keyed + 1.0 for p in presses)
