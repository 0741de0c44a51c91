"""Validation of :func:`bidsmask.signal.clean` inputs (confounds, runs, sample masks)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

_STANDARDIZE = ("zscore_sample", "zscore", "psc")


class AllVolumesRemovedError(ValueError):
    """A sample mask that keeps no volume (nilearn's ``exceptions.AllVolumesRemovedError``).

    A :class:`ValueError`; its message starts with nilearn's "The size of the sample mask
    is 0." and goes on with the caller's detail.
    """

    def __init__(self, detail: str = "All volumes were marked as outliers; can not proceed."):
        super().__init__(f"The size of the sample mask is 0. {detail}")


_FILTERS = ("butterworth", "cosine")


def sanitize_standardize(standardize) -> str | None:
    """Map ``standardize`` to one of ``"zscore_sample"``, ``"zscore"``, ``"psc"`` or None.

    Parameters
    ----------
    standardize : str, bool or None
        The user's value; booleans are deprecated aliases (with a FutureWarning).

    Returns
    -------
    str or None
        The standardization to apply.
    """
    if isinstance(standardize, (bool, np.bool_)):
        warnings.warn(
            "boolean values for 'standardize' will be deprecated in nilearn 0.15.0: "
            "use 'zscore_sample' instead of True and None instead of False.",
            FutureWarning,
            stacklevel=3,
        )
        return "zscore_sample" if standardize else None
    if standardize is None:
        return None
    if standardize not in _STANDARDIZE:
        raise ValueError(
            f"'standardize' must be one of {(*_STANDARDIZE, True, False, None)}; "
            f"{standardize!r} was provided."
        )
    return standardize


def check_filter(filter, low_pass, high_pass, t_r) -> str | bool:
    """Validate the filter parameters; return ``"butterworth"``, ``"cosine"`` or False.

    Parameters
    ----------
    filter : {"butterworth", "cosine", False}
        Requested filter.
    low_pass, high_pass : float or None
        Cut-off frequencies in Hz.
    t_r : float or None
        Repetition time in seconds.

    Returns
    -------
    str or bool
        The filter to apply (False when none).
    """
    if filter is not False and filter not in _FILTERS:
        raise ValueError(
            f"Filter method {filter} not implemented: filter must be 'butterworth', 'cosine' "
            f"or False; {filter!r} was provided."
        )
    if filter is False:
        if low_pass is not None or high_pass is not None:
            warnings.warn(
                "filter=False but a cut-off frequency was given: will not perform filtering.",
                UserWarning,
                stacklevel=3,
            )
        return False
    if filter == "cosine":
        if t_r is None or high_pass is None:
            raise ValueError(
                "Repetition time (t_r) and low cutoff frequency (high_pass) must be specified "
                f"for cosine filtering (filter='cosine'); got t_r={t_r!r} and "
                f"high_pass={high_pass!r}."
            )
        _check_t_r(t_r)
        return "cosine"
    if low_pass is None and high_pass is None:
        return False
    if t_r is None:
        raise ValueError(
            "Repetition time (t_r, in seconds) must be specified for butterworth filtering "
            f"(low_pass={low_pass!r}, high_pass={high_pass!r}); got t_r=None."
        )
    _check_t_r(t_r)
    return "butterworth"  # cut-offs are checked (and lowered) when the filter is designed


def _check_t_r(t_r) -> None:
    if not isinstance(t_r, (int, float, np.integer, np.floating)) or not t_r > 0:
        raise ValueError(f"t_r must be a positive number of seconds; got t_r={t_r!r}.")


def sanitize_confounds(confounds, n_times: int) -> np.ndarray | None:
    """Stack confounds given as arrays, DataFrames, files or lists into float64.

    Parameters
    ----------
    confounds : array, DataFrame, str, Path, list/tuple of these, or None
        Confounds, one column per regressor.
    n_times : int
        Number of time points of the signals.

    Returns
    -------
    numpy.ndarray or None
        Array of shape (n_times, n_confounds).
    """
    if confounds is None:
        return None
    nested = isinstance(confounds, (list, tuple))
    items = list(confounds) if nested else [confounds]
    arrays, names = [], []
    for item in items:
        values, item_names, source = _read_confound(item, nested)
        if values.shape[0] != n_times:
            raise ValueError(
                f"Confound signal has an incorrect length. {source} has {values.shape[0]} "
                f"rows but signals have {n_times} time points; give one confound row per "
                "time point."
            )
        arrays.append(values)
        names.extend(item_names)
    if not arrays:
        return None
    stacked = np.hstack(arrays)
    bad = np.isnan(stacked).any(axis=0)
    if bad.any():
        col = int(np.flatnonzero(bad)[0])
        label = names[col] if names[col] is not None else f"index {col}"
        raise ValueError(
            f"confounds column {label} contains NaN "
            f"(row {int(np.flatnonzero(np.isnan(stacked[:, col]))[0])}); "
            "fill or drop it first (fMRIPrep derivatives are NaN on the first row)."
        )
    return stacked


def _read_confound(item, in_list: bool) -> tuple[np.ndarray, list, str]:
    if isinstance(item, pd.DataFrame):
        values = _to_float(item.to_numpy(), "confounds DataFrame")
        return values, [repr(str(c)) for c in item.columns], "confounds DataFrame"
    if isinstance(item, (str, Path)):
        return _read_confounds_file(Path(item))
    if isinstance(item, np.ndarray):
        if item.ndim == 1:
            item = item[:, None]
        if item.ndim != 2:
            raise ValueError(
                "confound array has an incorrect number of dimensions: it must be 1D or 2D "
                f"(n_times, n_confounds); got shape {item.shape}."
            )
        return _to_float(item, "confounds array"), [None] * item.shape[1], "confounds array"
    what = "a confound has an unhandled type" if in_list else "'confounds' must be of type"
    raise TypeError(
        f"{what}: an array, a DataFrame, a CSV/TSV path or a list of these; "
        f"got {type(item).__name__}."
    )


def _to_float(values: np.ndarray, source: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{source} holds non-numeric values: {err}") from err


def _read_confounds_file(path: Path) -> tuple[np.ndarray, list, str]:
    """Read a delimited confounds file with an optional header (nilearn's rule).

    The delimiter is a tab, comma or semicolon if the first line has one,
    whitespace otherwise; the first line is a header when its first field is
    not a number (or is NaN).
    """
    if not path.is_file():
        raise FileNotFoundError(f"Confounds file not found: {path}")
    with path.open() as f:
        first = f.readline()
    sep = next((s for s in ("\t", ",", ";") if s in first), r"\s+")
    fields = first.strip().split() if sep == r"\s+" else first.rstrip("\r\n").split(sep)
    try:
        header = bool(np.isnan(float(fields[0])))
    except (ValueError, IndexError):
        header = True
    table = pd.read_csv(path, sep=sep, header=0 if header else None, engine="python")
    values = _to_float(table.to_numpy(), f"Confounds file {path}")
    if values.ndim == 1:
        values = values[:, None]
    names = [repr(str(c)) for c in table.columns] if header else [None] * values.shape[1]
    return values, names, f"Confounds file {path}"


def sanitize_runs_and_masks(
    runs: np.ndarray | None, sample_mask, n_times: int
) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Split time points into runs and check each run's sample mask.

    Parameters
    ----------
    runs : numpy.ndarray or None
        Run label per time point.
    sample_mask : array, list of arrays or None
        Kept volumes (indices or booleans), one per run when ``runs`` is given.
    n_times : int
        Number of time points.

    Returns
    -------
    list of (rows, keep)
        For each run in sorted label order, its row indices in the signals and
        its increasing kept indices within the run (None to keep all).
    """
    if runs is None:
        row_sets = [np.arange(n_times)]
    else:
        runs = np.asarray(runs)
        if runs.ndim != 1 or len(runs) != n_times:
            raise ValueError(
                f"runs must be 1D with one label per time point: got shape {runs.shape} "
                f"for {n_times} time points."
            )
        row_sets = [np.flatnonzero(runs == label) for label in np.unique(runs)]
    if sample_mask is None:
        return [(rows, None) for rows in row_sets]
    masks = _split_masks(sample_mask, len(row_sets))
    return [
        (rows, _check_mask(mask, len(rows), i, len(row_sets)))
        for i, (rows, mask) in enumerate(zip(row_sets, masks, strict=True))
    ]


def _split_masks(sample_mask, n_runs: int) -> list:
    if not isinstance(sample_mask, (np.ndarray, list, tuple)):
        raise TypeError(
            "'sample_mask' must be of type array (kept indices or booleans) or a list with "
            f"one per run; got {type(sample_mask).__name__}."
        )
    nested = isinstance(sample_mask, (list, tuple)) and any(
        isinstance(m, (np.ndarray, list, tuple)) for m in sample_mask
    )
    masks = list(sample_mask) if nested else [sample_mask]
    if len(masks) != n_runs:
        raise ValueError(
            f"Number of sample_mask ({len(masks)}) not matching number of runs ({n_runs}): "
            "give one mask per run."
        )
    return masks


def _check_mask(mask, n_rows: int, i: int, n_runs: int) -> np.ndarray:
    where = f"sample_mask {i + 1} of {n_runs}" if n_runs > 1 else "sample_mask"
    mask = np.asarray(mask)
    if mask.ndim != 1:
        raise ValueError(f"{where} must be 1D; got shape {mask.shape}.")
    if mask.dtype == bool:
        if len(mask) != n_rows:
            raise ValueError(
                f"{where} is a boolean mask of length {len(mask)} but the run has "
                f"{n_rows} time points."
            )
        mask = np.flatnonzero(mask)
    elif mask.size and mask.dtype.kind not in "iu":
        raise TypeError(f"{where} must hold integer indices or booleans; got dtype {mask.dtype}.")
    mask = mask.astype(np.intp)
    if mask.size == 0:
        raise AllVolumesRemovedError(f"{where} removes every volume; keep at least one.")
    if len(mask) > n_rows:
        raise IndexError(
            f"{where} has more timepoints than the current run: {len(mask)} indices for a "
            f"run of {n_rows} time points."
        )
    if mask.min() < 0 or mask.max() >= n_rows:
        bad = mask[(mask < 0) | (mask >= n_rows)]
        raise IndexError(
            f"{where} contains invalid index {bad.tolist()}: outside the run's "
            f"{n_rows} time points (valid: 0 to {n_rows - 1})."
        )
    if np.any(np.diff(mask) <= 0):
        raise ValueError(f"{where} indices must be strictly increasing (sorted, no repeats).")
    return mask
