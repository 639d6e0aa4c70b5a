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
