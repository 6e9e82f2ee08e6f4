"""ProgramActor: an NPC that an outside program plays, over a websocket of its own (docs/npcs-sdk.md).

The operator's key placed it (server/economy/npc_keys.py); its program declared what it offers (server/core/
forms.py). The actor lives at `npc:<id>` while the program is connected, and is the program's only way into the
world: the room forwards it the Use and AskPrice requests of players standing near; it checks the fields, holds
the price in escrow, passes the request on, and settles when the program answers — or refunds, on an error, a
timeout, or the program going away. What the program may do itself is here too, and nothing more: speak in its
room, whisper to a player who asked it something; its money (Pay, Funds, Outcomes) is in program_purse.py.

Use        -> fields checked, price held (`program:<id>:<request>` escrow), NpcRequest to the program
AskPrice   -> a quoted action's price, asked of the program (NpcQuoteRequest), told to the player
Price      -> the program's quote: a Use goes on (held at that price, if within the player's MaxPrice)
Answer     -> settled to the NPC's account (NpcAnswer to the player), or refunded on an Error (NpcFailed)
Expire     -> no answer in time: refunded, NpcFailed NPC_TIMEOUT, the program told NpcCancelled
Gone       -> the connection ended: every open request refunded (NPC_GONE), the NPC leaves its room
KeyVoid    -> the operator revoked (or re-issued) its key: the program is disconnected
Status     -> for the operator's list: connected since, declared, open requests, answered
Pay, Funds, Outcomes -> its own money (program_purse.py)
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from server.core.actors import Actor, Bus, Message, action, player_id
from server.core.clock import now_ms
from server.core.forms import FormError, check_declarations, check_fields
from server.core.protocol import Code
from server.economy.ledger import change
from server.world.maps import ProgramLimits
from server.world.rules import npc_line

from npcs.actors.program_purse import ProgramPurse, escrow_name

log = logging.getLogger("llama_land.programs")


class ProgramLink(Protocol):
    """The program's connection, as the actor sees it."""

    def send(self, msg: Message) -> None: ...

    def close(self, code: int, reason: str) -> None: ...


@dataclass
class Pending:
    rid: str
    msg: Message  # the player's Use or AskPrice, as the room forwarded it
    decl: dict[str, Any]
    fields: dict[str, Any]
    stage: str  # "ask" (AskPrice), "quote" (a Use waiting for its price), "run" (with the program)
    amount: int = 0  # held in escrow
    timer: Any = field(default=None, repr=False)

    @property
    def player(self) -> str:
        return self.msg["Player"]

    @property
    def token(self) -> str:
        return self.decl["Price"].get("Token", "wAR")


