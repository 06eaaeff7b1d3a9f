"""Connections accepted by a server (cppcorn.loop accepts plain ones in C,
making the transport from the descriptor, its socket object only on demand):
addresses, the socket object, the descriptor's flags, half-close, closing,
accepting in batches, and accept() or transport creation failing."""

from __future__ import annotations

import asyncio
import errno
import os
import resource
import socket
import sys
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.loop.conftest import (
    WAIT,
    EchoProtocol,
    ErrorRecorder,
    RecordingProtocol,
    close_loop_expecting_unclosed_transport,
    collect,
    open_fds,
    payload,
    wait_until,
)

pytestmark = pytest.mark.timeout(30)


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback")


# ---------------------------------------------------------------- listeners and clients


@dataclass(frozen=True)
class Kind:
    """A kind of listener, and of client connecting to it."""

    id: str
    # start(loop, protocol_factory, directory) -> the server
    start: Callable[[asyncio.AbstractEventLoop, Callable[[], Any], Path], Awaitable[asyncio.AbstractServer]]
    client_family: int
    # Where a client binds (None: it does not), given a directory.
    client_bind: Callable[[Path], Any] = lambda directory: None
    # The server address as a client of client_family connects to it.
    client_address: Callable[[Any], Any] = lambda sockname: sockname
    # An address as the client sees it -> as the server sees it.
    server_view: Callable[[Any], Any] = lambda address: address


def _tcp(host: str):
    async def start(loop, factory, directory):
        return await loop.create_server(factory, host, 0)

    return start


async def _unix(loop, factory, directory):
    return await loop.create_unix_server(factory, str(directory / "server.sock"))


async def _v4_mapped(loop, factory, directory):
    # Dual-stack: an IPv4 client reaches it, and is seen as ::ffff:a.b.c.d.
    sock = socket.socket(socket.AF_INET6)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::ffff:127.0.0.1", 0))
    return await loop.create_server(factory, sock=sock)


KINDS = {
    "tcp4": Kind("tcp4", _tcp("127.0.0.1"), socket.AF_INET),
    "tcp6": Kind("tcp6", _tcp("::1"), socket.AF_INET6),
    # Octets of one, two and three digits on both ends (all of 127/8 is
    # loopback on Linux).
    "tcp4-digits": Kind(
        "tcp4-digits", _tcp("127.45.6.78"), socket.AF_INET, client_bind=lambda directory: ("127.12.200.5", 0)
    ),
    "v4-mapped": Kind(
        "v4-mapped",
        _v4_mapped,
        socket.AF_INET,
        client_address=lambda sockname: ("127.0.0.1", sockname[1]),
        server_view=lambda address: ("::ffff:" + address[0], address[1], 0, 0),
    ),
    "unix": Kind("unix", _unix, socket.AF_UNIX),
    # A path to decode with the filesystem encoding.
    "unix-named-client": Kind(
        "unix-named-client", _unix, socket.AF_UNIX, client_bind=lambda directory: str(directory / "cli\u00e9nt")
    ),
    "unix-abstract-client": Kind(
        "unix-abstract-client",
        _unix,
        socket.AF_UNIX,
        client_bind=lambda directory: f"\0cppcorn-test-{os.getpid()}-{directory.name}",
    ),
}


KIND_MARKS = {
    "tcp6": needs_ipv6,
    "v4-mapped": needs_ipv6,
    "tcp4-digits": pytest.mark.skipif(sys.platform != "linux", reason="127.0.0.1 is the only loopback address"),
}


def kinds(*ids: str) -> pytest.MarkDecorator:
    return pytest.mark.parametrize(
        "kind",
        [
            pytest.param(KINDS[kind_id], id=kind_id, marks=KIND_MARKS.get(kind_id, ()))
            for kind_id in ids
        ],
    )


