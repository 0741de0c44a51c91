"""Surface images (nilearn's SurfaceImage, duck-typed) through the image and masking functions.

nilearn is the oracle: each function gets the same SurfaceImage in bidsmask and in nilearn and
the numbers are compared; bidsmask returns an object of the input's own class.
"""

import warnings

import nibabel as nib
import numpy as np
import pytest
from nilearn import image as nimage
from nilearn import masking as nmasking
from nilearn.surface import InMemoryMesh, PolyMesh, SurfaceImage
from numpy.testing import assert_allclose, assert_array_equal

from bidsmask import image, masking


def _grid_mesh(n: int, offset: float) -> InMemoryMesh:
    """A bumpy n x n sheet of vertices, two triangles per cell (1 mm spacing)."""
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    coords = np.column_stack(
        [i.ravel(), j.ravel(), 0.3 * np.sin(i.ravel()) * np.cos(j.ravel()) + offset]
    ).astype(float)
    corner = (i[:-1, :-1] * n + j[:-1, :-1]).ravel()
    faces = np.concatenate(
        [
            np.column_stack([corner, corner + n, corner + 1]),
            np.column_stack([corner + 1, corner + n, corner + n + 1]),
        ]
    )
    return InMemoryMesh(coords, faces)


MESH = PolyMesh(left=_grid_mesh(7, 0.0), right=_grid_mesh(6, 50.0))


def surf(n_samples=None, seed=0, scale=10.0):
    rng = np.random.default_rng(seed)
    data = {}
    for hemi, mesh in MESH.parts.items():
        shape = (mesh.n_vertices,) if n_samples is None else (mesh.n_vertices, n_samples)
        data[hemi] = scale * rng.standard_normal(shape)
    return SurfaceImage(MESH, data)


def surf_mask(seed=1):
    rng = np.random.default_rng(seed)
    return SurfaceImage(
        MESH,
        {h: (rng.uniform(size=m.n_vertices) > 0.3).astype(np.int8) for h, m in MESH.parts.items()},
    )


def quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


def assert_same_surface(got, expected, **tolerance):
    assert type(got) is SurfaceImage
    assert set(got.data.parts) == set(expected.data.parts)
    for hemi, part in expected.data.parts.items():
        assert got.data.parts[hemi].shape == part.shape, hemi
        assert_allclose(got.data.parts[hemi], part, **tolerance)


@pytest.mark.parametrize(
    ("threshold", "two_sided", "cluster"),
    [(5.0, True, 0), ("70%", True, 0), (3.0, False, 0), (-4.0, False, 0), (2.0, True, 4)],
)
@pytest.mark.parametrize("with_mask", [False, True])
def test_threshold_img_surface_matches_nilearn(threshold, two_sided, cluster, with_mask):
    img, mask = surf(), surf_mask() if with_mask else None
    got = image.threshold_img(
        img, threshold, cluster_threshold=cluster, two_sided=two_sided, mask_img=mask
    )
    expected = quiet(
        nimage.threshold_img,
        surf(),
        threshold,
        cluster_threshold=cluster,
        two_sided=two_sided,
        mask_img=surf_mask() if with_mask else None,
    )
    assert_same_surface(got, expected)
    assert_array_equal(img.data.parts["left"], surf().data.parts["left"])  # copy=True


def test_threshold_img_surface_copy_false_changes_input():
    img = surf()
    out = image.threshold_img(img, 8.0, copy=False)
    expected = image.threshold_img(surf(), 8.0)
    assert_same_surface(img, expected)
    assert_same_surface(out, expected)


def test_surface_and_volume_inputs_do_not_mix():
    volume = nib.Nifti1Image(np.ones((3, 3, 3)), np.eye(4))
    with pytest.raises(TypeError, match="Mask and input images must be of compatible types"):
        image.threshold_img(surf(), 1.0, mask_img=volume)
    with pytest.raises(TypeError, match="Mask and input images must be of compatible types"):
        image.threshold_img(volume, 1.0, mask_img=surf_mask())
    with pytest.raises(TypeError, match="or a SurfaceImage"):
        image.threshold_img(3, 1.0)
    with pytest.raises(TypeError, match="All masks must be a 3D Niimg-like object"):
        masking.intersect_masks([volume, surf_mask()])


