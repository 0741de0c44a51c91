"""fMRIPrep-like confounds computed from a generated BOLD run.

The column set, the ``n/a`` cells and the JSON metadata follow fMRIPrep ≥ 21
(``*_desc-confounds_timeseries.tsv``): motion parameters with derivatives and powers,
mean signals (global, CSF, white matter) with the same expansions, framewise
displacement (Power), DVARS (raw and standardised), a/c/w/t CompCor components (retained
up to 50 % of variance), cosine high-pass regressors (128 s), one-hot non-steady-state
and motion-outlier columns. Column names are those fMRIPrep writes (``cosine00``,
``non_steady_state_outlier00``, ``motion_outlier00``; ``a_comp_cor_00``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bidsmask.datagen._bold import RunTimecourses

MOTION = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
HEAD_RADIUS_MM = 50.0
HIGH_PASS_S = 128.0
FD_SPIKE_THRESHOLD = 0.5
DVARS_SPIKE_THRESHOLD = 1.5
TCOMPCOR_PERCENTILE = 0.02
VARIANCE_RETAINED = 0.5


def _expand(name: str, values: np.ndarray) -> dict[str, np.ndarray]:
    derivative = np.concatenate([[np.nan], np.diff(values)])
    return {
        name: values,
        f"{name}_derivative1": derivative,
        f"{name}_derivative1_power2": derivative**2,
        f"{name}_power2": values**2,
    }


def cosine_basis(n_volumes: int, t_r: float, period_cut: float = HIGH_PASS_S) -> np.ndarray:
    """Return the DCT high-pass regressors fMRIPrep saves as ``cosineXX``.

    ``floor(2 * n_volumes * t_r / period_cut) - 1`` columns
    ``sqrt(2 / n) * cos(pi * k * (t + 0.5) / n)`` for k = 1, 2, …  (the constant is
    not saved).
    """
    order = int(np.floor(2 * n_volumes * t_r / period_cut))
    times = np.arange(n_volumes)
    columns = [
        np.sqrt(2.0 / n_volumes) * np.cos(np.pi / n_volumes * (times + 0.5) * k)
        for k in range(1, order)
    ]
    return np.stack(columns, axis=1) if columns else np.zeros((n_volumes, 0))


def framewise_displacement(motion: np.ndarray) -> np.ndarray:
    """Power's FD: ``sum |Δtrans| + 50 mm * sum |Δrot|``, NaN for the first volume."""
    delta = np.abs(np.diff(motion, axis=0))
    fd = delta[:, :3].sum(axis=1) + HEAD_RADIUS_MM * delta[:, 3:].sum(axis=1)
    return np.concatenate([[np.nan], fd])


