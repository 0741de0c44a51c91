"""Packaged MNI152 templates and masks (``nilearn.datasets.load_mni152_*`` semantics).

Which template, and why: the files in ``bidsmask/data/mni152/`` are the MNI ICBM152 2009a
nonlinear *symmetric* templates (T1w average, grey- and white-matter probability maps, 1 mm,
197 x 233 x 189, uint8), byte for byte the ones nilearn 0.14 ships. ``compute_brain_mask`` resamples
them onto the target grid exactly as nilearn does, so its masks match nilearn's. They are not
fMRIPrep's ``MNI152NLin2009cAsym`` (release c, asymmetric): the atlases bidsmask extracts signals
with come from TemplateFlow in that space, but a template-based *mask* only needs the brain's
outline, and using nilearn's files keeps parity. Package data: about 5 MB; no download needed, so it
works offline on compute nodes. Licence: ``bidsmask/data/mni152/LICENSE`` (McGill notice).

Deliberate difference from nilearn: ``resolution`` defaults to 2 (mm), the resolution of fMRI
grids, where nilearn's default is 1.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy.ndimage import binary_closing

from bidsmask.image._niimg import new_img_like
from bidsmask.image._resampling import resample_img

logger = logging.getLogger(__name__)

__all__ = [
    "TEMPLATE_DIR",
    "load_mni152_brain_mask",
    "load_mni152_gm_mask",
    "load_mni152_gm_template",
    "load_mni152_template",
    "load_mni152_wm_mask",
    "load_mni152_wm_template",
]

TEMPLATE_DIR = Path(__file__).parents[1] / "data" / "mni152"
_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}


@functools.lru_cache(maxsize=6)
def _template_arrays(kind: str, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the (read-only) normalised template data and affine at a resolution."""
    path = TEMPLATE_DIR / _FILES[kind]
    if not path.exists():
        raise FileNotFoundError(
            f"Packaged template file missing: '{path}'. Reinstall bidsmask (the package data "
            "bidsmask/data/mni152 was not installed)."
        )
    img = nib.load(path)
    data = np.asarray(img.dataobj).astype(np.float32)
    data /= data.max()
    img = nib.Nifti1Image(data, img.affine)
    if resolution != 1:
        img = resample_img(img, np.eye(3) * resolution, copy_header=False)
    data = np.asarray(img.dataobj)
    data.flags.writeable = False
    return data, img.affine


def _check_resolution(resolution: int | None) -> int:
    resolution = 2 if resolution is None else resolution
    if not isinstance(resolution, (int, np.integer)) or isinstance(resolution, bool):
        raise TypeError(f"resolution must be an integer number of mm, got {resolution!r}.")
    if resolution < 1:
        raise ValueError(f"resolution must be >= 1 (mm), got {resolution}.")
    return int(resolution)


def _template_img(kind: str, resolution: int | None) -> nib.Nifti1Image:
    data, affine = _template_arrays(kind, _check_resolution(resolution))
    return nib.Nifti1Image(data.copy(), affine.copy())


def load_mni152_template(resolution: int | None = 2) -> nib.Nifti1Image:
    """Load the skull-stripped MNI152 T1w template, scaled to a maximum of 1.

    Parameters
    ----------
    resolution : int, default=2
        Voxel size in mm; templates other than 1 mm are resampled (cubic spline) from 1 mm.

    Returns
    -------
    nibabel.Nifti1Image
        float32 image (197 x 233 x 189 at 1 mm, 99 x 117 x 95 at 2 mm).
    """
    return _template_img("t1", resolution)


def load_mni152_gm_template(resolution: int | None = 2) -> nib.Nifti1Image:
    """Load the MNI152 grey-matter probability template, scaled to a maximum of 1.

    Parameters
    ----------
    resolution : int, default=2
        Voxel size in mm.

    Returns
    -------
    nibabel.Nifti1Image
        float32 image.
    """
    return _template_img("gm", resolution)


def load_mni152_wm_template(resolution: int | None = 2) -> nib.Nifti1Image:
    """Load the MNI152 white-matter probability template, scaled to a maximum of 1.

    Parameters
    ----------
    resolution : int, default=2
        Voxel size in mm.

    Returns
    -------
    nibabel.Nifti1Image
        float32 image.
    """
    return _template_img("wm", resolution)


def load_mni152_brain_mask(resolution: int | None = 2, threshold: float = 0.2) -> nib.Nifti1Image:
    """Load the MNI152 whole-brain mask: template voxels above ``threshold``.

    Parameters
    ----------
    resolution : int, default=2
        Voxel size in mm.
    threshold : float, default=0.2
        Threshold on the template scaled to [0, 1].

    Returns
    -------
    nibabel.Nifti1Image
        int8 mask image.
    """
    template = load_mni152_template(resolution)
    mask = (np.asarray(template.dataobj) > threshold).astype(np.int8)
    return new_img_like(template, mask)


def _tissue_mask(
    kind: str, resolution: int | None, threshold: float, n_iter: int
) -> nib.Nifti1Image:
    template = _template_img(kind, resolution)
    mask = (np.asarray(template.dataobj) > threshold).astype(np.int8)
    mask = binary_closing(mask, iterations=n_iter)
    return new_img_like(template, mask)


def load_mni152_gm_mask(
    resolution: int | None = 2, threshold: float = 0.2, n_iter: int = 2
) -> nib.Nifti1Image:
    """Load the MNI152 grey-matter mask: probability above ``threshold``, then closed.

    Parameters
    ----------
    resolution : int, default=2
        Voxel size in mm.
    threshold : float, default=0.2
        Threshold on the grey-matter probability scaled to [0, 1].
    n_iter : int, default=2
        Iterations of binary closing (less than 1: until the mask stops changing).

    Returns
    -------
    nibabel.Nifti1Image
        uint8 mask image.
    """
    return _tissue_mask("gm", resolution, threshold, n_iter)


def load_mni152_wm_mask(
    resolution: int | None = 2, threshold: float = 0.2, n_iter: int = 2
) -> nib.Nifti1Image:
    """Load the MNI152 white-matter mask: probability above ``threshold``, then closed.

    Parameters
    ----------
    resolution : int, default=2
        Voxel size in mm.
    threshold : float, default=0.2
        Threshold on the white-matter probability scaled to [0, 1].
    n_iter : int, default=2
        Iterations of binary closing (less than 1: until the mask stops changing).

    Returns
    -------
    nibabel.Nifti1Image
        uint8 mask image.
    """
    return _tissue_mask("wm", resolution, threshold, n_iter)
