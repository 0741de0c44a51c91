"""Noise components of fMRIPrep confounds, as ``nilearn.interfaces.fmriprep`` 0.14.

Each ``select_<component>`` takes the raw confounds table and returns the column
names (or a new table) for that component, or raises :class:`MissingConfoundError`
listing what the file lacks. :func:`prepare_output` turns outlier columns into a
sample mask, fills the first-row NaN of derivatives and demeans.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd

from bidsmask.confounds._outliers import optimize_scrub, split_outlier_columns, warn_no_volume_left

MOTION = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
_SUFFIXES = {
    "basic": [],
    "derivatives": ["derivative1"],
    "power2": ["power2"],
    "full": ["derivative1", "power2", "derivative1_power2"],
}
CONFOUND_MODELS = tuple(_SUFFIXES)
COMPCOR_TYPES = (
    "anat_combined",
    "anat_separated",
    "temporal",
    "temporal_anat_combined",
    "temporal_anat_separated",
)
_COMPCOR_PREFIXES = {
    "temporal_anat_combined": ["t", "a"],
    "temporal_anat_separated": ["t", "a", "w", "c"],
    "temporal": ["t"],
    "anat_combined": ["a"],
    "anat_separated": ["a", "w", "c"],
}


class MissingConfoundError(Exception):
    """Columns or whole components absent from the confounds file."""

    def __init__(self, params: list[str] | None = None, keywords: list[str] | None = None):
        self.params = params or []
        self.keywords = keywords or []
        super().__init__(f"missing columns {self.params}, components {self.keywords}")


def expand(names: list[str], model: str) -> list[str]:
    """Add fMRIPrep's derivative / power2 columns of ``names`` for a confound model.

    Parameters
    ----------
    names : list of str
        Base columns, e.g. ``["csf", "white_matter"]``.
    model : {"basic", "derivatives", "power2", "full"}
        Expansion.

    Returns
    -------
    list of str
        Base names first, then each name's expansions.

    Examples
    --------
    >>> expand(["csf"], "full")
    ['csf', 'csf_derivative1', 'csf_power2', 'csf_derivative1_power2']
    """
    return list(names) + [f"{n}_{s}" for n in names for s in _SUFFIXES[model]]


def _present(raw: pd.DataFrame, params: list[str]) -> bool | list[str]:
    """Return True if all are present, False if none, else the missing ones (nilearn)."""
    missing = [p for p in params if p not in raw.columns]
    if len(missing) == len(params):
        return False
    return missing or True


def find_columns(raw: pd.DataFrame, keyword: str) -> list[str]:
    """Columns whose name contains ``keyword``, in file order."""
    return [c for c in raw.columns if keyword in c]


def select_motion(raw: pd.DataFrame, motion: str) -> pd.DataFrame:
    """Head-motion parameters and their expansions."""
    params = expand(MOTION, motion)
    found = _present(raw, params)
    if isinstance(found, list):
        raise MissingConfoundError(params=found)
    if not found:
        raise MissingConfoundError(keywords=["motion"])
    return raw[params]


def select_high_pass(raw: pd.DataFrame) -> pd.DataFrame:
    """Select fMRIPrep's discrete cosine regressors (empty if there are none)."""
    cols = find_columns(raw, "cosine")
    return raw[cols] if cols else pd.DataFrame()


def select_wm_csf(raw: pd.DataFrame, wm_csf: str) -> pd.DataFrame:
    """Mean white-matter and CSF signals and their expansions."""
    params = expand(["csf", "white_matter"], wm_csf)
    if not _present(raw, params):
        raise MissingConfoundError(keywords=["wm_csf"])
    return raw[params]


def select_global_signal(raw: pd.DataFrame, global_signal: str) -> pd.DataFrame:
    """Global signal and its expansions."""
    params = expand(["global_signal"], global_signal)
    if not _present(raw, params):
        raise MissingConfoundError(keywords=["global_signal"])
    return raw[params]


