"""A run's output files: tables and images with their JSON sidecars, connectivity matrices.

Every file is written atomically (:mod:`bidsmask.bids.writer`); each writer returns the paths it
wrote, relative to the output folder.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from bidsmask import connectivity
from bidsmask.bids import writer
from bidsmask.bids.outputs import sidecar_path

logger = logging.getLogger(__name__)

#: ``--connectivity`` choices and the kinds of :func:`bidsmask.connectivity.connectivity_matrix`.
CONNECTIVITY_KINDS = {
    "correlation": "correlation",
    "partial-correlation": "partial correlation",
    "covariance": "covariance",
}


def write_relmat(
    out: Path,
    rel: Path,
    option: str,
    values: np.ndarray,
    names: list[str],
    node_files: list[str],
    timeseries: Path,
    extra: dict | None = None,
) -> tuple[list[Path], np.ndarray]:
    """Compute one connectivity matrix of a written time series; write it and its sidecar.

    Parameters
    ----------
    out : Path
        The output folder; ``rel`` and ``timeseries`` are relative to it.
    rel : Path
        The matrix's ``relmat.tsv``.
    option : str
        The ``--connectivity`` choice (a key of :data:`CONNECTIVITY_KINDS`).
    values : numpy.ndarray
        The cleaned (n_volumes, n_regions) time series.
    names : list of str
        The regions' names (rows and columns of the table).
    node_files : list of str
        The atlas's node files (BIDS URIs), the sidecar's ``NodeFiles``.
    timeseries : Path
        The time series the matrix is computed from (the sidecar's ``Sources``).
    extra : dict, optional
        Fields added to the sidecar.

    Returns
    -------
    files : list of Path
        The table and its sidecar, relative to ``out``.
    matrix : numpy.ndarray
        The (n_regions, n_regions) matrix.
    """
    kind = CONNECTIVITY_KINDS[option]
    matrix, estimator = connectivity_with_fallback(values, kind, timeseries)
    # written at float32 precision (as the time series): %.9g text, ~3x faster than float64's
    frame = pd.DataFrame(
        matrix.astype(np.float32), index=pd.Index(names, name="node"), columns=names
    )
    sidecar = connectivity.relmat_sidecar(
        kind, estimator, node_files, [writer.bids_uri(out / timeseries, out)]
    )
    sidecar.update(extra or {})
    return write_table(out, rel, frame, sidecar, True), matrix


def connectivity_with_fallback(
    values: np.ndarray, kind: str, source: Path
) -> tuple[np.ndarray, str]:
    """Return the matrix and the estimator used (Ledoit-Wolf when the covariance is singular)."""
    try:
        return connectivity.connectivity_matrix(values, kind), "empirical"
    except ValueError as exc:
        if kind != "partial correlation":
            raise
        logger.debug("%s: %s Using Ledoit-Wolf shrinkage.", source.name, exc)
        return connectivity.connectivity_matrix(values, kind, "ledoit_wolf"), "ledoit_wolf"


def write_image(out: Path, rel: Path, img, sidecar: dict) -> list[Path]:
    """Write an image and its JSON sidecar under ``out``; return both paths, relative to it."""
    writer.write_nifti(out / rel, img)
    return [rel, _write_sidecar(out, rel, sidecar)]


def write_table(out: Path, rel: Path, frame, sidecar: dict, index: bool = False) -> list[Path]:
    """Write a TSV table and its JSON sidecar under ``out``; return both paths, relative to it."""
    writer.write_tsv(out / rel, frame, index=index)
    return [rel, _write_sidecar(out, rel, sidecar)]


def _write_sidecar(out: Path, rel: Path, sidecar: dict) -> Path:
    json_rel = sidecar_path(rel)
    writer.write_json(out / json_rel, sidecar)
    return json_rel
