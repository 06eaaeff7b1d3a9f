"""cppcorn.loop.Loop: asyncio's event loop API over the compiled core.

The loop is asyncio's own Unix event loop class with its hot paths handed to
compiled code (cppcorn/loop/core.pyx, stream.pyx):

- the ready queue, timers, call_soon/call_later/call_at, time() and each
  loop iteration (_run_once) are the core's;
- readiness comes from epoll (or poll) in C and goes straight to compiled
  transports, or queues add_reader()/add_writer() callbacks;
- TCP and Unix connections use the compiled StreamTransport, for plain and
  TLS (asyncio's sslproto on top) connections, accepted without a task each
  (plain ones by accept4() in C, without a socket object);
- sock_recv(), sock_recv_into() and sock_sendall() call the socket in C.

Everything else (DNS in the executor, happy eyeballs, servers, datagrams,
pipes, subprocesses, signals, sendfile's fallback, start_tls, async
generator and executor shutdown) is asyncio's code, running on these
primitives: same semantics, same error messages, no second copy to keep in
step with CPython.
"""

from __future__ import annotations

import errno
import selectors
from asyncio import constants, sslproto, trsock, unix_events

from cppcorn.loop import sockets
from cppcorn.loop.core import LoopCore
from cppcorn.loop.stream import StreamTransport, accept_connections

__all__ = ["Loop"]

# accept() failures that mean "out of resources, try again later".
_ACCEPT_RESOURCE_ERRORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class _SelectorView(selectors.BaseSelector):
    """What asyncio's code reads from `loop._selector` (transport reprs look
    up whether a descriptor is polled), answered from the core. Registration
    goes through the loop, never through this object."""

    def __init__(self, core: LoopCore) -> None:
        self._core = core

    def get_key(self, fileobj):
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        registration = self._core._io_registration(fd)
        if registration is None:
            raise KeyError(f"{fileobj!r} is not registered")
        events, reader, writer = registration
        return selectors.SelectorKey(fileobj, fd, events, (reader, writer))

    def get_map(self):
        return {fd: self.get_key(fd) for fd in self._core._io_descriptors()}

    def register(self, fileobj, events, data=None):
        raise NotImplementedError("cppcorn.loop registers descriptors itself")

    def unregister(self, fileobj):
        raise NotImplementedError("cppcorn.loop registers descriptors itself")

    def select(self, timeout=None):
        raise NotImplementedError("cppcorn.loop polls in its core")

    def close(self) -> None:
        """The core's poller is released by Loop.close()."""


class Loop(LoopCore, unix_events.SelectorEventLoop):
    """An asyncio event loop with a compiled core (epoll, or poll with
    CPPCORN_LOOP_BACKEND=poll)."""

    def __init__(self) -> None:
        super().__init__(_SelectorView(self))

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} backend={self.backend} running={self.is_running()} "
            f"closed={self.is_closed()} debug={self.get_debug()}>"
        )

    sock_recv = sockets.sock_recv
    sock_recv_into = sockets.sock_recv_into
    sock_sendall = sockets.sock_sendall

    def close(self) -> None:
        super().close()
        if self.is_closed():
            self._close_core()

    # ------------------------------------------------------ transports

    def _make_socket_transport(self, sock, protocol, waiter=None, *, extra=None, server=None):
        return StreamTransport(self, sock, protocol, waiter, extra, server)

    def _make_ssl_transport(
        self,
        rawsock,
        protocol,
        sslcontext,
        waiter=None,
        *,
        server_side=False,
        server_hostname=None,
        extra=None,
        server=None,
        **options,
    ):
        # options: the handshake/shutdown timeouts and call_connection_made,
        # whichever this Python's SSLProtocol takes.
        ssl_protocol = sslproto.SSLProtocol(
            self, protocol, sslcontext, waiter, server_side, server_hostname, **options
        )
        StreamTransport(self, rawsock, ssl_protocol, None, extra, server)
        return ssl_protocol._app_transport

    async def _sendfile_native(self, transp, file, offset, count):
        if not isinstance(transp, StreamTransport):
            return await super()._sendfile_native(transp, file, offset, count)
        resume_reading = transp.is_reading()
        transp.pause_reading()
        await transp._make_empty_waiter()
        # sock_sendfile() watches the socket itself meanwhile.
        transp._lend_descriptor()
        try:
            return await self.sock_sendfile(transp._sock, file, offset, count, fallback=False)
        finally:
            transp._reclaim_descriptor()
            transp._reset_empty_waiter()
            if resume_reading:
                transp.resume_reading()

    async def _sendfile_fallback(self, transp, file, offset, count):
        if not isinstance(transp, StreamTransport):
            return await super()._sendfile_fallback(transp, file, offset, count)
        # asyncio's fallback, with the transport's own flow-control wait in
        # place of the protocol asyncio slips in to see write pauses.
        if offset:
            file.seek(offset)
        blocksize = min(count, 16384) if count else 16384
        buffer = bytearray(blocksize)
        total_sent = 0
        resume_reading = transp.is_reading()
        transp.pause_reading()
        try:
            while True:
                if count:
                    blocksize = min(count - total_sent, blocksize)
                    if blocksize <= 0:
                        return total_sent
                view = memoryview(buffer)[:blocksize]
                read = await self.run_in_executor(None, file.readinto, view)
                if not read:
                    return total_sent
                await transp._wait_flow()
                transp.write(view[:read])
                total_sent += read
        finally:
            if total_sent > 0 and hasattr(file, "seek"):
                file.seek(offset + total_sent)
            if resume_reading:
                transp.resume_reading()

    # --------------------------------------------------------- servers

    def _accept_connection(self, protocol_factory, sock, sslcontext=None, server=None, backlog=100, *timeouts):
        if sslcontext is not None:
            # TLS needs its handshake awaited: asyncio's task per connection.
            return super()._accept_connection(protocol_factory, sock, sslcontext, server, backlog, *timeouts)
        # Plain connections are accepted in C, each with its transport made
        # right there from the descriptor (no socket object, no task).
        try:
            accept_connections(self, sock, protocol_factory, server, backlog)
        except OSError as exc:
            if exc.errno not in _ACCEPT_RESOURCE_ERRORS:
                raise
            # Out of descriptors or memory: stop accepting for a while
            # instead of spinning, and say so (as asyncio does).
            self.call_exception_handler(
                {
                    "message": "socket.accept() out of system resource",
                    "exception": exc,
                    "socket": trsock.TransportSocket(sock),
                }
            )
            self._remove_reader(sock.fileno())
            self.call_later(
                constants.ACCEPT_RETRY_DELAY,
                self._start_serving,
                protocol_factory,
                sock,
                sslcontext,
                server,
                backlog,
                *timeouts,
            )
