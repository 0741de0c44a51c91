"""Connectivity matrices from region time series, Fisher z and group averages.

The functions work on one run's ``(n_timepoints, n_regions)`` array of cleaned region signals and
return ``(n_regions, n_regions)`` float64 matrices. Two covariance estimators are available:

``"empirical"`` (the app default)
    The maximum-likelihood covariance (``ddof=0``), i.e. scikit-learn's ``EmpiricalCovariance``.
    With it, ``kind="correlation"`` is exactly the Pearson correlation of the signals, which is what
    the output file's ``meas-PearsonCorrelation`` says.
``"ledoit_wolf"``
    Ledoit-Wolf shrinkage towards a scaled identity, the same numbers as scikit-learn's
    ``LedoitWolf(store_precision=False)``, which is nilearn 0.14's default estimator in
    ``ConnectivityMeasure``. Use it to reproduce nilearn, or for partial correlation when there
    are fewer time points than regions (the empirical covariance is then singular).

Regions whose signal is entirely missing (all NaN, e.g. below the minimum coverage) or constant
get NaN rows and columns; the matrix of the other regions is computed as if they were absent.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy import linalg

from bidsmask.connectivity._estimators import cov_to_corr, ledoit_wolf, prec_to_partial
from bidsmask.connectivity._measure import (
    ConnectivityMeasure,
    sym_matrix_to_vec,
    vec_to_sym_matrix,
)

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_ESTIMATOR",
    "ESTIMATORS",
    "KINDS",
    "MEASURES",
    "ConnectivityMeasure",
    "connectivity_matrix",
    "cov_to_corr",
    "covariance",
    "fisher_z",
    "fisher_z_average",
    "ledoit_wolf",
    "prec_to_partial",
    "relmat_sidecar",
    "sym_matrix_to_vec",
    "vec_to_sym_matrix",
]

KINDS = ("correlation", "partial correlation", "covariance")
ESTIMATORS = ("empirical", "ledoit_wolf")
DEFAULT_ESTIMATOR = "empirical"

#: BIDS ``meas-`` entity value and ``RelationshipMeasure`` description for each kind.
MEASURES = {
    "correlation": ("PearsonCorrelation", "Pearson correlation"),
    "partial correlation": ("PartialCorrelation", "Partial (Pearson) correlation"),
    "covariance": ("Covariance", "Covariance"),
}

_FISHER_CLIP = 1.0 - 1e-7


def covariance(signals: np.ndarray, estimator: str = DEFAULT_ESTIMATOR) -> np.ndarray:
    """Covariance of ``(n_samples, n_features)`` signals (no NaN handling).

    Parameters
    ----------
    signals : numpy.ndarray
        Finite signals, time along the first axis.
    estimator : {"empirical", "ledoit_wolf"}, default="empirical"
        The covariance estimator (see the module docstring).

    Returns
    -------
    numpy.ndarray
        ``(n_features, n_features)`` float64 covariance.
    """
    _check_choice("estimator", estimator, ESTIMATORS)
    if estimator == "ledoit_wolf":
        return ledoit_wolf(signals)[0]
    x = np.asarray(signals, dtype=np.float64)
    x = x - x.mean(axis=0)
    return x.T @ x / x.shape[0]


def connectivity_matrix(
    signals: np.ndarray,
    kind: str = "correlation",
    estimator: str = DEFAULT_ESTIMATOR,
) -> np.ndarray:
    """Compute the connectivity matrix of one run's region signals.

    Parameters
    ----------
    signals : numpy.ndarray
        ``(n_timepoints, n_regions)`` region signals. Columns that are entirely NaN (regions below
        the minimum coverage) or constant are excluded and get NaN rows and columns.
    kind : {"correlation", "partial correlation", "covariance"}, default="correlation"
        ``"correlation"`` standardizes each signal (z-score, ``ddof=1``) before estimating the
        covariance, as nilearn's ``ConnectivityMeasure(standardize=True)`` does.
    estimator : {"empirical", "ledoit_wolf"}, default="empirical"
        The covariance estimator (see the module docstring).

    Returns
    -------
    numpy.ndarray
        ``(n_regions, n_regions)`` float64 matrix.

    Raises
    ------
    ValueError
        Unknown ``kind``/``estimator``, a column with some but not all values NaN, fewer than two
        time points, or a singular covariance for partial correlation.

    Examples
    --------
    >>> t = np.linspace(0, 1, 20)
    >>> x = np.column_stack([t, 2 * t + 1, np.full(20, np.nan)])
    >>> connectivity_matrix(x).round(3)
    array([[ 1.,  1., nan],
           [ 1.,  1., nan],
           [nan, nan, nan]])
    """
    _check_choice("kind", kind, KINDS)
    _check_choice("estimator", estimator, ESTIMATORS)
    x = np.asarray(signals, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(
            f"'signals' must be a 2D (n_timepoints, n_regions) array; got shape {x.shape}."
        )
    if x.shape[0] < 2:
        raise ValueError(
            f"At least 2 time points are needed for a connectivity matrix; got {x.shape[0]}."
        )
    valid = _valid_columns(x)
    n_regions = x.shape[1]
    out = np.full((n_regions, n_regions), np.nan)
    if not valid.any():
        return out
    sub = x[:, valid]
    if kind == "correlation":
        sub = sub - sub.mean(axis=0)
        sub = sub / sub.std(axis=0, ddof=1)
        matrix = cov_to_corr(covariance(sub, estimator))
    else:
        cov = covariance(sub, estimator)
        if kind == "covariance":
            matrix = cov
        else:
            matrix = prec_to_partial(_inverse_spd(cov, estimator, sub.shape))
    out[np.ix_(valid, valid)] = matrix
    return out


def fisher_z(matrix: np.ndarray) -> np.ndarray:
    """Fisher z-transform (``arctanh``) of a correlation matrix.

    Values are clipped to ``±(1 - 1e-7)`` first so that perfect correlations stay finite; the
    diagonal (correlation of a region with itself) is set to NaN because its z is infinite.

    Examples
    --------
    >>> fisher_z(np.array([[1.0, 0.5], [0.5, 1.0]])).round(4)
    array([[   nan, 0.5493],
           [0.5493,    nan]])
    """
    z = np.arctanh(np.clip(np.asarray(matrix, dtype=np.float64), -_FISHER_CLIP, _FISHER_CLIP))
    np.fill_diagonal(z, np.nan)
    return z


def fisher_z_average(matrices: Sequence[np.ndarray]) -> np.ndarray:
    """Average correlation matrices in Fisher z space and transform back.

    Each entry is averaged over the runs where it is finite (a region missing in one run does not
    remove it from the group average); entries missing in every run stay NaN. The diagonal is 1
    for regions present in at least one run.

    Parameters
    ----------
    matrices : sequence of numpy.ndarray
        Square correlation matrices of the same shape.

    Returns
    -------
    numpy.ndarray
        The averaged correlation matrix (float64).

    Examples
    --------
    >>> a = np.array([[1.0, 0.2], [0.2, 1.0]])
    >>> b = np.array([[1.0, 0.6], [0.6, 1.0]])
    >>> fisher_z_average([a, b]).round(4)
    array([[1.    , 0.4202],
           [0.4202, 1.    ]])
    """
    if len(matrices) == 0:
        raise ValueError("'matrices' is empty: at least one matrix is needed to average.")
    stack = np.stack([np.asarray(m, dtype=np.float64) for m in matrices])
    if stack.ndim != 3 or stack.shape[1] != stack.shape[2]:
        raise ValueError(f"Expected square matrices of one shape; got stack shape {stack.shape}.")
    z = np.stack([fisher_z(m) for m in stack])
    finite = np.isfinite(z)
    counts = finite.sum(axis=0)
    total = np.where(finite, z, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.tanh(total / counts)
    mean[counts == 0] = np.nan
    present = np.isfinite(np.diagonal(stack, axis1=1, axis2=2)).any(axis=0)
    np.fill_diagonal(mean, np.where(present, 1.0, np.nan))
    return mean


def relmat_sidecar(
    kind: str,
    estimator: str = DEFAULT_ESTIMATOR,
    node_files: Sequence[str] = (),
    sources: Sequence[str] = (),
) -> dict:
    """JSON sidecar fields of a ``relmat`` file (BEP017 draft).

    Parameters
    ----------
    kind : {"correlation", "partial correlation", "covariance"}
        The connectivity kind.
    estimator : {"empirical", "ledoit_wolf"}, default="empirical"
        The covariance estimator used.
    node_files : sequence of str, default=()
        BIDS URIs (or relative paths) of the files describing the nodes (the atlas label table).
    sources : sequence of str, default=()
        BIDS URIs of the time series the matrix was computed from.

    Returns
    -------
    dict
        ``RelationshipMeasure``, ``MeasureDescription``, ``Directed``, ``Weighted``,
        ``ValidDiagonal``, ``StorageFormat``, ``CovarianceEstimator``, ``NodeFiles``, ``Sources``.

    Examples
    --------
    >>> relmat_sidecar("correlation")["RelationshipMeasure"]
    'PearsonCorrelation'
    """
    _check_choice("kind", kind, KINDS)
    _check_choice("estimator", estimator, ESTIMATORS)
    measure, description = MEASURES[kind]
    return {
        "RelationshipMeasure": measure,
        "MeasureDescription": description,
        "Directed": False,
        "Weighted": True,
        "ValidDiagonal": kind == "covariance",
        "StorageFormat": "Full",
        "CovarianceEstimator": {
            "empirical": "Empirical (maximum likelihood, ddof=0)",
            "ledoit_wolf": "Ledoit-Wolf shrinkage",
        }[estimator],
        "NodeFiles": list(node_files),
        "Sources": list(sources),
    }


def _inverse_spd(cov: np.ndarray, estimator: str, shape: tuple[int, int]) -> np.ndarray:
    """Invert a covariance matrix (``scipy.linalg.inv``, as nilearn), refusing singular ones.

    The Cholesky factorisation is the test: it fails, or has a pivot ratio near machine
    precision, when the matrix is not positive definite (e.g. an empirical covariance of fewer
    time points than regions).
    """
    try:
        factor = linalg.cho_factor(cov, lower=True)
    except linalg.LinAlgError:
        factor = None
    pivots = np.zeros(1) if factor is None else np.diag(factor[0]) ** 2
    if pivots.min() <= pivots.max() * cov.shape[0] * np.finfo(np.float64).eps:
        raise ValueError(
            f"The {estimator} covariance of {shape[1]} regions over {shape[0]} time points is "
            "singular, so partial correlation is undefined; use estimator='ledoit_wolf'."
        )
    return linalg.inv(cov)


def _valid_columns(x: np.ndarray) -> np.ndarray:
    finite = np.isfinite(x)
    all_missing = ~finite.any(axis=0)
    partial = ~finite.all(axis=0) & ~all_missing
    if partial.any():
        cols = np.flatnonzero(partial).tolist()
        raise ValueError(
            f"Region columns {cols} have some but not all values non-finite; a region's signal "
            "must be complete or entirely NaN (censor time points before computing connectivity)."
        )
    valid = ~all_missing
    constant = np.zeros_like(valid)
    constant[valid] = np.ptp(x[:, valid], axis=0) == 0
    if constant.any():
        logger.info(
            "Regions %s have constant signals; their connectivity is set to NaN.",
            np.flatnonzero(constant).tolist(),
        )
    return valid & ~constant


def _check_choice(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"'{name}' must be one of {list(allowed)}; {value!r} was provided.")
