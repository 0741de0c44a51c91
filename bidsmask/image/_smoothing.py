"""Gaussian smoothing of 3D/4D arrays with a FWHM in millimetres (array level, no I/O).

:func:`smooth_array` filters the three spatial axes of each volume independently, so the volumes of
a run may be smoothed chunk by chunk with the same result as smoothing the whole run.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np
from scipy.ndimage import gaussian_filter1d

logger = logging.getLogger(__name__)

__all__ = ["fwhm_to_sigma", "smooth_array"]

_FWHM_OVER_SIGMA = np.sqrt(8 * np.log(2))


def fwhm_to_sigma(fwhm: float | Sequence[float | None], affine: np.ndarray) -> np.ndarray:
    """Convert a FWHM in millimetres into a Gaussian sigma in voxels, per axis.

    Parameters
    ----------
    fwhm : float or sequence of float or None
        Full width at half maximum, one value for all axes or one per axis (``None`` or 0: no
        smoothing along that axis).
    affine : numpy.ndarray of shape (4, 4) or (3, 3)
        Affine of the image; voxel sizes are the norms of its columns (anisotropic and oblique
        grids are handled).

    Returns
    -------
    numpy.ndarray of shape (3,)
        Sigma along each axis, in voxels.

    Examples
    --------
    >>> fwhm_to_sigma(6.0, np.diag([3.0, 3.0, 4.0, 1.0])).round(4)
    array([0.8493, 0.8493, 0.6369])
    """
    values = np.asarray([fwhm], dtype=object).ravel()
    values = np.asarray([0.0 if value is None else value for value in values], dtype=float)
    if np.any(values < 0) or not np.all(np.isfinite(values)):
        raise ValueError(f"fwhm must be finite and non-negative, got {fwhm!r}.")
    vox_size = np.sqrt(np.sum(np.asarray(affine, dtype=float)[:3, :3] ** 2, axis=0))
    return np.broadcast_to(values / (_FWHM_OVER_SIGMA * vox_size), (3,)).copy()


def _fast_smooth(arr: np.ndarray) -> np.ndarray:
    """Smooth with [0.2, 1, 0.2] weights along each spatial axis, normalised by 2.2."""
    neighbor_weight = 0.2
    smoothed = arr.copy()
    weighted = neighbor_weight * arr
    smoothed[:-1] += weighted[1:]
    smoothed[1:] += weighted[:-1]
    smoothed[:, :-1] += weighted[:, 1:]
    smoothed[:, 1:] += weighted[:, :-1]
    smoothed[:, :, :-1] += weighted[:, :, 1:]
    smoothed[:, :, 1:] += weighted[:, :, :-1]
    smoothed /= 1 + 6 * neighbor_weight
    return smoothed


def smooth_array(
    arr: np.ndarray,
    affine: np.ndarray | None,
    fwhm: float | str | Sequence[float | None] | None = None,
    ensure_finite: bool = True,
    copy: bool = True,
) -> np.ndarray:
    """Smooth the three spatial axes of a 3D or 4D array with a Gaussian filter.

    Parameters
    ----------
    arr : numpy.ndarray
        3D array or 4D array with volumes along the last axis. Integer arrays are smoothed as
        float32 (64-bit integers as float64).
    affine : numpy.ndarray of shape (4, 4) or (3, 3), or None
        Affine giving the voxel sizes; unused (may be None) when ``fwhm='fast'``.
    fwhm : float, sequence of float, "fast" or None, default=None
        FWHM in millimetres (scalar or per axis); ``"fast"`` applies a [0.2, 1, 0.2] kernel;
        ``None`` or 0 does not smooth.
    ensure_finite : bool, default=True
        Replace NaNs and infinities by 0 before filtering.
    copy : bool, default=True
        Leave ``arr`` unchanged; with ``False`` a float array is filtered in place.

    Returns
    -------
    numpy.ndarray
        The smoothed array.

    Examples
    --------
    >>> arr = np.zeros((1, 3, 3)); arr[0, 1, 1] = 3.0
    >>> smooth_array(arr, np.eye(4), fwhm=2)[0, 1].round(4)
    array([0.3738, 0.6671, 0.3738])
    """
    if isinstance(fwhm, (int, float)) and not isinstance(fwhm, bool) and fwhm == 0:
        warnings.warn(
            f"The parameter 'fwhm' for smoothing is specified as {float(fwhm)}. Setting it to "
            "None (no smoothing will be performed).",
            UserWarning,
            stacklevel=2,
        )
        fwhm = None
    if arr.dtype.kind in ("i", "u", "b"):
        arr = arr.astype(np.float64 if arr.dtype in (np.int64, np.uint64) else np.float32)
    elif copy:
        arr = arr.copy()
    if ensure_finite:
        arr[~np.isfinite(arr)] = 0
    if isinstance(fwhm, str):
        if fwhm != "fast":
            raise ValueError(f"fwhm must be a number, a sequence, 'fast' or None; got {fwhm!r}.")
        return _fast_smooth(arr)
    if fwhm is None:
        return arr
    if affine is None:
        raise ValueError("An affine is needed to convert fwhm from millimetres to voxels.")
    for axis, sigma in enumerate(fwhm_to_sigma(fwhm, affine)):
        if sigma > 0:
            gaussian_filter1d(arr, sigma, output=arr, axis=axis)
    return arr
