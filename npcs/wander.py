"""Wandering llamas, as pure code: where a llama walks next, and when it says an idle line.

A llama picks a walkable goal within `radius` tiles of its home, finds a path there by breadth-first search on
the room's collision grid (4-neighbour steps, never onto portals), walks it at its own speed, pauses, and picks
again. Time comes from the room's ticks and randomness from a generator seeded with the llama's id, so a run is
reproducible. Nothing here talks to the model: idle lines are scripted; answers come from WandererActor.
"""

from __future__ import annotations

import random

from server.world.grid import Walkable, find_path


class Wanderer:
    def __init__(self, npc_id: str, home: tuple[int, int], radius: int, speed: float, idle_every_s: float,
                 walkable: Walkable):
        self.home, self.radius, self.walkable = home, radius, walkable
        self.x, self.y = home
        self.step_ms = int(1000 / speed)
        self.idle_ms = int(idle_every_s * 1000)
        self.rng = random.Random(npc_id)
        self.path: list[tuple[int, int]] = []
        self.next_move_ms = 0
        self.next_idle_ms: int | None = None
        self.lines_said = 0

    @property
    def bounds(self) -> tuple[int, int, int, int]:
        hx, hy, r = *self.home, self.radius
        return hx - r, hy - r, hx + r + 1, hy + r + 1

    def advance(self, t_ms: int) -> bool:
        """Walk on if it is time; True if the llama moved to a new tile."""
        if t_ms < self.next_move_ms:
            return False
        if not self.path:
            self.path = self._new_path()
            self.next_move_ms = t_ms + self.rng.randint(1000, 4000)  # look around before setting off
            return False
        self.x, self.y = self.path.pop(0)
        self.next_move_ms = t_ms + self.step_ms
        return True

    def _new_path(self) -> list[tuple[int, int]]:
        x0, y0, x1, y1 = self.bounds
        for _ in range(8):
            goal = (self.rng.randrange(x0, x1), self.rng.randrange(y0, y1))
            if goal != (self.x, self.y) and self.walkable(*goal):
                path = find_path(self.walkable, (self.x, self.y), goal, self.bounds)
                if path:
                    return path
        return []

    def idle_due(self, t_ms: int, audience: bool) -> bool:
        """True when an idle line is due. Lines wait for an audience; the first comes a little after one arrives."""
        if not audience:
            self.next_idle_ms = None
            return False
        if self.next_idle_ms is None:
            self.next_idle_ms = t_ms + self.rng.randint(self.idle_ms // 4, self.idle_ms)
            return False
        if t_ms < self.next_idle_ms:
            return False
        self.next_idle_ms = t_ms + self.rng.randint(self.idle_ms * 2 // 3, self.idle_ms * 4 // 3)
        self.lines_said += 1
        return True
