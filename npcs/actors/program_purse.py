"""What an NPC program may do with money: pay from its own account, read its balance, and ask what became of the
requests it answered (ProgramActor mixes this in; docs/protocol.md, NPC programs).

A program's escrows are named `program:<npc id>:<request id>`, so the ledgers' own record of each escrow — held,
settled, refunded — is the durable answer to "was I paid for that one?", whatever happened to the connection the
answer went out on.
"""

from __future__ import annotations

from typing import Any, Callable

from server.core.actors import Bus, Message
from server.core.protocol import Code
from server.core.units import TOKENS
from server.economy.ledger import change

ESCROW_PREFIX = "program:"
MAX_OUTCOMES = 64  # request ids one Outcomes may ask about


def escrow_name(npc: str, rid: str) -> str:
    return f"{ESCROW_PREFIX}{npc}:{rid}"


class ProgramPurse:
    """Pay, Funds and Outcomes for ProgramActor (which provides bus, reg, name, pending, to_program and
    refuse_program)."""

    bus: Bus
    reg: dict[str, Any]
    name: str
    pending: dict[str, Any]
    to_program: Any
    refuse_program: Any

    def token_of(self, msg: Message) -> str | None:
        token = msg.get("Token") or "wAR"
        if token not in TOKENS:
            self.refuse_program(msg, Code.BAD_REQUEST, f"Token must be one of {', '.join(TOKENS)}")
            return None
        return token

    async def on_pay(self, msg: Message) -> None:
        """A payment from this NPC's own account to a player (a prize, a refund of its own): the ledger checks the
        balance; nobody else's money is within its reach."""
        token = self.token_of(msg)
        if token is None:
            return
        found = await self.bus.call("accounts", {"Action": "Lookup", "Player": msg["To"]})
        if found["Account"] is None:
            self.refuse_program(msg, Code.UNKNOWN_ACCOUNT, f"no player {msg['To']!r}")
            return
        ask = {"Action": "Transfer", "From": self.name, "To": found["Account"]["Name"], "Amount": msg["Quantity"],
               "Tags": {"X-Npc": self.reg["Id"], **({"X-Memo": msg["Memo"]} if msg.get("Memo") else {})},
               "T": msg["T"]}
        if msg.get("Key"):  # the program's retry key: the same Key pays once
            ask["Ref"] = f"pay:{self.reg['Id']}:{msg['Key']}"
        try:
            done = await change(self.bus, token, ask)
        except (TimeoutError, LookupError):
            self.refuse_program(msg, Code.UNAVAILABLE, "the ledger did not answer; pay again with the same Key")
            return
        if done["Action"] == "Error":
            self.refuse_program(msg, done["Code"], done["Message"])
            return
        self.to_program(msg, To=ask["To"], Quantity=msg["Quantity"], Token=token, Balance=done["Balance"])

    async def on_funds(self, msg: Message) -> None:
        token = self.token_of(msg)
        if token is None:
            return
        got = await self.bus.call(f"token:{token}", {"Action": "Balance", "Account": self.name})
        self.to_program(msg, Token=token, Balance=got["Balance"])

    async def on_outcomes(self, msg: Message) -> None:
        """What became of paid requests this NPC answered — for a program whose connection dropped before it heard
        (the SDK asks after reconnecting, so on_paid counts every settle once). Per request id: "settled" (the
        price is this NPC's), "refunded", "held" (still open) or "unknown" (free, or not this NPC's)."""
        rids = msg["RequestIds"]
        if not 1 <= len(rids) <= MAX_OUTCOMES or not all(isinstance(r, str) and 0 < len(r) <= 64 for r in rids):
            self.refuse_program(msg, Code.BAD_REQUEST, f"RequestIds is a list of 1 to {MAX_OUTCOMES} request ids")
            return
        names = {escrow_name(self.reg["Id"], r): r for r in rids}
        outcomes = {r: "unknown" for r in rids}
        try:
            for token in TOKENS:
                got = await self.bus.call(f"token:{token}", {"Action": "Escrow-Status", "Escrows": list(names)})
                for escrow, status in got["Status"].items():
                    if status is not None:
                        outcomes[names[escrow]] = status
        except (TimeoutError, LookupError):
            self.refuse_program(msg, Code.UNAVAILABLE, "the ledger did not answer; ask again")
            return
        for rid in rids:
            if rid in self.pending and outcomes[rid] == "unknown":  # open here, its price not held yet
                outcomes[rid] = "held"
        self.to_program(msg, Outcomes=outcomes)


async def refund_stranded(bus: Bus, t: int, serves: Callable[[str], bool]) -> int:
    """At a start, for the NPCs whose rooms this process serves (`serves(room)`): every request escrow of theirs
    still open belongs to a connection that is gone — a program connects only to the process serving its room, and
    requests do not outlive their process — so its price goes back to the player. A process serving other rooms
    leaves their NPCs' open requests alone. Returns how many were refunded."""
    keys = await bus.call("accounts", {"Action": "NpcKeys"})
    count = 0
    for npc in keys["Npcs"]:
        if not serves(npc["Room"]):
            continue
        for token in TOKENS:
            held = (await change(bus, token, {"Action": "Escrows", "Prefix": escrow_name(npc["Id"], ""),
                                              "T": t}))["Escrows"]
            for escrow in held:
                await change(bus, token, {"Action": "Refund", "Escrow": escrow, "Reason": "restart", "T": t})
                count += 1
    return count
