"""Stream transports made by the loop: writing, half-close, closing and
aborting, extra info, read pausing, write flow control, BufferedProtocol,
errors raised by protocols, and asyncio streams on top."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import struct

import pytest

from tests.loop.conftest import (
    WAIT,
    EchoProtocol,
    ErrorRecorder,
    RecordingProtocol,
    payload,
    server_port,
    tcp_pair,
    wait_until,
)

pytestmark = pytest.mark.timeout(30)

BIG = 8 * 1024 * 1024
# More than the kernel buffers of a loopback connection hold (about 4 MiB here):
# writing this much to a peer that does not read leaves data in the transport.
KERNEL_BUFFERS_PLUS = 16 * 1024 * 1024


# ---------------------------------------------------------------- writing


def test_write_and_writelines(loop, run):
    async def main():
        pair = await tcp_pair()
        t = pair.client_transport
        t.write(b"a")
        t.write(bytearray(b"b"))
        t.write(memoryview(b"xcx")[1:2])
        t.write(b"")
        t.writelines([b"d", bytearray(b"e"), memoryview(b"f")])
        t.writelines([])
        assert await pair.peer.wait_bytes(6) == b"abcdef"
        await pair.aclose()

    run(main())


def test_write_rejects_str(loop, run):
    async def main():
        pair = await tcp_pair()
        with pytest.raises(TypeError, match="^data argument must be a bytes-like object, not 'str'$"):
            pair.client_transport.write("text")
        await pair.aclose()

    run(main())


def test_events_order(loop, run):
    async def main():
        pair = await tcp_pair()
        pair.client_transport.write(b"hello")
        await pair.peer.wait_bytes(5)
        pair.client_transport.close()
        await asyncio.wait_for(pair.peer.lost, WAIT)
        await asyncio.wait_for(pair.client.lost, WAIT)
        assert pair.peer.events == ["made", "data", "eof", "lost"]
        assert pair.client.events == ["made", "lost"]
        await pair.aclose()

    run(main())


def test_writes_of_one_callback_arrive_in_order(loop, run):
    """Small writes, large ones and writelines() made in one callback (the
    cppcorn loop holds the small ones to the end of its iteration) reach
    the peer whole and in order."""

    async def main():
        pair = await tcp_pair()
        t = pair.client_transport
        large = payload(20000)
        t.write(b"1")
        t.write(large)
        t.write(b"2")
        t.writelines([b"3", b"4"])
        t.write(large)
        expected = b"1" + large + b"234" + large
        assert await pair.peer.wait_bytes(len(expected)) == expected
        await pair.aclose()

    run(main())


@pytest.mark.parametrize("end", ["abort", "close", "write_eof"])
def test_a_write_then_end_in_one_callback_delivers_the_data(loop, run, end):
    """abort(), close() or write_eof() right after a small write, with no
    loop iteration in between: the peer gets the bytes, then the end."""

    async def main():
        pair = await tcp_pair()
        pair.client_transport.write(b"last words")
        getattr(pair.client_transport, end)()
        await asyncio.wait_for(pair.peer.eof if end == "write_eof" else pair.peer.lost, WAIT)
        assert bytes(pair.peer.data) == b"last words"
        await pair.aclose()

    run(main())


def test_a_write_while_the_loop_is_stopped_goes_out_at_once(loop, run):
    """Between two runs of the loop a write is sent without waiting for
    the next iteration."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(WAIT)

    async def connect():
        return await loop.create_connection(asyncio.Protocol, *listener.getsockname())

    try:
        transport, _ = run(connect())
        peer, _ = listener.accept()
        with peer:
            peer.settimeout(WAIT)
            transport.write(b"while stopped")
            assert peer.recv(100) == b"while stopped"
            transport.close()
            run(asyncio.sleep(0))
    finally:
        listener.close()


