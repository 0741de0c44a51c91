"""Masking: load a binary mask, extract the in-mask voxels of an image, put them back.

The public names are re-exported by :mod:`bidsmask.masking`. :func:`apply_mask` reads a 4D
image a chunk of volumes at a time (:mod:`bidsmask.image._reader`) and fills the (time x voxels)
output as it goes; the image is never held whole.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any, Literal

import nibabel as nib
import numpy as np

from bidsmask.image import _reader
from bidsmask.image._niimg import (
    check_niimg,
    check_niimg_3d,
    get_data,
    img_data_dtype,
    new_img_like,
)
from bidsmask.image._smoothing import smooth_array

logger = logging.getLogger(__name__)

__all__ = ["apply_mask", "load_mask_img", "unmask"]


def _name(img: Any) -> str:
    if isinstance(img, (str, os.PathLike)):
        return f"'{img}'"
    filename = img.get_filename() if hasattr(img, "get_filename") else None
    return f"'{filename}'" if filename else "the mask image"


def load_mask_img(mask_img: Any, allow_empty: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Load a binary mask: two values, one of them 0 (or a single non-zero value).

    Parameters
    ----------
    mask_img : str, os.PathLike or nibabel image
        3D mask (a 4D image with one volume is accepted). Non-finite values count as 0.
    allow_empty : bool, default=False
        Accept a mask of zeros only.

    Returns
    -------
    mask : numpy.ndarray of bool
        The 3D mask.
    affine : numpy.ndarray of shape (4, 4)
        Its affine.

    Raises
    ------
    ValueError
        If the mask is empty (unless ``allow_empty``), or not binary.
    """
    img = check_niimg_3d(mask_img)
    data = np.array(get_data(img))
    if data.dtype.kind == "f":
        data[~np.isfinite(data)] = 0
    values = np.unique(data)
    if len(values) == 1 and values[0] == 0 and not allow_empty:
        raise ValueError(
            f"The mask {_name(mask_img)} is invalid as it is empty: it masks all data. "
            "Check the mask file or compute a new mask."
        )
    if len(values) == 2 and 0 not in values:
        raise ValueError(
            f"Background of the mask {_name(mask_img)} must be represented with 0. "
            f"Given mask contains: {values}."
        )
    if len(values) > 2:
        shown = values if len(values) <= 6 else f"{values[:3]} ... {values[-3:]}"
        raise ValueError(
            f"The mask {_name(mask_img)} is not made of 2 values ({len(values)} values: "
            f"{shown}); it cannot be interpreted as true or false. Binarize it first, "
            "e.g. with data > 0."
        )
    return data.astype(bool), img.affine


def _check_same_grid(mask: np.ndarray, mask_affine: np.ndarray, img: Any) -> None:
    if mask.shape != tuple(img.shape[:3]) or not np.allclose(mask_affine, img.affine):
        raise ValueError(
            f"The mask and the data are not on the same grid: mask shape {mask.shape}, data "
            f"shape {tuple(img.shape[:3])}; mask affine\n{mask_affine}\ndata affine\n"
            f"{img.affine}\nResample the mask onto the data, e.g. with "
            "bidsmask.image.resample_to_img(mask, data, interpolation='nearest')."
        )


def apply_mask(
    imgs: Any,
    mask_img: Any,
    dtype: Any = "f",
    smoothing_fwhm: float | Sequence[float] | None = None,
    ensure_finite: bool = True,
) -> np.ndarray:
    """Extract the in-mask voxels of an image: (time, voxels) for 4D, (voxels,) for 3D.

    The image is read a chunk of volumes at a time; each chunk is smoothed (optionally) and
    masked before the next is read.

    Parameters
    ----------
    imgs : str, os.PathLike, nibabel image or list of 3D images
        3D or 4D image on the mask's grid.
    mask_img : str, os.PathLike or nibabel image
        Binary 3D mask (see :func:`load_mask_img`).
    dtype : numpy dtype or "f", default="f"
        Output dtype; "f" keeps float data's dtype and turns other data into float32.
    smoothing_fwhm : float, sequence of 3 float or None, default=None
        Smooth each volume first (FWHM in mm; see :func:`bidsmask.image.smooth_array`).
    ensure_finite : bool, default=True
        Replace non-finite values by 0 (always done when smoothing).

    Returns
    -------
    numpy.ndarray
        (n_volumes, n_voxels) for a 4D image, (n_voxels,) for a 3D image; voxels in the order
        of ``data[mask]``.
    """
    mask, mask_affine = load_mask_img(mask_img)
    img = check_niimg(imgs)
    _check_same_grid(mask, mask_affine, img)
    data_dtype = img_data_dtype(img)
    out_dtype = np.dtype(
        (data_dtype if data_dtype.kind == "f" else np.float32) if dtype == "f" else dtype
    )
    if smoothing_fwhm is not None:
        if out_dtype.kind != "f":
            raise ValueError(
                f"smoothing_fwhm={smoothing_fwhm!r} needs a float dtype, got dtype={dtype!r}."
            )
        ensure_finite = True
    n_vols = 1 if len(img.shape) == 3 else img.shape[3]
    series = np.empty((n_vols, int(mask.sum())), dtype=out_dtype)
    for time_slice, chunk in _reader.iter_chunks(img, dtype=out_dtype):
        if out_dtype.kind == "f" and (ensure_finite or smoothing_fwhm is not None):
            smooth_array(
                chunk, img.affine, fwhm=smoothing_fwhm, ensure_finite=ensure_finite, copy=False
            )
        series[time_slice] = chunk[mask].T
    return series[0] if len(img.shape) == 3 else series


def unmask(
    X: np.ndarray | list[np.ndarray], mask_img: Any, order: Literal["F", "C"] = "F"
) -> nib.Nifti1Image | list[nib.Nifti1Image]:
    """Put masked data back into 3D (from 1D) or 4D (from 2D, time x voxels) images.

    Parameters
    ----------
    X : numpy.ndarray or list of numpy.ndarray
        (n_voxels,) or (n_volumes, n_voxels) array, or a list of them.
    mask_img : str, os.PathLike or nibabel image
        The binary mask used to mask the data.
    order : {"F", "C"}, default="F"
        Memory layout of the output data.

    Returns
    -------
    nibabel.Nifti1Image or list of nibabel.Nifti1Image
        Image(s) with zeros outside the mask and ``X``'s dtype.
    """
    if isinstance(X, list) and X and not np.isscalar(X[0]):
        return [unmask(x, mask_img, order=order) for x in X]
    X = np.asanyarray(X)
    mask, affine = load_mask_img(mask_img)
    n_voxels = int(mask.sum())
    if X.ndim not in (1, 2):
        raise TypeError(f"Masked data X must be 2D or 1D array; got shape: {X.shape}.")
    if X.shape[-1] != n_voxels:
        raise ValueError(
            f"X has {X.shape[-1]} values per volume (shape {X.shape}) but the mask has "
            f"{n_voxels} voxels. Use the mask the data were extracted with."
        )
    if X.ndim == 1:
        data = np.zeros(mask.shape, dtype=X.dtype, order=order)
        data[mask] = X
    else:
        data = np.zeros((*mask.shape, X.shape[0]), dtype=X.dtype, order=order)
        data[mask, :] = X.T
    return new_img_like(check_niimg_3d(mask_img), data, affine)
