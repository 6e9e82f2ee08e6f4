"""Logged actor state as pure reducers: `apply(message)` is the only way it changes.

The live server and `llama-land replay` run the same reducers over the same log entries, so their state
digests must agree. Nothing here reads a clock or a socket; time comes from each message's `T`.
Soft state that is not logged (positions between checkpoints) lives in the room simulation, not here.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

import msgpack


def canonical(obj: Any) -> Any:
    """Sort map keys recursively so equal states always pack to equal bytes."""
    if isinstance(obj, dict):
        return {k: canonical(obj[k]) for k in sorted(obj)}
    if isinstance(obj, (list, tuple)):
        return [canonical(v) for v in obj]
    return obj


def digest(obj: Any) -> str:
    return hashlib.sha256(msgpack.packb(canonical(obj), use_bin_type=True)).hexdigest()


class ActorState:
    kind: ClassVar[str]

    def apply(self, msg: dict[str, Any]) -> None:
        getattr(self, "on_" + msg["Action"])(msg)

    def to_data(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> "ActorState":
        state = cls()
        state.__dict__.update(data)
        return state

    def digest(self) -> str:
        return digest(self.to_data())


class AccountsState(ActorState):
    """Who exists. Passwords are only ever stored as scrypt hashes."""

    kind = "accounts"

    def __init__(self) -> None:
        self.accounts: dict[str, dict[str, Any]] = {}

    def on_Register(self, msg: dict[str, Any]) -> None:
        # Keyed by the lower-cased name so "Alice" and "alice" can never both exist.
        self.accounts[msg["Player"]] = {"Name": msg["Name"], "Hash": msg["Hash"], "Created": msg["T"]}


class RoomState(ActorState):
    """Membership and chat of one room, exactly as the log tells it."""

    kind = "room"

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}
        self.members: dict[str, int] = {}  # name -> entity id in this room
        self.next_eid = 1
        self.chat_seq = 0
        self.history: list[list[Any]] = []  # last N room-wide lines: [seq, author, text, t]
        self.counts = {"room": 0, "near": 0, "whisper": 0, "joins": 0, "leaves": 0}

    def on_Configure(self, msg: dict[str, Any]) -> None:
        self.config = {"HistoryLen": msg["HistoryLen"], "MapSha": msg["MapSha"]}
        self.history = self.history[-msg["HistoryLen"] :] if msg["HistoryLen"] else []

    def on_Join(self, msg: dict[str, Any]) -> None:
        self.members[msg["Player"]] = self.next_eid
        self.next_eid += 1
        self.counts["joins"] += 1

    def on_Leave(self, msg: dict[str, Any]) -> None:
        if self.members.pop(msg["Player"], None) is not None:
            self.counts["leaves"] += 1

    def on_Chat(self, msg: dict[str, Any]) -> None:
        self.chat_seq += 1
        self.counts[msg["Scope"]] += 1
        if msg["Scope"] == "room":
            line = [self.chat_seq, msg["Player"], msg["Text"], msg["T"]]
            self.history.append(line + [msg["Npc"]] if msg.get("Npc") else line)  # an NPC's line says which NPC
            del self.history[: max(0, len(self.history) - self.config.get("HistoryLen", 20))]

    def on_Whisper(self, msg: dict[str, Any]) -> None:
        self.chat_seq += 1
        self.counts["whisper"] += 1


def state_for(actor_id: str) -> ActorState:
    """A fresh state object for an actor id, by its prefix."""
    if actor_id == "accounts":
        return AccountsState()
    if actor_id.startswith("room:"):
        return RoomState()
    if actor_id.startswith("token:"):
        from server.economy.ledger import TokenState  # the ledger module builds on this one

        return TokenState()
    if actor_id == "fed":
        from npcs.actors.fed_state import FedState

        return FedState()
    if actor_id.startswith("oracle:"):
        from npcs.actors.oracle import OracleState

        return OracleState()
    raise KeyError(f"no logged state for actor {actor_id!r}")
