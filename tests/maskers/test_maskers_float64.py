"""float64 images are extracted, cleaned and returned in float64; float32 stays float32.

nilearn keeps float64 through its maskers: with float64 data, the cleaned signals are orthogonal
to the (centred) confounds to ~1e-8, as nilearn's ``test_confounds_standardization`` requires.
"""

import warnings

import nibabel as nib
import numpy as np
import pytest
from numpy.testing import assert_allclose

from bidsmask.maskers import NiftiLabelsMasker, NiftiMapsMasker, NiftiMasker

SHAPE = (5, 6, 4)
T = 100


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    labels = (np.arange(np.prod(SHAPE)).reshape(SHAPE) % 4).astype(np.int32)
    maps = np.stack([(labels == i).astype(np.float64) for i in (1, 2, 3)], axis=-1)
    return {
        "bold": 100 + 10 * rng.standard_normal((*SHAPE, T)),
        "confounds": 2 + rng.standard_normal((T, 6)),
        "labels": nib.Nifti1Image(labels, np.eye(4)),
        "maps": nib.Nifti1Image(maps, np.eye(4)),
    }


def _masker(kind, data, **kwargs):
    from nilearn import maskers as reference

    if kind == "NiftiMasker":
        return NiftiMasker(**kwargs), reference.NiftiMasker(**kwargs)
    if kind == "NiftiLabelsMasker":
        return (
            NiftiLabelsMasker(data["labels"], **kwargs),
            reference.NiftiLabelsMasker(data["labels"], **kwargs),
        )
    return NiftiMapsMasker(data["maps"], **kwargs), reference.NiftiMapsMasker(
        data["maps"], **kwargs
    )


@pytest.mark.parametrize("kind", ["NiftiMasker", "NiftiLabelsMasker", "NiftiMapsMasker"])
@pytest.mark.parametrize("standardize", [None, "zscore_sample", "psc"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dtype_and_confound_orthogonality(data, kind, standardize, dtype):
    img = nib.Nifti1Image(data["bold"].astype(dtype), np.eye(4))
    ours, ref = _masker(kind, data, standardize=standardize, detrend=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = ours.fit_transform(img, confounds=data["confounds"])
        expected = ref.fit_transform(img, confounds=data["confounds"])
    assert got.dtype == dtype  # nilearn's maps masker turns float32 data into float64
    if dtype == np.float64:
        assert expected.dtype == np.float64
    conf = data["confounds"] - data["confounds"].mean(axis=0)
    conf /= conf.std(axis=0)
    residual = np.abs(got.astype(np.float64).T @ conf).sum()
    if dtype == np.float64:
        assert residual < 1e-8 * (1 if standardize else 10)
        exact = kind == "NiftiMasker"  # region reductions round to float32 values
        assert_allclose(got, expected, rtol=1e-10 if exact else 1e-6, atol=1e-10 if exact else 1e-5)
    else:
        assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
