"""Loading and validating NIfTI images ("niimgs"): paths, lists of paths and in-memory images.

The public names are re-exported by :mod:`bidsmask.image`. Images stay lazy: a path is opened with
:func:`bidsmask.image._reader.open_img` and its data are read only when needed, through
:func:`get_data`, which names the file when it cannot be read (truncated or corrupt files).
"""

from __future__ import annotations

import glob
import logging
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from nibabel.spatialimages import SpatialImage

from bidsmask.image import _reader

logger = logging.getLogger(__name__)

__all__ = [
    "DimensionError",
    "check_niimg",
    "check_niimg_3d",
    "check_niimg_4d",
    "get_data",
    "img_data_dtype",
    "load_img",
    "new_img_like",
]

_DOC_URL = "https://nilearn.github.io/stable/manipulating_images/input_output.html"


class DimensionError(TypeError):
    """Raised when an image does not have the expected number of dimensions.

    Parameters
    ----------
    file_dimension : int
        Dimensionality of the image that was given.
    required_dimension : int
        Dimensionality that was expected.
    """

    def __init__(self, file_dimension: int, required_dimension: int):
        self.file_dimension = file_dimension
        self.required_dimension = required_dimension
        super().__init__(
            "Input data has incompatible dimensionality: "
            f"Expected dimension is {required_dimension}D and you provided a "
            f"{file_dimension}D image. See {_DOC_URL}."
        )


def _describe(img: SpatialImage) -> str:
    filename = img.get_filename() if hasattr(img, "get_filename") else None
    return f"'{filename}'" if filename else f"in-memory image of shape {img.shape}"


def img_data_dtype(img: SpatialImage) -> np.dtype:
    """Return the dtype that reading the image's data produces.

    Parameters
    ----------
    img : nibabel image
        The image.

    Returns
    -------
    numpy.dtype
        ``float64`` when the file has scaling factors, else the stored dtype.
    """
    dataobj = img.dataobj
    if nib.is_proxy(dataobj) and (dataobj.slope, dataobj.inter) != (1.0, 0.0):
        return np.dtype(np.float64)
    return np.dtype(dataobj.dtype if hasattr(dataobj, "dtype") else img.get_data_dtype())


def get_data(img: SpatialImage) -> np.ndarray:
    """Return the image's data array (scaled), naming the file if it cannot be read.

    Parameters
    ----------
    img : nibabel image
        The image; its data cache is not filled (the image is left unchanged).

    Returns
    -------
    numpy.ndarray
        The data. For in-memory images this is the image's own array (not a copy).

    Raises
    ------
    ValueError
        If the file is truncated or corrupt.
    """
    try:
        return np.asanyarray(img.dataobj)
    except (OSError, EOFError, ValueError) as exc:
        raise ValueError(
            f"Could not read the data of {_describe(img)}: {exc}. "
            "The file may be truncated or corrupt; re-create or re-download it."
        ) from exc


def _check_file_size(img: SpatialImage) -> None:
    """Raise if an uncompressed NIfTI file is shorter than its header says."""
    filename = img.get_filename()
    if not filename or not str(filename).endswith(".nii") or not nib.is_proxy(img.dataobj):
        return
    header = img.header
    expected = int(header.get_data_offset()) + int(
        np.prod(img.shape, dtype=np.int64) * header.get_data_dtype().itemsize
    )
    actual = os.path.getsize(filename)
    if actual < expected:
        raise ValueError(
            f"Image file '{filename}' is truncated: {actual} bytes on disk, {expected} expected "
            f"for shape {img.shape}. Re-create or re-download it."
        )


