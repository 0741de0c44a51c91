"""Denoising quality: QC-FC, distance dependence and temporal degrees of freedom lost.

Pure functions on arrays (no file is read or written here); the group level
(:mod:`bidsmask.app.denoising`) feeds them the participant-level matrices, the runs' mean framewise
displacement and the atlases' region centroids.

QC-FC (Power et al. 2012; Ciric et al. 2017; Parkes et al. 2018)
    For each edge (pair of regions), the Pearson correlation across runs between the edge's
    connectivity value and the run's mean framewise displacement (FD). The partial version first
    regresses covariates (an intercept plus, e.g., age and sex) out of both the edge values and
    the mean FD, then correlates the residuals. Its p-value is two-sided, from Student's t with
    ``n - rank([1, covariates]) - 1`` degrees of freedom (``n - 2`` without covariates, as
    :func:`scipy.stats.pearsonr`). An edge missing in some runs (a region below the minimum
    coverage is ``n/a``) is computed over the runs that have it; an edge with fewer than
    ``min_runs`` runs, or with no degree of freedom left, is NaN.
Benjamini–Hochberg FDR (Benjamini & Hochberg 1995)
    :func:`fdr_bh` returns the adjusted p-values (q-values) of the finite p-values.
Distance dependence (Power et al. 2012; Ciric et al. 2017)
    Spearman correlation between the edges' QC-FC and the Euclidean distance between the
    centroids of their two regions. Centroids in world mm: :func:`label_centroids` (mean position
    of a label's voxels), :func:`map_centroids` (weight-weighted mean position of a map) or the
    sphere centres.
Temporal degrees of freedom lost (Parkes et al. 2018)
    ``regressors + censored volumes + filtered volumes``. The volumes removed by filtering are
    estimated as the fraction of the frequency band ``[0, Nyquist]`` that the high- and low-pass
    cut-offs remove, times the number of kept volumes (the count of discrete Fourier
    frequencies outside the pass band, as for an ideal filter; a Butterworth filter's roll-off
    makes this an approximation). The intercept and linear trend removed by detrending are the
    same for every strategy and are not counted.

References
----------
Benjamini Y, Hochberg Y (1995). Controlling the false discovery rate. J R Stat Soc B 57:289.
Ciric R et al. (2017). Benchmarking of participant-level confound regression strategies for the
control of motion artifact in studies of functional connectivity. NeuroImage 154:174.
Parkes L et al. (2018). An evaluation of the efficacy, reliability, and sensitivity of motion
correction strategies for resting-state functional MRI. NeuroImage 171:415.
Power JD et al. (2012). Spurious but systematic correlations in functional connectivity MRI
networks arise from subject motion. NeuroImage 59:2142.
Wang HT et al. (2024). Benchmarking fMRI denoising strategies for functional connectomics.
PLOS Comput Biol 20:e1011942.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

#: Fewest runs (or participants) for which QC-FC and its summaries are computed.
MIN_RUNS = 3


@dataclass(frozen=True)
class QCFC:
    """Edge-wise QC-FC.

    Attributes
    ----------
    r : numpy.ndarray
        ``(n_edges,)`` (partial) correlation of each edge with mean FD; NaN where undefined.
    p : numpy.ndarray
        ``(n_edges,)`` two-sided p-values; NaN where ``r`` is.
    n : numpy.ndarray
        ``(n_edges,)`` number of runs used for each edge.
    dof : numpy.ndarray
        ``(n_edges,)`` degrees of freedom of the t statistic of each edge.
    """

    r: np.ndarray
    p: np.ndarray
    n: np.ndarray
    dof: np.ndarray


def upper_triangle(matrix: np.ndarray) -> np.ndarray:
    """Return the edges of a square matrix: its strict upper triangle, row by row.

    Examples
    --------
    >>> upper_triangle(np.arange(9.0).reshape(3, 3))
    array([1., 2., 5.])
    """
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"Expected a square matrix, got shape {matrix.shape}.")
    return matrix[np.triu_indices(matrix.shape[0], k=1)]


def edge_matrix(values: np.ndarray) -> np.ndarray:
    """Return the symmetric ``(n_regions, n_regions)`` matrix of edge values (NaN diagonal).

    The inverse of :func:`upper_triangle` for a symmetric matrix.

    Examples
    --------
    >>> edge_matrix(np.array([1.0, 2.0, 5.0]))
    array([[nan,  1.,  2.],
           [ 1., nan,  5.],
           [ 2.,  5., nan]])
    """
    values = np.asarray(values, dtype=float)
    n = int(round((1 + np.sqrt(1 + 8 * values.size)) / 2))
    if n * (n - 1) // 2 != values.size:
        raise ValueError(f"{values.size} values are not the edges of a square matrix.")
    out = np.full((n, n), np.nan)
    rows, cols = np.triu_indices(n, k=1)
    out[rows, cols] = values
    out[cols, rows] = values
    return out


def _t_pvalue(r: np.ndarray, dof: np.ndarray) -> np.ndarray:
    """Two-sided p-value of correlations ``r`` with ``dof`` degrees of freedom."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = r * np.sqrt(dof / ((1.0 - r) * (1.0 + r)))
    p = 2.0 * stats.t.sf(np.abs(t), dof)
    return np.where(np.isfinite(r), np.minimum(p, 1.0), np.nan)


