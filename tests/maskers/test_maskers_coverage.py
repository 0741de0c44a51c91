"""Maskers' region_coverage_ after fit_transform counts voxels with data (issue 17).

A voxel has data when it is finite at every volume and not constant zero; the signals keep
nilearn's numbers (non-finite values count as 0).
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from bidsmask.maskers import NiftiLabelsMasker, NiftiMapsMasker, NiftiSpheresMasker

SHAPE = (7, 6, 5)


@pytest.fixture
def run():
    rng = np.random.default_rng(5)
    values = rng.normal(50, 5, (*SHAPE, 12)).astype(np.float32)
    values[0:2] = np.nan  # region 1 wholly
    values[2, :3] = 0  # half of region 2
    values[5, 5, 4, 7] = np.inf  # one voxel of region 3, at one volume
    return nib.Nifti1Image(values, np.eye(4))


@pytest.fixture
def labels():
    out = np.zeros(SHAPE, dtype=np.int32)
    out[0:2] = 1
    out[2:4] = 2
    out[4:] = 3
    return out


def _has_data(img) -> np.ndarray:
    values = np.asarray(img.dataobj)
    return np.isfinite(values).all(axis=3) & (values != 0).any(axis=3)


def test_labels_and_maps_coverage_by_data(run, labels):
    has_data = _has_data(run)
    mask = np.ones(SHAPE, dtype=np.uint8)
    mask[6, 5] = 0
    mask_img = nib.Nifti1Image(mask, np.eye(4))
    inside = mask.astype(bool)
    hand = [np.sum((labels == k) & inside & has_data) / np.sum(labels == k) for k in (1, 2, 3)]
    by_mask = [np.sum((labels == k) & inside) / np.sum(labels == k) for k in (1, 2, 3)]

    masker = NiftiLabelsMasker(nib.Nifti1Image(labels, np.eye(4)), mask_img=mask_img)
    assert_allclose(masker.fit(run).region_coverage_, by_mask)
    fitted = masker.transform(run)
    signals = masker.fit_transform(run)
    assert_allclose(masker.region_coverage_, hand)
    assert hand[0] == 0 and hand[1] == pytest.approx(0.75) and hand[2] < by_mask[2]
    assert_array_equal(signals, fitted)  # the signals are nilearn's, whatever the coverage

    maps = np.stack([labels == k for k in (1, 2, 3)], axis=3).astype(np.float32)
    maps_masker = NiftiMapsMasker(nib.Nifti1Image(maps, np.eye(4)), mask_img=mask_img)
    maps_masker.fit_transform(run)
    assert_allclose(maps_masker.region_coverage_, hand)


def test_spheres_coverage_by_data(run):
    seeds = [(0.0, 2.0, 2.0), (2.0, 1.0, 2.0), (5.0, 4.0, 2.0)]
    masker = NiftiSpheresMasker(seeds, radius=1.0)
    masker.fit_transform(run)
    has_data = _has_data(run)
    xyz = np.indices(SHAPE).reshape(3, -1).T
    hand = []
    for seed in seeds:
        ball = (np.linalg.norm(xyz - np.array(seed), axis=1) <= 1.0).reshape(SHAPE)
        hand.append(np.sum(ball & has_data) / np.sum(ball))
    assert_allclose(masker.region_coverage_, hand)
    assert hand[0] == 0 and 0 < hand[1] < 1
