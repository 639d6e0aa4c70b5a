"""The client's address behind reverse proxies, trusting `X-Forwarded-For` only from the proxies.

`IVR_TRUSTED_PROXIES` lists the proxies' addresses or networks. A request that comes from one of them
has its client taken from `X-Forwarded-For`: the right-most address there that is not itself a
trusted proxy (each proxy appends the address it was reached from, so everything left of the last
untrusted hop may be made up by the client). A request from anywhere else is its own client, whatever
headers it sends: a client that reaches an instance directly cannot pose as another address, escape
the PIN throttle or pass for loopback at `/metrics`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """Comma-separated addresses or networks (`127.0.0.1, 10.0.0.0/8, ::1`); ValueError naming the
    entry that is neither."""
    networks = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network") from None
    return tuple(networks)


def is_loopback(address: str | None) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    text = (address or "").strip()
    if text.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(text.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def is_trusted(address: str | None, networks: Iterable[Network]) -> bool:
    """True when `address` is in one of the networks."""
    try:
        ip = ipaddress.ip_address((address or "").strip().strip("[]"))
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(
    remote: str | None, forwarded_for: str | None, networks: tuple[Network, ...]
) -> str | None:
    """The client's address: `remote` unless it is a trusted proxy, else the right-most address of
    `X-Forwarded-For` that is not a trusted proxy (the left-most one if all are)."""
    if not networks or not is_trusted(remote, networks) or not forwarded_for:
        return remote
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop, networks):
            return hop
    return hops[0] if hops else remote


class TrustedProxies:
    """WSGI middleware: `REMOTE_ADDR` becomes the client's address (see the module docstring); the
    proxy's own address stays in `ivr.proxy_addr`."""

    def __init__(self, app: WSGIApplication, networks: tuple[Network, ...]) -> None:
        self.app = app
        self.networks = networks

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        remote = environ.get("REMOTE_ADDR")
        environ["ivr.proxy_addr"] = remote
        environ["REMOTE_ADDR"] = client_address(
            remote, environ.get("HTTP_X_FORWARDED_FOR"), self.networks
        )
        return self.app(environ, start_response)
