"""RequestContext: what a request handler outside the actors (wallet, admin) knows about the request.

The session builds one per request from the connection — who is asking (the logged-in name, never a name the
client sent), when (the receive time), from where — and the handler returns its answer as a map, so it can be
tested without a socket and reused by any edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.core.actors import Bus


@dataclass(frozen=True)
class RequestContext:
    bus: Bus
    player: str | None  # the logged-in player, or None
    t: int  # the receive time, ms
    loopback: bool = False  # the connection comes from this machine
    admin_key: str = ""
    service_accounts: frozenset[str] = frozenset()  # world accounts that are not players (herd, fed, the Oracle's)
    world: Any = None  # the world now (server/world/maps.py World): its rooms, for placing an NPC program
    npc_names: frozenset[str] = frozenset()  # the world's own NPCs' ids and names, which nobody else may take
