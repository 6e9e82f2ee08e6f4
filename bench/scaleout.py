"""Scale-out figures, in one run, each against its baseline measured in the same run:

  (a) petition sent -> Granted, one at a time on an idle server (p50 / p95): the inference worker in the server's
      process vs a `llama-land worker` process over NATS (same model, same threads); the raw baseline is the same
      three votes run directly on llama-cpp-python in this process
  (b) 20 players walking in the King's hall while 20 petitions arrive at once: the walkers' tick interval (p50 /
      p99) with the worker in-process vs in another process; the baseline is the same walk with no petitions
  (c) the hash-chained log: one actor appending (rate, p50 / p99 of an append) and 20 actors appending at once
      (rate: commits are grouped), on SQLite vs PostgreSQL; the baselines are one INSERT + COMMIT per row with
      sqlite3 and psycopg directly

A throwaway nats-server and PostgreSQL cluster are started on 127.0.0.1 (as for the tests).

    ./dev bench scaleout [--threads 2] [--idle 10] [--storm 20] [--appends 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import llama_cpp  # noqa: E402
import psycopg  # noqa: E402

from server.tools.services import NatsServer, PostgresCluster  # noqa: E402
from bench.petitions import HONEST, bench_world, petition, raw_baseline, until_idle  # noqa: E402
from bench.walkers import HallWalkers, machine, pctl  # noqa: E402
from client.net import GameClient  # noqa: E402
from npcs.inference.engine import InferenceConfig  # noqa: E402
from npcs.inference.models import default_model_path  # noqa: E402
from server.app import Server  # noqa: E402
from server.core.db import Database  # noqa: E402
from server.core.log import MessageLog  # noqa: E402
from server.net.session import SessionConfig  # noqa: E402
from server.reducers import state_for  # noqa: E402
from server.world.reader import load_world  # noqa: E402


def ms_row(name: str, ms: list[float], hi: float = 0.95) -> str:
    return f"{name:<44} n={len(ms):>4}  p50 {pctl(ms, 0.5):>7.1f} ms  p{round(hi * 100)} {pctl(ms, hi):>7.1f} ms"


async def start_server(world: Path, tmp: Path, tag: str, threads: int, nats_url: str | None) -> tuple[Server, Any]:
    """In-process worker (nats_url None) or none in the server and one `llama-land worker` process."""
    config = InferenceConfig(str(default_model_path()), workers=0 if nats_url else 1, threads=threads)
    srv = Server(load_world(world), f"sqlite:///{tmp / f'{tag}.db'}", "127.0.0.1", 0, SessionConfig(scrypt_n=2**8),
                 config, nats_url=nats_url, namespace=f"bench-{tag}")
    await srv.start()
    worker = None
    if nats_url:
        worker = subprocess.Popen([sys.executable, "-m", "server.cli", "worker", "--nats", nats_url, "--threads",
                                   str(threads), "--nats-namespace", f"bench-{tag}"], cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not srv.runtime.engine.workers:
            await asyncio.sleep(0.05)
    return srv, worker


async def idle_petitions(srv: Server, n: int, tag: str) -> list[float]:
    client = await GameClient.connect(srv.url)
    await client.register(f"idle-{tag}", "pw-secret")
    await petition(client, "A warm-up petition about hay, so the first figure is not the model loading.")
    out = []
    for i in range(n):
        await until_idle(srv)
        ms, verdict = await petition(client, HONEST[i % len(HONEST)] + f" (idle {i})")
        assert verdict["Action"] == "Granted", verdict
        out.append(ms)
    await client.close()
    return out


async def storm_ticks(srv: Server, storm: int, tag: str, seconds: float | None = None) -> list[float]:
    """Tick intervals seen by 20 walkers while `storm` players petition at once (or for `seconds` with none)."""
    walkers = await HallWalkers.join(srv.url, 20, f"walker-{tag}-")
    petitioners = []
    for i in range(storm):
        c = await GameClient.connect(srv.url)
        await c.register(f"storm-{tag}-{i:02d}", "pw-secret")
        petitioners.append(c)
    await walkers.start()
    if storm:
        await asyncio.gather(*(petition(c, HONEST[i % len(HONEST)] + f" (storm {tag} {i})")
                               for i, c in enumerate(petitioners)))
    else:
        await asyncio.sleep(seconds or 10)
    gaps = await walkers.stop()
    for c in walkers.clients + petitioners:
        await c.close()
    return gaps


async def log_appends(url: str, n: int) -> tuple[list[float], float, float]:
    """(per-append ms for one actor, its rate, the rate of 20 actors appending at once)."""
    db = Database(url)
    db.start()
    log = MessageLog(db, state_for)
    try:
        one = []
        started = time.perf_counter()
        for i in range(n):
            t0 = time.perf_counter()
            await log.append("room:bench", {"Action": "Chat", "Player": "a", "Scope": "room", "Text": f"hi {i}",
                                            "T": i})
            one.append((time.perf_counter() - t0) * 1000)
        rate = n / (time.perf_counter() - started)

        async def actor(k: int) -> None:
            for i in range(n // 20):
                await log.append(f"room:bench{k}", {"Action": "Chat", "Player": "a", "Scope": "room", "Text": "x",
                                                    "T": i})
        started = time.perf_counter()
        await asyncio.gather(*(actor(k) for k in range(20)))
        return one, rate, 20 * (n // 20) / (time.perf_counter() - started)
    finally:
        db.stop()


def pg_version(cluster: PostgresCluster) -> str:
    with psycopg.connect(cluster.url().replace("postgresql+psycopg://", "postgresql://")) as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


def raw_inserts(kind: str, target: str, n: int) -> float:
    """Rows per second, one INSERT + COMMIT each, straight through the driver."""
    if kind == "sqlite":
        conn = sqlite3.connect(target)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE raw (id INTEGER PRIMARY KEY, body BLOB)")
        started = time.perf_counter()
        for i in range(n):
            conn.execute("INSERT INTO raw (body) VALUES (?)", (b"x" * 120,))
            conn.commit()
    else:
        conn = psycopg.connect(target.replace("postgresql+psycopg://", "postgresql://"))
        conn.execute("CREATE TABLE raw (id SERIAL PRIMARY KEY, body BYTEA)")
        conn.commit()
        started = time.perf_counter()
        for i in range(n):
            conn.execute("INSERT INTO raw (body) VALUES (%s)", (b"x" * 120,))
            conn.commit()
    rate = n / (time.perf_counter() - started)
    conn.close()
    return rate


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2, help="llama.cpp threads of the one worker (default: 2)")
    ap.add_argument("--idle", type=int, default=10, help="petitions one at a time, per mode (default: 10)")
    ap.add_argument("--storm", type=int, default=20, help="petitions at once during the walk (default: 20)")
    ap.add_argument("--appends", type=int, default=2000, help="log appends per database (default: 2000)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="llama-scaleout-"))
    broker = NatsServer().start()
    cluster = PostgresCluster().start()
    print(f"machine: {machine()}")
    print(f"model: {default_model_path().name}, llama-cpp-python {llama_cpp.__version__}; one inference worker of "
          f"{args.threads} thread(s); nats-server {subprocess.run(['nats-server', '--version'], capture_output=True, text=True).stdout.strip()}; "
          f"PostgreSQL {pg_version(cluster)} (fsync and synchronous_commit off, as in the tests); SQLite {sqlite3.sqlite_version} (WAL, "
          f"synchronous=NORMAL)")
    try:
        world = bench_world(tmp)
        latency, ticks = {}, {}
        for mode, url in (("in-process", None), ("over NATS", broker.url)):
            srv, worker = await start_server(world, tmp, mode.replace(" ", "-"), args.threads, url)
            try:
                latency[mode] = await idle_petitions(srv, args.idle, mode.replace(" ", "-"))
                await until_idle(srv)
                ticks[mode] = await storm_ticks(srv, args.storm, mode.replace(" ", "-"))
                await until_idle(srv)
                if url is None:
                    ticks["no petitions"] = await storm_ticks(srv, 0, "quiet", seconds=10)
                    raw = await asyncio.to_thread(raw_baseline, srv, HONEST[:args.idle], args.threads)
            finally:
                await srv.stop()
                if worker is not None:
                    worker.terminate()
                    worker.wait(30)
        for mode, ms in latency.items():
            print(ms_row(f"(a) petition -> verdict, worker {mode}", ms))
        print(ms_row("(a) raw llama-cpp-python, the 3 votes", raw))
        a, b = pctl(latency["in-process"], 0.5), pctl(latency["over NATS"], 0.5)
        print(f"    p50 over NATS / in-process = {b / a:.2f}x; in-process / raw = {a / pctl(raw, 0.5):.2f}x; "
              f"p95 ratio {pctl(latency['over NATS'], 0.95) / pctl(latency['in-process'], 0.95):.2f}x")
        for mode, gaps in ticks.items():
            label = "no petitions" if mode == "no petitions" else f"{args.storm} petitions, worker {mode}"
            print(ms_row(f"(b) tick interval, {label}", gaps, 0.99))
        quiet = pctl(ticks["no petitions"], 0.99)
        print(f"    tick p99 / no-petition p99: in-process {pctl(ticks['in-process'], 0.99) / quiet:.2f}x, "
              f"over NATS {pctl(ticks['over NATS'], 0.99) / quiet:.2f}x")
        for kind, url, raw_target in (("sqlite", f"sqlite:///{tmp / 'log.db'}", str(tmp / "raw.db")),
                                      ("postgresql", cluster.new_database(), cluster.new_database())):
            one, rate, many = await log_appends(url, args.appends)
            raw_rate = raw_inserts(kind, raw_target.replace("sqlite:///", ""), args.appends)
            print(ms_row(f"(c) log append, one actor, {kind}", one, 0.99) + f"  {rate:>7.0f}/s")
            print(f"    20 actors at once: {many:.0f}/s; raw INSERT+COMMIT: {raw_rate:.0f}/s; "
                  f"one actor / raw = {rate / raw_rate:.2f}x, 20 actors / raw = {many / raw_rate:.2f}x")
    finally:
        broker.remove()
        cluster.stop()


if __name__ == "__main__":
    asyncio.run(main())
