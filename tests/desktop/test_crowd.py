"""The client's crowd rules and camera as pure functions: no window needed."""

import random

from client.crowd import bubble_seconds, facing, overlaps, place_bubbles, wrap
from client.play import follow


def test_boxes_never_cover_each_other_and_stay_over_their_llama():
    rng = random.Random(7)
    for wanted in ([(600.0 + (i % 8) * 32, 300.0, 45.0, 11.0) for i in range(30)],  # a crowd on a few tiles
                   [(rng.uniform(0, 1280), rng.uniform(0, 720), rng.uniform(20, 190), rng.choice([11, 22, 48]))
                    for _ in range(200)]):
        placed = place_bubbles(wanted)
        assert not [(a, b) for i, a in enumerate(placed) for b in placed[i + 1:] if overlaps(a, b)]
        assert all(p[0] == w[0] and p[2:] == w[2:] and p[1] >= w[1] for p, w in zip(placed, wanted))
    names = [(600.0, 312.0, 45.0, 13.0)]
    over = place_bubbles([(590.0, 305.0, 60.0, 20.0)], fixed=names)
    assert not overlaps(over[0], names[0]) and over[0][1] >= 325  # a bubble never hides a name: it rises past it
    alone = [(10.0, 10.0, 50.0, 20.0), (500.0, 10.0, 50.0, 20.0)]
    assert place_bubbles(alone) == alone  # nobody in the way: nothing moves


def test_text_wraps_and_long_bubbles_stay_longer():
    lines = wrap("You've made a commendable decision to help the young llamas of the valley today", 28, 4)
    assert len(lines) > 1 and all(len(line) <= 28 for line in lines) and " ".join(lines).startswith("You've made")
    assert wrap("word " * 60, 28, 4)[-1].endswith("…")
    assert bubble_seconds("hi") < bubble_seconds("a much longer line " * 5) <= 15


def test_a_llama_faces_the_way_it_walks():
    assert [facing(dx, dy, "S") for dx, dy in ((3, 0), (-3, 1), (0, 4), (1, -4), (0, 0))] == ["E", "W", "N", "S", "S"]
    assert facing(0.1, 0.2, "W") == "W"  # standing: as it was


def test_the_camera_never_shows_the_void():
    screen = (1280, 720)
    assert follow((100, 100), (640, 480), screen) == (320, 240)  # a small room: centred
    assert follow((10, 10), (3200, 2000), screen) == (640, 360)  # at a corner: clamped
    assert follow((3190, 1990), (3200, 2000), screen) == (2560, 1640)
    assert follow((1500, 1000), (3200, 2000), screen) == (1500, 1000)  # in the middle: follows
