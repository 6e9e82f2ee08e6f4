"""ProgramDesk: where NPC programs' connections become actors (the sessions reach it through WorldHost.programs).

One actor per connected program, at `npc:<id>`. A second login with the same key takes over, like a player's: the
older connection is closed and its open requests refunded before the new actor takes the address.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from server.core.actors import Bus
from server.core.clock import now_ms

from server.world.maps import ProgramLimits

from npcs.actors.program import ProgramActor, ProgramLink

log = logging.getLogger("llama_land.programs")


class ProgramDesk:
    def __init__(self, bus: Bus, world: Callable[[], Any]):
        self.bus, self.world = bus, world
        self.live: dict[str, ProgramActor] = {}

    @property
    def limits(self) -> ProgramLimits:
        """The world's [npc_programs] now: a reloaded world.toml applies from the next login."""
        return self.world().programs

    async def attach(self, link: ProgramLink, registration: dict[str, Any]) -> ProgramActor:
        old = self.live.get(registration["Id"])
        if old is not None:
            old.link.close(4000, "this NPC logged in elsewhere")
            await self.detach(old)
        rules = self.world().rules
        actor = ProgramActor(self.bus, registration, link, self.limits, reach=rules.near_radius,
                             chat_max=lambda: self.world().rules.chat_max)
        self.live[registration["Id"]] = actor
        self.bus.register(actor)
        actor.start()
        return actor

    async def detach(self, actor: ProgramActor) -> None:
        """The connection ended: refund what is open, leave the room, free the address."""
        if not actor.gone:
            try:
                actor.deliver({"Action": "Gone", "T": now_ms()})
            except Exception:
                log.exception("%s: could not be told its program is gone", actor.id)
        try:
            await asyncio.wait_for(actor.done.wait(), 30.0)
        except asyncio.TimeoutError:
            log.warning("%s: its requests were not all settled in 30 s", actor.id)
        if self.live.get(actor.reg["Id"]) is actor:
            del self.live[actor.reg["Id"]]
            self.bus.unregister(actor.id)
        await actor.stop()

    async def close(self) -> None:
        await asyncio.gather(*(self.detach(a) for a in list(self.live.values())))

    def describe_in(self, room: str) -> list[dict[str, Any]]:
        return [a.describe() for a in self.live.values() if a.present and a.reg["Room"] == room]
