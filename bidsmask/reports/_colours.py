"""Colours of the figures: colour maps as lookup tables built from anchor colours, the alert colour.

Four maps, as matplotlib names them: ``RdBu_r`` (matrices; ColorBrewer's 11-class RdBu,
reversed), ``gray`` (carpet plots), ``viridis`` (fractions; every 17th colour of its 256) and
``tab20`` (atlas regions; Tableau's 20 colours). A map is its anchors linearly interpolated to
:data:`LEVELS` colours, as matplotlib builds a map from a colour list; no plotting library is
imported to draw a figure.
"""

from __future__ import annotations

import functools

import numpy as np

#: Colour of censored volumes, regions below the minimum coverage and the mask's contour.
ALERT = (214, 39, 40)
#: Number of colours of a colour map's lookup table (the palette's last entry is for NaN).
LEVELS = 255

_ANCHORS = {
    "RdBu_r": "053061 2166ac 4393c3 92c5de d1e5f0 f7f7f7 fddbc7 f4a582 d6604d b2182b 67001f",
    "gray": "000000 ffffff",
    "viridis": (
        "440154 481a6c 472f7d 414487 39568c 31688e 2a788e 23888e 1f988b 22a884 35b779 54c568 "
        "7ad151 a5db36 d2e21b fde725"
    ),
}
#: Listed colours (not interpolated).
_LISTED = {
    "tab20": (
        "1f77b4 aec7e8 ff7f0e ffbb78 2ca02c 98df8a d62728 ff9896 9467bd c5b0d5 8c564b c49c94 "
        "e377c2 f7b6d2 7f7f7f c7c7c7 bcbd22 dbdb8d 17becf 9edae5"
    ),
}


def _rgb(colours: str) -> np.ndarray:
    return np.array([[int(c[i : i + 2], 16) for i in (0, 2, 4)] for c in colours.split()])


@functools.cache
def lookup_table(name: str) -> np.ndarray:
    """Return a colour map as :data:`LEVELS` RGB colours (``uint8``), low to high.

    ``tab20`` (a list of colours) gives its 20 colours.

    Examples
    --------
    >>> lookup_table("gray")[[0, 127, 254]].tolist()
    [[0, 0, 0], [128, 128, 128], [255, 255, 255]]
    """
    if name in _LISTED:
        table = _rgb(_LISTED[name]).astype(np.uint8)
    else:
        anchors = _rgb(_ANCHORS[name]).astype(float)
        where = np.linspace(0, len(anchors) - 1, LEVELS)
        table = np.column_stack(
            [np.interp(where, np.arange(len(anchors)), anchors[:, k]) for k in range(3)]
        )
        table = np.floor(table + 0.5).astype(np.uint8)
    table.flags.writeable = False
    return table


def palette(name: str, bad: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Return a colour map's palette for an indexed PNG: its colours, then ``bad`` (for NaN)."""
    return np.vstack([lookup_table(name), np.array(bad, dtype=np.uint8)])


def to_indices(values: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """Map values to palette indices (``uint8``): ``vmin``..``vmax`` to 0..LEVELS-1, NaN to LEVELS.

    Examples
    --------
    >>> to_indices(np.array([-1.0, 0.0, 1.0, 5.0, np.nan]), -1, 1).tolist()
    [0, 127, 254, 254, 255]
    """
    values = np.asarray(values, dtype=np.float64)
    span = (vmax - vmin) or 1.0
    scaled = np.clip((values - vmin) / span, 0.0, 1.0) * (LEVELS - 1)
    out = np.floor(np.nan_to_num(scaled, nan=0.0) + 0.5).astype(np.uint8)
    out[np.isnan(values)] = LEVELS
    return out


def to_hex(rgb) -> str:
    """Return ``#rrggbb`` of an RGB triple of 0-255 integers.

    Examples
    --------
    >>> to_hex(ALERT)
    '#d62728'
    """
    return "#" + "".join(f"{int(v):02x}" for v in rgb[:3])
