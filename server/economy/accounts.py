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

from collections import deque
from typing import Any, Callable

from server.core.actors import Bus, Message, action
from server.core.db import Account
from server.core.log import MessageLog
from server.core.protocol import Code
from server.core.protocol import Refused
from server.core.logged import LoggedActor
from server.core.state import ActorState
from server.economy.citizens import OPEN_WORLD, Citizens, within_limit
from server.economy.npc_keys import NpcKeys

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{2,19}$")
# Names NPCs speak under, and words that would let a player pass as the server.
RESERVED = frozenset({"king", "llamaking", "joker", "oracle", "fed", "llamafed", "banker", "system", "server", "admin",
                      "herd", "operator", "allowance", "market"})
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


class AccountsState(ActorState):
    """Who exists, and who is a citizen. Passwords are only ever stored as scrypt hashes, invite codes as sha256."""

    kind = "accounts"

    def __init__(self) -> None:
        self.accounts: dict[str, dict[str, Any]] = {}
        self.citizens: dict[str, dict[str, Any]] = {}  # lower-cased name -> {"Via", "T"} (not in an open world)
        self.invites: dict[str, dict[str, Any]] = {}  # sha256 of a code -> {"T", "Used": lower-cased name | None}
        self.applicants: dict[str, int] = {}  # lower-cased name -> when they applied (approval worlds)
        self.programs: dict[str, dict[str, Any]] = {}  # lower-cased NPC name -> its key (sha256), place, Revoked

    def to_data(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        for key in ("citizens", "invites", "applicants", "programs"):  # a log from before citizenship keeps its digest
            if not data[key]:
                del data[key]
        return data

    def on_Register(self, msg: dict[str, Any]) -> None:
        # Keyed by the lower-cased name so "Alice" and "alice" can never both exist.
        self.accounts[msg["Player"]] = {"Name": msg["Name"], "Hash": msg["Hash"], "Created": msg["T"]}
        if msg.get("Citizen"):
            self.on_Citizen({"Player": msg["Player"], "Via": msg["Citizen"], "Invite": msg.get("Invite"),
                             "T": msg["T"]})

    def on_Invites(self, msg: dict[str, Any]) -> None:
        for code_hash in msg["Hashes"]:
            self.invites[code_hash] = {"T": msg["T"], "Used": None}

    def on_Apply(self, msg: dict[str, Any]) -> None:
        self.applicants[msg["Player"]] = msg["T"]

    def on_NpcKey(self, msg: dict[str, Any]) -> None:
        self.programs[msg["Player"]] = {k: msg[k] for k in ("Name", "Room", "X", "Y", "Hash", "Index", "T")}
        self.programs[msg["Player"]]["Revoked"] = False

    def on_NpcKeyRevoked(self, msg: dict[str, Any]) -> None:
        self.programs[msg["Player"]]["Revoked"] = True

    def on_Citizen(self, msg: dict[str, Any]) -> None:
        self.citizens[msg["Player"]] = {"Via": msg["Via"], "T": msg["T"]}
        self.applicants.pop(msg["Player"], None)
        if msg.get("Invite"):
            self.invites[msg["Invite"]]["Used"] = msg["Player"]


SESSION_MAX_MS = 12 * 3600 * 1000  # a session token whose process vanished without ending it: void after this
TICKET_MS = 10_000  # a hand-off ticket is for the reconnect that follows at once: seconds, one use


class AccountsActor(Citizens, NpcKeys, LoggedActor):
    """Owns the account list — Register (logged) and Lookup (a read) — and, in memory, the world's sessions:
    every session token (one per player: a newer one voids the older) and every hand-off ticket, so a token
    issued by one process resumes on any other, and a ticket moves a player to another process exactly once.
    All answered to ReplyTo; times come from the messages."""

    State = AccountsState
    state: AccountsState

    def __init__(self, bus: Bus, log: MessageLog, world: Callable[[], Any] | None = None):
        super().__init__("accounts", log)
        self.bus = bus
        self.world = world or (lambda: OPEN_WORLD)  # the world now (a reload may change its [citizenship])
        self.recent: dict[str, deque] = {}  # client address -> when its accounts of the last hour were made
        self.tasks: set[asyncio.Task] = set()
        for name, fn in [("IsCitizen", self.on_is_citizen), ("BecomeCitizen", self.on_become_citizen),
                         ("MakeInvites", self.on_make_invites), ("Approve", self.on_approve),
                         ("Citizens", self.on_citizens), ("AddNpcKey", self.on_add_npc_key),
                         ("RevokeNpcKey", self.on_revoke_npc_key), ("NpcKeys", self.on_npc_keys),
                         ("NpcKeyLogin", self.on_npc_key_login)]:
            self.handle(name.lower(), action(name), fn)
        self.handle("register", action("Register"), self.on_register)
        self.handle("lookup", action("Lookup"), self.on_lookup)
        self.handle("open-session", action("OpenSession"), self.on_open_session)
        self.handle("resume", action("Resume"), self.on_resume)
        self.handle("end-session", action("EndSession"), self.on_end_session)
        self.handle("ticket", action("Ticket"), self.on_ticket)
        self.handle("redeem", action("Redeem"), self.on_redeem)
        self.sessions: dict[str, tuple[str, int]] = {}  # token -> (name, issued at)
        self.latest: dict[str, str] = {}  # lower-cased name -> their current token
        self.tickets: dict[str, tuple[int, dict[str, Any]]] = {}  # ticket -> (expires at, where the player goes)

    async def on_register(self, msg: Message) -> None:
        key, t = msg["Player"].lower(), msg["T"]
        if key in self.state.accounts or key in self.state.programs:  # an NPC program's name is taken too
            self.refuse(msg, Code.NAME_TAKEN, "that name is taken")
            return
        limit = self.world().citizenship.new_accounts_per_hour
        if not within_limit(self.recent, msg.get("Address", ""), t, limit):
            self.refuse(msg, Code.TOO_MANY_ACCOUNTS, f"at most {limit} new accounts an hour from one address; "
                                                     f"try again later")
            return
        citizenship = self.citizenship_on_register(msg, key)
        if citizenship is None:
            return
        entry = {"Action": "Register", "Player": key, "Name": msg["Player"], "Hash": msg["Hash"], "T": t,
                 **citizenship}
        await self.record(entry, [Account(name=msg["Player"], pw_hash=msg["Hash"], created_ms=t)])
        if self.mode == "approval":  # in the operator's queue from the start
            await self.record({"Action": "Apply", "Player": key, "T": t})
        self.reply(msg, "Registered", Name=msg["Player"], Citizen=self.is_citizen(key))

    def on_lookup(self, msg: Message) -> None:
        key = msg["Player"].lower()
        self.reply(msg, "Found", Account=self.state.accounts.get(key), Citizen=self.is_citizen(key))


    # --- sessions and hand-off tickets (not logged: a restart ends every session, as a restart always did) -------

    def on_open_session(self, msg: Message) -> None:
        """A new token for a player who just logged in or resumed; their older one stops working."""
        name = msg["Player"]
        self.sessions.pop(self.latest.get(name.lower(), ""), None)
        token = secrets.token_urlsafe(24)
        self.sessions[token] = (name, msg["T"])
        self.latest[name.lower()] = token
        self.reply(msg, "Session", Token=token)

    def on_resume(self, msg: Message) -> None:
        found = self.sessions.get(msg["Token"])
        if found is None or msg["T"] - found[1] > SESSION_MAX_MS:
            self.refuse(msg, Code.SESSION_EXPIRED, "that session has ended; log in again")
            return
        self.reply(msg, "Resumed", Name=found[0])

    def on_end_session(self, msg: Message) -> None:
        """Logout or the end of a grace period; a token already replaced by a newer session is left alone."""
        name = self.sessions.get(msg["Token"], ("",))[0]
        if name and self.latest.get(name.lower()) == msg["Token"]:
            del self.sessions[msg["Token"]], self.latest[name.lower()]

    def on_ticket(self, msg: Message) -> None:
        """A one-use ticket that lets `msg["Player"]` enter `msg["Room"]` on the process that serves it."""
        t = msg["T"]
        for old in [k for k, (until, _) in self.tickets.items() if until < t]:
            del self.tickets[old]
        ticket = secrets.token_urlsafe(24)
        self.tickets[ticket] = (t + TICKET_MS, {k: msg[k] for k in ("Player", "Room", "X", "Y", "Via") if k in msg})
        self.reply(msg, "Ticket", Ticket=ticket, Expires=t + TICKET_MS)

    def on_redeem(self, msg: Message) -> None:
        until, place = self.tickets.pop(msg["Ticket"], (0, {}))
        if until < msg["T"]:
            self.refuse(msg, Code.BAD_TICKET, "that hand-off ticket was used already or has expired; log in again")
            return
        self.reply(msg, "Redeemed", **place)


async def hash_off_loop(password: str, n: int) -> str:
    return await asyncio.to_thread(hash_password, password, n)


async def verify_off_loop(password: str, stored: str) -> bool:
    return await asyncio.to_thread(verify_password, password, stored)
