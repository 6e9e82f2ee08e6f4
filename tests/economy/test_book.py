"""The order book's pure rules and the market's reducer: matching, partial fills, cancel, expiry, rounding, and
conservation — what the orders hold plus what is owed out of custody is exactly what went in."""

import random

import pytest

from server.core.protocol import Refused
from server.core.units import UNIT
from server.economy.book import LOT, TICK, Book, Limits, Order, check_order, value
from server.economy.market_state import CUSTODY, MarketState


def place(state: MarketState, oid: str, player: str, side: str, price: int, qty: int, t: int = 1) -> list:
    """What the market actor does for an order, minus the ledgers: match against the book, then apply Place."""
    funds = value(price, qty) if side == "buy" else qty
    taker = Order(oid, player, side, price, qty, funds, 0, t, t + 10_000)
    fills = Book(state.book_orders()).match(taker)
    state.apply({"Action": "Place", "OrderId": oid, "Player": player, "Side": side, "Price": price,
                 "Quantity": qty, "Funds": funds, "Expires": t + 10_000, "T": t,
                 "Fills": [[f.maker, f.taker, f.buyer, f.seller, f.price, f.quantity] for f in fills]})
    return fills


def flows(state: MarketState, placed: dict[str, int]) -> dict[str, int]:
    """Per token: what went into custody (every placed order's funds) minus what the open orders still hold
    minus what is owed out of custody. Zero when nothing was created or lost."""
    out = dict(placed)
    for o in state.orders.values():
        out["wAR" if o["Side"] == "buy" else "LLAMA"] -= o["Funds"]
    for c in state.owed.values():
        if c["Action"] == "Transfer" and c["From"] == CUSTODY:
            out[c["Token"]] -= c["Amount"]
    return out


def test_prices_and_quantities_on_the_tick_and_lot_make_every_value_exact():
    assert value(123 * TICK, 7 * LOT) * UNIT == 123 * TICK * 7 * LOT  # no remainder: no dust
    limits = Limits()
    check_order("buy", 120 * TICK, 5 * LOT, None, 0, limits)
    for side, price, qty, ttl, n, code in [
        ("hold", TICK, LOT, None, 0, "BAD_ORDER"), ("buy", TICK + 1, LOT, None, 0, "BAD_ORDER"),
        ("buy", TICK, LOT + 1, None, 0, "BAD_ORDER"), ("buy", 0, LOT, None, 0, "BAD_ORDER"),
        ("buy", TICK, -LOT, None, 0, "BAD_ORDER"), ("sell", TICK, limits.max_quantity + LOT, None, 0, "BAD_ORDER"),
        ("sell", TICK, LOT, 0, 0, "BAD_ORDER"), ("sell", TICK, LOT, None, limits.max_open, "TOO_MANY_ORDERS"),
        ("buy", True, LOT, None, 0, "BAD_ORDER"),
    ]:
        with pytest.raises(Refused) as no:
            check_order(side, price, qty, ttl, n, limits)
        assert no.value.code == code, (side, price, qty)


