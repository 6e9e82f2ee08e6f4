"""The market's logged state: its reducer (what `llama-land replay` rebuilds) and what each entry owes.

Entries:
  Place   an order arrives, with the fills it makes (decided by server/economy/book.py before it is logged)
  Cancel  an order ends unfilled or part-filled: cancelled by its player, expired, or refused by its escrow
  Paid    ledger changes the market owed are done (so a restart does not ask for them again)

Every Place and Cancel adds to `owed` the ledger changes it implies — the order's escrow settled into the
market's custody account, each fill's wAR to the seller and LLAMA to the buyer, what is left of an ended order
back to its player — keyed by their idempotency key, until a Paid entry clears them. So the coins always follow
the log: a crash between the log and the ledgers is finished at the next start by asking again (the ledgers do
each change once).
"""

from __future__ import annotations

from typing import Any

from server.core.state import ActorState
from server.economy.book import Fill, Order, apply_fill, candle_add

CUSTODY = "market"  # the market's account on both ledgers: the funds of open orders
TOKEN_OF = {"buy": "wAR", "sell": "LLAMA"}
MINUTE, HOUR = 60_000, 3_600_000


def fill_id(oid: str, n: int) -> str:
    return f"{oid}/{n}"


class MarketState(ActorState):
    kind = "market"

    def __init__(self) -> None:
        self.orders: dict[str, dict[str, Any]] = {}  # open orders (book.Order.data())
        self.seq = 0
        self.owed: dict[str, dict[str, Any]] = {}  # key -> a ledger change still to be confirmed
        self.trades: list[list[Any]] = []  # newest last: [T, Price, Quantity, Buyer, Seller, TakerSide]
        self.minutes: list[list[int]] = []  # candles: [start, open, high, low, close, volume]
        self.hours: list[list[int]] = []
        self.last_price: int | None = None

    def book_orders(self) -> dict[str, Order]:
        return {oid: Order.of(d) for oid, d in self.orders.items()}

    def _owe(self, key: str, change: dict[str, Any], t: int) -> None:
        self.owed[key] = {**change, "T": t}  # asked with the time of the entry that owes it

    def _refund_rest(self, o: Order, why: str, t: int) -> None:
        if o.funds > 0:
            self._owe(f"market:{o.id}:rest", {"Token": TOKEN_OF[o.side], "Action": "Transfer", "From": CUSTODY,
                                             "To": o.player, "Amount": o.funds, "Ref": f"market:{o.id}:rest",
                                             "Why": why}, t)

    def on_Place(self, msg: dict[str, Any]) -> None:
        oid = msg["OrderId"]
        self.seq += 1
        taker = Order(oid, msg["Player"], msg["Side"], msg["Price"], msg["Quantity"], msg["Funds"], self.seq,
                      msg["T"], msg["Expires"])
        self._owe(f"close:market:{oid}", {"Token": TOKEN_OF[taker.side], "Action": "Settle",
                                          "Escrow": f"market:{oid}", "To": CUSTODY}, msg["T"])
        orders = self.book_orders()
        orders[oid] = taker
        for n, f in enumerate(msg["Fills"]):
            fill = Fill(*f)
            apply_fill(orders, fill)
            fid = fill_id(oid, n)
            self._owe(f"ref:market:{fid}:wAR", {"Token": "wAR", "Action": "Transfer", "From": CUSTODY,
                                                "To": fill.seller, "Amount": fill.value,
                                                "Ref": f"market:{fid}:wAR", "Why": "fill"}, msg["T"])
            self._owe(f"ref:market:{fid}:LLAMA", {"Token": "LLAMA", "Action": "Transfer", "From": CUSTODY,
                                                  "To": fill.buyer, "Amount": fill.quantity,
                                                  "Ref": f"market:{fid}:LLAMA", "Why": "fill"}, msg["T"])
            self.trades.append([msg["T"], fill.price, fill.quantity, fill.buyer, fill.seller, taker.side])
            del self.trades[:-200]
            candle_add(self.minutes, MINUTE, msg["T"], fill.price, fill.quantity, 24 * 60)
            candle_add(self.hours, HOUR, msg["T"], fill.price, fill.quantity, 30 * 24)
            self.last_price = fill.price
        for o in list(orders.values()):
            if o.quantity == 0:  # filled: what a buyer held beyond the prices it got goes back
                self._refund_rest(o, "filled", msg["T"])
                del orders[o.id]
        self.orders = {oid: o.data() for oid, o in orders.items()}

    def on_Cancel(self, msg: dict[str, Any]) -> None:
        d = self.orders.pop(msg["OrderId"], None)
        if d is not None:
            self._refund_rest(Order.of(d), msg["Reason"], msg["T"])

    def on_Paid(self, msg: dict[str, Any]) -> None:
        for key in msg["Keys"]:
            self.owed.pop(key, None)
