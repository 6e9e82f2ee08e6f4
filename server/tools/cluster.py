"""`llama-land cluster up`: a whole spread world on this machine, to see the scale-out work before deploying it.

It starts a throwaway PostgreSQL and a nats-server (server/tools/services.py), then the world's processes as real
`llama-land` children — a bank (accounts, ledgers, the Fed, the herd, running its jobs on the remote worker), two
room hosts (the rooms split between them, the start room on the first), one inference worker — prints where to
connect, and on Ctrl-C stops them all, last started first, and removes the data. The commands it runs are the
ones docs/operations.md gives for three machines; `--print` shows them.
"""

from __future__ import annotations

import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from server.tools.services import NatsServer, PostgresCluster, nats_available, postgres_available
from server.world.maps import World


@dataclass
class Part:
    name: str
    args: list[str]
    port: int | None = None  # a serving process's websocket port (it is up once the port opens)


def split_rooms(world: World) -> tuple[list[str], list[str]]:
    """Two room hosts' shares: alternate rooms in the world's order, the start room first on the first host."""
    names = [world.start_room, *(n for n in world.rooms if n != world.start_room)]
    return names[0::2], names[1::2]


def plan(world_dir: Path, world: World, db: str, nats: str, base_port: int, host: str = "127.0.0.1",
         model: str | None = None) -> list[Part]:
    a, b = split_rooms(world)
    serve = ["serve", "--world", str(world_dir), "--db", db, "--nats", nats, "--host", host]
    worker = ["worker", "--nats", nats] + (["--model", model] if model else [])
    model_args = ["--model", model] if model else []
    return [
        Part("bank", [*serve, "--port", str(base_port), "--bank", "--inference-workers", "0", *model_args],
             base_port),
        Part("rooms A", [*serve, "--port", str(base_port + 1), "--rooms", ",".join(a), "--no-inference"],
             base_port + 1),
        Part("rooms B", [*serve, "--port", str(base_port + 2), "--rooms", ",".join(b), "--no-inference"],
             base_port + 2),
        Part("worker", worker),
    ]


def command_line(part: Part) -> str:
    return "llama-land " + " ".join(shlex.quote(a) for a in part.args)


def wait_for_port(proc: subprocess.Popen, host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with code {proc.returncode}")
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"did not open port {port} within {timeout:g}s")


def up(world_dir: Path, world: World, base_port: int, model: str | None, show_only: bool, out=sys.stdout) -> int:
    missing = postgres_available() or nats_available()
    if missing:
        print(f"llama-land: error: {missing}", file=sys.stderr)
        return 2
    if show_only:
        for part in plan(world_dir, world, "postgresql+psycopg://USER@DB-HOST/llama", "nats://NATS-HOST:4222",
                         base_port, "0.0.0.0", model):
            print(f"# {part.name}\n{command_line(part)}", file=out)
        return 0
    pg, broker = PostgresCluster(), NatsServer()
    procs: list[tuple[Part, subprocess.Popen]] = []
    stop = {"now": False}

    def on_signal(signum, frame) -> None:
        stop["now"] = True

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        print("cluster: starting PostgreSQL and nats-server (throwaway, on 127.0.0.1)", file=out, flush=True)
        pg.start()
        broker.start()
        db = pg.new_database()
        for part in plan(world_dir, world, db, broker.url, base_port, model=model):
            print(f"cluster: {part.name}: {command_line(part)}", file=out, flush=True)
            proc = subprocess.Popen([sys.executable, "-m", "server.cli", *part.args], stdin=subprocess.DEVNULL,
                                    start_new_session=True)  # Ctrl-C reaches them through this process, in order
            procs.append((part, proc))
            if part.port is not None:
                wait_for_port(proc, "127.0.0.1", part.port, 120)
        a, b = split_rooms(world)
        print(f"\ncluster: up. Connect to any of them — players are sent to the host of their room:\n"
              f"  bank     ws://127.0.0.1:{base_port}/   (accounts, ledgers, the Fed, the herd)\n"
              f"  rooms A  ws://127.0.0.1:{base_port + 1}/   ({', '.join(a)})\n"
              f"  rooms B  ws://127.0.0.1:{base_port + 2}/   ({', '.join(b)})\n"
              f"  play:    llama-land play --url ws://127.0.0.1:{base_port}/\n"
              f"  status:  llama-land cluster status --nats {broker.url}\n"
              f"Ctrl-C stops everything.", file=out, flush=True)
        while not stop["now"]:
            for part, proc in procs:
                if proc.poll() is not None:
                    print(f"cluster: {part.name} exited with code {proc.returncode}; stopping", file=out, flush=True)
                    stop["now"] = True
            time.sleep(0.2)
        return 0
    except RuntimeError as exc:
        name = procs[-1][0].name if procs else "services"
        print(f"llama-land: error: cluster: {name}: {exc}", file=sys.stderr)
        return 1
    finally:
        print("cluster: stopping", file=out, flush=True)
        for part, proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        broker.remove()
        if pg.data.exists():
            pg.stop()
        for s, handler in old.items():
            signal.signal(s, handler)
        print("cluster: stopped", file=out, flush=True)
