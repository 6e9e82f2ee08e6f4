"""NPC keys: the operator's permission for an outside program to join the world as an NPC.

`llama-land admin npc add NAME --room plaza --at X,Y` issues a key for one name, one room and one spot; the
program logs in with it (NpcLogin, docs/npcs-sdk.md). The accounts' log records each key's sha256 only, with the
name, the place and whether it was revoked; issuing a key again for the same name voids the older one. A key's
name is taken like a player's: nobody can register it, and it is the NPC's account on the ledgers (where it is
paid, and from which alone it pays).

The handlers here are part of the accounts actor (server/economy/accounts.py), which owns the log they write.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any, Callable

from server.core.actors import Message
from server.core.protocol import Code

PROGRAM_EID_BASE = 2_000_000  # NPC programs' entity ids: above the world's own NPCs (npcs/cast.py)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.strip().encode()).hexdigest()


def registration(name_key: str, entry: dict[str, Any]) -> dict[str, Any]:
    """A key's public facts (never its hash): what NpcLogin and `admin npc list` answer."""
    return {"Name": entry["Name"], "Id": name_key, "Room": entry["Room"], "X": entry["X"], "Y": entry["Y"],
            "Eid": PROGRAM_EID_BASE + entry["Index"], "Revoked": entry["Revoked"], "Created": entry["T"]}


class NpcKeys:
    """The accounts actor's NPC-key handlers (mixed into AccountsActor)."""

    state: Any
    record: Callable[..., Any]
    reply: Callable[..., None]
    refuse: Callable[..., None]

    async def on_add_npc_key(self, msg: Message) -> None:
        """A new key for Name at Room (X, Y): the admin request checked the name and the spot against the world."""
        key = msg["Name"].lower()
        if key in self.state.accounts:
            self.refuse(msg, Code.NAME_TAKEN, f"{msg['Name']!r} is a player's name")
            return
        secret = "npc-" + secrets.token_urlsafe(24)
        known = self.state.programs.get(key)
        index = known["Index"] if known else len(self.state.programs) + 1
        await self.record({"Action": "NpcKey", "Player": key, "Name": msg["Name"], "Room": msg["Room"],
                           "X": msg["X"], "Y": msg["Y"], "Hash": key_hash(secret), "Index": index, "T": msg["T"]})
        self.reply(msg, "NpcKey", Key=secret, Replaced=known is not None,
                   **registration(key, self.state.programs[key]))

    async def on_revoke_npc_key(self, msg: Message) -> None:
        key = msg["Name"].lower()
        if key not in self.state.programs:
            self.refuse(msg, Code.UNKNOWN_ACCOUNT, f"no NPC key for {msg['Name']!r}")
            return
        if not self.state.programs[key]["Revoked"]:
            await self.record({"Action": "NpcKeyRevoked", "Player": key, "T": msg["T"]})
        self.reply(msg, "NpcKeyRevoked", **registration(key, self.state.programs[key]))

    def on_npc_keys(self, msg: Message) -> None:
        self.reply(msg, "NpcKeys", Npcs=[registration(k, e) for k, e in sorted(self.state.programs.items())])

    def on_npc_key_login(self, msg: Message) -> None:
        """NpcLogin: the key must be the name's current one, not revoked. One answer for every failure."""
        entry = self.state.programs.get(msg["Name"].lower())
        given = key_hash(msg["Key"])
        if entry is None or entry["Revoked"] or not hmac.compare_digest(given, entry["Hash"]):
            self.refuse(msg, Code.BAD_CREDENTIALS, "unknown NPC name, or a wrong or revoked key")
            return
        self.reply(msg, "NpcKeyOk", **registration(msg["Name"].lower(), entry))