class Accepting:
    """A server of `kind` whose accepted connections' protocols (made by
    `protocol_factory`) queue up in `accepted`."""

    def __init__(self, kind: Kind, directory: Path, protocol_factory: Callable[[], Any] = RecordingProtocol) -> None:
        self.kind = kind
        self.directory = directory
        self.protocol_factory = protocol_factory
        self.accepted: asyncio.Queue[Any] = asyncio.Queue()
        self.server: asyncio.AbstractServer | None = None

    def factory(self) -> Any:
        proto = self.protocol_factory()
        self.accepted.put_nowait(proto)
        return proto

    async def __aenter__(self) -> Accepting:
        self.server = await self.kind.start(asyncio.get_running_loop(), self.factory, self.directory)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def listener(self) -> socket.socket:
        assert self.server is not None
        return self.server.sockets[0]

    def client(self) -> socket.socket:
        """A non-blocking client socket, bound as the kind says."""
        client = socket.socket(self.kind.client_family)
        client.setblocking(False)
        address = self.kind.client_bind(self.directory)
        if address is not None:
            client.bind(address)
        return client

    @property
    def address(self) -> Any:
        return self.kind.client_address(self.listener.getsockname())

    async def connect_noting_fd(self) -> tuple[socket.socket, asyncio.Transport, Any, int]:
        """connect(), and the accepted descriptor, found without asking the
        transport for anything (a socket object would change what is tested)."""
        collect()
        before = open_fds()
        client, transport, proto = await self.connect()
        (fd,) = opened_since(before) - {client.fileno()}
        return client, transport, proto, fd

    async def connect(self) -> tuple[socket.socket, asyncio.Transport, Any]:
        """A client connected to the server, and the server side's transport and protocol."""
        client = self.client()
        await asyncio.get_running_loop().sock_connect(client, self.address)
        proto = await asyncio.wait_for(self.accepted.get(), WAIT)
        transport = await asyncio.wait_for(proto.made, WAIT)
        return client, transport, proto


