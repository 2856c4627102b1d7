"""Where Custos may send requests of its own: the one outgoing-request policy.

Notices to providers use it today; witnesses and enforcing authorities' notices will. A URL is
acceptable when:

1. it is an absolute ``https`` URL with a host, and carries no credentials (``user:secret@``
   would be stored, and shown back, with the URL);
2. every address its host resolves to is public (``ipaddress``'s ``is_global``: not loopback,
   private, link-local such as 169.254.169.254, shared, reserved or multicast), so that no
   request reaches the host's own services or its neighbours;
3. unless the operator allows the host by name, or the addresses by network, in
   ``outbound_allow`` (``CUSTOS_OUTBOUND_ALLOW``): an allowed destination may also be plain
   ``http`` (how tests and local setups use http://127.0.0.1).

The URL is checked when it is registered, and again when each request connects: the
connection goes to an address that was just checked, never to a second resolution of the
name, so a name that answers a public address to the check and a private one to the
connection (DNS rebinding) reaches nothing. A name that does not resolve at registration is
accepted then and checked at each connection.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from custody.errors import BadRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]

MAX_URL = 2000
_DEFAULT_PORTS = {"https": 443, "http": 80}
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}\Z){_LABEL}(?:\.{_LABEL})*\.?")


class DestinationRefused(BadRequest):
    """The outgoing-request policy refuses this URL; the message says why."""


def outbound_allowance(entries: Iterable[str]) -> tuple[frozenset[str], tuple[IPNetwork, ...]]:
    """Split the operator's allowance into host names and networks (``127.0.0.1``,
    ``10.0.0.0/8``, ``::1``); ValueError names an entry that is neither."""
    hosts: set[str] = set()
    networks: list[IPNetwork] = []
    for entry in entries:
        text = entry.strip().lower()
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
            continue
        except ValueError:
            pass
        if not _HOST_NAME.fullmatch(text):
            raise ValueError(f"{entry!r} is neither a host name nor an IP address or network")
        hosts.add(text.rstrip("."))
    return frozenset(hosts), tuple(networks)


def system_resolver(host: str, port: int) -> Sequence[str]:
    """The addresses the system resolves ``host`` to (IPv4 and IPv6, TCP)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_public(address: IPAddress) -> bool:
    """Whether an address belongs to the public internet (an IPv4-mapped IPv6 address is
    judged as the IPv4 address it carries)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class Destination:
    """A URL the policy accepted, and the addresses it checked for it."""

    scheme: str
    host: str
    port: int
    target: str
    """The path and query, as the request line sends them."""
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class OutboundPolicy:
    """The policy, over the operator's allowance and a resolver (injectable for tests)."""

    allowed_hosts: frozenset[str] = frozenset()
    allowed_networks: tuple[IPNetwork, ...] = ()
    resolve: Resolver = field(default=system_resolver, compare=False)

    @classmethod
    def from_allowance(
        cls, entries: Iterable[str], resolve: Resolver = system_resolver
    ) -> OutboundPolicy:
        hosts, networks = outbound_allowance(entries)
        return cls(hosts, networks, resolve)

    def check_registration(self, url: object, what: str) -> str:
        """``url`` if the policy accepts it now; a name that does not resolve yet passes,
        since each connection checks it again. DestinationRefused otherwise."""
        self._check(url, what, resolve_required=False)
        assert isinstance(url, str)
        return url

    def destination(self, url: str, what: str = "the URL") -> Destination:
        """Resolve and check ``url`` for a request about to be made."""
        destination = self._check(url, what, resolve_required=True)
        assert destination is not None
        return destination

    def connection(
        self, url: str, timeout: float, tls: ssl.SSLContext, what: str = "the URL"
    ) -> tuple[http.client.HTTPConnection, Destination]:
        """An HTTP(S) connection that connects only to the addresses just checked (the TLS
        certificate is still verified against the URL's host name), and the destination."""
        destination = self.destination(url, what)
        connection: http.client.HTTPConnection
        if destination.scheme == "https":
            connection = http.client.HTTPSConnection(
                destination.host, destination.port, timeout=timeout, context=tls
            )
        else:
            connection = http.client.HTTPConnection(
                destination.host, destination.port, timeout=timeout
            )
        connection._create_connection = _pinned(destination)  # type: ignore[attr-defined]
        return connection, destination

    def _allowed_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.allowed_networks)

    def _check(self, url: object, what: str, *, resolve_required: bool) -> Destination | None:
        if not isinstance(url, str) or not url or len(url) > MAX_URL:
            raise DestinationRefused(f"{what} must be an https URL of at most {MAX_URL} characters")
        if any(c.isspace() or not c.isprintable() for c in url):
            raise DestinationRefused(f"{what} holds spaces or control characters")
        parts = urlsplit(url)
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise DestinationRefused(f"{what} must be an https URL with a host")
        if "@" in parts.netloc:
            raise DestinationRefused(f"{what} must not carry credentials (user:password@)")
        try:
            port = parts.port or _DEFAULT_PORTS[parts.scheme]
        except ValueError:
            raise DestinationRefused(f"{what} has an invalid port") from None
        host = parts.hostname.rstrip(".")
        host_allowed = host in self.allowed_hosts
        try:
            addresses: Sequence[str] = [str(ipaddress.ip_address(host))]
        except ValueError:
            try:
                addresses = self.resolve(host, port)
            except (OSError, UnicodeError):
                if resolve_required:
                    raise DestinationRefused(f"{what}: the host {host} does not resolve") from None
                addresses = []
        checked = [ipaddress.ip_address(a.split("%", 1)[0]) for a in addresses]
        if host_allowed:
            pass
        elif any(not (self._allowed_address(a) or is_public(a)) for a in checked):
            raise DestinationRefused(
                f"{what} leads to an address that is not public; the operator may allow it "
                "in outbound_allow"
            )
        elif parts.scheme != "https" and not (
            checked and all(self._allowed_address(a) for a in checked)
        ):
            raise DestinationRefused(f"{what} must be https")
        if resolve_required and not addresses:
            raise DestinationRefused(f"{what}: the host {host} does not resolve")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return Destination(parts.scheme, host, port, target, tuple(addresses))


def _pinned(destination: Destination) -> Callable[..., socket.socket]:
    """``socket.create_connection`` to the checked addresses, whatever host it is given."""

    def create_connection(
        _address: tuple[str, int], timeout: float | None = None, source: object = None
    ) -> socket.socket:
        failure: OSError | None = None
        for address in destination.addresses:
            try:
                return socket.create_connection((address, destination.port), timeout)
            except OSError as exc:
                failure = exc
        assert failure is not None
        raise failure

    return create_connection


__all__ = [
    "Destination",
    "DestinationRefused",
    "OutboundPolicy",
    "is_public",
    "outbound_allowance",
    "system_resolver",
]