def _load_one(niimg: Any, dtype: Any = None) -> SpatialImage:
    if isinstance(niimg, (str, os.PathLike)):
        img = _reader.open_img(niimg)
    elif isinstance(niimg, SpatialImage):
        img = niimg
    else:
        raise TypeError(
            "Data given cannot be loaded because it is not compatible with nibabel format: "
            f"{type(niimg).__name__} {niimg!r:.80}. Pass a NIfTI file path or a nibabel image."
        )
    if img.affine is None or not np.all(np.isfinite(img.affine)):
        raise ValueError(
            f"The affine of {_describe(img)} is not finite: {img.affine!r}. "
            "Fix the image's sform/qform before using it."
        )
    if len(img.shape) not in (3, 4):
        raise ValueError(
            f"{_describe(img)} has shape {img.shape}; only 3D and 4D images are supported."
        )
    _check_file_size(img)
    if dtype is not None:
        data_dtype = img_data_dtype(img)
        target = _target_dtype(data_dtype, dtype)
        if target is not None:
            img = new_img_like(img, get_data(img).astype(target), img.affine, copy_header=True)
            img.header.set_data_dtype(target)
    return img


def _target_dtype(dtype: np.dtype, target: Any) -> np.dtype | None:
    if target == "auto":
        target = np.int32 if dtype.kind == "i" else np.float32
    target = np.dtype(target)
    return None if target == dtype else target


def _expand_path(path: str | os.PathLike, wildcards: bool) -> str | list[str]:
    path = str(Path(path).expanduser())
    if wildcards and glob.has_magic(path):
        matches = sorted(glob.glob(path))
        if not matches:
            raise FileNotFoundError(
                f"No files match the pattern '{path}'. Check the pattern or pass wildcards=False."
            )
        return matches
    if not Path(path).exists():
        raise FileNotFoundError(f"Image file not found: '{path}'. Check the path.")
    return path


def check_niimg(
    niimg: Any,
    ensure_ndim: int | None = None,
    atleast_4d: bool = False,
    dtype: Any = None,
    wildcards: bool = True,
) -> nib.Nifti1Image:
    """Check that ``niimg`` is a 3D or 4D image and load it lazily.

    Parameters
    ----------
    niimg : str, os.PathLike, nibabel image or iterable of these
        A path (``~`` expanded; with ``wildcards``, a glob pattern matching one or more files),
        an image, or a list of them, which is concatenated along a 4th dimension.
    ensure_ndim : {3, 4, None}, default=None
        Dimensionality required; a 4D image with one volume is squeezed when 3 is required.
    atleast_4d : bool, default=False
        Turn a 3D image into a 4D image with one volume.
    dtype : numpy dtype, "auto" or None, default=None
        Cast the data to this dtype ("auto": int32 for signed integers, else float32).
    wildcards : bool, default=True
        Expand glob patterns in paths.

    Returns
    -------
    nibabel.Nifti1Image
        The image (the input itself when it needed no change).

    Raises
    ------
    DimensionError
        If the image does not have ``ensure_ndim`` dimensions.
    FileNotFoundError
        If a path does not exist.
    ValueError
        If the file cannot be read or truncated, or the affine is not finite.
    TypeError
        If ``niimg`` is not an image, a path, or an iterable of these.
    """
    if isinstance(niimg, (str, os.PathLike)):
        niimg = _expand_path(niimg, wildcards)
    if isinstance(niimg, Iterable) and not isinstance(niimg, (str, SpatialImage)):
        niimgs = list(niimg)
        if not niimgs:
            raise TypeError("Cannot concatenate empty objects: the list of images is empty.")
        element_ndim = None if ensure_ndim is None else ensure_ndim - 1
        try:
            img = concat_niimgs(niimgs, dtype=dtype, ensure_ndim=element_ndim)
        except DimensionError as exc:
            raise DimensionError(exc.file_dimension + 1, exc.required_dimension + 1) from exc
        if ensure_ndim is not None and len(img.shape) != ensure_ndim:
            raise DimensionError(len(img.shape), ensure_ndim)
        return img
    img = _load_one(niimg, dtype=dtype)
    if ensure_ndim == 3 and len(img.shape) == 4 and img.shape[3] == 1:
        img = new_img_like(img, get_data(img)[..., 0], img.affine, copy_header=True)
    if atleast_4d and len(img.shape) == 3:
        img = new_img_like(img, get_data(img)[..., np.newaxis], img.affine, copy_header=True)
    if ensure_ndim is not None and len(img.shape) != ensure_ndim:
        raise DimensionError(len(img.shape), ensure_ndim)
    return img