def test_sendfile_after_a_small_write(loop, run, tmp_path):
    """loop.sendfile() right after a small write waits for that write to
    leave, then sends the file behind it."""
    data = payload(100000)
    path = tmp_path / "file.bin"
    path.write_bytes(data)

    async def main():
        pair = await tcp_pair()
        pair.client_transport.write(b"head")
        with open(path, "rb") as f:
            assert await loop.sendfile(pair.client_transport, f) == len(data)
        assert await pair.peer.wait_bytes(4 + len(data)) == b"head" + data
        await pair.aclose()

    run(main())


# ---------------------------------------------------------------- half-close


def test_write_eof_half_close_with_eof_received_true(loop, run):
    """eof_received() returning True keeps the transport open for writing."""

    async def main():
        pair = await tcp_pair(server_factory=lambda: RecordingProtocol(eof_result=True))
        client = pair.client_transport
        assert client.can_write_eof()
        client.write(b"request")
        client.write_eof()
        assert not client.is_closing()
        with pytest.raises(RuntimeError, match=r"^Cannot call write\(\) after write_eof\(\)$"):
            client.write(b"more")
        client.write_eof()  # a second call is a no-op
        await asyncio.wait_for(pair.peer.eof, WAIT)
        assert bytes(pair.peer.data) == b"request"
        assert not pair.peer.lost.done()
        await asyncio.sleep(0.02)
        assert not pair.peer.lost.done()  # still open
        assert not pair.peer_transport.is_closing()
        pair.peer_transport.write(b"response after eof")
        pair.peer_transport.close()
        assert await asyncio.wait_for(pair.client.lost, WAIT) is None
        assert bytes(pair.client.data) == b"response after eof"
        assert pair.client.events == ["made", "data", "eof", "lost"]
        assert await asyncio.wait_for(pair.peer.lost, WAIT) is None
        await pair.aclose()

    run(main())


def test_eof_received_falsy_closes_the_transport(loop, run):
    async def main():
        pair = await tcp_pair()  # eof_received() returns None
        pair.client_transport.write_eof()
        assert await asyncio.wait_for(pair.peer.lost, WAIT) is None
        assert pair.peer_transport.is_closing()
        assert pair.peer.events == ["made", "eof", "lost"]
        # the client sees the server's close as EOF
        await asyncio.wait_for(pair.client.eof, WAIT)
        assert await asyncio.wait_for(pair.client.lost, WAIT) is None
        await pair.aclose()

    run(main())


def test_write_eof_to_a_peer_gone_meanwhile_is_a_lost_connection(loop, run):
    """A reply and write_eof() in the callback that sees the peer's EOF, the
    peer having closed for good: on loopback the reply draws an immediate
    reset, so the shutdown that follows fails (ENOTCONN). The connection is
    lost, and nothing escapes to the loop or its exception handler."""

    class ReplyOnEof(RecordingProtocol):
        def eof_received(self) -> bool:
            super().eof_received()
            self.transport.write(b"reply")
            self.transport.write_eof()
            return True

    async def main():
        errors = ErrorRecorder()
        asyncio.get_running_loop().set_exception_handler(errors)
        pair = await tcp_pair(server_factory=ReplyOnEof)
        pair.client_transport.close()
        await asyncio.wait_for(pair.peer.lost, WAIT)
        assert pair.peer.lost_calls == 1
        assert errors.contexts == [], errors.describe()
        await pair.aclose()

    run(main())


def test_write_eof_after_buffered_data(loop, run):
    """write_eof() with data still buffered sends the data first."""

    async def main():
        pair = await tcp_pair(server_factory=lambda: RecordingProtocol(eof_result=True))
        pair.peer_transport.pause_reading()
        data = payload(KERNEL_BUFFERS_PLUS)
        pair.client_transport.write(data)
        assert pair.client_transport.get_write_buffer_size() > 0
        pair.client_transport.write_eof()
        pair.peer_transport.resume_reading()
        await asyncio.wait_for(pair.peer.eof, WAIT)
        assert bytes(pair.peer.data) == data
        await pair.aclose()

    run(main())


