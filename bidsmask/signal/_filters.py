"""Time-domain building blocks of :func:`bidsmask.signal.clean`.

Every function here works on small float64 matrices whose rows are time points
(the identity matrix pushed through the cleaning steps, and the confounds), so
that :func:`bidsmask.signal.clean` can turn the whole pipeline into one
``(n_kept, n_times)`` operator. They follow ``nilearn.signal`` 0.14 step by
step: cubic-spline interpolation of censored volumes, linear detrending,
Butterworth ``sosfiltfilt`` filtering and DCT-II cosine drift regressors.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import signal as sp_signal
from scipy.interpolate import CubicSpline

BUTTERWORTH_OPTIONS = ("order", "padtype", "padlen")


def check_frequencies(low_pass: float | None, high_pass: float | None, t_r: float) -> None:
    """Validate Butterworth cut-off frequencies against the Nyquist frequency.

    Parameters
    ----------
    low_pass, high_pass : float or None
        Cut-off frequencies in Hz.
    t_r : float
        Repetition time in seconds.

    Raises
    ------
    ValueError
        If a frequency is negative, not below the Nyquist frequency, or if
        ``high_pass >= low_pass``.

    Examples
    --------
    >>> check_frequencies(0.08, 0.01, 2.0)
    >>> check_frequencies(0.3, None, 2.0)
    Traceback (most recent call last):
    ...
    ValueError: low_pass=0.3 Hz is not below the Nyquist frequency 0.25 Hz (t_r=2.0 s); use a lower low_pass or a shorter t_r.
    """  # noqa: E501
    if low_pass is not None and high_pass is not None and high_pass >= low_pass:
        raise ValueError(
            f"high_pass={high_pass} Hz must be lower than low_pass={low_pass} Hz "
            "for a band-pass filter."
        )
    nyquist = 0.5 / t_r
    for name, freq in (("low_pass", low_pass), ("high_pass", high_pass)):
        if freq is None:
            continue
        if freq < 0:
            raise ValueError(f"{name}={freq} Hz must be non-negative.")
        if freq >= nyquist:
            raise ValueError(
                f"{name}={freq} Hz is not below the Nyquist frequency {nyquist} Hz "
                f"(t_r={t_r} s); use a lower {name} or a shorter t_r."
            )


def butterworth_filter(
    x: np.ndarray,
    t_r: float,
    low_pass: float | None,
    high_pass: float | None,
    order: int = 5,
    padtype: str | None = "odd",
    padlen: int | None = None,
) -> np.ndarray:
    """Zero-phase Butterworth filtering of the columns of ``x`` (time on axis 0).

    Same design and call as ``nilearn.signal.butterworth``: ``scipy.signal.butter``
    in second-order sections, applied forward and backward with
    ``scipy.signal.sosfiltfilt``. The operation is linear in ``x``.

    Parameters
    ----------
    x : numpy.ndarray, shape (n_times, n_columns)
        Columns to filter; not modified.
    t_r : float
        Repetition time in seconds.
    low_pass, high_pass : float or None
        Cut-off frequencies in Hz (already validated, at least one not None).
    order : int, default=5
        Filter order.
    padtype : {"odd", "even", "constant", None}, default="odd"
        Padding passed to :func:`scipy.signal.sosfiltfilt`.
    padlen : int or None, default=None
        Padding length passed to :func:`scipy.signal.sosfiltfilt`.

    Returns
    -------
    numpy.ndarray
        Filtered copy of ``x``, float64.
    """
    fs = 1.0 / t_r
    if high_pass is not None and low_pass is not None:
        btype, wn = "band", [high_pass, low_pass]
    elif high_pass is not None:
        btype, wn = "high", high_pass
    else:
        btype, wn = "low", low_pass
    sos = sp_signal.butter(N=order, Wn=wn, btype=btype, output="sos", fs=fs)
    try:
        return sp_signal.sosfiltfilt(sos, x, axis=0, padtype=padtype, padlen=padlen)
    except ValueError as err:
        raise ValueError(
            f"Butterworth filtering of {x.shape[0]} time points failed: {err} "
            "Use fewer censored volumes, a lower butterworth__order or a smaller "
            "butterworth__padlen."
        ) from err


def detrend(x: np.ndarray) -> np.ndarray:
    """Remove the mean and the linear trend of each column (time on axis 0).

    Same as nilearn's ``_detrend(type="linear")``; a single time point is
    returned unchanged with a warning.

    Parameters
    ----------
    x : numpy.ndarray, shape (n_times, n_columns)
        Columns to detrend; not modified.

    Returns
    -------
    numpy.ndarray
        Detrended copy of ``x``.

    Examples
    --------
    >>> detrend(np.array([[1.0], [2.0], [4.0]])).ravel().round(3)
    array([ 0.167, -0.333,  0.167])
    """
    if x.shape[0] == 1:
        warnings.warn(
            "Detrending of a single time point would give zeros; skipped.",
            UserWarning,
            stacklevel=3,
        )
        return x.copy()
    out = x - x.mean(axis=0)
    ramp = np.arange(x.shape[0], dtype=np.float64)
    ramp -= ramp.mean()
    norm = np.sqrt((ramp**2).sum())
    if norm >= np.finfo(np.float64).eps:
        ramp /= norm
    out -= np.outer(ramp, ramp @ out)
    return out


def interpolate_censored(
    x: np.ndarray, keep: np.ndarray, t_r: float, extrapolate: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Replace censored rows of ``x`` by a cubic-spline fit of the kept rows.

    As nilearn does before Butterworth filtering: a ``scipy.interpolate.CubicSpline``
    (not-a-knot) through the kept volumes at times ``keep * t_r``; without
    ``extrapolate``, censored volumes before the first or after the last kept
    volume are dropped.

    Parameters
    ----------
    x : numpy.ndarray, shape (n_times, n_columns)
        Columns to interpolate; not modified.
    keep : numpy.ndarray of int
        Increasing indices of the kept volumes.
    t_r : float
        Repetition time in seconds.
    extrapolate : bool
        Whether to extrapolate censored volumes at both ends.

    Returns
    -------
    values : numpy.ndarray
        Interpolated rows (all rows if ``extrapolate``, else rows
        ``keep[0]`` to ``keep[-1]``).
    keep : numpy.ndarray
        Kept indices relative to ``values``.
    """
    frame_times = np.arange(x.shape[0]) * t_r
    spline = CubicSpline(frame_times[keep], x[keep], extrapolate=extrapolate)
    censored = np.ones(x.shape[0], dtype=bool)
    censored[keep] = False
    out = x.copy()
    out[censored] = spline(frame_times[censored])
    if extrapolate:
        return out, keep
    return out[keep[0] : keep[-1] + 1], keep - keep[0]