def _residualize(values: np.ndarray, design: np.ndarray) -> np.ndarray:
    """Return the residuals of the columns of ``values`` after least squares on ``design``."""
    beta, *_ = np.linalg.lstsq(design, values, rcond=None)
    return values - design @ beta


def qcfc(
    edges: np.ndarray,
    motion: np.ndarray,
    covariates: np.ndarray | None = None,
    min_runs: int = MIN_RUNS,
) -> QCFC:
    """Correlate every edge with motion across runs, optionally controlling for covariates.

    Parameters
    ----------
    edges : numpy.ndarray
        ``(n_runs, n_edges)`` connectivity values (NaN where a run lacks the edge).
    motion : numpy.ndarray
        ``(n_runs,)`` mean framewise displacement of each run (finite).
    covariates : numpy.ndarray or None
        ``(n_runs, n_covariates)`` finite covariates (numeric; encode categories as indicators)
        regressed out of the edges and of the motion, with an intercept, before correlating.
        None: plain Pearson correlation.
    min_runs : int, default=3
        Edges present in fewer runs are NaN.

    Returns
    -------
    QCFC
        Correlations, p-values, runs and degrees of freedom per edge.

    Examples
    --------
    >>> fd = np.array([0.1, 0.2, 0.3, 0.4])
    >>> result = qcfc(np.column_stack([fd * 2 + 1, -fd]), fd)
    >>> result.r.round(6).tolist(), result.n.tolist()
    ([1.0, -1.0], [4, 4])
    """
    edges = np.atleast_2d(np.asarray(edges, dtype=float))
    motion = np.asarray(motion, dtype=float).ravel()
    n_runs, n_edges = edges.shape
    if motion.shape != (n_runs,) or not np.isfinite(motion).all():
        raise ValueError(
            f"motion must hold one finite value per run ({n_runs}), got {motion.shape} values."
        )
    extra = np.empty((n_runs, 0))
    if covariates is not None:
        extra = np.asarray(covariates, dtype=float).reshape(n_runs, -1)
        if not np.isfinite(extra).all():
            raise ValueError("covariates must be finite: drop the runs without a value first.")
    r = np.full(n_edges, np.nan)
    dof = np.zeros(n_edges)
    present = np.isfinite(edges)
    n = present.sum(axis=0)
    patterns, which = np.unique(present.T, axis=0, return_inverse=True)
    for k, pattern in enumerate(patterns):
        cols = np.flatnonzero(np.ravel(which) == k)
        rows = np.flatnonzero(pattern)
        if rows.size < min_runs:
            continue
        design = np.column_stack([np.ones(rows.size), extra[rows]])
        df = rows.size - np.linalg.matrix_rank(design) - 1
        if df < 1:
            continue
        x = _residualize(edges[np.ix_(rows, cols)], design)
        y = _residualize(motion[rows], design)
        with np.errstate(divide="ignore", invalid="ignore"):
            corr = (y @ x) / np.sqrt((x * x).sum(axis=0) * (y @ y))
        r[cols] = np.clip(corr, -1.0, 1.0)
        dof[cols] = df
    return QCFC(r, _t_pvalue(r, dof), n, dof)


