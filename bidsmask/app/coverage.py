"""Which regions of a run are n/a, and why: the mask, missing data, or a constant signal.

A region's coverage is the fraction of its atlas voxels (on the BOLD grid) that are inside the
run's mask *and* have data: a time series finite at every volume of the run and not constant
zero (:func:`bidsmask.regions.extract_regions`, which also leaves the voxels without data out of
the region signals). A region below ``--min-coverage`` (or with no voxel at all) is n/a in the
time series and in every matrix; the run's log says, at WARNING, how many regions of each atlas
were set to n/a, and whether the mask alone or missing data took them below the threshold. A
region whose cleaned signal is constant over the kept volumes is n/a too: no output column is
ever a flat line.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from bidsmask.atlases import Atlas

logger = logging.getLogger(__name__)

MASK = "mask"
MISSING_DATA = "missing data"
CONSTANT = "constant signal"


def atlas_order(n_regions: int, positions: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Put per-spec-column values into the atlas's region order (0 for regions not extracted).

    Parameters
    ----------
    n_regions : int
        Regions in the atlas's table.
    positions : numpy.ndarray
        Atlas region index of each spec column (-1: not in the table).
    values : numpy.ndarray
        One value per spec column.

    Returns
    -------
    numpy.ndarray
        float64 (n_regions,).
    """
    out = np.zeros(n_regions)
    known = positions >= 0
    out[positions[known]] = np.asarray(values, dtype=np.float64)[known]
    return out


def unavailable_regions(
    stem: str,
    atlas: Atlas,
    positions: np.ndarray,
    spec,
    data_coverage: np.ndarray,
    config,
) -> dict[str, str]:
    """Regions set to n/a and why; one WARNING for the atlas when there are any.

    Parameters
    ----------
    stem : str
        The run, for the log.
    atlas : Atlas
        The atlas (its region names, in table order).
    positions : numpy.ndarray
        Atlas region index of each spec column (-1: not in the table).
    spec : LabelsSpec, MapsSpec or SpheresSpec
        The atlas's spec on the run's grid, with the mask (its ``coverage``: by the mask alone).
    data_coverage : numpy.ndarray
        Each spec column's coverage by voxels of the mask with data.
    config : Config
        The run's configuration (``min_coverage``).

    Returns
    -------
    dict
        Region name -> ``"mask"`` (the mask alone leaves it below ``min_coverage``) or
        ``"missing data"`` (its voxels without data do), in table order.
    """
    min_coverage = config.min_coverage
    n_regions = len(atlas.region_names)
    mask_coverage = atlas_order(n_regions, positions, spec.coverage)
    data_coverage = atlas_order(n_regions, positions, data_coverage)
    reasons = {}
    for name, by_mask, by_data in zip(
        atlas.region_names,
        _below(mask_coverage, min_coverage),
        _below(data_coverage, min_coverage),
        strict=True,
    ):
        if by_mask:
            reasons[name] = MASK
        elif by_data:
            reasons[name] = MISSING_DATA
    if reasons:
        n_data = sum(reason == MISSING_DATA for reason in reasons.values())
        logger.warning(
            "%s: %d of %d regions of atlas %s set to n/a (coverage below --min-coverage %g): "
            "%d by the mask, %d by missing data (voxels non-finite at some volume or constant "
            "zero)",
            stem,
            len(reasons),
            len(atlas.region_names),
            atlas.spec.text,
            min_coverage,
            len(reasons) - n_data,
            n_data,
        )
    return reasons


def _below(coverage: np.ndarray, min_coverage: float) -> np.ndarray:
    return (coverage < min_coverage) | (coverage == 0)


def constant_columns(table: np.ndarray) -> np.ndarray:
    """Boolean (n_columns,): finite columns whose values are all equal (over at least a row)."""
    out = np.zeros(table.shape[1], dtype=bool)
    columns = np.flatnonzero(np.isfinite(table).all(axis=0))
    if table.shape[0] and columns.size:
        values = table[:, columns]
        out[columns] = values.max(axis=0) == values.min(axis=0)
    return out


def blank_constant(
    where: str, atlas: Atlas, positions: np.ndarray, raw: np.ndarray, cleaned: np.ndarray
) -> dict[str, str]:
    """Set to NaN the cleaned columns whose raw signal is constant; log them at WARNING.

    Parameters
    ----------
    where : str
        The run and strategy, for the log.
    atlas : Atlas
        The atlas.
    positions : numpy.ndarray
        Atlas region index of each column (-1: not in the table).
    raw : numpy.ndarray
        The extracted signals over the kept volumes, (n_kept, n_columns).
    cleaned : numpy.ndarray
        Their cleaned values, changed in place.

    Returns
    -------
    dict
        Region name -> ``"constant signal"``.
    """
    constant = constant_columns(raw)
    if not constant.any():
        return {}
    cleaned[:, constant] = np.nan
    names = [atlas.region_names[p] for p in positions[constant] if p >= 0]
    logger.warning(
        "%s: %d region(s) of atlas %s set to n/a: constant signal over the kept volumes",
        where,
        len(names),
        atlas.spec.text,
    )
    return dict.fromkeys(names, CONSTANT)


def region_table(
    atlas: Atlas,
    spec,
    positions: np.ndarray,
    cleaned: np.ndarray,
    min_coverage: float,
    coverage: np.ndarray | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Put a spec's cleaned signals into the atlas's region order, n/a below ``min_coverage``.

    Parameters
    ----------
    atlas : Atlas
        The atlas (region ids and names, in table order).
    spec : LabelsSpec, MapsSpec or SpheresSpec
        The spec the signals come from.
    positions : numpy.ndarray
        Atlas region index of each spec column (-1: not in the atlas's table).
    cleaned : numpy.ndarray
        (n_kept, n_columns) cleaned signals.
    min_coverage : float
        Regions below it (or at 0) are n/a.
    coverage : numpy.ndarray or None
        Each spec column's coverage; default ``spec.coverage`` (by the mask alone).

    Returns
    -------
    table : pandas.DataFrame
        (n_kept, n_regions) float32 table with region names as columns.
    coverage : numpy.ndarray
        The coverage of every atlas region (0 for regions absent on the BOLD grid or outside
        the mask).
    """
    n_regions = len(atlas.region_ids)
    full = np.full((cleaned.shape[0], n_regions), np.nan, dtype=np.float32)
    known = positions >= 0
    full[:, positions[known]] = cleaned[:, known]
    coverage = atlas_order(n_regions, positions, spec.coverage if coverage is None else coverage)
    full[:, _below(coverage, min_coverage)] = np.nan
    return pd.DataFrame(full, columns=list(atlas.region_names)), coverage
