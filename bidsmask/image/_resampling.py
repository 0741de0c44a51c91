"""Resampling of 3D/4D images onto a new voxel grid given by an affine (no registration).

Same rules and numbers as nilearn 0.14's ``resample_img``: the target grid is inferred from a
3x3 affine (bounding box of the data), interpolation is a cubic spline ("continuous", with
scipy's spline prefilter), trilinear ("linear") or nearest neighbour, non-finite values are
extrapolated over two voxels before interpolation and put back afterwards, and the result is
clipped to the input range (0 included). A 4D image is read and resampled a chunk of volumes at a
time through :mod:`bidsmask.image._reader`, so the input is never held whole in memory.

The public names are re-exported by :mod:`bidsmask.image`.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any, Literal

import nibabel as nib
import numpy as np
from scipy.ndimage import affine_transform

from bidsmask.image import _reader
from bidsmask.image._extrapolate import extrapolate_out_mask
from bidsmask.image._niimg import check_niimg, get_data, img_data_dtype, new_img_like

logger = logging.getLogger(__name__)

__all__ = ["BoundingBoxError", "get_bounds", "resample_img", "resample_to_img"]

_ORDERS = {"continuous": 3, "linear": 1, "nearest": 0}


class BoundingBoxError(ValueError):
    """Raised when the target field of view contains none of the data."""


def get_bounds(shape: tuple[int, ...], affine: np.ndarray) -> list[tuple[float, float]]:
    """Return the world-space bounds of the centres of an array's corner voxels.

    Parameters
    ----------
    shape : tuple of 3 int
        Shape of the array.
    affine : numpy.ndarray of shape (4, 4)
        Voxel-to-world affine.

    Returns
    -------
    list of (float, float)
        Minimum and maximum coordinate along each world axis.

    Examples
    --------
    >>> get_bounds((3, 3, 3), np.diag([2.0, 2.0, 2.0, 1.0]))
    [(0.0, 4.0), (0.0, 4.0), (0.0, 4.0)]
    """
    corners = np.array(
        [
            [i, j, k, 1.0]
            for i in (0, shape[0] - 1)
            for j in (0, shape[1] - 1)
            for k in (0, shape[2] - 1)
        ]
    ).T
    box = (np.asarray(affine) @ corners)[:3]
    return [
        (float(lo), float(hi)) for lo, hi in zip(box.min(axis=-1), box.max(axis=-1), strict=True)
    ]


def _resample_volume(
    vol: np.ndarray,
    matrix: np.ndarray,
    offset: np.ndarray,
    target_shape: tuple[int, int, int],
    order: int,
    out: np.ndarray,
    fill_value: float,
) -> bool:
    """Resample one volume into ``out``; return whether it had non-finite values."""
    non_finite = ~np.isfinite(vol) if vol.dtype.kind == "f" else None
    has_non_finite = non_finite is not None and bool(non_finite.any())
    if has_non_finite:
        vol, _ = extrapolate_out_mask(vol, ~non_finite, iterations=2)
    affine_transform(
        vol,
        matrix,
        offset=offset,
        output_shape=target_shape,
        output=out,
        cval=fill_value,
        order=order,
    )
    if has_non_finite:
        moved = affine_transform(
            non_finite, matrix, offset=offset, output_shape=target_shape, order=0
        )
        out[moved] = np.nan
    return has_non_finite


def _resampled_dtype(dtype: np.dtype, interpolation: str) -> np.dtype:
    if interpolation == "continuous" and dtype.kind == "i":
        return np.dtype(np.float64 if dtype.itemsize == 8 else np.float32)
    return dtype.newbyteorder("=")


def _check_inputs(target_affine: Any, target_shape: Any, interpolation: str) -> None:
    if interpolation not in _ORDERS:
        raise ValueError(
            f"'interpolation' must be one of {sorted(_ORDERS)}. {interpolation!r} was provided."
        )
    if target_affine is not None and np.shape(target_affine) not in ((3, 3), (4, 4)):
        raise np.linalg.LinAlgError(  # a ValueError, and nilearn's type
            f"target_affine must be a 3x3 or 4x4 matrix, got shape {np.shape(target_affine)}."
        )
    if target_affine is not None and not np.all(np.isfinite(target_affine)):
        raise ValueError(f"target_affine must be finite, got {target_affine!r}.")
    if target_shape is None:
        return
    if len(target_shape) != 3:
        raise ValueError(
            "The shape specified should be the shape of the 3D grid, and thus of length 3. "
            f"{target_shape} was specified."
        )
    if target_affine is None:
        raise ValueError("If target_shape is specified, target_affine should be specified too.")
    if np.shape(target_affine) == (3, 3):
        raise ValueError(
            "Given target shape without anchor vector: "
            "'target_affine' shape should be (4, 4) and not (3, 3)."
        )


def _copy_img(img: nib.spatialimages.SpatialImage) -> nib.Nifti1Image:
    return new_img_like(img, np.array(get_data(img)), img.affine.copy(), copy_header=True)


def resample_img(
    img: Any,
    target_affine: np.ndarray | None = None,
    target_shape: tuple[int, int, int] | None = None,
    interpolation: Literal["continuous", "linear", "nearest"] = "continuous",
    copy: bool = True,
    order: Literal["F", "C"] = "F",
    clip: bool = True,
    fill_value: float = 0.0,
    force_resample: bool = True,
    copy_header: bool = True,
) -> nib.Nifti1Image:
    """Resample a 3D or 4D image onto the grid given by ``target_affine`` and ``target_shape``.

    Parameters
    ----------
    img : str, os.PathLike or nibabel image
        Image to resample.
    target_affine : numpy.ndarray of shape (4, 4) or (3, 3), or None, default=None
        Affine of the output grid. A 3x3 matrix gives the axes only: the offset and shape are
        chosen so that the grid is the bounding box of the data (with a margin of one voxel).
    target_shape : tuple of 3 int or None, default=None
        Shape of the output grid (needs a 4x4 ``target_affine``); ``None`` extends the grid from
        voxel (0, 0, 0) of ``target_affine`` until it contains all the data.
    interpolation : {"continuous", "linear", "nearest"}, default="continuous"
        Cubic spline, trilinear or nearest-neighbour interpolation. Signed integer data become
        float32 (int64: float64) with "continuous" and keep their dtype otherwise.
    copy : bool, default=True
        When no resampling is needed, return a copy instead of the input.
    order : {"F", "C"}, default="F"
        Memory layout of the output array.
    clip : bool, default=True
        Clip the output to [min(data, 0), max(data, 0)].
    fill_value : float, default=0.0
        Value of output voxels outside the input field of view.
    force_resample : bool, default=True
        Accepted for nilearn's signature. nilearn's False allows a padding shortcut for targets
        that differ by a whole-voxel translation; bidsmask always interpolates, which gives the
        same values there (interpolation at the voxel centres returns the data).
    copy_header : bool, default=True
        Copy the input header to the output image.

    Returns
    -------
    nibabel.Nifti1Image
        The resampled image.

    Raises
    ------
    BoundingBoxError
        If the target field of view contains none of the data.
    ValueError
        For invalid targets or interpolation.

    Examples
    --------
    >>> img = nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4))
    >>> resample_img(img, target_affine=np.eye(4) * 2).shape
    (3, 3, 3)
    """
    del force_resample  # same values either way (see above)
    _check_inputs(target_affine, target_shape, interpolation)
    img = check_niimg(img)
    if target_affine is None and target_shape is None:
        return _copy_img(img) if copy else img
    if len(img.shape) > 4:
        return _resample_nd(
            img, target_affine, target_shape, interpolation, order, clip, fill_value, copy_header
        )
    _warn_no_sform(img)
    target_affine = np.array(target_affine, dtype=float)
    affine = img.affine
    if target_shape is not None and (
        tuple(target_shape) == tuple(img.shape[:3]) and np.allclose(target_affine, affine)
    ):
        return _copy_img(img) if copy else img

    missing_offset = target_affine.shape == (3, 3)
    if missing_offset:
        full = np.eye(4)
        full[:3, :3] = target_affine
        target_affine = full
    (xmin, xmax), (ymin, ymax), (zmin, zmax) = get_bounds(
        img.shape[:3], np.linalg.inv(target_affine) @ affine
    )
    if missing_offset:
        target_affine[:3, 3] = target_affine[:3, :3] @ [xmin, ymin, zmin]
        xmax, ymax, zmax = xmax - xmin, ymax - ymin, zmax - zmin
    if target_shape is None:
        target_shape = (int(np.ceil(xmax)) + 1, int(np.ceil(ymax)) + 1, int(np.ceil(zmax)) + 1)
    if xmax < 0 or ymax < 0 or zmax < 0:
        raise BoundingBoxError(
            "The field of view given by the target affine does not contain any of the data: "
            f"target_affine=\n{target_affine}\nimage affine=\n{affine}."
        )
    target_shape = tuple(int(n) for n in np.asarray(target_shape).tolist())

    transform = (
        np.eye(4) if np.all(target_affine == affine) else np.linalg.inv(affine) @ target_affine
    )
    matrix, offset = transform[:3, :3], transform[:3, 3]
    if np.all(np.diag(np.diag(matrix)) == matrix):
        matrix = np.diag(matrix)
    data_dtype = img_data_dtype(img)
    out_dtype = _resampled_dtype(data_dtype, interpolation)
    if interpolation == "continuous" and data_dtype.kind == "i":
        logger.info("Casting data from %s to %s for spline interpolation.", data_dtype, out_dtype)
    extra = img.shape[3:]
    resampled = np.zeros(target_shape + extra, order=order, dtype=out_dtype)
    vmin, vmax = 0, 0
    any_non_finite = False
    read_dtype = data_dtype.newbyteorder("=")
    check_binary = interpolation != "nearest"
    for time_slice, chunk in _reader.iter_chunks(img, dtype=read_dtype):
        if check_binary:
            check_binary = False
            _warn_binary(chunk)
        if clip and chunk.size:
            vmin = min(vmin, np.nanmin(chunk).item())
            vmax = max(vmax, np.nanmax(chunk).item())
        for index in range(chunk.shape[3]):
            out = resampled[..., time_slice.start + index] if extra else resampled
            any_non_finite |= _resample_volume(
                chunk[..., index],
                matrix,
                offset,
                target_shape,
                _ORDERS[interpolation],
                out,
                fill_value,
            )
    if any_non_finite:
        warnings.warn(
            "NaNs or infinite values are present in the data passed to resample: they were "
            "extrapolated from their neighbours and set back to NaN after resampling.",
            RuntimeWarning,
            stacklevel=2,
        )
    if clip:
        resampled.clip(vmin, vmax, out=resampled)
    return new_img_like(img, resampled, target_affine, copy_header=copy_header)


def _warn_no_sform(img: Any) -> None:
    if hasattr(img, "get_sform") and not img.get_sform(coded=True)[1]:
        warnings.warn(
            f"The provided image has no sform in its header ({img.get_filename() or 'in memory'}"
            "): its qform or default affine is used. Please check the provided file. Results "
            "may not be as expected.",
            UserWarning,
            stacklevel=3,
        )


def _warn_binary(chunk: np.ndarray) -> None:
    """Warn when the first chunk is binary: continuous/linear interpolation of a mask."""
    values = chunk.ravel(order="K")  # a view of a contiguous chunk
    head = values[:4096]  # most non-binary data show it here: no full pass
    if values.size and np.all((head == 0) | (head == 1)) and np.all((values == 0) | (values == 1)):
        warnings.warn(
            "Resampling binary images with continuous or linear interpolation. This might lead "
            "to unexpected results. You might consider using nearest interpolation instead.",
            UserWarning,
            stacklevel=3,
        )


def _resample_nd(
    img: Any,
    target_affine: Any,
    target_shape: Any,
    interpolation: str,
    order: str,
    clip: bool,
    fill_value: float,
    copy_header: bool,
) -> Any:
    """resample_img for images with more than 4 dimensions: the extra axes are flattened."""
    extra = img.shape[3:]
    flat = new_img_like(img, np.reshape(get_data(img), (*img.shape[:3], -1), order="F"))
    out = resample_img(
        flat,
        target_affine=target_affine,
        target_shape=target_shape,
        interpolation=interpolation,
        order=order,
        clip=clip,
        fill_value=fill_value,
        copy_header=copy_header,
    )
    data = np.reshape(np.asarray(out.dataobj), (*out.shape[:3], *extra), order="F")
    return new_img_like(img, data, out.affine, copy_header=copy_header)


def resample_to_img(
    source_img: Any,
    target_img: Any,
    interpolation: Literal["continuous", "linear", "nearest"] = "continuous",
    copy: bool = True,
    order: Literal["F", "C"] = "F",
    clip: bool = False,
    fill_value: float = 0.0,
    force_resample: bool = True,
    copy_header: bool = True,
) -> nib.Nifti1Image:
    """Resample an image onto the grid (affine and 3D shape) of another image.

    Parameters
    ----------
    source_img : str, os.PathLike or nibabel image
        Image to resample (3D or 4D).
    target_img : str, os.PathLike or nibabel image
        Image whose affine and first three dimensions define the output grid.
    interpolation : {"continuous", "linear", "nearest"}, default="continuous"
        See :func:`resample_img`.
    copy : bool, default=True
        See :func:`resample_img`.
    order : {"F", "C"}, default="F"
        See :func:`resample_img`.
    clip : bool, default=False
        See :func:`resample_img` (note the different default, as in nilearn).
    fill_value : float, default=0.0
        See :func:`resample_img`.
    force_resample : bool, default=True
        See :func:`resample_img`.
    copy_header : bool, default=True
        See :func:`resample_img`.

    Returns
    -------
    nibabel.Nifti1Image
        The resampled image.
    """
    target = check_niimg(target_img)
    return resample_img(
        source_img,
        target_affine=target.affine,
        target_shape=target.shape[:3],
        interpolation=interpolation,
        copy=copy,
        order=order,
        clip=clip,
        fill_value=fill_value,
        force_resample=force_resample,
        copy_header=copy_header,
    )
