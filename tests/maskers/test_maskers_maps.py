"""NiftiMapsMasker: parity with nilearn 0.14 (mask, cleaning, resampling targets, overlap)."""

import warnings

import nibabel as nib
import numpy as np
import pytest
from numpy.testing import assert_allclose

from bidsmask.image import resample_img
from bidsmask.maskers import NiftiMapsMasker

SHAPE = (14, 15, 13)
T = 40
AFFINE = np.array([[3.0, 0, 0, -20], [0, 3, 0, -22], [0, 0, 3, -18], [0, 0, 0, 1]])
MAPS_AFFINE = np.array([[2.0, 0, 0, -21], [0, 2, 0, -23], [0, 0, 2, -19], [0, 0, 0, 1]])
MAPS_SHAPE = (20, 22, 19)
CLEAN = {"detrend": True, "standardize": "zscore_sample", "t_r": 2.0, "high_pass": 0.01}


def _blobs(shape, affine, n, rng, width=6.0):
    """Overlapping Gaussian maps (DiFuMo-like), zero below 5 % of their peak."""
    grid = np.indices(shape).reshape(3, -1).T @ affine[:3, :3].T + affine[:3, 3]
    lo, hi = grid.min(axis=0) + 6, grid.max(axis=0) - 6
    centres = rng.uniform(lo, hi, size=(n, 3))
    maps = np.exp(-np.sum((grid[:, None] - centres) ** 2, axis=-1) / (2 * width**2))
    maps[maps < 0.05] = 0
    return maps.reshape(*shape, n).astype(np.float32)


@pytest.fixture(scope="module")
def run():
    rng = np.random.default_rng(5)
    data = 100 + 5 * rng.standard_normal((*SHAPE, T)).astype(np.float32)
    mask = np.zeros(SHAPE, dtype=np.uint8)
    mask[1:12, 2:14, 1:11] = 1
    return {
        "img": nib.Nifti1Image(data, AFFINE),
        "maps": nib.Nifti1Image(_blobs(SHAPE, AFFINE, 6, rng), AFFINE),
        "maps_other_grid": nib.Nifti1Image(_blobs(MAPS_SHAPE, MAPS_AFFINE, 5, rng), MAPS_AFFINE),
        "mask": nib.Nifti1Image(mask, AFFINE),
        "confounds": rng.standard_normal((T, 4)),
    }


def _both(imgs, transform_kwargs=None, **kwargs):
    from nilearn.maskers import NiftiMapsMasker as Reference

    transform_kwargs = transform_kwargs or {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = NiftiMapsMasker(**kwargs)
        ref = Reference(**kwargs)
        out = ours.fit_transform(imgs, **transform_kwargs)
        expected = ref.fit_transform(imgs, **transform_kwargs)
    return ours, ref, out, expected


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        CLEAN,
        {**CLEAN, "smoothing_fwhm": 5.0},
        {**CLEAN, "low_pass": 0.2},
        {**CLEAN, "high_variance_confounds": True},
        {**CLEAN, "high_variance_confounds": True, "smoothing_fwhm": 5.0},
    ],
)
@pytest.mark.parametrize("with_mask", [False, True])
def test_matches_nilearn(run, kwargs, with_mask):
    mask = run["mask"] if with_mask else None
    ours, ref, out, expected = _both(
        run["img"],
        transform_kwargs={"confounds": run["confounds"]},
        maps_img=run["maps"],
        mask_img=mask,
        **kwargs,
    )
    assert out.shape == expected.shape
    assert_allclose(out, expected, rtol=1e-3, atol=1e-3)
    assert ours.n_elements_ == ref.n_elements_


