"""NiftiSpheresMasker: parity with nilearn 0.14 (radius, mask, overlap, cleaning, inverse)."""

import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from bidsmask.maskers import NiftiSpheresMasker

EXAMPLE4D = Path(nib.__file__).parent / "tests" / "data" / "example4d.nii.gz"
SHAPE = (14, 15, 13)
T = 40
AFFINE = np.array([[3.0, 0, 0, -20], [0, 3, 0, -22], [0, 0, 3, -18], [0, 0, 0, 1]])
MASK_AFFINE = np.array([[2.0, 0, 0, -21], [0, 2, 0, -23], [0, 0, 2, -19], [0, 0, 0, 1]])
SEEDS = [(-5.0, -4.0, 2.0), (7.5, 6.0, -3.0), (1.0, 12.0, 6.5), (-9.0, 9.0, -6.0)]
CLEAN = {"detrend": True, "standardize": "zscore_sample", "t_r": 2.0, "high_pass": 0.01}


@pytest.fixture(scope="module")
def run():
    rng = np.random.default_rng(9)
    data = 100 + 5 * rng.standard_normal((*SHAPE, T)).astype(np.float32)
    mask = np.zeros(SHAPE, dtype=np.uint8)
    mask[2:12, 2:13, 1:11] = 1
    other = np.zeros((20, 22, 19), dtype=np.uint8)
    other[3:17, 3:19, 2:16] = 1
    return {
        "img": nib.Nifti1Image(data, AFFINE),
        "mask": nib.Nifti1Image(mask, AFFINE),
        "mask_other_grid": nib.Nifti1Image(other, MASK_AFFINE),
        "confounds": rng.standard_normal((T, 3)),
    }


