"""Rooms on two processes against one process serving the same rooms, in one run, on this machine.

    ./dev bench rooms                          # the default ladder of N
    ./dev bench rooms --counts 500,1000 --seconds 8 --handoffs 20

The world is bench/worlds/open-pair: two open 64x64 rooms (east, west) joined by doors the walkers never reach.
Half the walkers stand in each room (their positions are checkpointed in the database before they log in).

  one   `llama-land serve` with both rooms (and the bank): the single-process baseline, on the same PostgreSQL
  two   a bank (`--bank`) and two room hosts (`--rooms east`, `--rooms west`) on NATS; each walker connects to
        the host of its room (as a client does after its first hand-off)

Per N and layout: e2e p99 of a peer's move (bench/loadgen.py, the walkers bar: 200 ms), the servers' CPU
(all their processes together, and per walker: CPU-seconds per 1,000 walker-seconds), and — for `two` — what
crossed NATS while they walked (nats-server's own counters: messages and bytes per second; it should be near
zero: a room and its players' connections live in one process). Then, with the largest N both layouts held
walking, a probe client walks through the door --handoffs times: the time from the move onto the door to the
RoomJoined of the other room (for `two`: on the other host, reconnect and Resume included), p50/p99.
Everything shares this machine's cores: the servers, PostgreSQL, nats-server and the load generator.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from loadgen import Samples, drive, open_fleet  # noqa: E402
from walkers import E2E_BAR_MS, cpu_seconds, launch, machine, pctl, self_cpu  # noqa: E402

from server.core.db import Database, PositionCheckpoint  # noqa: E402
from server.tools.services import NatsServer, PostgresCluster, free_port  # noqa: E402

WORLD = ROOT / "bench" / "worlds" / "open-pair"


def start(args: list[str], port: int) -> subprocess.Popen:
    return launch([sys.executable, "-m", "server.cli", "serve", "--world", str(WORLD), "--port", str(port),
                   "--scrypt-n", "2", "--no-inference", *args], port, "llama-land", timeout=60)


class Layout:
    """The processes of one layout on a fresh database; ports[room] is where that room's walkers connect."""

    def __init__(self, kind: str, db: str, nats: str) -> None:
        self.kind, self.db = kind, db
        self.procs: list[subprocess.Popen] = []
        if kind == "one":
            port = free_port()
            self.procs.append(start(["--db", db, "--lease-ttl", "5"], port))
            self.ports = {"east": port, "west": port}
        else:
            common = ["--db", db, "--nats", nats]
            bank, east, west = free_port(), free_port(), free_port()
            self.procs.append(start([*common, "--bank"], bank))
            self.procs.append(start([*common, "--rooms", "east"], east))
            self.procs.append(start([*common, "--rooms", "west"], west))
            self.ports = {"east": east, "west": west}

    def cpu(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.procs)

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait(timeout=30)


def db_writes(db_url: str) -> tuple[int, int]:
    """(log entries, position rows' latest write time sum) — the log appends, and a count of checkpointed rows."""
    import psycopg

    dsn = db_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as c:
        appends = c.execute("SELECT count(*) FROM logrecord").fetchone()[0]
        checkpoints = c.execute("SELECT count(*) FROM positioncheckpoint WHERE t_ms > 0").fetchone()[0]
    return appends, checkpoints


