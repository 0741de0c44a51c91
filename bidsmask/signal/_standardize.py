"""Plain per-column helpers of ``nilearn.signal``: standardization and sums of squares.

:func:`bidsmask.signal.clean` standardizes inside its blocked matrix product; these are the
stand-alone functions nilearn users call on a whole array (``standardize_signal``,
``row_sum_of_squares``), with nilearn 0.14's names, parameters and numbers.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np

from bidsmask.signal._filters import detrend as _detrend
from bidsmask.signal._inputs import sanitize_standardize

_EPS = np.finfo(np.float64).eps


def standardize_signal(
    signals: np.ndarray,
    detrend: bool = False,
    standardize: Literal["zscore_sample", "psc"] | bool | None = "zscore_sample",
) -> np.ndarray:
    """Centre and standardize each column of ``signals`` (time along the first axis).

    Same parameters, defaults and numbers as ``nilearn.signal.standardize_signal`` 0.14.

    Parameters
    ----------
    signals : numpy.ndarray, shape (n_times, n_signals)
        Time series, one per column; not modified.
    detrend : bool, default=False
        Remove the mean and linear trend of each column first.
    standardize : {"zscore_sample", "psc"}, bool or None, default="zscore_sample"
        ``"zscore_sample"``: centre and divide by the standard deviation (``ddof=1``;
        columns whose deviation is below machine epsilon are only centred); ``"psc"``:
        percent signal change ``100 * (x - mean) / |mean|`` (columns whose mean is below
        machine epsilon are set to 0, with a warning); ``None``/``False``: none (the
        detrended or copied signals). ``True`` is a deprecated alias of
        ``"zscore_sample"`` (FutureWarning); ``"zscore"`` (``ddof=0``) is also accepted.

    Returns
    -------
    numpy.ndarray
        Standardized copy of ``signals`` (integers become float64). A single time point
        is returned unstandardized, with a warning.

    Raises
    ------
    ValueError
        An unknown ``standardize``.

    Examples
    --------
    >>> x = np.array([[1.0, 10.0], [2.0, 10.0], [3.0, 13.0]])
    >>> standardize_signal(x).round(3)
    array([[-1.   , -0.577],
           [ 0.   , -0.577],
           [ 1.   ,  1.155]])
    >>> standardize_signal(x, standardize="psc")[:, 0]
    array([-50.,   0.,  50.])
    """
    signals = np.asarray(signals)
    if signals.dtype.kind != "f":
        signals = signals.astype(np.float64)
    standardize = sanitize_standardize(standardize)
    out = _detrend(signals) if detrend else signals.copy()
    if standardize is None:
        return out
    if out.shape[0] == 1:
        warnings.warn(
            "Standardization of a single time point would give zeros; skipped.",
            UserWarning,
            stacklevel=2,
        )
        return out
    if standardize == "psc":
        means = out.mean(axis=0)
        invalid = np.abs(means) < _EPS
        out = (out - means) / np.abs(means) * 100
        if invalid.any():
            warnings.warn(
                "psc standardization strategy is meaningless for features that have a mean "
                f"of 0: {int(invalid.sum())} signals are set to 0.",
                UserWarning,
                stacklevel=2,
            )
            out[:, invalid] = 0
        return out
    if not detrend:
        out = out - out.mean(axis=0)
    std = out.std(axis=0, ddof=1 if standardize == "zscore_sample" else 0)
    std[std < _EPS] = 1.0
    out /= std
    return out


def row_sum_of_squares(signals: np.ndarray, n_batches: int = 20) -> np.ndarray:
    """Sum of squares of each column of ``signals`` (``(signals**2).sum(axis=0)``).

    Same name, parameters and result as ``nilearn.signal.row_sum_of_squares``: the columns
    are processed in ``n_batches`` groups (one group below 500 columns), and no squared copy
    of ``signals`` is made.

    Parameters
    ----------
    signals : numpy.ndarray, shape (n_samples, n_features)
        Signals, one per column.
    n_batches : int, default=20
        Number of column groups.

    Returns
    -------
    numpy.ndarray, shape (n_features,)
        float64 sums of squares.

    Examples
    --------
    >>> row_sum_of_squares(np.array([[1.0, 2.0], [3.0, 4.0]]))
    array([10., 20.])
    """
    signals = np.asarray(signals)
    n_features = signals.shape[1]
    if n_features < 500:
        n_batches = 1
    out = np.empty(n_features, dtype=np.float64)
    for cols in np.array_split(np.arange(n_features), max(1, min(n_batches, n_features))):
        if cols.size:
            part = signals[:, cols[0] : cols[-1] + 1]
            out[cols[0] : cols[-1] + 1] = np.einsum("ij,ij->j", part, part)
    return out
