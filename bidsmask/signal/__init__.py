"""Cleaning of time series: detrending, filtering, confound removal, standardization.

:func:`clean` has nilearn 0.14's signature, defaults, order of operations and
numbers. Every time-domain step (censoring with spline interpolation,
detrending, Butterworth filtering, cosine drift and confound projection) is
linear in the signals, so it is assembled once, in float64, as an
``(n_kept, n_times)`` matrix from the small inputs (the identity matrix and the
confounds), and applied to the signals with one BLAS matrix product per block of
columns, in the signals' own precision. Standardization follows, per column.

Also nilearn's stand-alone helpers: :func:`butterworth`, :func:`create_cosine_drift`,
:func:`standardize_signal`, :func:`row_sum_of_squares`, :func:`high_variance_confounds`,
and :class:`AllVolumesRemovedError` (raised for a sample mask that keeps no volume).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from scipy import linalg

from bidsmask.signal import _filters
from bidsmask.signal._filters import butterworth, create_cosine_drift
from bidsmask.signal._inputs import (
    AllVolumesRemovedError,
    check_filter,
    sanitize_confounds,
    sanitize_runs_and_masks,
    sanitize_standardize,
)
from bidsmask.signal._standardize import row_sum_of_squares, standardize_signal

logger = logging.getLogger(__name__)

__all__ = [
    "AllVolumesRemovedError",
    "butterworth",
    "clean",
    "create_cosine_drift",
    "high_variance_confounds",
    "row_sum_of_squares",
    "standardize_signal",
]

_EPS = np.finfo(np.float64).eps
_BLOCK_BYTES = 32 * 2**20

ConfoundsLike = np.ndarray | pd.DataFrame | str | Path | Sequence


def clean(
    signals: np.ndarray,
    runs: np.ndarray | None = None,
    detrend: bool = True,
    standardize: Literal["zscore_sample", "zscore", "psc"] | bool | None = "zscore_sample",
    sample_mask: np.ndarray | Sequence[np.ndarray] | None = None,
    confounds: ConfoundsLike | None = None,
    standardize_confounds: bool = True,
    filter: Literal["butterworth", "cosine", False] = "butterworth",
    low_pass: float | None = None,
    high_pass: float | None = None,
    t_r: float | None = 2.5,
    ensure_finite: bool = False,
    extrapolate: bool = False,
    **kwargs,
) -> np.ndarray:
    """Clean time series: censor, detrend, filter, remove confounds, standardize.

    Same parameters, defaults, order of operations and results as
    ``nilearn.signal.clean`` 0.14. Without censoring the steps are: detrend,
    Butterworth filter (signals and confounds alike), confound z-scoring and
    projection, standardization. With ``sample_mask`` and a Butterworth filter,
    censored volumes are first replaced by a cubic-spline interpolation of the
    kept ones, the signals are detrended and filtered, then the censored volumes
    are removed before confound removal (Lindquist et al. 2018). With
    ``filter="cosine"``, DCT drift regressors computed on the full run are added
    to the confounds, censored volumes are removed first, then detrend and
    confound removal follow.

    All time-domain steps are linear: they are assembled into one
    ``(n_kept, n_times)`` float64 operator and applied with a single matrix
    product per block of columns, in the precision of ``signals``.

    Parameters
    ----------
    signals : numpy.ndarray, shape (n_times, n_signals)
        Time series, one per column; not modified. float32 stays float32,
        float64 stays float64; integers become float32 (float64 if 8 bytes).
    runs : numpy.ndarray or None, shape (n_times,), default=None
        Run label of each time point; each run is cleaned on its own and the
        runs are stacked in sorted label order. Unlike nilearn, which drops
        ``standardize_confounds``, ``extrapolate`` and the ``butterworth__``
        options inside runs (using their defaults instead), every option is
        honoured within each run.
    detrend : bool, default=True
        Remove the mean and linear trend of signals and confounds.
    standardize : {"zscore_sample", "zscore", "psc"}, bool or None, \
            default="zscore_sample"
        ``"zscore_sample"``: unit standard deviation with ``ddof=1``;
        ``"zscore"``: ``ddof=0`` (nilearn < 0.14 only); ``"psc"``: percent
        signal change from the original mean; ``None``/``False``: none.
        ``True`` is a deprecated alias of ``"zscore_sample"``.
    sample_mask : numpy.ndarray, list of numpy.ndarray or None, default=None
        Volumes kept, as increasing indices or a boolean mask (``True`` =
        kept); with ``runs``, a list with one mask per run (indices within the
        run).
    confounds : array, DataFrame, path or list of these, default=None
        Confound time series, shape (n_times, n_confounds) or (n_times,). A
        path names a CSV/TSV file with an optional one-line header. A list is
        stacked column-wise.
    standardize_confounds : bool, default=True
        z-score the confounds (``ddof=1``) before the projection; if False they
        are only scaled by their maximum absolute value.
    filter : {"butterworth", "cosine", False}, default="butterworth"
        Temporal filter. ``"cosine"`` adds DCT drift regressors below
        ``high_pass`` to the confounds (``low_pass`` is ignored).
    low_pass, high_pass : float or None, default=None
        Cut-off frequencies in Hz.
    t_r : float or None, default=2.5
        Repetition time in seconds, needed for filtering and interpolation.
    ensure_finite : bool, default=False
        Replace NaN and infinite values in ``signals`` by zero.
    extrapolate : bool, default=False
        With a Butterworth filter, extrapolate censored volumes at both ends of
        the run instead of leaving them out of the filtering.
    **kwargs
        ``butterworth__order`` (default 5), ``butterworth__padtype`` (default
        ``"odd"``) and ``butterworth__padlen`` (default None), passed to the
        Butterworth filter.

    Returns
    -------
    numpy.ndarray, shape (n_kept, n_signals)
        Cleaned signals.

    Raises
    ------
    ValueError
        Confounds with a different number of rows than ``signals`` or with
        NaN; missing ``t_r`` for filtering; ``high_pass >= low_pass``; a bad
        ``sample_mask`` or ``runs``. Cut-offs at or above the Nyquist frequency
        are lowered just below it with a warning, as in nilearn.
    IndexError
        A ``sample_mask`` index outside the run.
    TypeError
        Unsupported types for ``signals``, ``confounds`` or ``sample_mask``, or
        an unknown keyword argument.

    Notes
    -----
    Deliberate differences from nilearn 0.14: censored volumes are
    interpolated where they are (nilearn 0.14 indexes its spline with the
    bitwise negation of the kept indices, which interpolates mirrored volumes
    and can shift the kept ones when volumes are censored at both ends); ``runs``
    honour every option; ``standardize="zscore"`` is accepted; confound columns
    whose QR pivot is below ``max|R_ii| * max(n_times, n_confounds) * eps`` are
    dropped as collinear (nilearn's absolute ``100 * eps`` threshold alone can keep
    an exactly collinear column as rounding noise and project out a random
    direction).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((100, 3)).astype(np.float32)
    >>> out = clean(x, low_pass=0.1, t_r=2.0)
    >>> out.shape, out.dtype, bool(np.allclose(out.std(axis=0, ddof=1), 1))
    ((100, 3), dtype('float32'), True)
    """
    bw_options = _butterworth_options(kwargs)
    signals = _as_signals(signals)
    n_times = signals.shape[0]
    out_dtype = _output_dtype(signals.dtype)
    filter_type = check_filter(filter, low_pass, high_pass, t_r)
    standardize = sanitize_standardize(standardize)
    if ensure_finite not in (True, False):
        raise ValueError(f"'ensure_finite' must be one of [True, False]; got {ensure_finite!r}.")
    conf_values = sanitize_confounds(confounds, n_times)
    if conf_values is not None and not detrend and not standardize_confounds:
        warnings.warn(
            "When confounds are provided, one must perform detrend and/or standardize "
            f"confounds (detrend=True and/or standardize_confounds=True); you gave "
            f"detrend={detrend}, standardize_confounds={standardize_confounds}, so "
            "non-centred confounds will not be removed correctly.",
            UserWarning,
            stacklevel=2,
        )
    segments = sanitize_runs_and_masks(runs, sample_mask, n_times)

    pieces = []
    for rows, keep in segments:
        run_conf = None if conf_values is None else conf_values[rows]
        operator, mean_row = _build_operator(
            n_rows=len(rows),
            confounds=run_conf,
            keep=keep,
            detrend=detrend,
            filter_type=filter_type,
            low_pass=low_pass,
            high_pass=high_pass,
            t_r=t_r,
            extrapolate=extrapolate,
            standardize_confounds=standardize_confounds,
            bw_options=bw_options,
        )
        logger.debug("clean: %d x %d operator for %d signals", *operator.shape, signals.shape[1])
        pieces.append((_as_index(rows, n_times), operator, mean_row))

    n_out = sum(op.shape[0] for _, op, _ in pieces)
    out = np.empty((n_out, signals.shape[1]), dtype=out_dtype)
    start = 0
    for rows, operator, mean_row in pieces:
        stop = start + operator.shape[0]
        run_standardize = _check_standardize_rows(standardize, operator.shape[0])
        ddof = {"zscore_sample": 1, "zscore": 0}.get(run_standardize)
        original_mean = _apply_operator(
            signals, rows, operator, mean_row, out[start:stop], ensure_finite, ddof
        )
        if run_standardize == "psc":
            _psc_inplace(out[start:stop], original_mean)
        start = stop
    return out


def high_variance_confounds(
    series: np.ndarray, n_confounds: int = 5, percentile: float = 2.0, detrend: bool = True
) -> np.ndarray:
    """Return confounds from the time series with the highest variance (CompCor-like).

    Same algorithm as ``nilearn.signal.high_variance_confounds``: optionally
    detrend, keep the columns whose mean of squares is above the
    ``100 - percentile`` percentile, and return the ``n_confounds`` leading
    eigenvectors of their (time x time) covariance.

    Parameters
    ----------
    series : numpy.ndarray, shape (n_times, n_features)
        Time series, one per column.
    n_confounds : int, default=5
        Number of confounds to return.
    percentile : float, default=2.0
        Percentage of highest-variance columns kept, in [0, 100].
    detrend : bool, default=True
        Remove mean and linear trend first.

    Returns
    -------
    numpy.ndarray, shape (n_times, n_confounds)
        Confound time series (eigenvectors, unit norm, sign as returned by
        :func:`scipy.linalg.eigh`).
    """
    series = _as_signals(series)
    if not 0 <= percentile <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {percentile}.")
    dtype = _output_dtype(series.dtype)
    if detrend and series.shape[0] > 1:
        operator = _filters.detrend(np.eye(series.shape[0]))
        series = (operator.astype(dtype) @ series.astype(dtype, copy=False)).astype(
            dtype, copy=False
        )
    else:
        series = series.astype(dtype, copy=False)
    var = np.einsum("ij,ij->j", series, series, dtype=np.float64) / series.shape[0]
    threshold = np.nanpercentile(var, 100.0 - percentile)
    selected = series[:, var > threshold].astype(np.float64)
    eigval, eigvec = linalg.eigh(selected @ selected.T / selected.shape[0])
    order = np.argsort(eigval)[::-1]
    return eigvec[:, order[:n_confounds]].copy()


def _butterworth_options(kwargs: dict) -> dict:
    options = {}
    for key, value in kwargs.items():
        name = key.removeprefix("butterworth__")
        if not key.startswith("butterworth__") or name not in _filters.BUTTERWORTH_OPTIONS:
            raise TypeError(
                f"clean() got an unexpected keyword argument {key!r}; accepted extra "
                "keywords: butterworth__order, butterworth__padtype, butterworth__padlen."
            )
        options[name] = value
    return options


def _as_signals(signals) -> np.ndarray:
    if isinstance(signals, pd.DataFrame):
        signals = signals.to_numpy()
    elif isinstance(signals, (list, tuple)):  # array-like (a list of rows), as nilearn
        signals = np.asarray(signals, dtype=np.float64)
    if not isinstance(signals, np.ndarray):
        raise TypeError(
            f"signals must be a numpy array of shape (n_times, n_signals), "
            f"got {type(signals).__name__}."
        )
    if signals.ndim != 2:
        raise ValueError(
            f"signals must be 2D (n_times, n_signals), got shape {signals.shape}; "
            "reshape a single time series with x[:, None]."
        )
    if signals.shape[0] == 0:
        raise ValueError("signals has no time points (shape[0] == 0).")
    return signals


def _output_dtype(dtype: np.dtype) -> np.dtype:
    if dtype.kind == "f":
        return dtype
    return np.dtype(np.float64 if dtype.itemsize == 8 else np.float32)


def _as_index(rows: np.ndarray, n_times: int) -> slice | np.ndarray:
    """Use a slice (a view of the signals) when the rows are contiguous."""
    if len(rows) == n_times or (len(rows) and rows[-1] - rows[0] + 1 == len(rows)):
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows


def _build_operator(
    n_rows: int,
    confounds: np.ndarray | None,
    keep: np.ndarray | None,
    detrend: bool,
    filter_type: str | bool,
    low_pass: float | None,
    high_pass: float | None,
    t_r: float | None,
    extrapolate: bool,
    standardize_confounds: bool,
    bw_options: dict,
) -> tuple[np.ndarray, np.ndarray]:
    """Push the identity and the confounds through nilearn's linear steps.

    Returns the ``(n_kept, n_rows)`` cleaning operator and the row vector that
    gives the signals' mean before detrending (used by ``psc``).
    """
    x = np.eye(n_rows)
    if filter_type == "cosine":
        confounds = _filters.add_cosine_drift(confounds, high_pass, t_r, n_rows)
        if low_pass is not None:
            warnings.warn(
                "low_pass is not implemented for filter='cosine'; ignored.",
                UserWarning,
                stacklevel=3,
            )
    # stack signals' operator and confounds: every step below applies to both
    n_conf = 0 if confounds is None else confounds.shape[1]
    both = x if confounds is None else np.hstack((x, confounds))
    if keep is not None:
        if filter_type == "butterworth":
            both, keep = _filters.interpolate_censored(both, keep, t_r, extrapolate)
        else:
            both = both[keep]
    mean_row = both[:, :n_rows].mean(axis=0)
    if detrend:
        both = _filters.detrend(both)
    if filter_type == "butterworth":
        both = _filters.butterworth_filter(both, t_r, low_pass, high_pass, **bw_options)
        if keep is not None:
            both = both[keep]
    operator = both[:, :n_rows]
    if n_conf:
        conf = both[:, n_rows:]
        conf = _scale_confounds(conf, standardize_confounds)
        q, r, _ = linalg.qr(conf, mode="economic", pivoting=True)
        diag = np.abs(np.diag(r))
        # nilearn's absolute threshold (eps * 100) plus a relative one, so that
        # exactly collinear columns are dropped rather than kept as rounding noise
        tol = max(_EPS * 100.0, diag.max(initial=0.0) * max(conf.shape) * _EPS)
        q = q[:, diag > tol]
        operator = operator - q @ (q.T @ operator)
    return np.ascontiguousarray(operator), mean_row


def _scale_confounds(conf: np.ndarray, standardize_confounds: bool) -> np.ndarray:
    if standardize_confounds:
        return standardize_signal(conf)
    scale = np.abs(conf).max(axis=0)
    scale[scale == 0] = 1.0
    return conf / scale


def _apply_operator(
    signals: np.ndarray,
    rows: slice | np.ndarray,
    operator: np.ndarray,
    mean_row: np.ndarray,
    out: np.ndarray,
    ensure_finite: bool,
    zscore_ddof: int | None,
) -> np.ndarray:
    """``out = operator @ signals[rows]`` by column blocks; return original means.

    Each block is centred on its column means, and the centres are appended as a
    last row that multiplies ``operator @ 1`` (computed in float64): the large
    constant part of the signals never goes through the float32 sums, which
    keeps them accurate. With ``zscore_ddof``, each block is z-scored in place.
    """
    dtype = out.dtype
    n_in = operator.shape[1]
    op = np.hstack((operator, operator.sum(axis=1, keepdims=True))).astype(dtype)
    mean_row = mean_row.astype(dtype)
    n_cols = signals.shape[1]
    block = max(1, _BLOCK_BYTES // ((n_in + 1) * dtype.itemsize))
    buf = np.empty((n_in + 1, min(block, n_cols)), dtype=dtype)
    original_mean = np.empty(n_cols, dtype=np.float64)
    for c0 in range(0, n_cols, block):
        cols = slice(c0, min(c0 + block, n_cols))
        blk = buf[:, : cols.stop - c0]
        x = blk[:n_in]
        x[...] = signals[rows, cols]
        if ensure_finite:
            x[~np.isfinite(x)] = 0
        original_mean[cols] = mean_row @ x
        centre = x.mean(axis=0, dtype=np.float64)
        x -= centre.astype(dtype)
        blk[n_in] = centre
        res = out[:, cols]
        np.matmul(op, blk, out=res)
        if zscore_ddof is not None:
            res -= res.mean(axis=0, dtype=np.float64).astype(dtype)
            sq = np.einsum("ij,ij->j", res, res, dtype=np.float64)
            std = np.sqrt(sq / (res.shape[0] - zscore_ddof))
            # a constant column leaves rounding noise of its mean (~eps * n * |mean|) through
            # the operator: treat it as 0 (nilearn's exact zero), not as a signal to scale up
            std[std < _EPS * np.maximum(1.0, n_in * np.abs(centre))] = 1.0
            res /= std.astype(dtype)
    return original_mean


def _check_standardize_rows(standardize: str | None, n_rows: int) -> str | None:
    if standardize is not None and n_rows == 1:
        warnings.warn(
            "Standardization of a single time point would give zeros; skipped.",
            UserWarning,
            stacklevel=3,
        )
        return None
    return standardize


def _psc_inplace(out: np.ndarray, original_mean: np.ndarray) -> None:
    """Percent signal change, as nilearn (restoring the mean removed by filtering)."""
    # nilearn adds the original mean back when detrending / high-pass
    # filtering removed it (mean scale below 10 % of the original one)
    means = out.mean(axis=0, dtype=np.float64)
    restore = np.abs(means).mean() / np.abs(original_mean).mean() < 1e-1
    if restore:
        means = means + original_mean
    # a mean that is rounding noise (relative to the column's spread) counts as 0: dividing by
    # it would give values of ~1e16 (nilearn's absolute eps misses such columns when its own
    # rounding puts their mean just above eps)
    spread = np.sqrt(np.einsum("ij,ij->j", out, out, dtype=np.float64) / max(out.shape[0], 1))
    invalid = np.abs(means) < _EPS * np.maximum(1.0, 100.0 * spread)
    if invalid.any():
        warnings.warn(
            "psc standardization strategy is meaningless for features that have a mean of 0: "
            f"{int(invalid.sum())} signals are set to 0.",
            UserWarning,
            stacklevel=3,
        )
    offset = (original_mean if restore else 0.0) - means
    scale = 100.0 / np.where(invalid, 1.0, np.abs(means))
    n_cols = out.shape[1]
    block = max(1, _BLOCK_BYTES // (out.shape[0] * out.itemsize))
    for c0 in range(0, n_cols, block):
        cols = slice(c0, min(c0 + block, n_cols))
        blk = out[:, cols]
        blk += offset[cols].astype(out.dtype)
        blk *= scale[cols].astype(out.dtype)
        blk[:, invalid[cols]] = 0
