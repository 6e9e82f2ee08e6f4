"""RoomState: a room's membership and chat, exactly as its log tells it (the reducer of `room:<name>`)."""

from __future__ import annotations

from typing import Any

from server.core.state import ActorState


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
