"""bidsmask.quality against independent computations with scipy.stats and plain numpy."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats

from bidsmask import quality


@pytest.fixture
def matrices():
    """12 runs of 6-region correlation matrices, some edges tied to motion, and covariates."""
    rng = np.random.default_rng(7)
    n_runs, n_regions = 12, 6
    fd = rng.uniform(0.05, 0.6, n_runs)
    age = rng.uniform(20, 70, n_runs)
    sex = (rng.random(n_runs) < 0.5).astype(float)
    mats = []
    for i in range(n_runs):
        signals = rng.standard_normal((100, n_regions))
        signals[:, :3] += 3 * fd[i] * rng.standard_normal((100, 1))  # motion-driven edges
        mats.append(np.corrcoef(signals, rowvar=False))
    return np.stack(mats), fd, np.column_stack([age, sex])


def test_edges_are_the_upper_triangle_and_back(matrices):
    mats, _, _ = matrices
    edges = quality.upper_triangle(mats[0])
    assert edges.size == 15
    assert_array_equal(edges, [mats[0][i, j] for i in range(6) for j in range(i + 1, 6)])
    back = quality.edge_matrix(edges)
    upper = np.triu_indices(6, k=1)
    assert_array_equal(back[upper], mats[0][upper])
    assert_array_equal(back, back.T)
    assert np.isnan(np.diag(back)).all()
    with pytest.raises(ValueError, match="square"):
        quality.upper_triangle(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="edges of a square"):
        quality.edge_matrix(np.zeros(4))


def test_qcfc_is_pearsonr_edge_by_edge(matrices):
    mats, fd, _ = matrices
    edges = np.stack([quality.upper_triangle(m) for m in mats])
    result = quality.qcfc(edges, fd)
    for e in range(edges.shape[1]):
        expected = stats.pearsonr(edges[:, e], fd)
        assert result.r[e] == pytest.approx(expected.statistic, abs=1e-10)
        assert result.p[e] == pytest.approx(expected.pvalue, abs=1e-10)
    assert_array_equal(result.n, 12)
    assert_array_equal(result.dof, 10)
    assert result.r[[0, 1, 5]].min() > 0.5  # edges among regions 0-2 follow motion


def test_partial_qcfc_is_pearsonr_after_regressing_out_covariates(matrices):
    mats, fd, covariates = matrices
    edges = np.stack([quality.upper_triangle(m) for m in mats])
    result = quality.qcfc(edges, fd, covariates)
    design = np.column_stack([np.ones(len(fd)), covariates])

    def residual(v):
        return v - design @ np.linalg.lstsq(design, v, rcond=None)[0]

    dof = len(fd) - 2 - covariates.shape[1]
    for e in range(edges.shape[1]):
        r = stats.pearsonr(residual(edges[:, e]), residual(fd)).statistic
        t = r * np.sqrt(dof / (1 - r**2))
        assert result.r[e] == pytest.approx(r, abs=1e-10)
        assert result.p[e] == pytest.approx(2 * stats.t.sf(abs(t), dof), abs=1e-10)
    assert_array_equal(result.dof, dof)


def test_qcfc_uses_the_runs_that_have_each_edge(matrices):
    mats, fd, covariates = matrices
    edges = np.stack([quality.upper_triangle(m) for m in mats])
    edges[[0, 5], 2] = np.nan  # region missing in two runs
    edges[3:, 4] = np.nan  # edge left in 3 runs only
    edges[2:, 7] = np.nan  # edge left in 2 runs: n/a
    result = quality.qcfc(edges, fd)
    keep = np.isfinite(edges[:, 2])
    expected = stats.pearsonr(edges[keep, 2], fd[keep])
    assert result.r[2] == pytest.approx(expected.statistic, abs=1e-10)
    assert result.p[2] == pytest.approx(expected.pvalue, abs=1e-10)
    assert result.r[4] == pytest.approx(stats.pearsonr(edges[:3, 4], fd[:3]).statistic, abs=1e-10)
    assert np.isnan(result.r[7]) and np.isnan(result.p[7]) and result.n[7] == 2
    assert result.n.tolist()[:5] == [12, 12, 10, 12, 3]
    # with 2 covariates, 3 runs leave no degree of freedom
    partial = quality.qcfc(edges, fd, covariates)
    assert np.isnan(partial.r[4]) and np.isfinite(partial.r[2])


def test_qcfc_with_too_few_runs_or_bad_input_is_nan_or_an_error():
    result = quality.qcfc(np.ones((2, 3)), np.array([0.1, 0.2]))
    assert np.isnan(result.r).all() and np.isnan(result.p).all()
    with pytest.raises(ValueError, match="one finite value per run"):
        quality.qcfc(np.ones((3, 2)), np.array([0.1, np.nan, 0.2]))
    with pytest.raises(ValueError, match="covariates must be finite"):
        quality.qcfc(np.ones((3, 2)), np.ones(3), np.array([1.0, np.nan, 2.0]))
    constant = quality.qcfc(np.ones((4, 1)), np.array([0.1, 0.2, 0.3, 0.4]))
    assert np.isnan(constant.r[0])


def _hand_written_bh(p):
    """Benjamini–Hochberg step-up, written from the paper: q_(i) = min_{k>=i} p_(k) m / k."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    q = [0.0] * m
    for rank, i in enumerate(order, start=1):
        q[i] = min(1.0, min(p[order[k - 1]] * m / k for k in range(rank, m + 1)))
    return q


