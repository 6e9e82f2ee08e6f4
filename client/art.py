"""The client's own sprites, drawn in code (CC0, like the rest of the art): a llama, tinted per player or NPC kind."""

from __future__ import annotations

import hashlib

import arcade
from PIL import Image, ImageDraw

NPC_COLORS = {"king": (255, 215, 90), "fed": (200, 170, 255), "joker": (255, 120, 160), "oracle": (170, 120, 255),
              "wanderer": (245, 235, 215), "program": (140, 230, 255)}  # program: an NPC an outside program plays


# Leg x positions per walking frame, side view: standing, then a stride each way (front and back pairs swing
# opposite). Seen from the front or the back, one leg lifts, then the other.
STRIDES = ((9, 13, 19, 23), (7, 14, 17, 24), (10, 12, 21, 22))
LIFTS = ((0, 0), (2, 0), (0, 2))
WALK_FRAMES = len(STRIDES)
INK, WOOL = (60, 45, 35, 255), (255, 255, 255, 255)


def _side(d: ImageDraw.ImageDraw, frame: int) -> None:
    """Facing right."""
    bob = 1 if frame else 0  # the body dips a pixel mid-stride
    for x in STRIDES[frame]:  # legs
        d.rectangle([x, 22, x + 2, 30], fill=WOOL, outline=INK)
    d.ellipse([6, 13 + bob, 27, 25 + bob], fill=WOOL, outline=INK)  # body
    d.rectangle([21, 5 + bob, 25, 17 + bob], fill=WOOL, outline=INK)  # neck
    d.ellipse([20, 2 + bob, 29, 9 + bob], fill=WOOL, outline=INK)  # head
    d.polygon([(22, 3 + bob), (22, 0 + bob), (24, 2 + bob)], fill=WOOL, outline=INK)  # ear
    d.point((26, 4 + bob), fill=INK)  # eye
    d.ellipse([4, 14 + bob, 8, 18 + bob], fill=WOOL, outline=INK)  # tail


def _front_or_back(d: ImageDraw.ImageDraw, frame: int, front: bool) -> None:
    """Facing the viewer (walking down the screen) or away from it (walking up)."""
    for x, lift in zip((11, 19), LIFTS[frame]):
        d.rectangle([x, 22 - lift, x + 2, 30 - lift], fill=WOOL, outline=INK)
    d.ellipse([8, 12, 24, 26], fill=WOOL, outline=INK)  # body
    d.rectangle([13, 5, 19, 16], fill=WOOL, outline=INK)  # neck
    d.ellipse([11, 1, 21, 9], fill=WOOL, outline=INK)  # head
    for ear in ([(12, 3), (11, 0), (14, 2)], [(20, 3), (21, 0), (18, 2)]):
        d.polygon(ear, fill=WOOL, outline=INK)
    if front:
        d.point((14, 4), fill=INK)  # eyes
        d.point((18, 4), fill=INK)
    else:
        d.ellipse([14, 17, 18, 21], fill=WOOL, outline=INK)  # tail


def llama_image(size: int = 32, frame: int = 0, facing: str = "E") -> Image.Image:
    """A white llama with a dark outline facing E, W, N (away) or S (towards you), in one walking frame; sprites
    tint it."""
    im = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    if facing in ("E", "W"):
        _side(d, frame)
    else:
        _front_or_back(d, frame, front=facing == "S")
    return im.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if facing == "W" else im


_TEXTURES: dict[tuple[str, int], arcade.Texture] = {}


def llama_texture(facing: str = "E", frame: int = 0) -> arcade.Texture:
    """The llama facing E, W, N or S in a walking frame; made once each."""
    key = (facing, frame)
    if key not in _TEXTURES:
        _TEXTURES[key] = arcade.Texture(llama_image(frame=frame, facing=facing), hash=f"llama-land-llama-{facing}-{frame}")
    return _TEXTURES[key]


def player_color(name: str) -> tuple[int, int, int]:
    """A stable, light colour per player name."""
    h = hashlib.sha256(name.encode()).digest()
    return 140 + h[0] % 116, 140 + h[1] % 116, 140 + h[2] % 116
