"""Accounts: names, scrypt password hashes, and the actor that owns them.

Registration is logged (the log is the truth for membership); checking a password is a read. Hashing runs in a
thread so a login never blocks the event loop. The hash string carries its own parameters, so an operator can
raise the cost later without breaking existing accounts.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets

from server.core.actors import Actor, Bus, Message, action
from server.core.db import Account
from server.core.log import MessageLog
from server.core.protocol import Code
from server.world.rules import Refused
from server.core.state import AccountsState

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{2,19}$")
# Names NPCs speak under, and words that would let a player pass as the server.
RESERVED = frozenset({"king", "llamaking", "joker", "oracle", "fed", "llamafed", "banker", "system", "server", "admin",
                      "herd", "operator", "allowance"})
MIN_PASSWORD = 6
DEFAULT_SCRYPT_N = 2**14


def check_name(name: str, npc_names: frozenset[str] | set[str] = frozenset()) -> None:
    """npc_names: the world's NPC ids and names (lower case, no spaces): nobody may pass as an NPC."""
    if not NAME_RE.match(name):
        raise Refused(Code.BAD_NAME, "a name is 3-20 letters, digits, _ or -, starting with a letter")
    if name.lower() in RESERVED or name.lower() in npc_names:
        raise Refused(Code.BAD_NAME, f"{name!r} is reserved")


def hash_password(password: str, n: int = DEFAULT_SCRYPT_N) -> str:
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=n, r=8, p=1, maxmem=2**27, dklen=32)
    return f"scrypt${n}$8$1${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), maxmem=2**27, dklen=32
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(key))


class AccountsActor(Actor):
    """Owns the account list. Register (logged) and Lookup (a read), both answered to ReplyTo."""

    def __init__(self, bus: Bus, log: MessageLog):
        super().__init__("accounts")
        self.bus = bus
        self.log = log
        self.state: AccountsState = log.load(self.id)  # type: ignore[assignment]
        self.handle("register", action("Register"), self.on_register)
        self.handle("lookup", action("Lookup"), self.on_lookup)

    async def on_register(self, msg: Message) -> None:
        key = msg["Player"].lower()
        if key in self.state.accounts:
            self.bus.send(msg["ReplyTo"], {"Action": "Error", "Code": Code.NAME_TAKEN, "Message": "that name is taken"})
            return
        entry = {"Action": "Register", "Player": key, "Name": msg["Player"], "Hash": msg["Hash"], "T": msg["T"]}
        await self.log.append(self.id, entry, [Account(name=msg["Player"], pw_hash=msg["Hash"], created_ms=msg["T"])])
        self.state.apply(entry)
        if self.log.snapshot_due(self.id):
            self.log.snapshot(self.id, self.state)
        self.bus.send(msg["ReplyTo"], {"Action": "Registered", "Name": msg["Player"]})

    def on_lookup(self, msg: Message) -> None:
        found = self.state.accounts.get(msg["Player"].lower())
        self.bus.send(msg["ReplyTo"], {"Action": "Found", "Account": found})


async def hash_off_loop(password: str, n: int) -> str:
    return await asyncio.to_thread(hash_password, password, n)


async def verify_off_loop(password: str, stored: str) -> bool:
    return await asyncio.to_thread(verify_password, password, stored)
