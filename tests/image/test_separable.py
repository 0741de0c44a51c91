"""Separable spline resampling between axis-aligned grids (bidsmask.image._separable)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from numpy.testing import assert_allclose

from bidsmask.image import resample_img
from bidsmask.image._separable import _resample_volume, axis_operators, resample_separable


def _image(shape=(18, 21, 16, 4), dtype=np.float32, seed=0) -> nib.Nifti1Image:
    rng = np.random.default_rng(seed)
    data = np.zeros(shape, dtype=dtype)
    data[3:14, 4:17, 2:13] = rng.uniform(0, 5, (11, 13, 11, *shape[3:])).astype(dtype)
    data[5:8, 6:9, 4:6] = 0  # holes and an empty volume
    if len(shape) == 4:
        data[..., 1] = 0
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-18.0, -20.0, -15.0]
    return nib.Nifti1Image(data, affine)


def _dense(img, affine, shape, interpolation) -> np.ndarray | None:
    """resample_separable's non-zero voxels put back on the whole target grid."""
    entries = resample_separable(img, affine, shape, interpolation)
    if entries is None:
        return None
    indptr, indices, values = entries
    assert (np.diff(indptr) >= 0).all() and (values != 0).all()
    n_volumes = indptr.size - 1
    out = np.zeros((n_volumes, int(np.prod(shape))), dtype=values.dtype)
    for k in range(n_volumes):
        voxels = indices[indptr[k] : indptr[k + 1]]
        assert (np.diff(voxels) > 0).all()  # sorted, each voxel once
        out[k, voxels] = values[indptr[k] : indptr[k + 1]]
    out = np.moveaxis(out.reshape(n_volumes, *shape), 0, -1)
    return out if len(img.shape) > 3 else out[..., 0]


def _grid(zooms, origin):
    affine = np.diag([*zooms, 1.0])
    affine[:3, 3] = origin
    return affine


GRIDS = {
    "coarser, anisotropic": ((12, 14, 10), _grid((3.0, 3.0, 3.33), (-18.5, -20.5, -15.5))),
    "finer": ((30, 35, 28), _grid((1.25, 1.25, 1.25), (-17.0, -19.0, -14.0))),
    "partly outside the image": ((14, 12, 9), _grid((3.0, 2.5, 4.0), (-30.0, -5.0, -20.0))),
    "flipped x axis": ((12, 14, 10), _grid((-3.0, 3.0, 3.0), (17.5, -20.0, -15.0))),
}


@pytest.mark.parametrize("grid", sorted(GRIDS))
@pytest.mark.parametrize("interpolation", ["continuous", "linear"])
def test_equals_resample_img_up_to_rounding(grid, interpolation):
    img = _image()
    shape, affine = GRIDS[grid]
    ours = _dense(img, affine, shape, interpolation)
    expected = np.asarray(resample_img(img, affine, shape, interpolation).dataobj)
    assert ours.shape == expected.shape == (*shape, 4) and ours.dtype == expected.dtype
    _assert_same_up_to_rounding(ours, expected)
    assert not ours[..., 1].any()


def _assert_same_up_to_rounding(ours, expected):
    """float32 rounding; zero vs non-zero only where scipy's value is rounding noise around 0."""
    noise = 1e-12 * np.abs(expected).max()
    assert_allclose(ours, expected, rtol=2.5e-7, atol=noise)
    differ = (ours != 0) != (expected != 0)
    assert (np.abs(expected[differ]) <= noise).all() and (np.abs(ours[differ]) <= noise).all()


@pytest.mark.parametrize("dtype", [np.float64, np.int16])
def test_3d_and_other_dtypes(dtype):
    img = _image((18, 21, 16), dtype=dtype, seed=3)
    shape, affine = GRIDS["coarser, anisotropic"]
    ours = _dense(img, affine, shape, "continuous")
    expected = np.asarray(resample_img(img, affine, shape, "continuous").dataobj)
    assert ours.dtype == expected.dtype and ours.shape == shape
    _assert_same_up_to_rounding(ours, expected)


def test_not_separable_or_not_finite_falls_back():
    img = _image()
    rotated = GRIDS["finer"][1].copy()
    rotated[:2, :2] = [[0.0, 1.25], [1.25, 0.0]]  # axes swapped: not diagonal
    assert resample_separable(img, rotated, (30, 35, 28), "continuous") is None
    data = np.asarray(img.dataobj).copy()
    data[9, 9, 9, 2] = np.nan
    shape, affine = GRIDS["coarser, anisotropic"]
    assert (
        resample_separable(nib.Nifti1Image(data, img.affine), affine, shape, "continuous") is None
    )


def test_linear_is_computed_only_around_the_data():
    """Trilinear: only the target samples next to the data; cubic splines reach every sample."""
    volume = np.zeros((18, 21, 16))
    volume[9, 10, 8] = 1.0
    shape, affine = GRIDS["coarser, anisotropic"]
    source = _image().affine
    box, block = _resample_volume(volume, axis_operators(volume.shape, source, shape, affine, 1))
    assert all(cut.stop - cut.start <= 2 for cut in box) and block.any()
    box, _ = _resample_volume(volume, axis_operators(volume.shape, source, shape, affine, 3))
    # (the first sample of each axis is outside the source grid: 0 there)
    assert [(cut.start, cut.stop) for cut in box] == [(1, n) for n in shape]
    assert _resample_volume(np.zeros_like(volume), []) is None
