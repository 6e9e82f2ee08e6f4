"""The grid: steps between tiles and searches over them, shared by the rules, the rooms, the wandering llamas,
`world check` and the client's click-to-walk.

Positions are integer tiles (x to the east, y to the south). A search is breadth first, so the first path found
is a shortest one in steps, and it is the same path on every machine (neighbours are tried in a fixed order).
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Hashable, Iterable, TypeVar

from server.core.protocol import DIRECTIONS

Tile = tuple[int, int]
Walkable = Callable[[int, int], bool]
Node = TypeVar("Node", bound=Hashable)

# A Move's Dir -> (dx, dy). Diagonals exist for the server's rules; paths walk the four cardinal steps.
STEPS: dict[str, Tile] = {
    "N": (0, -1), "S": (0, 1), "E": (1, 0), "W": (-1, 0),
    "NE": (1, -1), "NW": (-1, -1), "SE": (1, 1), "SW": (-1, 1),
}
assert tuple(STEPS) == DIRECTIONS  # the wire's names for the same steps
CARDINAL: dict[str, Tile] = {d: STEPS[d] for d in ("E", "W", "S", "N")}
NEIGHBOURS: tuple[Tile, ...] = tuple(CARDINAL.values())  # the order every search tries


def direction(frm: Tile, to: Tile) -> str:
    """The Dir of one step from frm to the neighbouring tile to."""
    delta = (to[0] - frm[0], to[1] - frm[1])
    return next(d for d, step in STEPS.items() if step == delta)


def neighbours(tile: Tile) -> list[Tile]:
    return [(tile[0] + dx, tile[1] + dy) for dx, dy in NEIGHBOURS]


def breadth_first(starts: Iterable[Node], step: Callable[[Node], Iterable[Node]],
                  goal: Callable[[Node], bool] | None = None) -> tuple[dict[Node, Node | None], Node | None]:
    """Search outward from starts. Returns (each reached node -> the node it was reached from, the first node
    for which goal is true or None). Without a goal it floods everything reachable."""
    came: dict[Node, Node | None] = {}
    todo: deque[Node] = deque()
    for s in starts:
        if s not in came:
            came[s] = None
            todo.append(s)
    while todo:
        here = todo.popleft()
        if goal is not None and goal(here):
            return came, here
        for nxt in step(here):
            if nxt not in came:
                came[nxt] = here
                todo.append(nxt)
    return came, None


def find_path(walkable: Walkable, start: Tile, goal: Tile, bounds: tuple[int, int, int, int]) -> list[Tile] | None:
    """Tiles from start (exclusive) to goal (inclusive), walking cardinal steps on walkable tiles inside bounds
    [x0, y0, x1, y1); None if the goal cannot be reached."""
    x0, y0, x1, y1 = bounds

    def step(tile: Tile) -> list[Tile]:
        return [n for n in neighbours(tile) if x0 <= n[0] < x1 and y0 <= n[1] < y1 and walkable(*n)]

    came, found = breadth_first([start], step, lambda tile: tile == goal)
    if found is None:
        return None
    path: list[Tile] = []
    here: Tile | None = found
    while here is not None and here != start:
        path.append(here)
        here = came[here]
    return path[::-1]


def nearest(start: Tile, size: tuple[int, int], ok: Callable[[Tile], bool]) -> Tile | None:
    """The closest tile to start (clamped onto the width x height map) for which ok is true, in steps over
    every tile, blocked or not; None if there is none."""
    width, height = size
    x, y = min(max(start[0], 0), width - 1), min(max(start[1], 0), height - 1)

    def step(tile: Tile) -> list[Tile]:
        return [n for n in neighbours(tile) if 0 <= n[0] < width and 0 <= n[1] < height]

    return breadth_first([(x, y)], step, ok)[1]
