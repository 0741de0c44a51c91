"""Image-level signal functions: ``clean_img`` and ``high_variance_confounds`` on images.

nilearn has them in ``nilearn.image``; here they sit in :mod:`bidsmask.masking`, above
:mod:`bidsmask.image` and beside :mod:`bidsmask.signal`, because they need both. Both accept
surface images (nilearn's ``SurfaceImage``, see :mod:`bidsmask.image._surface`).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from bidsmask import signal
from bidsmask.image._niimg import check_niimg_4d, get_data, new_img_like
from bidsmask.image._surface import (
    check_compatible_mask,
    check_ndims,
    check_same_mesh,
    is_surface_img,
    load_surface_mask,
    new_surface_like,
    surface_data,
)
from bidsmask.masking._apply import apply_mask, unmask

__all__ = ["clean_img", "high_variance_confounds"]


def clean_img(
    imgs: Any,
    runs: np.ndarray | None = None,
    detrend: bool = True,
    standardize: Literal["zscore_sample", "psc"] | bool | None = True,
    confounds: Any = None,
    low_pass: float | None = None,
    high_pass: float | None = None,
    t_r: float | None = None,
    ensure_finite: bool = False,
    mask_img: Any = None,
    **kwargs: Any,
) -> Any:
    """Clean the time series of every voxel (or of the voxels of ``mask_img``) of a 4D image.

    Same parameters and results as ``nilearn.image.clean_img`` 0.14 for volumes: the in-mask
    voxels are read a chunk of volumes at a time (:func:`apply_mask`), cleaned with one
    :func:`bidsmask.signal.clean` call and put back (:func:`unmask`).

    Parameters
    ----------
    imgs : str, os.PathLike, nibabel image, list of 3D images or 2D surface image
        The 4D data, or a surface image (nilearn's ``SurfaceImage``) with samples: every vertex
        is cleaned and, with a surface ``mask_img``, the vertices outside it are set to 0.
    runs, detrend, standardize, confounds, low_pass, high_pass, t_r, ensure_finite
        As :func:`bidsmask.signal.clean` (``standardize=True`` by default, as nilearn, which
        means "zscore_sample" with a FutureWarning).
    mask_img : image or None, default=None
        Clean only these voxels (the others are 0 in the output, float32 as nilearn's
        ``apply_mask``); None: every voxel, in the image's precision.
    **kwargs
        ``clean__<name>`` options passed to :func:`bidsmask.signal.clean` (e.g.
        ``clean__sample_mask``, ``clean__butterworth__order``).

    Returns
    -------
    nibabel.Nifti1Image or surface image
        The cleaned 4D image (fewer volumes with ``clean__sample_mask``).

    Raises
    ------
    ValueError
        Filtering without ``t_r`` (the header's value is named, not used).
    """
    if (low_pass is not None or high_pass is not None) and t_r is None:
        hint = (
            ""
            if is_surface_img(imgs)
            else f" imgs header suggest it to be {check_niimg_4d(imgs).header.get_zooms()[3]}."
        )
        raise ValueError(
            "Repetition time (t_r) must be specified for filtering. You specified None." + hint
        )
    clean_kwargs = {k[len("clean__") :]: v for k, v in kwargs.items() if k.startswith("clean__")}
    check_compatible_mask(mask_img, imgs)
    clean_options = dict(
        runs=runs,
        detrend=detrend,
        standardize=standardize,
        confounds=confounds,
        low_pass=low_pass,
        high_pass=high_pass,
        t_r=t_r,
        ensure_finite=ensure_finite,
        **clean_kwargs,
    )
    if is_surface_img(imgs):
        return _clean_surface(imgs, mask_img, clean_options)
    img = check_niimg_4d(imgs)
    if mask_img is not None:
        signals = apply_mask(img, mask_img)
    else:
        # voxels in Fortran order: a view of nibabel's (Fortran-ordered) array, not a copy
        signals = np.asarray(get_data(img)).reshape(-1, img.shape[3], order="F").T
    cleaned = signal.clean(signals, **clean_options)
    if mask_img is not None:
        return unmask(cleaned, mask_img)
    # (time, voxels) C-ordered -> (x, y, z, time) Fortran-ordered: a view, not a copy
    return new_img_like(img, cleaned.T.reshape(*img.shape[:3], cleaned.shape[0], order="F"))


def _clean_surface(imgs: Any, mask_img: Any, clean_options: dict[str, Any]) -> Any:
    """clean_img for a 2D surface image: every vertex cleaned, zeros outside a surface mask."""
    check_ndims(imgs, 2, "imgs")
    cleaned = signal.clean(surface_data(imgs).T, **clean_options).T
    if mask_img is not None:
        check_same_mesh(imgs, mask_img)
        cleaned[~surface_data(load_surface_mask(mask_img))] = 0
    return new_surface_like(imgs, cleaned)


def high_variance_confounds(
    imgs: Any,
    n_confounds: int = 5,
    percentile: float = 2.0,
    detrend: bool = True,
    mask_img: Any = None,
) -> np.ndarray:
    """Return confounds from the voxels (or vertices) of an image with the highest variance.

    Same parameters and results as ``nilearn.image.high_variance_confounds`` 0.14: the time
    series of the image (inside ``mask_img`` when given) go through
    :func:`bidsmask.signal.high_variance_confounds`.

    Parameters
    ----------
    imgs : str, os.PathLike, nibabel image, list of 3D images or 2D surface image
        4D data, or a surface image with samples (nilearn's ``SurfaceImage``).
    n_confounds : int, default=5
        Number of confounds to return.
    percentile : float, default=2.0
        Percentage of the highest-variance series kept before the SVD.
    detrend : bool, default=True
        Remove the linear trend of each series first.
    mask_img : image, surface image or None, default=None
        Use only the voxels (vertices) of this mask; None: all of them.

    Returns
    -------
    numpy.ndarray
        (n_volumes, n_confounds).
    """
    check_compatible_mask(mask_img, imgs)
    if mask_img is not None:
        series = apply_mask(imgs, mask_img)
    elif is_surface_img(imgs):
        series = surface_data(imgs)
        series = series.reshape(-1, series.shape[-1]).T
    else:
        img = check_niimg_4d(imgs)
        # voxels in Fortran order: a view of nibabel's (Fortran-ordered) array, not a copy
        series = np.asarray(get_data(img)).reshape(-1, img.shape[3], order="F").T
    return signal.high_variance_confounds(
        series, n_confounds=n_confounds, percentile=percentile, detrend=detrend
    )