def _both(imgs, transform_kwargs=None, **kwargs):
    from nilearn.maskers import NiftiSpheresMasker as Reference

    transform_kwargs = transform_kwargs or {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = NiftiSpheresMasker(**kwargs)
        ref = Reference(**kwargs)
        out = ours.fit_transform(imgs, **transform_kwargs)
        expected = ref.fit_transform(imgs, **transform_kwargs)
    return ours, ref, out, expected


@pytest.mark.parametrize("radius", [None, 3.0, 5.0])
@pytest.mark.parametrize("mask_key", [None, "mask", "mask_other_grid"])
def test_matches_nilearn(run, radius, mask_key):
    mask = None if mask_key is None else run[mask_key]
    ours, ref, out, expected = _both(
        run["img"],
        transform_kwargs={"confounds": run["confounds"]},
        seeds=SEEDS,
        radius=radius,
        mask_img=mask,
        **CLEAN,
    )
    assert_allclose(out, expected, rtol=1e-3, atol=1e-3)
    assert ours.seeds_ == ref.seeds_
    assert ours.n_elements_ == ref.n_elements_ == len(SEEDS)


@pytest.mark.parametrize(
    "kwargs", [{}, {**CLEAN, "smoothing_fwhm": 6.0}, {**CLEAN, "high_variance_confounds": True}]
)
def test_overlapping_spheres_match_nilearn(run, kwargs):
    _, _, out, expected = _both(
        run["img"], seeds=SEEDS, radius=10.0, allow_overlap=True, mask_img=run["mask"], **kwargs
    )
    assert_allclose(out, expected, rtol=1e-3, atol=1e-3)
    with pytest.raises(ValueError, match="Overlap detected"):
        NiftiSpheresMasker(SEEDS, radius=10.0).fit_transform(run["img"])


def test_sample_mask_matches_nilearn(run):
    keep = np.setdiff1d(np.arange(T), [1, 8, 25])
    _, _, out, expected = _both(
        run["img"],
        transform_kwargs={"confounds": run["confounds"], "sample_mask": keep},
        seeds=SEEDS,
        radius=4.0,
        detrend=True,
        standardize="zscore_sample",
    )
    assert_allclose(out, expected, rtol=1e-3, atol=1e-3)


def test_real_example4d_oblique_int16():
    """nibabel's example4d (oblique affine, int16): same spheres, but means not truncated."""
    img = nib.load(EXAMPLE4D)
    seeds = [(-10.0, 30.0, 10.0), (60.0, 40.0, 0.0), (-60.0, 70.0, 20.0)]
    ours, _, out, expected = _both(img, seeds=seeds, radius=8.0)
    spec = ours._spec(img)
    data = np.asarray(img.dataobj).reshape(-1, img.shape[3])[spec.voxels].astype(np.float64)
    exact = np.stack([data[m].mean(axis=0) for m in spec.membership.tolil().rows], axis=1)
    assert_allclose(out, exact, rtol=1e-6)
    # nilearn 0.14 truncates the means of integer images toward zero
    assert_array_equal(expected, np.trunc(exact))
    assert np.abs(out - expected).max() > 0.01


def test_voxel_counts_and_coverage(run):
    masker = NiftiSpheresMasker(SEEDS, radius=5.0, mask_img=run["mask"]).fit()
    full = NiftiSpheresMasker(SEEDS, radius=5.0).fit(run["img"])
    assert_allclose(
        masker.region_coverage_, masker.region_voxel_counts_ / full.region_voxel_counts_
    )
    assert np.all(masker.region_coverage_ <= 1)
    unknown = NiftiSpheresMasker(SEEDS, radius=5.0).fit()
    assert unknown.region_voxel_counts_ is None


@pytest.mark.parametrize("allow_overlap", [False, True])
def test_inverse_transform_matches_nilearn(run, allow_overlap):
    radius = 10.0 if allow_overlap else 4.0
    ours, ref, signals, _ = _both(
        run["img"], seeds=SEEDS, radius=radius, mask_img=run["mask"], allow_overlap=allow_overlap
    )
    back = ours.inverse_transform(signals)
    assert_allclose(back.get_fdata(), ref.inverse_transform(signals).get_fdata(), rtol=1e-5)
    one = ours.inverse_transform(signals[0])
    assert one.shape == SHAPE
    if not allow_overlap:  # disjoint spheres: painting then averaging gives the signals back
        assert_allclose(ours.transform(back), signals, rtol=1e-5)
    with pytest.raises(ValueError, match="mask_img"):
        NiftiSpheresMasker(SEEDS, radius=4.0).fit(run["img"]).inverse_transform(signals)


def test_3d_input_and_errors(run):
    vol = nib.Nifti1Image(np.asarray(run["img"].dataobj)[..., 0], AFFINE)
    out = NiftiSpheresMasker(SEEDS, radius=4.0).fit_transform(vol)
    assert out.shape == (len(SEEDS),)
    with pytest.raises(ValueError, match="Seed #1 is of length 2"):
        NiftiSpheresMasker([(0, 0, 0), (1, 2)]).fit()
    with pytest.raises(ValueError, match="Given seed list"):
        NiftiSpheresMasker(5).fit()
    with pytest.raises(ValueError, match="empty"):
        NiftiSpheresMasker([(500.0, 0, 0)], radius=2.0).fit_transform(run["img"])


def test_empty_or_overlapping_spheres_fit_but_do_not_extract(run):
    """As nilearn: fit accepts them; transform and inverse_transform raise."""
    from nilearn.maskers import NiftiSpheresMasker as Reference

    mask = run["mask"]
    for kwargs, match in [
        ({"seeds": [(500.0, 0, 0)], "radius": 2.0}, "These spheres are empty"),
        ({"seeds": SEEDS, "radius": 10.0}, "Overlap detected"),
    ]:
        ours = NiftiSpheresMasker(mask_img=mask, **kwargs).fit()
        ref = Reference(mask_img=mask, **kwargs).fit()
        assert ours.n_elements_ == ref.n_elements_
        for masker in (ours, ref):
            with pytest.raises(ValueError, match=match):
                masker.transform(run["img"])
            with pytest.raises(ValueError, match=match):
                masker.inverse_transform(np.ones(len(kwargs["seeds"])))


def test_float64_sphere_means_equal_nilearn_exactly():
    from nilearn.maskers import NiftiSpheresMasker as Reference

    rng = np.random.default_rng(3)
    data = rng.random((4, 5, 6, 7))  # float64
    affine = np.diag([2.0, 1.0, 2.0, 1.0])
    img = nib.Nifti1Image(data, affine)
    seeds = [(2.0, 2.0, 4.0), (4.0, 1.0, 8.0)]
    ours = NiftiSpheresMasker(seeds, radius=2.0).fit_transform(img)
    expected = Reference(seeds, radius=2.0, standardize=None).fit_transform(img)
    assert ours.dtype == expected.dtype == np.float64
    assert_array_equal(ours, expected)
    # float32 data stays float32
    img32 = nib.Nifti1Image(data.astype(np.float32), affine)
    assert NiftiSpheresMasker(seeds, radius=2.0).fit_transform(img32).dtype == np.float32
