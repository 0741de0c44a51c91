"""Covariance estimators and conversions shared by the connectivity functions and measure."""

from __future__ import annotations

import numpy as np


def ledoit_wolf(signals: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit-Wolf shrunk covariance of centred signals.

    Parameters
    ----------
    signals : numpy.ndarray
        ``(n_samples, n_features)`` signals; they are centred here.

    Returns
    -------
    covariance : numpy.ndarray
        ``(n_features, n_features)`` float64 shrunk covariance.
    shrinkage : float
        The shrinkage coefficient in [0, 1].

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> cov, shrinkage = ledoit_wolf(rng.standard_normal((50, 4)))
    >>> cov.shape, 0.0 <= shrinkage <= 1.0
    ((4, 4), True)
    """
    x = np.asarray(signals, dtype=np.float64)
    x = x - x.mean(axis=0)
    n_samples, n_features = x.shape
    if n_features == 1:
        return np.atleast_2d((x**2).mean()), 0.0
    xtx = x.T @ x
    emp_cov = xtx / n_samples
    x2 = x**2
    emp_cov_trace = x2.sum(axis=0) / n_samples
    mu = emp_cov_trace.sum() / n_features
    # sum of all entries of x2.T @ x2, in O(n_samples * n_features)
    beta_ = np.sum(x2.sum(axis=1) ** 2)
    delta_ = np.sum(xtx**2) / n_samples**2
    beta = (beta_ / n_samples - delta_) / (n_features * n_samples)
    delta = (delta_ - 2.0 * mu * emp_cov_trace.sum() + n_features * mu**2) / n_features
    beta = min(beta, delta)
    shrinkage = 0.0 if beta == 0 else float(beta / delta)
    shrunk = (1.0 - shrinkage) * emp_cov
    shrunk.flat[:: n_features + 1] += shrinkage * mu
    return shrunk, shrinkage


def cov_to_corr(cov: np.ndarray) -> np.ndarray:
    """Correlation matrix of a covariance matrix, with an exact unit diagonal.

    Examples
    --------
    >>> cov_to_corr(np.array([[4.0, 2.0], [2.0, 9.0]]))
    array([[1.        , 0.33333333],
           [0.33333333, 1.        ]])
    """
    inv_std = 1.0 / np.sqrt(np.diag(cov))
    corr = cov * inv_std[:, None] * inv_std[None, :]
    np.fill_diagonal(corr, 1.0)
    return corr


def prec_to_partial(precision: np.ndarray) -> np.ndarray:
    """Partial correlation matrix of a precision matrix, with a unit diagonal.

    Examples
    --------
    >>> prec_to_partial(np.array([[2.0, -1.0], [-1.0, 2.0]]))
    array([[1. , 0.5],
           [0.5, 1. ]])
    """
    partial = -cov_to_corr(precision)
    np.fill_diagonal(partial, 1.0)
    return partial
