"""NPC files and their placements: the default cast loads, and each kind of mistake is named with its file."""

import shutil

import pytest

from npcs.cast import load_cast
from npcs.npcfile import NpcError
from npcs.inference.templates import load_templates
from server.world.reader import load_world

from conftest import ROOT


def cast_of(world_dir):
    world = load_world(world_dir)
    return load_cast(world, load_templates(world.root / "templates", None))


@pytest.fixture
def world(tmp_path):
    copy = tmp_path / "world"
    shutil.copytree(ROOT / "worlds" / "llama-land", copy)
    for m in (copy / "maps").glob("*.tmj"):
        m.write_text(m.read_text().replace("../../../assets", str(ROOT / "assets")))
    return copy


def test_the_default_cast():
    cast = cast_of(ROOT / "worlds" / "llama-land")
    assert cast.king.committee == ["hawk", "dove", "chair"]
    assert {p.spec.kind for p in cast.in_room("plaza")} == {"wanderer", "trader"}
    assert cast.placed["tess"].address == "trader:tess" and cast.placed["tess"].listens
    assert [p.spec.id for p in cast.in_room("stage")] == ["joker"] and cast.placed["oracle"].room == "grove"
    assert cast.placed["king"].room == "fed-hall" and cast.placed["king"].address == "fed"
    assert cast.specs["king"].economy["offering"] == 10**12 and cast.specs["oracle"].economy["win_ratio"] == 1.5
    assert {"king", "llamaking", "dolly", "governorhawk"} <= cast.names()


def test_a_new_npc_of_an_existing_kind_is_only_data(world):
    (world / "npcs" / "lola.toml").write_text((world / "npcs" / "dolly.toml").read_text().replace("Dolly", "Lola"))
    plaza = world / "maps" / "plaza.tmj"
    plaza.write_text(plaza.read_text().replace('"name": "paco"', '"name": "lola"'))
    (world / "npcs" / "paco.toml").unlink()
    cast = cast_of(world)
    assert cast.placed["lola"].spec.name == "Lola" and cast.placed["lola"].wanderer is not None


@pytest.mark.parametrize("file, old, new, error", [
    ("king.toml", 'kind = "king"', 'kind = "queen"', "king.toml: kind must be one of"),
    ("king.toml", "max_payout = 300 ", "max_payout = 301 ", "king.toml: [economy].max_payout must be from 0 to 300"),
    ("king.toml", "offering = 1 ", "offering = -1 ", "[economy].offering must be from 0 to 1000"),
    ("king.toml", "cooldown_count = 3 ", "cooldown_count = 3\nsurprise = 1 ", "[economy].surprise is not a setting"),
    ("king.toml", '"hawk", "dove"', '"hawk", "joker"', "committee member 'joker' is not an NPC of kind fed"),
    ("joker.toml", 'joke = "joker-joke@1"', 'joke = "joker-joke@9"', "[templates].joke must name a template"),
    ("joker.toml", 'persona = """', 'mood = 3\npersona = """', "unknown field 'mood'"),
    ("oracle.toml", "min_bet = 1 ", "min_bet = 20 ", "[economy].min_bet is more than [economy].max_bet"),
    ("dolly.toml", "[lines]", "[lines]\nwisdom = ['x']", "[lines].wisdom is not used by a wanderer"),
])
def test_broken_npc_files_are_named(world, file, old, new, error):
    path = world / "npcs" / file
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))
    with pytest.raises(NpcError) as exc:
        cast_of(world)
    assert error in str(exc.value) and file in str(exc.value)


def test_a_template_variable_the_role_does_not_have(world):
    t = world / "templates" / "joker-joke.toml"
    t.write_text(t.read_text().replace("{topic}", "{topic} {petition}"))
    with pytest.raises(NpcError, match=r"joker.toml: template joker-joke@1 uses \{petition\}"):
        cast_of(world)


def test_placement_mistakes(world):
    (world / "npcs" / "paco.toml").unlink()
    with pytest.raises(NpcError, match=r"plaza.tmj: NPC object 'paco' at \(31, 23\) has no NPC file"):
        cast_of(world)
    (world / "npcs" / "paco.toml").write_text((ROOT / "worlds/llama-land/npcs/paco.toml").read_text())
    (world / "npcs" / "zed.toml").write_text((world / "npcs" / "joker.toml").read_text())
    with pytest.raises(NpcError, match=r"zed.toml: a joker must stand somewhere"):
        cast_of(world)


def test_a_trader_listens_to_its_room_and_the_rooms_its_file_lists(world):
    assert cast_of(world).listeners("plaza") == ["trader:tess"] and cast_of(world).listeners("stage") == []
    tess = world / "npcs" / "tess.toml"
    tess.write_text('listens = ["stage"]\n' + tess.read_text())
    cast = cast_of(world)
    assert cast.listeners("stage") == ["trader:tess"] and cast.listeners("plaza") == ["trader:tess"]
    tess.write_text(tess.read_text().replace('listens = ["stage"]', 'listens = ["attic"]'))
    with pytest.raises(NpcError, match="listens to 'attic', which is not a room"):
        cast_of(world)
    dolly = world / "npcs" / "dolly.toml"
    tess.write_text(tess.read_text().replace('listens = ["attic"]\n', ""))
    dolly.write_text('listens = ["stage"]\n' + dolly.read_text())
    with pytest.raises(NpcError, match="a wanderer does not listen"):
        cast_of(world)