def test_sample_mask_matches_nilearn(run):
    keep = np.setdiff1d(np.arange(T), [2, 9, 33])
    _, _, out, expected = _both(
        run["img"],
        transform_kwargs={"sample_mask": keep, "confounds": run["confounds"]},
        maps_img=run["maps"],
        detrend=True,
        standardize="zscore_sample",
    )
    assert_allclose(out, expected, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("target", ["data", "mask", "maps"])
def test_resampling_targets_match_nilearn(run, target):
    ours, ref, out, expected = _both(
        run["img"],
        maps_img=run["maps_other_grid"],
        mask_img=run["mask"],
        resampling_target=target,
        detrend=True,
    )
    assert_allclose(out, expected, rtol=1e-3, atol=1e-3)
    assert_allclose(np.asarray(ours.maps_img_.dataobj), ref.maps_img_.get_fdata(), atol=1e-6)


def test_binary_maps_resample_without_warning(run):
    """Maps are always resampled linearly: binary maps get no 'binary image' warning (nilearn)."""
    binary = (np.asarray(run["maps_other_grid"].dataobj) > 0).astype(np.float32)
    maps = nib.Nifti1Image(binary, MAPS_AFFINE)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        signals = NiftiMapsMasker(maps, resampling_target="data").fit_transform(run["img"])
    assert signals.shape == (T, binary.shape[-1])
    with pytest.warns(UserWarning, match="Resampling binary images"):  # the library still warns
        resample_img(maps, target_affine=AFFINE, target_shape=SHAPE, interpolation="linear")


def test_resampling_errors(run):
    with pytest.raises(ValueError, match="no mask"):
        NiftiMapsMasker(run["maps"], resampling_target="mask").fit()
    with pytest.raises(ValueError, match="field of view"):
        NiftiMapsMasker(run["maps_other_grid"], resampling_target=None).fit(run["img"])
    with pytest.raises(ValueError, match="'resampling_target' must be one of"):
        NiftiMapsMasker(run["maps"], resampling_target="labels").fit()


def test_overlap_detection(run):
    masker = NiftiMapsMasker(run["maps"], allow_overlap=False).fit()
    with pytest.raises(ValueError, match="Overlap detected"):
        masker.transform(run["img"])


def test_masked_maps_dropped_and_coverage(run):
    maps = np.asarray(run["maps"].dataobj)
    mask = (maps[..., 0] > 0) & (maps[..., 1:].sum(axis=-1) == 0)
    mask_img = nib.Nifti1Image(mask.astype(np.uint8), AFFINE)
    _, _, out, expected = _both(run["img"], maps_img=run["maps"], mask_img=mask_img)
    assert out.shape == expected.shape == (T, 1)
    assert_allclose(out, expected, rtol=1e-3, atol=1e-3)
    masker = NiftiMapsMasker(run["maps"], mask_img=run["mask"]).fit()
    support = maps > 0
    inside = support & np.asarray(run["mask"].dataobj).astype(bool)[..., None]
    assert_allclose(masker.region_voxel_counts_, inside.sum(axis=(0, 1, 2)))
    weight = np.abs(maps.astype(np.float64))
    assert_allclose(
        masker.region_coverage_,
        (weight * inside).sum(axis=(0, 1, 2)) / weight.sum(axis=(0, 1, 2)),
    )


def test_inverse_transform_matches_nilearn(run):
    ours, ref, signals, _ = _both(run["img"], maps_img=run["maps"], mask_img=run["mask"])
    back = ours.inverse_transform(signals)
    assert back.shape == (*SHAPE, T)
    assert_allclose(back.get_fdata(), ref.inverse_transform(signals).get_fdata(), atol=1e-4)
    # least squares reproduces the signals of data that lie in the span of the maps
    assert_allclose(ours.transform(back), signals, rtol=1e-3, atol=1e-3)
    vol = nib.Nifti1Image(np.asarray(run["img"].dataobj)[..., 0], AFFINE)
    one = ours.transform(vol)
    assert one.shape == (ours.n_elements_,)
    assert ours.inverse_transform(one).shape == SHAPE


@pytest.mark.parametrize("where", [None, 0, 8, 19])
def test_any_weight_inside_equals_np_any_over_all_maps(where):
    from bidsmask.maskers.maps import _any_weight_inside

    maps = np.zeros((4, 5, 6, 20), dtype=np.float32)
    maps[0, 0, 0, :] = 1.0  # outside the mask in every map
    inside = np.zeros((4, 5, 6), dtype=bool)
    inside[2:, 3:, 4:] = True
    if where is not None:
        maps[3, 4, 5, where] = np.nan if where == 8 else 0.5  # NaN counts, as in np.any
    img = nib.Nifti1Image(maps, AFFINE)
    assert _any_weight_inside(img, inside) == bool(np.any(maps[inside]))
    assert _any_weight_inside(img, inside) == (where is not None)
