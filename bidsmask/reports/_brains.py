"""Brain figures: slices of a 3D background with a mask contour, an atlas or a fraction map.

Every function takes arrays on one voxel grid (and its affine, to show the brain the right way
up) and returns a :class:`~bidsmask.reports._svg.Drawing`: a row of axial slices spread over the
brain, then one sagittal and one coronal slice through its centre, each named above it (``z=``,
``x=``, ``y=`` voxel index) and drawn as a PNG raster at the grid's resolution.
"""

from __future__ import annotations

import numpy as np
from nibabel import orientations

from bidsmask.reports._colours import ALERT, lookup_table, to_indices
from bidsmask.reports._plots import colour_bar
from bidsmask.reports._png import encode_png
from bidsmask.reports._svg import Drawing

#: Pixels between slices, and above them for their names.
_GAP, _TITLE = 4, 16


def to_ras(data: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Return an array reordered to the closest canonical (RAS) orientation of its affine.

    Axes then run left→right, back→front, bottom→top, so slices are drawn the right way up.
    """
    ornt = orientations.io_orientation(np.asarray(affine))
    return orientations.apply_orientation(np.asarray(data), ornt)


def slice_positions(extent: np.ndarray, n_axial: int = 7) -> tuple[list[int], int, int]:
    """Return the slices to show: ``n_axial`` axial ones, one sagittal, one coronal.

    Axial slices are spread over a 3D boolean extent (e.g. the mask), the sagittal and coronal
    ones go through its centre (the grid's when the extent is empty).
    """
    extent = np.asarray(extent, dtype=bool)
    if extent.any():
        where = [
            np.flatnonzero(extent.any(axis=tuple(a for a in range(3) if a != k))) for k in (0, 1, 2)
        ]
    else:
        where = [np.arange(n) for n in extent.shape]
    lo, hi = where[2][0], where[2][-1]
    axial = np.linspace(lo, hi, n_axial + 2)[1:-1].round().astype(int) if hi > lo else [lo]
    centre = [int(round((w[0] + w[-1]) / 2)) for w in where]
    return sorted(set(int(z) for z in axial)), centre[0], centre[1]


def _views(extent: np.ndarray, n_axial: int):
    """Yield ``(title, index)`` where index takes one 2D slice (x horizontal, y up) of a volume."""
    axial, sag, cor = slice_positions(extent, n_axial)
    for z in axial:
        yield f"z={z}", (slice(None), slice(None), z)
    yield f"x={sag}", (sag, slice(None), slice(None))
    yield f"y={cor}", (slice(None), cor, slice(None))


def _edges(part: np.ndarray) -> np.ndarray:
    """Return the pixels of a 2D boolean image that touch a pixel outside it (its contour)."""
    padded = np.pad(part, 1)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return part & ~inner


def _tile(view: np.ndarray) -> np.ndarray:
    """Return a (x, y) slice as an image (rows from the top, y up)."""
    return view.T[::-1]


def _brain_figure(background: np.ndarray, extent: np.ndarray, paint, n_axial: int = 7, extra=0.0):
    """Draw the slices side by side, each named above it, as RGB rasters in one SVG.

    ``paint(rgb, index)`` colours the (rows, columns, 3) image (values in [0, 1], already the
    grey background) of the slice taken by ``index`` in place. Each slice is one PNG at the
    grid's resolution (class ``slice``), scaled up by a whole factor to about 110 pixels high;
    ``extra`` pixels are left free on the right.
    """
    finite = background[np.isfinite(background)]
    vmax = float(np.percentile(finite, 99.5)) if finite.size else 1.0
    scaled = np.clip(np.nan_to_num(background) / (vmax or 1.0), 0, 1)
    views = list(_views(extent, n_axial))
    tiles = []
    for _, index in views:
        rgb = np.repeat(_tile(scaled[index])[..., None], 3, axis=2)
        paint(rgb, index)
        tiles.append(np.floor(np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8))
    height = max(t.shape[0] for t in tiles)
    zoom = max(1, int(round(110 / height)))
    width = sum(t.shape[1] * zoom for t in tiles) + _GAP * (len(tiles) - 1)
    drawing = Drawing(width + extra, height * zoom + _TITLE)
    left = 0
    for (title, _), rgb in zip(views, tiles, strict=True):
        w, h = rgb.shape[1] * zoom, rgb.shape[0] * zoom
        drawing.text(left + w / 2, _TITLE - 4, title, 9, "middle")
        top = _TITLE + (height * zoom - h) / 2
        drawing.image(left, top, w, h, encode_png(rgb), class_="slice")
        left += w + _GAP
    return drawing


def plot_mask(background: np.ndarray, mask: np.ndarray, n_axial: int = 7):
    """Draw a mask's contour over a background (e.g. the run's boldref).

    Parameters
    ----------
    background : numpy.ndarray
        3D image, RAS-ordered (:func:`to_ras`).
    mask : numpy.ndarray
        3D boolean mask on the same grid.
    n_axial : int
        Number of axial slices.

    Returns
    -------
    Drawing
        Axial slices, then a sagittal and a coronal one, each named above it.
    """
    mask = np.asarray(mask, dtype=bool)
    red = np.array(ALERT) / 255

    def paint(rgb, index):
        rgb[_edges(_tile(mask[index]))] = red

    return _brain_figure(np.asarray(background, dtype=float), mask, paint, n_axial)


def plot_atlas(background: np.ndarray, regions: np.ndarray, low: np.ndarray, n_axial: int = 7):
    """Draw an atlas's regions over a background, those below the minimum coverage in red.

    Parameters
    ----------
    background : numpy.ndarray
        3D image, RAS-ordered.
    regions : numpy.ndarray
        3D integer array: 0 outside every region, ``k + 1`` in the atlas's region ``k``.
    low : numpy.ndarray
        Boolean per region: True where the region's coverage is below the minimum.

    Returns
    -------
    Drawing
    """
    regions = np.asarray(regions, dtype=np.int64)
    low = np.concatenate([[False], np.asarray(low, dtype=bool)])
    palette = lookup_table("tab20") / 255
    colours = np.zeros((low.size, 3))
    colours[1:] = palette[np.arange(low.size - 1) % len(palette)]
    alpha = np.where(low, 0.95, 0.55)
    alpha[0] = 0.0
    colours[low] = np.array(ALERT) / 255

    def paint(rgb, index):
        part = _tile(regions[index])
        a = alpha[part][..., None]
        rgb[:] = rgb * (1 - a) + colours[part] * a

    return _brain_figure(np.asarray(background, dtype=float), regions > 0, paint, n_axial)


def plot_fraction(background: np.ndarray | None, fraction: np.ndarray, n_axial: int = 7):
    """Draw a voxel-wise fraction (e.g. of runs whose mask holds the voxel), with a colour bar.

    Parameters
    ----------
    background : numpy.ndarray or None
        3D image under the map; None draws on black.
    fraction : numpy.ndarray
        3D array of values in [0, 1] (``viridis``, with a colour bar); 0 is transparent.

    Returns
    -------
    Drawing
    """
    fraction = np.asarray(fraction, dtype=float)
    viridis = lookup_table("viridis") / 255
    if background is None:
        background = np.zeros_like(fraction)

    def paint(rgb, index):
        part = _tile(fraction[index])
        inside = part > 0
        rgb[inside] = viridis[to_indices(part[inside], 0.0, 1.0)]

    drawing = _brain_figure(np.asarray(background, dtype=float), fraction > 0, paint, n_axial, 90)
    body = drawing.height - _TITLE
    bar = (drawing.width - 78, _TITLE + 0.1 * body, 12, 0.8 * body)
    colour_bar(drawing, bar, "viridis", (0.0, 1.0), "fraction of runs")
    return drawing
