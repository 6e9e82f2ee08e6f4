"""The market under load, and the trader llama's reaction time, against the ledger alone in the same run.

    ./dev bench market                       # 200 players, 10 s each phase, 5 trader readings
    ./dev bench market --players 100 --seconds 5 --readings 0

Phase 1 (baseline): the players send plain wAR `Transfer`s to each other as fast as answers come back — one
ledger change and one log append each, the floor any order sits on. Phase 2: half the players sell and half buy
at the same price, as fast as answers come back, so every order fills or rests; figures: orders answered per
second (matching and logging included), p50/p99 of order → answer, and of order → the buyer's LLAMA on its way
(the `Credit-Notice` from the market's custody: the fill settled on both ledgers). Phase 3 (inference on, the real
default model): two players say cheerful and gloomy lines in turn near Tess the Trader; the time from the line
that completes a reading to her explanation in the chat.

The server is `llama-land serve` on SQLite as a child process; the players run in this process (they share the
machine's cores with it).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from walkers import cpu_seconds, launch, machine, pctl  # noqa: E402

from client.net import GameClient, ServerError  # noqa: E402
from server.core.units import UNIT  # noqa: E402
from server.economy.book import LOT, TICK  # noqa: E402
from server.tools.services import free_port  # noqa: E402

TEST_WORLD = ROOT / "tests" / "worlds" / "two-rooms"
DEFAULT_WORLD = ROOT / "worlds" / "llama-land"


async def seed(db: str, players: int) -> None:
    """Accounts for every player; sellers get LLAMA (as the Fed would mint it), written by a server that stops."""
    from server.app import Server
    from server.net.session import SessionConfig
    from server.world.reader import load_world

    srv = Server(load_world(TEST_WORLD), db, "127.0.0.1", 0, SessionConfig(scrypt_n=2**2))
    await srv.start()
    for i in range(players):
        c = await GameClient.connect(srv.url)
        await c.register(f"p{i:03d}", "pw-secret")
        await c.close()
        if i % 2 == 0:
            await srv.runtime.bus.call("token:LLAMA", {"Action": "Mint", "To": f"p{i:03d}", "Amount": 100 * UNIT,
                                                       "By": "fed", "Ref": f"bench:{i}", "T": 1})
    await srv.stop()


async def clients(url: str, n: int) -> list[GameClient]:
    out = []
    for i in range(n):
        c = await GameClient.connect(url)
        await c.login(f"p{i:03d}", "pw-secret")
        out.append(c)
    return out


async def closed_loop(cs: list[GameClient], seconds: float, one) -> tuple[int, list[float]]:
    """Each client sends its next request when the last is answered; (answered, latencies in ms)."""
    lat: list[float] = []
    end = time.monotonic() + seconds

    async def run(i: int, c: GameClient) -> None:
        while time.monotonic() < end:
            t = time.perf_counter()
            try:
                await one(i, c)
            except ServerError:
                continue
            lat.append((time.perf_counter() - t) * 1000)

    await asyncio.gather(*(run(i, c) for i, c in enumerate(cs)))
    return len(lat), lat


async def load(args: argparse.Namespace, tmp: Path) -> None:
    db = f"sqlite:///{tmp / 'market.db'}"
    await seed(db, args.players)
    port = free_port()
    proc = launch([sys.executable, "-m", "server.cli", "serve", "--world", str(TEST_WORLD), "--db", db, "--port",
                   str(port), "--scrypt-n", "4", "--no-inference"], port, "llama-land")
    try:
        cs = await clients(f"ws://127.0.0.1:{port}/", args.players)
        n = len(cs)

        async def transfer(i: int, c: GameClient) -> None:
            await c.request("Transfer", Recipient=f"p{(i + 1) % n:03d}", Quantity=10**9)

        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        done, lat = await closed_loop(cs, args.seconds, transfer)
        wall, cpu = time.monotonic() - t0, cpu_seconds(proc.pid) - cpu0
        base = done / wall
        print(f"(1) ledger transfers, {n} players:  {base:8.0f}/s  p50 {pctl(lat, .5):6.1f} ms  "
              f"p99 {pctl(lat, .99):6.1f} ms  server CPU {cpu / wall:.0%}")
        settled: list[float] = []
        filled: dict[str, list[float]] = {c.name: [] for c in cs}  # per buyer: when each fill was answered

        def watch(c: GameClient):
            def on(ev: dict) -> None:
                if ev["Action"] == "Credit-Notice" and ev.get("Token") == "LLAMA" and ev.get("Sender") == "market" \
                        and filled[c.name]:
                    settled.append((time.perf_counter() - filled[c.name].pop(0)) * 1000)
            return on

        for c in cs:
            c.listeners.append(watch(c))

        async def order(i: int, c: GameClient) -> None:
            side = "sell" if i % 2 == 0 else "buy"
            r = await c.request("PlaceOrder", Side=side, Price=1000 * TICK, Quantity=LOT, timeout=30)
            if side == "buy" and r["Filled"]:
                filled[c.name].append(time.perf_counter())

        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        done, lat = await closed_loop(cs, args.seconds, order)
        wall, cpu = time.monotonic() - t0, cpu_seconds(proc.pid) - cpu0
        print(f"(2) market orders, {n} players flat out: {done / wall:5.0f}/s  p50 {pctl(lat, .5):6.1f} ms  "
              f"p99 {pctl(lat, .99):6.1f} ms  server CPU {cpu / wall:.0%}   ({done / wall / base:.2f}x the "
              f"transfer rate; the latency is the queue of {n} waiting players)")
        rate = args.rate
        settled.clear()
        lat = []
        end = time.monotonic() + args.seconds

        async def paced(i: int, c: GameClient) -> None:
            await asyncio.sleep(i / rate)
            while time.monotonic() < end:
                t = time.perf_counter()
                try:
                    await order(i, c)
                    lat.append((time.perf_counter() - t) * 1000)
                except ServerError:
                    pass
                await asyncio.sleep(max(0.0, n / rate - (time.perf_counter() - t)))

        await asyncio.gather(*(paced(i, c) for i, c in enumerate(cs)))
        print(f"(2b) the same players at {rate:g} orders/s: order -> answer with its fills p50 {pctl(lat, .5):.1f} ms "
              f"p99 {pctl(lat, .99):.1f} ms; fill -> buyer's LLAMA credited p50 {pctl(settled, .5):.1f} ms "
              f"p99 {pctl(settled, .99):.1f} ms ({len(settled)} fills)")
        for c in cs:
            await c.close()
    finally:
        proc.terminate()
        proc.wait(30)


async def trader(args: argparse.Namespace, tmp: Path) -> None:
    world = tmp / "world"
    shutil.copytree(DEFAULT_WORLD, world)
    for m in (world / "maps").glob("*.tmj"):
        m.write_text(m.read_text().replace("../../../assets", str(ROOT / "assets")))
    tess = world / "npcs" / "tess.toml"
    tess.write_text(tess.read_text().replace("think_every_s = 20", "think_every_s = 1")
                    .replace("window_s = 60", "window_s = 1"))
    port = free_port()
    proc = launch([sys.executable, "-m", "server.cli", "serve", "--world", str(world), "--db",
                   f"sqlite:///{tmp / 'tess.db'}", "--port", str(port), "--scrypt-n", "4"], port, "llama-land", 120)
    a = b = None
    try:
        a = await GameClient.connect(f"ws://127.0.0.1:{port}/")
        b = await GameClient.connect(f"ws://127.0.0.1:{port}/")
        await a.register("alice", "pw-secret")
        await b.register("bob", "pw-secret")
        rounds = [("I love this sunny day, everything is wonderful!", "So happy, the King granted my petition!"),
                  ("This is terrible, I lost everything.", "Everything is awful today, I am so sad.")]
        lat = []
        for k in range(args.readings):
            first, second = rounds[k % 2]
            await asyncio.sleep(1.2)
            await a.chat(first)
            t = time.perf_counter()
            said = asyncio.ensure_future(a.wait_for(lambda e: e["Action"] == "ChatLine" and e.get("Npc") == "tess",
                                                    timeout=60))
            await b.chat(second)
            line = await said
            lat.append((time.perf_counter() - t) * 1000)
            print(f"    reading {k + 1}: {lat[-1]:6.0f} ms  “{line['Text']}”")
        print(f"(3) trader: chat line -> her decision in the chat: p50 {pctl(lat, .5):.0f} ms  "
              f"max {max(lat):.0f} ms ({len(lat)} readings, one scored job each)")
    finally:
        for c in (a, b):
            if c is not None:
                await c.close()
        proc.terminate()
        proc.wait(30)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--players", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=50.0, help="orders per second in the paced phase")
    parser.add_argument("--readings", type=int, default=5, help="trader readings (0: skip; needs the model)")
    args = parser.parse_args()
    print(f"machine: {machine()}; SQLite log; players in this process, the server a child process")
    with tempfile.TemporaryDirectory() as tmp:
        await load(args, Path(tmp))
        if args.readings:
            await trader(args, Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
