"""Servers and connections: create_server/create_connection (TCP, Unix, TLS),
the Server object's lifecycle, connect_accepted_socket, UDP endpoints,
loop.sendfile over a transport and start_tls."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import ssl
import sys

import pytest

from tests.loop.conftest import (
    WAIT,
    EchoProtocol,
    RecordingProtocol,
    payload,
    server_port,
    wait_until,
)

pytestmark = pytest.mark.timeout(30)


async def echo_roundtrip(host: str, port: int, data: bytes = b"ping") -> bytes:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_connection(RecordingProtocol, host, port)
    transport.write(data)
    received = await proto.wait_bytes(len(data))
    transport.close()
    await asyncio.wait_for(proto.lost, WAIT)
    return received


# ---------------------------------------------------------------- TCP


def test_create_server_and_connection_echo(loop, run):
    async def main():
        server = await loop.create_server(EchoProtocol, "127.0.0.1", 0)
        assert server.get_loop() is loop
        assert server.is_serving()
        assert len(server.sockets) == 1
        sock = server.sockets[0]
        assert sock.family == socket.AF_INET
        assert sock.getsockname()[0] == "127.0.0.1"
        data = payload(1024 * 1024)
        assert await echo_roundtrip("127.0.0.1", server_port(server), data) == data
        server.close()
        await server.wait_closed()
        assert not server.is_serving()

    run(main())


def test_server_is_an_abstract_server(loop, run):
    async def main():
        server = await loop.create_server(EchoProtocol, "127.0.0.1", 0)
        assert isinstance(server, asyncio.AbstractServer)
        assert isinstance(server.sockets, tuple)
        server.close()
        await server.wait_closed()

    run(main())


def test_many_concurrent_connections(loop, run):
    async def main():
        server = await loop.create_server(EchoProtocol, "127.0.0.1", 0, backlog=200)
        port = server_port(server)
        results = await asyncio.gather(*(echo_roundtrip("127.0.0.1", port, b"n%d" % i) for i in range(100)))
        assert results == [b"n%d" % i for i in range(100)]
        server.close()
        await server.wait_closed()

    run(main())


def test_create_server_several_hosts(loop, run):
    async def main():
        server = await loop.create_server(EchoProtocol, ["127.0.0.1", "127.0.0.2"], 0)
        names = sorted(sock.getsockname() for sock in server.sockets)
        assert [host for host, _ in names] == ["127.0.0.1", "127.0.0.2"]
        for host, port in names:
            assert await echo_roundtrip(host, port) == b"ping"
        server.close()
        await server.wait_closed()
        assert list(server.sockets) == []

    run(main())


def test_create_server_localhost_name(loop, run):
    async def main():
        server = await loop.create_server(EchoProtocol, "localhost", 0, family=socket.AF_INET)
        assert server.sockets[0].getsockname()[0] == "127.0.0.1"
        assert await echo_roundtrip("localhost", server_port(server)) == b"ping"
        server.close()
        await server.wait_closed()

    run(main())


def test_create_server_with_sock(loop, run):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))

    async def main():
        server = await loop.create_server(EchoProtocol, sock=sock)
        assert server.sockets[0].fileno() == sock.fileno()
        assert await echo_roundtrip(*sock.getsockname()) == b"ping"
        server.close()
        await server.wait_closed()

    run(main())
    assert sock.fileno() == -1  # the server closed it


def test_create_server_argument_errors(loop, run):
    sock = socket.socket()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    async def main():
        with pytest.raises(ValueError, match="^host/port and sock can not be specified at the same time$"):
            await loop.create_server(EchoProtocol, "127.0.0.1", 0, sock=sock)
        with pytest.raises(ValueError, match="^Neither host/port nor sock were specified$"):
            await loop.create_server(EchoProtocol)
        with pytest.raises(ValueError, match="^A Stream Socket was expected, got "):
            await loop.create_server(EchoProtocol, sock=udp)
        with pytest.raises(TypeError, match="^ssl argument must be an SSLContext or None$"):
            await loop.create_server(EchoProtocol, "127.0.0.1", 0, ssl=True)

    try:
        run(main())
    finally:
        sock.close()
        udp.close()


def test_create_server_address_in_use(loop, run):
    async def main():
        first = await loop.create_server(EchoProtocol, "127.0.0.1", 0)
        with pytest.raises(OSError) as info:
            await loop.create_server(EchoProtocol, "127.0.0.1", server_port(first))
        assert info.value.errno == __import__("errno").EADDRINUSE
        first.close()
        await first.wait_closed()

    run(main())


def test_reuse_port(loop, run):
    async def main():
        first = await loop.create_server(EchoProtocol, "127.0.0.1", 0, reuse_port=True)
        port = server_port(first)
        second = await loop.create_server(EchoProtocol, "127.0.0.1", port, reuse_port=True)
        sock = second.sockets[0]
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) != 0
        assert server_port(second) == port
        for _ in range(4):
            assert await echo_roundtrip("127.0.0.1", port) == b"ping"
        for server in (first, second):
            server.close()
            await server.wait_closed()

    run(main())


def test_start_serving_false(loop, run):
    async def main():
        server = await loop.create_server(EchoProtocol, "127.0.0.1", 0, start_serving=False)
        port = server_port(server)
        assert not server.is_serving()
        with pytest.raises(ConnectionRefusedError):  # bound, not listening yet
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        await server.start_serving()
        assert server.is_serving()
        await server.start_serving()  # idempotent
        assert await echo_roundtrip("127.0.0.1", port) == b"ping"
        server.close()
        await server.wait_closed()

    run(main())


def test_server_async_context_manager(loop, run):
    async def main():
        async with await loop.create_server(EchoProtocol, "127.0.0.1", 0) as server:
            port = server_port(server)
            assert await echo_roundtrip("127.0.0.1", port) == b"ping"
        assert not server.is_serving()
        assert list(server.sockets) == []
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)

    run(main())


def test_serve_forever_and_close(loop, run):
    async def main():
        server = await loop.create_server(EchoProtocol, "127.0.0.1", 0, start_serving=False)
        task = loop.create_task(server.serve_forever())
        await asyncio.sleep(0.01)
        assert server.is_serving()
        assert await echo_roundtrip("127.0.0.1", server_port(server)) == b"ping"
        with pytest.raises(RuntimeError, match=r"is already being awaited on serve_forever\(\)$"):
            await server.serve_forever()
        server.close()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, WAIT)  # bounded: a timeout is not a CancelledError
        assert task.cancelled()
        assert not server.is_serving()
        await server.wait_closed()
        with pytest.raises(RuntimeError, match=r"^server .* is closed$"):
            await server.serve_forever()

    run(main())


def test_cancelling_serve_forever_closes_the_server(loop, run):
    async def main():
        server = await loop.create_server(EchoProtocol, "127.0.0.1", 0)
        port = server_port(server)
        task = loop.create_task(server.serve_forever())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, WAIT)  # bounded: a timeout is not a CancelledError
        assert not server.is_serving()
        assert list(server.sockets) == []
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)

    run(main())


def test_close_keeps_existing_connections(loop, run):
    async def main():
        server = await loop.create_server(EchoProtocol, "127.0.0.1", 0)
        port = server_port(server)
        transport, proto = await loop.create_connection(RecordingProtocol, "127.0.0.1", port)
        server.close()
        transport.write(b"still echoed")
        assert await proto.wait_bytes(12) == b"still echoed"
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        transport.close()
        await asyncio.wait_for(proto.lost, WAIT)
        await server.wait_closed()

    run(main())


@pytest.mark.skipif(sys.version_info < (3, 12, 1), reason="wait_closed() waits for connections since Python 3.12.1")
def test_wait_closed_waits_for_connections(loop, run):
    async def main():
        server = await loop.create_server(EchoProtocol, "127.0.0.1", 0)
        transport, proto = await loop.create_connection(RecordingProtocol, "127.0.0.1", server_port(server))
        transport.write(b"x")
        await proto.wait_bytes(1)
        server.close()
        waiter = loop.create_task(server.wait_closed())
        await asyncio.sleep(0.05)
        assert not waiter.done()
        transport.close()
        await asyncio.wait_for(waiter, WAIT)

    run(main())


@pytest.mark.skipif(sys.version_info < (3, 13), reason="close_clients()/abort_clients() are new in Python 3.13")
def test_close_clients_and_abort_clients(loop, run):
    async def main():
        server = await loop.create_server(EchoProtocol, "127.0.0.1", 0)
        port = server_port(server)
        protos = []
        for _ in range(2):
            transport, proto = await loop.create_connection(RecordingProtocol, "127.0.0.1", port)
            transport.write(b"x")
            await proto.wait_bytes(1)
            protos.append(proto)
        server.close()
        server.close_clients()
        await asyncio.wait_for(asyncio.gather(*(p.eof for p in protos)), WAIT)
        await asyncio.wait_for(server.wait_closed(), WAIT)

        server = await loop.create_server(EchoProtocol, "127.0.0.1", 0)
        transport, proto = await loop.create_connection(RecordingProtocol, "127.0.0.1", server_port(server))
        transport.write(b"x")
        await proto.wait_bytes(1)
        server.close()
        server.abort_clients()
        await asyncio.wait_for(proto.lost, WAIT)
        await asyncio.wait_for(server.wait_closed(), WAIT)

    run(main())


def test_create_connection_local_addr(loop, run):
    async def main():
        peers = []
        server = await loop.create_server(lambda: peers.append(RecordingProtocol()) or peers[-1], "127.0.0.1", 0)
        transport, proto = await loop.create_connection(
            RecordingProtocol, "127.0.0.1", server_port(server), local_addr=("127.0.0.1", 0)
        )
        local = transport.get_extra_info("sockname")
        assert local[0] == "127.0.0.1" and local[1] != 0
        await wait_until(lambda: peers)
        await peers[0].made
        assert peers[0].transport.get_extra_info("peername") == local
        transport.close()
        await asyncio.wait_for(proto.lost, WAIT)
        server.close()
        await server.wait_closed()

    run(main())


def test_create_connection_with_sock(loop, run):
    async def main():
        server = await loop.create_server(EchoProtocol, "127.0.0.1", 0)
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", server_port(server)))
        transport, proto = await loop.create_connection(RecordingProtocol, sock=sock)
        assert transport.get_extra_info("socket").fileno() == sock.fileno()
        transport.write(b"via sock")
        assert await proto.wait_bytes(8) == b"via sock"
        transport.close()
        await asyncio.wait_for(proto.lost, WAIT)
        assert sock.fileno() == -1
        server.close()
        await server.wait_closed()

    run(main())


def test_create_connection_refused(loop, run, refused_addr):
    with pytest.raises(ConnectionRefusedError):
        run(loop.create_connection(asyncio.Protocol, *refused_addr))


def test_create_connection_argument_errors(loop, run):
    async def main():
        with pytest.raises(ValueError, match="^server_hostname is only meaningful with ssl$"):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", 1, server_hostname="x")
        with pytest.raises(ValueError, match="^host and port was not specified and no sock specified$"):
            await loop.create_connection(asyncio.Protocol)

    run(main())


def test_connect_accepted_socket(loop, run):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.setblocking(False)

    async def main():
        client = socket.socket()
        client.setblocking(False)
        await loop.sock_connect(client, listener.getsockname())
        conn, _ = await loop.sock_accept(listener)
        transport, proto = await loop.connect_accepted_socket(EchoProtocol, conn)
        assert isinstance(proto, EchoProtocol)
        assert transport.get_extra_info("peername") == client.getsockname()
        await loop.sock_sendall(client, b"accepted")
        received = b""
        while len(received) < 8:
            received += await loop.sock_recv(client, 100)
        transport.close()
        client.close()
        return received

    try:
        assert run(main()) == b"accepted"
    finally:
        listener.close()


# ---------------------------------------------------------------- Unix sockets


def test_unix_server_and_connection(loop, run, short_tmp):
    path = str(short_tmp / "echo.sock")

    async def main():
        server = await loop.create_unix_server(EchoProtocol, path)
        assert server.sockets[0].family == socket.AF_UNIX
        assert server.sockets[0].getsockname() == path
        transport, proto = await loop.create_unix_connection(RecordingProtocol, path)
        assert transport.get_extra_info("peername") == path
        assert transport.can_write_eof()
        data = payload(512 * 1024)
        transport.write(data)
        assert await proto.wait_bytes(len(data)) == data
        transport.write_eof()  # EchoProtocol closes on EOF
        assert await asyncio.wait_for(proto.lost, WAIT) is None
        server.close()
        await server.wait_closed()

    run(main())


def test_unix_server_replaces_stale_socket_file(loop, run, short_tmp):
    path = str(short_tmp / "stale.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()
    assert os.path.exists(path)

    async def main():
        server = await loop.create_unix_server(EchoProtocol, path)
        transport, proto = await loop.create_unix_connection(RecordingProtocol, path)
        transport.close()
        await asyncio.wait_for(proto.lost, WAIT)
        server.close()
        await server.wait_closed()

    run(main())


@pytest.mark.skipif(sys.version_info < (3, 13), reason="the socket file is removed on close since Python 3.13")
def test_unix_server_removes_socket_file(loop, run, short_tmp):
    path = str(short_tmp / "cleanup.sock")

    async def main():
        server = await loop.create_unix_server(EchoProtocol, path)
        assert os.path.exists(path)
        server.close()
        await server.wait_closed()
        assert not os.path.exists(path)

    run(main())


def test_unix_connection_to_missing_path(loop, run, short_tmp):
    with pytest.raises(FileNotFoundError):
        run(loop.create_unix_connection(asyncio.Protocol, str(short_tmp / "missing.sock")))


def test_unix_server_with_sock(loop, run, short_tmp):
    path = str(short_tmp / "given.sock")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(path)

    async def main():
        server = await loop.create_unix_server(EchoProtocol, sock=sock)
        transport, proto = await loop.create_unix_connection(RecordingProtocol, path)
        transport.write(b"given")
        assert await proto.wait_bytes(5) == b"given"
        transport.close()
        await asyncio.wait_for(proto.lost, WAIT)
        server.close()
        await server.wait_closed()

    run(main())


# ---------------------------------------------------------------- UDP


class DatagramRecorder(asyncio.DatagramProtocol):
    def __init__(self, echo: bool = False) -> None:
        self.echo = echo
        self.transport = None
        self.datagrams: list[tuple[bytes, object]] = []
        self.errors: list[Exception] = []
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        assert isinstance(data, bytes)
        self.datagrams.append((data, addr))
        if self.echo:
            self.transport.sendto(data.upper(), addr)

    def error_received(self, exc):
        self.errors.append(exc)

    def connection_lost(self, exc):
        self.lost.set_result(exc)


def test_udp_echo(loop, run):
    async def main():
        server_t, server_p = await loop.create_datagram_endpoint(
            lambda: DatagramRecorder(echo=True), local_addr=("127.0.0.1", 0)
        )
        server_addr = server_t.get_extra_info("sockname")
        assert server_addr[0] == "127.0.0.1"
        client_t, client_p = await loop.create_datagram_endpoint(DatagramRecorder, remote_addr=server_addr)
        assert client_t.get_extra_info("peername") == server_addr
        sock = client_t.get_extra_info("socket")
        assert sock.type == socket.SOCK_DGRAM
        client_t.sendto(b"ping")
        client_t.sendto(bytearray(b"big" * 20000))
        await wait_until(lambda: len(client_p.datagrams) == 2)
        assert [d for d, _ in client_p.datagrams] == [b"PING", b"BIG" * 20000]
        assert client_p.datagrams[0][1] == server_addr
        assert server_p.datagrams[0] == (b"ping", client_t.get_extra_info("sockname"))
        assert client_t.get_write_buffer_size() == 0
        client_t.close()
        assert client_t.is_closing()
        server_t.close()
        assert await asyncio.wait_for(client_p.lost, WAIT) is None
        assert await asyncio.wait_for(server_p.lost, WAIT) is None

    run(main())


def test_udp_unconnected_sendto(loop, run):
    async def main():
        server_t, server_p = await loop.create_datagram_endpoint(
            lambda: DatagramRecorder(echo=True), local_addr=("127.0.0.1", 0)
        )
        server_addr = server_t.get_extra_info("sockname")
        client_t, client_p = await loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=("127.0.0.1", 0), family=socket.AF_INET
        )
        assert client_t.get_extra_info("peername") is None
        client_t.sendto(b"one", server_addr)
        await wait_until(lambda: client_p.datagrams)
        assert client_p.datagrams == [(b"ONE", server_addr)]
        with pytest.raises(TypeError, match="^data argument must be a bytes-like object, not 'str'$"):
            client_t.sendto("text", server_addr)
        client_t.close()
        server_t.close()
        await asyncio.wait_for(asyncio.gather(client_p.lost, server_p.lost), WAIT)

    run(main())


def test_udp_connected_sendto_other_address_raises(loop, run):
    async def main():
        server_t, server_p = await loop.create_datagram_endpoint(DatagramRecorder, local_addr=("127.0.0.1", 0))
        server_addr = server_t.get_extra_info("sockname")
        client_t, client_p = await loop.create_datagram_endpoint(DatagramRecorder, remote_addr=server_addr)
        with pytest.raises(ValueError, match=r"^Invalid address: must be None or \('127.0.0.1', "):
            client_t.sendto(b"x", ("127.0.0.1", 9))
        client_t.sendto(b"same address is fine", server_addr)
        await wait_until(lambda: server_p.datagrams)
        client_t.close()
        server_t.close()
        await asyncio.wait_for(asyncio.gather(client_p.lost, server_p.lost), WAIT)

    run(main())


def test_udp_error_received(loop, run):
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    closed_addr = probe.getsockname()
    probe.close()  # now nothing listens there

    async def main():
        client_t, client_p = await loop.create_datagram_endpoint(DatagramRecorder, remote_addr=closed_addr)
        for _ in range(3):
            client_t.sendto(b"anyone?")
            await asyncio.sleep(0.02)
        await wait_until(lambda: client_p.errors)
        assert isinstance(client_p.errors[0], ConnectionRefusedError)
        assert not client_t.is_closing()  # errors do not close a datagram transport
        client_t.close()
        await asyncio.wait_for(client_p.lost, WAIT)

    run(main())


def test_udp_endpoint_with_sock(loop, run):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))

    async def main():
        transport, proto = await loop.create_datagram_endpoint(lambda: DatagramRecorder(echo=True), sock=sock)
        assert transport.get_extra_info("sockname") == sock.getsockname()
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        other.setblocking(False)
        other.bind(("127.0.0.1", 0))
        other.sendto(b"hi", sock.getsockname())
        data = await loop.sock_recv(other, 100)
        other.close()
        transport.close()
        await asyncio.wait_for(proto.lost, WAIT)
        return data

    assert run(main()) == b"HI"


# ---------------------------------------------------------------- sendfile


def test_sendfile_over_transport(loop, run, tmp_path):
    data = payload(3 * 1024 * 1024 + 5)
    path = tmp_path / "data.bin"
    path.write_bytes(data)

    async def main():
        peers = []
        server = await loop.create_server(lambda: peers.append(RecordingProtocol()) or peers[-1], "127.0.0.1", 0)
        transport, proto = await loop.create_connection(RecordingProtocol, "127.0.0.1", server_port(server))
        await wait_until(lambda: peers)
        peer = peers[0]
        with open(path, "rb") as f:
            assert await loop.sendfile(transport, f) == len(data)
            assert f.tell() == len(data)
            assert await peer.wait_bytes(len(data)) == data
            assert await loop.sendfile(transport, f, offset=100, count=1000) == 1000
            assert f.tell() == 1100
        transport.write(b"after sendfile")
        expected = data + data[100:1100] + b"after sendfile"
        assert hashlib.sha256(await peer.wait_bytes(len(expected))).digest() == hashlib.sha256(expected).digest()
        transport.close()
        await asyncio.wait_for(proto.lost, WAIT)
        server.close()
        await server.wait_closed()

    run(main())


def test_sendfile_argument_errors(loop, run, tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("text")

    async def main():
        server = await loop.create_server(EchoProtocol, "127.0.0.1", 0)
        transport, proto = await loop.create_connection(RecordingProtocol, "127.0.0.1", server_port(server))
        with open(path) as text_file, pytest.raises(ValueError, match="^file should be opened in binary mode$"):
            await loop.sendfile(transport, text_file)
        with open(path, "rb") as f:
            with pytest.raises(ValueError, match="^offset must be a non-negative integer"):
                await loop.sendfile(transport, f, offset=-1)
            with pytest.raises(ValueError, match="^count must be a positive integer"):
                await loop.sendfile(transport, f, count=0)
        transport.close()
        with open(path, "rb") as f, pytest.raises(RuntimeError, match="^Transport is closing$"):
            await loop.sendfile(transport, f)
        await asyncio.wait_for(proto.lost, WAIT)
        server.close()
        await server.wait_closed()

    run(main())


# ---------------------------------------------------------------- TLS


def test_tls_server_and_connection(loop, run, tls):
    data = payload(2 * 1024 * 1024)

    async def main():
        server = await loop.create_server(EchoProtocol, "127.0.0.1", 0, ssl=tls.server)
        transport, proto = await loop.create_connection(
            RecordingProtocol, "127.0.0.1", server_port(server), ssl=tls.client, server_hostname="localhost"
        )
        ssl_object = transport.get_extra_info("ssl_object")
        assert isinstance(ssl_object, (ssl.SSLObject, ssl.SSLSocket))
        assert transport.get_extra_info("sslcontext") is tls.client
        assert transport.get_extra_info("peercert")["subjectAltName"]
        assert transport.get_extra_info("cipher")
        assert transport.get_extra_info("peername") == ("127.0.0.1", server_port(server))
        assert not transport.can_write_eof()
        transport.write(data)
        assert await proto.wait_bytes(len(data)) == data
        transport.close()
        assert await asyncio.wait_for(proto.lost, WAIT) is None
        server.close()
        await server.wait_closed()

    run(main())


def test_sendfile_over_tls_falls_back(loop, run, tls, tmp_path):
    data = payload(300_000)
    path = tmp_path / "data.bin"
    path.write_bytes(data)

    async def main():
        server = await loop.create_server(EchoProtocol, "127.0.0.1", 0, ssl=tls.server)
        transport, proto = await loop.create_connection(
            RecordingProtocol, "127.0.0.1", server_port(server), ssl=tls.client, server_hostname="localhost"
        )
        with open(path, "rb") as f:  # no native sendfile through TLS: read and write instead
            assert await loop.sendfile(transport, f) == len(data)
            assert f.tell() == len(data)
        assert await proto.wait_bytes(len(data)) == data
        transport.close()
        assert await asyncio.wait_for(proto.lost, WAIT) is None
        server.close()
        await server.wait_closed()

    run(main())


def test_tls_handshake_failure(loop, run, tls):
    async def main():
        server = await loop.create_server(EchoProtocol, "127.0.0.1", 0, ssl=tls.server)
        untrusting = ssl.create_default_context()
        with pytest.raises(ssl.SSLCertVerificationError):
            await loop.create_connection(
                asyncio.Protocol, "127.0.0.1", server_port(server), ssl=untrusting, server_hostname="localhost"
            )
        server.close()
        await server.wait_closed()

    loop.set_exception_handler(lambda lp, ctx: None)  # the server side logs the failed handshake
    run(main())


def test_tls_streams(loop, run, tls):
    async def handler(reader, writer):
        writer.write((await reader.readline()).upper())
        await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=tls.server)
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", server_port(server), ssl=tls.client, server_hostname="localhost"
        )
        writer.write(b"secret\n")
        assert await reader.readline() == b"SECRET\n"
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    run(main())


class StartTLSServer(asyncio.Protocol):
    """Plain text until b"STARTTLS\\n", then TLS (upgraded with loop.start_tls)."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.loop = asyncio.get_running_loop()
        self.upgraded = self.loop.create_future()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        if data == b"STARTTLS\n":
            self.transport.write(b"GO\n")
            self.loop.create_task(self.upgrade())
        else:
            self.transport.write(b"plain:" + data)

    async def upgrade(self):
        tls_transport = await self.loop.start_tls(self.transport, self, self.context, server_side=True)
        self.transport = tls_transport
        self.upgraded.set_result(tls_transport)


def test_start_tls(loop, run, tls):
    async def main():
        servers = []

        def factory():
            servers.append(StartTLSServer(tls.server))
            return servers[-1]

        server = await loop.create_server(factory, "127.0.0.1", 0)
        transport, proto = await loop.create_connection(RecordingProtocol, "127.0.0.1", server_port(server))
        transport.write(b"hello")
        assert await proto.wait_bytes(11) == b"plain:hello"
        transport.write(b"STARTTLS\n")
        assert await proto.wait_bytes(14) == b"plain:helloGO\n"
        tls_transport = await loop.start_tls(transport, proto, tls.client, server_hostname="localhost")
        assert tls_transport.get_extra_info("ssl_object") is not None
        assert tls_transport.get_protocol() is proto
        server_tls = await asyncio.wait_for(servers[0].upgraded, WAIT)
        assert server_tls.get_extra_info("peercert") is None  # no client certificate
        tls_transport.write(b"over tls")
        assert await proto.wait_bytes(28) == b"plain:helloGO\nplain:over tls"
        tls_transport.close()
        assert await asyncio.wait_for(proto.lost, WAIT) is None
        server.close()
        await server.wait_closed()

    run(main())
