"""NiftiMasker: parity with nilearn 0.14, streaming behaviour, errors and inverse_transform."""

import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from bidsmask.maskers import NiftiMasker, NotFittedError

EXAMPLE4D = Path(nib.__file__).parent / "tests" / "data" / "example4d.nii.gz"
SHAPE = (14, 15, 13)
T = 40
AFFINE = np.array([[3.0, 0, 0, -20], [0, 3, 0, -22], [0, 0, 3, -18], [0, 0, 0, 1]])
CLEAN = {"detrend": True, "standardize": "zscore_sample", "t_r": 2.0, "high_pass": 0.01}


def _brain(rng, n=T):
    """A blob-shaped 'brain' with signal inside and low noise outside."""
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in SHAPE], indexing="ij"), axis=-1)
    inside = np.sum(((grid - np.array(SHAPE) / 2) / (np.array(SHAPE) / 2.6)) ** 2, -1) < 1
    data = rng.standard_normal((*SHAPE, n)).astype(np.float32)
    data[inside] += 500
    return data, inside


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    rng = np.random.default_rng(1)
    data, inside = _brain(rng)
    path = tmp_path_factory.mktemp("nifti") / "bold.nii.gz"
    nib.save(nib.Nifti1Image(data, AFFINE), path)
    mask = np.zeros(SHAPE, dtype=np.uint8)
    mask[3:11, 2:12, 3:10] = 1
    return {
        "path": path,
        "img": nib.Nifti1Image(data, AFFINE),
        "mask": nib.Nifti1Image(mask, AFFINE),
        "confounds": rng.standard_normal((T, 3)),
    }


def _nilearn(**kwargs):
    from nilearn.maskers import NiftiMasker as Reference

    return Reference(**kwargs)


def _both(run, imgs=None, fit_kwargs=None, **kwargs):
    imgs = run["path"] if imgs is None else imgs
    fit_kwargs = fit_kwargs or {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = NiftiMasker(**kwargs).fit_transform(imgs, **fit_kwargs)
        ref = _nilearn(**kwargs).fit_transform(imgs, **fit_kwargs)
    return ours, ref


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        CLEAN,
        {**CLEAN, "smoothing_fwhm": 6.0},
        {**CLEAN, "low_pass": 0.2, "high_pass": 0.02, "standardize": "psc"},
        {"standardize": "psc"},
        {**CLEAN, "high_variance_confounds": True},
    ],
)
def test_parity(run, kwargs):
    ours, ref = _both(run, mask_img=run["mask"], **kwargs)
    assert ours.dtype == np.float32
    assert_allclose(ours, ref, rtol=1e-3, atol=1e-3)


def test_parity_computed_mask(run):
    ours, ref = _both(run, **CLEAN)
    assert ours.dtype == np.float32
    assert_allclose(ours, ref, rtol=1e-3, atol=1e-3)


