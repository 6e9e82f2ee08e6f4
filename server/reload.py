"""`llama-land serve --reload`: pick up changed maps, NPC files and templates without disconnecting anyone.

The watcher polls the world folder's files (names, sizes, modification times) every second; after a change has
settled it reloads the world exactly as a start would (maps, templates with their grammars, NPC files and
placements, all checked). A world that does not load is reported and the running one stays. What changed is
swapped in place by `WorldRuntime.swap`: rooms get their new map and NPCs under their players (who
stay connected, on a walkable tile, and receive a fresh RoomJoined), NPC actors get their new files, new NPCs
start, removed ones stop, and the herd learns the new templates. Adding or removing rooms, or the King, needs a
restart.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from npcs.cast import load_cast
from npcs.inference.templates import TemplateError, load_templates
from npcs.npcfile import NpcError
from server.world.maps import WorldError
from server.world.reader import load_world

if TYPE_CHECKING:
    from server.runtime import WorldRuntime

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


async def reload_world(runtime: "WorldRuntime") -> list[str]:
    """Load the world folder again and swap in what changed; returns what changed. Raises ReloadError (and the
    running world stays as it was) if the new files do not load."""
    root = runtime.world.root
    model = runtime.inference.model_path if runtime.inference else None
    try:
        world = await asyncio.to_thread(load_world, root)
        templates = await asyncio.to_thread(load_templates, root / "templates", model)
        cast = load_cast(world, templates)
        if model is not None:
            await asyncio.to_thread(runtime.check_npc_grammars, model, cast, templates)
    except (WorldError, TemplateError, NpcError) as exc:
        raise ReloadError(str(exc)) from None
    if set(world.rooms) != set(runtime.world.rooms):
        raise ReloadError("rooms were added or removed: restart the server to change the list of rooms")
    old_king, new_king = runtime.cast.king, cast.king
    if (old_king and old_king.id) != (new_king and new_king.id):
        raise ReloadError("the King was added, removed or replaced: restart the server for that")
    return runtime.swap(world, templates, cast)


async def watch(runtime: "WorldRuntime", every: float = 1.0) -> None:
    root = runtime.world.root
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
            changed = await reload_world(runtime)
        except ReloadError as exc:
            log.error("world not reloaded, the running one stays: %s", exc)
            continue
        log.warning("reloaded %s: %s", root, ", ".join(changed) or "nothing that matters changed")
