"""ConnectivityMeasure, sym_matrix_to_vec, vec_to_sym_matrix: parity with nilearn 0.14."""

import sys
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose

from bidsmask.connectivity import ConnectivityMeasure, sym_matrix_to_vec, vec_to_sym_matrix

KINDS = ["covariance", "correlation", "partial correlation", "tangent", "precision"]


def _subjects(n_subjects=4, n_features=5, seed=0):
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((n_features, n_features))
    return [
        rng.standard_normal((60 + 7 * i, n_features)) @ mixing + rng.standard_normal(n_features)
        for i in range(n_subjects)
    ]


def _reference(**kwargs):
    from nilearn.connectome import ConnectivityMeasure as Reference

    return Reference(**kwargs)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "vectorize, discard_diagonal", [(False, False), (True, False), (True, True)]
)
@pytest.mark.parametrize("standardize", [True, False])
def test_default_ledoit_wolf_matches_nilearn(kind, vectorize, discard_diagonal, standardize):
    subjects = _subjects()
    kwargs = dict(
        kind=kind, vectorize=vectorize, discard_diagonal=discard_diagonal, standardize=standardize
    )
    ours = ConnectivityMeasure(**kwargs)
    ref = _reference(**kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got, expected = ours.fit_transform(subjects), ref.fit_transform(subjects)
    assert_allclose(got, expected, rtol=1e-6, atol=1e-8)
    assert_allclose(ours.mean_, ref.mean_, rtol=1e-6, atol=1e-8)
    if kind == "tangent":
        assert_allclose(ours.whitening_, ref.whitening_, rtol=1e-6, atol=1e-8)
    else:
        assert ours.whitening_ is None
    new = _subjects(3, seed=1)
    assert_allclose(ours.transform(new), ref.transform(new), rtol=1e-6, atol=1e-8)
    if not (discard_diagonal and kind not in ("correlation", "partial correlation")):
        assert_allclose(
            ours.inverse_transform(got), ref.inverse_transform(expected), rtol=1e-6, atol=1e-8
        )


@pytest.mark.parametrize("kind", ["covariance", "correlation", "partial correlation"])
def test_scikit_learn_estimators_are_accepted(kind):
    from sklearn.covariance import EmpiricalCovariance

    subjects = _subjects()
    ours = ConnectivityMeasure(cov_estimator=EmpiricalCovariance(), kind=kind)
    ref = _reference(cov_estimator=EmpiricalCovariance(), kind=kind)
    assert_allclose(ours.fit_transform(subjects), ref.fit_transform(subjects), rtol=1e-8)
    assert ours.cov_estimator_ is not ours.cov_estimator


def test_vectors_round_trip_and_match_nilearn():
    from nilearn.connectome import sym_matrix_to_vec as ref_to_vec
    from nilearn.connectome import vec_to_sym_matrix as ref_to_matrix

    rng = np.random.default_rng(2)
    a = rng.standard_normal((3, 6, 6))
    sym = a + np.swapaxes(a, 1, 2)
    for discard in (False, True):
        assert_allclose(sym_matrix_to_vec(sym, discard), ref_to_vec(sym, discard))
    vec = sym_matrix_to_vec(sym)
    assert_allclose(vec_to_sym_matrix(vec), sym)
    assert_allclose(vec_to_sym_matrix(vec), ref_to_matrix(vec))
    off = sym_matrix_to_vec(sym, discard_diagonal=True)
    diagonal = np.diagonal(sym, axis1=1, axis2=2) / np.sqrt(2)
    assert_allclose(vec_to_sym_matrix(off, diagonal), ref_to_matrix(off, diagonal))
    assert_allclose(vec_to_sym_matrix(off, diagonal), sym)
    with pytest.raises(ValueError, match="unsuitable shape"):
        vec_to_sym_matrix(np.ones(4))
    with pytest.raises(ValueError, match="incompatible"):
        vec_to_sym_matrix(off, diagonal[:, :3])


def test_errors_and_confounds():
    subjects = _subjects()
    with pytest.raises(ValueError, match="'kind' must be one of"):
        ConnectivityMeasure(kind="coherence").fit(subjects)
    with pytest.raises(ValueError, match="same number of features"):
        ConnectivityMeasure().fit([subjects[0], subjects[1][:, :3]])
    with pytest.raises(ValueError, match="group of subjects"):
        ConnectivityMeasure(kind="tangent").fit_transform(subjects[:1])
    with pytest.raises(ValueError, match="vectorize=False"):
        ConnectivityMeasure().fit_transform(subjects, confounds=np.ones((4, 1)))
    confounds = np.random.default_rng(3).standard_normal((4, 2))
    kwargs = dict(kind="correlation", vectorize=True)
    assert_allclose(
        ConnectivityMeasure(**kwargs).fit_transform(subjects, confounds=confounds),
        _reference(**kwargs).fit_transform(subjects, confounds=confounds),
        rtol=1e-6,
        atol=1e-8,
    )


def test_no_scikit_learn_at_import():
    code = "import bidsmask.connectivity, sys; print('sklearn' in sys.modules)"
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_tangent_needs_a_group_before_fitting():
    """As nilearn: one subject raises before any (here degenerate) covariance is fitted."""
    measure = ConnectivityMeasure(kind="tangent")
    with pytest.raises(ValueError, match=r"Tangent space parametrization .* group of subjects"):
        measure.fit_transform([np.ones((100, 40))])
    assert not hasattr(measure, "mean_")
