"""Image operations with nilearn 0.14's names, parameters and results.

Loading and validation (:func:`load_img`, :func:`check_niimg`, :func:`new_img_like` …), indexing
and concatenation along time, the mean over time, resampling (:func:`resample_img`,
:func:`resample_to_img`, :func:`reorder_img`), Gaussian smoothing (:func:`smooth_img`,
:func:`smooth_array`) and voxel-wise operations on in-memory maps (:func:`threshold_img`,
:func:`binarize_img`, :func:`math_img`, :func:`crop_img` … in ``_ops``).

4D images are processed a chunk of volumes at a time through :mod:`bidsmask.image._reader`:
:func:`mean_img` keeps a float64 running sum of one volume, never the whole run.

Surface images (nilearn's ``SurfaceImage``) are recognised by duck typing (see ``_surface``) by
the functions nilearn extends to them. Missing files raise :class:`ImageNotFoundError`, both a
``FileNotFoundError`` and nilearn's ``ValueError``.

Deliberate differences from nilearn: ``memory``/``n_jobs``/``verbose`` parameters, where
accepted, are ignored (no joblib caching or parallelism), derived images store the data type of
their data in their header, :func:`get_data` does not fill the data cache of images read from
files, and ``resample_img`` always interpolates (``force_resample=False``, nilearn's padding
shortcut, gives the same values).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from typing import Any

import nibabel as nib
import numpy as np
from nibabel.spatialimages import SpatialImage

from bidsmask.image import _reader
from bidsmask.image._niimg import (
    DimensionError,
    check_niimg,
    check_niimg_3d,
    check_niimg_4d,
    concat_niimgs,
    get_data,
    img_data_dtype,
    iter_check_niimg,
    load_img,
    new_img_like,
)
from bidsmask.image._ops import (
    binarize_img,
    check_same_fov,
    copy_img,
    crop_img,
    largest_connected_component_img,
    math_img,
    swap_img_hemispheres,
    threshold_img,
)
from bidsmask.image._orient import (
    coord_transform,
    from_matrix_vector,
    get_mask_bounds,
    reorder_img,
)
from bidsmask.image._reader import ImageNotFoundError
from bidsmask.image._resampling import BoundingBoxError, get_bounds, resample_img, resample_to_img
from bidsmask.image._smoothing import fwhm_to_sigma, smooth_array
from bidsmask.image._surface import (
    all_surface_imgs,
    concat_surface,
    index_surface,
    is_surface_img,
    iter_surface,
    mean_surface,
    smooth_surface,
)

logger = logging.getLogger(__name__)

__all__ = [
    "BoundingBoxError",
    "DimensionError",
    "ImageNotFoundError",
    "binarize_img",
    "check_niimg",
    "check_niimg_3d",
    "check_niimg_4d",
    "check_same_fov",
    "compute_mean",
    "concat_imgs",
    "coord_transform",
    "copy_img",
    "crop_img",
    "from_matrix_vector",
    "fwhm_to_sigma",
    "get_bounds",
    "get_data",
    "get_mask_bounds",
    "index_img",
    "iter_check_niimg",
    "iter_img",
    "largest_connected_component_img",
    "load_img",
    "math_img",
    "mean_img",
    "new_img_like",
    "reorder_img",
    "resample_img",
    "resample_to_img",
    "smooth_array",
    "smooth_img",
    "swap_img_hemispheres",
    "threshold_img",
]


def _chunk_dtype(dtype: np.dtype) -> np.dtype:
    """Float dtype in which to read chunks for sums: float32 is exact for <= 16-bit ints."""
    if dtype == np.float32 or dtype.itemsize <= 2:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def compute_mean(
    img: Any,
    target_affine: np.ndarray | None = None,
    target_shape: tuple[int, int, int] | None = None,
    smooth: float | bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Compute the mean over time of one 3D or 4D image, streaming its volumes.

    Parameters
    ----------
    img : str, os.PathLike or nibabel image
        The image; a 4D file is read a chunk of volumes at a time.
    target_affine : numpy.ndarray or None, default=None
        Resample the mean onto this affine (see :func:`resample_img`).
    target_shape : tuple of 3 int or None, default=None
        Resample the mean onto this shape.
    smooth : float or False, default=False
        Smooth the mean with this FWHM *in voxels*; NaNs are kept where they were.

    Returns
    -------
    mean : numpy.ndarray
        3D array: a 3D image's data (dtype kept), or the mean over time of a 4D image (float64
        for integer data, else the data's float type), summed in float64.
    affine : numpy.ndarray
        Affine of ``mean``.
    """
    img = check_niimg(img)
    dtype = img_data_dtype(img)
    if len(img.shape) == 3:
        mean = np.array(get_data(img))
    else:
        total = np.zeros(img.shape[:3], dtype=np.float64)
        for _, chunk in _reader.iter_chunks(img, dtype=_chunk_dtype(dtype)):
            total += chunk.sum(axis=-1, dtype=np.float64)
        total /= img.shape[3]
        mean = total.astype(np.zeros(1, dtype=dtype).mean().dtype, copy=False)
    affine = img.affine
    if target_affine is not None or target_shape is not None:
        resampled = resample_img(
            nib.Nifti1Image(mean, affine),
            target_affine=target_affine,
            target_shape=target_shape,
            copy=False,
        )
        mean, affine = np.asarray(resampled.dataobj), resampled.affine
    if smooth:
        nan_mask = np.isnan(mean)
        mean = smooth_array(mean, affine=np.eye(4), fwhm=smooth, ensure_finite=True, copy=False)
        mean[nan_mask] = np.nan
    return mean, affine


