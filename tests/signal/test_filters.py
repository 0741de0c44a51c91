import warnings

import numpy as np
import pytest
from nilearn import signal as nl_signal
from nilearn.glm.first_level.design_matrix import create_cosine_drift
from numpy.testing import assert_allclose

from bidsmask.signal import _filters
from bidsmask.signal import create_cosine_drift as create_cosine_drift_ours


@pytest.fixture
def x():
    return np.random.default_rng(0).standard_normal((80, 6)) + np.arange(80)[:, None] * 0.1


def test_detrend_matches_nilearn(x):
    assert_allclose(_filters.detrend(x), nl_signal._detrend(x.copy()), atol=1e-12)


def test_detrend_single_time_point_warns():
    with pytest.warns(UserWarning, match="single time point"):
        out = _filters.detrend(np.ones((1, 3)))
    assert_allclose(out, 1.0)


@pytest.mark.parametrize(
    ("low", "high", "order", "padtype", "padlen"),
    [
        (0.1, None, 5, "odd", None),
        (None, 0.02, 5, "odd", None),
        (0.1, 0.02, 3, "even", 10),
        (0.2, 0.01, 5, "constant", None),
        (0.2, 0.01, 4, None, None),
    ],
)
def test_butterworth_matches_nilearn(x, low, high, order, padtype, padlen):
    ours = _filters.butterworth_filter(x, 2.0, low, high, order, padtype, padlen)
    ref = nl_signal.butterworth(
        x.copy(), 0.5, low, high, order=order, padtype=padtype, padlen=padlen, copy=True
    )
    assert_allclose(ours, ref, atol=1e-12)


def test_butterworth_is_its_identity_operator(x):
    # filtfilt with fixed padding is linear: filtering the identity gives its matrix
    op = _filters.butterworth_filter(np.eye(80), 2.0, 0.1, 0.01)
    assert_allclose(op @ x, _filters.butterworth_filter(x, 2.0, 0.1, 0.01), atol=1e-12)


def test_butterworth_too_short_names_the_fix():
    with pytest.raises(ValueError, match="Butterworth filtering of 10 time points failed"):
        _filters.butterworth_filter(np.ones((10, 1)), 2.0, 0.1, 0.01)


def test_cosine_drift_matches_nilearn():
    ref = create_cosine_drift(0.01, np.arange(120) * 2.0)[:, :-1]
    assert_allclose(_filters.cosine_drift(0.01, 120, 2.0), ref, atol=1e-12)


@pytest.mark.parametrize(
    ("high_pass", "frame_times"),
    [(0.01, np.arange(120) * 2.0), (0.1, np.arange(20.0)), (0.008, 3.0 + np.arange(45) * 2.5)],
)
def test_create_cosine_drift_matches_nilearn(high_pass, frame_times):
    ours = create_cosine_drift_ours(high_pass, frame_times)
    ref = create_cosine_drift(high_pass, frame_times)
    assert ours.shape == ref.shape
    assert_allclose(ours, ref, atol=1e-12)
    assert_allclose(ours[:, -1], 1.0)


def test_create_cosine_drift_warns_when_saturated():
    with pytest.warns(UserWarning, match="span all accessible frequencies"):
        ours = create_cosine_drift_ours(0.3, np.arange(10) * 2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = create_cosine_drift(0.3, np.arange(10) * 2.0)
    assert_allclose(ours, ref, atol=1e-12)


def test_add_cosine_drift_keeps_user_cosines():
    drift = _filters.cosine_drift(0.01, 120, 2.0)
    user = np.hstack((np.random.default_rng(1).standard_normal((120, 2)), drift[:, :1]))
    with pytest.warns(UserWarning, match="already exist"):
        assert _filters.add_cosine_drift(user, 0.01, 2.0, 120) is user
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = _filters.add_cosine_drift(user[:, :2], 0.01, 2.0, 120)
    assert out.shape == (120, 2 + drift.shape[1])
    with pytest.warns(UserWarning, match="too short"):
        assert _filters.add_cosine_drift(None, 0.001, 2.0, 10) is None


def test_interpolate_censored_fills_only_censored(x):
    keep = np.setdiff1d(np.arange(80), [0, 1, 30, 31, 79])
    values, new_keep = _filters.interpolate_censored(x, keep, 2.0, extrapolate=False)
    assert values.shape == (77, 6)  # rows 0, 1 and 79 dropped
    assert_allclose(values[new_keep], x[keep])
    assert np.isfinite(values).all()
    assert not np.allclose(values[28:30], x[30:32])
    values, new_keep = _filters.interpolate_censored(x, keep, 2.0, extrapolate=True)
    assert values.shape == (80, 6)
    np.testing.assert_array_equal(new_keep, keep)


@pytest.mark.parametrize(
    "low_pass, high_pass",
    [(0.08, None), (None, 0.01), (0.08, 0.01), (0.5, None), (None, 0.6), (0.7, 0.01), (None, -0.1)],
)
@pytest.mark.parametrize("shape", [(80,), (80, 6)])
@pytest.mark.parametrize("copy", [True, False])
def test_public_butterworth_matches_nilearn(low_pass, high_pass, shape, copy):
    from bidsmask.signal import butterworth

    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape).astype(np.float32)
    ours_in, ref_in = x.copy(), x.copy()
    with warnings.catch_warnings(record=True) as ours_warnings:
        warnings.simplefilter("always")
        ours = butterworth(ours_in, 1.0, low_pass=low_pass, high_pass=high_pass, copy=copy)
    with warnings.catch_warnings(record=True) as ref_warnings:
        warnings.simplefilter("always")
        ref = nl_signal.butterworth(ref_in, 1.0, low_pass=low_pass, high_pass=high_pass, copy=copy)
    assert ours.dtype == ref.dtype and ours.shape == ref.shape
    assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)
    assert_allclose(ours_in, ref_in, rtol=1e-5, atol=1e-6)  # in place when copy=False
    assert (ours is ours_in) == (ref is ref_in)
    assert len(ours_warnings) == len(ref_warnings)
    for got, expected in zip(ours_warnings, ref_warnings, strict=True):
        assert str(got.message).split()[:12] == str(expected.message).split()[:12]


def test_butterworth_band_order_and_equal_edges():
    from bidsmask.signal import butterworth

    x = np.random.default_rng(3).standard_normal((60, 2))
    with pytest.raises(ValueError, match="greater than or equal to low pass"):
        butterworth(x, 1.0, low_pass=0.1, high_pass=0.2)
    with pytest.warns(UserWarning, match="critical frequencies are equal"):
        out = butterworth(x, 1.0, low_pass=0.6, high_pass=0.55, copy=True)
    assert_allclose(out, x)
    assert butterworth(x, 1.0) is x
