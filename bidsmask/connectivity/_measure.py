"""``ConnectivityMeasure`` (nilearn 0.14's estimator) and the matrix <-> vector conversions.

scikit-learn is not imported: the default covariance estimator is bidsmask's Ledoit-Wolf (the same
numbers as ``sklearn.covariance.LedoitWolf(store_precision=False)``, nilearn's default), and any
object with ``fit(X)`` setting ``covariance_`` (scikit-learn's estimators included) can replace it.
"""

from __future__ import annotations

import copy
import inspect
import logging
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import linalg

from bidsmask.connectivity._estimators import cov_to_corr, ledoit_wolf, prec_to_partial

logger = logging.getLogger(__name__)

MEASURE_KINDS = ("correlation", "partial correlation", "tangent", "covariance", "precision")


def sym_matrix_to_vec(symmetric: np.ndarray, discard_diagonal: bool = False) -> np.ndarray:
    """Lower triangles of symmetric matrices as vectors (diagonal divided by sqrt(2)).

    The scaling keeps the Euclidean norm of the vector equal to the Frobenius norm of the matrix
    divided by sqrt(2), as nilearn's function of the same name.

    Parameters
    ----------
    symmetric : numpy.ndarray, shape (..., n, n)
        Symmetric matrices.
    discard_diagonal : bool, default=False
        Leave the diagonal out.

    Returns
    -------
    numpy.ndarray, shape (..., n * (n + 1) / 2) or (..., n * (n - 1) / 2)

    Examples
    --------
    >>> sym_matrix_to_vec(np.array([[2.0, 1.0], [1.0, 4.0]])).round(4).tolist()
    [1.4142, 1.0, 2.8284]
    """
    symmetric = np.asarray(symmetric)
    n = symmetric.shape[-1]
    lower = np.tril(np.ones((n, n), dtype=bool), k=-1 if discard_diagonal else 0)
    if discard_diagonal:
        return symmetric[..., lower]
    scale = np.ones((n, n))
    np.fill_diagonal(scale, np.sqrt(2.0))
    return symmetric[..., lower] / scale[lower]


def vec_to_sym_matrix(vec: np.ndarray, diagonal: np.ndarray | None = None) -> np.ndarray:
    """Symmetric matrices from vectors made by :func:`sym_matrix_to_vec`.

    Parameters
    ----------
    vec : numpy.ndarray, shape (..., n * (n + 1) / 2) or (..., n * (n - 1) / 2)
        Vectors; without ``diagonal`` they hold the (scaled) diagonal.
    diagonal : numpy.ndarray of shape (..., n) or None, default=None
        The diagonals divided by sqrt(2) (as :func:`sym_matrix_to_vec` scales them), when
        ``vec`` was made with ``discard_diagonal=True``.

    Returns
    -------
    numpy.ndarray, shape (..., n, n)

    Raises
    ------
    ValueError
        A vector length that is not triangular, or a diagonal of the wrong shape.

    Examples
    --------
    >>> vec_to_sym_matrix(np.array([np.sqrt(2), 1.0, 2 * np.sqrt(2)])).round(6).tolist()
    [[2.0, 1.0], [1.0, 4.0]]
    """
    vec = np.asarray(vec, dtype=float)
    length = vec.shape[-1]
    extra = 1 if diagonal is None else -1  # n(n+1)/2 with the diagonal, n(n-1)/2 without
    n = int((np.sqrt(8 * length + 1) - extra) / 2)
    if n * (n + extra) / 2 != length or n < 1:
        raise ValueError(
            f"Vector of unsuitable shape {vec.shape} can not be transformed to a symmetric "
            "matrix: its last dimension must be n * (n + 1) / 2 (n * (n - 1) / 2 with "
            "'diagonal')."
        )
    if diagonal is not None:
        diagonal = np.asarray(diagonal, dtype=float)
        if diagonal.shape[:-1] != vec.shape[:-1] or diagonal.shape[-1] != n:
            raise ValueError(
                f"diagonal of shape {diagonal.shape} incompatible with vector of shape "
                f"{vec.shape}: expected {(*vec.shape[:-1], n)}."
            )
    out = np.zeros((*vec.shape[:-1], n, n))
    strict = np.tril(np.ones((n, n), dtype=bool), k=-1)
    if diagonal is None:
        lower = np.tril(np.ones((n, n), dtype=bool))
        out[..., lower] = vec
        idx = np.arange(n)
        out[..., idx, idx] *= np.sqrt(2.0)
    else:
        out[..., strict] = vec
        idx = np.arange(n)
        out[..., idx, idx] = diagonal * np.sqrt(2.0)  # the diagonal as the vectors scale it
    out[..., strict.T] = np.swapaxes(out, -1, -2)[..., strict.T]
    return out


