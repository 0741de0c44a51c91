"""Voxel-wise image operations with nilearn 0.14's names and behaviour.

``threshold_img``, ``binarize_img``, ``math_img``, ``crop_img``, ``copy_img``,
``largest_connected_component_img``, ``swap_img_hemispheres`` and ``check_same_fov``. They work
on whole (in-memory) arrays, as nilearn's do: they are meant for statistical maps, masks and
atlases, not for streaming BOLD series.
"""

from __future__ import annotations

import itertools
import numbers
import os
import warnings
from typing import Any

import nibabel as nib
import numpy as np
from nibabel.spatialimages import SpatialImage
from scipy import ndimage

from bidsmask.image._niimg import check_niimg, check_niimg_3d, get_data, new_img_like
from bidsmask.image._orient import reorder_img
from bidsmask.image._resampling import resample_img
from bidsmask.image._surface import (
    check_compatible_mask,
    check_same_mesh,
    is_surface_img,
    load_surface_mask,
    map_parts,
    new_surface_like,
    remove_small_surface_clusters,
    surface_data,
)

_FACES = ndimage.generate_binary_structure(3, 1)  # 6-connectivity


def check_same_fov(*args: Any, raise_error: bool = False, **kwargs: Any) -> bool:
    """Return True if all images have the same 3D shape and affine.

    Parameters
    ----------
    *args, **kwargs : nibabel images
        Images to compare (keyword names are used in the error message).
    raise_error : bool, default=False
        Raise a ValueError listing every mismatch instead of returning False.

    Returns
    -------
    bool

    Examples
    --------
    >>> a = nib.Nifti1Image(np.zeros((2, 2, 2)), np.eye(4))
    >>> check_same_fov(a, nib.Nifti1Image(np.zeros((2, 2, 3)), np.eye(4)))
    False
    """
    named = {f"img_#{i}": img for i, img in enumerate(args)} | kwargs
    errors = []
    for first, second in itertools.combinations(named, 2):
        a, b = named[first], named[second]
        if a.shape[:3] != b.shape[:3]:
            errors.append((first, second, "shape", a.shape[:3], b.shape[:3]))
        if not np.allclose(a.affine, b.affine):
            errors.append((first, second, "affine", a.affine, b.affine))
    if errors and raise_error:
        raise ValueError(
            "Following field of view errors were detected:\n"
            + "\n".join(f"- {a} and {b} do not have the same {what}" for a, b, what, *_ in errors)
        )
    return not errors


def _data(img: SpatialImage, copy: bool = True) -> np.ndarray:
    data = get_data(img)
    data = np.array(data) if copy else np.asarray(data)
    if data.dtype.kind == "f":
        data[~np.isfinite(data)] = 0
    return data


def _cut_off(threshold, values: np.ndarray, two_sided: bool) -> float:
    """Return the cut-off nilearn's ``check_threshold`` gives (percentiles of ``values``)."""
    percentile = isinstance(threshold, str)
    if percentile:
        message = (
            'If "threshold" is given as string it should be a number followed by the percent '
            f'sign, e.g. "25.3%"; got {threshold!r}.'
        )
        if not threshold.endswith("%"):
            raise ValueError(message)
        try:
            threshold = float(threshold[:-1])
        except ValueError as exc:
            raise ValueError(message) from exc
    elif not isinstance(threshold, numbers.Real) or isinstance(threshold, bool):
        raise TypeError(
            "threshold should be either a number or a string finishing with a percent sign: "
            f"'threshold' must be of type number or str; got {type(threshold).__name__}."
        )
    threshold = float(threshold)
    if threshold < 0:
        if two_sided:
            raise ValueError('"threshold" should not be a negative value when two_sided=True.')
        if percentile:
            raise ValueError('"threshold" should not be a negative percentile value.')
        lowest = values[values <= 0].min(initial=0.0)
        if threshold < lowest:
            warnings.warn(
                f"The given float value must not be less than {lowest}. But, you have given "
                f"threshold={threshold}.",
                UserWarning,
                stacklevel=3,
            )
        return threshold
    values = np.abs(values) if two_sided else values[values >= 0]
    if percentile:
        return float(np.percentile(values, threshold)) + 1e-5
    highest = values.max(initial=0.0)
    if threshold > highest:
        warnings.warn(
            f"The given float value must not exceed {highest}. But, you have given "
            f"threshold={threshold}.",
            UserWarning,
            stacklevel=3,
        )
    return threshold


