"""Voxel-wise image operations: parity with nilearn 0.14's functions of the same names."""

import warnings

import nibabel as nib
import numpy as np
import pytest
from nilearn import image as nimage
from numpy.testing import assert_allclose, assert_array_equal

from bidsmask import image

AFFINE = np.array([[2.0, 0, 0, -10], [0, 2.5, 0, -12], [0, 0, 3, -8], [0, 0, 0, 1]])


def _stat_map(n_vols=None, seed=0):
    rng = np.random.default_rng(seed)
    shape = (9, 8, 7) if n_vols is None else (9, 8, 7, n_vols)
    data = rng.standard_normal(shape) * 2
    data[0] = 0
    return nib.Nifti1Image(data, AFFINE)


def _quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


def _same(ours, ref, atol=0):
    assert ours.shape == ref.shape
    assert_allclose(ours.affine, ref.affine)
    assert_allclose(np.asarray(ours.dataobj), np.asarray(ref.dataobj), atol=atol)


@pytest.mark.parametrize("threshold", [0.5, 2.0, "50%", "90%", -1.0])
@pytest.mark.parametrize("two_sided", [True, False])
@pytest.mark.parametrize("cluster_threshold", [0, 3])
@pytest.mark.parametrize("n_vols", [None, 2])
@pytest.mark.parametrize("with_mask", [False, True])
def test_threshold_img_matches_nilearn(threshold, two_sided, cluster_threshold, n_vols, with_mask):
    img = _stat_map(n_vols)
    kwargs = {
        "threshold": threshold,
        "two_sided": two_sided,
        "cluster_threshold": cluster_threshold,
    }
    if with_mask:
        mask = np.zeros((9, 8, 7), np.int8)
        mask[2:7, 1:6, 1:6] = 1
        kwargs["mask_img"] = nib.Nifti1Image(mask, AFFINE)
    if two_sided and isinstance(threshold, float) and threshold < 0:
        for func in (image.threshold_img, nimage.threshold_img):
            with pytest.raises(ValueError, match="negative value when two_sided=True"):
                func(img, **kwargs)
        return
    _same(_quiet(image.threshold_img, img, **kwargs), _quiet(nimage.threshold_img, img, **kwargs))


def test_threshold_img_errors_and_warnings_like_nilearn():
    img = _stat_map()
    for func in (image.threshold_img, nimage.threshold_img):
        with pytest.raises(ValueError, match="percent"):
            func(img, "90")
        with pytest.raises(TypeError):
            func(img, [1.0])
        with pytest.raises(TypeError):
            func(np.zeros((2, 2, 2)), 1.0)
        with pytest.warns(UserWarning, match="must not exceed"):
            func(img, 100.0)


@pytest.mark.parametrize("threshold", [0.0, 1.0, "75%"])
@pytest.mark.parametrize("two_sided", [True, False])
def test_binarize_img_matches_nilearn(threshold, two_sided):
    img = _stat_map()
    ours = _quiet(image.binarize_img, img, threshold, two_sided=two_sided)
    ref = _quiet(nimage.binarize_img, img, threshold, two_sided=two_sided)
    _same(ours, ref)
    assert np.asarray(ours.dataobj).dtype == np.asarray(ref.dataobj).dtype == np.int8


def test_math_img_matches_nilearn(tmp_path):
    a, b = _stat_map(seed=1), _stat_map(seed=2)
    for formula in ("a + b", "np.mean(a, axis=-1)", "np.where(a > b, a, 0)"):
        kw = {"a": _stat_map(3, seed=1)} if "mean" in formula else {"a": a, "b": b}
        _same(image.math_img(formula, **kw), nimage.math_img(formula, **kw))
    a.header["descrip"] = b"from a"
    ours = image.math_img("a * 2", copy_header_from="a", a=a)
    assert (
        ours.header["descrip"]
        == nimage.math_img("a * 2", copy_header_from="a", a=a).header["descrip"]
    )
    with pytest.raises(ValueError, match="missing from 'imgs'"):
        image.math_img("a", copy_header_from="c", a=a)
    other = nib.Nifti1Image(np.zeros((3, 3, 3)), np.eye(4))
    with pytest.raises(ValueError, match="cannot be compared"):
        image.math_img("a + b", a=a, b=other)
    with pytest.warns(UserWarning, match="not mentioned"):
        image.math_img("a", a=a, b=b)
    with pytest.raises(NameError, match="couldn't be processed"):
        image.math_img("a + c", a=a)


