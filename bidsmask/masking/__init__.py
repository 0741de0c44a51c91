"""Brain masks and masking, with nilearn 0.14's names, parameters and results.

Mask computation (:func:`compute_epi_mask`, :func:`compute_background_mask`,
:func:`compute_brain_mask`, their ``compute_multi_*`` versions, :func:`intersect_masks`) and
masking (:func:`apply_mask`, :func:`unmask`, :func:`load_mask_img`, implemented in
:mod:`bidsmask.masking._apply`).

A 4D run is never held whole: its mean is a float64 running sum over chunks of volumes
(:func:`bidsmask.image.compute_mean`) and :func:`apply_mask` fills the (time x voxels) output a
chunk at a time.

Deliberate differences from nilearn: ``memory`` is accepted and ignored (no joblib caching) and
``n_jobs`` does not exist (masks are computed one after the other); a mask/data grid mismatch or a
wrong number of masked values raises ``ValueError``; ``smoothing_fwhm`` with an integer ``dtype``
is refused (nilearn silently skips the smoothing).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import nibabel as nib
import numpy as np
from nibabel.spatialimages import SpatialImage
from scipy.ndimage import binary_dilation, binary_erosion, label

from bidsmask.image import compute_mean
from bidsmask.image._extrapolate import extrapolate_out_mask
from bidsmask.image._niimg import check_niimg, check_niimg_3d, new_img_like
from bidsmask.image._ops import check_same_fov
from bidsmask.image._resampling import resample_to_img
from bidsmask.masking._apply import (
    MaskShapeError,
    apply_mask,
    load_mask_img,
    unmask,
    unmask_from_to_3d_array,
)
from bidsmask.masking._clean import clean_img, high_variance_confounds
from bidsmask.masking._grids import check_same_grid
from bidsmask.masking._templates import (
    load_mni152_gm_template,
    load_mni152_template,
    load_mni152_wm_template,
)

logger = logging.getLogger(__name__)

__all__ = [
    "MaskShapeError",
    "MaskWarning",
    "apply_mask",
    "clean_img",
    "compute_background_mask",
    "compute_brain_mask",
    "compute_epi_mask",
    "compute_multi_background_mask",
    "compute_multi_brain_mask",
    "compute_multi_epi_mask",
    "extrapolate_out_mask",
    "high_variance_confounds",
    "intersect_masks",
    "largest_connected_component",
    "load_mask_img",
    "unmask",
    "unmask_from_to_3d_array",
]


class MaskWarning(UserWarning):
    """Warning about a computed mask (e.g. an empty one)."""


def largest_connected_component(volume: np.ndarray) -> np.ndarray:
    """Return the largest connected component (6-connectivity) of a 3D boolean array.

    Parameters
    ----------
    volume : numpy.ndarray
        3D array; non-zero voxels are in the volume.

    Returns
    -------
    numpy.ndarray of bool
        The largest component (ties: the lowest label).
    """
    labels, n_labels = label(np.asarray(volume))
    if not n_labels:
        raise ValueError("No non-zero values: no connected components.")
    if n_labels == 1:
        return np.asarray(volume).astype(bool)
    counts = np.bincount(labels.ravel())
    counts[0] = 0
    return labels == counts.argmax()


def _post_process_mask(
    mask: np.ndarray, opening: int | bool, connected: bool, warning_msg: str
) -> np.ndarray:
    """Erode, keep the largest component, then dilate twice and erode (nilearn's opening)."""
    if opening:
        opening = int(opening)
        mask = binary_erosion(mask, iterations=opening)
    mask_any = bool(mask.any())
    if not mask_any:
        warnings.warn(f"Computed an empty mask. {warning_msg}", MaskWarning, stacklevel=3)
    if connected and mask_any:
        mask = largest_connected_component(mask)
    if opening:
        mask = binary_dilation(mask, iterations=2 * opening)
        mask = binary_erosion(mask, iterations=opening)
    return mask


def intersect_masks(
    mask_imgs: Sequence[Any], threshold: float = 0.5, connected: bool = True
) -> nib.Nifti1Image:
    """Keep the voxels present in more than ``threshold`` of the masks.

    Parameters
    ----------
    mask_imgs : sequence of str, os.PathLike or nibabel image
        3D masks on the same grid.
    threshold : float, default=0.5
        Fraction of masks a voxel must be in: 0 gives the union, 1 the intersection.
    connected : bool, default=True
        Keep only the largest connected component.

    Returns
    -------
    nibabel.Nifti1Image
        int8 mask image.
    """
    if not 0 <= threshold <= 1:
        bound = "greater than 0" if threshold < 0 else "smaller than 1"
        raise ValueError(
            f"The threshold should be {bound}: it must be between 0 and 1, got {threshold}."
        )
    threshold = min(threshold, 1 - 1.0e-7)
    if len(mask_imgs) == 0:
        raise ValueError("No mask provided for intersection: mask_imgs is empty.")
    for index, img in enumerate(mask_imgs):
        if not isinstance(img, (str, os.PathLike, SpatialImage)):
            raise TypeError(
                f"All masks must be a 3D Niimg-like object. Mask #{index} is a "
                f"{type(img).__name__}; pass NIfTI images or paths."
            )
    imgs = [check_niimg_3d(img) for img in mask_imgs]
    ref = imgs[0]
    names = [f"mask #{i} ({img.get_filename() or 'in memory'})" for i, img in enumerate(imgs)]
    check_same_fov(raise_error=True, **dict(zip(names, imgs, strict=True)))
    count = np.zeros(ref.shape, dtype=np.int64)
    for img in imgs:
        count += load_mask_img(img, allow_empty=True)[0]
    grp_mask = count > threshold * len(imgs)
    if connected and grp_mask.any():
        grp_mask = largest_connected_component(grp_mask)
    return new_img_like(ref, grp_mask.astype(np.int8), ref.affine)


def compute_epi_mask(
    epi_img: Any,
    lower_cutoff: float = 0.2,
    upper_cutoff: float = 0.85,
    connected: bool = True,
    opening: int | bool = 2,
    exclude_zeros: bool = False,
    ensure_finite: bool = True,
    target_affine: np.ndarray | None = None,
    target_shape: tuple[int, int, int] | None = None,
    memory: Any = None,
    verbose: int = 0,
) -> nib.Nifti1Image:
    """Compute a brain mask from EPI data (Nichols' histogram heuristic).

    The mean image (streamed over time, resampled if a target is given, smoothed with a 1-voxel
    FWHM when ``opening``) is thresholded in the middle of the largest gap of its sorted values
    between the ``lower_cutoff`` and ``upper_cutoff`` fractions.

    Parameters
    ----------
    epi_img : str, os.PathLike, nibabel image or list of 3D images
        3D or 4D EPI image(s).
    lower_cutoff : float, default=0.2
        Lower fraction of the histogram discarded.
    upper_cutoff : float, default=0.85
        Upper fraction of the histogram discarded.
    connected : bool, default=True
        Keep only the largest connected component.
    opening : int or bool, default=2
        Iterations of morphological opening (erosion before, dilation x2 and erosion after
        the connected component).
    exclude_zeros : bool, default=False
        Ignore zeros in the histogram (for masked or padded data).
    ensure_finite : bool, default=True
        Replace non-finite values of the mean by 0.
    target_affine : numpy.ndarray or None, default=None
        Resample the mean image onto this affine first.
    target_shape : tuple of 3 int or None, default=None
        Resample the mean image onto this shape first.
    memory : None
        Accepted for nilearn compatibility; ignored.
    verbose : int, default=0
        Log progress at INFO level when positive.

    Returns
    -------
    nibabel.Nifti1Image
        uint8 mask image.
    """
    if verbose:
        logger.info("EPI mask computation")
    mean_epi, affine = compute_mean(
        epi_img,
        target_affine=target_affine,
        target_shape=target_shape,
        smooth=1 if opening else False,
    )
    if ensure_finite:
        mean_epi[~np.isfinite(mean_epi)] = 0
    sorted_input = np.sort(np.ravel(mean_epi))
    if exclude_zeros:
        sorted_input = sorted_input[sorted_input != 0]
    if sorted_input.size < 2:
        raise ValueError(
            f"Cannot compute an EPI mask: the mean image has {sorted_input.size} usable values. "
            "Check the input image or use exclude_zeros=False."
        )
    lower = int(np.floor(lower_cutoff * len(sorted_input)))
    upper = min(int(np.floor(upper_cutoff * len(sorted_input))), len(sorted_input) - 1)
    delta = sorted_input[lower + 1 : upper + 1] - sorted_input[lower:upper]
    if delta.size == 0:
        raise ValueError(
            f"lower_cutoff={lower_cutoff} and upper_cutoff={upper_cutoff} leave no values to "
            "threshold; use lower_cutoff < upper_cutoff."
        )
    ia = delta.argmax()
    threshold = 0.5 * (sorted_input[ia + lower] + sorted_input[ia + lower + 1])
    mask = _post_process_mask(
        mean_epi >= threshold,
        opening,
        connected,
        "Are you sure that input data are EPI images not detrended. ",
    )
    return new_img_like(epi_img, mask, affine)


def compute_multi_epi_mask(
    epi_imgs: Sequence[Any],
    lower_cutoff: float = 0.2,
    upper_cutoff: float = 0.85,
    connected: bool = True,
    opening: int | bool = 2,
    threshold: float = 0.5,
    target_affine: np.ndarray | None = None,
    target_shape: tuple[int, int, int] | None = None,
    exclude_zeros: bool = False,
    memory: Any = None,
    verbose: int = 0,
) -> nib.Nifti1Image:
    """Compute a common EPI mask for several runs: one mask per run, then intersected.

    Parameters
    ----------
    epi_imgs : sequence of images or paths
        The runs.
    lower_cutoff, upper_cutoff, connected, opening, exclude_zeros : see :func:`compute_epi_mask`
        Parameters of each run's mask.
    threshold : float, default=0.5
        See :func:`intersect_masks`.
    target_affine, target_shape : see :func:`compute_epi_mask`
        Common grid; needed when the runs are on different grids.
    memory : None
        Accepted for nilearn compatibility; ignored.
    verbose : int, default=0
        Log progress when positive.

    Returns
    -------
    nibabel.Nifti1Image
        int8 mask image.
    """
    _check_not_empty(epi_imgs)
    if target_affine is None and target_shape is None:
        epi_imgs = [check_niimg(img) for img in epi_imgs]  # a list of 3D: concatenated once
        check_same_grid(epi_imgs)
    masks = [
        compute_epi_mask(
            img,
            lower_cutoff=lower_cutoff,
            upper_cutoff=upper_cutoff,
            connected=connected,
            opening=opening,
            exclude_zeros=exclude_zeros,
            target_affine=target_affine,
            target_shape=target_shape,
            verbose=verbose,
        )
        for img in epi_imgs
    ]
    return intersect_masks(masks, threshold=threshold, connected=connected)


def _check_not_empty(imgs: Any) -> None:
    if len(imgs) == 0:
        raise TypeError(
            f"An empty object - {imgs!r} - was passed instead of an image or a list of images."
        )


def compute_background_mask(
    data_imgs: Any,
    border_size: int = 2,
    connected: bool = False,
    opening: int | bool = False,
    target_affine: np.ndarray | None = None,
    target_shape: tuple[int, int, int] | None = None,
    memory: Any = None,
    verbose: int = 0,
) -> nib.Nifti1Image:
    """Compute a mask of the voxels that differ from the background value.

    The background is the median of the mean image over a border of ``border_size`` voxels, or
    NaN if the border holds NaNs.

    The mean is summed in float64 (nilearn: in the data's float type), so for float32 data it can
    differ from nilearn's in its last bits. The mask is identical unless the mean is resampled
    (``target_affine``): spline ringing then leaves tiny values around the background value, and
    ``mean != background`` is sensitive to their last bits.

    Parameters
    ----------
    data_imgs : str, os.PathLike, nibabel image or list of 3D images
        3D or 4D image(s).
    border_size : int, default=2
        Width of the border, in voxels.
    connected : bool, default=False
        Keep only the largest connected component.
    opening : int or bool, default=False
        Iterations of morphological opening.
    target_affine, target_shape : see :func:`compute_epi_mask`
        Resample the mean image first.
    memory : None
        Accepted for nilearn compatibility; ignored.
    verbose : int, default=0
        Log progress when positive.

    Returns
    -------
    nibabel.Nifti1Image
        uint8 mask image.
    """
    if verbose:
        logger.info("Background mask computation")
    data_imgs = check_niimg(data_imgs)
    data, affine = compute_mean(data_imgs, target_affine=target_affine, target_shape=target_shape)
    b = border_size
    border = np.concatenate(
        [
            data[:b].ravel(),
            data[-b:].ravel(),
            data[:, :b].ravel(),
            data[:, -b:].ravel(),
            data[:, :, :b].ravel(),
            data[:, :, -b:].ravel(),
        ]
    )
    if np.isnan(border).any():
        mask = ~np.isnan(data)
    else:
        mask = data != np.median(border)
    mask = _post_process_mask(
        mask, opening, connected, "Are you sure that input images have a homogeneous background."
    )
    return new_img_like(data_imgs, mask, affine)


def compute_multi_background_mask(
    data_imgs: Sequence[Any],
    border_size: int = 2,
    connected: bool = True,
    opening: int | bool = 2,
    threshold: float = 0.5,
    target_affine: np.ndarray | None = None,
    target_shape: tuple[int, int, int] | None = None,
    memory: Any = None,
    verbose: int = 0,
) -> nib.Nifti1Image:
    """Compute a common background mask for several runs, then intersect them.

    Parameters
    ----------
    data_imgs : sequence of images or paths
        The runs.
    border_size, connected, opening : see :func:`compute_background_mask`
        Parameters of each run's mask (note the different defaults, as in nilearn).
    threshold : float, default=0.5
        See :func:`intersect_masks`.
    target_affine, target_shape : see :func:`compute_epi_mask`
        Common grid.
    memory : None
        Accepted for nilearn compatibility; ignored.
    verbose : int, default=0
        Log progress when positive.

    Returns
    -------
    nibabel.Nifti1Image
        int8 mask image.
    """
    _check_not_empty(data_imgs)
    if target_affine is None and target_shape is None:
        data_imgs = [check_niimg(img) for img in data_imgs]  # a list of 3D: concatenated once
        check_same_grid(data_imgs)
    masks = [
        compute_background_mask(
            img,
            border_size=border_size,
            connected=connected,
            opening=opening,
            target_affine=target_affine,
            target_shape=target_shape,
            verbose=verbose,
        )
        for img in data_imgs
    ]
    return intersect_masks(masks, threshold=threshold, connected=connected)


def compute_brain_mask(
    target_img: Any,
    threshold: float = 0.5,
    connected: bool = True,
    opening: int | bool = 2,
    memory: Any = None,
    verbose: int = 0,
    mask_type: Literal["whole-brain", "gm", "wm"] = "whole-brain",
) -> nib.Nifti1Image:
    """Compute a whole-brain, grey-matter or white-matter mask on the grid of ``target_img``.

    The 1 mm MNI152 template of :mod:`bidsmask.templates` is resampled onto the target grid
    (cubic spline) and thresholded; no registration is done, so the target must be in MNI space.

    Parameters
    ----------
    target_img : str, os.PathLike or nibabel image
        Image whose grid (affine and first three dimensions) the mask is made for; its data are
        not read.
    threshold : float, default=0.5
        Threshold on the resampled template (scaled to [0, 1]).
    connected : bool, default=True
        Keep only the largest connected component.
    opening : int or bool, default=2
        Iterations of morphological opening.
    memory : None
        Accepted for nilearn compatibility; ignored.
    verbose : int, default=0
        Log progress when positive.
    mask_type : {"whole-brain", "gm", "wm"}, default="whole-brain"
        Template to use.

    Returns
    -------
    nibabel.Nifti1Image
        uint8 mask image.
    """
    loaders = {
        "whole-brain": load_mni152_template,
        "gm": load_mni152_gm_template,
        "wm": load_mni152_wm_template,
    }
    if mask_type not in loaders:
        raise ValueError(
            f"Unknown mask type {mask_type}. Only 'whole-brain', 'gm' or 'wm' are accepted."
        )
    if verbose:
        logger.info("Template %s mask computation", mask_type)
    target_img = check_niimg(target_img)
    template = loaders[mask_type](resolution=1)
    resampled = resample_to_img(template, target_img, copy_header=False)
    mask = (np.asarray(resampled.dataobj) >= threshold).astype(np.int8)
    mask = _post_process_mask(
        mask,
        opening,
        connected,
        f"{mask_type} mask is empty, lower the threshold or check your input FOV",
    )
    return new_img_like(target_img, mask, target_img.affine)


def compute_multi_brain_mask(
    target_imgs: Sequence[Any],
    threshold: float = 0.5,
    connected: bool = True,
    opening: int | bool = 2,
    memory: Any = None,
    verbose: int = 0,
    mask_type: Literal["whole-brain", "gm", "wm"] = "whole-brain",
) -> nib.Nifti1Image:
    """Compute a template-based mask on the grid of the first of several images.

    Every image is checked (readable, 3D or 4D, all on one grid); the mask is made on that grid.

    Parameters
    ----------
    target_imgs : sequence of images or paths
        The images.
    threshold, connected, opening, mask_type : see :func:`compute_brain_mask`
        Mask parameters.
    memory : None
        Accepted for nilearn compatibility; ignored.
    verbose : int, default=0
        Log progress when positive.

    Returns
    -------
    nibabel.Nifti1Image
        uint8 mask image.
    """
    _check_not_empty(target_imgs)
    check_same_grid([check_niimg(img) for img in target_imgs])
    return compute_brain_mask(
        target_imgs[0],
        threshold=threshold,
        connected=connected,
        opening=opening,
        verbose=verbose,
        mask_type=mask_type,
    )
