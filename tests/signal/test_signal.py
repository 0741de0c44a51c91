import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from nilearn import signal as nl_signal
from numpy.testing import assert_allclose

from bidsmask.signal import AllVolumesRemovedError, clean, high_variance_confounds

T_R = 2.0
N_TIMES = 90


def _signals(dtype, n_times=N_TIMES, n_signals=40, seed=0):
    rng = np.random.default_rng(seed)
    trend = np.linspace(0, 4, n_times)[:, None]
    x = 50 + 3 * rng.standard_normal((n_times, n_signals)) + trend
    x += np.sin(np.arange(n_times) * 0.7)[:, None]
    return x.astype(dtype)


def _confounds(n_times=N_TIMES, n=5, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n_times, n))


def _nilearn_clean(signals, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nl_signal.clean(signals.copy(), **kwargs)


def _fixed_interpolate(volumes, sample_mask, t_r, extrapolate):
    """nilearn 0.14's _interpolate_volumes with its index-negation bug fixed."""
    censored = np.ones(volumes.shape[0], dtype=bool)
    censored[sample_mask] = False
    from scipy.interpolate import CubicSpline

    times = np.arange(volumes.shape[0]) * t_r
    spline = CubicSpline(times[sample_mask], volumes[sample_mask], extrapolate=extrapolate)
    volumes[censored] = spline(times[censored])
    return volumes


def _assert_close(ours, ref, dtype):
    rtol = 1e-4 if dtype == np.float64 else 1e-3
    atol = rtol * np.abs(ref).max()
    assert ours.dtype == dtype
    assert ours.shape == ref.shape
    assert_allclose(ours, ref, rtol=rtol, atol=atol)


FILTERS = [
    {},
    {"low_pass": 0.1, "t_r": T_R},
    {"high_pass": 0.01, "t_r": T_R},
    {"high_pass": 0.01, "low_pass": 0.08, "t_r": T_R},
    {"filter": "cosine", "high_pass": 0.01, "t_r": T_R},
    {"filter": False},
]
OPTIONS = list(
    itertools.product(
        [np.float32, np.float64],
        [True, False],
        ["zscore_sample", "psc", None],
        FILTERS,
        [False, True],
    )
)


@pytest.mark.parametrize(("dtype", "detrend", "standardize", "filt", "with_conf"), OPTIONS)
def test_parity_with_nilearn(dtype, detrend, standardize, filt, with_conf):
    x = _signals(dtype)
    kwargs = {"detrend": detrend, "standardize": standardize, **filt}
    if with_conf:
        kwargs["confounds"] = _confounds()
    _assert_close(clean(x, **kwargs), _nilearn_clean(x, **kwargs), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("filt", FILTERS[:5])
def test_parity_sample_mask_head_censoring(dtype, filt):
    # censoring only at the start (dummy scans): nilearn 0.14 is exact here
    x = _signals(dtype)
    kwargs = {"confounds": _confounds(), "sample_mask": np.arange(6, N_TIMES), **filt}
    _assert_close(clean(x, **kwargs), _nilearn_clean(x, **kwargs), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("extrapolate", [False, True])
@pytest.mark.parametrize("as_bool", [False, True])
def test_parity_sample_mask_scrubbing(monkeypatch, dtype, extrapolate, as_bool):
    monkeypatch.setattr(nl_signal, "_interpolate_volumes", _fixed_interpolate)
    x = _signals(dtype)
    keep = np.setdiff1d(np.arange(N_TIMES), [0, 1, 20, 21, 22, 50, 88, 89])
    mask = np.isin(np.arange(N_TIMES), keep) if as_bool else keep
    kwargs = {
        "confounds": _confounds(),
        "high_pass": 0.01,
        "low_pass": 0.1,
        "t_r": T_R,
        "extrapolate": extrapolate,
    }
    ours = clean(x, sample_mask=mask, **kwargs)
    ref = _nilearn_clean(x, sample_mask=keep.copy(), **kwargs)
    _assert_close(ours, ref, dtype)
    assert ours.shape[0] == len(keep)


def test_censored_volumes_are_interpolated_not_mirrored():
    # an outlier in a censored volume must not leak into the kept volumes
    x = _signals(np.float64)
    keep = np.setdiff1d(np.arange(N_TIMES), [3, 30, 31])
    spiked = x.copy()
    spiked[[30, 31]] += 1e6
    kwargs = {"sample_mask": keep, "low_pass": 0.1, "t_r": T_R}
    assert_allclose(clean(spiked, **kwargs), clean(x, **kwargs), atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("filt", FILTERS[:5])
def test_parity_runs(dtype, filt):
    x = _signals(dtype)
    runs = np.repeat([1, 0], N_TIMES // 2)
    kwargs = {"runs": runs, "confounds": _confounds(), **filt}
    _assert_close(clean(x, **kwargs), _nilearn_clean(x, **kwargs), dtype)


def test_parity_runs_with_sample_masks():
    x = _signals(np.float64)
    runs = np.repeat([0, 1], N_TIMES // 2)
    masks = [np.arange(3, 45), np.arange(0, 40)]
    kwargs = {"runs": runs, "low_pass": 0.1, "t_r": T_R}
    ours = clean(x, sample_mask=masks, **kwargs)
    ref = _nilearn_clean(x, sample_mask=[m.copy() for m in masks], **kwargs)
    _assert_close(ours, ref, np.float64)


def test_runs_honour_every_option():
    # nilearn ignores standardize_confounds and butterworth__* inside runs; we don't
    x = _signals(np.float64)
    conf = _confounds()
    runs = np.repeat([0, 1], N_TIMES // 2)
    kwargs = {
        "standardize_confounds": False,
        "high_pass": 0.02,
        "low_pass": 0.1,
        "t_r": T_R,
        "butterworth__order": 3,
        "butterworth__padtype": "even",
    }
    ours = clean(x, runs=runs, confounds=conf, **kwargs)
    expected = np.vstack([clean(x[runs == r], confounds=conf[runs == r], **kwargs) for r in (0, 1)])
    assert_allclose(ours, expected, rtol=1e-10, atol=1e-10)
    nilearn_defaults = _nilearn_clean(x, runs=runs, confounds=conf, **kwargs)
    assert not np.allclose(ours, nilearn_defaults, atol=1e-3)


@pytest.mark.parametrize(
    "bw", [{"butterworth__order": 3}, {"butterworth__padtype": "even", "butterworth__padlen": 20}]
)
def test_parity_butterworth_options(bw):
    x = _signals(np.float64)
    kwargs = {"high_pass": 0.01, "low_pass": 0.1, "t_r": T_R, "confounds": _confounds(), **bw}
    _assert_close(clean(x, **kwargs), _nilearn_clean(x, **kwargs), np.float64)


@pytest.mark.parametrize("filt", FILTERS[:5])
def test_collinear_confounds_are_dropped(filt):
    x = _signals(np.float64)
    conf = _confounds()
    collinear = np.hstack((conf, -2 * conf[:, :1], conf[:, 1:2] + conf[:, 2:3]))
    assert_allclose(
        clean(x, confounds=collinear, **filt), clean(x, confounds=conf, **filt), atol=1e-8
    )


def test_parity_standardize_confounds_false():
    x = _signals(np.float64)
    kwargs = {"confounds": _confounds(), "standardize_confounds": False}
    _assert_close(clean(x, **kwargs), _nilearn_clean(x, **kwargs), np.float64)


def test_zscore_uses_population_std():
    x = _signals(np.float64)
    out = clean(x, standardize="zscore")
    assert_allclose(out.std(axis=0), 1.0, rtol=1e-10)
    assert_allclose(out.mean(axis=0), 0.0, atol=1e-10)


def test_standardize_true_is_deprecated_alias():
    x = _signals(np.float64)
    with pytest.warns(FutureWarning, match="zscore_sample"):
        out = clean(x, standardize=True)
    assert_allclose(out, clean(x), rtol=1e-12)


def test_ensure_finite_and_integer_input():
    x = _signals(np.float64)
    bad = x.copy()
    bad[3, 2] = np.nan
    bad[5, 1] = np.inf
    fixed = x.copy()
    fixed[3, 2] = 0
    fixed[5, 1] = 0
    assert_allclose(clean(bad, ensure_finite=True), clean(fixed), rtol=1e-12)
    ints = np.round(x * 10).astype(np.int16)
    out = clean(ints)
    assert out.dtype == np.float32
    _assert_close(out, _nilearn_clean(ints), np.float32)


def test_input_not_modified_and_float32_kept():
    x = _signals(np.float32)
    before = x.copy()
    out = clean(x, confounds=_confounds(), low_pass=0.1, t_r=T_R)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(x, before)


def test_confounds_from_files_dataframe_and_list(tmp_path):
    x = _signals(np.float64)
    conf = _confounds()[:, :3]
    names = ["a", "b", "c"]
    pd.DataFrame(conf, columns=names).to_csv(tmp_path / "h.tsv", sep="\t", index=False)
    np.savetxt(tmp_path / "noh.csv", conf, delimiter=",")
    np.savetxt(tmp_path / "space.txt", conf)
    ref = clean(x, confounds=conf)
    for conf_in in [
        str(tmp_path / "h.tsv"),
        tmp_path / "noh.csv",
        tmp_path / "space.txt",
        pd.DataFrame(conf, columns=names),
        [conf[:, :1], pd.DataFrame(conf[:, 1:2]), conf[:, 2]],
    ]:
        assert_allclose(clean(x, confounds=conf_in), ref, rtol=1e-9)
    _assert_close(
        clean(x, confounds=str(tmp_path / "h.tsv")),
        _nilearn_clean(x, confounds=str(tmp_path / "h.tsv")),
        np.float64,
    )


def test_high_variance_confounds_parity():
    x = _signals(np.float64, n_signals=600)
    for detrend in (True, False):
        ours = high_variance_confounds(x, n_confounds=4, percentile=5.0, detrend=detrend)
        ref = nl_signal.high_variance_confounds(
            x.copy(), n_confounds=4, percentile=5.0, detrend=detrend
        )
        # eigenvectors are defined up to their sign
        assert_allclose(np.abs(ours.T @ ref), np.eye(4), atol=1e-6)


# ---- errors ------------------------------------------------------------------


def test_error_confounds_length():
    with pytest.raises(
        ValueError,
        match="incorrect length. confounds array has 80 rows but signals have 90 time points",
    ):
        clean(_signals(np.float64), confounds=_confounds(n_times=80))


def test_error_confounds_nan_names_column(tmp_path):
    conf = pd.DataFrame(_confounds()[:, :2], columns=["csf", "trans_x_derivative1"])
    conf.iloc[0, 1] = np.nan
    with pytest.raises(ValueError, match="column 'trans_x_derivative1' contains NaN"):
        clean(_signals(np.float64), confounds=conf)
    arr = _confounds()
    arr[4, 2] = np.nan
    with pytest.raises(ValueError, match="column index 2 contains NaN"):
        clean(_signals(np.float64), confounds=arr)
    conf.to_csv(tmp_path / "c.tsv", sep="\t", index=False, na_rep="n/a")
    with pytest.raises(ValueError, match="'trans_x_derivative1' contains NaN"):
        clean(_signals(np.float64), confounds=tmp_path / "c.tsv")


def test_error_confounds_type_and_missing_file(tmp_path):
    with pytest.raises(TypeError, match="confounds. must be of type"):
        clean(_signals(np.float64), confounds={"a": 1})
    with pytest.raises(FileNotFoundError, match="nope.tsv"):
        clean(_signals(np.float64), confounds=tmp_path / "nope.tsv")


def test_error_t_r_missing():
    with pytest.raises(ValueError, match="Repetition time .* must be specified for butterworth"):
        clean(_signals(np.float64), low_pass=0.1, t_r=None)
    with pytest.raises(ValueError, match=r"Repetition time .* and low cutoff frequency .* cosine"):
        clean(_signals(np.float64), filter="cosine", t_r=None, high_pass=0.01)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kwargs", [{"low_pass": 0.3}, {"high_pass": 0.25}, {"low_pass": 0.25}])
def test_cut_offs_at_or_above_nyquist_are_lowered_like_nilearn(dtype, kwargs):
    x = _signals(dtype)
    with pytest.warns(UserWarning, match="Nyquist frequency"):
        got = clean(x, t_r=T_R, confounds=_confounds(), **kwargs)
    expected = _nilearn_clean(x, t_r=T_R, confounds=_confounds(), **kwargs)
    assert_allclose(got, expected, rtol=1e-4, atol=1e-4 if dtype == np.float32 else 1e-8)


def test_error_band_order():
    with pytest.raises(ValueError, match="high_pass must be lower than low_pass"):
        clean(_signals(np.float64), high_pass=0.1, low_pass=0.05, t_r=2.0)


def test_error_sample_mask():
    x = _signals(np.float64)
    with pytest.raises(IndexError, match=r"invalid index \[90\]: outside the run's 90 time points"):
        clean(x, sample_mask=np.array([0, 5, 90]))
    with pytest.raises(IndexError, match="outside"):
        clean(x, sample_mask=np.array([-1, 5]))
    with pytest.raises(TypeError, match="'sample_mask' must be of type"):
        clean(x, sample_mask="0:10")
    with pytest.raises(TypeError, match="integer indices or booleans"):
        clean(x, sample_mask=np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="boolean mask of length 10"):
        clean(x, sample_mask=np.ones(10, dtype=bool))
    with pytest.raises(AllVolumesRemovedError, match="sample mask is 0. sample_mask removes every"):
        clean(x, sample_mask=np.zeros(N_TIMES, dtype=bool))
    with pytest.raises(IndexError, match="has more timepoints than the current run: 91 indices"):
        clean(x, sample_mask=np.arange(N_TIMES + 1))
    with pytest.raises(
        ValueError, match=r"Number of sample_mask \(2\) not matching number of runs \(1\)"
    ):
        clean(x, sample_mask=[np.arange(5), np.arange(5)])


def test_error_misc_parameters():
    x = _signals(np.float64)
    with pytest.raises(ValueError, match="'standardize' must be one of"):
        clean(x, standardize="zscores")
    with pytest.raises(ValueError, match="filter must be"):
        clean(x, filter="fft")
    with pytest.raises(TypeError, match="unexpected keyword argument 'butterworth__foo'"):
        clean(x, butterworth__foo=1)
    with pytest.raises(ValueError, match="runs must be 1D"):
        clean(x, runs=np.zeros(5))
    with pytest.raises(ValueError, match="signals must be 2D"):
        clean(x[:, 0])


@pytest.mark.parametrize("detrend", [True, False])
def test_psc_zero_mean_columns_are_zeroed_with_a_warning(detrend):
    rng = np.random.default_rng(5)
    x = np.cumsum(rng.standard_normal((300, 6)), axis=0) + rng.standard_normal((1, 6))
    x[:, 3:] -= x[:, 3:].mean(axis=0)  # means of ~1e-16: rounding noise
    with pytest.warns(UserWarning, match="psc standardization strategy is meaningless") as rec:
        got = clean(x, standardize="psc", detrend=detrend)
    assert sum("psc standardization" in str(r.message) for r in rec) == 1
    assert_allclose(got[:, 3:], 0)
    expected = _nilearn_clean(x, standardize="psc", detrend=detrend)
    assert_allclose(got[:, :3], expected[:, :3], rtol=1e-8, atol=1e-8)
    assert np.abs(got).max() < 1e6


def test_list_of_lists_signals_match_nilearn():
    x = _signals(np.float64, n_signals=3)
    got = clean(x.tolist(), standardize=None, t_r=T_R)
    assert got.dtype == np.float64
    assert_allclose(got, _nilearn_clean(x.tolist(), standardize=None, t_r=T_R), atol=1e-10)


@pytest.mark.parametrize(
    "kwargs, error, nilearn_match",
    [
        ({"confounds": 1}, TypeError, "must be of type"),
        ({"confounds": [None]}, TypeError, "confound has an unhandled type"),
        ({"confounds": np.zeros((2, 3, 4))}, ValueError, "incorrect number of dimensions"),
        ({"sample_mask": "not_supported"}, TypeError, "must be of type"),
        (
            {"sample_mask": np.arange(10), "runs": np.repeat([0, 1], N_TIMES // 2)},
            ValueError,
            r"Number of sample_mask \(\d\) not matching",
        ),
    ],
)
def test_errors_have_nilearn_types_and_words(kwargs, error, nilearn_match):
    x = _signals(np.float64, n_signals=3)
    with pytest.raises(error, match=nilearn_match):
        clean(x, **kwargs)
    with pytest.raises(error, match=nilearn_match):
        nl_signal.clean(x, **kwargs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_constant_columns_stay_zero_like_nilearn(dtype):
    x = _signals(dtype, n_signals=4)
    x[:, 1] = 600.0
    conf = _confounds()
    got = clean(x, confounds=conf, standardize="zscore_sample", t_r=T_R)
    expected = _nilearn_clean(x, confounds=conf, standardize="zscore_sample", t_r=T_R)
    assert np.abs(got[:, 1]).max() < 1e-6
    assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