def compcor_columns(meta: dict, compcor: str, n_compcor: int | str) -> list[str]:
    """CompCor columns chosen from the confounds JSON.

    For each prefix of the CompCor type (``t``, ``a``, ``w``, ``c``), the
    components listed in the JSON are numbered ``<p>_comp_cor_00``...; anatomical
    ones are split by their JSON ``Mask`` (``combined``, or ``WM`` and ``CSF``)
    and the first ``n_compcor`` of each group are kept (all of them with
    ``"all"``: fMRIPrep lists the components reaching 50 % of variance).

    Parameters
    ----------
    meta : dict
        The confounds JSON sidecar.
    compcor : str
        One of :data:`COMPCOR_TYPES`.
    n_compcor : int or "all"
        Components kept per group.

    Returns
    -------
    list of str
        Column names.
    """
    kind = compcor.split("_")
    masks = {"combined": ["combined"], "separated": ["WM", "CSF"]}.get(
        kind[-1] if len(kind) > 1 else None
    )
    columns = []
    for prefix in _COMPCOR_PREFIXES[compcor]:
        n_listed = sum(f"{prefix}_comp_cor" in key for key in meta)
        names = [f"{prefix}_comp_cor_{i:02d}" for i in range(n_listed)]
        if prefix == "a":
            for mask in masks:
                columns += _first([n for n in names if _mask_of(meta, n) in [mask]], n_compcor)
        else:
            columns += _first(names, n_compcor)
    return columns


def _mask_of(meta: dict, name: str) -> str:
    try:
        return meta[name]["Mask"]
    except (KeyError, TypeError) as err:
        raise ValueError(
            f"The confounds JSON has no 'Mask' entry for {name}; cannot tell whether it "
            "is a WM, CSF or combined aCompCor component."
        ) from err


def _first(names: list[str], n: int | str) -> list[str]:
    if n != "all" and n < len(names):
        return names[:n]
    return names


def select_compcor(raw: pd.DataFrame, meta: dict, compcor: str, n_compcor) -> pd.DataFrame:
    """CompCor components (see :func:`compcor_columns`)."""
    cols = compcor_columns(meta, compcor, n_compcor)
    if not _present(raw, cols):
        raise MissingConfoundError(keywords=["compcor"])
    return raw[cols]


def select_ica_aroma(raw: pd.DataFrame, ica_aroma: str) -> pd.DataFrame:
    """ICA-AROMA noise components ("basic"); nothing for "full" (already denoised BOLD)."""
    if ica_aroma == "full":
        return pd.DataFrame()
    cols = find_columns(raw, "aroma")
    if not cols:
        raise MissingConfoundError(keywords=["ica_aroma"])
    return raw[cols]


def _ica_name(name: str) -> str:
    return re.sub(r"ICA_0*(\d+)$", lambda m: f"ICA_{int(m.group(1))}", name)


def select_tedana(tables: dict[str, pd.DataFrame], tedana: str) -> pd.DataFrame:
    """Rejected (aggressive) or rejected and accepted tedana ICA components."""
    classes = ["rejected"] if tedana == "aggressive" else ["accepted", "rejected"]
    metrics, mixing = tables["metrics"], tables["mixing"]
    original = {_ica_name(c): c for c in mixing.columns}
    mixing = mixing.set_axis(list(original), axis=1)
    chosen = metrics[metrics["classification"].isin(classes)]
    label = {
        _ica_name(c): k for c, k in zip(chosen["Component"], chosen["classification"], strict=True)
    }
    keep = sorted(c for c in label if c in mixing.columns)
    return mixing[keep].rename(columns={c: f"{label[c]}_{original[c]}" for c in keep})


def select_scrub(
    raw: pd.DataFrame, scrub: int, fd_threshold: float, std_dvars_threshold: float
) -> pd.DataFrame:
    """One-hot ``motion_outlier_<k>`` columns for high-motion volumes (Power 2014).

    Volumes with framewise displacement above ``fd_threshold`` or standardized
    DVARS above ``std_dvars_threshold`` are flagged; with ``scrub > 0`` the
    segments of fewer than ``scrub`` kept volumes between them (and at both ends)
    are flagged too.
    """
    for col in ("framewise_displacement", "std_dvars"):
        if col not in raw.columns:
            raise MissingConfoundError(params=[col])
    n_scans = len(raw)
    fd = np.flatnonzero(raw["framewise_displacement"].to_numpy() > fd_threshold)
    dvars = np.flatnonzero(raw["std_dvars"].to_numpy() > std_dvars_threshold)
    outliers = np.unique(np.concatenate((fd, dvars)))
    if scrub > 0 and len(outliers) > 0:
        outliers = optimize_scrub(outliers, n_scans, scrub)
    one_hot = np.eye(n_scans, dtype=int)[:, outliers]
    return pd.DataFrame(one_hot, columns=[f"motion_outlier_{i}" for i in range(len(outliers))])


