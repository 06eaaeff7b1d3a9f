"""Listening sockets handed over by a process manager: `--fd`, and systemd
socket activation (sd_listen_fds(3)). One that cannot be served on is refused
with the reason, before the application starts."""

from __future__ import annotations

import os
import socket
import stat


class NotServable(ValueError):
    """A handed-over descriptor is no listening socket; the message says why."""


SD_LISTEN_FDS_START = 3


def systemd_listen_fds() -> list[int]:
    """The sockets systemd passed to this process (sd_listen_fds(3)), if any."""
    try:
        if int(os.environ.get("LISTEN_PID", "")) != os.getpid():
            return []
        count = int(os.environ.get("LISTEN_FDS", ""))
    except ValueError:
        return []
    return list(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count))


# What a descriptor that is not a socket is, for the error that says so.
_FILE_KINDS = (
    (stat.S_ISREG, "a regular file"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a pipe"),
    (stat.S_ISCHR, "a character device"),
)


def inherited_socket(fd: int) -> socket.socket:
    """A socket object on a duplicate of `fd`, a listening socket handed over
    by a process manager. Raises NotServable saying why it cannot be served on:
    not open, not a socket, not a stream socket, connected to a peer, or bound
    to no address. A bound socket that does not listen yet is served, as in
    Uvicorn (`create_server` makes it listen)."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError as exc:
        raise NotServable(f"it is not an open file descriptor ({exc.strerror})") from None
    if not stat.S_ISSOCK(mode):
        kind = next((kind for is_kind, kind in _FILE_KINDS if is_kind(mode)), "a file")
        raise NotServable(f"it is {kind}, not a socket")
    sock = socket.socket(fileno=os.dup(fd))
    try:
        if sock.type != socket.SOCK_STREAM:
            raise NotServable("it is not a stream socket (TCP or Unix stream)")
        if not _is_listening(sock):
            if _is_connected(sock):
                raise NotServable("it is a connected socket, not a listening one")
            address = sock.getsockname()
            if not address or (isinstance(address, tuple) and address[1] == 0):
                raise NotServable("it is a socket bound to no address")
    except BaseException:
        sock.close()
        raise
    return sock


def _is_listening(sock: socket.socket) -> bool:
    accepting = getattr(socket, "SO_ACCEPTCONN", None)
    return accepting is not None and bool(sock.getsockopt(socket.SOL_SOCKET, accepting))


def _is_connected(sock: socket.socket) -> bool:
    try:
        sock.getpeername()
    except OSError:
        return False
    return True
