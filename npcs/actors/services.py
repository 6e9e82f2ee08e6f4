"""NPCs that answer players through the herd: the shared NpcActor, the Joker and the wandering llamas.

An NPC actor lives at `npc:<id>` (the Oracle at `oracle:<id>`, because it keeps a log). Its room forwards it the
requests of players standing within reach, stamped with the player's name and the time; the NPC asks the herd for
a job — paid by the player at the herd's quote, or, for a wandering llama's small talk, paid by the world — and
says the answer in its room. A failed job is refunded by the herd; the NPC says so, in character.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from server.core.actors import Actor, Bus, Message, action

from npcs.actors.memory import NpcMemory
from npcs.kinds import KINDS
from npcs.npcfile import NpcSpec
from server.core.protocol import Code
from server.world.maps import Rules
from server.world.rules import npc_line

log = logging.getLogger("llama_land.npcs")


class NpcActor(Actor):
    requires_inference = True

    def __init__(self, bus: Bus, spec: NpcSpec, room: str, memory: NpcMemory, inference: bool, prefix: str = "npc",
                 chat_max: Callable[[], int] = lambda: Rules.chat_max, **base: Any):
        super().__init__(f"{prefix}:{spec.id}", **base)  # base: what a LoggedActor base takes (its log)
        self.bus, self.spec, self.room, self.memory, self.inference = bus, spec, room, memory, inference
        self.chat_max = chat_max  # the world's chat limit now (a reload may change it)
        self.jobs: dict[str, tuple[str, int, dict[str, Any]]] = {}  # request id -> (player, time asked, facts to remember)
        self.spoken = 0
        for name, fn in [("Quote", self.on_quote), ("Herd-Done", self.on_done), ("Herd-Failed", self.on_failed),
                         ("Herd-Queued", self.on_progress), ("Herd-Started", self.on_progress)]:
            self.handle(name.lower(), action(name), fn)

    @classmethod
    def build(cls, presence: Any, ctx: Any) -> "NpcActor":
        """The actor for a placed NPC (the composition root calls this for the class its kind names)."""
        return cls(ctx.bus, presence.spec, presence.room, ctx.memory, ctx.inference, chat_max=ctx.chat_max)

    # --- asking the herd ------------------------------------------------------------------------------------------

    def configure(self, spec: NpcSpec, room: str) -> None:
        """A changed NPC file or placement (`serve --reload`): the next request uses it."""
        self.spec, self.room = spec, room

    def values(self, role: str, player: str, **given: Any) -> dict[str, Any]:
        template = self.spec.templates[role]
        every = {"persona": self.spec.persona, "player": player, "memory": self.memory.recall(self.spec.id, player),
                 **given}
        return {k: every[k] for k in template.variables}

    async def quote(self, msg: Message, role: str, **given: Any) -> Message:
        template = self.spec.templates[role]
        return await self.bus.call("herd", {"Action": "Quote", "Template": template.id, "Requester": msg["Player"],
                                            "Values": self.values(role, msg["Player"], **given),
                                            "T": msg["T"]})

    async def paid_job(self, msg: Message, role: str, remember: dict[str, Any], **given: Any) -> None:
        """Quote, check the player's MaxFee, run with the fee in escrow; the player hears the request id now and
        the answer (NpcDone and the NPC's chat line) or the refund (NpcFailed) later."""
        if not self.available(msg):
            return
        quoted = await self.quote(msg, role, **given)
        if quoted["Action"] == "Error":
            self.refuse(msg, quoted["Code"], quoted["Message"])
            return
        if msg.get("MaxFee") is not None and quoted["Fee"] > msg["MaxFee"]:
            self.refuse(msg, Code.PRICE_ABOVE_MAX, f"the fee is now {quoted['Fee']} base units of wAR, above your "
                                                f"MaxFee {msg['MaxFee']}", Fee=quoted["Fee"])
            return
        rid = f"{self.id}:{msg['Player']}:{msg['T']}:{uuid.uuid4().hex[:8]}"  # unique: it keys the fee's escrow
        run = await self.bus.call("herd", {"Action": "Run", "QuoteId": quoted["QuoteId"], "Requester": msg["Player"],
                                           "Payer": msg["Player"], "RequestId": rid, "Notify": self.id, "T": msg["T"]})
        if run["Action"] == "Error":
            self.refuse(msg, run["Code"], run["Message"])
            return
        self.jobs[rid] = (msg["Player"], msg["T"], remember)
        self.answer(msg, RequestId=rid, Fee=run["Fee"], Position=run["Position"], Npc=self.spec.id)

    async def free_job(self, player: str, role: str, t: int, remember: dict[str, Any], **given: Any) -> bool:
        template = self.spec.templates[role]
        rid = f"{self.id}:{player}:{t}:{uuid.uuid4().hex[:8]}"
        accepted = await self.bus.call("herd", {"Action": "Submit", "Template": template.id,
                                                "Values": self.values(role, player, **given),
                                                "RequestId": rid, "Priority": 15,
                                                "Requester": self.id, "Notify": self.id, "T": t})
        if accepted["Action"] == "Error":
            log.info("%s could not answer %s: %s", self.id, player, accepted["Message"])
            return False
        self.jobs[rid] = (player, t, remember)
        return True

    def text_within_limits(self, msg: Message, field: str, code: str) -> str | None:
        """The request's text field with its spaces collapsed, if its length is within the limits this NPC's kind
        and file set (npcs/kinds.py; the same limits RoomJoined.Npcs tells clients); else refused."""
        text = " ".join(msg[field].split())
        lo, hi = KINDS[self.spec.kind].limits(self.spec.economy)[msg["Action"]][field]
        if lo <= len(text) <= hi:
            return text
        self.refuse(msg, code, f"a {field.lower()} is {lo}-{hi} characters, got {len(text)}")
        return None

    def available(self, msg: Message) -> bool:
        if not self.inference:
            self.refuse(msg, Code.UNAVAILABLE, f"{self.spec.name} needs inference, and this server runs without it")
        return self.inference

    # --- answers --------------------------------------------------------------------------------------------------

    async def on_quote(self, msg: Message) -> None:
        if not self.available(msg):
            return
        role = next(iter(self.spec.templates))
        quoted = await self.quote(msg, role, **self.quote_values(msg["Text"]))
        if quoted["Action"] == "Error":
            self.refuse(msg, quoted["Code"], quoted["Message"])
            return
        self.answer(msg, Npc=self.spec.id, Fee=quoted["Fee"], Token=quoted["Token"], ExpiresAt=quoted["ExpiresAt"])

    def quote_values(self, text: str) -> dict[str, Any]:
        return {}

    def on_done(self, msg: Message) -> None:
        job = self.jobs.pop(msg["RequestId"], None)
        if job is None:
            return
        player, t, remember = job
        text = npc_line(msg["Text"], self.chat_max()) or "…"  # the room's ChatLine carries the same text
        self.say(text, t, scope=self.scope)
        self.bus.send(f"player:{player}", {"Action": "NpcDone", "Npc": self.spec.id, "RequestId": msg["RequestId"],
                                           "Text": text, "ReceiptId": msg["ReceiptId"], "Fee": msg["Fee"]})
        if remember:
            self.memory.remember(self.spec.id, player, t, **remember)

    def on_failed(self, msg: Message) -> None:
        job = self.jobs.pop(msg["RequestId"], None)
        if job is None:
            return
        self.bus.send(f"player:{job[0]}", {"Action": "NpcFailed", "Npc": self.spec.id, "RequestId": msg["RequestId"],
                                           "Code": msg["Code"], "Message": msg["Message"], "Refunded": msg["Refunded"]})
        line = self.spec.line("failed", self.spoken, player=job[0])
        if line:
            self.say(line, job[1], scope=self.scope)

    def on_progress(self, msg: Message) -> None:
        job = self.jobs.get(msg["RequestId"])
        if job is not None:
            self.bus.send(f"player:{job[0]}", {"Action": "NpcThinking", "Npc": self.spec.id,
                                               "RequestId": msg["RequestId"], "Position": msg.get("Position", 0)})

    scope = "room"

    def say(self, text: str, t: int, scope: str = "room") -> None:
        self.spoken += 1
        self.bus.send(f"room:{self.room}", {"Action": "NpcSay", "Npc": self.spec.id, "Text": text, "Scope": scope,
                                            "T": t})


@dataclass(frozen=True)
class PaidText:
    """A paid request whose one text field fills one template variable: Joke {Topic}, Prophecy {Question}."""

    field: str  # the request's field, checked against the kind's limits
    code: str  # the error for a text outside them
    role: str  # the NPC's template role
    variable: str  # the variable the text fills (and the Quote's Text fills, to price it)
    remember: str  # what the NPC keeps of it about the player

    async def ask(self, npc: NpcActor, msg: Message) -> None:
        text = npc.text_within_limits(msg, self.field, self.code)
        if text is not None:
            await npc.paid_job(msg, self.role, {self.remember: text}, **{self.variable: text})


class JokerActor(NpcActor):
    """Joke {Topic}: a one-line joke on the topic, paid at the herd's quote."""

    joke = PaidText("Topic", Code.BAD_TOPIC, "joke", "topic", "last_joke_topic")

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.handle("joke", action("Joke"), lambda msg: self.joke.ask(self, msg))

    def quote_values(self, text: str) -> dict[str, Any]:
        return {self.joke.variable: text}


class WandererActor(NpcActor):
    """A wandering llama: its room walks it and says its idle lines; this actor answers, through the LLM, a nearby
    player who speaks to it by name. One answer at a time, and each player waits talk_cooldown_s between answers."""

    scope = "near"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.last_answer: dict[str, int] = {}
        self.handle("heard", action("Heard"), self.on_heard)

    async def on_heard(self, msg: Message) -> None:
        player, t = msg["Player"], msg["T"]
        if not self.inference or self.jobs:
            return
        if t - self.last_answer.get(player, -10**15) < self.spec.economy["talk_cooldown_s"] * 1000:
            return
        self.last_answer[player] = t
        await self.free_job(player, "talk", t, {"last_said": msg["Text"]}, text=msg["Text"])
