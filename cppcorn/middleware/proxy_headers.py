"""Trust `X-Forwarded-Proto` / `X-Forwarded-For` from known proxies.

`TrustedHosts.apply` is the single place where the headers rewrite the scope:
the standalone `ProxyHeadersMiddleware` calls it, and so does cppcorn's
compiled HTTP protocol, which finds the header values itself.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_FORWARDED_SCHEMES = frozenset({"http", "https", "ws", "wss"})
_WEBSOCKET_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}

# Longest DNS name; longer hosts are never trusted literals worth remembering,
# and caching them would let a client pin large keys in the cache.
_MAX_CACHED_HOST_LENGTH = 253


def _split_hosts(value: str) -> list[str]:
    return [item.strip() for item in value.split(",")]


def _split_host_port(value: str) -> tuple[str, int]:
    """Split one forwarded hop into (host, port); port 0 when there is none.

    Only `ipv4:port` and `[ipv6]:port` carry a port. Anything malformed is
    returned whole, so a garbled hop is never normalised into a trusted host.
    """
    if value.startswith("["):
        end = value.find("]")
        if end == -1:
            return value, 0
        host, rest = value[1:end], value[end + 1 :]
        if not rest:
            return host, 0
        if rest[0] != ":":
            return value, 0
        try:
            return host, int(rest[1:])
        except ValueError:
            return host, 0

    # A bare IPv6 address has several colons and no port.
    if value.count(":") == 1:
        host, _, port = value.partition(":")
        try:
            return host, int(port)
        except ValueError:
            return value, 0

    return value, 0


class TrustedHosts:
    """The set of proxies whose forwarding headers are believed.

    Entries are IP addresses (compared as addresses, since IPv6 has many
    spellings), CIDR networks, or literals such as `unix:` compared as strings.
    `"*"` (alone) trusts every client.
    """

    def __init__(self, trusted_hosts: list[str] | str) -> None:
        self.always_trust: bool = trusted_hosts in ("*", ["*"])
        self.trusted_addresses: set[IPAddress] = set()
        self.trusted_networks: set[IPNetwork] = set()
        self.trusted_literals: set[str] = set()

        if not self.always_trust:
            entries = _split_hosts(trusted_hosts) if isinstance(trusted_hosts, str) else trusted_hosts
            for entry in entries:
                self._add(entry)

        # Trust decisions repeat for every request of every connection.
        self._is_trusted_cached = functools.lru_cache(maxsize=4096)(self._is_trusted)

    def _add(self, entry: str) -> None:
        # Anything that does not parse as an address or network is kept as a
        # literal (e.g. "unix:"), so typos silently become never-matching literals.
        try:
            if "/" in entry:
                self.trusted_networks.add(ipaddress.ip_network(entry))
            else:
                self.trusted_addresses.add(ipaddress.ip_address(entry))
        except ValueError:
            self.trusted_literals.add(entry)

    def _is_trusted(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return host in self.trusted_literals
        return address in self.trusted_addresses or any(address in network for network in self.trusted_networks)

    def __contains__(self, host: str | None) -> bool:
        if self.always_trust:
            return True
        if not host:
            return False
        if len(host) > _MAX_CACHED_HOST_LENGTH:
            return self._is_trusted(host)
        return self._is_trusted_cached(host)

    def get_trusted_client_address(self, x_forwarded_for: str) -> tuple[str, int]:
        """Return the (host, port) of the client named by an X-Forwarded-For value.

        Each proxy appends the address it received from, so the client is the
        first untrusted hop counting from the right. If every hop is trusted the
        client was itself a trusted proxy, and the leftmost hop is used.
        """
        hops = _split_hosts(x_forwarded_for)
        if not self.always_trust:
            for hop in reversed(hops):
                host, port = _split_host_port(hop)
                if host not in self:
                    return host, port
        return _split_host_port(hops[0])

    def get_trusted_client_host(self, x_forwarded_for: str) -> str:
        """Return only the host part of `get_trusted_client_address`."""
        return self.get_trusted_client_address(x_forwarded_for)[0]

    def apply(self, scope: Scope, x_forwarded_proto: bytes | None, x_forwarded_for: bytes | None) -> None:
        """Rewrite `scheme` and `client` of a scope from a trusted proxy's headers.

        `x_forwarded_proto` is the last X-Forwarded-Proto value; `x_forwarded_for`
        is every X-Forwarded-For value joined with `b", "`. `None` means absent.
        """
        if x_forwarded_proto is not None:
            scheme = x_forwarded_proto.decode("latin-1").strip()
            if scheme in _FORWARDED_SCHEMES:
                scope["scheme"] = _WEBSOCKET_SCHEMES[scheme] if scope["type"] == "websocket" else scheme

        if x_forwarded_for is not None:
            host, port = self.get_trusted_client_address(x_forwarded_for.decode("latin-1"))
            # An empty header (or an empty untrusted hop) names nobody: keep the peer.
            if host:
                scope["client"] = (host, port)


class ProxyHeadersMiddleware:
    """Report the real client and scheme when running behind a trusted proxy.

    Headers are read only from clients in `trusted_hosts`, and are never
    stripped or rewritten. `X-Forwarded-Host`/`-Port` and RFC 7239 `Forwarded`
    are not supported (nor are they by Uvicorn).
    """

    def __init__(self, app: ASGIApp, trusted_hosts: list[str] | str = "127.0.0.1") -> None:
        self.app = app
        self.trusted_hosts = TrustedHosts(trusted_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            if (client[0] if client else None) in self.trusted_hosts:
                x_forwarded_proto: bytes | None = None
                x_forwarded_for: list[bytes] = []
                for name, value in scope["headers"]:
                    if name == b"x-forwarded-proto":
                        x_forwarded_proto = value
                    elif name == b"x-forwarded-for":
                        x_forwarded_for.append(value)
                self.trusted_hosts.apply(
                    scope, x_forwarded_proto, b", ".join(x_forwarded_for) if x_forwarded_for else None
                )
        await self.app(scope, receive, send)