# ---------------------------------------------------------------- close / abort


def test_close_flushes_buffer_then_calls_connection_lost_once(loop, run):
    async def main():
        pair = await tcp_pair()
        client = pair.client_transport
        pair.peer_transport.pause_reading()
        data = payload(KERNEL_BUFFERS_PLUS)
        client.write(data)
        assert client.get_write_buffer_size() > 0
        assert not client.is_closing()
        client.close()
        assert client.is_closing()
        client.close()  # idempotent
        await asyncio.sleep(0.02)
        assert not pair.client.lost.done()  # not before the buffer is flushed
        pair.peer_transport.resume_reading()
        assert await asyncio.wait_for(pair.client.lost, WAIT) is None
        await asyncio.wait_for(pair.peer.eof, WAIT)
        assert bytes(pair.peer.data) == data
        await asyncio.sleep(0.02)
        assert pair.client.lost_calls == 1
        assert [e for e in pair.client.events if not e.endswith("_writing")] == ["made", "lost"]
        await pair.aclose()
        assert pair.peer.lost_calls == 1

    run(main())


def test_write_after_close_is_dropped(loop, run):
    """With nothing buffered, close() loses the connection; later writes are dropped silently.

    (asyncio still buffers and sends a write made after close() while earlier data
    is pending; that is not tested.)
    """

    async def main():
        pair = await tcp_pair()
        client = pair.client_transport
        client.write(b"before")
        await pair.peer.wait_bytes(6)
        client.close()
        client.write(b"after")  # no exception
        await asyncio.wait_for(pair.peer.eof, WAIT)
        assert bytes(pair.peer.data) == b"before"
        assert await asyncio.wait_for(pair.client.lost, WAIT) is None
        await pair.aclose()

    run(main())


def test_close_then_peer_close_calls_connection_lost_once(loop, run):
    async def main():
        pair = await tcp_pair()
        pair.client_transport.close()
        pair.peer_transport.close()
        pair.client_transport.close()
        pair.peer_transport.abort()
        await asyncio.wait_for(asyncio.gather(pair.client.lost, pair.peer.lost), WAIT)
        await asyncio.sleep(0.02)
        assert (pair.client.lost_calls, pair.peer.lost_calls) == (1, 1)
        await pair.aclose()

    run(main())


def test_abort_discards_buffer(loop, run):
    async def main():
        pair = await tcp_pair()
        pair.peer_transport.pause_reading()
        client = pair.client_transport
        data = payload(KERNEL_BUFFERS_PLUS)
        client.write(data)
        assert client.get_write_buffer_size() > 0
        client.abort()
        assert client.is_closing()
        assert await asyncio.wait_for(pair.client.lost, WAIT) is None
        assert client.get_write_buffer_size() == 0
        pair.peer_transport.resume_reading()
        await asyncio.wait_for(pair.peer.lost, WAIT)  # EOF or reset
        assert len(pair.peer.data) < len(data)
        assert pair.client.lost_calls == 1
        await pair.aclose()

    run(main())


async def connection_reset_by_peer(loop: asyncio.AbstractEventLoop) -> tuple[asyncio.Transport, RecordingProtocol]:
    """A connection made by the loop to a plain listening socket, whose
    accepted end then closes with an RST (SO_LINGER with a zero timeout)."""
    raw = socket.socket()
    raw.bind(("127.0.0.1", 0))
    raw.listen(1)
    raw.setblocking(False)
    transport, proto = await loop.create_connection(RecordingProtocol, *raw.getsockname())
    conn, _ = await loop.sock_accept(raw)
    raw.close()
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
    return transport, proto


