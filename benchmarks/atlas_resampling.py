"""Resampling atlases to a run's grid: the app's way against only the voxels of the run's mask.

Issue 12 asked whether interpolating an atlas only at the voxels a run's mask needs
(``scipy.ndimage.map_coordinates`` at those points) is faster than what the app does
(:mod:`bidsmask.app.atlas_cache`, as nilearn 0.14's maskers: nearest neighbour for labels through
:func:`bidsmask.image.resample_img`; trilinear for maps through the separable matrix products of
:mod:`bidsmask.image._separable`, computed only on the target samples each map's data reach).
Cases, on fMRIPrep's real 3 × 3 × 3.33 mm grid and run mask of
``../shared/realdata/fmriprep_colornest`` and the real atlases of ``../shared/realdata/atlases``
(skipped when absent):

- Schaefer-400 labels (2 mm), nearest neighbour;
- DiFuMo-64 segmented maps (114 maps, 2 mm), trilinear, the maps already read into memory;
  also cubic splines (``spline_filter`` once per map, then ``map_coordinates``) against the
  separable cubic path, the app's way before it followed nilearn's trilinear interpolation.

For each: the best of ``--repeats`` timings of each way, and the largest difference between them
at the mask's voxels. The app needs more than the mask's voxels: a region's coverage is a share
of its size (labels) or of its absolute weight (maps) on the *whole* grid.

Run under the shared lock::

    flock /tmp/bidsmask-bench.lock /work/venv/bin/python benchmarks/atlas_resampling.py
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from bidsmask import image
from bidsmask.image._separable import resample_separable

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"
MASK = (
    REALDATA
    / "fmriprep_colornest/sub-colornest001/ses-1/func"
    / "sub-colornest001_ses-1_task-rest_run-1_space-MNI152NLin2009cAsym_desc-brain_mask.nii.gz"
)
SCHAEFER = (
    REALDATA
    / "atlases"
    / (
        "Schaefer2018_400Parcels_7Networks_order_Tian_Subcortex_S1_3T_MNI152NLin2009cAsym_2mm.nii.gz"
    )
)
DIFUMO = (
    REALDATA
    / "atlases"
    / ("tpl-MNI152NLin2009cAsym_res-02_atlas-DiFuMo_desc-64dimensionsSegmented_probseg.nii.gz")
)


def _best(function, repeats: int):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def _source_points(img, target_affine: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Source voxel coordinates (3, n) of the mask's voxels."""
    transform = np.linalg.inv(img.affine) @ target_affine
    return transform[:3, :3] @ np.argwhere(mask).T + transform[:3, 3:]


def labels_case(mask_img, repeats: int) -> str:
    img = nib.load(SCHAEFER)
    data = np.asarray(img.dataobj)
    mask = np.asarray(mask_img.dataobj).astype(bool)
    target = nib.Nifti1Image(np.zeros(mask.shape, np.int16), mask_img.affine)

    def whole():
        loaded = nib.Nifti1Image(data, img.affine)
        resampled = image.resample_to_img(loaded, target, interpolation="nearest")
        return np.asarray(resampled.dataobj)[mask]

    def used():
        points = _source_points(img, mask_img.affine, mask)
        return ndimage.map_coordinates(data, points, order=0, mode="constant", cval=0)

    t_whole, a = _best(whole, repeats)
    t_used, b = _best(used, repeats)
    return (
        f"Schaefer-400 labels: whole grid {1000 * t_whole:.0f} ms, "
        f"mask voxels only {1000 * t_used:.0f} ms ({mask.sum()} of {mask.size} voxels); "
        f"labels differing at the mask's voxels: {int((a != b).sum())}"
    )


def _dense_at(entries, shape, mask: np.ndarray) -> np.ndarray:
    """Return resample_separable's values at the mask's voxels, (n_mask_voxels, n_maps)."""
    indptr, indices, values = entries
    out = np.zeros((indptr.size - 1, int(np.prod(shape))), values.dtype)
    out[np.repeat(np.arange(indptr.size - 1), np.diff(indptr)), indices] = values
    return out[:, mask.ravel()].T


def maps_case(mask_img, repeats: int, interpolation: str) -> str:
    img = nib.load(DIFUMO)
    data = np.asarray(img.dataobj, dtype=np.float32)
    mask = np.asarray(mask_img.dataobj).astype(bool)
    in_memory = nib.Nifti1Image(data, img.affine)
    order = {"linear": 1, "continuous": 3}[interpolation]

    def whole():
        return resample_separable(in_memory, mask_img.affine, mask.shape, interpolation)

    def used():
        points = _source_points(img, mask_img.affine, mask)
        out = np.empty((points.shape[1], data.shape[3]), np.float32)
        for k in range(data.shape[3]):
            volume = data[..., k].astype(np.float64)
            if order > 1:
                volume = ndimage.spline_filter(volume, order=order)
            out[:, k] = ndimage.map_coordinates(
                volume, points, order=order, mode="constant", cval=0.0, prefilter=False
            )
        return out.clip(min(float(data.min()), 0.0), max(float(data.max()), 0.0))

    t_whole, entries = _best(whole, repeats)
    t_used, b = _best(used, repeats)
    a = _dense_at(entries, mask.shape, mask)
    scale = float(np.abs(a).max())
    return (
        f"DiFuMo-64 maps ({data.shape[3]}), {interpolation}: whole grid (separable, non-zero "
        f"voxels: {entries[1].size}) {1000 * t_whole:.0f} ms, mask voxels only "
        f"(map_coordinates{', spline_filter' if order > 1 else ''}) {1000 * t_used:.0f} ms; "
        f"largest |difference| at the mask's voxels {np.abs(a - b).max() / scale:.2g} of the "
        "largest value"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not (MASK.is_file() and SCHAEFER.is_file() and DIFUMO.is_file()):
        print(f"skipped: the real data of {REALDATA} is absent")
        return
    mask_img = nib.load(MASK)
    print(labels_case(mask_img, args.repeats))
    print(maps_case(mask_img, args.repeats, "linear"))
    print(maps_case(mask_img, args.repeats, "continuous"))


if __name__ == "__main__":
    main()
