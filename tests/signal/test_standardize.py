import warnings

import numpy as np
import pytest
from nilearn import signal as nl_signal
from numpy.testing import assert_allclose, assert_array_equal

from bidsmask.signal import clean, row_sum_of_squares, standardize_signal


def _x(dtype=np.float64, n_times=40, n_signals=7, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_times, n_signals)) + np.linspace(-3, 5, n_signals)
    x += np.arange(n_times)[:, None] * 0.05
    return x.astype(dtype)


def _nilearn(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


# psc of a detrended float32 signal divides by a rounding-noise mean (in nilearn too): left out
_CASES = [
    (dtype, detrend, standardize)
    for dtype in (np.float32, np.float64)
    for detrend in (False, True)
    for standardize in ("zscore_sample", "psc", None)
    if not (detrend and standardize == "psc" and dtype == np.float32)
]


@pytest.mark.parametrize(("dtype", "detrend", "standardize"), _CASES)
def test_standardize_signal_matches_nilearn(dtype, detrend, standardize):
    x = _x(dtype)
    before = x.copy()
    ours = standardize_signal(x, detrend=detrend, standardize=standardize)
    ref = _nilearn(nl_signal.standardize_signal, x.copy(), detrend=detrend, standardize=standardize)
    assert_array_equal(x, before)  # input untouched
    assert ours.dtype == ref.dtype
    tol = 1e-4 if dtype == np.float32 else 1e-10
    assert_allclose(ours, ref, rtol=tol, atol=tol)


def test_standardize_signal_zscore_numbers():
    x = np.array([[1.0, 10.0], [2.0, 10.0], [3.0, 13.0]])
    out = standardize_signal(x)
    assert_allclose(out.mean(axis=0), 0, atol=1e-15)
    assert_allclose(out.std(axis=0, ddof=1), 1)
    assert_allclose(out[:, 0], [-1, 0, 1])


def test_standardize_signal_psc_matches_clean():
    x = _x()
    assert_allclose(
        standardize_signal(x, standardize="psc"),
        clean(x, detrend=False, standardize="psc"),
        atol=1e-10,
    )


def test_standardize_signal_psc_zero_mean_columns_are_zeroed():
    x = _x()
    x[:, 2] -= x[:, 2].mean()
    x[:, 2] -= x[:, 2].mean()
    assert abs(x[:, 2].mean()) < np.finfo(np.float64).eps
    with pytest.warns(UserWarning, match="meaningless for features that have a mean of 0"):
        out = standardize_signal(x, standardize="psc")
    assert_array_equal(out[:, 2], 0)
    assert_allclose(out[:, 0], 100 * (x[:, 0] - x[:, 0].mean()) / abs(x[:, 0].mean()))


def test_standardize_signal_constant_and_single_row():
    x = np.ones((5, 2)) * 3.0
    assert_array_equal(standardize_signal(x), 0)
    row = np.arange(4.0)[None, :]
    with pytest.warns(UserWarning, match="single time point"):
        assert_array_equal(standardize_signal(row), row)


def test_standardize_signal_booleans_and_errors():
    x = _x()
    with pytest.warns(FutureWarning, match="boolean values for 'standardize'"):
        assert_array_equal(standardize_signal(x, standardize=True), standardize_signal(x))
    with pytest.warns(FutureWarning):
        assert_array_equal(standardize_signal(x, standardize=False), x)
    with pytest.raises(ValueError, match="'standardize' must be one of"):
        standardize_signal(x, standardize="foo")


def test_standardize_signal_integers_become_float64():
    x = np.arange(12).reshape(4, 3) ** 2
    out = standardize_signal(x)
    assert out.dtype == np.float64
    assert_allclose(out, _nilearn(nl_signal.standardize_signal, x.astype(float)))


@pytest.mark.parametrize("n_signals", [3, 499, 501, 1200])
@pytest.mark.parametrize("n_batches", [1, 7, 20])
def test_row_sum_of_squares_matches_nilearn(n_signals, n_batches):
    x = _x(n_times=11, n_signals=n_signals, seed=n_signals)
    ours = row_sum_of_squares(x, n_batches=n_batches)
    assert ours.dtype == np.float64
    assert_allclose(ours, nl_signal.row_sum_of_squares(x, n_batches=n_batches), rtol=1e-13)
    assert_allclose(ours, (x**2).sum(axis=0), rtol=1e-13)
