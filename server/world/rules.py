"""World rules as pure functions: movement and chat. No sockets, no clocks; time is the message's `T` (ms).

The original system validated movement only in the browser. Here every step is checked on the server against
the map (bounds, collision, corner-cutting), against distance (one tile per step, no teleports) and against
speed (a step budget refilled at `speed` tiles per second of message time).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from server.core.protocol import Code, Refused  # noqa: F401  (Refused: the rules' answer)
from server.world.grid import STEPS
from server.world.maps import RoomMap, Rules



@dataclass
class Walker:
    """Where a player is and how many steps it may take right now."""

    x: int
    y: int
    budget: float
    last_t: int

    @classmethod
    def standing(cls, x: int, y: int, t: int, rules: Rules) -> "Walker":
        return cls(x, y, float(rules.burst), t)


def step_target(x: int, y: int, msg: dict[str, Any]) -> tuple[int, int]:
    """The tile a Move intent asks for: a direction, or an explicit neighbouring tile."""
    if msg.get("Dir") is not None:
        dx, dy = STEPS[msg["Dir"]]
        return x + dx, y + dy
    if msg.get("X") is None or msg.get("Y") is None:
        raise Refused(Code.BAD_REQUEST, "Move needs Dir, or both X and Y")
    return msg["X"], msg["Y"]


def check_step(room: RoomMap, x: int, y: int, tx: int, ty: int) -> None:
    """Raise Refused unless (x, y) -> (tx, ty) is one legal step on this map."""
    if not (0 <= tx < room.width and 0 <= ty < room.height):
        raise Refused(Code.MOVE_OFF_MAP, f"({tx}, {ty}) is outside the {room.width}x{room.height} map")
    dx, dy = tx - x, ty - y
    if abs(dx) > 1 or abs(dy) > 1:
        raise Refused(Code.MOVE_TOO_FAR, f"({tx}, {ty}) is {max(abs(dx), abs(dy))} tiles away; one step at a time")
    rows = room.rows
    if rows[ty][tx]:
        raise Refused(Code.MOVE_BLOCKED, f"({tx}, {ty}) is blocked")
    if dx and dy and (rows[y][tx] or rows[ty][x]):
        raise Refused(Code.MOVE_THROUGH_WALL, f"cannot cut the corner to ({tx}, {ty}) through a wall")


def walk(room: RoomMap, rules: Rules, walker: Walker, msg: dict[str, Any]) -> bool:
    """Apply one Move intent to walker. Returns True if the position changed; raises Refused otherwise-illegal."""
    tx, ty = step_target(walker.x, walker.y, msg)
    if (tx, ty) == (walker.x, walker.y):
        return False
    check_step(room, walker.x, walker.y, tx, ty)
    t = msg["T"]
    budget = min(float(rules.burst), walker.budget + max(0, t - walker.last_t) * rules.speed / 1000.0)
    if budget < 1.0:
        raise Refused(Code.MOVE_TOO_FAST, f"too fast: at most {rules.speed:g} tiles per second")
    walker.budget = budget - 1.0
    walker.last_t = t
    walker.x, walker.y = tx, ty
    return True


def clean_chat(text: str, rules: Rules) -> str:
    """Strip control characters and surrounding space; refuse empty or over-long lines."""
    cleaned = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C" or ch == " ").strip()
    if not cleaned:
        raise Refused(Code.CHAT_EMPTY, "nothing to say: the line is empty")
    if len(cleaned) > rules.chat_max:
        raise Refused(Code.CHAT_TOO_LONG, f"line is {len(cleaned)} characters; the limit is {rules.chat_max}")
    return cleaned


def npc_line(text: str, limit: int) -> str:
    """What an NPC's answer becomes in chat: its first line, runs of space as one, at most `limit` characters.
    The NPC's own event (`NpcDone`) and the room's `ChatLine` both carry exactly this text."""
    first = (text.strip().splitlines() or [""])[0]
    return " ".join(first.split())[:limit].rstrip()


def near(ax: int, ay: int, bx: int, by: int, radius: int) -> bool:
    return (ax - bx) ** 2 + (ay - by) ** 2 <= radius * radius
