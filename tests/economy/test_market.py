"""The market over real websockets on SQLite and PostgreSQL: two players trade, partial fills, cancel, expiry, the
reads, the errors; the ledgers balance and custody holds exactly the open orders. A server killed mid-trading
restarts with every order filled once or refunded, and replay verifies."""

import asyncio
import signal

import pytest

from client.net import GameClient, ServerError
from server.core.clock import now_ms
from server.core.db import Database
from server.core.log import load_actor
from server.core.units import UNIT
from server.economy.book import LOT, TICK, value
from server.reducers import state_for

from conftest import ServerProcess, run_cli


async def mint_llama(bus, name: str, amount: int) -> None:
    """Test set-up: LLAMA for a seller, as the Fed would mint it."""
    done = await bus.call("token:LLAMA", {"Action": "Mint", "To": name, "Amount": amount, "By": "fed",
                                          "Ref": f"test:{name}", "T": 1})
    assert done["Action"] == "Mint-Done"


async def balances(client: GameClient) -> dict[str, int]:
    return (await client.request("Balance"))["Balances"]


async def settled(srv) -> None:
    """Until the market owes the ledgers nothing."""
    for _ in range(200):
        if not srv.runtime.market.state.owed:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"still owed: {srv.runtime.market.state.owed}")


def custody_matches(srv) -> None:
    """The custody account holds the open orders' funds and nothing else; both ledgers balance."""
    rt = srv.runtime
    want = {"wAR": 0, "LLAMA": 0}
    for o in rt.market.state.orders.values():
        want["wAR" if o["Side"] == "buy" else "LLAMA"] += o["Funds"]
    assert rt.ledger.state.balance("market") == want["wAR"]
    assert rt.llama.state.balance("market") == want["LLAMA"]
    assert rt.ledger.state.consistent() and rt.llama.state.consistent()


async def test_two_players_trade_with_partial_fills_cancel_and_expiry(server, connect):
    alice, bob = await connect("alice"), await connect("bob")
    await mint_llama(server.runtime.bus, "bob", 10 * UNIT)
    ask = await bob.request("PlaceOrder", Side="sell", Price=1500 * TICK, Quantity=2 * UNIT)
    assert ask["Filled"] == 0 and ask["Remaining"] == 2 * UNIT and ask["Held"] == 2 * UNIT and ask["Token"] == "LLAMA"
    book = await alice.request("OrderBook")
    assert book["Asks"] == [[1500 * TICK, 2 * UNIT]] and book["Bids"] == [] and book["Tick"] == TICK
    # alice bids above the ask: she trades at the ask's price and gets the difference back
    bid = await alice.request("PlaceOrder", Side="buy", Price=2000 * TICK, Quantity=UNIT)
    assert bid["Filled"] == UNIT and bid["Remaining"] == 0 and bid["Trades"] == [{"Price": 1500 * TICK,
                                                                                   "Quantity": UNIT}]
    filled = await bob.wait_for(lambda e: e["Action"] == "OrderFilled", past=True)
    assert filled["OrderId"] == ask["OrderId"] and filled["Quantity"] == UNIT and filled["Remaining"] == UNIT
    await settled(server)
    assert await balances(alice) == {"wAR": 10 * UNIT - value(1500 * TICK, UNIT), "LLAMA": UNIT}
    assert await balances(bob) == {"wAR": 10 * UNIT + value(1500 * TICK, UNIT), "LLAMA": 8 * UNIT}
    custody_matches(server)
    mine = await bob.request("MyOrders")
    assert [(o["OrderId"], o["Quantity"]) for o in mine["Orders"]] == [(ask["OrderId"], UNIT)]
    trades = await alice.request("Trades")
    assert [(t["Price"], t["Quantity"], t["Buyer"], t["Seller"]) for t in trades["Trades"]] == \
        [(1500 * TICK, UNIT, "alice", "bob")]
    candles = await alice.request("Candles", Interval="1m")
    assert candles["Candles"][-1][1:] == [1500 * TICK] * 4 + [UNIT]
    info = await alice.request("MarketInfo")
    assert info["Last"] == 1500 * TICK and info["Orders"] == 1
    # errors: each with its code and the request's Ref
    for fields, code in [({"Side": "buy", "Price": TICK + 1, "Quantity": LOT}, "BAD_ORDER"),
                         ({"Side": "buy", "Price": 5000 * TICK, "Quantity": 100 * UNIT}, "INSUFFICIENT_FUNDS"),
                         ({"Side": "sell", "Price": TICK, "Quantity": 50 * UNIT}, "INSUFFICIENT_FUNDS")]:
        with pytest.raises(ServerError) as no:
            await alice.request("PlaceOrder", **fields)
        assert no.value.code == code and no.value.frame["Ref"]
    with pytest.raises(ServerError) as no:
        await alice.request("CancelOrder", OrderId=ask["OrderId"])  # bob's order
    assert no.value.code == "UNKNOWN_ORDER"
    # bob cancels the rest: his LLAMA comes back
    gone = await bob.request("CancelOrder", OrderId=ask["OrderId"])
    assert gone["Refunded"] == UNIT and gone["Token"] == "LLAMA"
    await settled(server)
    assert (await balances(bob))["LLAMA"] == 9 * UNIT
    # an order with a short life expires at the market's next tick and its wAR comes back
    short = await alice.request("PlaceOrder", Side="buy", Price=100 * TICK, Quantity=LOT, TTL=1)
    server.runtime.bus.send("market", {"Action": "Tick", "T": now_ms() + 2000})
    expired = await alice.wait_for(lambda e: e["Action"] == "OrderExpired", timeout=5)
    assert expired["OrderId"] == short["OrderId"] and expired["Refunded"] == value(100 * TICK, LOT)
    await settled(server)
    assert (await balances(alice))["wAR"] == 10 * UNIT - value(1500 * TICK, UNIT)
    custody_matches(server)
    assert server.runtime.ledger.state.balance("market") == 0 and server.runtime.llama.state.balance("market") == 0


