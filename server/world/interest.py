"""Grid interest management: who sees whose moves, and the tick frames that tell them.

The room is cut into square cells; a player sees the cells within `radius` cells of its own. Each tick, every
change is packed once into its cell's lists (M: moved [eid, x, y], A: appeared [eid, name, x, y], G: gone eid),
and one Tick frame is assembled per occupied cell from the lists of the cells it sees. Every player in a cell
gets the same bytes, so the cost of a tick grows with cells and changes, not with players × players.

A client keeps an entity while its last known tile is inside its view rectangle and drops it otherwise; a
`View` frame, sent when a player enters a new cell, lists everything in the cells that just came into view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import msgpack

from server.core.protocol import array_header, map_header

_pack = msgpack.Packer(use_bin_type=True).pack
_TICK_KEYS = [_pack(k) for k in ("Action", "N", "T", "M", "A", "G")]
_TICK_ACTION = _pack("Tick")
_VIEW_KEYS = [_pack(k) for k in ("Action", "Rect", "A")]
_VIEW_ACTION = _pack("View")


@dataclass
class Entity:
    eid: int
    name: str
    x: int
    y: int
    cell: int


class CellLists:
    __slots__ = ("m", "a", "g", "nm", "na", "ng")

    def __init__(self) -> None:
        self.m, self.a, self.g = bytearray(), bytearray(), bytearray()
        self.nm = self.na = self.ng = 0


@dataclass
class TickOutput:
    frames: dict[int, bytes]  # cell -> frame for every player in that cell
    views: dict[int, bytes]  # eid -> View frame for players who entered a new cell


class InterestGrid:
    def __init__(self, width: int, height: int, cell: int, view_radius: int):
        self.cell = cell
        self.cols = max(1, math.ceil(width / cell))
        self.rows = max(1, math.ceil(height / cell))
        self.radius = max(1, math.ceil(view_radius / cell))
        self.entities: dict[int, Entity] = {}
        self.occupants: list[set[int]] = [set() for _ in range(self.cols * self.rows)]
        self._visible = [self._cells_around(c) for c in range(self.cols * self.rows)]
        # Changes since the last flush; packed once, with final positions, when the tick goes out.
        self._joined: set[int] = set()
        self._moved: dict[int, int] = {}  # eid -> cell at the start of the tick
        self._gone: dict[int, int] = {}  # eid -> cell it was last seen in
        self._refresh: set[int] = set()

    def _cells_around(self, c: int) -> tuple[int, ...]:
        cx, cy = c % self.cols, c // self.cols
        r = self.radius
        return tuple(
            y * self.cols + x
            for y in range(max(0, cy - r), min(self.rows, cy + r + 1))
            for x in range(max(0, cx - r), min(self.cols, cx + r + 1))
        )

    def cell_of(self, x: int, y: int) -> int:
        return (y // self.cell) * self.cols + (x // self.cell)

    def visible(self, cell: int) -> tuple[int, ...]:
        return self._visible[cell]

    def view_rect(self, cell: int) -> list[int]:
        """[x0, y0, x1, y1) in tiles: what a player in `cell` sees."""
        cx, cy, r, s = cell % self.cols, cell // self.cols, self.radius, self.cell
        return [max(0, cx - r) * s, max(0, cy - r) * s, min(self.cols, cx + r + 1) * s, min(self.rows, cy + r + 1) * s]

    def add(self, eid: int, name: str, x: int, y: int) -> None:
        cell = self.cell_of(x, y)
        self.entities[eid] = Entity(eid, name, x, y, cell)
        self.occupants[cell].add(eid)
        self._joined.add(eid)

    def move(self, eid: int, x: int, y: int) -> None:
        ent = self.entities[eid]
        self._moved.setdefault(eid, ent.cell)  # where observers last saw it: the cell at the start of the tick
        ent.x, ent.y = x, y
        new = self.cell_of(x, y)
        if new != ent.cell:
            self.occupants[ent.cell].discard(eid)
            self.occupants[new].add(eid)
            ent.cell = new

    def remove(self, eid: int) -> None:
        ent = self.entities.pop(eid, None)
        if ent is None:
            return
        self.occupants[ent.cell].discard(eid)
        origin = self._moved.pop(eid, ent.cell)
        if eid in self._joined:  # came and went within one tick: nobody saw it
            self._joined.discard(eid)
        else:
            self._gone[eid] = origin

    def refresh(self, eid: int) -> None:
        """Send this entity's player a full View with the next tick (a new connection for the same avatar)."""
        if eid in self.entities:
            self._refresh.add(eid)

    def watchers(self, x: int, y: int) -> set[int]:
        """Entities that can see tile (x, y)."""
        out: set[int] = set()
        for c in self._visible[self.cell_of(x, y)]:
            out |= self.occupants[c]
        return out

    def _collect(self) -> tuple[dict[int, CellLists], dict[int, int | None]]:
        changed: dict[int, CellLists] = {}
        entered: dict[int, int | None] = {eid: None for eid in self._joined | self._refresh}

        def lists(cell: int) -> CellLists:
            found = changed.get(cell)
            if found is None:
                found = changed[cell] = CellLists()
            return found

        for eid in self._joined:
            e = self.entities[eid]
            arrived = lists(e.cell)
            arrived.a += _pack([eid, e.name, e.x, e.y])
            arrived.na += 1
        for eid, origin in self._moved.items():
            if eid in self._joined:
                continue
            e = self.entities[eid]
            moved = lists(origin)
            moved.m += _pack([eid, e.x, e.y])
            moved.nm += 1
            if e.cell != origin:  # observers of the new cell may never have seen it: introduce it there
                arrived = lists(e.cell)
                arrived.a += _pack([eid, e.name, e.x, e.y])
                arrived.na += 1
                entered.setdefault(eid, origin)
        for eid, cell in self._gone.items():
            gone = lists(cell)
            gone.g += _pack(eid)
            gone.ng += 1
        self._joined, self._moved, self._gone, self._refresh = set(), {}, {}, set()
        return changed, entered

    def flush(self, tick: int, t_ms: int) -> TickOutput:
        changed, entered = self._collect()
        frames: dict[int, bytes] = {}
        if changed:
            observers: set[int] = set()
            for c in changed:
                observers.update(v for v in self._visible[c] if self.occupants[v])
            head = map_header(6) + _TICK_KEYS[0] + _TICK_ACTION + _TICK_KEYS[1] + _pack(tick) + _TICK_KEYS[2] + _pack(t_ms)
            for c in observers:
                parts = [changed[v] for v in self._visible[c] if v in changed]
                frames[c] = b"".join(
                    [
                        head,
                        _TICK_KEYS[3], array_header(sum(p.nm for p in parts)), *(p.m for p in parts),
                        _TICK_KEYS[4], array_header(sum(p.na for p in parts)), *(p.a for p in parts),
                        _TICK_KEYS[5], array_header(sum(p.ng for p in parts)), *(p.g for p in parts),
                    ]
                )
        snapshots: dict[int, tuple[int, bytes]] = {}
        views = {eid: self._view_frame(eid, prev, snapshots) for eid, prev in entered.items() if eid in self.entities}
        return TickOutput(frames, views)

    def _view_frame(self, eid: int, prev_cell: int | None, snapshots: dict[int, tuple[int, bytes]]) -> bytes:
        cell = self.entities[eid].cell
        before = self._visible[prev_cell] if prev_cell is not None else ()
        parts = [self._snapshot(c, snapshots) for c in self._visible[cell] if c not in before]
        return b"".join([map_header(3), _VIEW_KEYS[0], _VIEW_ACTION, _VIEW_KEYS[1], _pack(self.view_rect(cell)),
                         _VIEW_KEYS[2], array_header(sum(n for n, _ in parts)), *(blob for _, blob in parts)])

    def _snapshot(self, cell: int, snapshots: dict[int, tuple[int, bytes]]) -> tuple[int, bytes]:
        """Everyone in a cell as packed [eid, name, x, y] entries; built once per tick, shared by every View."""
        found = snapshots.get(cell)
        if found is None:
            ents = [self.entities[i] for i in self.occupants[cell]]
            found = snapshots[cell] = (len(ents), b"".join(_pack([e.eid, e.name, e.x, e.y]) for e in ents))
        return found