def _map_eigenvalues(func: Callable, symmetric: np.ndarray) -> np.ndarray:
    """Apply ``func`` to the eigenvalues of a symmetric matrix."""
    values, vectors = linalg.eigh(symmetric)
    return (vectors * func(values)) @ vectors.T


def _geometric_mean(matrices: list, max_iter: int = 30, tol: float = 1e-7) -> np.ndarray:
    """Riemannian (affine-invariant) mean of SPD matrices by gradient descent.

    Starts from the arithmetic mean; each step moves along the mean of the whitened matrices'
    logarithms, halving the step when that gradient's norm grows (Fletcher & Joshi, 2007).
    """
    mean = np.mean(matrices, axis=0)
    step, best = 1.0, np.inf
    norm = np.inf
    for _ in range(max_iter):
        values, vectors = linalg.eigh(mean)
        inv_sqrt = (vectors / np.sqrt(values)) @ vectors.T
        sqrt = (vectors * np.sqrt(values)) @ vectors.T
        gradient = np.mean(
            [_map_eigenvalues(np.log, inv_sqrt @ m @ inv_sqrt) for m in matrices], axis=0
        )
        if np.isnan(gradient).any():
            raise FloatingPointError("Nan value after logarithm operation.")
        mean = sqrt @ _map_eigenvalues(np.exp, step * gradient) @ sqrt
        norm = np.linalg.norm(gradient)
        if norm < best:
            best = norm
        elif norm > best:
            step, norm = step / 2.0, best
        if norm / mean.size < tol:
            break
    else:
        warnings.warn(
            f"Maximum number of iterations {max_iter} reached without getting to the requested "
            f"tolerance level {tol}.",
            UserWarning,
            stacklevel=3,
        )
    return mean


class _LedoitWolf:
    """Default covariance estimator: ``fit(X)`` sets ``covariance_`` (Ledoit-Wolf shrinkage)."""

    def fit(self, x: np.ndarray) -> _LedoitWolf:
        self.covariance_, self.shrinkage_ = ledoit_wolf(x)
        return self


def _clone(estimator: Any) -> Any:
    if hasattr(estimator, "get_params"):
        return type(estimator)(**estimator.get_params(deep=False))
    return copy.deepcopy(estimator)


