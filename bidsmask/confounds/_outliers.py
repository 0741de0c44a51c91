"""Outlier volumes of fMRIPrep confounds: scrubbing segments and one-hot outlier columns.

``nilearn.interfaces.fmriprep.load_confounds_scrub`` 0.14's public helpers, with its names,
parameters and results: :func:`optimize_scrub` (censor the kept segments that are too short)
and :func:`extract_outlier_regressors` (turn ``motion_outlier*`` / ``non_steady_state*``
one-hot columns into a sample mask).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

_OUTLIER_WORDS = ("motion_outlier", "non_steady_state")


def split_outlier_columns(columns: Iterable[str]) -> tuple[list[str], list[str]]:
    """Split column names into outlier one-hot columns and the others, each sorted.

    Parameters
    ----------
    columns : iterable of str
        Confounds column names.

    Returns
    -------
    outlier_cols, other_cols : list of str
        Names containing ``motion_outlier`` or ``non_steady_state``, and the rest.

    Examples
    --------
    >>> split_outlier_columns(["rot_x", "motion_outlier_0", "csf"])
    (['motion_outlier_0'], ['csf', 'rot_x'])
    """
    columns = set(columns)
    outliers = {c for c in columns if any(word in c for word in _OUTLIER_WORDS)}
    return sorted(outliers), sorted(columns - outliers)


def warn_no_volume_left(stacklevel: int) -> None:
    """Warn (RuntimeWarning, nilearn's message) that every volume is censored."""
    warnings.warn(
        "All volumes were marked as motion outliers. This would lead to all volumes in the "
        "time series to be scrubbed.",
        RuntimeWarning,
        stacklevel=stacklevel + 1,
    )


def optimize_scrub(
    motion_outliers_index: Sequence[int] | np.ndarray, n_scans: int, scrub: int
) -> np.ndarray:
    """Add to the outliers the kept segments shorter than ``scrub`` volumes (Power 2014).

    Same name, parameters and result as ``nilearn``'s ``load_confounds_scrub.optimize_scrub``:
    every segment of kept volumes shorter than ``scrub`` (before the first outlier, between
    two outliers, after the last one) is censored too.

    Parameters
    ----------
    motion_outliers_index : sequence of int, non-empty
        Increasing indices of the outlier volumes.
    n_scans : int
        Number of volumes of the run.
    scrub : int
        Minimal segment length.

    Returns
    -------
    numpy.ndarray
        Sorted indices of the censored volumes (the outliers included).

    Examples
    --------
    >>> optimize_scrub([3, 11, 13, 80, 97], 100, 5)
    array([ 0,  1,  2,  3, 11, 12, 13, 80, 97, 98, 99])
    """
    outliers = np.asarray(motion_outliers_index, dtype=int)
    censored = np.zeros(n_scans, dtype=bool)
    censored[outliers] = True
    first, last = outliers[0], outliers[-1]
    if first < scrub:
        censored[:first] = True
    if n_scans - (last + 1) < scrub:
        censored[last:] = True
    gaps = np.diff(outliers)
    for i in np.flatnonzero((gaps > 1) & (gaps <= scrub)):
        censored[outliers[i] + 1 : outliers[i + 1]] = True
    return np.flatnonzero(censored)


def extract_outlier_regressors(
    confounds: pd.DataFrame,
) -> tuple[np.ndarray | None, pd.DataFrame, pd.DataFrame]:
    """Separate outlier one-hot columns from the confounds and make the sample mask.

    Same name, parameters and results as ``nilearn``'s
    ``load_confounds_scrub.extract_outlier_regressors``: columns whose name contains
    ``motion_outlier`` or ``non_steady_state`` are outliers; both groups are sorted by
    name; an outlier column equal to an earlier one (the same volume flagged twice) is
    dropped.

    Parameters
    ----------
    confounds : pandas.DataFrame
        Confounds with their outlier one-hot columns.

    Returns
    -------
    sample_mask : numpy.ndarray or None
        Indices of the volumes no outlier column flags; None without outlier columns.
    confounds : pandas.DataFrame
        The other columns.
    outliers : pandas.DataFrame
        The outlier columns (an empty DataFrame without them).

    Warns
    -----
    RuntimeWarning
        When every volume is flagged.

    Examples
    --------
    >>> table = pd.DataFrame({"csf": [1.0, 2.0, 3.0], "motion_outlier_0": [0, 1, 0]})
    >>> mask, conf, out = extract_outlier_regressors(table)
    >>> mask, list(conf.columns), list(out.columns)
    (array([0, 2]), ['csf'], ['motion_outlier_0'])
    """
    outlier_cols, other_cols = split_outlier_columns(confounds.columns)
    sample_mask = None
    outliers = pd.DataFrame()
    if outlier_cols:
        outliers = confounds.loc[:, outlier_cols]
        outliers = outliers.loc[:, ~outliers.T.duplicated().to_numpy()]
        sample_mask = np.flatnonzero(outliers.to_numpy().sum(axis=1) == 0)
        if sample_mask.size == 0:
            warn_no_volume_left(stacklevel=2)
    return sample_mask, confounds.loc[:, other_cols], outliers
