"""``new_img_like``: a new image of a reference image's class (volume or surface) with new data.

Re-exported by :mod:`bidsmask.image` (and importable from :mod:`bidsmask.image._niimg`).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterable
from typing import Any

import nibabel as nib
import numpy as np
from nibabel.freesurfer.mghformat import MGHError
from nibabel.spatialimages import HeaderDataError, SpatialImage

from bidsmask.image import _reader
from bidsmask.image._surface import is_surface_img, new_surface_like

logger = logging.getLogger(__name__)

__all__ = ["new_img_like"]


def _downcast_int64(data: np.ndarray) -> np.ndarray:
    """Store 64-bit integers as int32 when they fit (with nilearn's warnings either way)."""
    if data.dtype not in (np.int64, np.uint64) or data.size == 0:
        return data
    info = np.iinfo(np.int32)
    if info.min <= data.min() and data.max() <= info.max:
        warnings.warn(
            "Data array used to create a new image contains 64-bit ints; many tools (FSL, SPM) "
            "cannot read int64 NIfTI images, so the data has been converted to int32.",
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
    try:
        header.set_data_dtype(data.dtype)
    except (HeaderDataError, MGHError):  # e.g. float64 in MGH: keep the reference's type
        logger.info("%s cannot store %s data; the header keeps its type.", type(header), data.dtype)
    return header


def new_img_like(
    ref_niimg: Any,
    data: np.ndarray,
    affine: np.ndarray | None = None,
    copy_header: bool = True,
) -> Any:
    """Create an image of the same class as a reference image.

    Parameters
    ----------
    ref_niimg : str, os.PathLike, nibabel image, surface image or list of these
        Reference image (the first one of a list); a path is loaded lazily. With a surface
        image (nilearn's ``SurfaceImage``), the result is a surface image of its class on its
        mesh (``affine`` and ``copy_header`` are ignored).
    data : numpy.ndarray, or for a surface reference a dict hemisphere -> array
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
    if is_surface_img(ref_niimg):
        return new_surface_like(ref_niimg, data)
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