class ConnectivityMeasure:
    """Connectivity matrices (correlation, partial correlation, tangent …) of subjects' signals.

    Same parameters, defaults, attributes and results as
    ``nilearn.connectome.ConnectivityMeasure`` 0.14, without importing scikit-learn.

    Parameters
    ----------
    cov_estimator : object or None, default=None
        Object with ``fit(X)`` that sets ``covariance_`` (e.g. a scikit-learn covariance
        estimator); None: Ledoit-Wolf shrinkage.
    kind : {"covariance", "correlation", "partial correlation", "tangent", "precision"}, \
default="covariance"
        The matrix computed for each subject.
    vectorize : bool, default=False
        Return the lower triangles (see :func:`sym_matrix_to_vec`).
    discard_diagonal : bool, default=False
        With ``vectorize``, leave the diagonal out.
    standardize : bool, default=True
        For "correlation", z-score each signal (ddof=1) before estimating the covariance.
    verbose : int, default=0
        Accepted for compatibility with nilearn.

    Attributes
    ----------
    cov_estimator_ : object
        The (fresh copy of the) covariance estimator used.
    mean_ : numpy.ndarray, shape (n_features, n_features)
        Mean connectivity of the fitted subjects (the geometric mean of the covariances for
        "tangent").
    whitening_ : numpy.ndarray or None
        ``mean_ ** -1/2`` for "tangent", else None.
    n_features_in_ : int
        Number of signals per subject.
    """

    def __init__(
        self,
        cov_estimator=None,
        kind="covariance",
        vectorize=False,
        discard_diagonal=False,
        standardize=True,
        verbose=0,
    ):
        self.cov_estimator = cov_estimator
        self.kind = kind
        self.vectorize = vectorize
        self.discard_diagonal = discard_diagonal
        self.standardize = standardize
        self.verbose = verbose

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Parameters of the estimator (scikit-learn's contract)."""
        del deep
        names = inspect.signature(type(self).__init__).parameters
        return {name: getattr(self, name) for name in names if name != "self"}

    def set_params(self, **params: Any) -> ConnectivityMeasure:
        """Set parameters (scikit-learn's contract)."""
        valid = self.get_params()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"Invalid parameter {name!r} for {type(self).__name__}.")
            setattr(self, name, value)
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "cov_estimator_")

    def _check_input(self, x, confounds=None) -> list[np.ndarray]:
        if not hasattr(x, "__iter__"):
            raise TypeError(f"Input must be an iterable of numpy arrays. Got {type(x).__name__}")
        subjects = [x] if isinstance(x, np.ndarray) and x.ndim == 2 else list(x)
        if {type(s) for s in subjects} != {np.ndarray}:
            raise ValueError(
                "Each subject must be 2D numpy.ndarray.\n You provided "
                f"{[type(s) for s in subjects]}"
            )
        if {s.ndim for s in subjects} != {2}:
            raise ValueError(
                "Each subject must be 2D numpy.ndarray.\n You provided arrays of dimensions "
                f"{[s.ndim for s in subjects]}"
            )
        n_features = {s.shape[1] for s in subjects}
        if len(n_features) > 1:
            raise ValueError(
                "All subjects must have the same number of features.\nYou provided: "
                f"{[s.shape[1] for s in subjects]}"
            )
        for s in subjects:
            if not np.isfinite(s).all():
                raise ValueError("Input X contains NaN or infinity.")
        if self.__sklearn_is_fitted__() and subjects[0].shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {subjects[0].shape[1]} features, but {type(self).__name__} is "
                f"expecting {self.n_features_in_} features as input."
            )
        if confounds is not None:
            if not hasattr(confounds, "__iter__"):
                raise TypeError(
                    "'confounds' input argument must be an iterable. "
                    f"You provided {type(confounds)}"
                )
            if not self.vectorize:
                raise ValueError(
                    "'confounds' are provided but vectorize=False. Confounds are only cleaned "
                    "on vectorized matrices as second level connectome regression but not on "
                    "symmetric matrices."
                )
        return subjects

    def _covariance(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.cov_estimator_.fit(x).covariance_, dtype=np.float64)

    def _connectivities(self, subjects: list[np.ndarray]) -> list[np.ndarray]:
        if self.kind == "correlation":
            if self.standardize is True:
                subjects = [_zscore(x) for x in subjects]
            return [cov_to_corr(self._covariance(x)) for x in subjects]
        covariances = [self._covariance(x) for x in subjects]
        if self.kind == "precision":
            return [linalg.inv(c) for c in covariances]
        if self.kind == "partial correlation":
            return [prec_to_partial(linalg.inv(c)) for c in covariances]
        return covariances

    def fit(self, X, y=None) -> ConnectivityMeasure:  # noqa: N803 - scikit-learn's name
        """Estimate the covariance estimator, ``mean_`` and ``whitening_`` from subjects.

        Parameters
        ----------
        X : list of numpy.ndarray of shape (n_samples, n_features)
            One array per subject.
        y : None
            Ignored.

        Returns
        -------
        self
        """
        del y
        self._fit(self._check_input(X))
        return self

    def _fit(self, subjects: list[np.ndarray]) -> list[np.ndarray]:
        if self.kind not in MEASURE_KINDS:
            raise ValueError(
                f"'kind' must be one of {list(MEASURE_KINDS)}. '{self.kind}' was provided."
            )
        if self.cov_estimator is None:
            self.cov_estimator_ = _LedoitWolf()
        elif not hasattr(self.cov_estimator, "fit"):
            raise ValueError(
                "'cov_estimator' must be an estimator with '.fit()' and '.covariance_' "
                f"(e.g., from `sklearn.covariance`). Got: `{type(self.cov_estimator).__name__}`."
            )
        else:
            self.cov_estimator_ = _clone(self.cov_estimator)
        self.n_features_in_ = subjects[0].shape[1]
        connectivities = self._connectivities(subjects)
        if self.kind == "tangent":
            self.mean_ = _geometric_mean(connectivities, max_iter=30, tol=1e-7)
            self.whitening_ = _map_eigenvalues(lambda v: 1.0 / np.sqrt(v), self.mean_)
        else:
            mean = np.mean(connectivities, axis=0)
            self.mean_ = (mean + mean.T) / 2
            self.whitening_ = None
        return connectivities

    def _check_group(self, subjects: list[np.ndarray]) -> None:
        """Tangent vectors are deviations from the group mean: they need several subjects."""
        if self.kind == "tangent" and len(subjects) <= 1:
            raise ValueError(
                "Tangent space parametrization can only be applied to a group of subjects, "
                f"as it returns deviations to the mean. You provided {len(subjects)} subject."
            )

    def _output(self, subjects, connectivities, confounds) -> np.ndarray:
        if self.kind == "tangent":
            self._check_group(subjects)
            connectivities = [
                _map_eigenvalues(np.log, self.whitening_ @ c @ self.whitening_)
                for c in connectivities
            ]
        out = np.array(connectivities)
        if self.vectorize:
            out = sym_matrix_to_vec(out, discard_diagonal=self.discard_diagonal)
            if confounds is not None:
                from bidsmask.signal import clean  # the second-level regression of nilearn

                out = clean(out, confounds=confounds)
        return out

    def fit_transform(self, X, y=None, confounds=None) -> np.ndarray:  # noqa: N803
        """Fit on the subjects and return their connectivities.

        Parameters
        ----------
        X : list of numpy.ndarray of shape (n_samples, n_features)
            One array per subject.
        y : None
            Ignored.
        confounds : array-like or None, default=None
            Regressed out of the vectorized connectivities (needs ``vectorize=True``).

        Returns
        -------
        numpy.ndarray
            (n_subjects, n_features, n_features), or vectors with ``vectorize``.
        """
        del y
        subjects = self._check_input(X, confounds)
        self._check_group(subjects)  # before fitting, which a single subject may not survive
        connectivities = self._fit(subjects)
        return self._output(subjects, connectivities, confounds)

    def transform(self, X, confounds=None) -> np.ndarray:  # noqa: N803
        """Return the subjects' connectivities (tangent: relative to the fitted ``mean_``).

        Parameters
        ----------
        X : list of numpy.ndarray of shape (n_samples, n_features)
            One array per subject.
        confounds : array-like or None, default=None
            As in :meth:`fit_transform`.

        Returns
        -------
        numpy.ndarray
        """
        if not self.__sklearn_is_fitted__():
            raise ValueError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            )
        subjects = self._check_input(X, confounds)
        return self._output(subjects, self._connectivities(subjects), confounds)

    def inverse_transform(self, connectivities, diagonal=None) -> np.ndarray:
        """Matrices from (vectorized) connectivities; covariances back from tangent vectors.

        Parameters
        ----------
        connectivities : array-like
            (n_subjects, n_features, n_features) matrices, or vectors with ``vectorize``.
        diagonal : numpy.ndarray of shape (n_subjects, n_features) or None, default=None
            Diagonals discarded by ``discard_diagonal`` (known for correlations: 1).

        Returns
        -------
        numpy.ndarray, shape (n_subjects, n_features, n_features)
        """
        if not self.__sklearn_is_fitted__():
            raise ValueError(f"This {type(self).__name__} instance is not fitted yet.")
        connectivities = np.array(connectivities)
        if self.vectorize:
            if self.discard_diagonal and diagonal is None:
                if self.kind not in ("correlation", "partial correlation"):
                    raise ValueError(
                        f"diagonal values has been discarded and are unknown for {self.kind} "
                        "kind, cannot reconstruct connectivity matrices."
                    )
                diagonal = np.ones((connectivities.shape[0], self.mean_.shape[0])) / np.sqrt(2)
            connectivities = vec_to_sym_matrix(connectivities, diagonal=diagonal)
        if self.kind == "tangent":
            mean_sqrt = _map_eigenvalues(np.sqrt, self.mean_)
            connectivities = np.array(
                [mean_sqrt @ _map_eigenvalues(np.exp, d) @ mean_sqrt for d in connectivities]
            )
        return connectivities


def _zscore(x: np.ndarray) -> np.ndarray:
    """Centre each column and divide it by its sample standard deviation (1 where ~0)."""
    x = x - x.mean(axis=0)
    std = x.std(axis=0, ddof=1) if x.shape[0] > 1 else np.zeros(x.shape[1])
    std[std < np.finfo(np.float64).eps] = 1.0
    return x / std
