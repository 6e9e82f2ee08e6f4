"""What a client knows about its room, kept up to date from server events. Pure: no sockets, no clock.

The rule (docs/protocol.md, "Interest"): keep an entity while its last known tile is inside the view rectangle
from the latest View; RoomJoined starts afresh; Tick frames bring moves (M), arrivals (A) and departures (G).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Seen:
    name: str
    x: int
    y: int


@dataclass
class WorldView:
    room: str | None = None
    world: str | None = None
    map_path: str | None = None
    width: int = 0
    height: int = 0
    me: int | None = None
    x: int = 0
    y: int = 0
    rect: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    entities: dict[int, Seen] = field(default_factory=dict)
    chat: list[dict[str, Any]] = field(default_factory=list)
    npcs: dict[int, dict[str, Any]] = field(default_factory=dict)  # entity id -> the NPC's Id, Name, Kind, Reach
    tick: int = 0
    tick_t: int = 0

    def _inside(self, x: int, y: int) -> bool:
        x0, y0, x1, y1 = self.rect
        return x0 <= x < x1 and y0 <= y < y1

    def apply(self, ev: dict[str, Any]) -> None:
        kind = ev.get("Action")
        if kind == "RoomJoined":
            self.room, self.world, self.map_path = ev["Room"], ev["World"], ev["Map"]
            self.width, self.height, self.me, self.x, self.y = ev["Width"], ev["Height"], ev["You"], ev["X"], ev["Y"]
            self.rect = [0, 0, self.width, self.height]
            self.entities.clear()
            self.npcs = {n["Eid"]: n for n in ev.get("Npcs", [])}
            self.chat = [self._history_line(line) for line in ev["Chat"]]
        elif kind == "NpcJoined" and ev["Room"] == self.room:
            self.npcs[ev["Npc"]["Eid"]] = ev["Npc"]
        elif kind == "NpcLeft" and ev["Room"] == self.room:
            self.npcs = {e: n for e, n in self.npcs.items() if n["Id"] != ev["Npc"]}
        elif kind == "View":
            self.rect = list(ev["Rect"])
            for eid in [e for e, s in self.entities.items() if not self._inside(s.x, s.y)]:
                del self.entities[eid]
            self._appear(ev["A"])
        elif kind == "Tick":
            self.tick, self.tick_t = ev["N"], ev["T"]
            self._appear(ev["A"])
            for eid, x, y in ev["M"]:
                seen = self.entities.get(eid)
                if seen is None:
                    continue
                if self._inside(x, y) or eid == self.me:
                    seen.x, seen.y = x, y
                else:
                    del self.entities[eid]
            for eid in ev["G"]:
                self.entities.pop(eid, None)
            me = self.entities.get(self.me) if self.me is not None else None
            if me is not None:
                self.x, self.y = me.x, me.y
        elif kind == "ChatLine":
            self.chat.append(ev)

    @staticmethod
    def _history_line(line: list[Any]) -> dict[str, Any]:
        """[seq, author, text, t] for a player's line; an NPC's carries its id as a fifth element."""
        out = {"Seq": line[0], "From": line[1], "Text": line[2], "T": line[3], "Scope": "room"}
        if len(line) > 4:
            out["Npc"] = line[4]
        return out

    def _appear(self, entries: list[list[Any]]) -> None:
        for eid, name, x, y in entries:
            self.entities[eid] = Seen(name, x, y)

    def names(self) -> dict[str, tuple[int, int]]:
        return {s.name: (s.x, s.y) for s in self.entities.values()}
