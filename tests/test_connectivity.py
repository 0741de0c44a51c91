import numpy as np
import pytest
from nilearn.connectome import ConnectivityMeasure
from numpy.testing import assert_allclose
from sklearn.covariance import EmpiricalCovariance, LedoitWolf

from bidsmask.connectivity import (
    connectivity_matrix,
    covariance,
    fisher_z,
    fisher_z_average,
    ledoit_wolf,
    relmat_sidecar,
)


def _signals(n_t=80, n_r=12, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((n_r, n_r)) * 0.4 + np.eye(n_r)
    return (rng.standard_normal((n_t, n_r)) @ mixing * 3.0 + 5.0).astype(dtype)


@pytest.mark.parametrize("shape", [(80, 12), (30, 50), (200, 1)])
def test_ledoit_wolf_matches_sklearn(shape):
    x = _signals(*shape)
    est = LedoitWolf(store_precision=False).fit(x)
    cov, shrinkage = ledoit_wolf(x)
    assert_allclose(cov, est.covariance_, rtol=1e-10, atol=1e-12)
    assert shrinkage == pytest.approx(getattr(est, "shrinkage_", 0.0))


def test_empirical_matches_sklearn():
    x = _signals()
    assert_allclose(covariance(x, "empirical"), EmpiricalCovariance().fit(x).covariance_)


@pytest.mark.parametrize("kind", ["correlation", "partial correlation", "covariance"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(80, 12), (40, 30)])
def test_parity_with_nilearn(kind, dtype, shape):
    x = _signals(*shape, dtype=dtype)
    rtol = 1e-5 if dtype == np.float32 else 1e-9
    lw = ConnectivityMeasure(kind=kind).fit_transform([x])[0]
    assert_allclose(connectivity_matrix(x, kind, "ledoit_wolf"), lw, rtol=rtol, atol=rtol)
    emp = ConnectivityMeasure(kind=kind, cov_estimator=EmpiricalCovariance()).fit_transform([x])[0]
    assert_allclose(connectivity_matrix(x, kind, "empirical"), emp, rtol=rtol, atol=rtol)


def test_empirical_correlation_is_pearson():
    x = _signals()
    assert_allclose(connectivity_matrix(x), np.corrcoef(x.T), atol=1e-12)


def test_missing_and_constant_regions_are_nan():
    x = _signals(60, 6)
    x[:, 2] = np.nan
    x[:, 4] = 7.0
    out = connectivity_matrix(x, "correlation")
    keep = [0, 1, 3, 5]
    assert np.isnan(out[2]).all() and np.isnan(out[:, 2]).all()
    assert np.isnan(out[4]).all() and np.isnan(out[:, 4]).all()
    assert_allclose(out[np.ix_(keep, keep)], np.corrcoef(x[:, keep].T), atol=1e-12)
    assert np.isnan(connectivity_matrix(np.full((10, 3), np.nan))).all()


def test_errors():
    x = _signals(60, 6)
    with pytest.raises(ValueError, match="'kind' must be one of"):
        connectivity_matrix(x, "tangent")
    with pytest.raises(ValueError, match="'estimator' must be one of"):
        connectivity_matrix(x, estimator="oas")
    x[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"columns \[1\]"):
        connectivity_matrix(x)
    with pytest.raises(ValueError, match="singular"):
        connectivity_matrix(_signals(10, 30), "partial correlation", "empirical")
    with pytest.raises(ValueError, match="At least 2 time points"):
        connectivity_matrix(_signals(1, 3))


def test_fisher_z_and_average():
    a = np.array([[1.0, 0.2, np.nan], [0.2, 1.0, np.nan], [np.nan, np.nan, np.nan]])
    b = np.array([[1.0, 0.6, 0.1], [0.6, 1.0, -0.3], [0.1, -0.3, 1.0]])
    z = fisher_z(b)
    assert np.isnan(np.diag(z)).all()
    assert z[0, 1] == pytest.approx(np.arctanh(0.6))
    assert np.isfinite(fisher_z(np.array([[1.0, 1.0], [1.0, 1.0]]))[0, 1])
    avg = fisher_z_average([a, b])
    assert avg[0, 1] == pytest.approx(np.tanh((np.arctanh(0.2) + np.arctanh(0.6)) / 2))
    # region 2 missing in run a: its entries come from run b only
    assert avg[0, 2] == pytest.approx(0.1)
    assert_allclose(np.diag(avg), 1.0)
    assert np.isnan(fisher_z_average([a])[2, 2])
    with pytest.raises(ValueError, match="empty"):
        fisher_z_average([])


def test_relmat_sidecar():
    side = relmat_sidecar("partial correlation", "ledoit_wolf", ["bids::atlas-X_dseg.tsv"])
    assert side["RelationshipMeasure"] == "PartialCorrelation"
    assert side["Directed"] is False and side["Weighted"] is True
    assert side["ValidDiagonal"] is False
    assert side["NodeFiles"] == ["bids::atlas-X_dseg.tsv"]
    assert relmat_sidecar("covariance")["ValidDiagonal"] is True


def test_docstring_examples():
    import doctest

    import bidsmask.connectivity as module

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0
