"""A world as data: its rules, its rooms' maps (blocked tiles, spawns, portals, NPC placements) and the parsers of
world.toml's tables and of Tiled's collision layers. server/world/reader.py reads a world folder into these.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from pytiled_parser import TileLayer

from server.world import grid
from server.core.units import DECIMALS, UNIT, parse_amount

GID_MASK = 0x1FFFFFFF  # Tiled keeps flip flags in the top three bits of a gid


class WorldError(Exception):
    """A world that cannot be served; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Rules:
    """Per-world gameplay settings, from world.toml's [rules] table."""

    tick_hz: float = 10.0
    speed: float = 10.0  # tiles per second a player may walk
    burst: int = 3  # steps a player may take at once after standing still (absorbs network jitter)
    near_radius: int = 8  # tiles: reach of "near" chat
    chat_max: int = 280  # characters
    chat_history: int = 20  # room lines sent on join
    view_radius: int = 12  # tiles a player sees around itself
    cell: int = 8  # interest-grid cell size in tiles
    checkpoint_s: float = 5.0  # how often moved players' positions are saved


@dataclass(frozen=True)
class Portal:
    name: str
    x0: int
    y0: int
    x1: int  # exclusive
    y1: int
    target_room: str
    target_spawn: str


@dataclass
class RoomMap:
    name: str
    path: Path
    sha256: str
    width: int
    height: int
    tile_size: int
    blocked: np.ndarray  # bool, shape (height, width), indexed [y, x]
    spawns: dict[str, list[tuple[int, int]]]  # name -> the walkable tiles of its point or rectangle
    portals: list[Portal]
    npcs: list[dict[str, Any]] = field(default_factory=list)
    portal_at: dict[tuple[int, int], Portal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rows: list[list[bool]] = self.blocked.tolist()  # the same grid as plain lists, for the hot checks
        self.index_portals()

    def index_portals(self) -> None:
        self.portal_at = {}
        for portal in self.portals:
            for y in range(portal.y0, portal.y1):
                for x in range(portal.x0, portal.x1):
                    self.portal_at[(x, y)] = portal

    def walkable(self, x: int, y: int) -> bool:
        return 0 <= x < self.width and 0 <= y < self.height and not self.blocked[y, x]

    def standable(self, x: int, y: int) -> bool:
        """Where a player or an NPC may stand still: walkable and not on a portal (a portal moves you on)."""
        return self.walkable(x, y) and (x, y) not in self.portal_at

    def nearest_standable(self, x: int, y: int) -> tuple[int, int]:
        """(x, y) if one may stand there, else the closest tile where one may (a changed map under a player)."""
        found = grid.nearest((x, y), (self.width, self.height), lambda tile: self.standable(*tile))
        return found if found is not None else self.spawn_tile("default", f"{x}:{y}")

    def spawn_tile(self, spawn: str, key: str) -> tuple[int, int]:
        """A tile of the named spawn (or the first spawn), picked by hashing key: a rectangle spawn spreads
        arrivals over its tiles instead of stacking them, and the same key always gets the same tile."""
        tiles = self.spawns.get(spawn) or next(iter(self.spawns.values()))
        digest = hashlib.sha256(key.encode()).digest()
        return tiles[int.from_bytes(digest[:8], "big") % len(tiles)]


@dataclass(frozen=True)
class Citizenship:
    """[citizenship]: who gets the starting allowance and may petition and trade (docs/worlds.md).
    open: everyone who registers; invite: who registers (or later redeems) an operator's invite code; approval:
    who applies and is approved by the operator. new_accounts_per_hour: per client address, 0 for no limit."""

    mode: str = "open"
    new_accounts_per_hour: int = 0


CITIZENSHIP_MODES = ("open", "invite", "approval")


def _citizenship(table: dict[str, Any], where: Path) -> Citizenship:
    unknown = set(table) - {"mode", "new_accounts_per_hour"}
    if unknown:
        raise WorldError(f"{where}: unknown setting [citizenship].{sorted(unknown)[0]} (known: mode, "
                         f"new_accounts_per_hour)")
    mode, limit = table.get("mode", "open"), table.get("new_accounts_per_hour", 0)
    if mode not in CITIZENSHIP_MODES:
        raise WorldError(f"{where}: [citizenship].mode is one of {', '.join(CITIZENSHIP_MODES)}, got {mode!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= 100_000:
        raise WorldError(f"{where}: [citizenship].new_accounts_per_hour is a whole number from 0 (no limit) to "
                         f"100000, got {limit!r}")
    return Citizenship(mode, limit)


@dataclass(frozen=True)
class ProgramLimits:
    """[npc_programs]: how much one outside NPC program may ask of the world (docs/worlds.md); read at each
    program's login (its NpcLogin-Response tells it TimeoutMs, MaxPending and Rate)."""

    answer_timeout_s: float = 10.0  # from passing a request on to the program's Answer (or Price)
    max_pending: int = 16  # open requests at once; more are refused BUSY
    max_text: int = 500  # characters of an answer's Text
    rate: float = 200.0  # requests a second from the program's connection (it answers for many players) ...
    burst: int = 400  # ... with this much slack
    tell_window_minutes: int = 10  # a program may whisper to a player this long after they last asked it something


# setting -> (lowest, highest): each must be a number in its range
RANGES: dict[str, tuple[float, float]] = {"answer_timeout_s": (1, 300), "max_pending": (1, 1000),
                                          "max_text": (1, 500), "rate": (1, 10_000), "burst": (1, 100_000),
                                          "tell_window_minutes": (0, 24 * 60)}


def _npc_programs(table: dict[str, Any], where: Path) -> ProgramLimits:
    known = {f.name: f for f in fields(ProgramLimits)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            raise WorldError(f"{where}: unknown setting [npc_programs].{key} (known: {', '.join(known)})")
        want = type(getattr(ProgramLimits, key))
        lo, hi = RANGES[key]
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or (want is int and not isinstance(value, int)) or not lo <= value <= hi:
            kind = "a whole number" if want is int else "a number"
            raise WorldError(f"{where}: [npc_programs].{key} must be {kind} from {lo:g} to {hi:g}, got {value!r}")
        values[key] = want(value)
    return ProgramLimits(**values)


@dataclass
class World:
    name: str
    root: Path
    start_room: str
    start_spawn: str
    rules: Rules
    rooms: dict[str, RoomMap]
    model: Path | None = None  # [inference] model: the GGUF this world's NPCs run on (default: the default model)
    starting_war: int = 10 * UNIT  # [economy] starting_war, in base units: what a new citizen receives
    citizenship: Citizenship = Citizenship()
    programs: ProgramLimits = ProgramLimits()  # [npc_programs]


def _tile_rect(obj: Any, tw: int, th: int) -> tuple[int, int, int, int]:
    x, y = float(obj.coordinates.x), float(obj.coordinates.y)
    w, h = float(obj.size.width), float(obj.size.height)
    if w == 0 and h == 0:  # a point
        tx, ty = int(x // tw), int(y // th)
        return tx, ty, tx + 1, ty + 1
    return int(x // tw), int(y // th), max(int(x // tw) + 1, int(-(-(x + w) // tw))), max(
        int(y // th) + 1, int(-(-(y + h) // th))
    )


def _collides_gids(tmap: Any) -> set[int]:
    gids = set()
    for firstgid, tileset in tmap.tilesets.items():
        for tile_id, tile in (tileset.tiles or {}).items():
            if (tile.properties or {}).get("collides") is True:
                gids.add(firstgid + tile_id)
    return gids


def _tile_layers(layers: list[Any]) -> list[TileLayer]:
    out = []
    for layer in layers:
        if isinstance(layer, TileLayer):
            out.append(layer)
        elif getattr(layer, "layers", None):
            out.extend(_tile_layers(layer.layers))
    return out


def blocked_grid(tmap: Any) -> np.ndarray:
    """bool[y, x]: painted by a `collision` layer, or a tile whose tileset gives it `collides = true`."""
    blocked = np.zeros((tmap.map_size.height, tmap.map_size.width), dtype=bool)
    collides = _collides_gids(tmap)
    for layer in _tile_layers(tmap.layers):
        if not layer.data:
            continue
        gids = np.asarray(layer.data, dtype=np.int64) & GID_MASK
        if layer.name.lower() == "collision":
            blocked |= gids != 0
        elif collides:
            blocked |= np.isin(gids, list(collides))
    return blocked


def _rules(table: dict[str, Any], where: Path) -> Rules:
    known = {f.name: f for f in fields(Rules)}
    values = {}
    for key, value in table.items():
        if key not in known:
            raise WorldError(f"{where}: unknown setting [rules].{key} (known: {', '.join(known)})")
        want = type(getattr(Rules, key))
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, want) or isinstance(value, bool) or value <= 0:
            raise WorldError(f"{where}: [rules].{key} must be a positive {want.__name__}, got {value!r}")
        values[key] = value
    return Rules(**values)


def _economy(table: dict[str, Any], where: Path) -> int:
    unknown = set(table) - {"starting_war"}
    if unknown:
        raise WorldError(f"{where}: unknown setting [economy].{sorted(unknown)[0]} (known: starting_war)")
    value = table.get("starting_war", 10)
    try:
        amount = parse_amount(value)
    except ValueError:
        amount = -1
    if amount < 0:
        raise WorldError(f"{where}: [economy].starting_war must be a non-negative amount of wAR with at most "
                         f"{DECIMALS} decimals, got {value!r}")
    return amount
