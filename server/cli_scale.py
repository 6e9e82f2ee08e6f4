"""The scale-out parts of the `llama-land` command: `serve --nats` and `llama-land worker` (docs/operations.md,
Scale-out)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

NAMESPACE_HELP = "subject prefix shared by a world's server and its workers (default: llama-land)"


def add_nats_options(serve: argparse.ArgumentParser) -> None:
    serve.add_argument("--nats", metavar="URL", help="connect to NATS (e.g. nats://10.0.0.5:4222) so inference "
                                                     "workers on other processes and machines can join")
    serve.add_argument("--nats-namespace", default="llama-land", help=NAMESPACE_HELP)
    serve.add_argument("--standby", action="store_true", help="wait for another process's leases on this world "
                                                              "(a shared database) to run out, then take over")
    serve.add_argument("--rooms", metavar="NAMES", help="serve only these rooms (comma-separated) as one of several "
                                                        "room hosts of a world on NATS and PostgreSQL")
    serve.add_argument("--bank", action="store_true", help="serve the world's accounts, ledgers, inference herd "
                                                           "and NPC actors (one process; with --rooms, as well)")
    serve.add_argument("--lease-ttl", type=float, default=5.0, help="seconds a process's lease on the actors it "
                                                                   "serves lasts without renewal (default: 5)")


def roles_of(args: argparse.Namespace, rooms: list[str]) -> tuple[list[str] | None, bool]:
    """(the rooms this process serves, None for all; whether it is the bank) from --rooms and --bank, or an
    error naming what is wrong. Without either, one process serves the whole world, as always."""
    if args.rooms is None and not args.bank:
        return None, True
    if not args.nats:
        raise ValueError("--rooms and --bank spread a world over processes: give --nats URL as well")
    if args.db.startswith("sqlite"):
        raise ValueError("--rooms and --bank need one database every process shares: give "
                         "--db postgresql+psycopg://...")
    if args.rooms is None:
        return [], True
    names = [n.strip() for n in args.rooms.split(",") if n.strip()]
    unknown = [n for n in names if n not in rooms]
    if unknown or not names:
        raise ValueError(f"--rooms: no room {', '.join(unknown) or '(none named)'} in this world (it has "
                         f"{', '.join(rooms)})")
    return names, args.bank


def run_loop(main: Any, choice: str = "auto") -> None:
    """Run the server's main coroutine on uvloop (its transports are C: a socket write or read costs a third of
    Python's, which is most of a walking player's cost) or on asyncio's own loop."""
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                print("llama-land: error: --event-loop uvloop: uvloop is not installed", file=sys.stderr)
                raise SystemExit(2)
        else:
            uvloop.run(main)
            return
    asyncio.run(main)


def part_of(rooms: list[str] | None, bank: bool) -> str:
    """What the serve line says this process serves, beyond the world."""
    return "" if rooms is None else ": " + " and ".join(
        ([f"rooms {', '.join(rooms)}"] if rooms else []) + (["the bank"] if bank else []))


def read_live_states(urls: list[str]) -> dict:
    """`replay --compare`: the /state of one server, or of every process of a spread world (each actor in one)."""
    import json
    import urllib.request

    live: dict = {}
    for base in urls:
        url = base.rstrip("/") + "/state"
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                theirs = json.load(resp)
        except OSError as exc:
            print(f"llama-land: error: cannot read live state from {url}: {exc}", file=sys.stderr)
            raise SystemExit(2)
        for actor in set(live) & set(theirs):
            print(f"llama-land: error: {actor} is served by two processes ({url} and another)", file=sys.stderr)
            raise SystemExit(2)
        live.update(theirs)
    return live