def test_price_time_priority_partial_fills_and_the_buyers_price_improvement_comes_back():
    s = MarketState()
    place(s, "s1", "sam", "sell", 120 * TICK, 3 * LOT, t=1)
    place(s, "s2", "sue", "sell", 110 * TICK, 2 * LOT, t=2)  # cheaper: first, though later
    place(s, "s3", "sid", "sell", 110 * TICK, 2 * LOT, t=3)  # same price, later: after s2
    fills = place(s, "b1", "bob", "buy", 120 * TICK, 5 * LOT, t=4)
    assert [(f.maker, f.price, f.quantity) for f in fills] == [("s2", 110 * TICK, 2 * LOT),
                                                                ("s3", 110 * TICK, 2 * LOT),
                                                                ("s1", 120 * TICK, 1 * LOT)]
    assert set(s.orders) == {"s1"} and s.orders["s1"]["Quantity"] == 2 * LOT  # s1 partly filled, still resting
    paid = {c["Ref"]: c for c in s.owed.values() if c["Action"] == "Transfer"}
    # bob held 120 per lot for 5 lots, paid 110 for 4 and 120 for 1: the difference comes back to him
    rest = paid["market:b1:rest"]
    assert rest["To"] == "bob" and rest["Amount"] == value(120 * TICK, 5 * LOT) - value(110 * TICK, 4 * LOT) \
        - value(120 * TICK, LOT)
    assert paid["market:b1/0:wAR"] == {**paid["market:b1/0:wAR"], "To": "sue", "Amount": value(110 * TICK, 2 * LOT)}
    assert paid["market:b1/2:LLAMA"]["To"] == "bob" and paid["market:b1/2:LLAMA"]["Amount"] == LOT
    assert s.last_price == 120 * TICK and len(s.trades) == 3
    assert s.minutes[-1][1:6] == [110 * TICK, 120 * TICK, 110 * TICK, 120 * TICK, 5 * LOT]  # O H L C V


def test_a_limit_that_does_not_cross_rests_and_nobody_trades_with_themselves():
    s = MarketState()
    place(s, "s1", "sam", "sell", 120 * TICK, LOT)
    assert place(s, "b1", "bob", "buy", 119 * TICK, LOT) == [] and set(s.orders) == {"s1", "b1"}
    assert place(s, "b2", "sam", "buy", 130 * TICK, LOT) == []  # sam's own ask is skipped
    book = Book(s.book_orders())
    assert book.levels("buy", 10) == [[130 * TICK, LOT], [119 * TICK, LOT]]
    assert book.levels("sell", 10) == [[120 * TICK, LOT]]


def test_cancel_and_expiry_return_exactly_what_is_left():
    s = MarketState()
    place(s, "s1", "sam", "sell", 100 * TICK, 4 * LOT)
    place(s, "b1", "bob", "buy", 100 * TICK, LOT)
    s.apply({"Action": "Cancel", "OrderId": "s1", "Reason": "cancel", "T": 5})
    rest = s.owed["market:s1:rest"]
    assert (rest["Token"], rest["To"], rest["Amount"]) == ("LLAMA", "sam", 3 * LOT) and not s.orders
    s.apply({"Action": "Cancel", "OrderId": "s1", "Reason": "expired", "T": 6})  # twice: nothing more
    assert s.owed["market:s1:rest"]["Amount"] == 3 * LOT
    s.apply({"Action": "Paid", "Keys": list(s.owed)})
    assert s.owed == {}


def test_thousands_of_random_orders_create_and_lose_nothing():
    # Conservation needs every owed change still listed (Paid forgets the done ones), so no Paid here.
    players = [f"p{i}" for i in range(12)]
    s2, placed2 = MarketState(), {"wAR": 0, "LLAMA": 0}
    rng = random.Random(12)
    for n in range(3000):
        side = rng.choice(("buy", "sell"))
        price, qty = rng.randint(95, 105) * TICK, rng.randint(1, 30) * LOT
        place(s2, f"o{n}", rng.choice(players), side, price, qty, t=n)
        placed2["wAR" if side == "buy" else "LLAMA"] += value(price, qty) if side == "buy" else qty
        if rng.random() < 0.1 and s2.orders:
            s2.apply({"Action": "Cancel", "OrderId": rng.choice(sorted(s2.orders)), "Reason": "cancel", "T": n})
        assert flows(s2, placed2) == {"wAR": 0, "LLAMA": 0}, n
    for o in s2.orders.values():  # every open order's funds cover what it still offers
        assert o["Funds"] >= (value(o["Price"], o["Quantity"]) if o["Side"] == "buy" else o["Quantity"])
    bids, asks = Book(s2.book_orders()).side("buy"), Book(s2.book_orders()).side("sell")
    crossed = [(b.player, a.player) for b in bids for a in asks if b.price >= a.price]
    assert all(bp == ap for bp, ap in crossed)  # only a player's own orders may cross (no self-trade)
