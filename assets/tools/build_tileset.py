"""Build assets/tilesets/llama-land.png and .tsj from Kenney's CC0 art as bundled with Arcade (`pip install arcade`).

Each tile is 32×32: top-down tiles are scaled down from 64×64, objects (trees, crates, rocks…) are drawn over the
ground they stand on, and a few are drawn here from primitives (the hay bale, the stage boards, the rug). Tile
properties: `collides = true` on everything a player cannot walk through. Run it again after changing TILES;
the map builder (build_world.py) refers to tiles by the names below.

    .venv/bin/python assets/tools/build_tileset.py
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parents[1] / "tilesets"
ARCADE = Path(importlib.util.find_spec("arcade").submodule_search_locations[0]) / "resources" / "assets" / "images"
SIZE = 32
COLUMNS = 8

# name -> (ground, object over it or None, collides). Sources are paths under Arcade's images folder, or "draw:x".
TILES: list[tuple[str, str, str | None, bool]] = [
    ("grass", "topdown_tanks/tileGrass1.png", None, False),
    ("grass2", "topdown_tanks/tileGrass2.png", None, False),
    ("sand", "topdown_tanks/tileSand1.png", None, False),
    ("sand2", "topdown_tanks/tileSand2.png", None, False),
    ("road-ns", "topdown_tanks/tileGrass_roadNorth.png", None, False),
    ("road-ew", "topdown_tanks/tileGrass_roadEast.png", None, False),
    ("road-cross", "topdown_tanks/tileGrass_roadCrossingRound.png", None, False),
    ("dirt", "draw:dirt", None, False),
    ("stone", "tiles/stoneCenter.png", None, False),
    ("snow", "tiles/snowCenter.png", None, False),
    ("sand-floor", "tiles/sandCenter.png", None, False),
    ("rug", "draw:rug", None, False),
    ("boards", "draw:boards", None, False),
    ("bridge", "draw:water", "tiles/bridgeA.png", False),
    ("flowers", "topdown_tanks/tileGrass1.png", "tiles/plantPurple.png", False),
    ("mushroom", "topdown_tanks/tileGrass1.png", "tiles/mushroomRed.png", False),
    ("sprout", "topdown_tanks/tileGrass2.png", "tiles/grass_sprout.png", False),
    ("door", "tiles/stoneCenter.png", "tiles/doorClosed_mid.png", False),
    ("sign", "topdown_tanks/tileGrass1.png", "tiles/signRight.png", False),
    ("torch", "tiles/stoneCenter.png", "tiles/torch1.png", False),
    ("wall-brick", "draw:wall-grey", None, True),
    ("wall-red", "draw:wall-red", None, True),
    ("water", "draw:water", None, True),
    ("tree", "topdown_tanks/tileGrass1.png", "topdown_tanks/treeGreen_large.png", True),
    ("tree-small", "topdown_tanks/tileGrass2.png", "topdown_tanks/treeGreen_small.png", True),
    ("tree-autumn", "topdown_tanks/tileGrass1.png", "topdown_tanks/treeBrown_large.png", True),
    ("bush", "topdown_tanks/tileGrass1.png", "tiles/bush.png", True),
    ("rock", "topdown_tanks/tileGrass2.png", "tiles/rock.png", True),
    ("crate", "draw:dirt", "tiles/boxCrate.png", True),
    ("hay", "topdown_tanks/tileGrass1.png", "draw:hay", True),
    ("snow-pile", "tiles/snowCenter.png", "tiles/snow_pile.png", True),
    ("cactus", "topdown_tanks/tileSand1.png", "tiles/cactus.png", True),
    ("fence", "topdown_tanks/tileGrass2.png", "draw:fence", True),
    ("stage-edge", "draw:boards", "draw:stage-edge", True),
    ("fountain", "draw:water", "draw:fountain", True),
    ("pillar", "tiles/stoneCenter.png", "draw:pillar", True),
    ("rock-sand", "topdown_tanks/tileSand2.png", "tiles/rock.png", True),
]


def drawn(kind: str) -> Image.Image:
    im = Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    if kind == "water":
        d.rectangle([0, 0, SIZE, SIZE], fill=(64, 134, 199, 255))
        for y in (6, 16, 26):
            d.arc([4, y - 3, 14, y + 3], 200, 340, fill=(140, 196, 235, 255))
            d.arc([18, y - 1, 28, y + 5], 200, 340, fill=(140, 196, 235, 255))
    elif kind == "dirt":
        d.rectangle([0, 0, SIZE, SIZE], fill=(150, 108, 70, 255))
        for x, y in ((4, 5), (20, 3), (12, 14), (26, 18), (6, 24), (17, 27), (28, 29)):
            d.ellipse([x, y, x + 2, y + 2], fill=(118, 82, 50, 255))
    elif kind in ("wall-grey", "wall-red"):
        brick, mortar = ((128, 128, 138, 255), (70, 70, 78, 255)) if kind == "wall-grey" else \
            ((168, 72, 56, 255), (96, 44, 36, 255))
        d.rectangle([0, 0, SIZE, SIZE], fill=mortar)
        for row, y in enumerate(range(0, SIZE, 8)):
            shift = 8 if row % 2 else 0
            for x in range(-16 + shift, SIZE, 16):
                d.rectangle([x + 1, y + 1, x + 14, y + 6], fill=brick)
    elif kind == "boards":
        d.rectangle([0, 0, SIZE, SIZE], fill=(161, 110, 62, 255))
        for y in range(0, SIZE, 8):
            d.line([0, y, SIZE, y], fill=(120, 78, 40, 255))
        d.line([12, 0, 12, 8], fill=(120, 78, 40, 255))
        d.line([24, 8, 24, 16], fill=(120, 78, 40, 255))
        d.line([8, 16, 8, 24], fill=(120, 78, 40, 255))
        d.line([20, 24, 20, 32], fill=(120, 78, 40, 255))
    elif kind == "rug":
        d.rectangle([0, 0, SIZE, SIZE], fill=(150, 32, 48, 255))
        d.rectangle([3, 0, SIZE - 4, SIZE], outline=(232, 190, 64, 255))
    elif kind == "hay":
        d.ellipse([3, 6, 29, 28], fill=(222, 184, 75, 255), outline=(160, 120, 40, 255))
        for x in (9, 15, 21):
            d.line([x, 9, x + 2, 25], fill=(190, 150, 55, 255))
    elif kind == "fence":
        d.rectangle([0, 13, SIZE, 16], fill=(139, 94, 52, 255))
        d.rectangle([0, 21, SIZE, 24], fill=(139, 94, 52, 255))
        for x in (3, 26):
            d.rectangle([x, 8, x + 3, 29], fill=(110, 72, 38, 255))
    elif kind == "stage-edge":
        d.rectangle([0, 20, SIZE, SIZE], fill=(96, 52, 30, 255))
        d.rectangle([0, 17, SIZE, 20], fill=(200, 60, 60, 255))
    elif kind == "fountain":
        d.ellipse([6, 6, 26, 26], fill=(190, 190, 200, 255), outline=(120, 120, 130, 255))
        d.ellipse([12, 12, 20, 20], fill=(140, 196, 235, 255))
    elif kind == "pillar":
        d.rectangle([9, 2, 23, 30], fill=(225, 220, 205, 255), outline=(150, 145, 130, 255))
        d.line([13, 4, 13, 28], fill=(190, 185, 170, 255))
        d.line([19, 4, 19, 28], fill=(190, 185, 170, 255))
    return im


def layer(source: str) -> Image.Image:
    if source.startswith("draw:"):
        return drawn(source[5:])
    im = Image.open(ARCADE / source).convert("RGBA")
    return im.resize((SIZE, SIZE), Image.LANCZOS)


def build() -> None:
    rows = -(-len(TILES) // COLUMNS)
    sheet = Image.new("RGBA", (COLUMNS * SIZE, rows * SIZE), (0, 0, 0, 0))
    tiles = []
    for i, (name, ground, thing, collides) in enumerate(TILES):
        tile = layer(ground)
        if thing is not None:
            tile.alpha_composite(layer(thing))
        sheet.paste(tile, ((i % COLUMNS) * SIZE, (i // COLUMNS) * SIZE))
        tiles.append({"id": i, "type": name, "properties": [{"name": "collides", "type": "bool", "value": collides}]})
    sheet.save(OUT / "llama-land.png")
    tsj = {"columns": COLUMNS, "image": "llama-land.png", "imageheight": rows * SIZE, "imagewidth": COLUMNS * SIZE,
           "margin": 0, "name": "llama-land", "spacing": 0, "tilecount": len(TILES), "tiledversion": "1.10.2",
           "tileheight": SIZE, "tilewidth": SIZE, "type": "tileset", "version": "1.10", "tiles": tiles}
    (OUT / "llama-land.tsj").write_text(json.dumps(tsj, indent=1) + "\n")


def tile_ids() -> dict[str, int]:
    """Tile name -> its id in the tileset (the map builder adds the tileset's firstgid)."""
    return {name: i for i, (name, *_rest) in enumerate(TILES)}


if __name__ == "__main__":
    build()
    print(f"wrote {OUT / 'llama-land.png'} and .tsj ({len(TILES)} tiles)")