def fdr_bh(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (NaN stays NaN and is not counted).

    Examples
    --------
    >>> fdr_bh(np.array([0.01, 0.04, 0.03, np.nan])).round(3).tolist()
    [0.03, 0.04, 0.04, nan]
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    if finite.size == 0:
        return out
    order = finite[np.argsort(p[finite], kind="stable")]
    ranked = p[order] * finite.size / np.arange(1, finite.size + 1)
    out[order] = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    return out


def qcfc_summary(result: QCFC, alpha: float = 0.05) -> dict[str, float]:
    """Summarise QC-FC: median |QC-FC| and percentages of edges significant at ``alpha``.

    Percentages are over the edges with a finite QC-FC; all values are NaN when none has one.

    Returns
    -------
    dict
        ``median_abs_qcfc``, ``percent_edges_p05`` (uncorrected), ``percent_edges_fdr05``
        (Benjamini–Hochberg), ``n_edges`` (edges with a finite QC-FC).
    """
    finite = np.isfinite(result.r)
    if not finite.any():
        return {
            "median_abs_qcfc": np.nan,
            "percent_edges_p05": np.nan,
            "percent_edges_fdr05": np.nan,
            "n_edges": 0,
        }
    p = result.p[finite]
    return {
        "median_abs_qcfc": float(np.median(np.abs(result.r[finite]))),
        "percent_edges_p05": float(100.0 * np.mean(p < alpha)),
        "percent_edges_fdr05": float(100.0 * np.mean(fdr_bh(p) < alpha)),
        "n_edges": int(finite.sum()),
    }


def spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Spearman correlation and two-sided p-value (t, ``n - 2`` dof) over pairs both finite.

    Returns ``(nan, nan)`` with fewer than 3 such pairs.

    Examples
    --------
    >>> spearman(np.array([1.0, 2.0, 3.0, np.nan]), np.array([1.0, 4.0, 9.0, 0.0]))[0]
    1.0
    """
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    both = np.isfinite(x) & np.isfinite(y)
    if both.sum() < 3:
        return np.nan, np.nan
    rx, ry = stats.rankdata(x[both]), stats.rankdata(y[both])
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = np.sqrt((rx @ rx) * (ry @ ry))
    if denominator == 0:
        return np.nan, np.nan
    rho = float(np.clip((rx @ ry) / denominator, -1.0, 1.0))
    p = float(_t_pvalue(np.array([rho]), np.array([both.sum() - 2.0]))[0])
    return rho, p


def centroid_distances(centroids: np.ndarray) -> np.ndarray:
    """Euclidean distance between the centroids of every edge's two regions (upper triangle).

    Distances are rounded to 1e-6 mm, so that distances equal in exact arithmetic (regular grids
    give many) tie for the Spearman ranks whatever the order of the floating-point operations.

    Examples
    --------
    >>> centroid_distances(np.array([[0.0, 0, 0], [3, 4, 0], [0, 0, 1]])).tolist()
    [5.0, 1.0, 5.09902]
    """
    c = np.asarray(centroids, dtype=float)
    if c.ndim != 2 or c.shape[1] != 3:
        raise ValueError(f"Expected (n_regions, 3) centroids, got shape {c.shape}.")
    rows, cols = np.triu_indices(c.shape[0], k=1)
    return np.round(np.linalg.norm(c[rows] - c[cols], axis=1), 6)


def _to_world(ijk: np.ndarray, affine: np.ndarray) -> np.ndarray:
    return ijk @ np.asarray(affine, dtype=float)[:3, :3].T + np.asarray(affine, dtype=float)[:3, 3]


def label_centroids(labels: np.ndarray, affine: np.ndarray, ids: Sequence[int]) -> np.ndarray:
    """Centroid in world mm of each label's voxels (NaN for a label with no voxel).

    Parameters
    ----------
    labels : numpy.ndarray
        3D integer label image.
    affine : numpy.ndarray
        Its (4, 4) voxel-to-world affine.
    ids : sequence of int
        Label values, in the order wanted.

    Returns
    -------
    numpy.ndarray
        ``(len(ids), 3)`` float64.

    Examples
    --------
    >>> data = np.zeros((4, 1, 1), int); data[0] = 1; data[2:] = 2
    >>> label_centroids(data, np.diag([2.0, 1, 1, 1]), [2, 1, 3]).tolist()
    [[5.0, 0.0, 0.0], [0.0, 0.0, 0.0], [nan, nan, nan]]
    """
    labels = np.asarray(labels)
    ids = np.asarray(list(ids), dtype=np.int64)
    out = np.full((ids.size, 3), np.nan)
    voxels = np.nonzero(np.isin(labels, ids))
    values = labels[voxels].astype(np.int64)
    position = np.searchsorted(np.sort(ids), values)
    order = np.argsort(ids)
    counts = np.bincount(position, minlength=ids.size).astype(float)
    ijk = np.column_stack(voxels).astype(float)
    sums = np.column_stack(
        [np.bincount(position, weights=ijk[:, a], minlength=ids.size) for a in range(3)]
    )
    has = counts > 0
    mean = np.full((ids.size, 3), np.nan)
    mean[has] = sums[has] / counts[has, None]
    out[order] = mean
    return np.where(np.isfinite(out), _to_world(np.nan_to_num(out), affine), np.nan)


def map_centroids(maps: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Weight-weighted centroid in world mm of each map of a 4D image (last axis: maps).

    Negative weights are ignored (probabilistic maps have none); a map with no positive weight
    gets NaN.

    Examples
    --------
    >>> maps = np.zeros((3, 1, 1, 2)); maps[0, 0, 0, 0] = 1; maps[2, 0, 0, 0] = 3
    >>> map_centroids(maps, np.eye(4)).tolist()
    [[1.5, 0.0, 0.0], [nan, nan, nan]]
    """
    maps = np.asarray(maps)
    if maps.ndim == 3:
        maps = maps[..., None]
    weights = np.clip(maps, 0, None)  # one copy, in the maps' dtype (float32 for DiFuMo)
    total = weights.sum(axis=(0, 1, 2), dtype=np.float64)
    sums = np.empty((maps.shape[-1], 3))
    for axis in range(3):  # sum of w * index along one axis = index @ the marginal of w
        others = tuple(a for a in range(3) if a != axis)
        marginal = weights.sum(axis=others, dtype=np.float64)
        sums[:, axis] = np.arange(maps.shape[axis], dtype=np.float64) @ marginal
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = sums / total[:, None]
    mean[total <= 0] = np.nan
    return np.where(np.isfinite(mean), _to_world(np.nan_to_num(mean), affine), np.nan)


def filtered_fraction(t_r: float, high_pass: float | None, low_pass: float | None) -> float:
    """Fraction of the band ``[0, Nyquist]`` removed by the high- and low-pass cut-offs (Hz).

    Examples
    --------
    >>> filtered_fraction(2.0, 0.01, 0.08)  # Nyquist 0.25 Hz: keeps 0.07 of 0.25
    0.72
    """
    nyquist = 0.5 / t_r
    low = min(low_pass, nyquist) if low_pass else nyquist
    high = max(high_pass, 0.0) if high_pass else 0.0
    return float(round(1.0 - max(low - high, 0.0) / nyquist, 12))


def tdof_lost(
    n_regressors: int,
    n_censored: int,
    n_kept: int,
    t_r: float,
    high_pass: float | None = None,
    low_pass: float | None = None,
) -> dict[str, float]:
    """Temporal degrees of freedom a strategy removed from one run.

    Parameters
    ----------
    n_regressors : int
        Confound regressors of the strategy.
    n_censored : int
        Volumes removed (dummy scans, non-steady-state, scrubbed).
    n_kept : int
        Volumes kept.
    t_r : float
        Repetition time (s).
    high_pass, low_pass : float or None
        Filter cut-offs (Hz); None for no filter.

    Returns
    -------
    dict
        ``regressors``, ``censored``, ``filtered`` (``filtered_fraction * n_kept``) and ``total``.

    Examples
    --------
    >>> tdof_lost(24, 5, 75, 2.0, 0.01, 0.08)
    {'regressors': 24.0, 'censored': 5.0, 'filtered': 54.0, 'total': 83.0}
    """
    filtered = filtered_fraction(t_r, high_pass, low_pass) * n_kept
    parts = {"regressors": float(n_regressors), "censored": float(n_censored)}
    parts["filtered"] = float(filtered)
    parts["total"] = float(sum(parts.values()))
    return parts
