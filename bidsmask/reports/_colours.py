"""Colours of the figures: matplotlib's colour maps as lookup tables, and the alert colour.

matplotlib is imported only for its colour maps (``RdBu_r`` for matrices, ``gray`` for carpet
plots, ``viridis`` for fractions, ``tab20`` for atlas regions), when the first figure needs one;
``import bidsmask`` never imports it, and nothing is drawn with it (no backend is chosen). Its
import needs a writable config folder: unless ``MPLCONFIGDIR`` is set or matplotlib's own folders
are already there and writable, ``MPLCONFIGDIR`` is pointed at a private folder in the temporary
folder, so a read-only container or a home folder that must stay untouched works.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

import numpy as np

#: Colour of censored volumes, regions below the minimum coverage and the mask's contour.
ALERT = (214, 39, 40)
#: Number of colours of a colour map's lookup table (the palette's last entry is for NaN).
LEVELS = 255


def _user_dirs_ready() -> bool:
    """Tell whether matplotlib's default config and cache folders exist and are writable.

    They are never created here: bidsmask leaves nothing in a home folder it did not find set up.
    """
    home = os.path.expanduser("~")
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    folders = [Path(config) / "matplotlib", Path(cache) / "matplotlib"]
    return all(f.is_dir() and os.access(f, os.W_OK) for f in folders)


def _private_config_dir() -> str:
    """Return a folder of this user's in the temporary folder (kept: the font cache is reused)."""
    folder = Path(tempfile.gettempdir()) / f"bidsmask-matplotlib-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        if folder.stat().st_uid == os.getuid() and os.access(folder, os.W_OK):
            return str(folder)
    except OSError:
        pass
    return tempfile.mkdtemp(prefix="bidsmask-matplotlib-")


def _colormaps():
    """Return matplotlib's colour-map registry, importing matplotlib in a writable config folder."""
    if "MPLCONFIGDIR" not in os.environ and not _user_dirs_ready():
        os.environ["MPLCONFIGDIR"] = _private_config_dir()
    import matplotlib

    return matplotlib.colormaps


@functools.cache
def lookup_table(name: str) -> np.ndarray:
    """Return a colour map as :data:`LEVELS` RGB colours (``uint8``), low to high.

    ``tab20`` (a list of 20 colours) gives its 20 colours.
    """
    cmap = _colormaps()[name]
    colours = getattr(cmap, "colors", None) if cmap.N < LEVELS else None
    rgba = np.asarray(colours) if colours is not None else cmap(np.linspace(0, 1, LEVELS))
    table = (np.asarray(rgba)[:, :3] * 255).round().astype(np.uint8)
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