def test_peer_reset_reaches_connection_lost_not_the_exception_handler(loop, run):
    """An OSError from the socket is reported to connection_lost() only."""

    async def main():
        _, proto = await connection_reset_by_peer(loop)
        exc = await asyncio.wait_for(proto.lost, WAIT)
        assert exc is None or isinstance(exc, ConnectionResetError)
        # asyncio: a reset seen by recv() is a ConnectionResetError; seen as EOF first it is None
        if exc is None:
            assert "eof" in proto.events

    run(main())


def test_write_to_reset_connection(loop, run):
    async def main():
        transport, proto = await connection_reset_by_peer(loop)
        await asyncio.wait_for(proto.lost, WAIT)
        for _ in range(10):  # no exception: writes after connection_lost are dropped
            transport.write(b"x" * 1000)

    run(main())


# ---------------------------------------------------------------- extra info


def test_get_extra_info(loop, run):
    async def main():
        pair = await tcp_pair()
        client = pair.client_transport
        port = server_port(pair.server)
        assert client.get_extra_info("peername") == ("127.0.0.1", port)
        sockname = client.get_extra_info("sockname")
        assert sockname[0] == "127.0.0.1"
        assert pair.peer_transport.get_extra_info("peername") == sockname
        assert pair.peer_transport.get_extra_info("sockname") == ("127.0.0.1", port)
        sock = client.get_extra_info("socket")
        assert sock.fileno() >= 0
        assert sock.family == socket.AF_INET
        assert sock.type == socket.SOCK_STREAM
        assert sock.getsockname() == sockname
        assert sock.getpeername() == ("127.0.0.1", port)
        assert client.get_extra_info("no such key") is None
        assert client.get_extra_info("no such key", "default") == "default"
        assert client.get_extra_info("sslcontext") is None
        assert client.get_protocol() is pair.client
        await pair.aclose()

    run(main())


def test_tcp_nodelay_is_set(loop, run):
    async def main():
        pair = await tcp_pair()
        for transport in (pair.client_transport, pair.peer_transport):
            sock = transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        await pair.aclose()

    run(main())


def test_add_reader_on_transport_fd_raises(loop, run):
    async def main():
        pair = await tcp_pair()
        fd = pair.client_transport.get_extra_info("socket").fileno()
        with pytest.raises(RuntimeError, match="^File descriptor .* is used by transport "):
            loop.add_reader(fd, lambda: None)
        with pytest.raises(RuntimeError, match="^File descriptor .* is used by transport "):
            loop.add_writer(fd, lambda: None)
        with pytest.raises(RuntimeError, match="^File descriptor .* is used by transport "):
            loop.remove_reader(fd)
        await pair.aclose()

    run(main())


def test_set_protocol(loop, run):
    async def main():
        pair = await tcp_pair()
        pair.client_transport.write(b"first")
        await pair.peer.wait_bytes(5)
        replacement = RecordingProtocol()
        pair.peer_transport.set_protocol(replacement)
        assert pair.peer_transport.get_protocol() is replacement
        pair.client_transport.write(b"second")
        assert await replacement.wait_bytes(6) == b"second"
        assert bytes(pair.peer.data) == b"first"
        pair.peer_transport.close()
        assert await asyncio.wait_for(replacement.lost, WAIT) is None
        pair.peer.lost.set_result(None)
        await pair.aclose()

    run(main())


# ---------------------------------------------------------------- pausing reads


def test_pause_and_resume_reading(loop, run):
    async def main():
        pair = await tcp_pair()
        peer = pair.peer_transport
        assert peer.is_reading()
        peer.pause_reading()
        peer.pause_reading()  # no-op when already paused
        assert not peer.is_reading()
        pair.client_transport.write(b"held back")
        await asyncio.sleep(0.05)
        assert pair.peer.data == b""
        peer.resume_reading()
        peer.resume_reading()  # no-op when reading
        assert peer.is_reading()
        assert await pair.peer.wait_bytes(9) == b"held back"
        peer.close()
        assert not peer.is_reading()
        await pair.aclose()

    run(main())


