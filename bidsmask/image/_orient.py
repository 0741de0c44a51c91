"""Voxel-axis order, coordinate transforms and bounds.

nilearn's ``reorder_img``, ``coord_transform``, ``from_matrix_vector`` and ``get_mask_bounds``.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import nibabel as nib
import numpy as np
from scipy import ndimage

from bidsmask.image._niimg import check_niimg, check_niimg_3d, get_data, new_img_like
from bidsmask.image._resampling import get_bounds, resample_img

_INTERPOLATIONS = ("continuous", "linear", "nearest")


def from_matrix_vector(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Combine a linear part and a translation into a homogeneous affine.

    Parameters
    ----------
    matrix : numpy.ndarray of shape (N, M)
        The linear part.
    vector : numpy.ndarray of shape (N,)
        The translation.

    Returns
    -------
    numpy.ndarray of shape (N + 1, M + 1)
        ``[[matrix, vector], [0, ..., 0, 1]]``.

    Examples
    --------
    >>> from_matrix_vector(np.eye(3) * 2, np.array([1.0, 2.0, 3.0]))[:, 3].tolist()
    [1.0, 2.0, 3.0, 1.0]
    """
    matrix = np.asarray(matrix)
    n_out, n_in = matrix.shape
    affine = np.zeros((n_out + 1, n_in + 1), dtype=np.result_type(matrix, vector, float))
    affine[:n_out, :n_in] = matrix
    affine[:n_out, n_in] = vector
    affine[n_out, n_in] = 1
    return affine


def get_mask_bounds(img: Any) -> tuple[float, float, float, float, float, float]:
    """Return the world-space bounds of the non-zero voxels of a 3D image.

    The bounds of the grid are scaled by the box of the non-zero voxels (its first
    connected object), as nilearn does; the affine should be diagonal (see :func:`reorder_img`).

    Parameters
    ----------
    img : str, os.PathLike or nibabel image
        3D mask; zeros are background.

    Returns
    -------
    tuple of 6 float
        ``xmin, xmax, ymin, ymax, zmin, zmax`` (the whole grid's bounds, with a warning, for an
        empty mask).
    """
    img = check_niimg_3d(img)
    mask = np.asarray(get_data(img)).astype(bool)
    bounds = [list(pair) for pair in get_bounds(mask.shape, img.affine)]
    objects = ndimage.find_objects(mask.astype(np.int8))
    if not objects:
        warnings.warn(
            "empty mask: the bounds are those of the whole grid.", UserWarning, stacklevel=2
        )
    else:
        for axis, (cut, width) in enumerate(zip(objects[0], mask.shape, strict=True)):
            low, high = bounds[axis]
            bounds[axis] = [
                low + cut.start * (high - low) / width,
                low + cut.stop * (high - low) / width,
            ]
    return tuple(float(value) for pair in bounds for value in pair)


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
        3D, 4D or higher-dimensional image (axes beyond the third are kept).
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
        The affine contains rotations and ``resample`` is None, or ``resample`` is unknown.

    Examples
    --------
    >>> affine = np.array([[0, 2.0, 0, 0], [-2.0, 0, 0, 10], [0, 0, 2.0, 0], [0, 0, 0, 1]])
    >>> reorder_img(nib.Nifti1Image(np.zeros((6, 5, 4)), affine)).affine.diagonal().tolist()
    [2.0, 2.0, 2.0, 1.0]
    """
    if resample is not None and resample not in _INTERPOLATIONS:
        raise ValueError(
            f"'interpolation' must be one of {list(_INTERPOLATIONS)}; resample={resample!r} was "
            "provided."
        )
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
