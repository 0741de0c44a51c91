"""Multi-subject maskers: parity with nilearn 0.14's MultiNifti*Masker."""

import warnings

import nibabel as nib
import numpy as np
import pytest
from numpy.testing import assert_allclose

from bidsmask.maskers import MultiNiftiLabelsMasker, MultiNiftiMapsMasker, MultiNiftiMasker

SHAPE = (9, 10, 8)


@pytest.fixture(scope="module")
def subjects():
    rng = np.random.default_rng(0)
    brain = np.zeros(SHAPE, bool)
    brain[2:7, 2:8, 2:6] = True
    imgs = []
    for n_vols in (20, 25, 30):
        data = rng.standard_normal((*SHAPE, n_vols)) + 100 * brain[..., None]
        imgs.append(nib.Nifti1Image(data.astype(np.float32), np.eye(4)))
    labels = np.zeros(SHAPE, np.int32)
    labels[2:5, 2:8, 2:6], labels[5:7, 2:8, 2:6] = 3, 7
    maps = np.stack([(labels == 3).astype(np.float32), (labels == 7).astype(np.float32)], -1)
    return {
        "imgs": imgs,
        "labels": nib.Nifti1Image(labels, np.eye(4)),
        "maps": nib.Nifti1Image(maps, np.eye(4)),
        "confounds": [rng.standard_normal((img.shape[3], 2)) for img in imgs],
    }


def _pair(kind, subjects, **kwargs):
    from nilearn import maskers as reference

    if kind == "MultiNiftiMasker":
        return MultiNiftiMasker(**kwargs), reference.MultiNiftiMasker(**kwargs)
    if kind == "MultiNiftiLabelsMasker":
        return (
            MultiNiftiLabelsMasker(subjects["labels"], **kwargs),
            reference.MultiNiftiLabelsMasker(subjects["labels"], **kwargs),
        )
    return (
        MultiNiftiMapsMasker(subjects["maps"], **kwargs),
        reference.MultiNiftiMapsMasker(subjects["maps"], **kwargs),
    )


@pytest.mark.parametrize(
    "kind", ["MultiNiftiMasker", "MultiNiftiLabelsMasker", "MultiNiftiMapsMasker"]
)
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_multi_maskers_match_nilearn(subjects, kind, n_jobs):
    ours, ref = _pair(kind, subjects, standardize="zscore_sample", detrend=True, n_jobs=n_jobs)
    assert ours.get_params()["n_jobs"] == n_jobs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = ours.fit_transform(subjects["imgs"], confounds=subjects["confounds"])
        expected = ref.fit_transform(subjects["imgs"], confounds=subjects["confounds"])
    assert isinstance(got, list) and len(got) == 3
    tol = 1e-3 if kind == "MultiNiftiMapsMasker" else 1e-4  # as the single maps masker's tests
    for a, b in zip(got, expected, strict=True):
        assert a.shape == b.shape
        assert_allclose(a, b, rtol=tol, atol=tol)
    one = ours.transform(subjects["imgs"][0], confounds=subjects["confounds"][0])
    assert_allclose(one, got[0], rtol=1e-6)
    again = ours.transform_imgs(subjects["imgs"][1:], confounds=subjects["confounds"][1:])
    assert_allclose(again[1], got[2], rtol=1e-6)
    with pytest.raises(ValueError, match="give one each"):
        ours.transform_imgs(subjects["imgs"], confounds=subjects["confounds"][:1])


def test_multi_masker_clone():
    from sklearn.base import clone

    masker = MultiNiftiMasker(smoothing_fwhm=4.0, n_jobs=2)
    copy = clone(masker)
    assert copy.n_jobs == 2 and copy.smoothing_fwhm == 4.0
