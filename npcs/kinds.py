"""NPC kinds: everything the server knows about a kind of NPC, in one table.

An NPC file names its kind (`kind = "joker"`); the kind says what the file may hold (economy settings with their
ranges, template roles and the variables each role fills, scripted lines), where its actor lives on the bus, which
requests it serves and from how far, the limits of their fields (sent to clients in `RoomJoined.Npcs`), what it
remembers about a player, whether it must stand in a room, and which actor class runs it. The NPC file loader,
the cast, `world check`, the room's routing, the composition root and the client all read this table.

Adding a kind: one entry here, one actor class (with a `build(presence, ctx)` classmethod), one client panel
(client/panels.py) — docs/worlds.md walks through it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from server.core.units import UNIT, parse_amount

Parse = Callable[[Any], Any]


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError
    return value


def _num(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError
    return float(value)


@dataclass(frozen=True)
class Setting:
    """One [economy] setting: parsed (amounts in whole tokens become base units), defaulted, range-checked."""

    parse: Parse
    default: Any
    lowest: Any
    highest: Any

    @property
    def is_amount(self) -> bool:
        return self.parse is parse_amount


def amount(default: int, lowest: int, highest: int) -> Setting:
    return Setting(parse_amount, default, lowest, highest)


def whole(default: int, lowest: int, highest: int) -> Setting:
    return Setting(_int, default, lowest, highest)


def number(default: float, lowest: float, highest: float) -> Setting:
    return Setting(_num, default, lowest, highest)


Limit = int | str  # a number, or the name of an [economy] setting that holds it


@dataclass(frozen=True)
class Serves:
    """A request the kind answers. reach "near": the player stands within the NPC's reach in its room; "world":
    from anywhere (the server finds the NPC wherever it stands). limits: field -> (lowest, highest)."""

    action: str
    reach: str = "near"
    limits: dict[str, tuple[Limit, Limit]] = field(default_factory=dict)


@dataclass(frozen=True)
class NpcKind:
    name: str
    actor: str | None  # "module:Class" of the actor that runs it; None: no actor of its own (a committee member)
    address: str | None  # its address on the bus ({id} is the NPC's id)
    economy: dict[str, Setting] = field(default_factory=dict)
    roles: dict[str, frozenset[str]] = field(default_factory=dict)  # template role -> variables it fills
    lines: frozenset[str] = frozenset()  # scripted line roles
    serves: tuple[Serves, ...] = ()
    quote: str | None = None  # the Service name under which Quote prices it
    remembers: frozenset[str] = frozenset()  # what it keeps about each player (npc_memory)
    placed: bool = True  # must stand in a room
    listens: bool = False  # its room forwards it every chat line said there (Overheard)

    def actor_class(self) -> type:
        module, _, name = (self.actor or "").partition(":")
        return getattr(importlib.import_module(module), name)

    def limits(self, economy: dict[str, Any]) -> dict[str, dict[str, list[int]]]:
        """Per served action, each field's [lowest, highest] with this NPC's economy filled in."""
        def value(limit: Limit) -> int:
            return economy[limit] if isinstance(limit, str) else limit
        return {s.action: {f: [value(lo), value(hi)] for f, (lo, hi) in s.limits.items()} for s in self.serves
                if s.limits}


def _vars(*names: str) -> frozenset[str]:
    return frozenset({"persona", "player", "memory", *names})


KINDS: dict[str, NpcKind] = {k.name: k for k in (
    NpcKind(
        "king", actor="npcs.actors.fed:FedActor", address="fed",
        economy={
            "offering": amount(1 * UNIT, 0, 1000 * UNIT),  # wAR escrowed with each petition
            "petition_min": whole(2, 1, 250),
            "petition_max": whole(250, 2, 1000),
            "cooldown_count": whole(3, 1, 1000),  # petitions a player may make ...
            "cooldown_hours": number(23.0, 0.0, 24 * 30),  # ... within this many hours
            "max_payout": amount(300 * UNIT, 0, 300 * UNIT),  # LLAMA per petition (the formula's maximum is 300)
            "hourly_cap": amount(3000 * UNIT, 0, 1_000_000 * UNIT),  # LLAMA minted by verdicts per hour
            "epoch_seconds": whole(3600, 1, 7 * 86400),  # how long one committed mood seed lasts
        },
        roles={"announce": _vars("petition", "grade", "votes", "payout"), "grade": _vars("petition")},
        lines=frozenset({"ack", "failed", "verdict"}),
        serves=(Serves("Petition", limits={"Text": ("petition_min", "petition_max")}), Serves("Quote", "world")),
        quote="petition", remembers=frozenset({"last_petition", "last_verdict"}),
    ),
    NpcKind("fed", actor=None, address=None, roles={"vote": _vars("petition")}, placed=False),
    NpcKind(
        "joker", actor="npcs.actors.services:JokerActor", address="npc:{id}",
        economy={"topic_max": whole(20, 1, 100)},
        roles={"joke": _vars("topic")}, lines=frozenset({"failed"}),
        serves=(Serves("Joke", limits={"Topic": (1, "topic_max")}), Serves("Quote", "world")),
        quote="joke", remembers=frozenset({"last_joke_topic"}),
    ),
    NpcKind(
        "oracle", actor="npcs.actors.oracle:OracleActor", address="oracle:{id}",
        economy={
            "min_bet": amount(1 * UNIT, 1, 1000 * UNIT),  # LLAMA
            "max_bet": amount(10 * UNIT, 1, 1000 * UNIT),
            "win_ratio": number(1.5, 1.0, 10.0),  # a win pays bet x win_ratio
            "endowment": amount(1000 * UNIT, 0, 1_000_000 * UNIT),  # LLAMA the Fed gives its pool, once
            "question_max": whole(200, 2, 500),
        },
        roles={"prophecy": _vars("question")}, lines=frozenset({"failed"}),
        serves=(Serves("Prophecy", limits={"Question": (2, "question_max")}),
                Serves("HighLow", limits={"Bet": ("min_bet", "max_bet")}), Serves("OracleInfo", "world"),
                Serves("Quote", "world")),
        quote="prophecy", remembers=frozenset({"last_question"}),
    ),
    NpcKind(
        "trader", actor="npcs.actors.trader:TraderActor", address="trader:{id}",
        economy={
            "max_order": amount(20 * UNIT, UNIT // 100, 10_000 * UNIT),  # LLAMA in one order
            "max_position": amount(200 * UNIT, 0, 1_000_000 * UNIT),  # LLAMA bought (or sold) beyond its start
            "orders_per_hour": whole(12, 1, 3600),
            "daily_loss": amount(20 * UNIT, 0, 1_000_000 * UNIT),  # wAR of value lost in a day: then it stops
            "band_pct": number(5.0, 0.1, 50.0),  # never buys above, or sells below, the last trade ± this %
            "start_price": amount(UNIT // 10, UNIT // 1000, 1000 * UNIT),  # wAR per LLAMA before any trade
            "window_s": number(60.0, 1.0, 3600.0),  # a player's lines count once per this many seconds
            "min_lines": whole(2, 1, 50),  # counted lines before it reads the mood
            "think_every_s": number(20.0, 1.0, 3600.0),  # at least this long between two readings
            "endowment": amount(500 * UNIT, 0, 1_000_000 * UNIT),  # LLAMA the Fed gives it, once
            "war_endowment": amount(100 * UNIT, 0, 1_000_000 * UNIT),  # wAR the operator mints it, once
        },
        roles={"mood": _vars("lines")}, lines=frozenset({"failed", "stopped"}),
        serves=(Serves("TraderInfo", "world"),), listens=True,
    ),
    NpcKind(
        "wanderer", actor="npcs.actors.services:WandererActor", address="npc:{id}",
        economy={
            "radius": whole(6, 1, 100),  # tiles from its placement it wanders
            "speed": number(1.5, 0.1, 10.0),  # tiles per second
            "idle_every_s": number(30.0, 1.0, 3600.0),  # seconds between idle lines while players are in the room
            "talk_cooldown_s": number(5.0, 0.0, 600.0),  # per player, between LLM answers
        },
        roles={"talk": _vars("text")}, lines=frozenset({"idle", "failed"}), remembers=frozenset({"last_said"}),
    ),
)}

GRADING_ROLES = frozenset({"vote", "grade"})  # their answer is a grade 0-5: a scored template's choices are grades
TEMPLATE_VARIABLES = frozenset().union(*(v for kind in KINDS.values() for v in kind.roles.values()))
