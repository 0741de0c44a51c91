import warnings

import numpy as np
import pytest
from nilearn import datasets
from numpy.testing import assert_allclose, assert_array_equal

from bidsmask.masking import _templates as templates


def quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


@pytest.mark.parametrize(
    "name,resolution",
    [
        ("load_mni152_template", 2),
        ("load_mni152_gm_template", 3),
        ("load_mni152_brain_mask", 2),
        ("load_mni152_wm_mask", 3),
    ],
)
def test_templates_match_nilearn(name, resolution):
    expected = quiet(getattr(datasets, name), resolution=resolution)
    got = getattr(templates, name)(resolution=resolution)
    assert got.shape == expected.shape
    assert_allclose(got.affine, expected.affine)
    got_data, expected_data = np.asarray(got.dataobj), np.asarray(expected.dataobj)
    assert got_data.dtype == expected_data.dtype
    assert_allclose(got_data, expected_data, rtol=1e-6, atol=1e-6)


def test_default_resolution_is_2mm_and_shapes():
    t1 = templates.load_mni152_template()
    assert t1.shape == (99, 117, 95)
    assert_allclose(np.abs(np.diag(t1.affine)[:3]), [2, 2, 2])
    assert templates.load_mni152_template(resolution=1).shape == (197, 233, 189)
    data = np.asarray(templates.load_mni152_template(resolution=1).dataobj)
    assert data.dtype == np.float32 and data.max() == 1.0


def test_returned_images_are_independent():
    first = templates.load_mni152_template()
    peak = np.asarray(first.dataobj).max()
    np.asarray(first.dataobj)[:] = 0
    assert peak > 0.9
    assert np.asarray(templates.load_mni152_template().dataobj).max() == peak


def test_mask_thresholds():
    loose = np.asarray(templates.load_mni152_brain_mask(threshold=0.1).dataobj)
    strict = np.asarray(templates.load_mni152_brain_mask(threshold=0.5).dataobj)
    assert loose.dtype == np.int8
    assert loose.sum() > strict.sum() > 0
    assert_array_equal(loose[strict > 0], 1)


def test_packaged_files_and_licence():
    for name in templates._FILES.values():
        assert (templates.TEMPLATE_DIR / name).exists()
    assert "McGill University" in (templates.TEMPLATE_DIR / "LICENSE").read_text()


def test_resolution_errors():
    with pytest.raises(ValueError, match="resolution must be >= 1"):
        templates.load_mni152_template(resolution=0)
    with pytest.raises(TypeError, match="integer"):
        templates.load_mni152_template(resolution=1.5)
