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
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from nibabel.spatialimages import SpatialImage

from bidsmask.image import _reader
from bidsmask.image._new_img import new_img_like
from bidsmask.image._reader import ImageNotFoundError
from bidsmask.image._surface import is_surface_img

logger = logging.getLogger(__name__)

__all__ = [
    "DimensionError",
    "check_niimg",
    "check_niimg_3d",
    "check_niimg_4d",
    "get_data",
    "img_data_dtype",
    "iter_check_niimg",
    "load_img",
    "new_img_like",
]

_DOC_URL = "https://nilearn.github.io/stable/manipulating_images/input_output.html"


class DimensionError(TypeError):
    """Raised when an image does not have the expected number of dimensions.

    Parameters
    ----------
    file_dimension : int
        Dimensionality of the image (the innermost one, for nested lists of images).
    required_dimension : int
        Dimensionality that was expected of that image.
    n_lists : int, default=0
        Levels of lists around the image: each adds one dimension to both numbers shown.
    """

    def __init__(self, file_dimension: int, required_dimension: int, n_lists: int = 0):
        self.file_dimension = file_dimension
        self.required_dimension = required_dimension
        self.n_lists = n_lists
        given = f"{file_dimension}D image"
        if n_lists:
            given = f"{'list of ' * n_lists}{file_dimension}D images ({file_dimension + n_lists}D)"
        super().__init__(
            "Input data has incompatible dimensionality: "
            f"Expected dimension is {required_dimension + n_lists}D and you provided a "
            f"{given}. See {_DOC_URL}."
        )

    def in_list(self) -> DimensionError:
        """Return the same error for a list of such images (one more level of nesting)."""
        return DimensionError(self.file_dimension, self.required_dimension, self.n_lists + 1)


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