def test_pause_reading_defers_eof(loop, run):
    async def main():
        pair = await tcp_pair()
        pair.peer_transport.pause_reading()
        pair.client_transport.write(b"last words")
        pair.client_transport.write_eof()
        await asyncio.sleep(0.05)
        assert pair.peer.events == ["made"]
        pair.peer_transport.resume_reading()
        await asyncio.wait_for(pair.peer.eof, WAIT)
        assert bytes(pair.peer.data) == b"last words"
        await pair.aclose()

    run(main())


# ---------------------------------------------------------------- write flow control


def test_write_buffer_limits(loop, run):
    async def main():
        pair = await tcp_pair()
        t = pair.client_transport
        assert t.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
        t.set_write_buffer_limits(high=1000)
        assert t.get_write_buffer_limits() == (250, 1000)
        t.set_write_buffer_limits(low=100)
        assert t.get_write_buffer_limits() == (100, 400)
        t.set_write_buffer_limits(high=500, low=20)
        assert t.get_write_buffer_limits() == (20, 500)
        t.set_write_buffer_limits(high=0)
        assert t.get_write_buffer_limits() == (0, 0)
        with pytest.raises(ValueError, match=r"^high \(10\) must be >= low \(20\) must be >= 0$"):
            t.set_write_buffer_limits(high=10, low=20)
        assert t.get_write_buffer_size() == 0
        await pair.aclose()

    run(main())


