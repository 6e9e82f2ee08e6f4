"""Helpers for the economy tests: a copy of the default world with edited NPC files, served in-process with the
real default model, and the checks every scenario ends with."""

import shutil
from pathlib import Path

import msgpack
from sqlmodel import select

from client.net import GameClient
from npcs.inference.engine import InferenceConfig
from npcs.inference.models import default_model_path
from server.app import Server
from server.core.db import LogRecord
from server.world.reader import load_world

from conftest import FAST, ROOT, near_npc, through

UNIT = 10**12
DEFAULT_WORLD = ROOT / "worlds" / "llama-land"


def world_copy(tmp_path: Path, edits: dict[str, list[tuple[str, str]]] | None = None) -> Path:
    """The default world in tmp_path, with (old, new) replacements applied to the named files."""
    copy = tmp_path / "world"
    shutil.copytree(DEFAULT_WORLD, copy)
    for m in (copy / "maps").glob("*.tmj"):
        m.write_text(m.read_text().replace("../../../assets", str(ROOT / "assets")))
    for rel, changes in (edits or {}).items():
        path = copy / rel
        text = path.read_text()
        for old, new in changes:
            assert old in text, (rel, old)
            text = text.replace(old, new)
        path.write_text(text)
    return copy


async def serve(world: Path, db_url: str, inference: bool = True) -> Server:
    config = InferenceConfig(str(default_model_path()), workers=2) if inference else None
    srv = Server(load_world(world), db_url, "127.0.0.1", 0, FAST, config)
    await srv.start()
    return srv


async def player(srv: Server, name: str) -> GameClient:
    client = await GameClient.connect(srv.url)
    await client.register(name, "pw-secret")
    return client


WORLD = load_world(DEFAULT_WORLD)


async def to_npc(client: GameClient, portal: str | None, npc: str, reach: int) -> None:
    """From the plaza, through a portal (None: from where the client is), up to an NPC of the default world
    (within its reach)."""
    if portal is not None:
        await through(client, WORLD, portal)
    spot = next(o for o in WORLD.rooms[client.view.room].npcs if o["name"] == npc)
    await near_npc(client, WORLD, (spot["x"], spot["y"]), reach)


async def to_the_king(client: GameClient, from_plaza: bool = True) -> None:
    await to_npc(client, "to-hall" if from_plaza else None, "king", 6)


async def balances(client: GameClient) -> dict[str, int]:
    return (await client.request("Balance"))["Balances"]


def books_balance(srv: Server) -> None:
    """Balances + escrow = supply, per token; and no LLAMA was minted without a logged Fed decision."""
    for ledger in (srv.runtime.ledger, srv.runtime.llama):
        assert ledger.state.consistent(), ledger.id
    with srv.runtime.db.session() as session:
        rows = session.exec(select(LogRecord).where(LogRecord.actor.in_(["token:LLAMA", "fed"]))).all()
    entries = [(r.actor, msgpack.unpackb(r.body)) for r in rows]
    decided = {f"petition:{e['Pid']}" for a, e in entries if a == "fed" and e["Action"] == "Verdict"}
    decided |= {f"endow:{e['To']}" for a, e in entries if a == "fed" and e["Action"] == "Endow"}
    for actor, e in entries:
        if actor == "token:LLAMA" and e["Action"] == "Mint":
            assert e["By"] == "fed" and e["Ref"] in decided, e


def spot(world, taken=()) -> tuple[int, int]:
    """A free floor tile just out of reach of a player arriving at the plaza's spawn."""
    room, reach = world.rooms["plaza"], world.rules.near_radius
    spawn = room.spawns["default"]
    far = [(x, y) for y in range(room.height) for x in range(room.width) if room.standable(x, y)
           and (x, y) not in taken and min((x - a) ** 2 + (y - b) ** 2 for a, b in spawn) > (reach + 1) ** 2]
    return min(far, key=lambda t: min((t[0] - a) ** 2 + (t[1] - b) ** 2 for a, b in spawn))