def _as_list(imgs: Any) -> list[Any]:
    if isinstance(imgs, (str, os.PathLike, SpatialImage)) or not isinstance(imgs, Iterable):
        return [imgs]
    return list(imgs)


def mean_img(
    imgs: Any,
    target_affine: np.ndarray | None = None,
    target_shape: tuple[int, int, int] | None = None,
    copy_header: bool = True,
) -> Any:
    """Compute the mean of images over time.

    Each 4D image is averaged over time, streaming its volumes (float64 running sum); with
    several images, the mean of their means is returned. Surface images (nilearn's
    ``SurfaceImage``) are averaged over their samples and give a 1D surface image.

    Parameters
    ----------
    imgs : str, os.PathLike, nibabel image, surface image or iterable of these
        Image(s) to average.
    target_affine : numpy.ndarray or None, default=None
        Resample each mean onto this affine.
    target_shape : tuple of 3 int or None, default=None
        Resample each mean onto this shape.
    copy_header : bool, default=True
        Copy the first image's header.

    Returns
    -------
    nibabel.Nifti1Image
        3D mean image.

    Examples
    --------
    >>> data = np.stack([np.ones((2, 2, 2)), np.zeros((2, 2, 2))], axis=-1)
    >>> mean_img(nib.Nifti1Image(data, np.eye(4))).get_fdata()[0, 0]
    array([0.5, 0.5])
    """
    if is_surface_img(imgs) or all_surface_imgs(imgs):
        return mean_surface(imgs)
    imgs = _as_list(imgs)
    if not imgs:
        raise ValueError("mean_img needs at least one image; an empty list was given.")
    first = check_niimg(imgs[0])
    running, affine = compute_mean(first, target_affine=target_affine, target_shape=target_shape)
    if target_affine is None or target_shape is None:
        target_affine, target_shape = affine, running.shape[:3]
    for img in imgs[1:]:
        this_mean, _ = compute_mean(img, target_affine=target_affine, target_shape=target_shape)
        running = running + this_mean
    running = running / float(len(imgs))
    return new_img_like(first, running, target_affine, copy_header=copy_header)


def index_img(imgs: Any, index: Any) -> Any:
    """Select volumes of a 4D image along its last axis, reading only the volumes needed.

    Parameters
    ----------
    imgs : str, os.PathLike, nibabel image, list of 3D images or 2D surface image
        The 4D image, or a surface image with samples (nilearn's ``SurfaceImage``).
    index : int, slice, sequence of int or bool, numpy array or pandas object
        Any numpy index of the last axis.

    Returns
    -------
    nibabel.Nifti1Image or surface image
        3D image for an integer index, else 4D; a surface image stays 2D.
    """
    if is_surface_img(imgs):
        return index_surface(imgs, index)
    img = check_niimg_4d(imgs)
    n_vols = img.shape[3]
    if hasattr(index, "iloc") and hasattr(index, "to_numpy"):
        index = index.to_numpy().ravel()
    if isinstance(index, (int, np.integer)) and not -n_vols <= index < n_vols:
        raise IndexError(
            f"Integer index {index} out of range for last dimension with size {n_vols}"
        )
    selected = np.arange(n_vols)[index]
    dtype = img_data_dtype(img)
    if np.ndim(selected) == 0:
        data = np.asarray(img.dataobj[..., int(selected)], dtype=dtype)
    elif selected.size == 0:
        data = np.zeros((*img.shape[:3], 0), dtype=dtype)
    else:
        lo, hi = int(selected.min()), int(selected.max()) + 1
        data = np.asarray(img.dataobj[..., lo:hi], dtype=dtype)[..., selected - lo]
    return new_img_like(img, data, img.affine, copy_header=True)


def iter_img(imgs: Any) -> Iterator[Any]:
    """Iterate over the volumes of a 4D image, reading it a chunk of volumes at a time.

    Parameters
    ----------
    imgs : str, os.PathLike, nibabel image, list of 3D images or surface image
        The 4D image, or a surface image (one image per sample; a 1D one yields itself).

    Yields
    ------
    nibabel.Nifti1Image or surface image
        One 3D image per volume (a 2D surface image with one sample per surface sample).
    """
    if is_surface_img(imgs):
        return iter_surface(imgs)
    # a single image is checked now (DimensionError at the call, not at the first iteration)
    return check_niimg_4d(imgs, return_iterator=True)