def select_non_steady_state(raw) -> pd.DataFrame:
    """Select fMRIPrep's ``non_steady_state_outlier*`` one-hot columns (empty if none)."""
    if isinstance(raw, dict):
        return pd.DataFrame()
    cols = find_columns(raw, "non_steady_state")
    return raw[cols] if cols else pd.DataFrame()


def _flagged(confounds: pd.DataFrame, word: str) -> np.ndarray:
    """Volumes flagged by any one-hot column whose name contains ``word``."""
    cols = [c for c in confounds.columns if word in c]
    if not cols:
        return np.zeros(len(confounds), dtype=bool)
    return confounds[cols].to_numpy().sum(axis=1) != 0


def censoring_counts(
    confounds: pd.DataFrame, extra_censored: np.ndarray | None = None
) -> dict[str, int]:
    """Censored volumes by reason, each volume counted once, in this order of precedence.

    ``non_steady_state``: flagged by fMRIPrep's ``non_steady_state_outlier_XX`` columns;
    ``dummy_scans``: among the first volumes censored as dummy scans (``extra_censored``), those
    not already non-steady-state; ``scrubbed``: the other volumes flagged by a
    ``motion_outlier`` column (FD/DVARS scrubbing). Their sum is the number of volumes that
    :func:`prepare_output` censors.

    Parameters
    ----------
    confounds : pandas.DataFrame
        Selected columns, outlier one-hot columns included (as given to :func:`prepare_output`).
    extra_censored : numpy.ndarray or None
        The dummy scans' indices.

    Returns
    -------
    dict
        ``{"non_steady_state": int, "dummy_scans": int, "scrubbed": int}``.
    """
    non_steady = _flagged(confounds, "non_steady_state")
    dummy = np.zeros(len(confounds), dtype=bool)
    if extra_censored is not None:
        dummy[np.asarray(extra_censored, dtype=int)] = True
    dummy &= ~non_steady
    scrubbed = _flagged(confounds, "motion_outlier") & ~non_steady & ~dummy
    return {
        "non_steady_state": int(non_steady.sum()),
        "dummy_scans": int(dummy.sum()),
        "scrubbed": int(scrubbed.sum()),
    }


def prepare_output(
    confounds: pd.DataFrame, demean: bool, extra_censored: np.ndarray | None = None
) -> tuple[np.ndarray | None, pd.DataFrame]:
    """Turn outlier columns into a sample mask; fill first-row NaN; demean.

    Parameters
    ----------
    confounds : pandas.DataFrame
        Selected columns, outlier one-hot columns included.
    demean : bool
        Subtract each column's mean over the kept volumes.
    extra_censored : numpy.ndarray or None
        Further volumes to censor (e.g. dummy scans).

    Returns
    -------
    sample_mask : numpy.ndarray or None
        Kept volume indices, None when nothing is censored.
    confounds : pandas.DataFrame
        The regressors, columns sorted by name.
    """
    outlier_cols, other_cols = split_outlier_columns(confounds.columns)
    n_rows = len(confounds)
    censored = np.zeros(n_rows, dtype=bool)
    has_mask = bool(outlier_cols)
    if outlier_cols:
        censored |= confounds[outlier_cols].to_numpy().sum(axis=1) != 0
    if extra_censored is not None and len(extra_censored):
        censored[extra_censored] = True
        has_mask = True
    sample_mask = np.flatnonzero(~censored) if has_mask else None
    if sample_mask is not None and sample_mask.size == 0:
        warn_no_volume_left(stacklevel=3)
    confounds = confounds.loc[:, other_cols]
    if confounds.size == 0:
        return sample_mask, confounds
    confounds = confounds.copy()
    first_nan = confounds.iloc[0].isna().to_numpy()
    if first_nan.any() and n_rows > 1:
        confounds.iloc[0, first_nan] = confounds.iloc[1, first_nan]
    if demean:
        rows = slice(None) if sample_mask is None else sample_mask
        values = confounds.to_numpy(dtype=np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # no kept volume: NaN means
            values = values - np.nanmean(values[rows], axis=0)
        confounds = pd.DataFrame(values, columns=other_cols)
    return sample_mask, confounds
