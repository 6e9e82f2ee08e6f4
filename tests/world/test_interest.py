"""Interest management, pure: tick frames decoded by WorldView must give every observer the truth in its view."""

import random

import msgpack

from client.world_view import WorldView
from server.world.interest import InterestGrid


def deliver(grid, views, tick):
    out = grid.flush(tick, tick * 100)
    for eid, frame in out.views.items():
        views[eid].apply(msgpack.unpackb(frame))
    for cell, frame in out.frames.items():
        for eid in grid.occupants[cell]:
            views[eid].apply(msgpack.unpackb(frame))
    return out


def joined(eid, w, h):
    v = WorldView()
    v.apply({"Action": "RoomJoined", "Room": "r", "World": "w", "Map": "m", "Width": w, "Height": h, "You": eid,
             "X": 0, "Y": 0, "Chat": []})
    return v


def truth_in_view(grid, view):
    x0, y0, x1, y1 = view.rect
    return {e.eid: (e.x, e.y) for e in grid.entities.values() if x0 <= e.x < x1 and y0 <= e.y < y1}


def test_random_walks_keep_every_view_exact():
    rng = random.Random(42)
    w, h = 64, 48
    grid = InterestGrid(w, h, cell=8, view_radius=12)
    views = {}
    pos = {}
    for eid in range(1, 121):
        pos[eid] = (rng.randrange(w), rng.randrange(h))
        views[eid] = joined(eid, w, h)
        grid.add(eid, f"p{eid}", *pos[eid])
    next_eid = 121
    for tick in range(1, 120):
        for eid in list(pos):
            for _ in range(rng.choice((0, 1, 1, 2, 3))):  # several steps within one tick happen too
                x, y = pos[eid]
                x = min(w - 1, max(0, x + rng.choice((-1, 0, 1))))
                y = min(h - 1, max(0, y + rng.choice((-1, 0, 1))))
                pos[eid] = (x, y)
                grid.move(eid, x, y)
        if tick % 10 == 0:  # churn: someone leaves, someone arrives
            gone = rng.choice(list(pos))
            grid.remove(gone)
            del pos[gone], views[gone]
            pos[next_eid] = (rng.randrange(w), rng.randrange(h))
            views[next_eid] = joined(next_eid, w, h)
            grid.add(next_eid, f"p{next_eid}", *pos[next_eid])
            next_eid += 1
        deliver(grid, views, tick)
        for eid, view in views.items():
            seen = {e: (s.x, s.y) for e, s in view.entities.items()}
            assert seen == truth_in_view(grid, view), f"tick {tick}: view of {eid} is wrong"
            assert (view.x, view.y) == pos[eid]


def test_far_players_get_no_frames():
    grid = InterestGrid(128, 128, cell=8, view_radius=8)
    grid.add(1, "near", 2, 2)
    grid.add(2, "far", 120, 120)
    grid.flush(1, 100)
    grid.move(2, 121, 120)
    out = grid.flush(2, 200)
    far_cell = grid.cell_of(121, 120)
    assert set(out.frames) == {far_cell}  # only the mover's own neighbourhood hears about it
    assert 1 not in grid.watchers(121, 120)


def test_one_frame_per_cell_not_per_player():
    grid = InterestGrid(64, 64, cell=8, view_radius=8)
    for eid in range(1, 201):
        grid.add(eid, f"p{eid}", 4 + eid % 3, 4)  # everyone in one cell
    out = grid.flush(1, 100)
    assert len(out.frames) == 1
    assert len(out.views) == 200
    frame = msgpack.unpackb(next(iter(out.frames.values())))
    assert frame["Action"] == "Tick" and len(frame["A"]) == 200