def test_pause_writing_and_resume_writing(loop, run):
    """A slow reader fills the buffers: pause_writing(), then resume_writing() once drained."""

    async def main():
        pair = await tcp_pair()
        client, peer = pair.client_transport, pair.peer_transport
        peer.pause_reading()
        client.set_write_buffer_limits(high=64 * 1024, low=16 * 1024)
        pair.client.pause_waiter = loop.create_future()
        pair.client.resume_waiter = loop.create_future()
        chunk = payload(64 * 1024)
        sent = 0
        while pair.client.paused == 0:
            client.write(chunk)
            sent += len(chunk)
            assert sent < 256 * 1024 * 1024, "pause_writing() never called"
        assert pair.client.paused == 1
        assert client.get_write_buffer_size() > 64 * 1024
        client.write(chunk)  # writing while paused is allowed; no second pause_writing()
        sent += len(chunk)
        assert pair.client.paused == 1
        await asyncio.sleep(0.02)
        assert pair.client.resumed == 0
        peer.resume_reading()
        await asyncio.wait_for(pair.client.resume_waiter, WAIT)
        assert client.get_write_buffer_size() <= 16 * 1024
        assert pair.client.resumed == 1
        await pair.peer.wait_bytes(sent)
        assert len(pair.peer.data) == sent
        assert hashlib.sha256(pair.peer.data).digest() == hashlib.sha256(chunk * (sent // len(chunk))).digest()
        assert pair.client.events.count("pause_writing") == 1
        assert pair.client.events.count("resume_writing") == 1
        await pair.aclose()

    run(main())


def test_high_water_zero_pauses_on_any_buffered_data(loop, run):
    async def main():
        pair = await tcp_pair()
        pair.peer_transport.pause_reading()
        client = pair.client_transport
        client.set_write_buffer_limits(high=0)
        chunk = b"x" * 65536
        while client.get_write_buffer_size() == 0:
            client.write(chunk)
        assert pair.client.paused == 1
        pair.client.resume_waiter = loop.create_future()
        pair.peer_transport.resume_reading()
        await asyncio.wait_for(pair.client.resume_waiter, WAIT)
        assert client.get_write_buffer_size() == 0
        await pair.aclose()

    run(main())


def test_streams_drain_with_slow_reader(loop, run):
    async def main():
        received = bytearray()
        done = loop.create_future()

        async def handler(reader, writer):
            await asyncio.sleep(0.05)  # let the client block in drain()
            while chunk := await reader.read(65536):
                received.extend(chunk)
                await asyncio.sleep(0)
            writer.close()
            done.set_result(None)

        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        _, writer = await asyncio.open_connection("127.0.0.1", server_port(server))
        data = payload(4 * 1024 * 1024)
        for i in range(0, len(data), 256 * 1024):
            writer.write(data[i : i + 256 * 1024])
            await writer.drain()
        writer.write_eof()
        await asyncio.wait_for(done, WAIT)
        assert bytes(received) == data
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    run(main())


# ---------------------------------------------------------------- BufferedProtocol


class BufferedRecorder(asyncio.BufferedProtocol):
    def __init__(self, size: int = 1237) -> None:
        self.buffer = bytearray(size)
        self.digest = hashlib.sha256()
        self.total = 0
        self.sizehints: set[int] = set()
        self.transport = None
        self.lost = asyncio.get_running_loop().create_future()
        self.eof = False

    def connection_made(self, transport):
        self.transport = transport

    def get_buffer(self, sizehint):
        assert isinstance(sizehint, int)
        self.sizehints.add(sizehint)
        return memoryview(self.buffer)

    def buffer_updated(self, nbytes):
        assert 0 < nbytes <= len(self.buffer)
        self.digest.update(self.buffer[:nbytes])
        self.total += nbytes

    def eof_received(self):
        self.eof = True

    def connection_lost(self, exc):
        self.lost.set_result(exc)


def test_buffered_protocol_large_payload(loop, run):
    async def main():
        protocols = []

        def factory():
            protocols.append(BufferedRecorder())
            return protocols[-1]

        server = await loop.create_server(factory, "127.0.0.1", 0)
        transport, _ = await loop.create_connection(RecordingProtocol, "127.0.0.1", server_port(server))
        data = payload(BIG)
        transport.write(data)
        transport.close()
        await wait_until(lambda: protocols)
        proto = protocols[0]
        assert await asyncio.wait_for(proto.lost, WAIT) is None
        assert proto.eof
        assert proto.total == len(data)
        assert proto.digest.digest() == hashlib.sha256(data).digest()
        server.close()
        await server.wait_closed()

    run(main())


def test_buffered_protocol_client(loop, run):
    async def main():
        server = await loop.create_server(EchoProtocol, "127.0.0.1", 0)
        transport, proto = await loop.create_connection(lambda: BufferedRecorder(100), "127.0.0.1", server_port(server))
        data = payload(300_000)
        transport.write(data)
        await wait_until(lambda: proto.total >= len(data))
        assert proto.digest.digest() == hashlib.sha256(data).digest()
        transport.close()
        await asyncio.wait_for(proto.lost, WAIT)
        server.close()
        await server.wait_closed()

    run(main())


def test_switch_between_buffered_and_plain_protocols(loop, run):
    async def main():
        pair = await tcp_pair()
        buffered = BufferedRecorder(50)
        pair.peer_transport.set_protocol(buffered)
        pair.client_transport.write(b"to buffered")
        await wait_until(lambda: buffered.total >= 11)
        assert buffered.digest.digest() == hashlib.sha256(b"to buffered").digest()
        plain = RecordingProtocol()
        pair.peer_transport.set_protocol(plain)
        pair.client_transport.write(b"to plain")
        assert await plain.wait_bytes(8) == b"to plain"
        pair.peer_transport.close()
        await asyncio.wait_for(plain.lost, WAIT)
        pair.peer.lost.set_result(None)
        await pair.aclose()

    run(main())


# ---------------------------------------------------------------- errors in protocol callbacks


class Failing(RecordingProtocol):
    def __init__(self, where: str, exc: BaseException) -> None:
        super().__init__()
        self.where = where
        self.exc = exc

    def data_received(self, data):
        super().data_received(data)
        if self.where == "data_received":
            raise self.exc

    def eof_received(self):
        super().eof_received()
        if self.where == "eof_received":
            raise self.exc


@pytest.mark.parametrize("where", ["data_received", "eof_received"])
def test_exception_in_protocol_callback(loop, run, errors: ErrorRecorder, where):
    exc = ZeroDivisionError(where)

    async def main():
        pair = await tcp_pair(server_factory=lambda: Failing(where, exc))
        pair.client_transport.write(b"trigger")
        if where == "eof_received":
            pair.client_transport.write_eof()
        assert await asyncio.wait_for(pair.peer.lost, WAIT) is exc
        assert pair.peer_transport.is_closing()
        (context,) = await errors.wait(1)
        assert context["message"] == f"Fatal error: protocol.{where}() call failed."
        assert context["exception"] is exc
        assert context["transport"] is pair.peer_transport
        assert context["protocol"] is pair.peer
        # the client sees the connection closed
        await asyncio.wait_for(pair.client.lost, WAIT)
        await pair.aclose()

    run(main())


class FailingBuffered(BufferedRecorder):
    def __init__(self, where, exc):
        super().__init__()
        self.where = where
        self.exc = exc

    def get_buffer(self, sizehint):
        if self.where == "get_buffer":
            raise self.exc
        if self.where == "empty buffer":
            return bytearray()
        return super().get_buffer(sizehint)

    def buffer_updated(self, nbytes):
        if self.where == "buffer_updated":
            raise self.exc
        super().buffer_updated(nbytes)


@pytest.mark.parametrize("where", ["get_buffer", "buffer_updated", "empty buffer"])
def test_exception_in_buffered_protocol(loop, run, errors: ErrorRecorder, where):
    exc = ZeroDivisionError(where)

    async def main():
        protocols = []

        def factory():
            protocols.append(FailingBuffered(where, exc))
            return protocols[-1]

        server = await loop.create_server(factory, "127.0.0.1", 0)
        transport, client = await loop.create_connection(RecordingProtocol, "127.0.0.1", server_port(server))
        transport.write(b"trigger")
        await wait_until(lambda: protocols)
        lost = await asyncio.wait_for(protocols[0].lost, WAIT)
        (context,) = await errors.wait(1)
        if where == "empty buffer":
            assert isinstance(lost, RuntimeError)
            assert str(lost) == "get_buffer() returned an empty buffer"
            assert context["message"] == "Fatal error: protocol.get_buffer() call failed."
        else:
            assert lost is exc
            assert context["message"] == f"Fatal error: protocol.{where}() call failed."
            assert context["exception"] is exc
        assert context["protocol"] is protocols[0]
        await asyncio.wait_for(client.lost, WAIT)
        server.close()
        await server.wait_closed()

    run(main())


# ---------------------------------------------------------------- streams


def test_streams_echo(loop, run):
    async def handler(reader, writer):
        while line := await reader.readline():
            writer.write(line.upper())
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main():
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", server_port(server))
        assert writer.get_extra_info("peername") == ("127.0.0.1", server_port(server))
        for word in (b"hello\n", b"streams\n"):
            writer.write(word)
            await writer.drain()
            assert await reader.readline() == word.upper()
        writer.write(b"partial")
        writer.write_eof()
        assert await reader.read() == b"PARTIAL"
        assert reader.at_eof()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    run(main())


def test_streams_readexactly_and_incomplete_read(loop, run):
    async def handler(reader, writer):
        writer.write(b"0123456789")
        writer.close()

    async def main():
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", server_port(server))
        assert await reader.readexactly(4) == b"0123"
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await reader.readexactly(100)
        assert info.value.partial == b"456789"
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    run(main())


def test_unix_streams(loop, run, short_tmp):
    path = str(short_tmp / "s.sock")

    async def handler(reader, writer):
        writer.write(await reader.read())
        writer.close()

    async def main():
        server = await asyncio.start_unix_server(handler, path)
        reader, writer = await asyncio.open_unix_connection(path)
        assert writer.can_write_eof()
        writer.write(b"unix stream")
        writer.write_eof()
        assert await reader.read() == b"unix stream"
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    run(main())