def cosine_drift(high_pass: float, n_times: int, t_r: float) -> np.ndarray:
    """DCT-II drift regressors up to ``high_pass`` Hz, without the constant.

    Same basis as ``nilearn.glm.first_level.design_matrix`` ``create_cosine_drift``
    with its constant column removed.

    Parameters
    ----------
    high_pass : float
        Cut-off frequency in Hz.
    n_times : int
        Number of time points.
    t_r : float
        Repetition time in seconds.

    Returns
    -------
    numpy.ndarray, shape (n_times, n_drifts)
        The cosine regressors (possibly zero columns).

    Examples
    --------
    >>> cosine_drift(0.01, 100, 2.0).shape
    (100, 4)
    """
    if high_pass * t_r >= 0.5:
        warnings.warn(
            "High-pass filter will span all accessible frequencies and saturate "
            f"the design matrix; high_pass={high_pass} Hz. Reduce high_pass.",
            UserWarning,
            stacklevel=3,
        )
    order = min(n_times - 1, int(np.floor(2 * n_times * high_pass * t_r)))
    times = np.arange(n_times)
    k = np.arange(1, order + 1)
    return np.sqrt(2.0 / n_times) * np.cos((np.pi / n_times) * (times[:, None] + 0.5) * k[None, :])


def add_cosine_drift(
    confounds: np.ndarray | None, high_pass: float, t_r: float, n_times: int
) -> np.ndarray | None:
    """Append cosine drift regressors to confounds, unless the user gave them.

    A user confound correlating above 0.9 with any cosine term means the user
    already supplied the drift basis (nilearn's rule); then only the user's
    regressors are kept.

    Parameters
    ----------
    confounds : numpy.ndarray or None, shape (n_times, n_confounds)
        User confounds.
    high_pass : float
        Cut-off frequency in Hz.
    t_r : float
        Repetition time in seconds.
    n_times : int
        Number of time points.

    Returns
    -------
    numpy.ndarray or None
        Confounds with the drift terms appended.
    """
    drift = cosine_drift(high_pass, n_times, t_r)
    n_cosines = drift.shape[1]
    if n_cosines == 0:
        warnings.warn(
            "Cosine filter was not created: the time series is too short for "
            f"high_pass={high_pass} Hz.",
            UserWarning,
            stacklevel=3,
        )
        return confounds
    if confounds is None:
        return drift
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.corrcoef(drift.T, confounds.T)
    np.fill_diagonal(corr, 0)
    if (corr[:n_cosines] > 0.9).any():
        warnings.warn(
            "Cosine drift terms already exist in the confounds; using the "
            "supplied regressors only.",
            UserWarning,
            stacklevel=3,
        )
        return confounds
    return np.hstack((confounds, drift))
