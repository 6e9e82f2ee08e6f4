"""`llama-land serve --reload`: pick up changed maps, NPC files and templates without disconnecting anyone.

The watcher polls the world folder's files (names, sizes, modification times) every second; after a change has
settled it reloads the world exactly as a start would (maps, templates with their grammars, NPC files and
placements, all checked). A world that does not load is reported and the running one stays. What changed is
swapped in place: rooms get their new map and NPCs under their players (who stay connected, on a walkable tile,
and receive a fresh RoomJoined), NPC actors get their new files, new NPCs start, removed ones stop, and the herd
learns the new templates. Adding or removing rooms, or the King, needs a restart.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from npcs.cast import load_cast
from npcs.npcfile import NpcError
from npcs.actors.services import NpcActor
from npcs.inference.templates import TemplateError, load_templates

from server.core.clock import now_ms
from server.world.maps import WorldError, load_world

if TYPE_CHECKING:
    from server.app import Server

log = logging.getLogger("llama_land.reload")


class ReloadError(Exception):
    pass


def fingerprint(root: Path) -> tuple:
    files = []
    for path in sorted(root.rglob("*")):
        try:
            if path.is_file():
                st = path.stat()
                files.append((str(path.relative_to(root)), st.st_size, st.st_mtime_ns))
        except OSError:  # a file being replaced while we look: the next poll sees it
            continue
    return tuple(files)


async def reload_world(server: "Server") -> list[str]:
    """Load the world folder again and swap in what changed; returns what changed. Raises ReloadError (and the
    running world stays as it was) if the new files do not load."""
    root = server.world.root
    model = server.inference.model_path if server.inference else None
    try:
        world = await asyncio.to_thread(load_world, root)
        templates = await asyncio.to_thread(load_templates, root / "templates", model)
        cast = load_cast(world, templates)
        if model is not None:
            await asyncio.to_thread(server._check_npc_grammars, model, cast, templates)
    except (WorldError, TemplateError, NpcError) as exc:
        raise ReloadError(str(exc)) from None
    if set(world.rooms) != set(server.world.rooms):
        raise ReloadError("rooms were added or removed: restart the server to change the list of rooms")
    old_king, new_king = server.cast.king, cast.king
    if (old_king and old_king.id) != (new_king and new_king.id):
        raise ReloadError("the King was added, removed or replaced: restart the server for that")
    changed = _npcs(server, cast)
    t = now_ms()
    for name, room in world.rooms.items():
        before = sorted((p.spec.id, p.x, p.y, p.spec) for p in server.cast.in_room(name))
        after = sorted((p.spec.id, p.x, p.y, p.spec) for p in cast.in_room(name))
        if room.sha256 != server.world.rooms[name].sha256 or before != after or world.rules != server.world.rules:
            server.rooms[name].deliver({"Action": "Reload", "World": world, "Map": room, "Npcs": cast.in_room(name),
                                        "T": t})
            changed.append(f"room {name}")
    if server.herd is not None:
        server.herd.templates.update({**templates, **cast.templates()})
    server.world, server.templates, server.cast = world, templates, cast
    server.npc_names = frozenset(cast.names())
    server.service_accounts = server.service_accounts | {s.id for s in cast.of_kind("oracle")}
    return changed


def _npcs(server: "Server", cast) -> list[str]:
    changed = []
    if server.fed is not None and cast.king is not None:
        king = cast.king
        if king != server.fed.king or [m.id for m in server.fed.committee] != king.committee or \
                any(cast.specs[m] != old for m, old in zip(king.committee, server.fed.committee)):
            changed.append("npc king")
        server.fed.configure(king, cast.placed[king.id].room, [cast.specs[m] for m in king.committee])
    running = {a.spec.id: a for a in server.npc_actors if isinstance(a, NpcActor)}
    for npc_id, presence in cast.placed.items():
        actor = running.pop(npc_id, None)
        if actor is not None and actor.spec.kind == presence.spec.kind:
            if actor.spec != presence.spec or actor.room != presence.room:
                actor.configure(presence.spec, presence.room)
                changed.append(f"npc {npc_id}")
            continue
        if actor is not None:
            _retire(server, actor)
        fresh = server.make_npc_actor(presence)
        if fresh is not None:
            server.npc_actors.append(fresh)
            server.actors.append(fresh)
            server.bus.register(fresh)
            fresh.start()
            opener = getattr(fresh, "open", None)
            if opener is not None:
                server.spawn(opener(now_ms()))
            changed.append(f"npc {npc_id} (new)")
    for npc_id, actor in running.items():
        _retire(server, actor)
        changed.append(f"npc {npc_id} (gone)")
    return changed


def _retire(server: "Server", actor: NpcActor) -> None:
    server.npc_actors.remove(actor)
    server.actors.remove(actor)
    server.bus.unregister(actor.id)
    server.spawn(actor.stop())


async def watch(server: "Server", every: float = 1.0) -> None:
    root = server.world.root
    seen = await asyncio.to_thread(fingerprint, root)
    while True:
        await asyncio.sleep(every)
        now = await asyncio.to_thread(fingerprint, root)
        if now == seen:
            continue
        await asyncio.sleep(every / 2)  # let an editor finish writing
        now = await asyncio.to_thread(fingerprint, root)
        seen = now
        try:
            changed = await reload_world(server)
        except ReloadError as exc:
            log.error("world not reloaded, the running one stays: %s", exc)
            continue
        log.warning("reloaded %s: %s", root, ", ".join(changed) or "nothing that matters changed")