def _remove_small_clusters(volume: np.ndarray, min_size: int) -> None:
    """Zero the face-connected clusters of each sign with fewer than ``min_size`` voxels."""
    for part in (volume > 0, volume < 0):
        labels, n = ndimage.label(part, _FACES)
        if n == 0:
            continue
        sizes = np.bincount(labels.ravel())
        small = sizes < min_size
        small[0] = False
        volume[small[labels]] = 0


def _apply_cut(data: np.ndarray, cut: float, two_sided: bool) -> None:
    """Zero, in place, the values below the cut-off (in absolute value with ``two_sided``)."""
    if two_sided:
        data[np.abs(data) < cut] = 0
    elif cut >= 0:
        data[data < cut] = 0
    else:
        data[data > cut] = 0


def _threshold_surface(
    img: Any, threshold: Any, cluster_threshold: int, two_sided: bool, mask_img: Any, copy: bool
) -> Any:
    """threshold_img for a surface image: one cut-off over all hemispheres."""
    parts = {h: np.array(p) if copy else np.asarray(p) for h, p in img.data.parts.items()}
    for part in parts.values():
        if part.dtype.kind == "f":
            part[~np.isfinite(part)] = 0
    values = np.concatenate(list(parts.values()))
    if mask_img is not None:
        check_same_mesh(img, mask_img)
        mask = load_surface_mask(mask_img)
        values = values[surface_data(mask)]
        for hemi, part in parts.items():
            part[~mask.data.parts[hemi]] = 0
    cut = _cut_off(threshold, values, two_sided)
    for part in parts.values():
        _apply_cut(part, cut, two_sided)
    result = new_surface_like(img, parts)
    if cluster_threshold > 0:
        remove_small_surface_clusters(result, cluster_threshold)
    return result


def threshold_img(
    img: Any,
    threshold: float | str,
    cluster_threshold: int = 0,
    two_sided: bool = True,
    mask_img: Any = None,
    copy: bool = True,
    copy_header: bool = True,
) -> Any:
    """Set to 0 the voxels below a threshold (and, optionally, in small clusters).

    Same parameters and results as ``nilearn.image.threshold_img`` 0.14, for volumes and for
    surface images (nilearn's ``SurfaceImage``: one cut-off over both hemispheres; clusters
    are edge-connected non-zero vertices of the mesh, of either sign).

    Parameters
    ----------
    img : str, os.PathLike, nibabel image or surface image
        3D or 4D image, or a 1D/2D surface image; non-finite values become 0.
    threshold : float or str
        A value, or a percentile of the (absolute, with ``two_sided``) values such as ``"90%"``.
        With ``two_sided=False`` a negative threshold keeps the values below it.
    cluster_threshold : int, default=0
        Remove face-connected clusters (of each sign, per volume) smaller than this.
    two_sided : bool, default=True
        Keep values whose absolute value reaches the threshold.
    mask_img : image or None, default=None
        Voxels outside it (resampled nearest to ``img`` if needed) are 0 and do not count for
        percentiles. A surface mask (1D, same mesh) for a surface image.
    copy : bool, default=True
        Work on a copy of the data.
    copy_header : bool, default=True
        Copy ``img``'s header to the output.

    Returns
    -------
    nibabel.Nifti1Image or surface image

    Raises
    ------
    TypeError
        ``img`` is not an image, the mask is a surface for a volume (or the reverse), or
        ``threshold`` is neither a number nor a percentile string.
    ValueError
        A negative threshold with ``two_sided``, or a malformed percentile.

    Examples
    --------
    >>> img = nib.Nifti1Image(np.array([[[0.0, 0.2, 0.8], [1.5, 3.0, -2.0]]]), np.eye(4))
    >>> threshold_img(img, 1.0).get_fdata().ravel().tolist()
    [0.0, 0.0, 0.0, 1.5, 3.0, -2.0]
    """
    if not isinstance(img, (str, os.PathLike, SpatialImage)) and not is_surface_img(img):
        raise TypeError(
            "'img' should be a 3D/4D Niimg-like object or a SurfaceImage. "
            f"Got {type(img).__name__}."
        )
    check_compatible_mask(mask_img, img)
    if is_surface_img(img):
        return _threshold_surface(img, threshold, cluster_threshold, two_sided, mask_img, copy)
    img = check_niimg(img)
    data = _data(img, copy=copy)
    values = data
    if mask_img is not None:
        mask = check_niimg_3d(mask_img)
        if not check_same_fov(img, mask):
            mask = resample_img(
                mask, target_affine=img.affine, target_shape=img.shape[:3], interpolation="nearest"
            )
        inside = np.asarray(get_data(mask)) != 0
        values = data[inside]
        data[~inside] = 0
    _apply_cut(data, _cut_off(threshold, values, two_sided), two_sided)
    if cluster_threshold > 0:
        volumes = data[..., None] if data.ndim == 3 else data
        for t in range(volumes.shape[3]):
            _remove_small_clusters(volumes[..., t], cluster_threshold)
    return new_img_like(img, data, img.affine, copy_header=copy_header)


