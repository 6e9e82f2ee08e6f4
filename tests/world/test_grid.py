"""The grid module: the one breadth-first search behind paths, nearest tiles and world check's walk."""

from server.core.protocol import DIRECTIONS
from server.world import grid


def open_map(blocked: set[tuple[int, int]], w: int = 6, h: int = 4):
    return lambda x, y: 0 <= x < w and 0 <= y < h and (x, y) not in blocked


def test_steps_are_the_wire_directions():
    assert tuple(grid.STEPS) == DIRECTIONS
    assert grid.direction((3, 3), (3, 2)) == "N" and grid.direction((3, 3), (4, 4)) == "SE"


def test_find_path_goes_around_a_wall_and_is_shortest():
    wall = {(2, 0), (2, 1), (2, 2)}
    path = grid.find_path(open_map(wall), (0, 0), (4, 0), (0, 0, 6, 4))
    assert path is not None and path[-1] == (4, 0) and len(path) == 10
    assert all(abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1 for a, b in zip([(0, 0), *path], path))
    assert not set(path) & wall


def test_find_path_none_when_walled_off_or_outside_bounds():
    wall = {(2, y) for y in range(4)}
    assert grid.find_path(open_map(wall), (0, 0), (4, 0), (0, 0, 6, 4)) is None
    assert grid.find_path(open_map(set()), (0, 0), (4, 0), (0, 0, 3, 4)) is None


def test_nearest_clamps_onto_the_map_and_finds_the_closest_ok_tile():
    ok = {(5, 3)}
    assert grid.nearest((40, -7), (6, 4), lambda t: t in ok) == (5, 3)
    assert grid.nearest((1, 1), (6, 4), lambda t: t == (1, 1)) == (1, 1)
    assert grid.nearest((1, 1), (6, 4), lambda t: False) is None


def test_breadth_first_floods_without_a_goal():
    came, found = grid.breadth_first([(0, 0)], lambda t: [n for n in grid.neighbours(t)
                                                          if open_map({(1, 0), (0, 1)})(*n)])
    assert found is None and set(came) == {(0, 0)}
