"""Blocks of image rows, the unit of work of the blocked convolutions (im2col and Winograd).

Each of ``N`` images of ``H`` rows is cut into ``⌈H / rows⌉`` blocks of at most ``rows`` rows;
blocks are numbered image by image, top to bottom, ``0 … N·⌈H / rows⌉ − 1``.
"""
from numba import njit


@njit(cache=True, inline="always")
def blocks_per_image(H, rows):
    """``⌈H / rows⌉``: how many blocks of ``rows`` rows cover one image of ``H`` rows."""
    return (H + rows - 1) // rows


@njit(cache=True, inline="always")
def block_rows(block, rows, H):
    """Block number ``block`` -> ``(n, r0, r1)``: rows ``[r0, r1)`` of image ``n``."""
    per_image = (H + rows - 1) // rows
    n = block // per_image
    r0 = (block % per_image) * rows
    return n, r0, min(r0 + rows, H)
