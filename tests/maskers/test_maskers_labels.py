"""NiftiLabelsMasker: parity with nilearn 0.14 (strategies, mask, cleaning, resampling targets)."""

import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from bidsmask.maskers import NiftiLabelsMasker
from bidsmask.regions import LABEL_STRATEGIES

SHAPE = (14, 15, 13)
T = 40
AFFINE = np.array([[3.0, 0, 0, -20], [0, 3, 0, -22], [0, 0, 3, -18], [0, 0, 0, 1]])
# an atlas on a finer, shifted grid (atlas grid != data grid)
ATLAS_AFFINE = np.array([[2.0, 0, 0, -21], [0, 2, 0, -23], [0, 0, 2, -19], [0, 0, 0, 1]])
ATLAS_SHAPE = (20, 22, 19)
CLEAN = {"detrend": True, "standardize": "zscore_sample", "t_r": 2.0, "high_pass": 0.01}


def _blocks(shape, size):
    """Labels 1..n as blocks of ``size`` voxels, background on the border."""
    grid = np.indices(shape)
    labels = 1 + (grid[0] // size) * 100 + (grid[1] // size) * 10 + grid[2] // size
    labels[[0, -1]] = 0
    labels[:, [0, -1]] = 0
    return labels.astype(np.int32)


@pytest.fixture(scope="module")
def run():
    rng = np.random.default_rng(3)
    data = 100 + 5 * rng.standard_normal((*SHAPE, T)).astype(np.float32)
    mask = np.zeros(SHAPE, dtype=np.uint8)
    mask[1:12, 2:14, 1:11] = 1
    return {
        "img": nib.Nifti1Image(data, AFFINE),
        "labels": nib.Nifti1Image(_blocks(SHAPE, 4), AFFINE),
        "atlas_other_grid": nib.Nifti1Image(_blocks(ATLAS_SHAPE, 6), ATLAS_AFFINE),
        "mask": nib.Nifti1Image(mask, AFFINE),
        "confounds": rng.standard_normal((T, 4)),
    }


def _both(imgs, transform_kwargs=None, **kwargs):
    from nilearn.maskers import NiftiLabelsMasker as Reference

    transform_kwargs = transform_kwargs or {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = NiftiLabelsMasker(**kwargs)
        ref = Reference(**kwargs)
        out = ours.fit_transform(imgs, **transform_kwargs)
        expected = ref.fit_transform(imgs, **transform_kwargs)
    return ours, ref, out, expected


@pytest.mark.parametrize("strategy", LABEL_STRATEGIES)
@pytest.mark.parametrize("with_mask", [False, True])
def test_strategies_match_nilearn(run, strategy, with_mask):
    mask = run["mask"] if with_mask else None
    ours, ref, out, expected = _both(
        run["img"], labels_img=run["labels"], mask_img=mask, strategy=strategy
    )
    assert out.shape == expected.shape
    assert_allclose(out, expected, rtol=1e-3, atol=1e-3)
    assert ours.region_ids_ == ref.region_ids_
    assert ours.region_names_ == ref.region_names_
    assert ours.n_elements_ == ref.n_elements_


@pytest.mark.parametrize(
    "kwargs",
    [
        CLEAN,
        {**CLEAN, "smoothing_fwhm": 5.0},
        {**CLEAN, "low_pass": 0.2, "high_pass": 0.02},
        {**CLEAN, "high_variance_confounds": True},
        {**CLEAN, "high_variance_confounds": True, "smoothing_fwhm": 5.0},
        {"standardize": "psc"},
    ],
)
def test_cleaning_matches_nilearn(run, kwargs):
    _, _, out, expected = _both(
        run["img"],
        transform_kwargs={"confounds": run["confounds"]},
        labels_img=run["labels"],
        mask_img=run["mask"],
        **kwargs,
    )
    assert_allclose(out, expected, rtol=1e-3, atol=1e-3)


def test_sample_mask_matches_nilearn(run):
    keep = np.setdiff1d(np.arange(T), [0, 3, 17, 30])
    _, _, out, expected = _both(
        run["img"],
        transform_kwargs={"confounds": run["confounds"], "sample_mask": keep},
        labels_img=run["labels"],
        detrend=True,
        standardize="zscore_sample",
    )
    assert out.shape == (keep.size, expected.shape[1])
    assert_allclose(out, expected, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("target", ["data", "labels"])
@pytest.mark.parametrize("with_mask", [False, True])
def test_resampling_targets_match_nilearn(run, target, with_mask):
    mask = run["mask"] if with_mask else None
    ours, ref, out, expected = _both(
        run["img"],
        labels_img=run["atlas_other_grid"],
        mask_img=mask,
        resampling_target=target,
        detrend=True,
    )
    assert_allclose(out, expected, rtol=1e-3, atol=1e-3)
    assert ours.labels_img_.shape == ref.labels_img_.shape
    assert_array_equal(np.asarray(ours.labels_img_.dataobj), ref.labels_img_.get_fdata())


def test_resampling_target_none_requires_same_grid(run):
    masker = NiftiLabelsMasker(run["atlas_other_grid"], resampling_target=None)
    with pytest.raises(ValueError, match="field of view"):
        masker.fit(run["img"])
    out = NiftiLabelsMasker(run["labels"], resampling_target=None).fit_transform(run["img"])
    assert out.shape == (T, np.unique(_blocks(SHAPE, 4)).size - 1)


def test_labels_names_and_lut(run):
    ids = np.unique(_blocks(SHAPE, 4))
    names = [f"region{i}" for i in ids[1:]]
    _, ref, out, expected = _both(run["img"], labels_img=run["labels"], labels=names)
    masker = NiftiLabelsMasker(run["labels"], labels=names).fit()
    assert masker.region_names_ == ref.region_names_
    assert list(masker.get_feature_names_out()) == names
    lut = pd.DataFrame({"index": ids, "name": ["Background", *names]})
    with_lut = NiftiLabelsMasker(run["labels"], lut=lut).fit()
    assert with_lut.region_names_ == masker.region_names_
    assert with_lut.region_ids_["background"] == 0
    with pytest.raises(ValueError, match="not both"):
        NiftiLabelsMasker(run["labels"], labels=names, lut=lut).fit()


def test_coverage_and_region_atlas(run):
    labels = _blocks(SHAPE, 4)
    mask = np.asarray(run["mask"].dataobj).astype(bool)
    masker = NiftiLabelsMasker(run["labels"], mask_img=run["mask"]).fit(run["img"])
    ids = [masker.region_ids_[i] for i in range(masker.n_elements_)]
    for i, rid in enumerate(ids):
        inside = np.sum((labels == rid) & mask)
        assert masker.region_voxel_counts_[i] == inside
        assert masker.region_coverage_[i] == pytest.approx(inside / np.sum(labels == rid))
    atlas = np.asarray(masker.region_atlas_.dataobj)
    assert_array_equal(atlas[~mask], 0)
    assert_array_equal(atlas[mask], labels[mask])


def test_3d_and_inverse_transform_round_trip(run):
    masker = NiftiLabelsMasker(run["labels"], mask_img=run["mask"]).fit()
    signals = masker.transform(run["img"])
    back = masker.inverse_transform(signals)
    assert back.shape == (*SHAPE, T)
    assert_allclose(masker.transform(back), signals, rtol=1e-5)
    vol = nib.Nifti1Image(np.asarray(run["img"].dataobj)[..., 5], AFFINE)
    one = masker.transform(vol)
    assert one.shape == (masker.n_elements_,)
    assert_allclose(one, signals[5], rtol=1e-6)
    from nilearn.maskers import NiftiLabelsMasker as Reference

    ref = Reference(run["labels"], mask_img=run["mask"])
    ref.fit_transform(run["img"])  # nilearn fixes its regions during transform
    assert_allclose(
        np.asarray(masker.inverse_transform(one).dataobj), ref.inverse_transform(one).get_fdata()
    )


def test_errors(run):
    with pytest.raises(ValueError, match="'strategy' must be one of"):
        NiftiLabelsMasker(run["labels"], strategy="mode").fit()
    with pytest.raises(ValueError, match="'resampling_target' must be one of"):
        NiftiLabelsMasker(run["labels"], resampling_target="mask").fit()
    with pytest.raises(ValueError, match="no label"):
        NiftiLabelsMasker(nib.Nifti1Image(np.zeros(SHAPE), AFFINE)).fit()
    with pytest.raises(TypeError, match="labels_img"):
        NiftiLabelsMasker().fit()
    with pytest.raises(ValueError, match="not fitted"):
        NiftiLabelsMasker(run["labels"]).transform(run["img"])


@pytest.mark.parametrize("strategy", ["mean", "sum", "variance", "standard_deviation", "median"])
def test_float64_reductions_equal_nilearn_exactly(strategy):
    from nilearn.maskers import NiftiLabelsMasker as Reference

    rng = np.random.default_rng(4)
    img = nib.Nifti1Image(rng.standard_normal((4, 5, 3, 6)), np.eye(4))  # float64
    labels = nib.Nifti1Image((np.arange(60).reshape(4, 5, 3) % 3).astype(np.int16), np.eye(4))
    ours = NiftiLabelsMasker(labels, strategy=strategy).fit_transform(img)
    expected = Reference(labels, strategy=strategy, standardize=None).fit_transform(img)
    assert ours.dtype == np.float64
    assert_allclose(ours, expected, rtol=1e-13, atol=1e-14)
