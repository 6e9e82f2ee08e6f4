"""The client's NPC panels take their field limits from the world (RoomJoined.Npcs[].Limits), not from code."""

from pathlib import Path

from client.panels import limit
from npcs.cast import load_cast
from npcs.inference.templates import load_templates
from server.world.reader import load_world

ROOT = Path(__file__).resolve().parents[2]


def test_the_isle_parrot_takes_thirty_character_topics_and_the_joker_twenty():
    for world, npc, most in (("isle", "parrot", 30), ("llama-land", "joker", 20)):
        w = load_world(ROOT / "worlds" / world)
        described = load_cast(w, load_templates(w.root / "templates", None)).placed[npc].describe()
        assert limit(described, "Joke", "Topic", (1, 20)) == (1, most)


def test_an_older_server_without_limits_gets_the_defaults():
    assert limit({"Id": "joker", "Kind": "joker"}, "Joke", "Topic", (1, 20)) == (1, 20)
