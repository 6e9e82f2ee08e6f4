"""A trader llama: it listens to the chat of its room, has the model read the mood, and trades wAR for LLAMA on
the market within the limits of its NPC file — the model proposes a mood, code decides (npcs/actors/trader_policy.py).

Its life, as handlers:
  Overheard   its room forwards every chat line; each player's lines count once per window
  (reading)   after enough counted lines, and long enough since the last reading: one scored job to the herd
  Herd-Done   the mood from the scores -> holdings, the book -> the decision, logged with its receipt, then the
              order placed as the trader's own account and the decision said in the room in one line
  Herd-Failed no mood, no order (logged too)
  TraderInfo  public: what it holds, its position, today's profit or loss, its last decisions
Its account is its NPC id; the Fed endows it with LLAMA and it mints its wAR endowment (both once, by Ref).
"""

from __future__ import annotations

import uuid
from collections import deque
from typing import Any

from server.core.actors import Message, action
from server.core.log import MessageLog
from server.core.logged import LoggedActor
from server.core.state import ActorState
from server.economy.ledger import change

from npcs.actors.services import NpcActor
from npcs.actors.trader_policy import Holdings, Risk, counts, decide, mood_of, worth

HOUR_MS, DAY_MS = 3_600_000, 86_400_000


class TraderState(ActorState):
    kind = "trader"

    def __init__(self) -> None:
        self.decisions: list[dict[str, Any]] = []  # newest last, the last 50
        self.orders_t: list[int] = []  # when it placed orders (the last hour's)
        self.start_llama: int | None = None  # its LLAMA when it first traded: its position counts from here
        self.day = -1
        self.day_value = 0

    def on_Start(self, msg: Message) -> None:
        self.start_llama = msg["Llama"]

    def on_Day(self, msg: Message) -> None:
        self.day, self.day_value = msg["Day"], msg["Value"]

    def on_Decide(self, msg: Message) -> None:
        self.decisions.append({k: v for k, v in msg.items() if k != "Action"})
        del self.decisions[:-50]
        if msg.get("Side"):
            self.orders_t = [t for t in self.orders_t if t > msg["T"] - HOUR_MS] + [msg["T"]]

    def on_Placed(self, msg: Message) -> None:
        if self.decisions:
            self.decisions[-1]["OrderId"] = msg.get("OrderId")
            self.decisions[-1]["Outcome"] = msg.get("Outcome")


