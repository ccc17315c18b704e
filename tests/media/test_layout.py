"""The recording's frame: the grid for one to six participants, each picture fitted to its tile."""

from __future__ import annotations

import numpy
import pytest

from server.media import layout


@pytest.mark.parametrize(("count", "grid"), [(1, (1, 1)), (2, (2, 1)), (3, (2, 2)), (4, (2, 2)), (6, (3, 2))])
def test_the_grid_is_as_square_as_the_count_allows(count: int, grid: tuple[int, int]) -> None:
    assert layout.grid(count) == grid
    tiles = layout.tiles(count)
    assert len(tiles) == count
    for x, y, w, h in tiles:
        assert w % 2 == 0 and h % 2 == 0  # yuv420p wants even sizes
        assert x + w <= layout.WIDTH and y + h <= layout.HEIGHT


def test_a_picture_keeps_its_shape_in_its_tile() -> None:
    assert layout.fit(640, 480, 320, 360) == (320, 240)  # 4:3 in a tall tile: full width
    assert layout.fit(1280, 720, 320, 360) == (320, 180)
    assert layout.fit(360, 640, 320, 360) == (202, 360)  # a phone held upright: full height


def test_each_picture_is_centred_in_its_tile_in_order_and_a_missing_one_is_black() -> None:
    # Three people: a 2x2 grid of 320x180 tiles; wide pictures (320x120) are letterboxed.
    red = numpy.full((120, 320, 3), (200, 30, 30), numpy.uint8)
    green = numpy.full((120, 320, 3), (30, 200, 30), numpy.uint8)
    frame = layout.compose([red, green, None])
    assert frame.shape == (layout.HEIGHT, layout.WIDTH, 3)
    assert tuple(frame[90, 160]) == (200, 30, 30)  # first tile (top left)
    assert tuple(frame[90, 480]) == (30, 200, 30)  # second tile (top right)
    assert tuple(frame[10, 160]) == (0, 0, 0) and tuple(frame[170, 160]) == (0, 0, 0)  # black above and below
    assert not frame[180:, :320].any()  # third tile: nothing arrived yet