def concat_imgs(
    niimgs: Any,
    dtype: Any = np.float32,
    ensure_ndim: int | None = None,
    memory: Any = None,
    memory_level: int = 0,
    auto_resample: bool = False,
    verbose: int = 0,
) -> Any:
    """Concatenate 3D or 4D images along the 4th dimension.

    Parameters
    ----------
    niimgs : iterable of images or paths, or a glob pattern
        Images to concatenate, all 3D or all 4D; or surface images (nilearn's ``SurfaceImage``,
        1D or 2D, on one mesh), concatenated along their samples.
    dtype : numpy dtype or None, default=numpy.float32
        Dtype of the result (``None``: the first image's).
    ensure_ndim : {3, 4, None}, default=None
        Required dimensionality of the result (ignored for surface images).
    memory, memory_level : ignored
        Accepted for nilearn compatibility (no joblib caching here).
    auto_resample : bool, default=False
        Resample every image onto the first image's grid (cubic spline); otherwise images on
        another grid raise ``ValueError``.
    verbose : int, default=0
        Log the number of images at INFO level when positive.

    Returns
    -------
    nibabel.Nifti1Image or surface image
        The concatenated 4D image (a 2D surface image for surface inputs).
    """
    if all_surface_imgs(niimgs):
        return concat_surface(list(niimgs), dtype=dtype)
    if isinstance(niimgs, (str, os.PathLike)):
        niimgs = check_niimg(niimgs)
    imgs = _as_list(niimgs)
    if not imgs:
        raise TypeError("Cannot concatenate empty objects: the list of images is empty.")
    if verbose:
        logger.info("Concatenating %d images", len(imgs))
    element_ndim = None if ensure_ndim is None else ensure_ndim - 1
    try:
        if auto_resample:
            first = check_niimg(imgs[0], ensure_ndim=element_ndim)
            imgs = [first] + [
                resample_img(img, target_affine=first.affine, target_shape=first.shape[:3])
                for img in imgs[1:]
            ]
        return concat_niimgs(imgs, dtype=dtype, ensure_ndim=element_ndim)
    except DimensionError as exc:
        raise exc.in_list() from exc


def _smooth_one(img: Any, fwhm: Any) -> nib.Nifti1Image:
    img = check_niimg(img)
    dtype = img_data_dtype(img).newbyteorder("=")
    if dtype.kind in ("i", "u", "b"):
        dtype = np.dtype(np.float64 if dtype in (np.int64, np.uint64) else np.float32)
    if len(img.shape) == 3:
        data = smooth_array(get_data(img).astype(dtype), img.affine, fwhm=fwhm, copy=False)
        return new_img_like(img, data, img.affine, copy_header=True)
    out = np.empty(img.shape, dtype=dtype, order="F")
    for time_slice, chunk in _reader.iter_chunks(img, dtype=dtype):
        out[..., time_slice] = smooth_array(chunk, img.affine, fwhm=fwhm, copy=False)
    return new_img_like(img, out, img.affine, copy_header=True)


def smooth_img(imgs: Any, fwhm: Any) -> Any:
    """Smooth images with a Gaussian filter of the given FWHM (millimetres).

    Non-finite values are replaced by 0 before filtering. 4D images are smoothed a chunk of
    volumes at a time. Surface images (nilearn's ``SurfaceImage``) are smoothed along their
    mesh by repeated neighbour averaging, as nilearn does (``fwhm`` must then be a scalar).

    Parameters
    ----------
    imgs : str, os.PathLike, nibabel image, surface image or iterable of these
        Image(s) to smooth.
    fwhm : float, sequence of 3 float, "fast" or None
        See :func:`smooth_array`.

    Returns
    -------
    nibabel.Nifti1Image, surface image or list of these
        The smoothed image, or a list when ``imgs`` is an iterable.

    Examples
    --------
    >>> data = np.zeros((1, 3, 3)); data[0, 1, 1] = 3.0
    >>> smooth_img(nib.Nifti1Image(data, np.eye(4)), fwhm=2).get_fdata()[0, 1].round(4)
    array([0.3738, 0.6671, 0.3738])
    """
    if is_surface_img(imgs):
        return smooth_surface(imgs, fwhm)
    if all_surface_imgs(imgs):
        return [smooth_surface(img, fwhm) for img in imgs]
    if isinstance(imgs, (str, os.PathLike, SpatialImage)) or not isinstance(imgs, Iterable):
        return _smooth_one(imgs, fwhm)
    return [_smooth_one(img, fwhm) for img in imgs]