async def test_trading_is_for_players_and_the_market_data_for_anyone(connect):
    visitor = await connect()
    for action, fields in [("PlaceOrder", {"Side": "buy", "Price": 1000 * TICK, "Quantity": LOT}),
                           ("CancelOrder", {"OrderId": "o-1"}), ("MyOrders", {})]:
        with pytest.raises(ServerError) as no:
            await visitor.request(action, **fields)
        assert no.value.code == "NOT_LOGGED_IN", action
    book = await visitor.request("OrderBook", Depth=3)  # public: a visitor, a price-feed program
    assert book["Bids"] == [] and book["Asks"] == [] and book["Ref"]
    info = await visitor.request("MarketInfo")
    assert info["Last"] is None and info["Custody"] == "market"
    assert (await visitor.request("Trades"))["Trades"] == []
    assert (await visitor.request("Candles", Interval="1h"))["Interval"] == "1h"
    with pytest.raises(ServerError) as no:
        await visitor.request("Candles", Interval="1d")
    assert no.value.code == "BAD_REQUEST"


async def trader(url: str, name: str, side: str, stop: asyncio.Event, placed: list) -> None:
    client = await GameClient.connect(url)
    await client.login(name, "pw-secret")
    try:
        while not stop.is_set():
            try:
                r = await client.request("PlaceOrder", Side=side, Price=1000 * TICK, Quantity=LOT, timeout=5)
                placed.append(r["OrderId"])
            except ServerError:
                await asyncio.sleep(0.01)
    except (ConnectionError, asyncio.TimeoutError, OSError):
        pass  # the server was killed under it


async def seed_seller(db: str) -> None:
    """Set-up: a seller and a buyer, the seller with 5 LLAMA (as the Fed would mint), written to the database by
    an in-process server that then stops."""
    from server.app import Server
    from server.world.reader import load_world

    from conftest import FAST, TEST_WORLD

    srv = Server(load_world(TEST_WORLD), db, "127.0.0.1", 0, FAST)
    await srv.start()
    for name in ("seller", "buyer"):
        c = await GameClient.connect(srv.url)
        await c.register(name, "pw-secret")
        await c.close()
    await mint_llama(srv.runtime.bus, "seller", 5 * UNIT)
    await srv.stop()


async def test_a_server_killed_mid_trading_pays_every_order_once(tmp_path):
    db = f"sqlite:///{tmp_path / 'market.db'}"
    await seed_seller(db)
    first = ServerProcess(db, None)
    stop, placed = asyncio.Event(), []
    try:
        tasks = [asyncio.create_task(trader(first.url, name, side, stop, placed))
                 for name, side in (("seller", "sell"), ("buyer", "buy"))]
        while len(placed) < 40:  # trading: each buy fills a resting sell (or rests for the next sell)
            await asyncio.sleep(0.05)
        first.proc.send_signal(signal.SIGKILL)  # mid-fill: orders logged, payouts in flight
        first.proc.wait()
        stop.set()
        await asyncio.gather(*tasks)
    finally:
        if first.proc.poll() is None:
            first.kill()
    database = Database(db)
    with database.session() as session:  # what the kill interrupted: changes logged but not yet paid, escrows
        at_kill = load_actor(session, "market", state_for, use_snapshot=False).state.owed
        held = [e for e in load_actor(session, "token:wAR", state_for, use_snapshot=False).state.escrow]
    database.stop()
    assert at_kill or held, "the kill came between two orders: nothing was in flight"
    second = ServerProcess(db, None)  # finishes what the log owes, and refunds escrows it never recorded
    await asyncio.sleep(2.0)
    second.stop()
    replay = run_cli("replay", "--db", db)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    database = Database(db)
    with database.session() as session:
        market = load_actor(session, "market", state_for, use_snapshot=False).state
        war = load_actor(session, "token:wAR", state_for, use_snapshot=False).state
        llama = load_actor(session, "token:LLAMA", state_for, use_snapshot=False).state
    database.stop()
    assert market.owed == {}  # every change the log owed was made once the server was back
    assert market.trades, "no fill happened before the kill"
    for token, ledger, side in (("wAR", war, "buy"), ("LLAMA", llama, "sell")):
        assert ledger.consistent(), token
        assert ledger.balance("market") == sum(o["Funds"] for o in market.orders.values() if o["Side"] == side)
        assert not [e for e in ledger.escrow if e.startswith("market:")], token  # none left behind
    # nothing created or lost: what the two players and custody hold is what they started with
    assert war.balance("seller") + war.balance("buyer") + war.balance("market") == 20 * UNIT
    assert llama.balance("seller") + llama.balance("buyer") + llama.balance("market") == 5 * UNIT
    bought = sum(q for _, _, q, b, _, _ in market.trades if b == "buyer")
    assert llama.balance("buyer") == bought  # every fill paid exactly once
