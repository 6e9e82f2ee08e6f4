"""Citizenship: who gets the starting allowance and may petition the King and trade on the market.

A world's `[citizenship] mode` (server/world/maps.py) decides: `open` — everyone who registers; `invite` — who
registers with (or later redeems) an invite code the operator issued (`llama-land admin invite`), each code once;
`approval` — who registers is in the operator's queue (`llama-land admin citizens`) until approved (`admin
approve NAME`). Non-citizens walk and chat. Becoming a citizen is logged in the accounts' log and grants the
starting allowance once (the ledger grants each account one). New accounts per client address per hour are
limited (`new_accounts_per_hour`; 0: no limit), counted in memory.

The handlers here are part of the accounts actor (server/economy/accounts.py), which owns the log they write.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections import deque
from types import SimpleNamespace
from typing import Any, Callable

from server.core.actors import Message
from server.core.protocol import Code
from server.economy.ledger import change

log = logging.getLogger("llama_land.citizens")
HOUR_MS = 3_600_000
# What the accounts read of the world (its [citizenship] and starting_war): an open world, when none is given.
OPEN_WORLD = SimpleNamespace(citizenship=SimpleNamespace(mode="open", new_accounts_per_hour=0), starting_war=0)


def code_hash(code: str) -> str:
    return hashlib.sha256(code.strip().encode()).hexdigest()


def how_to_join(mode: str) -> str:
    """What a non-citizen is told (NOT_A_CITIZEN) about becoming one."""
    if mode == "invite":
        return "only citizens may do that: ask the operator for an invite code and send BecomeCitizen with it"
    return "only citizens may do that: send BecomeCitizen to apply; the operator approves applications"


def within_limit(recent: dict[str, deque], address: str, t: int, limit: int) -> bool:
    """Count a new account from address at t if fewer than limit were made in the hour before (limit 0: always)."""
    if limit <= 0 or not address:
        return True
    times = recent.setdefault(address, deque())
    while times and times[0] <= t - HOUR_MS:
        times.popleft()
    if len(times) >= limit:
        return False
    times.append(t)
    return True


class Citizens:
    """The accounts actor's citizenship handlers (mixed into AccountsActor)."""

    bus: Any
    state: Any
    world: Callable[[], Any]  # the world now: its [citizenship] and [economy] starting_war
    record: Callable[..., Any]
    reply: Callable[..., None]
    refuse: Callable[..., None]
    tasks: set

    @property
    def mode(self) -> str:
        return self.world().citizenship.mode

    def is_citizen(self, key: str) -> bool:
        return key in self.state.accounts and (self.mode == "open" or key in self.state.citizens)

    def citizenship_on_register(self, msg: Message, key: str) -> dict[str, Any] | None:
        """The Register entry's citizenship fields, or None after refusing (a wrong invite code)."""
        if self.mode == "open":
            return {"Citizen": "open"}
        code = msg.get("Invite")
        if self.mode == "invite" and code:
            h = code_hash(code)
            if self.state.invites.get(h, {"Used": "?"})["Used"] is not None:
                self.refuse(msg, Code.BAD_INVITE, "that invite code is unknown or was used already")
                return None
            return {"Citizen": "invite", "Invite": h}
        return {}

    async def became_citizen(self, key: str, t: int) -> None:
        """After a Citizen entry (or a citizen's Register): the starting allowance, once, off this handler."""
        amount, name = self.world().starting_war, self.state.accounts[key]["Name"]
        if amount <= 0:
            return

        async def grant() -> None:
            try:
                await change(self.bus, "wAR", {"Action": "Allowance", "To": name, "Amount": amount, "T": t})
            except (TimeoutError, LookupError):  # the next login asks again; the ledger grants it once
                log.warning("starting allowance for %s deferred: the ledger did not answer", name)

        task = asyncio.get_running_loop().create_task(grant())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def on_is_citizen(self, msg: Message) -> None:
        key = msg["Player"].lower()
        self.reply(msg, "Citizenship", Mode=self.mode, Citizen=self.is_citizen(key),
                   Pending=key in self.state.applicants, How=how_to_join(self.mode))

    async def on_become_citizen(self, msg: Message) -> None:
        """A player's BecomeCitizen: redeem an invite code, or apply (approval worlds)."""
        key, t = msg["Player"].lower(), msg["T"]
        if self.is_citizen(key):
            self.reply(msg, "Citizenship", Mode=self.mode, Citizen=True, Pending=False)
            return
        if self.mode == "invite":
            code = msg.get("Invite")
            h = code_hash(code) if code else ""
            if not code or self.state.invites.get(h, {"Used": "?"})["Used"] is not None:
                self.refuse(msg, Code.BAD_INVITE, "that invite code is unknown or was used already" if code else
                            "this world's citizens are invited: send BecomeCitizen with an invite code")
                return
            await self.record({"Action": "Citizen", "Player": key, "Via": "invite", "Invite": h, "T": t})
            await self.became_citizen(key, t)
            self.reply(msg, "Citizenship", Mode=self.mode, Citizen=True, Pending=False)
            return
        if key not in self.state.applicants:
            await self.record({"Action": "Apply", "Player": key, "T": t})
        self.reply(msg, "Citizenship", Mode=self.mode, Citizen=False, Pending=True)

    async def on_make_invites(self, msg: Message) -> None:
        codes = [secrets.token_urlsafe(9) for _ in range(msg["Count"])]
        await self.record({"Action": "Invites", "Hashes": [code_hash(c) for c in codes], "T": msg["T"]})
        self.reply(msg, "Invites", Codes=codes)

    async def on_approve(self, msg: Message) -> None:
        key, t = msg["Player"].lower(), msg["T"]
        if key not in self.state.accounts:
            self.refuse(msg, Code.UNKNOWN_PLAYER, f"no account {msg['Player']!r}")
            return
        if not self.is_citizen(key):
            await self.record({"Action": "Citizen", "Player": key, "Via": "approval", "T": t})
            await self.became_citizen(key, t)
        self.reply(msg, "Approved", Name=self.state.accounts[key]["Name"])

    def on_citizens(self, msg: Message) -> None:
        s = self.state
        self.reply(msg, "Citizens", Mode=self.mode, Citizens=len(s.citizens),
                   Applicants=[[s.accounts[k]["Name"], t] for k, t in sorted(s.applicants.items(), key=lambda i: i[1])],
                   InvitesUnused=sum(1 for i in s.invites.values() if i["Used"] is None))
