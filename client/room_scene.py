"""One room as the client draws it: the Tiled map from the world package, the llamas on it, their names and speech.

Positions come from the server (client/world_view.py applies View and Tick by the interest rule); this module
turns them into sprites that glide between ticks instead of jumping, and draws speech bubbles and the
"thinking…" marker over NPCs. Tile (x, y) counts from the top left like Tiled; arcade's y grows upwards.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import arcade
import pyglet

from server.world.reader import load_room

from client import crowd
from client.art import NPC_COLORS, WALK_FRAMES, llama_texture, player_color
from client.world_view import WorldView

TILE = 32
STRIDE_PX = 9  # pixels walked per leg frame
NAME_EVERY = 5  # syncs (ticks) between placements of the names


@dataclass
class Llama:
    eid: int
    name: str
    sprite: arcade.Sprite
    label: arcade.Text
    npc: dict[str, Any] | None = None
    bubble: arcade.Text | None = None
    bubble_until: float = 0.0
    thinking: arcade.Text | None = None
    target: tuple[float, float] = field(default=(0.0, 0.0))
    facing: str = "S"  # E, W, N (away from you) or S (towards you)
    walked: float = 0.0  # pixels walked since it last stood still: picks the leg frame
    pose: tuple[str, int] = ("S", 0)  # (facing, frame) of the texture it wears
    name_lift: float = 0.0  # extra height of its name where it would cover another
    name_width: float = 0.0  # of its label, measured once (pyglet lays the text out to tell)

    def name_rect(self) -> tuple[float, float, float, float]:
        return self.label.x - self.name_width / 2, self.label.y - 2, self.name_width, 13

    def think(self, text: str) -> None:
        self.thinking = arcade.Text(text, 0, 0, arcade.color.LIGHT_GRAY, 9, anchor_x="center", italic=True) \
            if text else None


class RoomScene:
    def __init__(self, world_root: Path, joined: dict[str, Any]):
        self.name = joined["Room"]
        path = world_root / joined["Map"]
        self.tilemap = arcade.load_tilemap(str(path), scaling=1.0)
        self.scene = arcade.Scene.from_tilemap(self.tilemap)
        self.room = load_room(self.name, path)  # the collision grid: for prediction and click-to-move
        self.width, self.height = joined["Width"], joined["Height"]
        self.npcs = {n["Eid"]: n for n in joined.get("Npcs", [])}
        self.llamas: dict[int, Llama] = {}
        self.sprites = arcade.SpriteList()
        self.labels = pyglet.graphics.Batch()  # every name in one draw call: separate labels halve the frame rate
        self.speed = joined["Rules"]["Speed"]
        self.bubble_rects: list[tuple[float, float, float, float]] = []  # as last drawn (tests check them)
        self.syncs = 0

    def center(self, x: float, y: float) -> tuple[float, float]:
        return x * TILE + TILE / 2, (self.height - 1 - y) * TILE + TILE / 2

    def tile_at(self, px: float, py: float) -> tuple[int, int]:
        return int(px // TILE), self.height - 1 - int(py // TILE)

    def sync(self, view: WorldView, me: int, my_tile: tuple[int, int]) -> None:
        """Make the sprites match what the client knows: new llamas appear, gone ones leave, all get targets."""
        for eid in [e for e in self.llamas if e not in view.entities]:
            gone = self.llamas.pop(eid)
            self.sprites.remove(gone.sprite)
            gone.label.batch = None
        added = False
        for eid, seen in view.entities.items():
            llama = self.llamas.get(eid)
            if llama is None:
                llama, added = self._add(eid, seen.name, seen.x, seen.y), True
            llama.target = self.center(*(my_tile if eid == me else (seen.x, seen.y)))
        # Names where the llamas are going, lifted where they would cover each other (a crowd on one tile, or
        # neighbours with long names): twice a second, or when someone arrives (measured: placing 200 names at
        # every 10 Hz sync cost the client a tenth of its frame rate on a software renderer).
        self.syncs += 1
        if self.syncs % NAME_EVERY and not added:
            return
        llamas = list(self.llamas.values())
        wanted = [(ll.target[0] - ll.name_width / 2, ll.target[1] + 18, ll.name_width, 11) for ll in llamas]
        for llama, want, got in zip(llamas, wanted, crowd.place_bubbles(wanted)):
            lift = got[1] - want[1]
            if lift != llama.name_lift:
                llama.name_lift = lift
                self._place_label(llama)

    def _add(self, eid: int, name: str, x: int, y: int) -> Llama:
        npc = self.npcs.get(eid)
        sprite = arcade.Sprite(llama_texture("S"), scale=1.0)
        sprite.color = NPC_COLORS.get(npc["Kind"], (255, 255, 255)) if npc else player_color(name)
        sprite.position = self.center(x, y)
        label = arcade.Text(name, 0, 0, arcade.color.WHITE if not npc else arcade.color.YELLOW, 10,
                            anchor_x="center", bold=bool(npc), batch=self.labels)
        label.position = (sprite.center_x, sprite.center_y + 18)
        llama = Llama(eid, name, sprite, label, npc, target=sprite.position, name_width=label.content_width)
        self.llamas[eid] = llama
        self.sprites.append(sprite)
        return llama

    def npc_joined(self, npc: dict[str, Any]) -> None:
        """An NPC program arrived (NpcJoined), or declared new actions: its llama is an NPC's from now on."""
        self.npcs[npc["Eid"]] = npc
        llama = self.llamas.get(npc["Eid"])
        if llama is not None:
            llama.npc = npc
            llama.sprite.color = NPC_COLORS.get(npc["Kind"], (255, 255, 255))
            llama.label.color, llama.label.bold = arcade.color.YELLOW, True

    def npc_left(self, npc_id: str) -> None:
        for eid in [e for e, n in self.npcs.items() if n["Id"] == npc_id]:
            del self.npcs[eid]  # its entity goes with the next tick

    def _place_label(self, llama: Llama) -> None:
        llama.label.position = (llama.sprite.center_x, llama.sprite.center_y + 18 + llama.name_lift)

    def update(self, dt: float) -> None:
        """Glide toward the latest known tile, a little faster than walking speed so nobody falls behind, with the
        legs moving and the llama turned the way it goes; standing still, it stands."""
        step = self.speed * TILE * 1.5 * dt
        for llama in self.llamas.values():
            (x, y), (tx, ty) = llama.sprite.position, llama.target
            dx, dy = tx - x, ty - y
            dist = (dx * dx + dy * dy) ** 0.5
            if dist > 4 * TILE:  # a jump (a portal, a correction): no gliding across the map
                llama.sprite.position = llama.target
                llama.walked = 0.0
            elif dist > 0:
                k = min(1.0, step / dist)
                llama.sprite.position = (x + dx * k, y + dy * k)
                llama.walked += dist * k
                llama.facing = crowd.facing(dx, dy, llama.facing)
            else:
                llama.walked = 0.0
                self._pose(llama, 0)
                continue
            self._pose(llama, 1 + int(llama.walked / STRIDE_PX) % (WALK_FRAMES - 1))
            self._place_label(llama)

    def _pose(self, llama: Llama, frame: int) -> None:
        pose = (llama.facing, frame)
        if pose != llama.pose:  # a texture swap only when the pose changes
            llama.pose = pose
            llama.sprite.texture = llama_texture(*pose)

    def say(self, eid: int, text: str) -> None:
        llama = self.llamas.get(eid)
        if llama is not None:
            shown = "\n".join(crowd.wrap(text, crowd.BUBBLE_CHARS, crowd.BUBBLE_LINES))
            llama.bubble = arcade.Text(shown, 0, 0, arcade.color.BLACK, 10, anchor_x="center", anchor_y="bottom",
                                       multiline=True, width=crowd.BUBBLE_CHARS * 7, align="center")
            llama.bubble_until = time.monotonic() + crowd.bubble_seconds(text)

    def npc_llamas(self) -> list[Llama]:
        return [self.llamas[eid] for eid in self.npcs if eid in self.llamas]

    def by_name(self, name: str) -> Llama | None:
        return next((ll for ll in self.llamas.values() if ll.name == name), None)

    def by_npc(self, npc_id: str) -> Llama | None:
        return next((ll for ll in self.llamas.values() if ll.npc and ll.npc["Id"] == npc_id), None)

    def draw(self) -> None:
        self.scene.draw()
        self.sprites.draw()
        self.labels.draw()
        now = time.monotonic()
        talking, wanted = [], []
        for llama in self.llamas.values():
            x, y = llama.sprite.position
            if llama.thinking is not None:
                llama.thinking.x, llama.thinking.y = x, y + 32 + llama.name_lift
                llama.thinking.draw()
            if llama.bubble is not None and now < llama.bubble_until:
                b = llama.bubble
                w, h = b.content_width + 12, b.content_height + 8
                talking.append(llama)
                wanted.append((x - w / 2, y + 32 + llama.name_lift + (14 if llama.thinking else 0), w, h))
        names = [ll.name_rect() for ll in self.llamas.values()] if wanted else []
        self.bubble_rects = crowd.place_bubbles(wanted, fixed=names)  # stacked: covering no bubble and no name
        for llama, (left, bottom, w, h) in zip(talking, self.bubble_rects):
            arcade.draw_lbwh_rectangle_filled(left, bottom, w, h, (255, 255, 255, 235))
            arcade.draw_lbwh_rectangle_outline(left, bottom, w, h, (90, 80, 70, 255), 1)
            llama.bubble.x, llama.bubble.y = left + w / 2, bottom + 4
            llama.bubble.draw()