async def recv_until_eof(client: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    data = bytearray()
    while True:
        chunk = await asyncio.wait_for(loop.sock_recv(client, 65536), WAIT)
        if not chunk:
            return bytes(data)
        data += chunk


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError as exc:
        assert exc.errno == errno.EBADF
        return False
    return True


def opened_since(before: set[int]) -> set[int]:
    # Without the descriptor open_fds() lists /proc/self/fd with (closed by now).
    return {fd for fd in open_fds() - before if is_open(fd)}


# ---------------------------------------------------------------- addresses


@kinds("tcp4", "tcp4-digits", "tcp6", "v4-mapped", "unix", "unix-named-client", "unix-abstract-client")
def test_accepted_transport_addresses(loop, run, short_tmp, kind):
    async def main():
        async with Accepting(kind, short_tmp) as server:
            client, transport, proto = await server.connect()
            peername = transport.get_extra_info("peername")
            sockname = transport.get_extra_info("sockname")
            assert peername == kind.server_view(client.getsockname())
            # The socket module's types: bytes for an abstract name, str for a path.
            assert type(peername) is type(kind.server_view(client.getsockname()))
            assert sockname == kind.server_view(client.getpeername()) == server.listener.getsockname()
            sock = transport.get_extra_info("socket")
            assert sock is not None
            assert sock.getpeername() == peername
            assert sock.getsockname() == sockname
            assert sock.family == server.listener.family
            assert sock.type == socket.SOCK_STREAM
            # Asked again: the same answers.
            assert transport.get_extra_info("peername") == peername
            assert transport.get_extra_info("sockname") == sockname
            transport.close()
            await asyncio.wait_for(proto.lost, WAIT)
            client.close()

    run(main())


@kinds("tcp4", "tcp6", "unix")
def test_connected_transport_addresses(loop, run, short_tmp, kind):
    # A transport made with a socket object asks its descriptor too.
    async def main():
        async with Accepting(kind, short_tmp) as server:
            if kind.client_family == socket.AF_UNIX:
                transport, proto = await loop.create_unix_connection(RecordingProtocol, server.address)
            else:
                transport, proto = await loop.create_connection(RecordingProtocol, *server.address[:2])
            peer = await asyncio.wait_for(server.accepted.get(), WAIT)
            accepted = await asyncio.wait_for(peer.made, WAIT)
            sock = transport.get_extra_info("socket")
            assert transport.get_extra_info("peername") == sock.getpeername() == server.listener.getsockname()
            assert transport.get_extra_info("sockname") == sock.getsockname()
            assert transport.get_extra_info("sockname") == accepted.get_extra_info("peername")
            transport.close()
            await asyncio.wait_for(proto.lost, WAIT)
            await asyncio.wait_for(peer.lost, WAIT)

    run(main())


# ---------------------------------------------------------------- the descriptor and its socket object


async def _given_listener(loop, factory, directory):
    # socket.socket() has protocol number 0, where getaddrinfo() gives 6.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return await loop.create_server(factory, sock=sock)


@pytest.mark.parametrize(
    "kind",
    [KINDS["tcp4"], Kind("tcp4-given-socket", _given_listener, socket.AF_INET), KINDS["unix"]],
    ids=["tcp4", "tcp4-given-socket", "unix"],
)
def test_accepted_socket_is_like_socket_accept(loop, run, short_tmp, kind):
    async def main():
        async with Accepting(kind, short_tmp) as server:
            client, transport, proto = await server.connect()
            sock = transport.get_extra_info("socket")
            fd = sock.fileno()
            assert fd >= 0
            assert not os.get_blocking(fd)
            assert not os.get_inheritable(fd)
            # What socket.accept() gives: the listener's family, type and protocol number.
            assert (sock.family, sock.type, sock.proto) == (
                server.listener.family,
                socket.SOCK_STREAM,
                server.listener.proto,
            )
            transport.close()
            await asyncio.wait_for(proto.lost, WAIT)
            client.close()

    run(main())


@kinds("tcp4", "unix")
def test_write_eof_reaches_the_client(loop, run, short_tmp, kind):
    async def main():
        async with Accepting(kind, short_tmp, lambda: RecordingProtocol(eof_result=True)) as server:
            client, transport, proto = await server.connect()
            assert transport.can_write_eof()
            transport.write(b"last words")
            transport.write_eof()
            assert await recv_until_eof(client) == b"last words"
            # Half-closed: the client's bytes still arrive.
            await loop.sock_sendall(client, b"reply")
            assert await proto.wait_bytes(5) == b"reply"
            client.close()
            await asyncio.wait_for(proto.eof, WAIT)
            transport.close()
            await asyncio.wait_for(proto.lost, WAIT)

    run(main())


@kinds("tcp4", "unix")
@pytest.mark.parametrize("socket_object", [False, True], ids=["fd-only", "socket-object"])
def test_close_closes_the_descriptor(loop, run, short_tmp, kind, socket_object):
    async def main():
        async with Accepting(kind, short_tmp) as server:
            client, transport, proto, fd = await server.connect_noting_fd()
            sock = transport.get_extra_info("socket") if socket_object else None
            transport.close()
            assert await asyncio.wait_for(proto.lost, WAIT) is None
            assert await recv_until_eof(client) == b""
            assert not is_open(fd)
            if sock is not None:
                assert sock.fileno() == -1
            client.close()

    run(main())


class EchoRecorder(RecordingProtocol):
    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self.transport.write(data)


@kinds("tcp4", "unix")
def test_many_connections_leave_no_descriptor(loop, run, short_tmp, kind):
    async def roundtrip(server: Accepting, i: int) -> bytes:
        client, _transport, proto = await server.connect()
        try:
            await loop.sock_sendall(client, b"n%d" % i)
            client.shutdown(socket.SHUT_WR)
            # The server side closes on EOF, after echoing.
            echoed = await recv_until_eof(client)
            await asyncio.wait_for(proto.lost, WAIT)
            return echoed
        finally:
            client.close()

    async def main():
        async with Accepting(kind, short_tmp, EchoRecorder) as server:
            collect()
            before = open_fds()
            # One after the other: connect() pairs each client with the next accepted protocol.
            results = [await roundtrip(server, i) for i in range(60)]
            assert results == [b"n%d" % i for i in range(60)]
            collect()
            assert open_fds() - before == set()

    run(main())


def test_more_connections_than_one_accept_batch(loop, run):
    # A server accepts up to `backlog` connections per readiness event; the
    # kernel queues one more than the backlog, all of them before the loop
    # looks at the listener again.
    backlog = 4

    async def main():
        server = await loop.create_server(EchoProtocol, "127.0.0.1", 0, backlog=backlog)
        address = server.sockets[0].getsockname()
        clients = []
        try:
            for _ in range(backlog + 1):
                client = socket.socket()
                client.setblocking(False)
                clients.append(client)
                assert client.connect_ex(address) in (0, errno.EINPROGRESS)
            for i, client in enumerate(clients):
                await asyncio.wait_for(loop.sock_sendall(client, b"c%d" % i), WAIT)
            for i, client in enumerate(clients):
                assert await asyncio.wait_for(loop.sock_recv(client, 100), WAIT) == b"c%d" % i
        finally:
            for client in clients:
                client.close()
        server.close()
        await server.wait_closed()

    run(main())


@kinds("tcp4", "unix")
def test_sendfile_over_accepted_transport(loop, run, short_tmp, tmp_path, kind):
    # Native sendfile takes the transport's socket object (made on demand),
    # which must know it is non-blocking (checked in debug mode).
    data = payload(1024 * 1024 + 7)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    loop.set_debug(True)
    loop.slow_callback_duration = 10.0

    async def main():
        async with Accepting(kind, short_tmp) as server:
            client, transport, proto, fd = await server.connect_noting_fd()
            with open(path, "rb") as f:
                sending = asyncio.ensure_future(loop.sendfile(transport, f))
                received = bytearray()
                while len(received) < len(data):
                    chunk = await asyncio.wait_for(loop.sock_recv(client, 1 << 20), WAIT)
                    assert chunk, "EOF before the whole file"
                    received += chunk
                assert await asyncio.wait_for(sending, WAIT) == len(data)
            assert bytes(received) == data
            transport.write(b"after")
            transport.close()
            assert await recv_until_eof(client) == b"after"
            await asyncio.wait_for(proto.lost, WAIT)
            assert not is_open(fd)
            client.close()

    run(main())


# ---------------------------------------------------------------- failures


def test_transport_creation_failure_closes_the_connection(loop_impl, loop, run, errors: ErrorRecorder):
    if loop_impl.is_reference:
        pytest.skip("asyncio reports it in debug mode only, and leaves the socket to the garbage collector")
    calls = []

    def factory():
        calls.append(None)
        if len(calls) == 1:
            raise RuntimeError("no protocol today")
        return EchoProtocol()

    async def main():
        server = await loop.create_server(factory, "127.0.0.1", 0)
        address = server.sockets[0].getsockname()
        collect()
        before = open_fds()
        client = socket.socket()
        client.setblocking(False)
        await loop.sock_connect(client, address)
        (context,) = await errors.wait(1)
        assert context["message"] == "Error on transport creation for incoming connection"
        assert isinstance(context["exception"], RuntimeError)
        assert await recv_until_eof(client) == b""
        client.close()
        assert open_fds() - before == set()
        # The next connection is served.
        client = socket.socket()
        client.setblocking(False)
        await loop.sock_connect(client, address)
        await loop.sock_sendall(client, b"still here")
        assert await asyncio.wait_for(loop.sock_recv(client, 100), WAIT) == b"still here"
        client.close()
        server.close()
        await server.wait_closed()

    run(main())


@pytest.mark.skipif(sys.platform != "linux", reason="fills the descriptor table, counted in /proc")
def test_out_of_descriptors_pauses_accepting(loop_impl, loop, run, errors: ErrorRecorder):
    accepted: list[RecordingProtocol] = []

    def factory():
        accepted.append(RecordingProtocol())
        return accepted[-1]

    async def main():
        server = await loop.create_server(factory, "127.0.0.1", 0)
        client = socket.socket()
        client.setblocking(False)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        fillers: list[int] = []
        try:
            assert client.connect_ex(server.sockets[0].getsockname()) in (0, errno.EINPROGRESS)
            # No descriptor number left for accept() to take.
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(open_fds()) + 1, hard))
            while True:
                try:
                    fillers.append(os.open(os.devnull, os.O_RDONLY))
                except OSError:
                    break
            contexts = await errors.wait(1)
        finally:
            for fd in fillers:
                os.close(fd)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        assert {context["message"] for context in contexts} == {"socket.accept() out of system resource"}
        if not loop_impl.is_reference:
            # asyncio goes on calling accept() for the rest of the batch.
            assert len(contexts) == 1
        assert contexts[0]["exception"].errno == errno.EMFILE
        assert contexts[0]["socket"].fileno() == server.sockets[0].fileno()
        assert not accepted
        # Accepting resumes a while later (asyncio's ACCEPT_RETRY_DELAY, 1 s).
        await wait_until(lambda: accepted)
        transport = await asyncio.wait_for(accepted[0].made, WAIT)
        assert transport.get_extra_info("peername") == client.getsockname()
        transport.close()
        await asyncio.wait_for(accepted[0].lost, WAIT)
        client.close()
        server.close()
        await server.wait_closed()

    run(main())


def test_unclosed_accepted_transport_warns_and_closes_its_descriptor(loop, short_tmp):
    async def main():
        async with Accepting(KINDS["tcp4"], short_tmp) as server:
            client, transport, _, fd = await server.connect_noting_fd()
        return client, fd, weakref.ref(transport)

    client, fd, ref = loop.run_until_complete(asyncio.wait_for(main(), WAIT))
    close_loop_expecting_unclosed_transport(loop, ref)
    assert not is_open(fd)
    client.close()
