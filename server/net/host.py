"""WorldHost: the narrow view of the world a session needs (the composition root, server/runtime.py, provides it).

Sessions never reach into the runtime's actors: they send messages on the bus and read these few facts.
"""

from __future__ import annotations

from typing import Any, Protocol

from server.core.actors import Bus
from server.world.maps import World


class WorldHost(Protocol):
    bus: Bus
    world: World
    admin_key: str
    dummy_hash: str  # scrypt of nothing: a login with an unknown name costs what a wrong password costs
    programs: Any  # where NPC programs' connections become actors (npcs/actors/program_desk.py), or None

    @property
    def npc_names(self) -> frozenset[str]: ...

    @property
    def service_accounts(self) -> frozenset[str]: ...

    def npc_serving(self, action: str, service: str | None = None) -> Any: ...

    def load_checkpoint(self, name: str) -> Any: ...

    @property
    def rooms_here(self) -> frozenset[str]:
        """The rooms this process serves (all of them, unless it is one of several room hosts)."""

    async def room_url(self, room: str) -> str:
        """Where the process that serves room listens. Refused(UNAVAILABLE) if nobody serves it now."""

    async def hand_off(self, name: str, room: str, fields: dict[str, Any]) -> dict[str, Any]:
        """{Url, Ticket, Room}: where the process that serves room listens, and a one-use ticket to enter it
        (with fields: X, Y, Via). Refused(UNAVAILABLE) if nobody serves it now."""
