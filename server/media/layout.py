"""The recording's frame: every participant's picture in one grid, scaled to fit its tile.

Pure numpy on RGB arrays, so it is tested without any media: a tile keeps its picture's shape
(letterboxed in black), and tiles are in the order given (the recorder sorts them by peer id,
so a participant keeps their place for the whole recording).
"""

from __future__ import annotations

import math

import numpy
from numpy.typing import NDArray

WIDTH, HEIGHT = 640, 360  # the recording's frame: 360p, the cap the browsers send at

Image = NDArray[numpy.uint8]


def grid(count: int) -> tuple[int, int]:
    """(columns, rows) for `count` tiles: as square as a 16:9 frame allows (2 → 2x1, 4 → 2x2, 6 → 3x2)."""
    if count <= 1:
        return 1, 1
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    return columns, rows


def tiles(count: int, width: int = WIDTH, height: int = HEIGHT) -> list[tuple[int, int, int, int]]:
    """Each tile's (x, y, width, height), row by row; even sizes, as yuv420p wants."""
    columns, rows = grid(count)
    tile_w, tile_h = (width // columns) & ~1, (height // rows) & ~1
    return [((i % columns) * tile_w, (i // columns) * tile_h, tile_w, tile_h) for i in range(count)]


def fit(picture_w: int, picture_h: int, tile_w: int, tile_h: int) -> tuple[int, int]:
    """The largest even size of the picture's shape that fits in the tile."""
    scale = min(tile_w / max(picture_w, 1), tile_h / max(picture_h, 1))
    return max(2, int(picture_w * scale) & ~1), max(2, int(picture_h * scale) & ~1)


def compose(pictures: list[Image | None], width: int = WIDTH, height: int = HEIGHT) -> Image:
    """One frame of the pictures (already scaled by `fit` to their tiles); None: a black tile
    (a participant whose video has not arrived, or who sends audio only)."""
    canvas = numpy.zeros((height, width, 3), numpy.uint8)
    for (x, y, tile_w, tile_h), picture in zip(tiles(len(pictures), width, height), pictures, strict=True):
        if picture is None:
            continue
        h, w = min(picture.shape[0], tile_h), min(picture.shape[1], tile_w)
        top, left = y + (tile_h - h) // 2, x + (tile_w - w) // 2
        canvas[top : top + h, left : left + w] = picture[:h, :w]
    return canvas
