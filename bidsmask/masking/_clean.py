"""``clean_img``: :func:`bidsmask.signal.clean` applied to every voxel of a 4D image.

nilearn has it in ``nilearn.image``; here it sits in :mod:`bidsmask.masking`, above
:mod:`bidsmask.image` and beside :mod:`bidsmask.signal`, because it needs both.
"""

from __future__ import annotations

from typing import Any, Literal

import nibabel as nib
import numpy as np

from bidsmask import signal
from bidsmask.image._niimg import check_niimg_4d, get_data, new_img_like
from bidsmask.masking._apply import apply_mask, unmask


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
) -> nib.Nifti1Image:
    """Clean the time series of every voxel (or of the voxels of ``mask_img``) of a 4D image.

    Same parameters and results as ``nilearn.image.clean_img`` 0.14 for volumes: the in-mask
    voxels are read a chunk of volumes at a time (:func:`apply_mask`), cleaned with one
    :func:`bidsmask.signal.clean` call and put back (:func:`unmask`).

    Parameters
    ----------
    imgs : str, os.PathLike, nibabel image or list of 3D images
        The 4D data.
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
    nibabel.Nifti1Image
        The cleaned 4D image (fewer volumes with ``clean__sample_mask``).

    Raises
    ------
    ValueError
        Filtering without ``t_r`` (the header's value is named, not used).
    """
    if (low_pass is not None or high_pass is not None) and t_r is None:
        header_t_r = check_niimg_4d(imgs).header.get_zooms()[3]
        raise ValueError(
            "Repetition time (t_r) must be specified for filtering. You specified None. "
            f"imgs header suggest it to be {header_t_r}."
        )
    clean_kwargs = {k[len("clean__") :]: v for k, v in kwargs.items() if k.startswith("clean__")}
    img = check_niimg_4d(imgs)
    if mask_img is not None:
        signals = apply_mask(img, mask_img)
    else:
        # voxels in Fortran order: a view of nibabel's (Fortran-ordered) array, not a copy
        signals = np.asarray(get_data(img)).reshape(-1, img.shape[3], order="F").T
    cleaned = signal.clean(
        signals,
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
    if mask_img is not None:
        return unmask(cleaned, mask_img)
    # (time, voxels) C-ordered -> (x, y, z, time) Fortran-ordered: a view, not a copy
    return new_img_like(img, cleaned.T.reshape(*img.shape[:3], cleaned.shape[0], order="F"))
