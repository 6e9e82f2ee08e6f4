"""The market: a wAR/LLAMA limit order book as a logged actor (`market`, on the bank).

A request's path: `PlaceOrder` is checked (book.check_order), the order's funds are held in escrow on their ledger
(`market:<order id>`: wAR for a buy, LLAMA for a sell — refused there if the player has not got them), the fills it
makes are decided against the book (price-time priority, at the resting prices) and logged with it in one
`Place`, the players are told, and then — in order, by one task — the ledger changes that entry owes are made:
the escrow settled into the market's custody account, each fill's wAR to the seller and LLAMA to the buyer, any
rest back. `CancelOrder` and expiry (the runtime's `Tick`) log a `Cancel` and return what the order still holds.

Money rules, in code: integers only (book.py); nothing moves before it is logged, and everything logged is paid
exactly once (the ledgers' keys), also across a crash (`open` asks again for what `owed` still lists and refunds
an escrow no `Place` ever recorded). Balances + escrow = supply on both ledgers after every step, and the custody
account holds exactly the open orders' funds and what is still owed from it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from server.core.actors import Bus, Message, action, player_id
from server.core.log import MessageLog
from server.core.logged import LoggedActor
from server.core.protocol import Code, Refused
from server.economy.book import LOT, TICK, Book, Limits, Order, check_order, value
from server.economy.ledger import change
from server.economy.market_state import CUSTODY, HOUR, TOKEN_OF, MarketState

log = logging.getLogger("llama_land.market")


class MarketActor(LoggedActor):
    State = MarketState
    state: MarketState

    def __init__(self, bus: Bus, log_: MessageLog, limits: Limits | None = None):
        super().__init__("market", log_)
        self.bus, self.limits = bus, limits or Limits()
        self.queue: asyncio.Queue[list[str]] = asyncio.Queue()
        self.payer: asyncio.Task | None = None
        self._queued: set[str] = set()  # owed keys handed to the payer and not yet paid
        self.fills = self.volume = 0  # since this process started (metrics)
        for name, fn in [("PlaceOrder", self.on_place), ("CancelOrder", self.on_cancel),
                         ("MyOrders", self.on_my_orders), ("OrderBook", self.on_book), ("Trades", self.on_trades),
                         ("Candles", self.on_candles), ("MarketInfo", self.on_info), ("Tick", self.on_tick),
                         ("Paid", self.on_paid)]:
            self.handle(name.lower(), action(name), fn)

    # --- lifecycle: finish what a crash left -----------------------------------------------------------------

    async def open(self, t: int) -> None:
        self.payer = asyncio.get_running_loop().create_task(self._pay_in_order(), name="market-payer")
        known = {d["Change"]["Escrow"] for d in self._owed_list() if d["Change"]["Action"] == "Settle"}
        for token in ("wAR", "LLAMA"):  # an escrow held for an order the log never recorded: back to its payer
            held = (await change(self.bus, token, {"Action": "Escrows", "Prefix": "market:", "T": t}))["Escrows"]
            for escrow in held:
                if escrow not in known:
                    await change(self.bus, token, {"Action": "Refund", "Escrow": escrow, "Reason": "restart",
                                                       "T": t})
        self._queue_owed()  # in the order they were logged (dicts keep it)

    async def stop(self, drain_s: float = 2.0) -> None:
        await super().stop(drain_s)
        if self.payer is not None:
            self.payer.cancel()

    def _owed_list(self) -> list[dict[str, Any]]:
        return [{"Key": k, "Change": c} for k, c in self.state.owed.items()]

    # --- orders ----------------------------------------------------------------------------------------------

    async def on_place(self, msg: Message) -> None:
        player, t = msg["Player"], msg["T"]
        try:
            mine = sum(1 for o in self.state.orders.values() if o["Player"] == player)
            check_order(msg.get("Side"), msg.get("Price"), msg.get("Quantity"), msg.get("TTL"), mine, self.limits)
        except Refused as no:
            self.refuse(msg, no.code, no.message)
            return
        side, price, quantity = msg["Side"], msg["Price"], msg["Quantity"]
        oid = f"o-{uuid.uuid4().hex[:16]}"
        funds = value(price, quantity) if side == "buy" else quantity
        held = await change(self.bus, TOKEN_OF[side], {"Action": "Hold", "Escrow": f"market:{oid}", "From": player,
                                                        "Amount": funds, "For": "market", "T": t}, fresh=True)
        if held["Action"] == "Error":
            self.refuse(msg, held["Code"], held["Message"])
            return
        taker = Order(oid, player, side, price, quantity, funds, 0, t, t + 1000 * (msg.get("TTL")
                                                                               or self.limits.default_ttl_s))
        fills = Book(self.state.book_orders()).match(taker)
        await self.record({"Action": "Place", "OrderId": oid, "Player": player, "Side": side, "Price": price,
                           "Quantity": quantity, "Funds": funds, "Expires": taker.expires, "T": t,
                           "Fills": [[f.maker, f.taker, f.buyer, f.seller, f.price, f.quantity] for f in fills]})
        self._queue_owed()
        filled = sum(f.quantity for f in fills)
        self.fills, self.volume = self.fills + len(fills), self.volume + filled
        for f in fills:
            maker = f.maker
            mine_left = self.state.orders.get(maker, {}).get("Quantity", 0)
            self.bus.send(player_id(f.seller if f.buyer == player else f.buyer), {
                "Action": "OrderFilled", "OrderId": maker, "Price": f.price, "Quantity": f.quantity,
                "Remaining": mine_left, "T": t})
        self.respond(msg, OrderId=oid, Filled=filled, Remaining=quantity - filled, Held=funds,
                    Token=TOKEN_OF[side], Trades=[{"Price": f.price, "Quantity": f.quantity} for f in fills],
                    Expires=taker.expires)

    async def on_cancel(self, msg: Message) -> None:
        order = self.state.orders.get(msg["OrderId"])
        if order is None or order["Player"] != msg["Player"]:
            self.refuse(msg, Code.UNKNOWN_ORDER, f"you have no open order {msg['OrderId']!r}")
            return
        await self.record({"Action": "Cancel", "OrderId": order["OrderId"], "Reason": "cancel", "T": msg["T"]})
        self._queue_owed()
        self.respond(msg, OrderId=order["OrderId"], Refunded=order["Funds"], Token=TOKEN_OF[order["Side"]])

    async def on_tick(self, msg: Message) -> None:
        """Expire what is due (the runtime sends a Tick every few seconds; time from the message)."""
        for oid, order in sorted(self.state.orders.items()):
            if order["Expires"] <= msg["T"]:
                await self.record({"Action": "Cancel", "OrderId": oid, "Reason": "expired", "T": msg["T"]})
                self.bus.send(player_id(order["Player"]), {"Action": "OrderExpired", "OrderId": oid,
                                                           "Refunded": order["Funds"],
                                                           "Token": TOKEN_OF[order["Side"]], "T": msg["T"]})
        self._queue_owed()

    # --- paying what the log owes, in order -------------------------------------------------------------------

    def _queue_owed(self) -> None:
        fresh = [k for k in self.state.owed if k not in self._queued]
        if fresh:
            self._queued.update(fresh)
            self.queue.put_nowait(fresh)

    async def _pay_in_order(self) -> None:
        """One task makes every owed change in the order it was logged, so custody always has the coins a payout
        takes (a maker's escrow is settled before a later taker's fill pays from it). A change that goes
        unanswered is asked again (its key makes that safe) until it is answered."""
        while True:
            keys = await self.queue.get()
            done, t = [], 0
            for key in keys:
                owed = self.state.owed.get(key)
                if owed is None:
                    continue
                t = max(t, owed["T"])
                ask = {k: v for k, v in owed.items() if k not in ("Token", "Why")}
                answer, attempt = None, 0
                while answer is None:  # until a ledger answers: what the log owes is paid, however long it takes
                    try:
                        answer = await change(self.bus, owed["Token"], ask)
                    except (TimeoutError, LookupError):
                        attempt += 1
                        await asyncio.sleep(min(5.0, 0.5 * attempt))
                if answer["Action"] == "Error":  # a bug: the log and the ledger disagree; say so loudly
                    log.error("market: %s refused by the ledger: %s %s", key, answer["Code"], answer["Message"])
                done.append(key)
                self._queued.discard(key)
            if done:
                self.deliver({"Action": "Paid", "Keys": done, "T": t})  # the time of what it pays for

    async def on_paid(self, msg: Message) -> None:
        await self.record({"Action": "Paid", "Keys": msg["Keys"], "T": msg["T"]})

    def respond(self, msg: Message, **fields: Any) -> None:
        """A player's answer (`<Action>-Response` with its Ref), or — for an actor trading on its own account, a
        trader llama — the same answer to its ReplyTo."""
        if msg.get("ReplyTo"):
            self.reply(msg, f"{msg['Action']}-Response", **fields)
        else:
            self.answer(msg, **fields)

    # --- reads ---------------------------------------------------------------------------------------------------

    def on_my_orders(self, msg: Message) -> None:
        mine = [dict(o) for o in self.state.orders.values() if o["Player"] == msg["Player"]]
        for o in mine:
            o.pop("Player")
        self.respond(msg, Orders=sorted(mine, key=lambda o: o["Seq"]))

    def on_book(self, msg: Message) -> None:
        book, depth = Book(self.state.book_orders()), min(max(msg.get("Depth") or 10, 1), 50)
        self.respond(msg, Bids=book.levels("buy", depth), Asks=book.levels("sell", depth), Tick=TICK, Lot=LOT,
                    Last=self.state.last_price)

    def on_trades(self, msg: Message) -> None:
        n = min(max(msg.get("Limit") or 50, 1), 200)
        self.respond(msg, Trades=[{"T": t, "Price": p, "Quantity": q, "Buyer": b, "Seller": s, "Taker": side}
                                 for t, p, q, b, s, side in self.state.trades[-n:]])

    def on_candles(self, msg: Message) -> None:
        interval = msg.get("Interval") or "1m"
        if interval not in ("1m", "1h"):
            self.refuse(msg, Code.BAD_REQUEST, "Interval is 1m or 1h")
            return
        n = min(max(msg.get("Limit") or 60, 1), 1440)
        candles = self.state.minutes if interval == "1m" else self.state.hours
        self.respond(msg, Interval=interval, Candles=[list(c) for c in candles[-n:]])

    def on_info(self, msg: Message) -> None:
        """The last price and its change over 24 hours (from the hourly candles), the rules, the open interest."""
        t, last = msg["T"], self.state.last_price
        day = [c for c in self.state.hours if c[0] >= t - 24 * HOUR]
        before = next((c[1] for c in day), None)
        self.respond(msg, Last=last, Open24h=before, Change24h=(last - before) if last and before else 0,
                    Volume24h=sum(c[5] for c in day), Tick=TICK, Lot=LOT, Custody=CUSTODY,
                    MaxOpen=self.limits.max_open, MinQuantity=self.limits.min_quantity,
                    MaxQuantity=self.limits.max_quantity, Orders=len(self.state.orders))
