"""Movement and chat rules, pure."""

import numpy as np
import pytest

from server.core.protocol import Code
from server.world.rules import Refused, Walker, check_step, clean_chat, near, npc_line, walk
from server.world.maps import RoomMap, Rules

RULES = Rules(speed=10.0, burst=3, chat_max=20)


def room():
    # 6x5, a wall at x=3 for y=0..2, and a wall tile at (1, 3)
    blocked = np.zeros((5, 6), dtype=bool)
    blocked[0:3, 3] = True
    blocked[3, 1] = True
    return RoomMap("r", None, "", 6, 5, 32, blocked, {"default": (0, 0)}, [])


@pytest.mark.parametrize(
    "start, target, code",
    [
        ((0, 0), (-1, 0), Code.MOVE_OFF_MAP),
        ((5, 4), (6, 4), Code.MOVE_OFF_MAP),
        ((2, 1), (3, 1), Code.MOVE_BLOCKED),
        ((0, 0), (2, 0), Code.MOVE_TOO_FAR),
        ((0, 0), (5, 4), Code.MOVE_TOO_FAR),  # a teleport
        ((2, 3), (3, 2), Code.MOVE_BLOCKED),  # diagonally into the wall
        ((2, 2), (1, 3), Code.MOVE_BLOCKED),
        ((0, 4), (1, 3), Code.MOVE_BLOCKED),
        ((0, 3), (1, 2), Code.MOVE_THROUGH_WALL),  # (1, 3) blocks the corner
    ],
)
def test_illegal_steps(start, target, code):
    with pytest.raises(Refused) as exc:
        check_step(room(), *start, *target)
    assert exc.value.code == code


def test_diagonal_past_a_wall_corner_is_refused():
    # (2,3) -> (3,4)? (3,3) free and (2,4) free: fine. (2,2) -> (3,3): (3,2) is wall -> through the corner.
    check_step(room(), 2, 3, 3, 4)
    with pytest.raises(Refused) as exc:
        check_step(room(), 2, 2, 3, 3)
    assert exc.value.code == Code.MOVE_THROUGH_WALL


def test_walk_applies_direction_and_target():
    w = Walker.standing(0, 0, 0, RULES)
    assert walk(room(), RULES, w, {"Dir": "E", "T": 100})
    assert (w.x, w.y) == (1, 0)
    assert walk(room(), RULES, w, {"X": 2, "Y": 1, "T": 200})
    assert (w.x, w.y) == (2, 1)
    assert not walk(room(), RULES, w, {"X": 2, "Y": 1, "T": 300})  # staying put is not a step


def test_speed_limit_uses_message_time():
    w = Walker.standing(0, 4, 0, RULES)
    for i in range(3):  # the burst
        walk(room(), RULES, w, {"Dir": "E", "T": 0})
    with pytest.raises(Refused) as exc:
        walk(room(), RULES, w, {"Dir": "E", "T": 50})  # half a step earned: too fast
    assert exc.value.code == Code.MOVE_TOO_FAST
    assert (w.x, w.y) == (3, 4)  # position unchanged by the refusal
    walk(room(), RULES, w, {"Dir": "E", "T": 100})  # a full step earned after 100 ms at 10 tiles/s
    assert (w.x, w.y) == (4, 4)


def test_sustained_walking_at_speed_is_allowed():
    w = Walker.standing(0, 4, 0, Rules(speed=10.0, burst=1))
    for i in range(1, 5):
        walk(room(), Rules(speed=10.0, burst=1), w, {"Dir": "E" if i < 5 else "W", "T": i * 100})
    assert w.x == 4


def test_move_without_target_is_a_bad_request():
    with pytest.raises(Refused) as exc:
        walk(room(), RULES, Walker.standing(0, 0, 0, RULES), {"X": 1, "T": 0})
    assert exc.value.code == Code.BAD_REQUEST


def test_chat_cleaning():
    assert clean_chat("  hi\x00 there\n ", RULES) == "hi there"
    with pytest.raises(Refused) as exc:
        clean_chat(" \x07\n ", RULES)
    assert exc.value.code == Code.CHAT_EMPTY
    with pytest.raises(Refused) as exc:
        clean_chat("x" * 21, RULES)
    assert exc.value.code == Code.CHAT_TOO_LONG


def test_near_is_a_circle():
    assert near(0, 0, 3, 4, 5)
    assert not near(0, 0, 4, 4, 5)


def test_an_npc_line_is_its_first_line_with_runs_of_space_as_one_and_cut_at_the_limit():
    # The model's answers come with doubled spaces and trailing lines; NpcDone and ChatLine carry this same text.
    assert npc_line('  "Aim high,  I am\tsure of it."\nAnd more.', 280) == '"Aim high, I am sure of it."'
    assert npc_line("\n\n", 280) == ""
    assert npc_line("one two three", 8) == "one two"