def test_binarize_and_math_img_surface_match_nilearn():
    assert_same_surface(
        image.binarize_img(surf(), threshold=4.0), quiet(nimage.binarize_img, surf(), 4.0)
    )
    formula = "np.mean(a, axis=-1) - b * 2"
    got = image.math_img(formula, a=surf(3), b=surf(seed=4))
    expected = nimage.math_img(formula, a=surf(3), b=surf(seed=4))
    assert_same_surface(got, expected)
    with pytest.warns(UserWarning, match="'copy_header_from' is not used with SurfaceImage"):
        image.math_img("a + 1", a=surf(), copy_header_from="a")


@pytest.mark.parametrize("index", [2, -1, slice(1, 5, 2), [0, 3, 3], np.arange(6) % 2 == 0])
def test_index_and_iter_img_surface_match_nilearn(index):
    got = image.index_img(surf(6), index)
    assert_same_surface(got, nimage.index_img(surf(6), index))
    for got_one, expected_one in zip(
        image.iter_img(surf(4)), nimage.iter_img(surf(4)), strict=True
    ):
        assert_same_surface(got_one, expected_one)
    with pytest.raises(ValueError, match="should be 2D"):
        image.index_img(surf(), 0)


def test_mean_and_concat_img_surface_match_nilearn():
    assert_same_surface(image.mean_img(surf(5)), nimage.mean_img(surf(5)))
    assert_same_surface(
        image.mean_img([surf(3), surf(4, seed=2)]),
        nimage.mean_img([surf(3), surf(4, seed=2)]),
        rtol=1e-6,  # nilearn averages the per-image means in float32
        atol=1e-6,
    )
    got = image.concat_imgs([surf(2), surf(), surf(3, seed=5)], dtype=np.float64)
    expected = nimage.concat_imgs([surf(2), surf(), surf(3, seed=5)], dtype=np.float64)
    assert_same_surface(got, expected)


@pytest.mark.parametrize("fwhm", [None, 0, 1.5, 4.0])
@pytest.mark.parametrize("n_samples", [None, 3])
def test_smooth_img_surface_matches_nilearn(fwhm, n_samples):
    img = surf(n_samples)
    img.data.parts["left"][0] = np.nan
    got = image.smooth_img(img, fwhm)
    expected = nimage.smooth_img(img, fwhm)
    assert_same_surface(got, expected, rtol=1e-10, atol=1e-12)
    assert np.isnan(img.data.parts["left"][0]).all()  # input untouched
    if fwhm == 4.0:
        assert got.data.parts["left"].var() < np.nan_to_num(img.data.parts["left"]).var()
    with pytest.raises(TypeError, match="'fwhm' must be a scalar"):
        image.smooth_img(img, [1.0, 1.0, 1.0])


def test_apply_mask_and_load_mask_img_surface_match_nilearn():
    for img in (surf(), surf(5)):
        for fwhm in (None, 3.0):
            got = masking.apply_mask(img, surf_mask(), smoothing_fwhm=fwhm)
            expected = nmasking.apply_mask(img, surf_mask(), smoothing_fwhm=fwhm)
            assert_allclose(got, expected, rtol=1e-10)
    mask, affine = masking.load_mask_img(surf_mask())
    assert affine is None
    assert all(part.dtype == bool for part in mask.data.parts.values())
    with pytest.raises(ValueError, match="should be 1D"):
        masking.load_mask_img(surf(2))
    with pytest.raises(TypeError, match="must be of type"):
        masking.apply_mask(surf(2), surf_mask(), smoothing_fwhm=(1, 2, 3))


@pytest.mark.parametrize("with_mask", [False, True])
def test_clean_img_surface_matches_nilearn(with_mask):
    mask = surf_mask() if with_mask else None
    options = dict(detrend=True, standardize="zscore_sample", low_pass=0.1, t_r=2.0)
    got = masking.clean_img(surf(40), mask_img=mask, **options)
    expected = nimage.clean_img(surf(40), mask_img=mask, **options)
    assert_same_surface(got, expected, rtol=1e-7, atol=1e-10)
    with pytest.raises(ValueError, match="t_r.*must be specified"):
        masking.clean_img(surf(40), low_pass=0.1)
    with pytest.raises(ValueError, match="should be 2D"):
        masking.clean_img(surf())


@pytest.mark.parametrize("with_mask", [False, True])
def test_high_variance_confounds_surface_matches_nilearn(with_mask):
    mask = surf_mask() if with_mask else None
    got = masking.high_variance_confounds(surf(30), n_confounds=3, percentile=20.0, mask_img=mask)
    expected = nimage.high_variance_confounds(
        surf(30), n_confounds=3, percentile=20.0, mask_img=mask
    )
    assert got.shape == (30, 3)
    # singular vectors are defined up to sign
    assert_allclose(np.abs(got), np.abs(expected), rtol=1e-6, atol=1e-10)
