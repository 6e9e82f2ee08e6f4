"""The NPC-kind contract (npcs/kinds.py) is the one place a kind is defined: everything else agrees with it."""

from pathlib import Path

import pytest

from client.panels import PANELS
from npcs.cast import load_cast
from npcs.inference.templates import load_templates
from npcs.kinds import KINDS
from server.core import protocol
from server.net.session import ROUTES
from server.world.reader import load_world

ROOT = Path(__file__).resolve().parents[2]


def test_every_kind_with_an_actor_names_a_class_that_builds_it():
    for kind in KINDS.values():
        if kind.actor is not None:
            cls = kind.actor_class()
            assert callable(getattr(cls, "build", None)), kind.name
        assert kind.placed == (kind.actor is not None), kind.name  # an acting NPC stands somewhere


def test_requests_are_protocol_actions_routed_by_their_reach():
    for kind in KINDS.values():
        for serves in kind.serves:
            assert serves.action in protocol.ACTIONS
            assert ROUTES[serves.action].to == {"near": "room", "world": "npc"}[serves.reach], serves
            for field_name, (lo, hi) in serves.limits.items():
                assert field_name in protocol.ACTIONS[serves.action]
                assert all(isinstance(v, int) or v in kind.economy for v in (lo, hi))
    quoted = {k.quote for k in KINDS.values() if k.quote}
    assert quoted == set(protocol.ACTIONS["Quote"]["Service"].choices)


def test_every_placed_kind_has_a_client_panel():
    assert {k.name for k in KINDS.values() if k.placed} <= set(PANELS)


@pytest.mark.parametrize("world, npc, action, limits", [
    ("llama-land", "joker", "Joke", {"Topic": [1, 20]}),
    ("isle", "parrot", "Joke", {"Topic": [1, 30]}),  # the Isle's Parrot takes longer topics: its file says so
    ("llama-land", "king", "Petition", {"Text": [2, 250]}),
    ("llama-land", "oracle", "HighLow", {"Bet": [10**12, 10 * 10**12]}),
])
def test_room_joined_carries_each_npcs_limits_from_its_own_file(world, npc, action, limits):
    w = load_world(ROOT / "worlds" / world)
    cast = load_cast(w, load_templates(w.root / "templates", None))
    described = cast.placed[npc].describe()
    assert described["Limits"][action] == limits
