"""Resources: a loop that is used and then closed properly leaves no
ResourceWarning, no open descriptor and no reference behind; one that is not
closed says so."""

from __future__ import annotations

import asyncio
import os
import socket
import warnings
import weakref

import pytest

from tests.loop.conftest import (
    WAIT,
    EchoProtocol,
    LoopImpl,
    RecordingProtocol,
    close_loop_expecting_unclosed_transport,
    collect,
    open_fds,
    server_port,
)

pytestmark = pytest.mark.timeout(30)


async def exercise(loop: asyncio.AbstractEventLoop) -> None:
    """Use most of the loop's machinery, closing everything properly."""
    # TCP server, connection, streams
    server = await loop.create_server(EchoProtocol, "127.0.0.1", 0)
    transport, proto = await loop.create_connection(RecordingProtocol, "127.0.0.1", server_port(server))
    transport.write(b"x" * 100_000)
    await proto.wait_bytes(100_000)
    transport.close()
    await asyncio.wait_for(proto.lost, WAIT)
    reader, writer = await asyncio.open_connection("127.0.0.1", server_port(server))
    writer.write(b"y")
    assert await reader.readexactly(1) == b"y"
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
    # UDP
    udp, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    udp.sendto(b"z", udp.get_extra_info("sockname"))
    udp.close()
    # fd callbacks and sock_* coroutines
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    loop.add_reader(a.fileno(), lambda: None)
    loop.remove_reader(a.fileno())
    await loop.sock_sendall(a, b"ping")
    assert await loop.sock_recv(b, 10) == b"ping"
    a.close()
    b.close()
    # pipes
    rfd, wfd = os.pipe()
    _, read_p = await loop.connect_read_pipe(RecordingProtocol, os.fdopen(rfd, "rb", 0))
    write_t, write_p = await loop.connect_write_pipe(RecordingProtocol, os.fdopen(wfd, "wb", 0))
    write_t.write(b"through")
    write_t.close()
    await asyncio.wait_for(read_p.lost, WAIT)
    await asyncio.wait_for(write_p.lost, WAIT)
    # timers, executor, async generators, tasks
    loop.call_later(3600, lambda: None)
    await loop.run_in_executor(None, sum, [1, 2])

    async def agen():
        yield 1
        yield 2

    gen = agen()
    await gen.__anext__()
    pending = loop.create_task(asyncio.sleep(3600))
    await asyncio.sleep(0)
    pending.cancel()
    await asyncio.gather(pending, return_exceptions=True)


def exercised_and_closed(loop_impl: LoopImpl) -> weakref.ref[asyncio.AbstractEventLoop]:
    """A new loop, `exercise`d, shut down and closed properly: a weak
    reference to it, the only one left."""
    loop = loop_impl.new_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(exercise(loop), WAIT * 2))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()
    return weakref.ref(loop)


def test_closed_loop_leaves_no_resource_warning(loop_impl):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exercised_and_closed(loop_impl)
        collect()
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []


def test_closed_loop_leaves_no_descriptor_and_no_reference(loop_impl):
    collect()
    before = open_fds()
    refs = [exercised_and_closed(loop_impl) for _ in range(3)]
    collect()
    assert open_fds() - before == set()
    assert [ref() for ref in refs] == [None, None, None]


def test_creating_and_closing_many_loops(loop_impl):
    before = open_fds()
    for _ in range(200):
        loop = loop_impl.new_event_loop()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()
    del loop
    collect()
    assert open_fds() - before == set()


def test_unclosed_loop_warns(loop_impl):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loop = loop_impl.new_event_loop()
        loop.run_until_complete(asyncio.sleep(0))
        del loop
        collect()
    messages = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert any(message.startswith("unclosed event loop") for message in messages), messages


def test_unclosed_transport_warns(loop):
    async def main():
        server = await loop.create_server(EchoProtocol, "127.0.0.1", 0)
        transport, _ = await loop.create_connection(RecordingProtocol, "127.0.0.1", server_port(server))
        server.close()
        return weakref.ref(transport)

    ref = loop.run_until_complete(asyncio.wait_for(main(), WAIT))
    close_loop_expecting_unclosed_transport(loop, ref)