class ProgramActor(ProgramPurse, Actor):
    def __init__(self, bus: Bus, registration: dict[str, Any], link: ProgramLink,
                 limits: ProgramLimits = ProgramLimits(), reach: int = 3, chat_max: Callable[[], int] = lambda: 200):
        super().__init__(f"npc:{registration['Id']}")
        self.bus, self.reg, self.link, self.limits, self.reach = bus, registration, link, limits, reach
        self.name, self.room = registration["Name"], f"room:{registration['Room']}"
        self.chat_max = chat_max
        self.actions: dict[str, dict[str, Any]] = {}
        self.pending: dict[str, Pending] = {}
        self.askers: dict[str, int] = {}  # lower-cased player -> when they last asked (whom it may Tell)
        self.present = False  # in its room (after its first Declare)
        self.since = now_ms()  # when its program connected
        self.answered = 0  # requests answered (settled or free) on this connection
        self.gone = False
        self.done = asyncio.Event()  # set once Gone is handled: every request refunded, the NPC out of its room
        # Ledger calls run in tasks of their own, so one request's hold or settle never holds up the next request
        # (every change to `pending` still happens here, between awaits).
        self.tasks: set[asyncio.Task] = set()
        for name, fn in [("Use", self.on_use), ("AskPrice", self.on_ask_price), ("Declare", self.on_declare),
                         ("Price", self.on_price), ("Answer", self.on_answer), ("Announce", self.on_announce),
                         ("Tell", self.on_tell), ("Pay", self.on_pay), ("Funds", self.on_funds),
                         ("Outcomes", self.on_outcomes), ("Status", self.on_status),
                         ("Expire", self.on_expire), ("Gone", self.on_gone), ("KeyVoid", self.on_key_void)]:
            self.handle(name.lower(), action(name), fn)

    def describe(self) -> dict[str, Any]:
        """The NPC as RoomJoined.Npcs and NpcJoined list it: its declared actions are its form."""
        r = self.reg
        return {"Id": r["Id"], "Name": self.name, "Kind": "program", "Eid": r["Eid"], "X": r["X"], "Y": r["Y"],
                "Reach": self.reach, "Limits": {}, "Actions": list(self.actions.values())}

    def on_handler_error(self, msg: Message) -> None:
        """A bug here, not the asker's fault: say so to whoever asked (the player, or the program)."""
        if msg.get("Player") and msg.get("Action") in ("Use", "AskPrice"):
            self.refuse(msg, Code.INTERNAL, "the server failed on this request; nothing was taken")
        elif "Player" not in msg and msg.get("Id") is not None:
            self.refuse_program(msg, Code.INTERNAL, "the server failed on this request")

    # --- to the program ------------------------------------------------------------------------------------------

    def to_program(self, msg: Message, **fields: Any) -> None:
        self.link.send({"Action": f"{msg['Action']}-Response", "Ref": msg.get("Id"), **fields})

    def refuse_program(self, msg: Message, code: str, message: str) -> None:
        self.link.send({"Action": "Error", "Code": code, "Message": message, "Ref": msg.get("Id")})

    # --- players' requests (forwarded by the room, stamped with Player and T) --------------------------------------

    def checked(self, msg: Message) -> Pending | None:
        decl = self.actions.get(msg["Name"])
        if decl is None:
            self.refuse(msg, Code.UNKNOWN_ACTION, f"{self.name} has no action {msg['Name']!r} "
                                                  f"(it has: {', '.join(self.actions) or 'none yet'})")
            return None
        try:
            fields = check_fields(decl, msg.get("Fields"))
        except FormError as exc:
            self.refuse(msg, Code.BAD_FIELDS, f"{decl['Title']}: {exc}")
            return None
        if len(self.pending) >= self.limits.max_pending:
            self.refuse(msg, Code.BUSY, f"{self.name} has {len(self.pending)} requests open; try again in a moment")
            return None
        self.askers[msg["Player"].lower()] = msg["T"]
        return Pending(uuid.uuid4().hex[:16], msg, decl, fields, "run")

    async def on_use(self, msg: Message) -> None:
        p = self.checked(msg)
        if p is None:
            return
        price, most = p.decl["Price"], msg.get("MaxPrice")
        if price["Kind"] == "quoted":
            if most is None:
                self.refuse(msg, Code.BAD_REQUEST, f"{p.decl['Title']} is priced per request: send MaxPrice (AskPrice "
                                                   f"tells the price)")
                return
            self.wait_for_program(p, "quote", "NpcQuoteRequest")
            return
        amount = price.get("Amount", 0)
        if most is not None and amount > most:
            self.refuse(msg, Code.PRICE_ABOVE_MAX, f"{p.decl['Title']} costs {amount}, above your MaxPrice {most}",
                        Price=amount)
            return
        self.begin(p, amount)

    def on_ask_price(self, msg: Message) -> None:
        p = self.checked(msg)
        if p is None:
            return
        price = p.decl["Price"]
        if price["Kind"] != "quoted":
            self.answer(msg, Npc=self.reg["Id"], Name=p.decl["Name"], Price=price.get("Amount", 0),
                        Token=price.get("Token"))
            return
        self.wait_for_program(p, "ask", "NpcQuoteRequest")

    def wait_for_program(self, p: Pending, stage: str, event: str) -> None:
        p.stage = stage
        self.pending[p.rid] = p
        loop = asyncio.get_running_loop()
        p.timer = loop.call_later(self.limits.answer_timeout_s, self.expire, p.rid)
        self.link.send({"Action": event, "RequestId": p.rid, "Player": p.player, "Name": p.decl["Name"],
                        "Fields": p.fields, "Price": p.amount, "Token": p.token if p.amount else None,
                        "T": p.msg["T"]})

    def expire(self, rid: str) -> None:
        try:
            self.deliver({"Action": "Expire", "RequestId": rid, "T": now_ms()})
        except Exception:  # a full mailbox: the next Gone or restart refunds it
            log.warning("%s: could not expire request %s", self.id, rid)

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def begin(self, p: Pending, amount: int) -> None:
        """The request counts as open from now on (the pending bound), while its price is being held."""
        p.stage = "hold"
        self.pending[p.rid] = p
        self.spawn(self.run(p, amount))

    async def run(self, p: Pending, amount: int) -> None:
        """Hold the price (if any), then pass the request on to the program."""
        if amount:
            held = await self.ledger(p, {"Action": "Hold", "Escrow": self.escrow(p), "From": p.player,
                                         "Amount": amount, "For": self.name, "T": p.msg["T"]})
            if held is None or held["Action"] == "Error":
                self.pending.pop(p.rid, None)
                if held is not None:
                    self.refuse(p.msg, held["Code"], held["Message"])
                return
            p.amount = amount
        if self.gone:  # it left while the price was being held
            self.pending.pop(p.rid, None)
            await self.fail(p, Code.NPC_GONE, f"{self.name} has left the world")
            return
        self.answer(p.msg, Npc=self.reg["Id"], Name=p.decl["Name"], RequestId=p.rid, Price=amount,
                    Token=p.token if amount else None)
        self.wait_for_program(p, "run", "NpcRequest")

    def escrow(self, p: Pending) -> str:
        return escrow_name(self.reg["Id"], p.rid)

    async def ledger(self, p: Pending, ask: Message) -> Message | None:
        try:
            return await change(self.bus, p.token, ask)
        except (TimeoutError, LookupError):
            self.refuse(p.msg, Code.UNAVAILABLE, "the ledger did not answer; nothing was taken, try again")
            return None

    # --- the program's requests (stamped with T by its connection) -----------------------------------------------

    async def on_declare(self, msg: Message) -> None:
        try:
            actions = check_declarations(msg["Actions"])
        except FormError as exc:
            self.refuse_program(msg, Code.BAD_DECLARATION, str(exc))
            return
        self.actions = {a["Name"]: a for a in actions}
        self.present = True
        self.bus.send(self.room, {"Action": "NpcArrive", "Npc": self.describe(), "T": msg["T"]})
        self.to_program(msg, Actions=actions, Room=self.reg["Room"], X=self.reg["X"], Y=self.reg["Y"])

    def open_request(self, msg: Message, stages: tuple[str, ...]) -> Pending | None:
        p = self.pending.get(msg["RequestId"])
        if p is None or p.stage not in stages:
            self.refuse_program(msg, Code.UNKNOWN_REQUEST, f"no open request {msg['RequestId']!r} for that: it was "
                                                           f"answered already, or timed out and was refunded")
            return None
        del self.pending[p.rid]
        if p.timer is not None:
            p.timer.cancel()
        return p

    async def on_price(self, msg: Message) -> None:
        p = self.open_request(msg, ("ask", "quote"))
        if p is None:
            return
        most, amount = p.decl["Price"]["Max"], msg["Amount"]
        if not 1 <= amount <= most:
            self.refuse_program(msg, Code.BAD_REQUEST, f"a price for {p.decl['Name']} is 1 to {most} base units")
            self.refuse(p.msg, Code.NPC_ERROR, f"{self.name} could not price that; try again")
            return
        self.to_program(msg, RequestId=p.rid)
        if p.stage == "ask":
            self.answer(p.msg, Npc=self.reg["Id"], Name=p.decl["Name"], Price=amount, Token=p.token)
        elif amount > p.msg["MaxPrice"]:
            self.refuse(p.msg, Code.PRICE_ABOVE_MAX, f"{p.decl['Title']} costs {amount} now, above your MaxPrice "
                                                     f"{p.msg['MaxPrice']}", Price=amount)
        else:
            self.begin(p, amount)

    async def on_answer(self, msg: Message) -> None:
        p = self.open_request(msg, ("run", "ask", "quote") if msg.get("Error") else ("run",))
        if p is not None:
            self.spawn(self.finish(p, msg))

    async def finish(self, p: Pending, msg: Message) -> None:
        """Settle (or, on an Error, refund) an answered request, then tell the player and the program."""
        if msg.get("Error"):
            reason = " ".join(str(msg["Error"]).split())[:200]
            await self.fail(p, Code.NPC_ERROR, f"{self.name}: {reason}")
            self.to_program(msg, RequestId=p.rid, Paid=0, Refunded=p.amount)
            return
        if p.amount:
            settled = await self.close_escrow(p, {"Action": "Settle", "To": self.name})
            if not settled:
                self.refuse_program(msg, Code.UNAVAILABLE, "the ledger did not settle this request; it will be "
                                                           "refunded")
                return
        text = " ".join(str(msg.get("Text") or "").split())[:self.limits.max_text]
        self.answered += 1
        self.bus.send(player_id(p.player), {"Action": "NpcAnswer", "Npc": self.reg["Id"], "RequestId": p.rid,
                                            "Name": p.decl["Name"], "Text": text, "Paid": p.amount,
                                            "Token": p.token if p.amount else None, "Data": msg.get("Data") or {}})
        self.to_program(msg, RequestId=p.rid, Paid=p.amount)

    async def fail(self, p: Pending, code: str, message: str) -> None:
        """The request ends without the program's answer: its price back to the player, who is told why."""
        refunded = p.amount if p.amount and await self.close_escrow(p, {"Action": "Refund", "Reason": code}) else 0
        if p.stage == "run":
            self.bus.send(player_id(p.player), {"Action": "NpcFailed", "Npc": self.reg["Id"], "RequestId": p.rid,
                                                "Code": code, "Message": message, "Refunded": refunded})
        else:  # still being priced: the player's Use or AskPrice is answered with the error
            self.refuse(p.msg, code, message)

    async def close_escrow(self, p: Pending, ask: Message) -> bool:
        try:
            done = await change(self.bus, p.token, {**ask, "Escrow": self.escrow(p), "T": now_ms()})
        except (TimeoutError, LookupError):  # left open: the next start of its room's process refunds it
            log.warning("%s: escrow %s not closed: the ledger did not answer", self.id, self.escrow(p))
            return False
        return done["Action"] != "Error"

    async def on_announce(self, msg: Message) -> None:
        text = npc_line(msg["Text"], self.chat_max())
        if not self.present or not text:
            self.refuse_program(msg, Code.CHAT_EMPTY if self.present else Code.BAD_REQUEST,
                                "say something" if self.present else "Declare your actions first: then you are in "
                                                                     "your room")
            return
        self.bus.send(self.room, {"Action": "NpcSay", "Npc": self.reg["Id"], "Text": text, "Scope": "room",
                                  "T": msg["T"]})
        self.to_program(msg)

    async def on_tell(self, msg: Message) -> None:
        asked, window = self.askers.get(msg["To"].lower()), self.limits.tell_window_minutes
        if asked is None or msg["T"] - asked > window * 60_000:
            self.refuse_program(msg, Code.FORBIDDEN, f"{msg['To']!r} has not asked {self.name} anything in the last "
                                                     f"{window} minutes: an NPC whispers only to whoever asked it")
            return
        found = await self.bus.call("accounts", {"Action": "Lookup", "Player": msg["To"]})
        text = npc_line(msg["Text"], self.chat_max())
        if not text:
            self.refuse_program(msg, Code.CHAT_EMPTY, "say something")
            return
        to = found["Account"]["Name"]
        self.bus.send(self.room, {"Action": "NpcSay", "Npc": self.reg["Id"], "Text": text, "Scope": "whisper",
                                  "To": to, "T": msg["T"]})  # the room logs it, as it logs players' whispers
        self.to_program(msg, To=to)

    # --- endings -------------------------------------------------------------------------------------------------

    async def on_expire(self, msg: Message) -> None:
        p = self.pending.get(msg["RequestId"])
        if p is None or p.stage == "hold":
            return
        del self.pending[p.rid]
        self.link.send({"Action": "NpcCancelled", "RequestId": p.rid, "Reason": "timeout", "T": msg["T"]})
        self.spawn(self.fail(p, Code.NPC_TIMEOUT, f"{self.name} did not answer within "
                                                  f"{self.limits.answer_timeout_s:g} s; nothing was taken"))

    async def on_gone(self, msg: Message) -> None:
        self.gone = True
        for p in [p for p in self.pending.values() if p.stage != "hold"]:  # a hold in flight fails by itself
            del self.pending[p.rid]
            if p.timer is not None:
                p.timer.cancel()
            self.spawn(self.fail(p, Code.NPC_GONE, f"{self.name} has left the world; nothing was taken"))
        while self.tasks:  # every hold, settle and refund under way finishes before the NPC is gone
            await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.present:
            self.bus.send(self.room, {"Action": "NpcDepart", "Npc": self.reg["Id"], "T": msg["T"]})
            self.present = False
        self.done.set()

    def on_status(self, msg: Message) -> None:
        """For the operator's `admin npc list`: this NPC's program is connected (the actor lives only while it is)."""
        self.reply(msg, "Status-Done", Since=self.since, Declared=self.present, Actions=list(self.actions),
                   Pending=len(self.pending), Answered=self.answered)

    def on_key_void(self, msg: Message) -> None:
        self.link.close(4003, "NPC key revoked by the operator")