def get_data(img: Any) -> np.ndarray:
    """Return the image's data array (scaled), naming the file if it cannot be read.

    Parameters
    ----------
    img : nibabel image, str, os.PathLike or list of these
        The image; a path, glob pattern or list is loaded with :func:`check_niimg` first. The
        data cache of an image read from a file is not filled (a 4D run does not stay in memory
        with the image); an image whose data are an in-memory array gets that array as its
        cache, as nilearn does (no copy).

    Returns
    -------
    numpy.ndarray
        The data. For in-memory images this is the image's own array (not a copy).

    Raises
    ------
    ValueError
        If the file is truncated or corrupt.
    """
    if not isinstance(img, SpatialImage):
        img = check_niimg(img)
    try:
        data = np.asanyarray(img.dataobj)
    except (OSError, EOFError, ValueError) as exc:
        raise ValueError(
            f"Could not read the data of {_describe(img)}: {exc}. "
            "The file may be truncated or corrupt; re-create or re-download it."
        ) from exc
    if isinstance(img.dataobj, np.ndarray) and hasattr(img, "_data_cache"):
        img._data_cache = data  # the same array: nothing more is held in memory
    return data


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
        raise _not_niimg(niimg)
    if img.affine is None or not np.all(np.isfinite(img.affine)):
        raise ValueError(
            f"The affine of {_describe(img)} is not finite: {img.affine!r}. "
            "Fix the image's sform/qform before using it."
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
            raise ImageNotFoundError(
                f"No files matching the entered niimg expression: '{path}'. Check the pattern. "
                "You may have left wildcards usage activated: pass wildcards=False to read a "
                "file whose name contains '*', '?' or '['."
            )
        return matches
    if not Path(path).exists():
        raise ImageNotFoundError(f"File not found: '{path}'. Check the image path.")
    return path


def _check_niimg_like(niimg: Any) -> None:
    """Raise ``TypeError`` unless ``niimg`` is a path, an image or a (nested) list of these."""
    if isinstance(niimg, (list, tuple)):
        for one in niimg:
            _check_niimg_like(one)
    elif not isinstance(niimg, (str, os.PathLike, SpatialImage)) and not (
        isinstance(niimg, Iterable) and not isinstance(niimg, np.ndarray)
    ):
        raise _not_niimg(niimg)


def _not_niimg(niimg: Any) -> TypeError:
    return TypeError(
        "Data given cannot be loaded because it is not compatible with nibabel format (the "
        "input should be a NiftiLike object or an iterable of NiftiLike object): "
        f"{type(niimg).__name__} {niimg!r:.80}. Pass a NIfTI file path or a nibabel image."
    )


def check_niimg(
    niimg: Any,
    ensure_ndim: int | None = None,
    atleast_4d: bool = False,
    dtype: Any = None,
    return_iterator: bool = False,
    wildcards: bool = True,
) -> Any:
    """Check that ``niimg`` is an image (3D or more) and load it lazily.

    Parameters
    ----------
    niimg : str, os.PathLike, nibabel image or iterable of these
        A path (``~`` expanded; with ``wildcards``, a glob pattern matching one or more files),
        an image, or a list of them, which is concatenated along a 4th dimension.
    ensure_ndim : int or None, default=None
        Dimensionality required; a 4D image with one volume is squeezed when 3 is required.
    atleast_4d : bool, default=False
        Turn a 3D image into a 4D image with one volume.
    dtype : numpy dtype, "auto" or None, default=None
        Cast the data to this dtype ("auto": int32 for signed integers, else float32).
    return_iterator : bool, default=False
        Return an iterator over the 3D volumes instead of a 4D image (a list of images is
        then checked one image at a time, as :func:`iter_check_niimg` does).
    wildcards : bool, default=True
        Expand glob patterns in paths.

    Returns
    -------
    nibabel.Nifti1Image or iterator of nibabel.Nifti1Image
        The image (the input itself when it needed no change), or its volumes.

    Raises
    ------
    DimensionError
        If the image does not have ``ensure_ndim`` dimensions (or is 3D with
        ``return_iterator`` and not ``atleast_4d``).
    ImageNotFoundError
        If a path does not exist (a ``FileNotFoundError`` and a ``ValueError``).
    ValueError
        If the file cannot be read or is truncated, the affine is not finite, or the image has
        fewer than 3 dimensions.
    TypeError
        If ``niimg`` is not an image, a path, or an iterable of these.
    """
    _check_niimg_like(niimg)
    if isinstance(niimg, (str, os.PathLike)):
        niimg = _expand_path(niimg, wildcards)
    if isinstance(niimg, Iterable) and not isinstance(niimg, (str, SpatialImage)):
        if return_iterator:
            return iter_check_niimg(niimg, ensure_ndim=ensure_ndim, dtype=dtype)
        niimgs = list(niimg)
        if not niimgs:
            raise TypeError("Cannot concatenate empty objects: the list of images is empty.")
        element_ndim = None if ensure_ndim is None else ensure_ndim - 1
        try:
            img = concat_niimgs(niimgs, dtype=dtype, ensure_ndim=element_ndim)
        except DimensionError as exc:
            raise exc.in_list() from exc
        if ensure_ndim is not None and len(img.shape) != ensure_ndim:
            raise DimensionError(len(img.shape), ensure_ndim)
        return img
    img = _load_one(niimg, dtype=dtype)
    if ensure_ndim == 3 and len(img.shape) == 4 and img.shape[3] == 1:
        img = new_img_like(img, get_data(img)[..., 0], img.affine, copy_header=True)
    if len(img.shape) == 3 and return_iterator and not atleast_4d:
        raise DimensionError(3, 4)
    if atleast_4d and len(img.shape) == 3:
        img = new_img_like(img, get_data(img)[..., np.newaxis], img.affine, copy_header=True)
    if ensure_ndim is not None and len(img.shape) != ensure_ndim:
        raise DimensionError(len(img.shape), ensure_ndim)
    if len(img.shape) < 3:
        raise ValueError(
            f"Computation expects 3D or 4D images, but {len(img.shape)} dimensions were given: "
            f"{_describe(img)}. Pass a 3D volume or a 4D time series."
        )
    if return_iterator:
        return _iter_volumes(img)
    return img


def _iter_volumes(img: SpatialImage) -> Iterator[SpatialImage]:
    """Yield the 3D volumes of a 4D image, reading it a chunk of volumes at a time."""
    dtype = img_data_dtype(img).newbyteorder("=")
    for _, chunk in _reader.iter_chunks(img, dtype=dtype):
        for index in range(chunk.shape[3]):
            yield new_img_like(img, chunk[..., index], img.affine, copy_header=True)


def iter_check_niimg(
    niimgs: Any,
    ensure_ndim: int | None = None,
    atleast_4d: bool = False,
    target_fov: Any = None,
    dtype: Any = None,
    memory: Any = None,
    memory_level: int = 0,
) -> Iterator[Any]:
    """Check and yield the images of a list one at a time (each loaded only when reached).

    Parameters
    ----------
    niimgs : iterable of images or paths, or a glob pattern
        The images; surface images are yielded unchanged.
    ensure_ndim : int or None, default=None
        Dimensionality required of the whole (each image has one less).
    atleast_4d : bool, default=False
        Turn 3D images into 4D images with one volume.
    target_fov : (affine, shape), "first" or None, default=None
        Resample the images to this field of view ("first": the first image's, with a
        warning for each image resampled); None: a different field of view raises.
    dtype : numpy dtype, "auto" or None, default=None
        Cast the data to this dtype.
    memory, memory_level : ignored
        Accepted for nilearn compatibility (no joblib caching here).

    Yields
    ------
    nibabel.Nifti1Image or surface image

    Raises
    ------
    ValueError
        An empty input, a pattern that matches no file, or a field of view that differs.
    """
    from bidsmask.image._resampling import resample_img  # _resampling imports this module

    if isinstance(niimgs, (str, os.PathLike)):
        matches = sorted(glob.glob(str(Path(niimgs).expanduser())))
        if not matches:
            raise ImageNotFoundError(
                f"No files matching path: {niimgs}. Check the path or the glob pattern."
            )
        niimgs = matches
    element_ndim = None if ensure_ndim is None else ensure_ndim - 1
    reference = None if target_fov in (None, "first") else target_fov
    index = -1
    for index, niimg in enumerate(niimgs):
        if is_surface_img(niimg):
            yield niimg
            continue
        try:
            img = check_niimg(niimg, ensure_ndim=element_ndim, atleast_4d=atleast_4d, dtype=dtype)
        except DimensionError as exc:
            raise exc.in_list() from exc
        if index == 0:
            element_ndim = len(img.shape)
            reference = reference or (img.affine, img.shape[:3])
        affine, shape = reference
        if tuple(img.shape[:3]) != tuple(shape) or not np.allclose(img.affine, affine):
            if target_fov is None:
                raise ValueError(
                    f"Field of view of image #{index} is different from reference FOV: shape "
                    f"{img.shape[:3]} vs {tuple(shape)}, affine\n{img.affine}\nvs\n{affine}. "
                    "Resample the images to a common grid first."
                )
            if target_fov == "first":
                warnings.warn(
                    f"Affine is different across subjects: image #{index} is resampled onto "
                    "the first image's grid.",
                    UserWarning,
                    stacklevel=2,
                )
            img = resample_img(img, target_affine=affine, target_shape=shape)
        yield img
    if index == -1:
        raise ValueError("Input niimgs list is empty: give at least one image.")


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


def check_niimg_4d(niimg: Any, return_iterator: bool = False, dtype: Any = None) -> Any:
    """Check that ``niimg`` is a 4D image (or a list of 3D images) and load it lazily.

    Parameters
    ----------
    niimg : str, os.PathLike, nibabel image or list of 3D images
        The image, its path, or 3D images to concatenate.
    return_iterator : bool, default=False
        Return an iterator over the 3D volumes instead (see :func:`check_niimg`).
    dtype : numpy dtype, "auto" or None, default=None
        Cast the data to this dtype.

    Returns
    -------
    nibabel.Nifti1Image or iterator of nibabel.Nifti1Image
        The 4D image, or its volumes.
    """
    return check_niimg(niimg, ensure_ndim=4, return_iterator=return_iterator, dtype=dtype)


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
    if ndim > 4:
        raise TypeError(
            f"Concatenated images must be 3D or 4D. You gave a list of {ndim}D images "
            f"(first: {_describe(imgs[0])})."
        )
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