def test_fdr_bh_equals_a_hand_written_benjamini_hochberg():
    p = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216, 0.9, 0.5]
    assert_allclose(quality.fdr_bh(np.array(p)), _hand_written_bh(p), rtol=0, atol=1e-12)
    with_nan = quality.fdr_bh(np.array([0.02, np.nan, 0.01, 0.04]))
    assert_allclose(with_nan, [*_hand_written_bh([0.02, 0.01, 0.04])[:1], np.nan, 0.03, 0.04])
    assert np.isnan(quality.fdr_bh(np.array([np.nan, np.nan]))).all()
    rng = np.random.default_rng(0)
    many = rng.uniform(0, 0.2, 200)
    assert_allclose(quality.fdr_bh(many), _hand_written_bh(list(many)), atol=1e-12)
    assert_allclose(quality.fdr_bh(many), stats.false_discovery_control(many), atol=1e-12)


def test_qcfc_summary_counts_edges(matrices):
    mats, fd, _ = matrices
    edges = np.stack([quality.upper_triangle(m) for m in mats])
    edges[:, 0] = np.nan
    result = quality.qcfc(edges, fd)
    summary = quality.qcfc_summary(result)
    r, p = result.r[1:], result.p[1:]
    assert summary["n_edges"] == 14
    assert summary["median_abs_qcfc"] == pytest.approx(np.median(np.abs(r)), abs=1e-12)
    assert summary["percent_edges_p05"] == pytest.approx(100 * np.mean(p < 0.05))
    q = np.array(_hand_written_bh(list(p)))
    assert summary["percent_edges_fdr05"] == pytest.approx(100 * np.mean(q < 0.05))
    empty = quality.qcfc_summary(quality.qcfc(np.ones((2, 2)), np.array([0.1, 0.2])))
    assert empty["n_edges"] == 0 and np.isnan(empty["median_abs_qcfc"])


def test_distance_dependence_is_scipy_spearman():
    rng = np.random.default_rng(3)
    centroids = rng.uniform(-60, 60, (8, 3))
    distance = quality.centroid_distances(centroids)
    expected_distance = [
        np.sqrt(((centroids[i] - centroids[j]) ** 2).sum())
        for i in range(8)
        for j in range(i + 1, 8)
    ]
    assert_allclose(distance, expected_distance, atol=1e-6)
    assert_allclose(distance, np.round(expected_distance, 6), atol=1e-12)
    qc = -0.01 * distance + rng.normal(0, 0.2, distance.size)
    qc[[3, 9]] = np.nan
    rho, p = quality.spearman(qc, distance)
    keep = np.isfinite(qc)
    expected = stats.spearmanr(qc[keep], distance[keep])
    assert rho == pytest.approx(expected.statistic, abs=1e-10)
    assert p == pytest.approx(expected.pvalue, abs=1e-10)
    ties = np.array([1.0, 1.0, 2.0, 3.0, 3.0, 4.0])
    assert quality.spearman(ties, ties[::-1])[0] == pytest.approx(
        stats.spearmanr(ties, ties[::-1]).statistic, abs=1e-12
    )
    assert np.isnan(quality.spearman(np.ones(5), np.arange(5.0))[0])
    assert np.isnan(quality.spearman(np.array([1.0, 2.0]), np.array([1.0, 2.0]))[0])


def test_label_and_map_centroids_in_world_mm():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 5, (6, 7, 5))
    labels[labels == 3] = 0  # label 3 absent
    affine = np.array([[-2.0, 0, 0, 90], [0, 2, 0, -126], [0, 0, 3, -72], [0, 0, 0, 1]])
    ids = [4, 1, 3, 2]
    got = quality.label_centroids(labels, affine, ids)
    for row, label in zip(got, ids, strict=True):
        ijk = np.argwhere(labels == label)
        if ijk.size == 0:
            assert np.isnan(row).all()
            continue
        world = (affine @ np.column_stack([ijk, np.ones(len(ijk))]).T)[:3].T
        assert_allclose(row, world.mean(axis=0), atol=1e-10)
    maps = rng.random((6, 7, 5, 3))
    maps[..., 2] = -1.0  # nothing positive
    maps[0, 0, 0, 1] = -5.0  # negative weights ignored
    got = quality.map_centroids(maps, affine)
    for m in range(2):
        w = np.clip(maps[..., m], 0, None)
        ijk = np.argwhere(np.ones(w.shape, bool))
        world = (affine @ np.column_stack([ijk, np.ones(len(ijk))]).T)[:3].T
        expected = (w.ravel()[:, None] * world).sum(axis=0) / w.sum()
        assert_allclose(got[m], expected, atol=1e-10)
    assert np.isnan(got[2]).all()


def test_tdof_lost_counts_regressors_censored_and_filtered_volumes():
    assert quality.filtered_fraction(2.0, None, None) == 0.0
    assert quality.filtered_fraction(2.0, 0.01, None) == pytest.approx(0.04)
    assert quality.filtered_fraction(2.0, None, 0.1) == pytest.approx(0.6)
    assert quality.filtered_fraction(2.0, None, 0.3) == 0.0  # above Nyquist: nothing removed
    lost = quality.tdof_lost(36, 10, 70, 2.0, 0.01, 0.1)
    assert lost == {
        "regressors": 36.0,
        "censored": 10.0,
        "filtered": pytest.approx(70 * 0.64),
        "total": pytest.approx(46 + 70 * 0.64),
    }
    assert quality.tdof_lost(6, 0, 80, 2.0)["total"] == 6.0