def test_parity_confounds_and_sample_mask(run):
    keep = np.setdiff1d(np.arange(T), [0, 1, 7, 20])
    kwargs = {"mask_img": run["mask"], "detrend": True, "standardize": "zscore_sample"}
    ours, ref = _both(
        run, fit_kwargs={"confounds": run["confounds"], "sample_mask": keep}, **kwargs
    )
    assert ours.shape == (keep.size, int(np.asarray(run["mask"].dataobj).sum()))
    assert_allclose(ours, ref, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize(
    "strategy", ["background", "epi", "whole-brain-template", "gm-template", "wm-template"]
)
def test_mask_strategies_match_nilearn(run, strategy):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = NiftiMasker(mask_strategy=strategy).fit(run["img"])
        ref = _nilearn(mask_strategy=strategy).fit(run["img"])
    assert_array_equal(
        np.asarray(ours.mask_img_.dataobj).astype(bool), ref.mask_img_.get_fdata().astype(bool)
    )
    assert ours.n_elements_ == ref.n_elements_


def test_fit_and_transform_list_of_3d(run):
    vols = [nib.Nifti1Image(np.asarray(run["img"].dataobj)[..., i], AFFINE) for i in range(8)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = NiftiMasker(mask_strategy="epi").fit(vols)
        ref = _nilearn(mask_strategy="epi").fit(vols)
        assert_allclose(ours.transform(vols), ref.transform(vols), rtol=1e-6)
    assert ours.n_elements_ == ref.n_elements_


def test_target_grid_resampling(run):
    target = np.diag([2.0, 2.0, 2.0, 1.0])
    target[:3, 3] = [-21, -23, -19]
    # no standardization: voxels at the edge of the field of view are ~0 after resampling, and
    # z-scoring such near-constant series only amplifies float32 rounding. The smoothing checks
    # that the data are resampled onto the mask's bounding box, as nilearn does.
    kwargs = {
        "detrend": True,
        "smoothing_fwhm": 5.0,
        "mask_img": run["mask"],
        "target_affine": target,
        "target_shape": (20, 22, 19),
    }
    ours, ref = _both(run, **kwargs)
    assert_allclose(ours, ref, rtol=1e-3, atol=1e-3)
    masker = NiftiMasker(**kwargs).fit()
    assert_array_equal(masker.affine_, target)
    assert masker.mask_img_.shape == (20, 22, 19)


def test_real_example4d_int16():
    """nibabel's example4d: an oblique int16 image with a computed mask."""
    ours, ref = _both({"path": EXAMPLE4D}, detrend=False)
    assert_allclose(ours, ref, rtol=1e-3, atol=1e-2)
    ours, ref = _both({"path": EXAMPLE4D}, smoothing_fwhm=4.0, dtype="auto")
    assert_allclose(ours, ref, rtol=1e-3, atol=1e-2)


def test_3d_image_gives_1d_and_lists_of_3d(run):
    masker = NiftiMasker(run["mask"]).fit()
    vol = nib.Nifti1Image(np.asarray(run["img"].dataobj)[..., 0], AFFINE)
    one = masker.transform(vol)
    assert one.shape == (masker.n_elements_,)
    many = masker.transform([vol, vol, vol])
    assert many.shape == (3, masker.n_elements_)
    assert_array_equal(many[1], one)


def test_inverse_transform_round_trip(run):
    masker = NiftiMasker(run["mask"]).fit()
    signals = masker.transform(run["img"])
    back = masker.inverse_transform(signals)
    assert back.shape == (*SHAPE, T)
    mask = np.asarray(run["mask"].dataobj).astype(bool)
    assert_allclose(
        np.asarray(back.dataobj)[mask], np.asarray(run["img"].dataobj)[mask], rtol=1e-6, atol=1e-6
    )
    assert_allclose(masker.transform(back), signals, rtol=1e-6, atol=1e-6)
    assert masker.inverse_transform(signals[0]).shape == SHAPE
    with pytest.raises(ValueError, match="wrong shape"):
        masker.inverse_transform(signals[:, :3])


def test_transform_does_not_change_the_masker(run):
    masker = NiftiMasker(run["mask"], detrend=True).fit()
    before = dict(vars(masker))
    masker.transform(run["path"], confounds=run["confounds"])
    assert vars(masker).keys() == before.keys()
    for key, value in before.items():
        assert vars(masker)[key] is value


def test_errors(run):
    with pytest.raises(NotFittedError, match="not fitted"):
        NiftiMasker(run["mask"]).transform(run["img"])
    with pytest.raises(ValueError, match="must be provided"):
        NiftiMasker().fit()
    with pytest.raises(ValueError, match="mask_strategy"):
        NiftiMasker(mask_strategy="oops").fit(run["img"])
    with pytest.raises(ValueError, match="'standardize' must be one of"):
        NiftiMasker(run["mask"], standardize="max").fit()
    with pytest.raises(TypeError, match="'imgs' must be"):
        NiftiMasker(run["mask"]).fit().transform(np.zeros((3, 3, 3)))
    with pytest.warns(RuntimeWarning, match="Given mask will be used"):
        NiftiMasker(run["mask"]).fit(run["img"])
    with pytest.warns(UserWarning, match="not supported"):
        NiftiMasker(mask_args={"nonsense": 1}).fit(run["img"])