def place_in_west(db_url: str, names: list[str]) -> None:
    """Their last position: the west room (so a login puts them there)."""
    db = Database(db_url)
    try:
        with db.session() as session:
            for i, name in enumerate(names):
                session.merge(PositionCheckpoint(name=name, room="west", x=1 + i % 62, y=1 + (i // 62) % 62, t_ms=0))
            session.commit()
    finally:
        db.stop()


async def walk_step(kind: str, n: int, cluster: PostgresCluster, broker: NatsServer, args) -> dict:
    db = cluster.new_database()
    Database(db).stop()  # the tables, before the checkpoints go in
    west = [f"west{i}" for i in range(n - n // 2)]
    place_in_west(db, west)
    layout = Layout(kind, db, broker.url)
    samples = Samples()
    try:
        t0 = time.monotonic()
        clients = await open_fleet("127.0.0.1", layout.ports["east"], n // 2, True, args.observers // 2, samples,
                                   prefix="east")
        clients += await open_fleet("127.0.0.1", layout.ports["west"], n - n // 2, True, args.observers // 2,
                                    samples, prefix="west")
        connect_s = time.monotonic() - t0
        await drive(clients, args.warmup)
        samples.recording = True
        v0, w0 = broker.varz(), db_writes(db)
        srv0, gen0, wall0 = layout.cpu(), self_cpu(), time.monotonic()
        await drive(clients, args.seconds)
        wall = time.monotonic() - wall0
        srv, gen = layout.cpu() - srv0, self_cpu() - gen0
        v1, w1 = broker.varz(), db_writes(db)
        samples.recording = False
        handoffs = await probe(layout, args.handoffs) if args.handoffs and n == args.probe_at else []
        for c in clients:
            c.transport.close()
    finally:
        layout.stop()
    return {"kind": kind, "n": n, "connect_s": connect_s, "e2e50": pctl(samples.e2e_ms, 0.5),
            "e2e99": pctl(samples.e2e_ms, 0.99), "srv_cpu": srv / wall, "gen_cpu": gen / wall,
            "per_k": srv / (n * wall) * 1000, "nats_msgs": (v1["in_msgs"] - v0["in_msgs"]) / wall,
            "nats_kb": (v1["in_bytes"] - v0["in_bytes"]) / wall / 1000, "errors": samples.errors,
            "appends": (w1[0] - w0[0]) / wall, "moved": w1[1],
            "handoffs": handoffs}


async def probe(layout: Layout, times: int) -> list[float]:
    """A full client (client/net.py, which follows hand-offs) walks through the door and back, `times` times."""
    from client.net import GameClient

    client = await GameClient.connect(f"ws://127.0.0.1:{layout.ports['east']}/")
    await client.register("probe", "pw-secret")
    out = []
    for _ in range(times):
        while client.view.y != 32:  # to the door's row (an open room: straight there)
            await client.move("S" if client.view.y < 32 else "N")
            await asyncio.sleep(0.06)
        while client.view.x < 62:
            await client.move("E")
            await asyncio.sleep(0.06)
        here = client.view.room
        joined = asyncio.ensure_future(client.wait_for(lambda e: e["Action"] == "RoomJoined" and e["Room"] != here,
                                                       timeout=30))
        t = time.perf_counter()
        await client.send("Move", Dir="E")
        await joined
        out.append((time.perf_counter() - t) * 1000)
        await client.settled()
        await asyncio.sleep(0.1)
    await client.close()
    return out


ROW = ("{kind:<5} {n:>5} {connect_s:>7.1f} {e2e50:>6.0f} {e2e99:>6.0f} {srv_cpu:>7.0%} {per_k:>8.2f} {gen_cpu:>7.0%} "
       "{nats_msgs:>9.1f} {nats_kb:>8.2f} {appends:>9.1f} {moved:>6} {errors:>6} {verdict}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", default="500,1000,1500,2000", help="comma-separated N to try")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per step")
    parser.add_argument("--warmup", type=float, default=3.0, help="walking seconds before measuring")
    parser.add_argument("--observers", type=int, default=20, help="clients that decode and measure")
    parser.add_argument("--handoffs", type=int, default=20, help="door crossings the probe times")
    parser.add_argument("--probe-at", type=int, default=1000, help="the N walking while the probe crosses")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    counts = [int(c) for c in args.counts.split(",")]
    cluster, broker = PostgresCluster().start(), NatsServer(monitor=True).start()
    try:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={cluster.port} user=postgres dbname=postgres") as c:
            pg = c.execute("SHOW server_version").fetchone()[0]
        nats = subprocess.run(["nats-server", "--version"], capture_output=True, text=True).stdout.strip()
        print(f"machine: {machine()}; PostgreSQL {pg}; {nats}")
        print(f"workload: open-pair (two 64x64 rooms), N/2 walkers in each, every walker steps 10x/s, 10 Hz ticks, "
              f"view radius 12, {args.observers} observers, {args.warmup:g}s warm-up + {args.seconds:g}s measured; "
              f"servers, PostgreSQL, nats-server and the generator share the machine")
        print(f"{'':<5} {'N':>5} {'conn s':>7} {'e2e50':>6} {'e2e99':>6} {'srv cpu':>7} {'cpu/1k':>8} "
              f"{'gen cpu':>7} {'NATS m/s':>9} {'NATS kB/s':>8} {'appends/s':>9} {'ckpted':>6} {'errors':>6}")
        best: dict[str, int] = {}
        probes: dict[str, list[float]] = {}
        for kind in ("one", "two"):
            for n in counts:
                r = await walk_step(kind, n, cluster, broker, args)
                ok = r["e2e99"] <= E2E_BAR_MS
                r["verdict"] = "holds" if ok else "misses"
                print(ROW.format(**r), flush=True)
                if r["handoffs"]:
                    probes[kind] = r["handoffs"]
                if ok:
                    best[kind] = max(best.get(kind, 0), n)
                else:
                    break
        print("cpu/1k: server CPU-seconds per 1,000 walker-seconds (all the layout's processes); appends/s: log "
              "entries written per second while walking; ckpted: players with a checkpointed position (soft state, "
              "one row each, rewritten every checkpoint_s while they move)")
        print(f"largest N holding e2e p99 <= {E2E_BAR_MS:.0f} ms: one process {best.get('one', 0)}, "
              f"two room hosts {best.get('two', 0)}"
              + (f" (ratio {best.get('two', 0) / best['one']:.2f})" if best.get("one") else ""))
        for kind, ms in probes.items():
            what = "portal inside one process" if kind == "one" else "hand-off to the other host"
            print(f"door crossings ({what}, {len(ms)} with {args.probe_at} walking): p50 {pctl(ms, 0.5):.0f} ms, "
                  f"p99 {pctl(ms, 0.99):.0f} ms, max {max(ms):.0f} ms")
    finally:
        broker.remove()
        cluster.stop()


if __name__ == "__main__":
    asyncio.run(main())