def _evaluate(formula: str, arrays: dict[str, Any]) -> Any:
    try:
        return eval(formula, {**arrays, "np": np})  # noqa: S307 - the documented purpose of math_img
    except Exception as exc:
        exc.args = (f"Input formula couldn't be processed, you provided '{formula}',", *exc.args)
        raise


def _math_surface(formula: str, copy_header_from: Any, imgs: dict[str, Any]) -> Any:
    """math_img for surface images on one mesh: the formula is evaluated on each hemisphere."""
    if copy_header_from is not None:
        warnings.warn(
            f"'copy_header_from' is not used with SurfaceImage. Got: {copy_header_from=}",
            UserWarning,
            stacklevel=3,
        )
    first = next(iter(imgs.values()))
    for img in imgs.values():
        check_same_mesh(first, img, what="each image")
    return new_surface_like(
        first,
        {
            hemi: _evaluate(formula, {name: img.data.parts[hemi] for name, img in imgs.items()})
            for hemi in first.data.parts
        },
    )


def math_img(formula: str, copy_header_from: str | None = None, **imgs: Any) -> Any:
    """Evaluate a numpy expression of images' data, e.g. ``math_img("a - b", a=..., b=...)``.

    Parameters
    ----------
    formula : str
        Python expression of the image names and ``np``.
    copy_header_from : str or None, default=None
        Name of the image whose header the result gets (same number of dimensions needed;
        not used, with a warning, for surface images).
    **imgs : images
        The images, all on the same grid; or surface images on one mesh (the formula is then
        evaluated on each hemisphere's data and the result is a surface image).

    Returns
    -------
    nibabel.Nifti1Image or surface image

    Examples
    --------
    >>> a = nib.Nifti1Image(np.ones((2, 2, 2)), np.eye(4))
    >>> math_img("np.mean(a, axis=-1) + b", a=a, b=a).get_fdata().shape
    (2, 2, 2)
    """
    unused = [name for name in imgs if name not in formula and name != copy_header_from]
    if unused:
        warnings.warn(
            f"Some images ({unused}) are not mentioned in the formula={formula!r}.",
            UserWarning,
            stacklevel=2,
        )
    if imgs and all(map(is_surface_img, imgs.values())):
        return _math_surface(formula, copy_header_from, imgs)
    try:
        niimgs = {name: check_niimg(img) for name, img in imgs.items()}
        check_same_fov(*niimgs.values(), raise_error=True)
    except Exception as exc:
        exc.args = (f"Input images cannot be compared, you provided {list(imgs)},", *exc.args)
        raise
    if copy_header_from is not None and copy_header_from not in imgs:
        raise ValueError(
            f"copy_header_from={copy_header_from!r} but '{copy_header_from}' is missing from "
            f"'imgs' that contains: {list(imgs)}"
        )
    result = _evaluate(formula, {name: _data(img, copy=False) for name, img in niimgs.items()})
    reference = next(iter(niimgs.values()))
    if copy_header_from is None:
        return new_img_like(reference, result, reference.affine, copy_header=False)
    source = niimgs[copy_header_from]
    if np.ndim(result) != len(source.shape):
        raise ValueError(
            "Cannot copy the header. The result of the formula has a different number of "
            "dimensions than the image to copy the header from."
        )
    return new_img_like(source, result, source.affine, copy_header=True)


def binarize_img(
    img: Any,
    threshold: float | str = 0.0,
    mask_img: Any = None,
    two_sided: bool = False,
    copy_header: bool = True,
) -> Any:
    """Binarize an image (int8: 1 where :func:`threshold_img` keeps a non-zero value).

    Parameters
    ----------
    img, threshold, mask_img, two_sided, copy_header
        As :func:`threshold_img` (note ``two_sided=False`` by default); surface images too.

    Returns
    -------
    nibabel.Nifti1Image or surface image

    Examples
    --------
    >>> img = nib.Nifti1Image(np.array([[[0.0, 0.5, 2.0]]]), np.eye(4))
    >>> binarize_img(img, threshold=1.0).get_fdata().ravel().tolist()
    [0.0, 0.0, 1.0]
    """
    kept = threshold_img(
        img, threshold, mask_img=mask_img, two_sided=two_sided, copy_header=copy_header
    )
    if is_surface_img(kept):
        return map_parts(kept, lambda part: (part != 0).astype(np.int8))
    return new_img_like(kept, (get_data(kept) != 0).astype(np.int8), kept.affine)


