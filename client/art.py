"""The client's own sprites, drawn in code (CC0, like the rest of the art): a llama, tinted per player or NPC kind."""

from __future__ import annotations

import hashlib

import arcade
from PIL import Image, ImageDraw

NPC_COLORS = {"king": (255, 215, 90), "fed": (200, 170, 255), "joker": (255, 120, 160), "oracle": (170, 120, 255),
              "wanderer": (245, 235, 215)}


# Leg x positions per walking frame: standing, then a stride each way (front and back pairs swing opposite).
STRIDES = ((9, 13, 19, 23), (7, 14, 17, 24), (10, 12, 21, 22))
WALK_FRAMES = len(STRIDES)


def llama_image(size: int = 32, frame: int = 0) -> Image.Image:
    """A white llama facing right, with a dark outline, in one walking frame; sprites tint it."""
    im = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    ink, wool = (60, 45, 35, 255), (255, 255, 255, 255)
    bob = 1 if frame else 0  # the body dips a pixel mid-stride
    for x in STRIDES[frame]:  # legs
        d.rectangle([x, 22, x + 2, 30], fill=wool, outline=ink)
    d.ellipse([6, 13 + bob, 27, 25 + bob], fill=wool, outline=ink)  # body
    d.rectangle([21, 5 + bob, 25, 17 + bob], fill=wool, outline=ink)  # neck
    d.ellipse([20, 2 + bob, 29, 9 + bob], fill=wool, outline=ink)  # head
    d.polygon([(22, 3 + bob), (22, 0 + bob), (24, 2 + bob)], fill=wool, outline=ink)  # ear
    d.point((26, 4 + bob), fill=ink)  # eye
    d.ellipse([4, 14 + bob, 8, 18 + bob], fill=wool, outline=ink)  # tail
    return im


_TEXTURES: dict[tuple[int, int], arcade.Texture] = {}


def llama_texture(facing: int = 1, frame: int = 0) -> arcade.Texture:
    """The llama facing right (1) or left (-1) in a walking frame; made once each."""
    key = (facing, frame)
    if key not in _TEXTURES:
        image = llama_image(frame=frame)
        if facing < 0:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        _TEXTURES[key] = arcade.Texture(image, hash=f"llama-land-llama-{facing}-{frame}")
    return _TEXTURES[key]


def player_color(name: str) -> tuple[int, int, int]:
    """A stable, light colour per player name."""
    h = hashlib.sha256(name.encode()).digest()
    return 140 + h[0] % 116, 140 + h[1] % 116, 140 + h[2] % 116
