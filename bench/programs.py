"""NPC programs under load: players using an outside program's actions, against the same server's plainest round
trips in the same run.

    ./dev bench programs                      # 16 players (an NPC's open-request limit), 10 s per phase
    ./dev bench programs --players 8 --seconds 5 --rate 100

The server is `llama-land serve` (the default world, SQLite, no inference) as a child process; the NPC program is
a second process (client/npc_sdk.py, one free and one paid action that answer at once); the players run in this
process, each at an even pace under the per-connection rate limit (200 requests/s offered in all, by default).
Phases: (0a) `Ping` — one round trip, the floor;
(0b) `Transfer` of wAR — one ledger change, the floor under any paid action; (1) a free `Use` — player → server
→ program → server → player, answered when `NpcAnswer` arrives; (2) a paid `Use` — the same with the price held
and settled (two ledger changes). Figures: requests answered per second, p50/p99 of request → answer, the
server's CPU time per request; each program phase as a ratio to its floor. All three processes share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from walkers import cpu_seconds, launch, machine, pctl  # noqa: E402

from client.net import GameClient, ServerError  # noqa: E402
from server.tools.services import free_port  # noqa: E402
from server.world.reader import load_world  # noqa: E402

DEFAULT_WORLD = ROOT / "worlds" / "llama-land"
PROGRAM = '''
import sys
from client.npc_sdk import Npc, Text, action, fixed

class Echo(Npc):
    @action(title="Echo", fields={"words": Text(max_length=20)})
    async def echo(self, request, words):
        return words

    @action(title="Paid echo", price=fixed("0.001"), fields={"words": Text(max_length=20)})
    async def paid(self, request, words):
        return words

Echo().run(sys.argv[1], "Echo", sys.argv[2])
'''


def near_spawn() -> tuple[int, int]:
    """A free tile within every spawn tile's reach, so every player can use the NPC where they arrive."""
    world = load_world(DEFAULT_WORLD)
    room, reach = world.rooms["plaza"], world.rules.near_radius
    spawn = room.spawns["default"]
    fits = [(x, y) for y in range(room.height) for x in range(room.width) if room.standable(x, y)
            and (x, y) not in spawn and max((x - a) ** 2 + (y - b) ** 2 for a, b in spawn) <= (reach - 1) ** 2]
    return fits[0]


async def phase(cs: list[GameClient], seconds: float, rate: float, one) -> tuple[float, list[float], int]:
    """Every player sends at an even pace (rate / players a second each: under the per-connection rate limit),
    the next request once the last is answered; (answered per second, latencies in ms, refusals such as BUSY)."""
    lat: list[float] = []
    refused = 0
    every = len(cs) / rate
    end = time.monotonic() + seconds

    async def run(i: int, c: GameClient) -> None:
        nonlocal refused
        await asyncio.sleep(i * every / len(cs))
        while time.monotonic() < end:
            t = time.perf_counter()
            try:
                await one(i, c)
                lat.append((time.perf_counter() - t) * 1000)
            except ServerError:
                refused += 1
            await asyncio.sleep(max(0.0, every - (time.perf_counter() - t)))

    t0 = time.monotonic()
    await asyncio.gather(*(run(i, c) for i, c in enumerate(cs)))
    return len(lat) / (time.monotonic() - t0), lat, refused


async def use(c: GameClient, name: str) -> None:
    sent = await c.request("Use", Npc="echo", Name=name, Fields={"words": "hay"}, timeout=30)
    await c.wait_for(lambda e: e["Action"] in ("NpcAnswer", "NpcFailed") and e["RequestId"] == sent["RequestId"],
                     timeout=30, past=True)


async def bench(args: argparse.Namespace, tmp: Path) -> None:
    port = free_port()
    db = f"sqlite:///{tmp / 'programs.db'}"
    server = launch([sys.executable, "-m", "server.cli", "serve", "--world", str(DEFAULT_WORLD), "--db", db,
                     "--port", str(port), "--scrypt-n", "4", "--no-inference"], port, "llama-land")
    url = f"ws://127.0.0.1:{port}/"
    program = None
    try:
        x, y = near_spawn()
        key_file = tmp / "programs.db.admin-key"
        for _ in range(100):
            if key_file.is_file():
                break
            await asyncio.sleep(0.05)
        op = await GameClient.connect(url)
        key = (await op.request("AdminNpcAdd", Key=key_file.read_text().strip(), Name="Echo", Room="plaza", X=x,
                                Y=y))["Key"]
        await op.close()
        cs = []
        for i in range(args.players):
            c = await GameClient.connect(url)
            await c.register(f"p{i:03d}", "pw-secret")
            cs.append(c)
        program = subprocess.Popen([sys.executable, "-c", PROGRAM, url, key], cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await cs[0].wait_for(lambda e: e["Action"] == "NpcJoined", timeout=30, past=True)
        n = len(cs)
        print(f"NPC programs: {n} players, {args.rate:g} requests/s offered, {args.seconds:g} s per phase; {machine()}")
        print("server: llama-land serve, default world, SQLite, no inference; the program: client/npc_sdk.py, "
              "answering at once; players in this process")
        rows = []
        for label, one in [("(0a) Ping", lambda i, c: c.request("Ping")),
                           ("(0b) Transfer 1 wAR unit", lambda i, c: c.request(
                               "Transfer", Recipient=f"p{(i + 1) % n:03d}", Quantity=10**6)),
                           ("(1) Use, free", lambda i, c: use(c, "echo")),
                           ("(2) Use, paid (held, settled)", lambda i, c: use(c, "paid"))]:
            cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
            pcpu0 = cpu_seconds(program.pid)
            rate, lat, refused = await phase(cs, args.seconds, args.rate, one)
            wall = time.monotonic() - t0
            per = (cpu_seconds(server.pid) - cpu0) / max(1, len(lat)) * 1000
            rows.append((pctl(lat, .5), per))
            print(f"{label:<32} {rate:6.0f}/s  p50 {pctl(lat, .5):6.1f} ms  p99 {pctl(lat, .99):6.1f} ms  "
                  f"server CPU {per:5.2f} ms/request  program CPU "
                  f"{(cpu_seconds(program.pid) - pcpu0) / wall:.0%}" + (f"  refused {refused}" if refused else ""))
        print(f"ratios, same run: free Use p50 {rows[2][0] / rows[0][0]:.1f}x Ping's, server CPU per request "
              f"{rows[2][1] / rows[0][1]:.1f}x; paid Use p50 {rows[3][0] / rows[1][0]:.1f}x Transfer's, server CPU "
              f"{rows[3][1] / rows[1][1]:.1f}x")
        for c in cs:
            await c.close()
    finally:
        if program is not None:
            program.kill()
        server.terminate()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--players", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second offered, all players")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(bench(args, Path(tmp)))


if __name__ == "__main__":
    main()
