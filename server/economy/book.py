"""The wAR/LLAMA order book as pure rules: validation, price-time matching, partial fills, cancel, expiry, candles.

No I/O and no clock: the market actor (server/economy/market.py) logs each decision these functions make and
moves the coins. Every amount is an integer in base units (server/core/units.py):

- a **price** is wAR base units per whole LLAMA, a multiple of `TICK` (0.001 wAR);
- a **quantity** is LLAMA base units, a multiple of `LOT` (0.01 LLAMA);

so the value of any fill, price × quantity / UNIT, is a whole number of wAR base units: no rounding, no dust.

A buy order holds price × quantity of wAR (its `Funds`), a sell order its quantity of LLAMA. A fill trades at the
resting order's price (the one that was in the book first), so a buyer who bid above the best ask pays less than
it held; what is left of its funds when the order ends goes back to it. An order ends filled, cancelled or
expired; nothing else ever touches its funds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from server.core.protocol import Code, Refused
from server.core.units import UNIT

TICK = UNIT // 1000  # the smallest price step: 0.001 wAR per LLAMA
LOT = UNIT // 100  # the smallest quantity: 0.01 LLAMA


@dataclass(frozen=True)
class Limits:
    """A market's rules, from world.toml [market] (docs/worlds.md)."""

    min_quantity: int = LOT
    max_quantity: int = 10_000 * UNIT
    max_open: int = 20  # open orders per player
    max_ttl_s: int = 7 * 24 * 3600
    default_ttl_s: int = 24 * 3600


def value(price: int, quantity: int) -> int:
    """wAR base units for quantity LLAMA at price (exact for prices on the tick and quantities on the lot)."""
    return price * quantity // UNIT


def check_order(side: Any, price: Any, quantity: Any, ttl_s: Any, open_orders: int, limits: Limits) -> None:
    """Refused with a clear reason, or None: the order may be placed."""
    if side not in ("buy", "sell"):
        raise Refused(Code.BAD_ORDER, "Side is buy or sell")
    for name, v in (("Price", price), ("Quantity", quantity)):
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise Refused(Code.BAD_ORDER, f"{name} is a positive whole number of base units")
    if price % TICK:
        raise Refused(Code.BAD_ORDER, f"Price must be a multiple of the tick, {TICK} base units (0.001 wAR)")
    if quantity % LOT:
        raise Refused(Code.BAD_ORDER, f"Quantity must be a multiple of the lot, {LOT} base units (0.01 LLAMA)")
    if not limits.min_quantity <= quantity <= limits.max_quantity:
        raise Refused(Code.BAD_ORDER, f"Quantity must be between {limits.min_quantity} and {limits.max_quantity} "
                                      f"base units")
    if ttl_s is not None and (not isinstance(ttl_s, int) or not 1 <= ttl_s <= limits.max_ttl_s):
        raise Refused(Code.BAD_ORDER, f"TTL is 1 to {limits.max_ttl_s} seconds")
    if open_orders >= limits.max_open:
        raise Refused(Code.TOO_MANY_ORDERS, f"at most {limits.max_open} open orders each: cancel one first")


@dataclass
class Order:
    id: str
    player: str
    side: str
    price: int
    quantity: int  # what is left to trade
    funds: int  # what the order still holds: wAR for a buy, LLAMA for a sell
    seq: int  # time priority: lower first
    t: int
    expires: int

    def data(self) -> dict[str, Any]:
        return {"OrderId": self.id, "Player": self.player, "Side": self.side, "Price": self.price,
                "Quantity": self.quantity, "Funds": self.funds, "Seq": self.seq, "T": self.t,
                "Expires": self.expires}

    @classmethod
    def of(cls, d: dict[str, Any]) -> "Order":
        return cls(d["OrderId"], d["Player"], d["Side"], d["Price"], d["Quantity"], d["Funds"], d["Seq"], d["T"],
                   d["Expires"])


@dataclass(frozen=True)
class Fill:
    maker: str  # the resting order
    taker: str  # the incoming one
    buyer: str
    seller: str
    price: int
    quantity: int

    @property
    def value(self) -> int:
        return value(self.price, self.quantity)


@dataclass
class Book:
    orders: dict[str, Order] = field(default_factory=dict)

    def side(self, side: str) -> list[Order]:
        """Best first: bids highest price first, asks lowest; then oldest first."""
        mine = [o for o in self.orders.values() if o.side == side]
        return sorted(mine, key=(lambda o: (-o.price, o.seq)) if side == "buy" else (lambda o: (o.price, o.seq)))

    def match(self, taker: Order) -> list[Fill]:
        """The fills an incoming order makes against the book, best price then oldest first, at the resting
        orders' prices; stops at the first price that does not cross. Pure: nothing is changed."""
        fills, left = [], taker.quantity
        against = self.side("sell" if taker.side == "buy" else "buy")
        for maker in against:
            crosses = maker.price <= taker.price if taker.side == "buy" else maker.price >= taker.price
            if not crosses or left == 0:
                break
            if maker.player == taker.player:  # no trading with oneself: skip, the next one may cross
                continue
            q = min(left, maker.quantity)
            buyer, seller = (taker.player, maker.player) if taker.side == "buy" else (maker.player, taker.player)
            fills.append(Fill(maker.id, taker.id, buyer, seller, maker.price, q))
            left -= q
        return fills

    def levels(self, side: str, depth: int) -> list[list[int]]:
        """[price, quantity] per price level, best first, at most depth levels."""
        out: list[list[int]] = []
        for o in self.side(side):
            if out and out[-1][0] == o.price:
                out[-1][1] += o.quantity
            elif len(out) < depth:
                out.append([o.price, o.quantity])
            else:
                break
        return out


def apply_fill(orders: dict[str, Order], fill: Fill) -> None:
    """Take a fill out of both orders' quantities and funds (the reducer calls this, so replay does the same)."""
    for oid in (fill.maker, fill.taker):
        o = orders[oid]
        o.quantity -= fill.quantity
        o.funds -= fill.value if o.side == "buy" else fill.quantity


def candle_add(candles: list[list[int]], bucket_ms: int, t: int, price: int, quantity: int, keep: int) -> None:
    """Fold a trade into per-bucket [start, open, high, low, close, volume] candles, newest last, `keep` kept."""
    start = t - t % bucket_ms
    if candles and candles[-1][0] == start:
        c = candles[-1]
        c[2], c[3], c[4], c[5] = max(c[2], price), min(c[3], price), price, c[5] + quantity
        return
    candles.append([start, price, price, price, price, quantity])
    del candles[:-keep]
