"""Extrapolation of values beyond a mask, used before interpolating data with holes.

nilearn's ``masking.extrapolate_out_mask``; re-exported by :mod:`bidsmask.masking`.
:func:`bidsmask.image.resample_img` fills the non-finite voxels of a volume this way before
interpolating, so that a hole does not spread artefacts.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import binary_dilation

__all__ = ["extrapolate_out_mask"]

_FACE_OFFSETS = np.array([(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)])


def extrapolate_out_mask(
    data: np.ndarray, mask: np.ndarray, iterations: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Grow a mask by one voxel per iteration, filling each new voxel from its neighbours.

    Each voxel of the one-voxel shell around the mask gets the mean of its in-mask face
    neighbours; voxels outside the grown mask are 0.

    Parameters
    ----------
    data : numpy.ndarray
        3D array, or an array with more axes after the 3 spatial ones (each extrapolated alike).
    mask : numpy.ndarray of bool
        3D mask of the known values.
    iterations : int, default=1
        Number of voxels by which the mask grows.

    Returns
    -------
    data : numpy.ndarray
        float64 array of ``data``'s shape: the values in the mask, the extrapolated values in
        the shell, 0 elsewhere.
    mask : numpy.ndarray of bool
        The grown mask.

    Examples
    --------
    >>> data = np.zeros((3, 3, 3)); data[1, 1, 1] = 4.0
    >>> filled, grown = extrapolate_out_mask(data, data != 0)
    >>> filled[0, 1, 1], int(grown.sum())
    (np.float64(4.0), 7)
    """
    mask = np.asarray(mask, dtype=bool)
    extra = np.shape(data)[3:]
    values = np.asarray(data, dtype=np.float64).reshape(*mask.shape, -1)
    values = np.where(mask[..., None], values, 0.0)
    for _ in range(iterations):
        grown = binary_dilation(mask)
        padded = np.full((*(np.array(mask.shape) + 2), values.shape[-1]), np.nan)
        padded[1:-1, 1:-1, 1:-1] = np.where(mask[..., None], values, np.nan)
        shell = np.argwhere(grown & ~mask) + 1
        neighbours = np.stack([padded[tuple((shell + offset).T)] for offset in _FACE_OFFSETS])
        with np.errstate(invalid="ignore", divide="ignore"):
            filled = np.nansum(neighbours, axis=0) / np.isfinite(neighbours).sum(axis=0)
        filled[~np.isfinite(filled)] = 0
        values[tuple((shell - 1).T)] = filled
        mask = grown
    return values.reshape(*mask.shape, *extra), mask