def add_worker_command(sub: argparse._SubParsersAction) -> None:
    worker = sub.add_parser("worker", help="run an inference worker for a server on NATS (no database needed)",
                            description="Run one llama.cpp worker that takes a world's inference jobs over NATS. "
                                        "The server refuses a worker whose model or llama.cpp build differs "
                                        "from its own.")
    worker.add_argument("--nats", metavar="URL", required=True, help="the NATS server the world's server uses")
    worker.add_argument("--model", type=Path, help="GGUF model file (default: the installed default model)")
    worker.add_argument("--threads", type=int, default=2, help="llama.cpp threads (default: 2)")
    worker.add_argument("--n-ctx", type=int, default=2048, help="context size in tokens (default: 2048)")
    worker.add_argument("--nats-namespace", default="llama-land", help=NAMESPACE_HELP)
    worker.set_defaults(fn=cmd_worker)


def add_cluster_command(sub: argparse._SubParsersAction, default_world: Path) -> None:
    cluster = sub.add_parser("cluster", help="a world spread over processes: see it run here, or what serves what "
                                             "(docs/operations.md, Scale-out)")
    commands = cluster.add_subparsers(dest="cluster_command", required=True)
    status = commands.add_parser("status", help="print each room, the URL of the process that serves it, its "
                                                "owner and lease epoch")
    status.add_argument("--nats", metavar="URL", required=True, help="the world's NATS server")
    status.add_argument("--nats-namespace", default="llama-land", help=NAMESPACE_HELP)
    status.add_argument("--json", action="store_true", help="print JSON")
    up = commands.add_parser("up", help="start PostgreSQL, NATS, a bank, two room hosts and a worker on this "
                                        "machine; Ctrl-C stops them all")
    up.add_argument("--world", type=Path, default=default_world, help=f"world folder (default: {default_world})")
    up.add_argument("--port", type=int, default=8765, help="the bank's port; the room hosts take the next two "
                                                          "(default: 8765)")
    up.add_argument("--model", help="GGUF model for the bank and the worker (default: the world's, or the bundled)")
    up.add_argument("--print", dest="show_only", action="store_true",
                    help="print the commands for machines of their own instead of running anything")
    cluster.set_defaults(fn=cmd_cluster)


def cmd_cluster(args: argparse.Namespace) -> None:
    if args.cluster_command == "up":
        from server.tools.cluster import up
        from server.world.maps import WorldError
        from server.world.reader import load_world

        try:
            world = load_world(args.world)
        except WorldError as exc:
            print(f"llama-land: error: bad world: {exc}", file=sys.stderr)
            raise SystemExit(2)
        raise SystemExit(up(args.world.resolve(), world, args.port, args.model, args.show_only))
    import json

    from server.core.directory import Directory, DirectoryUnavailable
    from server.core.natsbus import NatsBus

    async def read() -> dict:
        bus = NatsBus(args.nats, args.nats_namespace, name="llama-land cluster status")
        await bus.connect()
        try:
            directory = Directory(bus.nc, args.nats_namespace)
            await directory.open()
            return await directory.entries("room")
        finally:
            await bus.close()

    try:
        rooms = asyncio.run(read())
    except (ConnectionError, DirectoryUnavailable) as exc:
        print(f"llama-land: error: {exc}", file=sys.stderr)
        raise SystemExit(2)
    if args.json:
        print(json.dumps(rooms, indent=2, sort_keys=True))
        return
    if not rooms:
        print("no room is served on this NATS namespace")
    for name, entry in sorted(rooms.items()):
        print(f"{name:<20} {entry['Url']:<32} {entry['Owner']} (epoch {entry['Epoch']})")


def cmd_worker(args: argparse.Namespace) -> None:
    from npcs.inference.models import ModelError, default_model_path
    from npcs.inference.remote import run_worker
    from npcs.inference.worker import JobFailed

    model = str(args.model or default_model_path())
    try:
        code = asyncio.run(run_worker(args.nats, model, args.threads, args.n_ctx, args.nats_namespace))
    except ConnectionError as exc:
        print(f"llama-land: error: {exc}", file=sys.stderr)
        code = 2
    except (ModelError, JobFailed) as exc:
        print(f"llama-land: error: cannot start the worker: {exc}", file=sys.stderr)
        code = 2
    raise SystemExit(code)
