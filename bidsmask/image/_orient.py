"""Voxel-axis order and coordinate transforms (nilearn's ``reorder_img``, ``coord_transform``)."""

from __future__ import annotations

from typing import Any, Literal

import nibabel as nib
import numpy as np

from bidsmask.image._niimg import check_niimg, get_data, new_img_like
from bidsmask.image._resampling import resample_img


def coord_transform(x: Any, y: Any, z: Any, affine: np.ndarray) -> tuple:
    """Apply an affine to coordinates given as three scalars or three arrays of one shape.

    Parameters
    ----------
    x, y, z : float or array-like
        Coordinates (voxel indices to world coordinates with an image's affine, or back with
        its inverse).
    affine : numpy.ndarray of shape (4, 4)
        The transform.

    Returns
    -------
    tuple of 3 floats or 3 arrays
        Transformed coordinates, in the input's shape.

    Examples
    --------
    >>> coord_transform(1, 2, 3, np.diag([2.0, 2.0, 2.0, 1.0]))
    (2.0, 4.0, 6.0)
    """
    scalar = not hasattr(x, "__iter__")
    shape = np.shape(x)
    points = np.stack(
        [np.ravel(np.asarray(c, dtype=float)) for c in (x, y, z)] + [np.ones(np.size(x))]
    )
    out = np.asarray(affine, dtype=float) @ points
    if scalar:
        return tuple(float(v) for v in out[:3, 0])
    return tuple(np.reshape(out[i], shape) for i in range(3))


def reorder_img(
    img: Any,
    resample: Literal["continuous", "linear", "nearest"] | None = None,
    copy_header: bool = True,
) -> nib.Nifti1Image:
    """Return the image with voxel axes in x, y, z order and a positive diagonal affine.

    Axes are permuted and flipped (no interpolation). An affine with rotations needs
    ``resample``: the image is then resampled onto the diagonal affine of its voxel sizes.

    Parameters
    ----------
    img : str, os.PathLike or nibabel image
        3D or 4D image.
    resample : {"continuous", "linear", "nearest"} or None, default=None
        Interpolation for affines with rotations (None: they raise).
    copy_header : bool, default=True
        Copy ``img``'s header.

    Returns
    -------
    nibabel.Nifti1Image

    Raises
    ------
    ValueError
        The affine contains rotations and ``resample`` is None.

    Examples
    --------
    >>> affine = np.array([[0, 2.0, 0, 0], [-2.0, 0, 0, 10], [0, 0, 2.0, 0], [0, 0, 0, 1]])
    >>> reorder_img(nib.Nifti1Image(np.zeros((6, 5, 4)), affine)).affine.diagonal().tolist()
    [2.0, 2.0, 2.0, 1.0]
    """
    img = check_niimg(img)
    linear = img.affine[:3, :3]
    if not np.all((np.abs(linear) > 1e-3).sum(axis=0) == 1):
        if resample is None:
            raise ValueError("Cannot reorder the axes: the image affine contains rotations")
        q, r = np.linalg.qr(linear)
        target = np.diag(np.abs(np.diag(r))[np.abs(q).argmax(axis=1)])
        return resample_img(
            img, target_affine=target, interpolation=resample, copy_header=copy_header
        )
    order = np.argsort(np.abs(linear).argmax(axis=0))  # voxel axis for world x, y, z
    data = np.asarray(get_data(img))
    data = np.transpose(data, (*order, *range(3, data.ndim)))
    linear = linear[:, order]
    origin = img.affine[:3, 3].copy()
    for axis in range(3):
        if linear[axis, axis] < 0:
            origin += linear[:, axis] * (data.shape[axis] - 1)
            linear[:, axis] = -linear[:, axis]
            data = np.flip(data, axis=axis)
    affine = np.eye(4)
    affine[:3, :3], affine[:3, 3] = linear, origin
    return new_img_like(img, np.ascontiguousarray(data), affine, copy_header=copy_header)
