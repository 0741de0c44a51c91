"""Time-domain building blocks of :func:`bidsmask.signal.clean`.

Every function here works on small float64 matrices whose rows are time points
(the identity matrix pushed through the cleaning steps, and the confounds), so
that :func:`bidsmask.signal.clean` can turn the whole pipeline into one
``(n_kept, n_times)`` operator. They follow ``nilearn.signal`` 0.14 step by
step: cubic-spline interpolation of censored volumes, linear detrending,
Butterworth ``sosfiltfilt`` filtering and DCT-II cosine drift regressors.
:func:`butterworth` (the filter on signals) and :func:`create_cosine_drift` (the drift
basis) are public as ``bidsmask.signal.butterworth`` / ``create_cosine_drift``.
"""

from __future__ import annotations

import warnings

import numpy as np

# scipy.signal and scipy.interpolate (about a second to import, with scipy.stats) are imported
# where a filter or an interpolation is needed: runs cleaned without them never import them.

BUTTERWORTH_OPTIONS = ("order", "padtype", "padlen")


def _critical(kind: str, freq: float, nyquist: float) -> float:
    eps = np.finfo(np.float32).eps
    if freq >= nyquist:
        lowered = nyquist - nyquist * 10 * eps
        warnings.warn(
            f"The frequency specified for the {kind} pass filter is too high to be handled by a "
            f"digital filter (superior to Nyquist frequency {nyquist} Hz). It has been lowered "
            f"to {lowered} (Nyquist frequency).",
            UserWarning,
            stacklevel=4,
        )
        return lowered
    if freq < 0:
        raised = nyquist * eps
        warnings.warn(
            f"The frequency specified for the {kind} pass filter is too low to be handled by a "
            f"digital filter (must be non-negative). It has been set to eps: {raised}.",
            UserWarning,
            stacklevel=4,
        )
        return raised
    return freq


def critical_frequencies(
    low_pass: float | None, high_pass: float | None, sampling_rate: float
) -> tuple[str, float | list[float]] | None:
    """Band type and critical frequencies of a Butterworth filter, as nilearn chooses them.

    Cut-offs at or above the Nyquist frequency are lowered just below it, negative ones raised
    to just above 0, each with a warning (as ``nilearn.signal.butterworth``).

    Parameters
    ----------
    low_pass, high_pass : float or None
        Cut-off frequencies in Hz.
    sampling_rate : float
        Sampling rate in Hz (1 / t_r).

    Returns
    -------
    tuple or None
        ``(btype, wn)`` for :func:`scipy.signal.butter`; None when nothing is to be filtered
        (no cut-off, or a band whose two edges became equal, with a warning).

    Raises
    ------
    ValueError
        If ``high_pass >= low_pass``.

    Examples
    --------
    >>> critical_frequencies(0.08, 0.01, 0.5)
    ('band', [0.01, 0.08])
    """
    if low_pass is None and high_pass is None:
        return None
    if low_pass is not None and high_pass is not None and high_pass >= low_pass:
        raise ValueError(
            f"High pass cutoff frequency ({high_pass}) is greater than or equal to low pass "
            f"filter frequency ({low_pass}). high_pass must be lower than low_pass for a "
            "band-pass filter."
        )
    nyquist = 0.5 * sampling_rate
    wn = []
    if high_pass is not None:
        wn.append(_critical("high", high_pass, nyquist))
    if low_pass is not None:
        wn.append(_critical("low", low_pass, nyquist))
    if len(wn) == 1:
        return ("high" if high_pass is not None else "low"), wn[0]
    if wn[0] == wn[1]:
        warnings.warn(
            "Signals are returned unfiltered because band-pass critical frequencies are equal. "
            "Please check that inputs for sampling_rate, low_pass, and high_pass are valid.",
            UserWarning,
            stacklevel=3,
        )
        return None
    return "band", wn


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
        Cut-off frequencies in Hz (see :func:`critical_frequencies`).
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
    design = critical_frequencies(low_pass, high_pass, fs)
    if design is None:
        return np.array(x, dtype=np.float64)
    btype, wn = design
    from scipy import signal as sp_signal

    sos = sp_signal.butter(N=order, Wn=wn, btype=btype, output="sos", fs=fs)
    try:
        return sp_signal.sosfiltfilt(sos, x, axis=0, padtype=padtype, padlen=padlen)
    except ValueError as err:
        raise ValueError(
            f"Butterworth filtering of {x.shape[0]} time points failed: {err} "
            "Use fewer censored volumes, a lower butterworth__order or a smaller "
            "butterworth__padlen."
        ) from err


