"""from_matrix_vector, get_mask_bounds, reorder_img and resample_img on 5D images, warnings."""

import warnings

import nibabel as nib
import numpy as np
import pytest
from nilearn.image import resampling as nresampling
from numpy.testing import assert_allclose, assert_array_equal

from bidsmask import image


def test_from_matrix_vector_matches_nilearn():
    matrix = np.arange(6.0).reshape(2, 3)
    vector = np.array([7.0, 8.0])
    assert_array_equal(
        image.from_matrix_vector(matrix, vector), nresampling.from_matrix_vector(matrix, vector)
    )


@pytest.mark.parametrize("affine", [np.eye(4), np.diag([2.0, 3.0, 1.5, 1.0])])
def test_get_mask_bounds_matches_nilearn(affine):
    data = np.zeros((6, 7, 8))
    data[1:4, 2:6, 3:5] = 1
    img = nib.Nifti1Image(data, affine)
    assert_allclose(image.get_mask_bounds(img), nresampling.get_mask_bounds(img))
    empty = nib.Nifti1Image(np.zeros((6, 7, 8)), affine)
    with pytest.warns(UserWarning, match="empty mask"):
        bounds = image.get_mask_bounds(empty)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_allclose(bounds, nresampling.get_mask_bounds(empty))
    with pytest.raises(image.DimensionError, match="Expected dimension is 3D"):
        image.get_mask_bounds(nib.Nifti1Image(np.ones((2, 2, 2, 2)), affine))


def test_reorder_and_resample_5d_images_match_nilearn():
    rng = np.random.default_rng(0)
    data = rng.uniform(size=(5, 6, 4, 2, 3))
    flipped = np.diag([-2.0, 2.0, 2.0, 1.0])
    img = nib.Nifti1Image(data, flipped)
    got = image.reorder_img(img)
    expected = nresampling.reorder_img(img)
    assert_array_equal(got.affine, expected.affine)
    assert_allclose(got.get_fdata(), expected.get_fdata())
    img = nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0]))
    target = np.array([[0, 2.0, 0, 1], [2.0, 0, 0, -1], [0, 0, 2.0, 0.5], [0, 0, 0, 1]])
    got = image.resample_img(img, target_affine=target, interpolation="linear")
    expected = nresampling.resample_img(
        img, target_affine=target, interpolation="linear", force_resample=True, copy_header=True
    )
    assert got.shape == expected.shape
    assert_allclose(got.get_fdata(), expected.get_fdata(), atol=1e-10)
    with pytest.raises(ValueError, match="'interpolation' must be one of"):
        image.reorder_img(img, resample="cubic")


def test_resample_img_warns_like_nilearn():
    affine = np.eye(4)
    binary = nib.Nifti1Image((np.arange(60).reshape(3, 4, 5) % 3 == 0).astype(np.int32), affine)
    with pytest.warns(UserWarning, match="Resampling binary images with"):
        image.resample_img(binary, target_affine=2 * affine, interpolation="linear")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image.resample_img(binary, target_affine=2 * affine, interpolation="nearest")
    holes = np.full((8, 8, 8), 10.0)
    holes[3:5, 3:5, 3:5] = np.nan
    with pytest.warns(RuntimeWarning, match="NaNs or infinite values"):
        out = image.resample_img(nib.Nifti1Image(holes, 2 * affine), target_affine=affine)
    assert_allclose(out.get_fdata()[np.isfinite(out.get_fdata())], 10.0)
    no_sform = nib.Nifti1Image(np.full((3, 3, 3), 3.0), affine)
    no_sform.set_sform(None)
    with pytest.warns(UserWarning, match="has no sform"):
        image.resample_img(no_sform, target_affine=2 * affine)
