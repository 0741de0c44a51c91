"""Voxels without data (non-finite or constant zero): found in the pass, left out exactly.

The reference is brute force: find the voxels without data with numpy on the whole array, take
them out of the mask, and run the plain extraction on what is left.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import bidsmask.regions._pass
from bidsmask.image import smooth_array
from bidsmask.regions import (
    LabelsSpec,
    MapsSpec,
    SpheresSpec,
    VoxelSpec,
    extract,
    extract_regions,
)

SHAPE = (8, 7, 6)
N_VOLUMES = 23


@pytest.fixture
def data():
    """A run whose voxels lack data in every way: all-NaN, constant zero, NaN or inf at some
    volumes (in the first volumes, and only late in the run), zero in the first volumes only
    (that one has data)."""
    rng = np.random.default_rng(17)
    values = rng.normal(100, 10, (*SHAPE, N_VOLUMES)).astype(np.float32)
    values[0:2] = np.nan  # a slab: region 3 wholly, region 1 partly
    values[2, 0:3, :] = 0  # constant zero: region 4 wholly, region 2 partly
    values[4, 4, 4, 0] = np.nan  # non-finite in the first volume
    values[5, 5, 5, 20] = np.inf  # non-finite only late: its earlier values were summed
    values[6, 2, 3, 15:] = np.nan
    values[3, 3, 3, :10] = 0  # zero only in the first volumes: has data
    return values


@pytest.fixture
def labels():
    out = np.zeros(SHAPE, dtype=np.int32)
    out[0:1] = 3  # all NaN
    out[1:4, :, 0:3] = 1  # partly NaN (x=1), partly zero (x=2, y<3)
    out[2, 0:3, 3:] = 4  # constant zero
    out[3:, :, 3:] = 2
    out[4:, 4:, :3] = 5
    return out


@pytest.fixture
def mask():
    out = np.ones(SHAPE, dtype=bool)
    out[7, 6] = False
    return out


def _has_data(values: np.ndarray) -> np.ndarray:
    return np.isfinite(values).all(axis=3) & (values != 0).any(axis=3)


def _maps(labels):
    rng = np.random.default_rng(3)
    maps = np.stack([labels == k for k in (1, 2, 3, 5)], axis=3).astype(np.float32)
    maps *= rng.uniform(0.2, 1.0, maps.shape).astype(np.float32)
    maps[..., 1] += 0.3 * (labels == 1)  # overlapping maps
    return maps


@pytest.fixture(params=[1, 2**26], ids=["batches", "one-batch"])
def reduce_bytes(request, monkeypatch):
    monkeypatch.setattr(bidsmask.regions._pass, "_REDUCE_BYTES", request.param)
    return request.param


@pytest.mark.parametrize("strategy", ["mean", "sum", "variance", "standard_deviation"])
def test_labels_leave_out_voxels_without_data(data, labels, mask, strategy, reduce_bytes):
    img = nib.Nifti1Image(data, np.eye(4))
    spec = LabelsSpec(labels, mask, strategy=strategy)
    got = extract_regions(img, [spec], chunk_volumes=3)
    valid = _has_data(data)
    reference = LabelsSpec(labels, mask & valid, strategy=strategy, keep_masked_labels=True)
    (expected,) = extract(nib.Nifti1Image(np.nan_to_num(data), np.eye(4)), [reference])
    assert_array_equal(reference.region_ids, spec.region_ids)
    with_data = reference.voxel_counts > 0
    assert_array_equal(spec.region_ids[~with_data], [3, 4])
    assert np.isnan(got.signals[0][:, ~with_data]).all()
    assert_allclose(got.signals[0][:, with_data], expected[:, with_data], rtol=2e-5, atol=1e-3)
    # hand counts: voxels inside the mask with data over the region's voxels
    sizes = np.array([np.sum(labels == r) for r in spec.region_ids])
    counts = np.array([np.sum((labels == r) & mask & valid) for r in spec.region_ids])
    assert_array_equal(got.voxel_counts[0], counts)
    assert_allclose(got.coverage[0], counts / sizes)
    assert_array_equal(got.missing_voxels, np.flatnonzero((labels > 0) & mask & ~valid))
    non_finite = ~np.isfinite(data).all(axis=3)
    assert_array_equal(got.non_finite_voxels, np.flatnonzero((labels > 0) & mask & non_finite))


def test_maps_and_spheres_leave_out_voxels_without_data(data, labels, mask, reduce_bytes):
    img = nib.Nifti1Image(data, np.eye(4))
    maps = _maps(labels)
    seeds = [[0.0, 3.0, 3.0], [2.0, 1.0, 4.0], [5.0, 5.0, 5.0], [4.0, 1.0, 1.0]]
    specs = [MapsSpec(maps, mask), SpheresSpec(seeds, np.eye(4), SHAPE, 1.5, mask)]
    got = extract_regions(img, specs, chunk_volumes=4)
    valid = _has_data(data)
    clean = nib.Nifti1Image(np.nan_to_num(data), np.eye(4))
    reference = MapsSpec(maps, mask & valid, keep_masked_maps=True)
    (expected,) = extract(clean, [reference])
    # map 2 (label 3) has no voxel with data
    assert np.isnan(got.signals[0][:, 2]).all()
    keep = [0, 1, 3]
    assert_allclose(got.signals[0][:, keep], expected[:, keep], rtol=1e-4, atol=1e-3)
    # maps' coverage: the share of each map's weight on voxels inside the mask with data
    weight = np.abs(maps)
    inside = np.array([weight[..., k][mask & valid].sum() for k in range(4)])
    assert_allclose(got.coverage[0], inside / weight.sum(axis=(0, 1, 2)))
    # spheres: the mean over members with data; sphere 0 lies wholly in the NaN slab
    for i, members in enumerate(specs[1].membership.toarray().astype(bool)):
        voxels = specs[1].voxels[members]
        voxels = voxels[valid.ravel()[voxels]]
        if voxels.size == 0:
            assert i == 0 and np.isnan(got.signals[1][:, 0]).all()
            continue
        series = data.reshape(-1, N_VOLUMES)[voxels]
        assert_allclose(got.signals[1][:, i], series.mean(axis=0), rtol=1e-5)
    assert got.coverage[1][0] == 0 and (got.coverage[1][1:] > 0).all()


def test_smoothed_run_judges_data_before_smoothing(data, labels, mask, reduce_bytes):
    img = nib.Nifti1Image(data, np.eye(4))
    spec = LabelsSpec(labels, mask)
    got = extract_regions(img, [spec, MapsSpec(_maps(labels), mask)], smoothing_fwhm=3.0)
    valid = _has_data(data)
    smoothed = smooth_array(data.copy(), np.eye(4), fwhm=3.0, ensure_finite=True)
    reference = LabelsSpec(labels, mask & valid, keep_masked_labels=True)
    (expected,) = extract(nib.Nifti1Image(smoothed, np.eye(4)), [reference])
    with_data = reference.voxel_counts > 0
    assert_allclose(got.signals[0][:, with_data], expected[:, with_data], rtol=1e-5, atol=1e-3)
    assert np.isnan(got.signals[0][:, ~with_data]).all()
    assert_array_equal(got.missing_voxels, np.flatnonzero((labels > 0) & mask & ~valid))
    maps = MapsSpec(_maps(labels), mask & valid, keep_masked_maps=True)
    (expected,) = extract(nib.Nifti1Image(smoothed, np.eye(4)), [maps])
    assert_allclose(got.signals[1][:, [0, 1, 3]], expected[:, [0, 1, 3]], rtol=1e-4, atol=1e-3)


def test_voxels_and_nilearn_mode(data, labels, mask):
    img = nib.Nifti1Image(data, np.eye(4))
    specs = [LabelsSpec(labels, mask, strategy="median"), VoxelSpec(mask)]
    plain = extract_regions(img, specs, exclude_missing=False)
    for got, ref in zip(plain.signals, extract(img, specs), strict=True):
        assert_array_equal(got, ref)
    valid = _has_data(data)
    assert_array_equal(plain.coverage[1], valid[mask].astype(float))
    with pytest.raises(ValueError, match="strategy 'median'"):
        extract_regions(img, specs)
    (voxels,) = extract_regions(img, specs[1:]).signals
    assert np.isnan(voxels[:, ~valid[mask]]).all()
    assert_array_equal(voxels[:, valid[mask]], data[mask & valid].T)


def test_every_voxel_with_data_changes_nothing(labels, mask):
    rng = np.random.default_rng(0)
    values = rng.normal(size=(*SHAPE, 9)).astype(np.float32)
    img = nib.Nifti1Image(values, np.eye(4))
    specs = [LabelsSpec(labels, mask), MapsSpec(_maps(labels), mask)]
    got = extract_regions(img, specs)
    for a, b in zip(got.signals, extract(img, specs), strict=True):
        assert_array_equal(a, b)
    assert got.missing_voxels.size == 0
    assert_array_equal(got.coverage[0], specs[0].coverage)


def test_float64_run_leaves_out_voxels_without_data(data, labels, mask):
    values = data.astype(np.float64) + np.linspace(0, 1e-3, data.size).reshape(data.shape)
    img = nib.Nifti1Image(values, np.eye(4))
    spec = LabelsSpec(labels, mask)
    (got,) = extract_regions(img, [spec], chunk_volumes=3).signals
    reference = LabelsSpec(labels, mask & _has_data(values), keep_masked_labels=True)
    (expected,) = extract(nib.Nifti1Image(np.nan_to_num(values), np.eye(4)), [reference])
    with_data = reference.voxel_counts > 0
    assert np.isnan(got[:, ~with_data]).all()
    assert_allclose(got[:, with_data], expected[:, with_data], rtol=1e-6)