def crop_img(
    img: Any,
    rtol: float = 1e-8,
    copy: bool = True,
    pad: bool = True,
    return_offset: bool = False,
    copy_header: bool = True,
) -> nib.Nifti1Image | tuple[nib.Nifti1Image, tuple[slice, ...]]:
    """Crop an image to the bounding box of its values above ``rtol`` times its largest one.

    Parameters
    ----------
    img : str, os.PathLike or nibabel image
        3D or 4D image (4D: the box holds the values of every volume).
    rtol : float, default=1e-8
        Values with an absolute value at most ``rtol * max|data|`` count as empty.
    copy : bool, default=True
        Copy the cropped data.
    pad : bool, default=True
        Keep one more voxel on each side (within the image).
    return_offset : bool, default=False
        Also return the slices of the box.
    copy_header : bool, default=True
        Copy ``img``'s header.

    Returns
    -------
    nibabel.Nifti1Image, or (image, tuple of slices) with ``return_offset``
        The affine is moved so that every voxel keeps its world position.

    Examples
    --------
    >>> data = np.zeros((5, 5, 5)); data[1:3, 2, 2:4] = 1
    >>> crop_img(nib.Nifti1Image(data, np.eye(4)), pad=False).shape
    (2, 1, 2)
    """
    img = check_niimg(img)
    data = np.asarray(get_data(img))
    largest = max(-data.min(), data.max()) if data.size else 0
    keep = np.abs(data) > rtol * largest
    if data.ndim == 4:
        keep = keep.any(axis=-1)
    where = np.nonzero(keep)
    if where[0].size == 0:
        warnings.warn(f"No values above {rtol}. Returning original image.", stacklevel=2)
        start, stop, pad = np.zeros(3, int), np.array(data.shape[:3]), False
    else:
        start = np.array([w.min() for w in where])
        stop = np.array([w.max() + 1 for w in where])
    if pad:
        start = np.maximum(start - 1, 0)
        stop = np.minimum(stop + 1, data.shape[:3])
    slices = tuple(slice(int(a), int(b)) for a, b in zip(start, stop, strict=True))
    cropped = data[slices]
    affine = img.affine.copy()
    affine[:3, 3] += affine[:3, :3] @ start
    out = new_img_like(img, cropped.copy() if copy else cropped, affine, copy_header=copy_header)
    return (out, slices) if return_offset else out


def copy_img(img: SpatialImage) -> nib.Nifti1Image:
    """Return a copy of an image (data, affine and header).

    Parameters
    ----------
    img : nibabel image
        The image.

    Returns
    -------
    nibabel.Nifti1Image

    Raises
    ------
    TypeError
        If ``img`` is not a nibabel image.
    """
    if not isinstance(img, SpatialImage):
        raise TypeError(
            f"'img' must be of type(s): SpatialImage (a nibabel image). Got {type(img).__name__}."
        )
    return new_img_like(img, np.array(get_data(img)), img.affine.copy())


def _largest_component(img: Any) -> nib.Nifti1Image:
    img = check_niimg_3d(img)
    data = np.asarray(get_data(img)).astype(bool)
    labels, n = ndimage.label(data)
    if n:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        data = labels == sizes.argmax()
    return new_img_like(img, data, img.affine)


def largest_connected_component_img(imgs: Any) -> nib.Nifti1Image | list[nib.Nifti1Image]:
    """Keep the largest connected component (6-connectivity) of the non-zero voxels.

    Parameters
    ----------
    imgs : image or list of images
        3D image(s); non-zero voxels form the components.

    Returns
    -------
    nibabel.Nifti1Image or list of them
        uint8 masks of the largest component, one per input.
    """
    if isinstance(imgs, (str, os.PathLike, SpatialImage)):
        return _largest_component(imgs)
    return [_largest_component(img) for img in imgs]


def swap_img_hemispheres(img: Any) -> nib.Nifti1Image:
    """Swap the left and right hemispheres (flip the x axis of the x-y-z ordered image).

    Parameters
    ----------
    img : str, os.PathLike or nibabel image
        3D image whose affine has no rotation.

    Returns
    -------
    nibabel.Nifti1Image
        The image in x-y-z order (:func:`reorder_img`), flipped along x.
    """
    img = reorder_img(check_niimg_3d(img))
    return new_img_like(img, np.asarray(get_data(img))[::-1], img.affine)
