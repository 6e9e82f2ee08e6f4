"""A world's cast: its NPC files joined with their placements on the maps, checked as a whole.

A Tiled object in a map's `npcs` layer places the NPC whose file (npcs/<object name>.toml) describes it. Every
NPC whose kind acts in a room (npcs/kinds.py: `placed`) must be placed once; Fed committee members may stand in
the hall or stay out of sight. A world has at most one King (one Fed, one monetary policy). A presence carries, as
plain data, what the room needs to route requests to it: its address, the requests it serves and from how far.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from npcs.kinds import KINDS, NpcKind
from npcs.npcfile import NpcError, NpcSpec, load_npcs
from npcs.inference.templates import PromptTemplate
from npcs.wander import Wanderer

NPC_EID_BASE = 1_000_000  # NPC entity ids: far above the players' ids, which count up from 1 in each room


@dataclass
class NpcPresence:
    """An NPC standing (or walking) in a room."""

    spec: NpcSpec
    room: str
    x: int
    y: int
    eid: int
    wanderer: Wanderer | None = None

    @property
    def kind(self) -> NpcKind:
        return KINDS[self.spec.kind]

    @property
    def address(self) -> str | None:
        pattern = self.kind.address
        return pattern.format(id=self.spec.id) if pattern else None

    @property
    def serves(self) -> dict[str, str]:
        """Request action -> reach ("near" or "world")."""
        return {s.action: s.reach for s in self.kind.serves}

    @property
    def quote(self) -> str | None:
        return self.kind.quote

    @property
    def listens(self) -> bool:
        return self.kind.listens

    def describe(self) -> dict[str, object]:
        """The NPC as RoomJoined.Npcs lists it; Limits are its requests' field limits from its own file."""
        return {"Id": self.spec.id, "Name": self.spec.name, "Kind": self.spec.kind, "Eid": self.eid,
                "X": self.x, "Y": self.y, "Reach": self.spec.reach, "Limits": self.kind.limits(self.spec.economy)}


@dataclass
class Cast:
    specs: dict[str, NpcSpec]
    placed: dict[str, NpcPresence] = field(default_factory=dict)

    def in_room(self, room: str) -> list[NpcPresence]:
        return [p for p in self.placed.values() if p.room == room]

    def listeners(self, room: str) -> list[str]:
        """Addresses of the NPCs that hear every chat line said in room: listening NPCs standing there, and those
        whose file lists it under `listens`."""
        return sorted(p.address for p in self.placed.values()
                      if p.listens and p.address and (p.room == room or room in p.spec.listens))

    def of_kind(self, kind: str) -> list[NpcSpec]:
        return [s for s in self.specs.values() if s.kind == kind]

    @property
    def king(self) -> NpcSpec | None:
        kings = self.of_kind("king")
        return kings[0] if kings else None

    def names(self) -> set[str]:
        """What no player may be called: every NPC's id and name (without spaces, any case)."""
        return {n.lower().replace(" ", "") for s in self.specs.values() for n in (s.id, s.name)}

    def templates(self) -> dict[str, PromptTemplate]:
        return {t.id: t for s in self.specs.values() for t in s.templates.values()}


def load_cast(world: object, templates: dict[str, PromptTemplate]) -> Cast:
    root: Path = world.root  # type: ignore[attr-defined]
    specs = load_npcs(root / "npcs", templates, world.rules.near_radius)  # type: ignore[attr-defined]
    cast = Cast(specs)
    for room in world.rooms.values():  # type: ignore[attr-defined]
        for obj in room.npcs:
            npc_id = obj["name"]
            spec = specs.get(npc_id)
            where = f"{room.path}: NPC object {npc_id!r} at ({obj['x']}, {obj['y']})"
            if spec is None:
                raise NpcError(f"{where} has no NPC file (expected {root / 'npcs' / (str(npc_id) + '.toml')})")
            if npc_id in cast.placed:
                raise NpcError(f"{where}: {npc_id} is already placed in room {cast.placed[npc_id].room!r}")
            if not room.walkable(obj["x"], obj["y"]):
                raise NpcError(f"{where} stands on a blocked tile")
            presence = NpcPresence(spec, room.name, obj["x"], obj["y"], NPC_EID_BASE + len(cast.placed))
            if spec.kind == "wanderer":
                e = spec.economy
                presence.wanderer = Wanderer(spec.id, (obj["x"], obj["y"]), e["radius"], e["speed"],
                                             e["idle_every_s"], room.standable)
            cast.placed[npc_id] = presence
    for spec in specs.values():
        unknown = [r for r in spec.listens if r not in world.rooms]  # type: ignore[attr-defined]
        if unknown:
            raise NpcError(f"{spec.path}: listens to {unknown[0]!r}, which is not a room of this world")
        if KINDS[spec.kind].placed and spec.id not in cast.placed:
            raise NpcError(f"{spec.path}: a {spec.kind} must stand somewhere: add an object named {spec.id!r} to "
                           f"the 'npcs' layer of a map")
    if len(cast.of_kind("king")) > 1:
        raise NpcError(f"{root / 'npcs'}: a world has one King (one Fed), found "
                       f"{', '.join(s.id for s in cast.of_kind('king'))}")
    return cast