def dvars(signals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DVARS and standardised DVARS of (n_voxels, T) signals, NaN for the first volume.

    As nipype's ``ComputeDVARS`` (used by fMRIPrep): signals are scaled to a median of
    1000; DVARS is the RMS over voxels of the volume-to-volume difference; the
    standardised version divides it by its expected value, the mean over voxels of
    ``robust_sd * sqrt(2 * (1 - ar1))`` (robust SD from the interquartile range, lag-1
    Yule-Walker autocorrelation of the demeaned series).
    """
    scaled = signals / np.median(signals) * 1000.0
    q75, q25 = np.percentile(scaled, [75, 25], axis=1)
    robust_sd = (q75 - q25) / 1.349
    keep = robust_sd > 0
    scaled, robust_sd = scaled[keep], robust_sd[keep]
    centred = scaled - scaled.mean(axis=1, keepdims=True)
    ar1 = (centred[:, 1:] * centred[:, :-1]).sum(axis=1) / (centred**2).sum(axis=1)
    expected = (robust_sd * np.sqrt(2 * (1 - ar1))).mean()
    raw = np.sqrt((np.diff(scaled, axis=1) ** 2).mean(axis=0))
    return np.concatenate([[np.nan], raw]), np.concatenate([[np.nan], raw / expected])


def compcor(
    signals: np.ndarray, n_non_steady: int, basis: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CompCor components of (n_voxels, T) signals, as nipype computes them.

    Non-steady-state volumes are left out, the high-pass ``basis`` and a constant are
    regressed out, each voxel is scaled to unit variance, and the left singular vectors
    are the components. Components are padded with zeros over the non-steady volumes.

    Returns
    -------
    components : numpy.ndarray
        (T, k) all components.
    singular_values, variance_explained : numpy.ndarray
        (k,) each.
    """
    data = signals[:, n_non_steady:].T.astype(np.float64)
    design = np.column_stack([basis, np.ones(len(data))])
    residual = data - design @ np.linalg.lstsq(design, data, rcond=None)[0]
    sd = residual.std(axis=0)
    sd[sd == 0] = 1.0
    scaled = residual / sd
    # Left singular vectors from the small (T × T) Gram matrix: same result as an SVD
    # of the (T × voxels) matrix, at a fraction of the cost.
    eigenvalues, u = np.linalg.eigh(scaled @ scaled.T)
    order = np.argsort(eigenvalues)[::-1]
    keep = order[eigenvalues[order] > eigenvalues.max() * 1e-10]
    u, s = u[:, keep], np.sqrt(eigenvalues[keep])
    # Fix the arbitrary sign of each component: largest loading positive.
    u *= np.sign(u[np.abs(u).argmax(axis=0), np.arange(u.shape[1])])
    components = np.zeros((signals.shape[1], u.shape[1]))
    components[n_non_steady:] = u
    return components, s, s**2 / (s**2).sum()


def _compcor_columns(prefix, signals, n_non_steady, basis, method, mask_name, dropped_from):
    components, singular, variance = compcor(signals, n_non_steady, basis)
    cumulative = np.cumsum(variance)
    n_retained = int(np.searchsorted(cumulative, VARIANCE_RETAINED) + 1)
    columns, meta = {}, {}
    for i in range(len(singular)):
        entry = {
            "CumulativeVarianceExplained": float(cumulative[i]),
            **({"Mask": mask_name} if mask_name else {}),
            "Method": method,
            "Retained": i < n_retained,
            "SingularValue": float(singular[i]),
            "VarianceExplained": float(variance[i]),
        }
        if i < n_retained:
            columns[f"{prefix}_comp_cor_{i:02d}"] = components[:, i]
            meta[f"{prefix}_comp_cor_{i:02d}"] = entry
        else:
            meta[f"dropped_{dropped_from + i - n_retained}"] = entry
    return columns, meta, dropped_from + len(singular) - n_retained


def compute_confounds(
    bold: np.ndarray,
    brain: np.ndarray,
    csf: np.ndarray,
    wm: np.ndarray,
    run: RunTimecourses,
) -> tuple[pd.DataFrame, dict]:
    """Compute the confounds table of a run and its JSON metadata.

    Parameters
    ----------
    bold : numpy.ndarray
        (X, Y, Z, T) BOLD data as written to disk (float32).
    brain, csf, wm : numpy.ndarray
        Boolean masks: the run's brain mask and the CompCor CSF and WM masks.
    run : RunTimecourses
        The run's motion and number of non-steady-state volumes.

    Returns
    -------
    table : pandas.DataFrame
        One row per volume, NaN where fMRIPrep writes ``n/a``.
    metadata : dict
        The ``desc-confounds_timeseries.json`` content.
    """
    n_volumes = bold.shape[-1]
    in_brain = bold[brain].astype(np.float64)
    in_csf = bold[csf].astype(np.float64)
    in_wm = bold[wm].astype(np.float64)
    steady = n_volumes - run.n_non_steady
    basis = cosine_basis(steady, run.t_r)
    columns: dict[str, np.ndarray] = {}
    columns.update(_expand("global_signal", in_brain.mean(axis=0)))
    columns.update(_expand("csf", in_csf.mean(axis=0)))
    columns.update(_expand("white_matter", in_wm.mean(axis=0)))
    columns["csf_wm"] = np.concatenate([in_csf, in_wm]).mean(axis=0)
    # tCompCor: the 2 % highest-variance brain voxels once drifts are removed.
    steady_data = in_brain[:, run.n_non_steady :].T
    design = np.column_stack([basis, np.ones(steady)])
    residual = steady_data - design @ np.linalg.lstsq(design, steady_data, rcond=None)[0]
    variance = residual.var(axis=0)
    top = variance >= np.quantile(variance, 1 - TCOMPCOR_PERCENTILE)
    columns["tcompcor"] = in_brain[top].mean(axis=0)
    columns["dvars"], columns["std_dvars"] = dvars(in_brain)
    columns["framewise_displacement"] = framewise_displacement(run.motion)
    delta = np.diff(run.motion, axis=0)
    rmsd = np.sqrt(
        (delta[:, :3] ** 2).sum(axis=1) + 0.2 * 80.0**2 * (delta[:, 3:] ** 2).sum(axis=1)
    )
    columns["rmsd"] = np.concatenate([[np.nan], rmsd])
    metadata = {name: {"Method": "Mean"} for name in ("global_signal", "csf", "white_matter")}
    metadata.update({"csf_wm": {"Method": "Mean"}, "tcompcor": {"Method": "Mean"}})
    dropped = 0
    for prefix, signals, method, mask_name in (
        ("t", in_brain[top], "tCompCor", None),
        ("c", in_csf, "aCompCor", "CSF"),
        ("w", in_wm, "aCompCor", "WM"),
        ("a", np.concatenate([in_csf, in_wm]), "aCompCor", "combined"),
    ):
        cols, meta, dropped = _compcor_columns(
            prefix, signals, run.n_non_steady, basis, method, mask_name, dropped
        )
        columns.update(cols)
        metadata.update(meta)
    for k in range(basis.shape[1]):
        columns[f"cosine{k:02d}"] = np.concatenate([np.zeros(run.n_non_steady), basis[:, k]])
    for k in range(run.n_non_steady):
        columns[f"non_steady_state_outlier{k:02d}"] = np.eye(n_volumes)[k]
    for i, name in enumerate(MOTION):
        columns.update(_expand(name, run.motion[:, i]))
    outliers = (np.nan_to_num(columns["framewise_displacement"]) > FD_SPIKE_THRESHOLD) | (
        np.nan_to_num(columns["std_dvars"]) > DVARS_SPIKE_THRESHOLD
    )
    for k, volume in enumerate(np.flatnonzero(outliers)):
        columns[f"motion_outlier{k:02d}"] = np.eye(n_volumes)[volume]
    return pd.DataFrame(columns), metadata
