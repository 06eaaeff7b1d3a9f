"""File descriptor callbacks, the loop.sock_* coroutines, name resolution and
pipe transports."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import sys

import pytest

from tests.loop.conftest import WAIT, RecordingProtocol, nonblocking_socketpair, payload, wait_until

pytestmark = pytest.mark.timeout(30)

BIG = 8 * 1024 * 1024


@pytest.fixture
def pair():
    a, b = nonblocking_socketpair()
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def listener():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    yield sock
    sock.close()


# ---------------------------------------------------------------- add_reader / add_writer


def test_add_reader_and_remove_reader(loop, run, pair):
    a, b = pair
    received = []

    def on_readable(tag):
        received.append((tag, a.recv(100)))

    loop.add_reader(a.fileno(), on_readable, "tag")

    async def main():
        b.send(b"hello")
        await wait_until(lambda: received)
        assert received == [("tag", b"hello")]
        loop.remove_reader(a.fileno())
        b.send(b"not delivered")
        await asyncio.sleep(0.05)

    run(main())
    assert received == [("tag", b"hello")]
    assert a.recv(100) == b"not delivered"


def test_add_reader_accepts_file_objects(loop, run, pair):
    a, b = pair
    received = []
    loop.add_reader(a, lambda: received.append(a.recv(100)))

    async def main():
        b.send(b"x")
        await wait_until(lambda: received)

    run(main())
    assert received == [b"x"]
    loop.remove_reader(a)


def test_remove_reader_writer_return_values(loop, pair):
    """True if the fd was registered for that event, False otherwise."""
    a, _ = pair
    assert loop.remove_reader(a.fileno()) is False
    assert loop.remove_writer(a.fileno()) is False
    loop.add_reader(a.fileno(), lambda: None)
    assert loop.remove_writer(a.fileno()) is False
    assert loop.remove_reader(a.fileno()) is True
    assert loop.remove_reader(a.fileno()) is False
    loop.add_writer(a, lambda: None)
    loop.add_reader(a, lambda: None)
    assert loop.remove_writer(a) is True
    assert loop.remove_writer(a.fileno()) is False
    assert loop.remove_reader(a) is True
    assert loop.remove_reader(a) is False


def test_invalid_file_object(loop):
    with pytest.raises(ValueError, match="^Invalid file object: "):
        loop.add_reader("not a file", lambda: None)
    with pytest.raises(ValueError, match="^Invalid file object: "):
        loop.add_writer(object(), lambda: None)


def test_reader_is_level_triggered(loop, run, pair):
    """A reader that does not consume the data is called again on the next iteration."""
    a, b = pair
    calls = []

    def on_readable():
        calls.append(1)
        if len(calls) == 3:
            a.recv(100)

    loop.add_reader(a.fileno(), on_readable)

    async def main():
        b.send(b"x")
        await wait_until(lambda: len(calls) >= 3)
        await asyncio.sleep(0.05)  # consumed: no more calls

    run(main())
    assert len(calls) == 3
    loop.remove_reader(a.fileno())


def test_add_writer_and_remove_writer(loop, run, pair):
    a, _ = pair
    calls = []
    loop.add_writer(a.fileno(), calls.append, "writable")

    async def main():
        await wait_until(lambda: calls)
        loop.remove_writer(a.fileno())
        count = len(calls)
        await asyncio.sleep(0.02)
        assert len(calls) == count

    run(main())
    assert set(calls) == {"writable"}


def test_writer_waits_until_writable(loop, run, pair):
    a, b = pair
    while True:  # fill the socket buffer
        try:
            a.send(b"x" * 65536)
        except BlockingIOError:
            break
    writable = []
    loop.add_writer(a.fileno(), lambda: writable.append(True))

    async def main():
        await asyncio.sleep(0.05)
        assert writable == []
        while True:  # drain the peer: a becomes writable
            try:
                if not b.recv(1 << 20):
                    break
            except BlockingIOError:
                break
        await wait_until(lambda: writable)

    run(main())
    loop.remove_writer(a.fileno())


def test_reader_and_writer_on_the_same_fd(loop, run, pair):
    a, b = pair
    reads = []
    writes = []
    loop.add_reader(a.fileno(), lambda: reads.append(a.recv(100)))
    loop.add_writer(a.fileno(), lambda: writes.append(1))

    async def main():
        await wait_until(lambda: writes)
        loop.remove_writer(a.fileno())
        await asyncio.sleep(0)
        writes.clear()
        b.send(b"still reading")
        await wait_until(lambda: reads)
        assert writes == []
        assert reads == [b"still reading"]
        # and the other way round
        loop.add_writer(a.fileno(), lambda: writes.append(1))
        loop.remove_reader(a.fileno())
        await wait_until(lambda: writes)
        b.send(b"unread")
        await asyncio.sleep(0.02)
        assert reads == [b"still reading"]
        loop.remove_writer(a.fileno())

    run(main())
    assert a.recv(100) == b"unread"


def test_add_reader_replaces_the_callback(loop, run, pair):
    a, b = pair
    calls = []
    loop.add_reader(a.fileno(), lambda: calls.append("old"))
    loop.add_reader(a.fileno(), lambda: calls.append(("new", a.recv(10))))

    async def main():
        b.send(b"x")
        await wait_until(lambda: calls)
        await asyncio.sleep(0.01)

    run(main())
    assert calls == [("new", b"x")]
    loop.remove_reader(a.fileno())


def test_remove_reader_from_its_own_callback(loop, run, pair):
    a, b = pair
    calls = []

    def once():
        calls.append(1)
        loop.remove_reader(a.fileno())

    loop.add_reader(a.fileno(), once)

    async def main():
        b.send(b"never read")  # stays readable
        await wait_until(lambda: calls)
        await asyncio.sleep(0.02)

    run(main())
    assert calls == [1]


def test_exception_in_reader_goes_to_handler_and_reader_stays(loop, run, pair, errors):
    a, b = pair
    exc = ValueError("reader failed")
    received = []

    def on_readable():
        received.append(a.recv(1))
        if len(received) == 1:
            raise exc

    loop.add_reader(a.fileno(), on_readable)

    async def main():
        b.send(b"ab")
        await wait_until(lambda: len(received) == 2)

    run(main())
    loop.remove_reader(a.fileno())
    assert received == [b"a", b"b"]
    (context,) = errors.contexts
    assert context["message"].startswith("Exception in callback ")
    assert context["exception"] is exc
    assert "handle" in context


def test_fd_number_reused_after_close(loop, run):
    """A descriptor removed and closed, then reused by a new socket, is registered afresh."""
    for _ in range(3):
        a, b = nonblocking_socketpair()
        received: list[bytes] = []
        loop.add_reader(a.fileno(), lambda a=a, received=received: received.append(a.recv(10)))

        async def main(b=b, received=received):
            b.send(b"x")
            await wait_until(lambda: received)

        run(main())
        assert received == [b"x"]
        loop.remove_reader(a.fileno())
        a.close()
        b.close()


def test_many_fds(loop, run):
    pairs = [nonblocking_socketpair() for _ in range(200)]
    received = {}
    try:
        for i, (a, _) in enumerate(pairs):
            loop.add_reader(a.fileno(), lambda i=i, a=a: received.setdefault(i, a.recv(10)))

        async def main():
            for i, (_, b) in enumerate(pairs):
                b.send(str(i).encode())
            await wait_until(lambda: len(received) == len(pairs))

        run(main())
        assert received == {i: str(i).encode() for i in range(len(pairs))}
    finally:
        for a, b in pairs:
            loop.remove_reader(a.fileno())
            a.close()
            b.close()


def test_reader_sees_hangup(loop, run, pair):
    a, b = pair
    got = []
    loop.add_reader(a.fileno(), lambda: got.append(a.recv(10)))

    async def main():
        b.close()
        await wait_until(lambda: got)

    run(main())
    assert got[0] == b""
    loop.remove_reader(a.fileno())


# ---------------------------------------------------------------- sock_* coroutines


def test_sock_recv(loop, run, pair):
    a, b = pair

    async def main():
        task = loop.create_task(loop.sock_recv(a, 100))
        await asyncio.sleep(0.01)
        assert not task.done()
        b.send(b"data")
        assert await task == b"data"
        b.send(b"ready")
        await asyncio.sleep(0.01)
        assert await loop.sock_recv(a, 100) == b"ready"
        b.shutdown(socket.SHUT_WR)
        assert await loop.sock_recv(a, 100) == b""

    run(main())


def test_sock_recv_into(loop, run, pair):
    a, b = pair

    async def main():
        buf = bytearray(10)
        task = loop.create_task(loop.sock_recv_into(a, buf))
        await asyncio.sleep(0.01)
        b.send(b"abc")
        assert await task == 3
        assert buf[:3] == b"abc"
        view = memoryview(buf)[5:]
        b.send(b"0123456789")
        await asyncio.sleep(0.01)
        assert await loop.sock_recv_into(a, view) == 5
        assert bytes(buf) == b"abc\0\x0001234"

    run(main())


def test_cancelled_sock_recv_leaves_the_socket_usable(loop, run, pair):
    a, b = pair

    async def main():
        task = loop.create_task(loop.sock_recv(a, 100))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, WAIT)  # bounded: a timeout is not a CancelledError
        b.send(b"after cancel")
        assert await loop.sock_recv(a, 100) == b"after cancel"

    run(main())


def test_sock_sendall_big_payload(loop, run):
    a, b = nonblocking_socketpair()
    data = payload(BIG)

    async def reader():
        digest = hashlib.sha256()
        total = 0
        while total < len(data):
            chunk = await loop.sock_recv(b, 1 << 20)
            assert chunk
            digest.update(chunk)
            total += len(chunk)
        return total, digest.hexdigest()

    async def main():
        read_task = loop.create_task(reader())
        assert await loop.sock_sendall(a, data) is None
        return await read_task

    try:
        assert run(main()) == (len(data), hashlib.sha256(data).hexdigest())
    finally:
        a.close()
        b.close()


def test_sock_sendall_bytes_like(loop, run, pair):
    a, b = pair

    async def main():
        await loop.sock_sendall(a, bytearray(b"ab"))
        await loop.sock_sendall(a, memoryview(b"xcdx")[1:3])
        await loop.sock_sendall(a, b"")
        received = b""
        while len(received) < 4:
            received += await loop.sock_recv(b, 100)
        return received

    assert run(main()) == b"abcd"


def test_sock_connect_and_sock_accept(loop, run, listener):
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.setblocking(False)

    async def main():
        accept = loop.create_task(loop.sock_accept(listener))
        assert await loop.sock_connect(client, listener.getsockname()) is None
        conn, addr = await accept
        try:
            assert addr == client.getsockname()
            assert conn.getpeername() == client.getsockname()
            assert conn.gettimeout() == 0  # returned non-blocking
            await loop.sock_sendall(client, b"ping")
            assert await loop.sock_recv(conn, 10) == b"ping"
            await loop.sock_sendall(conn, b"pong")
            assert await loop.sock_recv(client, 10) == b"pong"
        finally:
            conn.close()

    try:
        run(main())
    finally:
        client.close()


def test_sock_accept_many(loop, run, listener):
    async def connect():
        client = socket.socket()
        client.setblocking(False)
        await loop.sock_connect(client, listener.getsockname())
        return client

    async def main():
        # all connected first (the backlog holds them), then accepted one by one
        clients = await asyncio.gather(*(connect() for _ in range(20)))
        accepted = [(await loop.sock_accept(listener))[0] for _ in range(20)]
        assert {conn.getpeername() for conn in accepted} == {client.getsockname() for client in clients}
        for sock in clients + accepted:
            sock.close()
        return len(accepted)

    assert run(main()) == 20


def test_sock_connect_refused(loop, run, refused_addr):
    client = socket.socket()
    client.setblocking(False)
    try:
        with pytest.raises(ConnectionRefusedError):
            run(loop.sock_connect(client, refused_addr))
    finally:
        client.close()


def test_sock_connect_unix(loop, run, short_tmp):
    path = str(short_tmp / "sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)
    server.setblocking(False)
    client = socket.socket(socket.AF_UNIX)
    client.setblocking(False)

    async def main():
        accept = loop.create_task(loop.sock_accept(server))
        await loop.sock_connect(client, path)
        conn, _ = await accept
        with conn:
            await loop.sock_sendall(conn, b"over unix")
            return await loop.sock_recv(client, 100)

    try:
        assert run(main()) == b"over unix"
    finally:
        client.close()
        server.close()


@pytest.mark.skipif(sys.version_info < (3, 11), reason="sock_recvfrom/sock_sendto are new in Python 3.11")
def test_sock_sendto_and_recvfrom(loop, run):
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.setblocking(False)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(("127.0.0.1", 0))
    sender.setblocking(False)

    async def main():
        pending = loop.create_task(loop.sock_recvfrom(receiver, 1000))
        await asyncio.sleep(0.01)
        assert not pending.done()
        sent = await loop.sock_sendto(sender, b"datagram", receiver.getsockname())
        assert sent == len(b"datagram")
        assert await pending == (b"datagram", sender.getsockname())
        buf = bytearray(100)
        await loop.sock_sendto(sender, b"into", receiver.getsockname())
        nbytes, addr = await loop.sock_recvfrom_into(receiver, buf)
        assert (bytes(buf[:nbytes]), addr) == (b"into", sender.getsockname())

    try:
        run(main())
    finally:
        receiver.close()
        sender.close()


def test_sock_sendfile(loop, run, tmp_path):
    data = payload(1024 * 1024 + 17)
    path = tmp_path / "file.bin"
    path.write_bytes(data)
    a, b = nonblocking_socketpair()

    async def read_exactly(n):
        out = bytearray()
        while len(out) < n:
            chunk = await loop.sock_recv(b, 1 << 20)
            assert chunk
            out += chunk
        return bytes(out)

    async def main():
        with open(path, "rb") as file:
            reader = loop.create_task(read_exactly(len(data)))
            assert await loop.sock_sendfile(a, file) == len(data)
            assert await reader == data
            assert file.tell() == len(data)
            reader = loop.create_task(read_exactly(5000))
            assert await loop.sock_sendfile(a, file, offset=1000, count=5000) == 5000
            assert await reader == data[1000:6000]
            assert file.tell() == 6000

    try:
        run(main())
    finally:
        a.close()
        b.close()


def test_sock_methods_require_nonblocking_sockets_in_debug_mode(loop, run, tmp_path):
    """asyncio checks sock.gettimeout() == 0 only in debug mode."""
    loop.set_debug(True)
    blocking, other = socket.socketpair()
    file = tmp_path / "f"
    file.write_bytes(b"x")
    message = "^the socket must be non-blocking$"

    async def main():
        with pytest.raises(ValueError, match=message):
            await loop.sock_recv(blocking, 10)
        with pytest.raises(ValueError, match=message):
            await loop.sock_recv_into(blocking, bytearray(10))
        with pytest.raises(ValueError, match=message):
            await loop.sock_sendall(blocking, b"x")
        with pytest.raises(ValueError, match=message):
            await loop.sock_connect(blocking, "/nonexistent")
        with pytest.raises(ValueError, match=message):
            await loop.sock_accept(blocking)
        with open(file, "rb") as f, pytest.raises(ValueError, match=message):
            await loop.sock_sendfile(blocking, f)

    try:
        run(main())
    finally:
        blocking.close()
        other.close()


def test_sock_methods_reject_ssl_sockets(loop, run):
    import ssl

    ctx = ssl.create_default_context()
    raw = socket.socket()
    sslsock = ctx.wrap_socket(raw, server_hostname="localhost", do_handshake_on_connect=False)
    sslsock.setblocking(False)

    async def main():
        with pytest.raises(TypeError, match="^Socket cannot be of type SSLSocket$"):
            await loop.sock_recv(sslsock, 10)
        with pytest.raises(TypeError, match="^Socket cannot be of type SSLSocket$"):
            await loop.sock_sendall(sslsock, b"x")

    try:
        run(main())
    finally:
        sslsock.close()


# ---------------------------------------------------------------- name resolution


def test_getaddrinfo(loop, run):
    for host, port in (("127.0.0.1", 80), ("localhost", "8080"), ("127.0.0.1", None)):
        result = run(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        assert result == socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    result = run(loop.getaddrinfo("127.0.0.1", 53, family=socket.AF_INET, type=socket.SOCK_DGRAM))
    assert result == [(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP, "", ("127.0.0.1", 53))]
    result = run(loop.getaddrinfo(None, 0, family=socket.AF_INET, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE))
    assert result[0][4] == ("0.0.0.0", 0)


def test_getaddrinfo_error(loop, run):
    with pytest.raises(socket.gaierror):
        run(loop.getaddrinfo("name.invalid", 80, flags=socket.AI_NUMERICHOST))


def test_getnameinfo(loop, run):
    flags = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV
    assert run(loop.getnameinfo(("127.0.0.1", 80), flags)) == ("127.0.0.1", "80")
    assert run(loop.getnameinfo(("127.0.0.1", 80))) == socket.getnameinfo(("127.0.0.1", 80), 0)


# ---------------------------------------------------------------- pipes


def test_connect_read_pipe(loop, run):
    rfd, wfd = os.pipe()
    pipe = os.fdopen(rfd, "rb", 0)

    async def main():
        transport, proto = await loop.connect_read_pipe(RecordingProtocol, pipe)
        assert transport.get_extra_info("pipe") is pipe
        if sys.version_info >= (3, 11):  # is_reading() of pipe transports is new in 3.11
            assert transport.is_reading()
        os.write(wfd, b"through the pipe")
        assert await proto.wait_bytes(16) == b"through the pipe"
        transport.pause_reading()
        if sys.version_info >= (3, 11):
            assert not transport.is_reading()
        os.write(wfd, b" paused")
        await asyncio.sleep(0.05)
        assert bytes(proto.data) == b"through the pipe"
        transport.resume_reading()
        assert await proto.wait_bytes(23) == b"through the pipe paused"
        os.close(wfd)
        assert await asyncio.wait_for(proto.lost, WAIT) is None
        assert proto.events == ["made", "data", "eof", "lost"]
        assert transport.is_closing()
        assert pipe.closed

    run(main())


def test_connect_write_pipe(loop, run):
    rfd, wfd = os.pipe()
    read_pipe = os.fdopen(rfd, "rb", 0)
    write_pipe = os.fdopen(wfd, "wb", 0)
    data = payload(2 * 1024 * 1024)

    async def main():
        _, reader = await loop.connect_read_pipe(RecordingProtocol, read_pipe)
        transport, writer = await loop.connect_write_pipe(RecordingProtocol, write_pipe)
        assert transport.get_extra_info("pipe") is write_pipe
        assert transport.can_write_eof()
        transport.write(data[:1000])
        transport.writelines([data[1000:2000], data[2000:]])
        assert transport.get_write_buffer_size() > 0  # the pipe buffer is far smaller
        transport.write_eof()
        assert await asyncio.wait_for(reader.lost, WAIT) is None
        assert bytes(reader.data) == data
        assert await asyncio.wait_for(writer.lost, WAIT) is None
        assert transport.get_write_buffer_size() == 0
        assert write_pipe.closed

    run(main())


def test_write_pipe_notices_a_closed_reader(loop, run):
    rfd, wfd = os.pipe()
    write_pipe = os.fdopen(wfd, "wb", 0)

    async def main():
        transport, writer = await loop.connect_write_pipe(RecordingProtocol, write_pipe)
        os.close(rfd)
        # nothing was buffered: the transport closes itself without an error
        assert await asyncio.wait_for(writer.lost, WAIT) is None
        assert transport.is_closing()

    run(main())


def test_pipe_transport_rejects_regular_files(loop, run, tmp_path):
    path = tmp_path / "regular"
    path.write_bytes(b"x")

    async def main():
        with open(path, "rb") as f, pytest.raises(ValueError, match="^Pipe transport is for pipes/sockets only.$"):
            await loop.connect_read_pipe(asyncio.Protocol, f)
        message = "^Pipe transport is only for pipes, sockets and character devices$"
        with open(path, "wb") as f, pytest.raises(ValueError, match=message):
            await loop.connect_write_pipe(asyncio.Protocol, f)

    run(main())
