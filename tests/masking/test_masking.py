import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nibabel.testing import data_path
from nilearn import masking as nmasking
from numpy.testing import assert_allclose, assert_array_equal

from bidsmask import masking

EXAMPLE4D = Path(data_path) / "example4d.nii.gz"
REALDATA = Path(__file__).parents[3] / "shared" / "realdata"
COLORNEST_FUNC = REALDATA / "fmriprep_colornest/sub-colornest001/ses-1/func"
BOLDREF = COLORNEST_FUNC / (
    "sub-colornest001_ses-1_task-rest_run-1_space-MNI152NLin2009cAsym_boldref.nii.gz"
)
FMRIPREP_MASK = COLORNEST_FUNC / (
    "sub-colornest001_ses-1_task-rest_run-1_space-MNI152NLin2009cAsym_desc-brain_mask.nii.gz"
)
AFFINE = np.array([[3.0, 0, 0, -20], [0, 3.0, 0, -24], [0, 0, 3.33, -18], [0, 0, 0, 1]])


def quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


def dice(a, b):
    a = np.asarray(a.dataobj) > 0
    b = np.asarray(b.dataobj) > 0
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else 2 * (a & b).sum() / total


def epi_like(shape=(16, 18, 14), n_vols=6, dtype=np.float32, seed=0, background=0.0):
    """Brain-shaped 4D data: a bright ellipsoid (with a dimmer blob) on a dark background."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape).astype(float)
    centre = (np.array(shape) - 1)[:, None, None, None] / 2
    radius = np.array(shape)[:, None, None, None] / 2.8
    brain = (((grid - centre) / radius) ** 2).sum(0) < 1
    data = 800 * brain + 40 * np.abs(rng.normal(size=shape))
    data = data[..., None] + 20 * rng.normal(size=(*shape, n_vols))
    data[~brain] = background
    data[1, 1, 1] += 600
    if np.dtype(dtype).kind == "i":
        data = np.round(data)
    return nib.Nifti1Image(data.astype(dtype), AFFINE)


EPI_KWARGS = [
    {},
    {"opening": 0},
    {"opening": 1, "connected": False},
    {"exclude_zeros": True},
    {"lower_cutoff": 0.1, "upper_cutoff": 0.9},
    {"target_affine": np.eye(3) * 4},
    {
        "target_affine": np.array(
            [[2.5, 0, 0, -20], [0, 2.5, 0, -24], [0, 0, 2.5, -18], [0, 0, 0, 1]]
        ),
        "target_shape": (20, 22, 20),
    },
]


@pytest.mark.parametrize("kwargs", EPI_KWARGS)
@pytest.mark.parametrize("dtype,n_vols", [(np.float32, 6), (np.int16, 4), (np.float32, 1)])
def test_compute_epi_mask_parity(kwargs, dtype, n_vols):
    img = epi_like(dtype=dtype, n_vols=n_vols)
    expected = quiet(nmasking.compute_epi_mask, img, **kwargs)
    got = masking.compute_epi_mask(img, **kwargs)
    assert got.shape == expected.shape
    assert_allclose(got.affine, expected.affine)
    assert dice(got, expected) == 1.0
    assert np.asarray(got.dataobj).sum() > 0


@pytest.mark.parametrize("kwargs", [{}, {"opening": 2, "connected": True}, {"border_size": 1}])
@pytest.mark.parametrize(
    "background,dtype",
    [
        (0.0, np.float32),
        (30.0, np.float32),
        (np.nan, np.float32),
        (0.0, np.int16),
        (30.0, np.int16),
    ],
)
def test_compute_background_mask_parity(kwargs, background, dtype):
    img = epi_like(background=background, dtype=dtype)
    expected = quiet(nmasking.compute_background_mask, img, **kwargs)
    got = masking.compute_background_mask(img, **kwargs)
    assert got.shape == expected.shape
    assert dice(got, expected) == 1.0


@pytest.mark.parametrize("background", [0.0, 30.0])
def test_compute_background_mask_resampled_parity(background):
    # The mean of integer data is exact in both implementations, so the resampled mean (and its
    # spline ringing around the background value, which `data != background` is sensitive to)
    # is bit-identical; float32 means differ in their last bits (float64 vs float32 sums).
    img = epi_like(background=background, dtype=np.int16)
    kwargs = EPI_KWARGS[5]
    expected = quiet(nmasking.compute_background_mask, img, **kwargs)
    got = masking.compute_background_mask(img, **kwargs)
    assert got.shape == expected.shape
    assert dice(got, expected) == 1.0


@pytest.mark.parametrize("mask_type", ["whole-brain", "gm", "wm"])
def test_compute_brain_mask_parity(mask_type):
    target = nib.Nifti1Image(
        np.zeros((33, 39, 33), np.float32),
        np.array([[6.0, 0, 0, -98], [0, 6, 0, -134], [0, 0, 6, -72], [0, 0, 0, 1]]),
    )
    expected = quiet(nmasking.compute_brain_mask, target, mask_type=mask_type)
    got = masking.compute_brain_mask(target, mask_type=mask_type)
    assert dice(got, expected) >= 0.98
    assert np.asarray(got.dataobj).sum() > 20


def test_compute_brain_mask_errors_and_multi():
    target = epi_like()
    with pytest.raises(ValueError, match="Unknown mask type csf\\."):
        masking.compute_brain_mask(target, mask_type="csf")
    with pytest.warns(masking.MaskWarning, match="mask is empty"):
        masking.compute_brain_mask(target, threshold=2.0)
    multi = masking.compute_multi_brain_mask([target, epi_like(seed=2)], opening=1)
    single = masking.compute_brain_mask(target, opening=1)
    assert_array_equal(np.asarray(multi.dataobj), np.asarray(single.dataobj))
    with pytest.raises(TypeError, match="empty object"):
        masking.compute_multi_brain_mask([])


def test_example4d_masks_parity():
    img = nib.load(EXAMPLE4D)
    assert img.get_data_dtype() == np.int16
    for func in ("compute_epi_mask", "compute_background_mask"):
        expected = quiet(getattr(nmasking, func), img)
        got = getattr(masking, func)(EXAMPLE4D)
        assert dice(got, expected) == 1.0
    expected = quiet(nmasking.compute_brain_mask, img)
    assert dice(masking.compute_brain_mask(EXAMPLE4D), expected) >= 0.98
    mask = masking.compute_epi_mask(EXAMPLE4D)
    series = masking.apply_mask(EXAMPLE4D, mask)
    assert series.dtype == np.float32 and series.shape == (2, np.asarray(mask.dataobj).sum())
    assert_array_equal(series, quiet(nmasking.apply_mask, img, mask))


@pytest.mark.skipif(not BOLDREF.exists(), reason="shared real data absent")
def test_real_fmriprep_boldref_masks():
    boldref = nib.load(BOLDREF)
    for func in ("compute_epi_mask", "compute_background_mask"):
        expected = quiet(getattr(nmasking, func), boldref)
        assert dice(getattr(masking, func)(BOLDREF), expected) == 1.0
    brain = masking.compute_brain_mask(BOLDREF)
    assert dice(brain, quiet(nmasking.compute_brain_mask, boldref)) >= 0.98
    assert dice(brain, nib.load(FMRIPREP_MASK)) > 0.8
    series = masking.apply_mask(BOLDREF, FMRIPREP_MASK, smoothing_fwhm=6.0)
    expected = quiet(nmasking.apply_mask, boldref, FMRIPREP_MASK, smoothing_fwhm=6.0)
    assert_allclose(series, expected, rtol=1e-4, atol=1e-2)


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 1.0])
@pytest.mark.parametrize("connected", [True, False])
def test_intersect_masks_parity(threshold, connected):
    rng = np.random.default_rng(3)
    masks = [
        nib.Nifti1Image((rng.random((10, 11, 9)) > p).astype(np.uint8), AFFINE)
        for p in (0.3, 0.5, 0.6, 0.4)
    ]
    expected = nmasking.intersect_masks(masks, threshold=threshold, connected=connected)
    got = masking.intersect_masks(masks, threshold=threshold, connected=connected)
    assert_array_equal(np.asarray(got.dataobj), np.asarray(expected.dataobj))
    assert np.asarray(got.dataobj).dtype == np.int8


def test_intersect_masks_semantics_and_errors():
    a = np.zeros((6, 6, 6), np.uint8)
    b = np.zeros((6, 6, 6), np.uint8)
    a[1:4, 1:4, 1:4] = 1
    b[2:5, 2:5, 2:5] = 1
    imgs = [nib.Nifti1Image(a, np.eye(4)), nib.Nifti1Image(b, np.eye(4))]
    union = np.asarray(masking.intersect_masks(imgs, threshold=0, connected=False).dataobj)
    inter = np.asarray(masking.intersect_masks(imgs, threshold=1, connected=False).dataobj)
    assert_array_equal(union, a | b)
    assert_array_equal(inter, a & b)
    with pytest.raises(ValueError, match="between 0 and 1"):
        masking.intersect_masks(imgs, threshold=1.5)
    with pytest.raises(ValueError, match="empty"):
        masking.intersect_masks([])
    other = nib.Nifti1Image(a, np.diag([2.0, 2.0, 2.0, 1.0]))
    with pytest.raises(
        ValueError, match="mask #0 .in memory. and mask #1 .in memory. do not have the same affine"
    ):
        masking.intersect_masks([imgs[0], other])


@pytest.mark.parametrize(
    "function",
    ["compute_multi_epi_mask", "compute_multi_background_mask", "compute_multi_brain_mask"],
)
def test_multi_masks_refuse_images_on_different_grids_like_nilearn(function, tmp_path):
    from nilearn import masking as reference

    first = epi_like(seed=1)
    data = np.asarray(first.dataobj)[::2]
    path = tmp_path / "run-2_bold.nii.gz"
    nib.save(nib.Nifti1Image(data, first.affine), path)
    nilearn_words = "reference FOV" if function == "compute_multi_brain_mask" else "same shape"
    for func in (getattr(masking, function), getattr(reference, function)):
        with pytest.raises(ValueError, match=nilearn_words):
            quiet(func, [first, str(path)])
    with pytest.raises(ValueError, match=r"image #1 is different from reference FOV.*run-2_bold"):
        getattr(masking, function)([first, str(path)])


def test_multi_masks_parity():
    runs = [epi_like(seed=s) for s in range(3)]
    expected = quiet(nmasking.compute_multi_epi_mask, runs)
    assert dice(masking.compute_multi_epi_mask(runs), expected) == 1.0
    expected = quiet(nmasking.compute_multi_background_mask, runs)
    assert dice(masking.compute_multi_background_mask(runs), expected) == 1.0
    with pytest.raises(TypeError, match="empty object"):
        masking.compute_multi_epi_mask([])


@pytest.mark.parametrize("dtype", [np.float32, np.int16, np.float64])
@pytest.mark.parametrize("n_vols", [1, 5])
@pytest.mark.parametrize("smoothing_fwhm", [None, 5.0])
def test_apply_mask_parity_and_roundtrip(tmp_path, dtype, n_vols, smoothing_fwhm):
    img = epi_like(dtype=dtype, n_vols=n_vols)
    path = tmp_path / "bold.nii.gz"
    img.to_filename(path)
    mask = masking.compute_epi_mask(img)
    expected = quiet(nmasking.apply_mask, img, mask, smoothing_fwhm=smoothing_fwhm)
    got = masking.apply_mask(path, mask, smoothing_fwhm=smoothing_fwhm)
    assert got.dtype == expected.dtype
    assert got.shape == expected.shape
    assert_allclose(got, expected, rtol=1e-4, atol=1e-3)
    back = masking.unmask(got, mask)
    assert back.shape == img.shape
    assert_array_equal(masking.apply_mask(back, mask), got)
    assert_array_equal(
        np.asarray(back.dataobj), np.asarray(quiet(nmasking.unmask, got, mask).dataobj)
    )


def test_apply_mask_dtype_and_nonfinite():
    data = np.ones((4, 4, 4, 3), np.float32)
    data[1, 1, 1, 0] = np.nan
    img = nib.Nifti1Image(data, np.eye(4))
    mask = nib.Nifti1Image(np.ones((4, 4, 4), np.uint8), np.eye(4))
    assert np.all(np.isfinite(masking.apply_mask(img, mask)))
    assert np.isnan(masking.apply_mask(img, mask, ensure_finite=False)).sum() == 1
    assert masking.apply_mask(img, mask, dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError, match="needs a float dtype"):
        masking.apply_mask(img, mask, dtype=np.int16, smoothing_fwhm=4)


def test_apply_mask_errors_name_the_problem(tmp_path):
    img = epi_like()
    mask_data = np.ones(img.shape[:3], np.uint8)
    with pytest.raises(ValueError, match=r"not on the same grid. Mask shape: \(5, 5, 5\)"):
        masking.apply_mask(img, nib.Nifti1Image(np.ones((5, 5, 5), np.uint8), AFFINE))
    with pytest.raises(ValueError, match="Mask affine"):
        masking.apply_mask(img, nib.Nifti1Image(mask_data, np.eye(4)))
    path = tmp_path / "empty_mask.nii.gz"
    nib.Nifti1Image(0 * mask_data, AFFINE).to_filename(path)
    with pytest.raises(ValueError, match="empty: it masks all data .*empty_mask.nii.gz"):
        masking.apply_mask(img, path)
    with pytest.raises(ValueError, match="not made of 2 values"):
        masking.apply_mask(
            img,
            nib.Nifti1Image(
                np.arange(mask_data.size, dtype=np.int16).reshape(mask_data.shape), AFFINE
            ),
        )
    with pytest.raises(ValueError, match="Background of the mask"):
        masking.apply_mask(
            img,
            nib.Nifti1Image(
                mask_data
                + 1
                + (np.arange(mask_data.size, dtype=np.uint8).reshape(mask_data.shape) % 2),
                AFFINE,
            ),
        )


def test_load_mask_img():
    data = np.zeros((4, 4, 4), np.float32)
    data[1:3, 1:3, 1:3] = 1
    data[0, 0, 0] = np.nan
    mask, affine = masking.load_mask_img(nib.Nifti1Image(data, np.eye(4)))
    assert mask.dtype == bool and mask.sum() == 8
    assert_array_equal(affine, np.eye(4))
    full, _ = masking.load_mask_img(nib.Nifti1Image(np.full((2, 2, 2), 3, np.int16), np.eye(4)))
    assert full.all()
    empty, _ = masking.load_mask_img(
        nib.Nifti1Image(np.zeros((2, 2, 2)), np.eye(4)), allow_empty=True
    )
    assert not empty.any()


def test_unmask_shapes_and_errors():
    mask = nib.Nifti1Image(np.pad(np.ones((2, 2, 2), np.uint8), 1), np.eye(4))
    vec = np.arange(8, dtype=np.float32)
    img3d = masking.unmask(vec, mask)
    assert img3d.shape == (4, 4, 4) and np.asarray(img3d.dataobj).dtype == np.float32
    img4d = masking.unmask(np.stack([vec, 2 * vec]), mask, order="C")
    assert img4d.shape == (4, 4, 4, 2)
    assert np.asarray(img4d.dataobj).flags.c_contiguous
    imgs = masking.unmask([vec, vec], mask)
    assert isinstance(imgs, list) and len(imgs) == 2
    with pytest.raises(ValueError, match="mask has 8 voxels"):
        masking.unmask(np.zeros(7), mask)
    with pytest.raises(TypeError, match="2D or 1D"):
        masking.unmask(np.zeros((1, 1, 8)), mask)


def test_compute_epi_mask_empty_warning_and_errors():
    flat = nib.Nifti1Image(np.zeros((6, 6, 6, 2), np.float32), np.eye(4))
    with pytest.raises(ValueError, match="usable values"):
        masking.compute_epi_mask(flat, exclude_zeros=True)
    with pytest.raises(ValueError, match="no values to threshold"):
        masking.compute_epi_mask(epi_like(), lower_cutoff=0.5, upper_cutoff=0.5)


def test_masks_on_fixture_run(one_run):
    bold, mask = one_run["bold"], one_run["mask"]
    for func in ("compute_epi_mask", "compute_background_mask"):
        expected = quiet(getattr(nmasking, func), str(bold))
        assert dice(getattr(masking, func)(bold), expected) == 1.0
    expected = quiet(nmasking.compute_brain_mask, str(bold))
    assert dice(masking.compute_brain_mask(bold), expected) >= 0.98
    for kwargs in ({}, {"smoothing_fwhm": 6.0}):
        got = masking.apply_mask(bold, mask, **kwargs)
        assert_allclose(got, quiet(nmasking.apply_mask, str(bold), str(mask), **kwargs), rtol=1e-4)
        assert_array_equal(masking.apply_mask(masking.unmask(got, mask), mask), got)


def test_multi_masks_on_fixture_runs(bold_files):
    runs = [str(path) for path in bold_files[:4]]
    expected = quiet(nmasking.compute_multi_epi_mask, runs)
    assert dice(masking.compute_multi_epi_mask(runs), expected) == 1.0


@pytest.mark.parametrize("with_mask", [False, True])
@pytest.mark.parametrize(
    "kwargs",
    [
        {"standardize": "zscore_sample"},
        {"standardize": None, "detrend": False, "low_pass": 0.1, "t_r": 2.0},
        {"standardize": "zscore_sample", "clean__sample_mask": np.arange(1, 26)},
    ],
)
def test_clean_img_matches_nilearn(with_mask, kwargs):
    from nilearn import image as nimage

    img = epi_like(n_vols=30, dtype=np.float64, seed=3)
    mask = masking.compute_epi_mask(img) if with_mask else None
    confounds = np.random.default_rng(0).standard_normal((30, 1))
    ours = masking.clean_img(img, mask_img=mask, confounds=confounds, **kwargs)
    expected = quiet(nimage.clean_img, img, mask_img=mask, confounds=confounds, **kwargs)
    assert ours.shape == expected.shape
    assert_allclose(ours.get_fdata(), expected.get_fdata(), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="t_r.*must be specified.*header suggest"):
        masking.clean_img(img, low_pass=0.1)


@pytest.mark.parametrize("layout", ["C", "F"])
def test_clean_img_without_mask_is_per_voxel_clean(layout):
    from bidsmask import signal

    img = epi_like(n_vols=30, dtype=np.float32, seed=4)
    data = np.asarray(img.dataobj)
    data = np.asfortranarray(data) if layout == "F" else np.ascontiguousarray(data)
    img = nib.Nifti1Image(data, img.affine)
    out = masking.clean_img(img, standardize="zscore_sample", t_r=2.0, high_pass=0.01)
    expected = signal.clean(
        data.reshape(-1, data.shape[3]).T, standardize="zscore_sample", t_r=2.0, high_pass=0.01
    )
    got = np.asarray(out.dataobj)
    assert got.dtype == np.float32
    assert got.flags.f_contiguous  # built as a view of the cleaned array, not a reshaped copy
    assert_allclose(got.reshape(-1, data.shape[3]).T, expected, rtol=1e-5, atol=1e-5)


def test_multi_epi_mask_concatenates_each_list_of_volumes_once(monkeypatch):
    from bidsmask.image import _niimg

    calls = []
    concat = _niimg.concat_niimgs

    def counting(*args, **kwargs):
        calls.append(1)
        return concat(*args, **kwargs)

    monkeypatch.setattr(_niimg, "concat_niimgs", counting)
    runs = [list(nib.four_to_three(epi_like(n_vols=4, seed=s))) for s in (0, 1)]
    expected = masking.intersect_masks([masking.compute_epi_mask(run) for run in runs])
    calls.clear()
    got = masking.compute_multi_epi_mask(runs)
    assert len(calls) == 2
    assert_array_equal(got.get_fdata(), expected.get_fdata())


@pytest.mark.parametrize("with_mask", [False, True])
def test_high_variance_confounds_image_matches_nilearn(with_mask):
    from nilearn import image as nimage

    rng = np.random.default_rng(3)
    data = rng.normal(size=(6, 7, 5, 40)) * rng.uniform(0.1, 5, size=(6, 7, 5, 1))
    img = nib.Nifti1Image(data, np.eye(4))
    mask = nib.Nifti1Image((rng.uniform(size=(6, 7, 5)) > 0.4).astype(np.int8), np.eye(4))
    mask = mask if with_mask else None
    got = masking.high_variance_confounds(img, n_confounds=4, percentile=10.0, mask_img=mask)
    expected = nimage.high_variance_confounds(img, n_confounds=4, percentile=10.0, mask_img=mask)
    assert got.shape == (40, 4)
    assert_allclose(np.abs(got), np.abs(expected), rtol=1e-6, atol=1e-10)


def test_extrapolate_out_mask_matches_nilearn():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(6, 5, 7))
    mask = rng.uniform(size=data.shape) > 0.7
    for iterations in (1, 2, 3):
        got, got_mask = masking.extrapolate_out_mask(data, mask, iterations=iterations)
        expected, expected_mask = nmasking.extrapolate_out_mask(data, mask, iterations=iterations)
        assert_allclose(got, expected, rtol=1e-12)
        assert_array_equal(got_mask, expected_mask)
    stacked = np.stack([data, 2 * data], axis=-1)
    got, _ = masking.extrapolate_out_mask(stacked, mask, iterations=2)
    assert_allclose(got[..., 1], 2 * masking.extrapolate_out_mask(data, mask, iterations=2)[0])


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_unmask_from_to_3d_array_matches_nilearn(ndim):
    rng = np.random.default_rng(ndim)
    mask = rng.uniform(size=(4,) * ndim) > 0.5
    values = rng.normal(size=int(mask.sum()))
    got = masking.unmask_from_to_3d_array(values, mask)
    assert_array_equal(got, nmasking.unmask_from_to_3d_array(values, mask))
    with pytest.raises(masking.MaskShapeError, match="one value per mask element"):
        masking.unmask_from_to_3d_array(values[:-1], mask)


def test_unmask_shape_errors_are_type_and_value_errors():
    mask = nib.Nifti1Image(np.ones((2, 2, 2), np.int8), np.eye(4))
    for error in (TypeError, ValueError):
        with pytest.raises(error, match=r"X must be of shape \(samples, 8\)"):
            masking.unmask(np.ones(5), mask)
        with pytest.raises(error, match=r"X must be of shape \(samples, 8\)"):
            masking.unmask(np.ones((8, 1)), mask)