class TraderActor(NpcActor, LoggedActor):
    State = TraderState
    state: TraderState

    def __init__(self, bus: Any, spec: Any, room: str, memory: Any, inference: bool, log_: MessageLog, **npc: Any):
        super().__init__(bus, spec, room, memory, inference, prefix="trader", log=log_, **npc)
        self.account = spec.id
        self.counted: dict[str, int] = {}  # player -> when their last counted line was said
        self.lines: deque[str] = deque(maxlen=12)
        self.fresh = 0  # counted lines since the last reading
        self.last_read = -10**15
        self.reading: str | None = None  # the herd job in flight
        self.handle("overheard", action("Overheard"), self.on_overheard)
        self.handle("info", action("TraderInfo"), self.on_info)

    @classmethod
    def build(cls, presence: Any, ctx: Any) -> "TraderActor":
        return cls(ctx.bus, presence.spec, presence.room, ctx.memory, ctx.inference, ctx.log, chat_max=ctx.chat_max)

    async def open(self, t: int) -> None:
        """Its wAR endowment, minted once (the Ref makes a second start a repeat)."""
        amount = self.spec.economy["war_endowment"]
        if amount > 0:
            await change(self.bus, "wAR", {"Action": "Mint", "To": self.account, "Amount": amount, "By": "operator",
                                           "Ref": f"endow:{self.account}:wAR", "Memo": "endowment", "T": t})

    # --- listening and reading the mood --------------------------------------------------------------------------

    async def on_overheard(self, msg: Message) -> None:
        economy, t = self.spec.economy, msg["T"]
        if msg["Player"] == self.spec.name or not counts(self.counted, msg["Player"], t, int(economy["window_s"] * 1000)):
            return
        self.lines.append(" ".join(msg["Text"].split()))
        self.fresh += 1
        if not self.inference or self.reading or self.fresh < economy["min_lines"] \
                or t - self.last_read < economy["think_every_s"] * 1000:
            return
        template = self.spec.templates["mood"]
        read = list(self.lines)  # the lines since the last reading; the next reading starts afresh
        self.lines.clear()
        given = {"persona": self.spec.persona, "player": "", "memory": "", "lines": "\n".join(read)}
        rid = f"{self.id}:{t}:{uuid.uuid4().hex[:8]}"
        accepted = await self.bus.call("herd", {"Action": "Submit", "Template": template.id, "Priority": 15,
                                                "Values": {k: given[k] for k in template.variables},
                                                "RequestId": rid, "Requester": self.id, "Notify": self.id, "T": t})
        if accepted["Action"] != "Error":
            self.reading, self.fresh, self.last_read = rid, 0, t
            self.jobs[rid] = ("", t, {"Lines": read})

    async def on_done(self, msg: Message) -> None:
        await self._decided(msg, mood_of(msg.get("Scores")))

    async def on_failed(self, msg: Message) -> None:
        await self._decided(msg, None)

    async def _decided(self, msg: Message, mood: int | None) -> None:
        job = self.jobs.pop(msg["RequestId"], None)
        if job is None:
            return
        self.reading = None
        t = job[1]
        h, last, bid, ask = await self.holdings(t)
        decision = decide(mood, last, bid, ask, h, Risk.of(self.spec.economy))
        await self.record({"Action": "Decide", "Mood": mood, "Scores": msg.get("Scores"),
                           "ReceiptId": msg.get("ReceiptId"), "Lines": job[2]["Lines"], "Side": decision.side,
                           "Price": decision.price, "Quantity": decision.quantity, "Why": decision.why, "T": t})
        if decision.order is not None:
            placed = await self.bus.call("market", {"Action": "PlaceOrder", "Player": self.account, "T": t,
                                                    **decision.order})
            outcome = "placed" if placed["Action"] != "Error" else placed["Code"]
            await self.record({"Action": "Placed", "OrderId": placed.get("OrderId"), "Outcome": outcome, "T": t})
        self.say(decision.why, t)

    async def holdings(self, t: int) -> tuple[Holdings, int | None, int | None, int | None]:
        """What it holds, the book's best prices and the last trade; the day's and its first start's baselines
        logged the first time they are needed."""
        war = (await self.bus.call("token:wAR", {"Action": "Balance", "Account": self.account}))["Balance"]
        llama = (await self.bus.call("token:LLAMA", {"Action": "Balance", "Account": self.account}))["Balance"]
        book = await self.bus.call("market", {"Action": "OrderBook", "Player": self.account, "Depth": 1, "T": t})
        last = book.get("Last")
        bid = book["Bids"][0][0] if book.get("Bids") else None
        ask = book["Asks"][0][0] if book.get("Asks") else None
        if self.state.start_llama is None:
            await self.record({"Action": "Start", "Llama": llama, "T": t})
        h = Holdings(war, llama, self.state.start_llama or 0, self.state.day_value,
                     sum(1 for o in self.state.orders_t if o > t - HOUR_MS))
        if self.state.day != t // DAY_MS:
            await self.record({"Action": "Day", "Day": t // DAY_MS, "Value": worth(h, last or self.spec.economy[
                "start_price"]), "T": t})
            h = Holdings(war, llama, h.start_llama, self.state.day_value, h.orders_last_hour)
        return h, last, bid, ask

    # --- public ----------------------------------------------------------------------------------------------------

    async def on_info(self, msg: Message) -> None:
        h, last, _, _ = await self.holdings(msg["T"])
        price = last or self.spec.economy["start_price"]
        self.answer(msg, Npc=self.spec.id, Account=self.account, War=h.war, Llama=h.llama,
                    Position=h.llama - h.start_llama, Value=worth(h, price), PnLToday=worth(h, price) - h.day_value,
                    Price=price, Decisions=self.state.decisions[-10:])
