"""The maskers' inputs: images opened and checked, masks loaded, grids compared, output types.

Shared by every Nifti masker (:mod:`bidsmask.maskers._base` and the masker classes); errors use
nilearn's words where nilearn's tests look for them.
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from typing import Any

import nibabel as nib
import numpy as np
from nibabel.spatialimages import SpatialImage

from bidsmask import image
from bidsmask.image import _reader

logger = logging.getLogger(__name__)


def same_grid(shape_a, affine_a, shape_b, affine_b) -> bool:
    """Return True if two images share the same 3D shape and affine."""
    return tuple(shape_a[:3]) == tuple(shape_b[:3]) and np.allclose(
        np.asarray(affine_a), np.asarray(affine_b)
    )


def check_same_grid(images: dict[str, SpatialImage], at_transform: bool = False) -> None:
    """Raise a ValueError naming every image whose grid differs from the first one's.

    At ``fit`` the message starts as nilearn's ("Following field of view errors were
    detected"); at ``transform`` (``at_transform``) with nilearn's "Images have incompatible
    shapes." or "Images have different affine matrices.".
    """
    names = list(images)
    first = images[names[0]]
    mismatched = [
        n
        for n in names[1:]
        if not same_grid(first.shape, first.affine, images[n].shape, images[n].affine)
    ]
    if mismatched:
        details = "; ".join(
            f"{n}: shape {tuple(images[n].shape[:3])}" for n in [names[0], *mismatched]
        )
        first_shape = tuple(first.shape[:3])
        if not at_transform:
            lead = "Following field of view errors were detected"
        elif any(tuple(images[n].shape[:3]) != first_shape for n in mismatched):
            lead = "Images have incompatible shapes."
        else:
            lead = "Images have different affine matrices."
        raise ValueError(
            f"{lead}: {details} (or their affines differ). Resample the images to one grid, "
            "or set resampling_target."
        )


def in_memory(img: SpatialImage, data: np.ndarray | None = None) -> nib.Nifti1Image:
    """Return a NIfTI image holding its data in memory (picklable, no open file)."""
    if data is None:
        data = np.asanyarray(img.dataobj)
    out = nib.Nifti1Image(np.asarray(data), img.affine)
    image.get_data(out)  # its array is its data cache: reading it later changes nothing
    return out


def _not_images(imgs: Any) -> TypeError:
    return TypeError(
        f"'imgs' must be a path, a nibabel image or a list of 3D images; got "
        f"{type(imgs).__name__}. Load the data with nibabel.load() first."
    )


def _check_not_empty(img: SpatialImage, source: Any) -> None:
    if 0 in img.shape:
        raise ValueError(
            f"The image is empty: {source!r:.80} has shape {tuple(img.shape)}. Pass an image "
            "with voxels and volumes."
        )


def check_fit_imgs(imgs: Any) -> None:
    """Check the images given to ``fit`` without reading their data (nilearn's errors).

    Raises a TypeError for something that is not a path, an image or a list of them, and
    nilearn's ValueError "The image is empty" for an image without voxels or volumes.
    """
    items = imgs if isinstance(imgs, (list, tuple)) else [imgs]
    for item in items:
        if isinstance(item, (list, tuple)):
            check_fit_imgs(item)
        elif isinstance(item, SpatialImage) or (
            isinstance(item, (str, os.PathLike)) and os.path.exists(item)
        ):
            _check_not_empty(_reader.open_img(item), item)
        elif not isinstance(item, (str, os.PathLike)):  # a path pattern is checked when read
            raise _not_images(item)


def open_imgs(imgs: Any) -> SpatialImage:
    """Open the images given to ``fit``/``transform`` without reading a 4D file.

    A path or a nibabel image is opened lazily; a list or tuple of 3D images (paths or
    images) is concatenated into one in-memory 4D image, as nilearn does (a list of 4D images
    raises nilearn's ``DimensionError``: single-image maskers take one run).
    """
    if isinstance(imgs, (list, tuple)):
        if len(imgs) == 0:
            raise ValueError("'imgs' is an empty list. Pass at least one image.")
        return image.check_niimg(imgs, atleast_4d=True, ensure_ndim=4)
    if isinstance(imgs, (str, os.PathLike, SpatialImage)):
        img = _reader.open_img(imgs)
        _check_not_empty(img, imgs)
        if len(img.shape) not in (3, 4):
            raise ValueError(
                f"Expected a 3D or 4D image, got shape {img.shape} for {imgs!r:.80}. "
                "Pass a single volume, a 4D run, or a list of 3D volumes."
            )
        return img
    raise _not_images(imgs)


def load_mask(mask_img: Any) -> nib.Nifti1Image:
    """Load a mask as a 3D uint8 image (a 4D mask is the intersection of its volumes).

    Non-finite values count as 0, with nilearn's warning; an empty mask raises nilearn's
    "The mask is invalid as it is empty" ValueError.
    """
    from bidsmask.masking import load_mask_img

    tmp = image.check_niimg(mask_img, atleast_4d=True)
    data = np.asarray(tmp.dataobj)
    finite = np.isfinite(data)
    if not finite.all():
        warnings.warn(
            "Non-finite values detected. These values will be replaced with zeros.",
            UserWarning,
            stacklevel=3,
        )
        data = np.where(finite, data, 0)
    data = data.astype(bool).all(axis=3)
    if not data.any():
        raise ValueError(
            "The mask is invalid as it is empty: it masks all data. Check 'mask_img' "
            f"({mask_img if isinstance(mask_img, (str, os.PathLike)) else 'in memory'})."
        )
    mask = nib.Nifti1Image(data.astype(np.uint8), tmp.affine)
    load_mask_img(mask)  # validates: binary
    return mask


def mask_data(mask: nib.Nifti1Image | None) -> np.ndarray | None:
    """Boolean data of a mask image (None stays None)."""
    return None if mask is None else np.asarray(mask.dataobj).astype(bool)


def resample_nearest(img: nib.Nifti1Image, shape, affine) -> nib.Nifti1Image:
    """Nearest-neighbour resampling to a grid, as an in-memory image."""
    out = image.resample_img(
        img,
        target_affine=np.asarray(affine),
        target_shape=tuple(shape[:3]),
        interpolation="nearest",
    )
    return in_memory(out)


def output_dtype(source: np.dtype, requested: Any) -> np.dtype | None:
    """Type of the output given the masker's ``dtype`` (nilearn's ``get_target_dtype``)."""
    if requested is None:
        return None
    if isinstance(requested, str) and requested == "auto":
        return np.dtype(np.int32 if source.kind == "i" else np.float32)
    return np.dtype(requested)


def images_as_x(method):
    """Let ``method`` take its images as ``X=`` too (scikit-learn's name for them).

    nilearn's maskers get this from scikit-learn's ``set_output`` wrapper, whose first
    argument is named ``X``; ``masker.fit_transform(X=img)`` works there and here.
    """

    @functools.wraps(method)
    def accept_x(self, *args, **kwargs):
        if "X" in kwargs:
            args = (kwargs.pop("X"), *args)
        return method(self, *args, **kwargs)

    return accept_x
