"""Authentication: Register, Login and Resume, each ending with the name the connection is now playing as.

Passwords are hashed and checked off the event loop (scrypt in a thread); an unknown name costs the same work and
gets the same answer as a wrong password, so names cannot be probed by timing or by message.
"""

from __future__ import annotations

from typing import Any

from server.core.actors import Message
from server.core.clock import now_ms
from server.core.protocol import Code, Refused
from server.economy.accounts import MIN_PASSWORD, check_name, hash_off_loop, verify_off_loop
from server.net.host import WorldHost


async def register(host: WorldHost, msg: Message, scrypt_n: int, address: str = "") -> tuple[str, bool]:
    """The new account's name and whether it is a citizen (docs/protocol.md, Citizenship)."""
    name, password = msg["Name"], msg["Password"]
    check_name(name, host.npc_names)
    if len(password) < MIN_PASSWORD:
        raise Refused(Code.WEAK_PASSWORD, f"a password needs at least {MIN_PASSWORD} characters")
    pw_hash = await hash_off_loop(password, scrypt_n)
    ask = {"Action": "Register", "Player": name, "Hash": pw_hash, "Address": address, "T": now_ms()}
    if msg.get("Invite"):
        ask["Invite"] = msg["Invite"]
    reply = await host.bus.call("accounts", ask)
    if reply["Action"] == "Error":
        raise Refused(reply["Code"], reply["Message"])
    return name, bool(reply.get("Citizen"))


async def login(host: WorldHost, msg: Message) -> tuple[str, bool]:
    reply = await host.bus.call("accounts", {"Action": "Lookup", "Player": msg["Name"]})
    account = reply["Account"]
    stored = account["Hash"] if account else host.dummy_hash
    ok = await verify_off_loop(msg["Password"], stored)
    if not (ok and account):
        raise Refused(Code.BAD_CREDENTIALS, "wrong name or password")
    return account["Name"], bool(reply.get("Citizen"))


async def citizenship(host: WorldHost, name: str) -> Message:
    """{Mode, Citizen, Pending, How} of a player, from the world's accounts."""
    return await host.bus.call("accounts", {"Action": "IsCitizen", "Player": name})


async def resume(host: WorldHost, msg: Message) -> tuple[str, dict[str, Any] | None]:
    """The name a Resume plays as, and where a hand-off ticket places them (None: where they were).

    A token names the session it was issued for, by any process of the world; it ends at logout, at the end of
    the grace period, and when a newer login of the same player replaces it (that connection is told `Kicked`).
    A ticket is the one-use pass of a hand-off (an `Moved` event), valid for seconds."""
    token, ticket = msg.get("Token"), msg.get("Ticket")
    if (token is None) == (ticket is None):
        raise Refused(Code.BAD_REQUEST, "Resume takes a Token or a Ticket (exactly one)")
    if ticket is not None:
        reply = await host.bus.call("accounts", {"Action": "Redeem", "Ticket": ticket, "T": now_ms()})
        if reply["Action"] == "Error":
            raise Refused(reply["Code"], reply["Message"])
        return reply["Player"], {k: reply[k] for k in ("Room", "X", "Y", "Via") if k in reply}
    reply = await host.bus.call("accounts", {"Action": "Resume", "Token": token, "T": now_ms()})
    if reply["Action"] == "Error":
        raise Refused(reply["Code"], reply["Message"])
    return reply["Name"], None


async def open_session(host: WorldHost, name: str) -> str:
    """A new session token for name (the world's accounts keep one per player: the older one is void now)."""
    reply = await host.bus.call("accounts", {"Action": "OpenSession", "Player": name, "T": now_ms()})
    return reply["Token"]


def end_session(host: WorldHost, token: str) -> None:
    if token:
        host.bus.send("accounts", {"Action": "EndSession", "Token": token, "T": now_ms()})
