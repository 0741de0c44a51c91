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
from nibabel.spatialimages import SpatialImage

from bidsmask.image import _reader
from bidsmask.image._niimg import (
    check_niimg,
    check_niimg_3d,
    get_data,
    img_data_dtype,
    new_img_like,
)
from bidsmask.image._smoothing import smooth_array
from bidsmask.image._surface import (
    check_compatible_mask,
    is_surface_img,
    load_surface_mask,
    mask_surface,
)

logger = logging.getLogger(__name__)

__all__ = ["MaskShapeError", "apply_mask", "load_mask_img", "unmask", "unmask_from_to_3d_array"]


class MaskShapeError(TypeError, ValueError):
    """Masked data whose number of values does not match the mask.

    A ``TypeError`` (nilearn's type) and a ``ValueError``.
    """


def _name(img: Any) -> str:
    if isinstance(img, (str, os.PathLike)):
        return f"'{img}'"
    filename = img.get_filename() if hasattr(img, "get_filename") else None
    return f"'{filename}'" if filename else "in-memory image"


def load_mask_img(mask_img: Any, allow_empty: bool = False) -> tuple[Any, np.ndarray | None]:
    """Load a binary mask: two values, one of them 0 (or a single non-zero value).

    Parameters
    ----------
    mask_img : str, os.PathLike, nibabel image or surface image
        3D mask (a 4D image with one volume is accepted), or a 1D surface image (nilearn's
        ``SurfaceImage``). Non-finite values count as 0.
    allow_empty : bool, default=False
        Accept a mask of zeros only.

    Returns
    -------
    mask : numpy.ndarray of bool or surface image
        The 3D mask; for a surface mask, a new surface image with boolean data.
    affine : numpy.ndarray of shape (4, 4) or None
        Its affine (None for a surface mask).

    Raises
    ------
    TypeError
        If ``mask_img`` is neither an image nor a path.
    ValueError
        If the mask is empty (unless ``allow_empty``), or not binary.
    """
    if is_surface_img(mask_img):
        return load_surface_mask(mask_img, allow_empty=allow_empty), None
    if not isinstance(mask_img, (str, os.PathLike, SpatialImage)):
        raise TypeError(
            "'mask_img' should be a 3D/4D Niimg-like object or a SurfaceImage. "
            f"Got {type(mask_img).__name__}."
        )
    img = check_niimg_3d(mask_img)
    data = np.array(get_data(img))
    if data.dtype.kind == "f":
        data[~np.isfinite(data)] = 0
    values = np.unique(data)
    if len(values) == 1 and values[0] == 0 and not allow_empty:
        raise ValueError(
            f"The mask is invalid as it is empty: it masks all data ({_name(mask_img)}). "
            "Check the mask file or compute a new mask."
        )
    if len(values) == 2 and 0 not in values:
        raise ValueError(
            f"Background of the mask must be represented with 0 ({_name(mask_img)}). "
            f"Given mask contains: {values}."
        )
    if len(values) > 2:
        shown = values if len(values) <= 6 else f"{values[:3]} ... {values[-3:]}"
        raise ValueError(
            f"Given mask is not made of 2 values ({_name(mask_img)}: {len(values)} values, "
            f"{shown}); it cannot be interpreted as true or false. Binarize it first, "
            "e.g. with data > 0."
        )
    return data.astype(bool), img.affine


def _check_same_grid(mask: np.ndarray, mask_affine: np.ndarray, img: Any) -> None:
    problems = []
    if mask.shape != tuple(img.shape[:3]):
        problems.append(f"Mask shape: {mask.shape}\n is different from img shape:{img.shape[:3]}")
    if not np.allclose(mask_affine, img.affine):
        problems.append(
            f"Mask affine:\n{mask_affine}\n is different from img affine:\n{img.affine}"
        )
    if problems:
        raise ValueError(
            f"The mask and the data ({img.get_filename() or 'in memory'}) are not on the same "
            "grid. " + "\n".join(problems) + "\nResample the mask onto the data, e.g. with "
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
    imgs : str, os.PathLike, nibabel image, list of 3D images or surface image
        3D or 4D image on the mask's grid, or a 1D/2D surface image (nilearn's
        ``SurfaceImage``) on the mask's mesh.
    mask_img : str, os.PathLike, nibabel image or surface image
        Binary 3D mask, or 1D surface mask (see :func:`load_mask_img`).
    dtype : numpy dtype or "f", default="f"
        Output dtype; "f" keeps float data's dtype and turns other data into float32.
    smoothing_fwhm : float, sequence of 3 float or None, default=None
        Smooth each volume first (FWHM in mm; see :func:`bidsmask.image.smooth_array`); for
        surface images a scalar, smoothing along the mesh (see :func:`bidsmask.image.smooth_img`).
    ensure_finite : bool, default=True
        Replace non-finite values by 0 (always done when smoothing).

    Returns
    -------
    numpy.ndarray
        (n_volumes, n_voxels) for a 4D image, (n_voxels,) for a 3D image; voxels in the order
        of ``data[mask]``. For surface images, (n_samples, n_vertices) or (n_vertices,).
    """
    check_compatible_mask(mask_img, imgs)
    if is_surface_img(imgs):
        return mask_surface(imgs, mask_img, dtype=dtype, smoothing_fwhm=smoothing_fwhm)
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

    Raises
    ------
    MaskShapeError
        ``X`` does not have one value per mask voxel (a ``TypeError`` and ``ValueError``).
    """
    if isinstance(X, list) and X and not np.isscalar(X[0]):
        return [unmask(x, mask_img, order=order) for x in X]
    X = np.asanyarray(X)
    mask, affine = load_mask_img(mask_img)
    n_voxels = int(mask.sum())
    if X.ndim not in (1, 2):
        raise TypeError(f"Masked data X must be 2D or 1D array; got shape: {X.shape}.")
    if X.shape[-1] != n_voxels:
        raise MaskShapeError(
            f"X must be of shape (samples, {n_voxels}) to match the mask: X has {X.shape[-1]} "
            f"values per volume (shape {X.shape}) but the mask has {n_voxels} voxels. Use the "
            "mask the data were extracted with."
        )
    if X.ndim == 1:
        data = np.zeros(mask.shape, dtype=X.dtype, order=order)
        data[mask] = X
    else:
        data = np.zeros((*mask.shape, X.shape[0]), dtype=X.dtype, order=order)
        data[mask, :] = X.T
    return new_img_like(check_niimg_3d(mask_img), data, affine)


def unmask_from_to_3d_array(w: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Put masked values back into an array of the mask's shape, with zeros elsewhere.

    Parameters
    ----------
    w : numpy.ndarray
        1D array, one value per ``True`` element of ``mask`` (in ``mask``'s C order).
    mask : numpy.ndarray of bool
        Mask of any shape.

    Returns
    -------
    numpy.ndarray
        Array of ``mask``'s shape and ``w``'s dtype.

    Examples
    --------
    >>> unmask_from_to_3d_array(np.array([5, 7]), np.array([True, False, True])).tolist()
    [5, 0, 7]
    """
    w = np.asarray(w)
    mask = np.asarray(mask, dtype=bool)
    if w.shape != (int(mask.sum()),):
        raise MaskShapeError(
            f"w must be of shape ({int(mask.sum())},), one value per mask element; got {w.shape}."
        )
    out = np.zeros(mask.shape, dtype=w.dtype)
    out[mask] = w
    return out
