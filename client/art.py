"""The client's own sprites, drawn in code (CC0, like the rest of the art): a llama, tinted per player or NPC kind."""

from __future__ import annotations

import hashlib

import arcade
from PIL import Image, ImageDraw

NPC_COLORS = {"king": (255, 215, 90), "fed": (200, 170, 255), "joker": (255, 120, 160), "oracle": (170, 120, 255),
              "wanderer": (245, 235, 215)}


def llama_image(size: int = 32) -> Image.Image:
    """A white llama facing right, with a dark outline; sprites tint it."""
    im = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    ink, wool = (60, 45, 35, 255), (255, 255, 255, 255)
    for x in (9, 13, 19, 23):  # legs
        d.rectangle([x, 22, x + 2, 30], fill=wool, outline=ink)
    d.ellipse([6, 13, 27, 25], fill=wool, outline=ink)  # body
    d.rectangle([21, 5, 25, 17], fill=wool, outline=ink)  # neck
    d.ellipse([20, 2, 29, 9], fill=wool, outline=ink)  # head
    d.polygon([(22, 3), (22, 0), (24, 2)], fill=wool, outline=ink)  # ear
    d.point((26, 4), fill=ink)  # eye
    d.ellipse([4, 14, 8, 18], fill=wool, outline=ink)  # tail
    return im


_TEXTURE: arcade.Texture | None = None


def llama_texture() -> arcade.Texture:
    global _TEXTURE
    if _TEXTURE is None:
        _TEXTURE = arcade.Texture(llama_image(), hash="llama-land-llama")
    return _TEXTURE


def player_color(name: str) -> tuple[int, int, int]:
    """A stable, light colour per player name."""
    h = hashlib.sha256(name.encode()).digest()
    return 140 + h[0] % 116, 140 + h[1] % 116, 140 + h[2] % 116
