"""Brain figures: slices of a 3D background with a mask contour, an atlas or a fraction map.

Every function takes arrays on one voxel grid (and its affine, to show the brain the right way
up) and returns a :class:`matplotlib.figure.Figure`: a row of axial slices spread over the brain,
then one sagittal and one coronal slice through its centre.
"""

from __future__ import annotations

import numpy as np
from nibabel import orientations

from bidsmask.reports import _mpl

#: Colour of regions below the minimum coverage, and of the mask's contour.
ALERT = "#d62728"


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


def _views(shape: tuple[int, ...], extent: np.ndarray, n_axial: int):
    """Yield ``(title, index)`` where index takes one 2D slice (x horizontal, y up) of a volume."""
    axial, sag, cor = slice_positions(extent, n_axial)
    for z in axial:
        yield f"z={z}", (slice(None), slice(None), z)
    yield f"x={sag}", (sag, slice(None), slice(None))
    yield f"y={cor}", (slice(None), cor, slice(None))


def _brain_figure(background: np.ndarray, extent: np.ndarray, draw, n_axial: int = 7):
    """Lay out the slices and call ``draw(ax, index)`` on each after the background."""
    views = list(_views(background.shape, extent, n_axial))
    fig = _mpl.figure(1.15 * len(views), 1.6)
    with _mpl.rc_context():
        axes = fig.subplots(1, len(views))
        finite = background[np.isfinite(background)]
        vmax = float(np.percentile(finite, 99.5)) if finite.size else 1.0
        for ax, (title, index) in zip(np.atleast_1d(axes), views, strict=True):
            ax.imshow(background[index].T, origin="lower", cmap="gray", vmin=0, vmax=vmax or 1.0)
            draw(ax, index)
            ax.set_title(title, fontsize=7)
            ax.set_axis_off()
    return fig


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
    matplotlib.figure.Figure
    """
    mask = np.asarray(mask, dtype=bool)

    def draw(ax, index):
        part = mask[index].T.astype(float)
        if part.any() and not part.all():
            ax.contour(part, levels=[0.5], colors=ALERT, linewidths=0.8)

    return _brain_figure(np.asarray(background, dtype=float), mask, draw, n_axial)


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
    matplotlib.figure.Figure
    """
    mpl = _mpl.matplotlib()
    regions = np.asarray(regions, dtype=np.int64)
    low = np.concatenate([[False], np.asarray(low, dtype=bool)])
    palette = mpl.colormaps["tab20"](np.arange(20) % 20)
    colours = np.zeros((low.size, 4))
    colours[1:] = palette[np.arange(low.size - 1) % 20]
    colours[1:, 3] = 0.55
    colours[low] = mpl.colors.to_rgba(ALERT, 0.95)

    def draw(ax, index):
        ax.imshow(colours[regions[index].T], origin="lower", interpolation="nearest")

    return _brain_figure(np.asarray(background, dtype=float), regions > 0, draw, n_axial)


def plot_fraction(background: np.ndarray | None, fraction: np.ndarray, n_axial: int = 7):
    """Draw a voxel-wise fraction (e.g. of runs whose mask holds the voxel), with a colour bar.

    Parameters
    ----------
    background : numpy.ndarray or None
        3D image under the map; None draws on black.
    fraction : numpy.ndarray
        3D array of values in [0, 1]; 0 is transparent.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fraction = np.asarray(fraction, dtype=float)
    if background is None:
        background = np.zeros_like(fraction)
    images = []

    def draw(ax, index):
        part = np.ma.masked_less_equal(fraction[index].T, 0)
        images.append(ax.imshow(part, origin="lower", cmap="viridis", vmin=0, vmax=1))

    fig = _brain_figure(np.asarray(background, dtype=float), fraction > 0, draw, n_axial)
    with _mpl.rc_context():
        fig.colorbar(images[-1], ax=fig.axes, shrink=0.8, label="fraction of runs")
    return fig