def butterworth(
    signals: np.ndarray,
    sampling_rate: float,
    low_pass: float | None = None,
    high_pass: float | None = None,
    order: int = 5,
    padtype: str | None = "odd",
    padlen: int | None = None,
    copy: bool = False,
) -> np.ndarray:
    """Apply a zero-phase Butterworth low-, high- or band-pass filter to signals.

    Same signature, defaults and results as ``nilearn.signal.butterworth`` 0.14: cut-offs at
    or above the Nyquist frequency are lowered with a warning, ``high_pass >= low_pass`` raises.

    Parameters
    ----------
    signals : numpy.ndarray
        Shape (n_times,) or (n_times, n_signals): time on the first axis.
    sampling_rate : float
        Sampling rate in Hz (1 / t_r).
    low_pass, high_pass : float or None, default=None
        Cut-off frequencies in Hz; with neither, the signals are returned unchanged.
    order, padtype, padlen : default=5, "odd", None
        Filter order and :func:`scipy.signal.sosfiltfilt` padding (see
        :func:`butterworth_filter`).
    copy : bool, default=False
        Return a new (float64) array; otherwise filter ``signals`` in place and return it.

    Returns
    -------
    numpy.ndarray
        The filtered signals.

    Examples
    --------
    >>> t = np.arange(200) * 2.0
    >>> x = np.sin(2 * np.pi * 0.01 * t) + np.sin(2 * np.pi * 0.2 * t)
    >>> y = butterworth(x, sampling_rate=0.5, low_pass=0.05, copy=True)
    >>> bool(np.abs(y - np.sin(2 * np.pi * 0.01 * t))[20:-20].max() < 0.05)
    True
    """
    design = critical_frequencies(low_pass, high_pass, sampling_rate)
    if design is None:
        return signals.copy() if copy else signals
    btype, wn = design
    from scipy import signal as sp_signal

    sos = sp_signal.butter(N=order, Wn=wn, btype=btype, output="sos", fs=sampling_rate)
    filtered = sp_signal.sosfiltfilt(sos, signals, axis=0, padtype=padtype, padlen=padlen)
    if copy:
        return filtered
    signals[...] = filtered
    return signals


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
    from scipy.interpolate import CubicSpline

    spline = CubicSpline(frame_times[keep], x[keep], extrapolate=extrapolate)
    censored = np.ones(x.shape[0], dtype=bool)
    censored[keep] = False
    out = x.copy()
    out[censored] = spline(frame_times[censored])
    if extrapolate:
        return out, keep
    return out[keep[0] : keep[-1] + 1], keep - keep[0]


def create_cosine_drift(high_pass: float, frame_times: np.ndarray) -> np.ndarray:
    """DCT-II cosine drift regressors up to ``high_pass`` Hz, plus a constant last column.

    Same name, parameters and numbers as ``nilearn.signal.create_cosine_drift`` (from
    ``nilearn.glm.first_level.design_matrix``): ``order = floor(2 * n * high_pass * dt)``
    cosines (at most ``n - 1``), with ``dt`` the mean spacing of ``frame_times``; column
    ``k - 1`` is ``sqrt(2 / n) * cos(pi / n * (t + 0.5) * k)`` and the last column is 1.

    Parameters
    ----------
    high_pass : float
        Cut-off frequency in Hz.
    frame_times : numpy.ndarray, shape (n_scans,)
        Acquisition time of each scan, in seconds.

    Returns
    -------
    numpy.ndarray, shape (n_scans, n_drifts + 1)
        The cosine regressors, then the constant.

    Warns
    -----
    UserWarning
        When ``high_pass * dt >= 0.5``: the drifts span every frequency the sampling
        can represent.

    Examples
    --------
    >>> drift = create_cosine_drift(0.01, np.arange(100) * 2.0)
    >>> drift.shape, bool((drift[:, -1] == 1).all())
    ((100, 5), True)
    """
    frame_times = np.asarray(frame_times, dtype=np.float64)
    n_scans = len(frame_times)
    dt = (frame_times[-1] - frame_times[0]) / (n_scans - 1)
    drift = cosine_drift(high_pass, n_scans, dt, stacklevel=3)
    return np.hstack((drift, np.ones((n_scans, 1))))


def cosine_drift(high_pass: float, n_times: int, t_r: float, stacklevel: int = 3) -> np.ndarray:
    """DCT-II drift regressors up to ``high_pass`` Hz, without the constant.

    :func:`create_cosine_drift` without its constant column (what ``clean`` adds to the
    confounds, the signals being centred).

    Parameters
    ----------
    high_pass : float
        Cut-off frequency in Hz.
    n_times : int
        Number of time points.
    t_r : float
        Repetition time in seconds.
    stacklevel : int, default=3
        Stack level of the saturation warning.

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
            stacklevel=stacklevel,
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
            "Cosine drift terms already exist in the user supplied confounds "
            "(correlation > 0.9); using the supplied regressors only.",
            UserWarning,
            stacklevel=3,
        )
        return confounds
    return np.hstack((confounds, drift))