def check_niimg_3d(niimg: Any, dtype: Any = None) -> nib.Nifti1Image:
    """Check that ``niimg`` is a 3D image and load it lazily.

    Parameters
    ----------
    niimg : str, os.PathLike or nibabel image
        The image or its path.
    dtype : numpy dtype, "auto" or None, default=None
        Cast the data to this dtype.

    Returns
    -------
    nibabel.Nifti1Image
        The 3D image.
    """
    return check_niimg(niimg, ensure_ndim=3, dtype=dtype)


def check_niimg_4d(niimg: Any, dtype: Any = None) -> nib.Nifti1Image:
    """Check that ``niimg`` is a 4D image (or a list of 3D images) and load it lazily.

    Parameters
    ----------
    niimg : str, os.PathLike, nibabel image or list of 3D images
        The image, its path, or 3D images to concatenate.
    dtype : numpy dtype, "auto" or None, default=None
        Cast the data to this dtype.

    Returns
    -------
    nibabel.Nifti1Image
        The 4D image.
    """
    return check_niimg(niimg, ensure_ndim=4, dtype=dtype)


def load_img(img: Any, wildcards: bool = True, dtype: Any = None) -> nib.Nifti1Image:
    """Load a 3D or 4D image from a path, a list of paths or an image.

    Parameters
    ----------
    img : str, os.PathLike, nibabel image or iterable of these
        See :func:`check_niimg`.
    wildcards : bool, default=True
        Expand glob patterns in paths.
    dtype : numpy dtype, "auto" or None, default=None
        Cast the data to this dtype.

    Returns
    -------
    nibabel.Nifti1Image
        The image, lazily loaded.
    """
    return check_niimg(img, wildcards=wildcards, dtype=dtype)


def concat_niimgs(
    niimgs: list[Any], dtype: Any = np.float32, ensure_ndim: int | None = None
) -> nib.Nifti1Image:
    """Concatenate 3D or 4D images on the same grid along the 4th dimension.

    Parameters
    ----------
    niimgs : list
        Images or paths, all 3D or all 4D, with the same shape and affine.
    dtype : numpy dtype or None, default=numpy.float32
        Dtype of the result; ``None`` keeps the first image's dtype.
    ensure_ndim : {3, 4, None}, default=None
        Required dimensionality of each image (default: that of the first image).

    Returns
    -------
    nibabel.Nifti1Image
        The 4D image.
    """
    if not niimgs:
        raise TypeError("Cannot concatenate empty objects: the list of images is empty.")
    imgs = [check_niimg(niimgs[0], ensure_ndim=ensure_ndim)]
    ndim = len(imgs[0].shape)
    imgs += [check_niimg(one, ensure_ndim=ndim) for one in niimgs[1:]]
    ref_shape, ref_affine = imgs[0].shape[:3], imgs[0].affine
    for index, img in enumerate(imgs[1:], start=1):
        if img.shape[:3] != ref_shape or not np.allclose(img.affine, ref_affine):
            raise ValueError(
                f"Field of view of image #{index} ({_describe(img)}) differs from image #0: "
                f"shape {img.shape[:3]} vs {ref_shape}, affine\n{img.affine}\nvs\n{ref_affine}. "
                "Resample the images to a common grid first."
            )
    lengths = [img.shape[3] if ndim == 4 else 1 for img in imgs]
    out_dtype = img_data_dtype(imgs[0]) if dtype is None else np.dtype(dtype)
    data = np.empty((*ref_shape, sum(lengths)), dtype=out_dtype, order="F")
    start = 0
    for img, length in zip(imgs, lengths, strict=True):
        data[..., start : start + length] = get_data(img).reshape((*ref_shape, length))
        start += length
    return new_img_like(imgs[0], data, ref_affine, copy_header=True)


