"""A visiting NPC: one an outside program plays (npcs/actors/program.py), in a room only while it is connected.

The room holds it like any placed NPC (the PlacedNpc shape of server/world/room.py) — an entity on the map, an
address, the requests it serves — built from the plain description its actor sends with NpcArrive.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

SERVES = {"Use": "near", "AskPrice": "near"}  # a program's actions are used standing near it


@dataclass
class Visitor:
    spec: SimpleNamespace  # .id, .name, .reach, .lines (none)
    x: int
    y: int
    eid: int
    data: dict[str, Any]  # its description, as RoomJoined.Npcs and NpcJoined list it
    wanderer: Any = None

    @classmethod
    def of(cls, data: dict[str, Any]) -> "Visitor":
        spec = SimpleNamespace(id=data["Id"], name=data["Name"], reach=data["Reach"], lines={})
        return cls(spec, data["X"], data["Y"], data["Eid"], data)

    @property
    def address(self) -> str:
        return f"npc:{self.spec.id}"

    @property
    def serves(self) -> dict[str, str]:
        return SERVES

    def describe(self) -> dict[str, Any]:
        return self.data
