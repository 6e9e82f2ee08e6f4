"""Who is on the other end of a connection: the peer's address, or — behind a reverse proxy the operator named
(`serve --trusted-proxy`) — the client it forwarded for, from `X-Forwarded-For`.

The address counts new accounts per client (world.toml `[citizenship] new_accounts_per_hour`) and decides the
admin requests' loopback rule, so a proxy must not make every player one address, nor make a player on the
internet look local. Only hops the operator trusts are skipped: a client can put anything at the front of the
header, so the first address from the right that is not a trusted proxy is the client. Pure code, no socket.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(specs: Iterable[str]) -> tuple[Network, ...]:
    """`--trusted-proxy` values (an address, or a network like 10.0.0.0/8) as networks; ValueError names a bad one."""
    found = []
    for spec in specs:
        try:
            found.append(ipaddress.ip_network(spec.strip(), strict=False))
        except ValueError:
            raise ValueError(f"--trusted-proxy {spec!r} is not an IP address or network") from None
    return tuple(found)


def _trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def client_address(peer: str, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy that says whom it forwarded for."""
    if not forwarded_for or not _trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer  # every hop a trusted proxy: the first is as near the client as we know