def _downcast_int64(data: np.ndarray) -> np.ndarray:
    """Store 64-bit integers as int32 when they fit (with nilearn's warnings either way)."""
    if data.dtype not in (np.int64, np.uint64) or data.size == 0:
        return data
    info = np.iinfo(np.int32)
    if info.min <= data.min() and data.max() <= info.max:
        warnings.warn(
            "Data array used to create a new image contains 64-bit ints; many tools (FSL, SPM) "
            "cannot read int64 NIfTI images, so the data have been converted to int32.",
            UserWarning,
            stacklevel=3,
        )
        return data.astype(np.int32)
    warnings.warn(
        "Data array used to create a new image contains 64-bit ints, and some values too large "
        "to store in 32-bit ints: the image keeps int64, which some tools cannot read.",
        UserWarning,
        stacklevel=3,
    )
    return data


def _copied_header(header, data: np.ndarray):
    header = header.copy()
    try:
        keys = set(header.keys())
    except (AttributeError, TypeError):  # a plain SpatialHeader has no fields
        return header
    for key in ("scl_slope", "scl_inter", "glmax"):
        if key in keys:
            header[key] = 0
    if "cal_max" in keys:
        header["cal_max"] = np.max(data) if data.size else 0.0
        header["cal_min"] = np.min(data) if data.size else 0.0
    header.set_data_dtype(data.dtype)
    return header


def new_img_like(
    ref_niimg: Any,
    data: np.ndarray,
    affine: np.ndarray | None = None,
    copy_header: bool = True,
) -> nib.Nifti1Image:
    """Create an image of the same class as a reference image.

    Parameters
    ----------
    ref_niimg : str, os.PathLike, nibabel image or list of these
        Reference image (the first one of a list); a path is loaded lazily.
    data : numpy.ndarray
        Data of the new image; booleans become uint8 and 64-bit integers become int32 when they
        fit (with a warning; values beyond int32 keep int64, with a warning).
    affine : numpy.ndarray of shape (4, 4) or None, default=None
        Affine of the new image; ``None`` uses the reference's.
    copy_header : bool, default=True
        Copy the reference header (scaling and calibration fields reset). Unlike nilearn, the
        copied header's data type is set to the data's, so that saving the image does not
        quantise, e.g., smoothed float data into the reference's int16.

    Returns
    -------
    nibabel.Nifti1Image
        The new image (a ``Nifti1Pair`` reference gives a ``Nifti1Image``).

    Examples
    --------
    >>> import numpy as np, nibabel as nib
    >>> ref = nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.diag([3, 3, 3, 1]))
    >>> new_img_like(ref, np.ones((2, 2, 2), bool)).get_data_dtype()
    dtype('uint8')
    """
    if isinstance(ref_niimg, (str, os.PathLike)):
        ref_niimg = _reader.open_img(ref_niimg)
    elif not isinstance(ref_niimg, SpatialImage) and isinstance(ref_niimg, Iterable):
        return new_img_like(next(iter(ref_niimg)), data, affine, copy_header=copy_header)
    if not isinstance(ref_niimg, SpatialImage):
        raise TypeError(
            f"The reference image should be a niimg; {type(ref_niimg).__name__} was passed."
        )
    if affine is None:
        affine = ref_niimg.affine
    data = np.asanyarray(data)
    if data.dtype == bool:
        data = data.astype(np.uint8)
    data = _downcast_int64(data)
    header = None
    if copy_header and ref_niimg.header is not None:
        header = _copied_header(ref_niimg.header, data)
    klass = ref_niimg.__class__
    if klass is nib.Nifti1Pair:
        klass = nib.Nifti1Image
    return klass(data, affine, header=header)