@pytest.mark.parametrize("pad", [True, False])
@pytest.mark.parametrize("n_vols", [None, 3])
def test_crop_img_matches_nilearn(pad, n_vols):
    data = np.zeros((10, 9, 8) if n_vols is None else (10, 9, 8, n_vols))
    data[2:5, 3:7, 1:3] = 1.5
    data[8, 8, 7] = -2
    img = nib.Nifti1Image(data, AFFINE)
    ours, offset = image.crop_img(img, pad=pad, return_offset=True)
    ref, ref_offset = nimage.crop_img(img, pad=pad, return_offset=True)
    _same(ours, ref)
    assert offset == ref_offset
    empty = nib.Nifti1Image(np.zeros((4, 4, 4)), AFFINE)
    with pytest.warns(UserWarning, match="No values above"):
        assert image.crop_img(empty).shape == (4, 4, 4)


def test_copy_largest_component_and_swap_match_nilearn():
    img = _stat_map()
    copied = image.copy_img(img)
    assert copied is not img and copied.dataobj is not img.dataobj
    _same(copied, nimage.copy_img(img))
    with pytest.raises(TypeError):
        image.copy_img("not an image")
    data = np.zeros((8, 8, 8), np.int8)
    data[1:3, 1:3, 1:3] = 1
    data[5:8, 5:8, 5:8] = 1
    mask = nib.Nifti1Image(data, AFFINE)
    ours = image.largest_connected_component_img(mask)
    _same(ours, nimage.largest_connected_component_img(mask))
    assert int(np.asarray(ours.dataobj).sum()) == 27
    assert len(image.largest_connected_component_img([mask, mask])) == 2
    symmetric = nib.Nifti1Image(
        np.arange(6 * 4 * 3.0).reshape(6, 4, 3), np.diag([2.0, 2, 2, 1]) @ np.eye(4)
    )
    _same(image.swap_img_hemispheres(symmetric), nimage.swap_img_hemispheres(symmetric))


@pytest.mark.parametrize(
    "linear",
    [
        np.diag([2.0, 3, 4]),
        np.array([[0, 2.0, 0], [-3.0, 0, 0], [0, 0, 4]]),
        np.array([[0, 0, -2.0], [0, 3.0, 0], [4.0, 0, 0]]),
        np.diag([-2.0, -3, 4]),
    ],
)
@pytest.mark.parametrize("n_vols", [None, 2])
def test_reorder_img_matches_nilearn(linear, n_vols):
    affine = np.eye(4)
    affine[:3, :3], affine[:3, 3] = linear, [5, -7, 3]
    shape = (5, 6, 7) if n_vols is None else (5, 6, 7, n_vols)
    img = nib.Nifti1Image(np.arange(np.prod(shape), dtype=float).reshape(shape), affine)
    _same(image.reorder_img(img), nimage.reorder_img(img))


def test_reorder_img_rotation():
    rotation = nib.eulerangles.euler2mat(0.3, 0.0, 0.0)
    affine = np.eye(4)
    affine[:3, :3] = rotation * 2
    img = nib.Nifti1Image(np.random.default_rng(0).random((6, 6, 6)), affine)
    with pytest.raises(ValueError, match="contains rotations"):
        image.reorder_img(img)
    _same(
        image.reorder_img(img, resample="nearest"),
        _quiet(nimage.reorder_img, img, resample="nearest"),
    )


def test_coord_transform_matches_nilearn():
    affine = AFFINE
    assert image.coord_transform(1, 2, 3, affine) == nimage.coord_transform(1, 2, 3, affine)
    xs = np.arange(6.0).reshape(2, 3)
    for ours, ref in zip(
        image.coord_transform(xs, xs + 1, xs * 2, affine),
        nimage.coord_transform(xs, xs + 1, xs * 2, affine),
        strict=True,
    ):
        assert ours.shape == ref.shape == (2, 3)
        assert_array_equal(ours, ref)


def test_small_behaviours_match_nilearn():
    a = nib.Nifti1Image(np.zeros((3, 3, 3)), np.eye(4))
    b = nib.Nifti1Image(np.zeros((3, 3, 3)), np.eye(4))
    c = nib.Nifti1Image(np.zeros((3, 3, 3)), np.diag([2.0, 2, 2, 1]))
    from nilearn.image.image import check_same_fov as reference_check_same_fov

    for func in (image.check_same_fov, reference_check_same_fov):
        with pytest.raises(ValueError, match=r"a and c do not have the same affine"):
            func(a=a, b=b, c=c, raise_error=True)
        assert func(a, b) and not func(a, c)
    for func in (image.threshold_img, nimage.threshold_img):
        with pytest.raises(TypeError, match="be of type"):
            func(_stat_map(), threshold=object())
    for func in (image.smooth_img, nimage.smooth_img):
        with pytest.warns(UserWarning, match=r"specified as 0\.0\. Setting it to None"):
            func(a, fwhm=0.0)
    for func in (image.iter_img, nimage.iter_img):
        with pytest.raises(image.DimensionError if func is image.iter_img else Exception):
            func(a)  # raised at the call, before any iteration
