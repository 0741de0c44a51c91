"""fMRIPrep confounds: nilearn's loaders, named denoising sets, and the app's entry point.

- :func:`load_confounds` and :func:`load_confounds_strategy` have the names,
  parameters, defaults and results of ``nilearn.interfaces.fmriprep`` 0.14:
  ``(confounds DataFrame, sample_mask)`` read from the
  ``*_desc-confounds_timeseries.tsv`` (or pre-20.2 ``*_desc-confounds_regressors.tsv``)
  and its JSON sidecar next to an fMRIPrep BOLD file.
- :func:`load_strategy` is the single entry point of the app: a nilearn preset,
  an XCP-D-style named set (24P, 27P, 36P, acompcor, acompcor_gsr, gsr_only),
  any of them with ``+gsr``, or a JSON strategy file (format below), with
  censoring overrides; it also returns a JSON-serialisable record of the
  parameters used.
- :func:`list_strategies` lists the accepted names.
- nilearn's helpers with their names and results: :func:`sanitize_confounds`,
  :func:`load_confounds_json`, :func:`load_confounds_file_as_dataframe`
  (``load_confounds_utils``), :func:`optimize_scrub`, :func:`extract_outlier_regressors`
  (``load_confounds_scrub``).

JSON strategy file format (a single object; every key optional; the ``#``
comments are for this documentation only)::

    {
      "name": "36P_scrub",                 # default: the file name without .json
      "description": "free text for reports",
      "strategy": ["motion", "wm_csf", "global_signal", "high_pass", "scrub"],
      "motion": "full",                    # basic | derivatives | power2 | full
      "wm_csf": "full",                    # idem
      "global_signal": "full",             # idem
      "compcor": "anat_separated",         # anat_combined | anat_separated | temporal
                                           # | temporal_anat_combined | temporal_anat_separated
      "n_compcor": 5,                      # int or "all" (fMRIPrep's 50 % of variance)
      "ica_aroma": "basic",                # full | basic
      "tedana": "aggressive",              # aggressive | non-aggressive
      "scrub": 5,                          # minimum kept segment length (volumes)
      "fd_threshold": 0.5,                 # mm; null disables the FD criterion
      "std_dvars_threshold": 1.5,          # null disables the DVARS criterion
      "columns": ["rmsd"],                 # extra columns, each must exist
      "column_patterns": ["^a_comp_cor_0[0-2]$"],  # regexes (re.search), may match none
      "n_dummy_scans": 0,                  # first volumes censored via the sample mask
      "demean": true
    }

``strategy`` lists nilearn's components (motion, high_pass, wm_csf,
global_signal, compcor, ica_aroma, tedana, scrub, non_steady_state); each
option only matters when its component is listed, and defaults to
``load_confounds``'s default. Non-steady-state volumes are always censored.
Thresholds and ``scrub`` only apply when ``"scrub"`` is listed.

Named sets (after XCP-D's ``xcp_d/data/nuisance/*.yml``):

- ``24P``: 6 motion parameters, their derivatives, and squares of both.
- ``27P``: 24P + mean white matter, CSF and global signals.
- ``36P``: 24P + white matter, CSF and global signals with derivatives and squares.
- ``acompcor``: 6 motion parameters + derivatives, the first 5 aCompCor
  components of the WM and of the CSF masks, and the cosine regressors.
- ``acompcor_gsr``: acompcor + mean white matter, CSF and global signals.
- ``gsr_only``: the global signal.

Any strategy name takes a ``+gsr`` suffix, adding the global signal.
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from bidsmask.confounds import _components as comps
from bidsmask.confounds import _files as files
from bidsmask.confounds._files import (
    ConfoundsFileNotFoundError,
    load_confounds_file_as_dataframe,
    load_confounds_json,
    sanitize_confounds,
)
from bidsmask.confounds._outliers import extract_outlier_regressors, optimize_scrub
from bidsmask.confounds._sets import (
    COMPONENT_OPTIONS,
    DEFAULTS,
    PRESETS,
    StrategySpec,
    check_options,
    resolve,
)
from bidsmask.confounds._sets import list_strategies as _list_strategies

logger = logging.getLogger(__name__)

__all__ = [
    "ConfoundsFileNotFoundError",
    "extract_outlier_regressors",
    "list_strategies",
    "load_confounds",
    "load_confounds_file_as_dataframe",
    "load_confounds_json",
    "load_confounds_strategy",
    "load_strategy",
    "optimize_scrub",
    "preset_strategies",
    "sanitize_confounds",
]

#: nilearn's name (``load_confounds_strategy.preset_strategies``) for :data:`PRESETS`.
preset_strategies = PRESETS

ImgFiles = str | Path | list


def load_confounds(
    img_files: ImgFiles,
    strategy: tuple[str, ...] | list[str] = ("motion", "high_pass", "wm_csf"),
    motion: str = "full",
    scrub: int = 5,
    fd_threshold: float = 0.5,
    std_dvars_threshold: float = 1.5,
    wm_csf: str = "basic",
    global_signal: str = "basic",
    compcor: str = "anat_combined",
    n_compcor: int | str = "all",
    ica_aroma: str = "full",
    tedana: str = "aggressive",
    demean: bool = True,
):
    """Load fMRIPrep confounds grouped into noise components (nilearn 0.14 semantics).

    Parameters
    ----------
    img_files : str, Path, list of them, or list of GIFTI pairs
        fMRIPrep BOLD file(s) (``*_desc-preproc_bold.nii.gz``,
        ``*_bold.dtseries.nii``, or ``[L, R]`` ``*_bold.func.gii`` pairs); the
        confounds TSV and JSON are read from the same folder.
    strategy : tuple or list of str, default=("motion", "high_pass", "wm_csf")
        Components: ``motion``, ``high_pass`` (fMRIPrep's cosine regressors),
        ``wm_csf``, ``global_signal``, ``compcor`` (needs ``high_pass``),
        ``ica_aroma``, ``tedana``, ``scrub``; ``non_steady_state`` volumes are
        always censored.
    motion : {"basic", "power2", "derivatives", "full"}, default="full"
        6, 12, 12 or 24 motion regressors.
    scrub : int, default=5
        With ``scrub``, also censor kept segments shorter than this many volumes.
    fd_threshold : float, default=0.5
        Framewise displacement threshold (mm) for ``scrub``.
    std_dvars_threshold : float, default=1.5
        Standardized DVARS threshold for ``scrub``.
    wm_csf, global_signal : {"basic", "power2", "derivatives", "full"}
        Expansions of the mean white matter / CSF signals and of the global signal.
    compcor : str, default="anat_combined"
        ``anat_combined``, ``anat_separated``, ``temporal``,
        ``temporal_anat_combined`` or ``temporal_anat_separated``; the JSON
        sidecar tells which aCompCor columns come from which mask.
    n_compcor : int or "all", default="all"
        Components per mask (``"all"``: those fMRIPrep kept, 50 % of variance).
    ica_aroma : {"full", "basic"}, default="full"
        ``full``: the BOLD file is fMRIPrep's non-aggressively denoised one and no
        regressor is added; ``basic``: the AROMA noise components.
    tedana : {"aggressive", "non-aggressive"}, default="aggressive"
        tedana ICA components: rejected ones, or rejected and accepted ones.
    demean : bool, default=True
        Demean the confounds over the kept volumes.

    Returns
    -------
    confounds : pandas.DataFrame, list of them, or None
        Regressors, columns sorted by name (None for an empty strategy).
    sample_mask : numpy.ndarray, None, or a list of them
        Indices of the kept volumes (non-steady-state and scrubbed volumes
        removed), None when all are kept.
    """
    options = {
        "motion": motion,
        "scrub": scrub,
        "fd_threshold": fd_threshold,
        "std_dvars_threshold": std_dvars_threshold,
        "wm_csf": wm_csf,
        "global_signal": global_signal,
        "compcor": compcor,
        "n_compcor": n_compcor,
        "ica_aroma": ica_aroma,
        "tedana": tedana,
    }
    check_options(strategy, options)
    if len(strategy) == 0:
        warnings.warn("strategy is empty, confounds will return None.", UserWarning, stacklevel=2)
    if "non_steady_state" in strategy:
        warnings.warn(
            "Non-steady state volumes are always detected; listing 'non_steady_state' "
            "in the strategy has no effect.",
            UserWarning,
            stacklevel=2,
        )
    if "tedana" in strategy and len(strategy) > 1:
        warnings.warn(
            "TEDANA strategy will only load the tedana ICA components (desc-ICA_mixing.tsv "
            "and desc-tedana_metrics.tsv); the other components "
            f"{[s for s in strategy if s != 'tedana']} are not applied.",
            UserWarning,
            stacklevel=2,
        )
    img_list, single = files.sanitize_confounds(img_files)
    spec = StrategySpec(
        name="load_confounds",
        kind="keywords",
        description="",
        components=list(strategy),
        options=options,
        demean=demean,
    )
    results = [_load_one(img, spec) for img in img_list]
    confounds = [result[0] for result in results]
    masks = [result[1] for result in results]
    if single:
        confounds, masks = confounds[0], masks[0]
    if len(strategy) == 0:
        return None, masks
    return confounds, masks


def load_confounds_strategy(img_files: ImgFiles, denoise_strategy: str = "simple", **kwargs):
    """Load confounds with a nilearn preset: simple, scrubbing, compcor or ica_aroma.

    Same as ``nilearn.interfaces.fmriprep.load_confounds_strategy`` 0.14: the
    preset fixes the components; keywords of :func:`load_confounds` that the
    preset uses can be changed, a string ``global_signal`` adds the global
    signal, and other keywords are ignored with a warning.

    Parameters
    ----------
    img_files : str, Path, list of them, or list of GIFTI pairs
        fMRIPrep BOLD file(s), see :func:`load_confounds`.
    denoise_strategy : {"simple", "scrubbing", "compcor", "ica_aroma"}, default="simple"
        Preset.
    **kwargs
        :func:`load_confounds` keywords.

    Returns
    -------
    confounds, sample_mask
        As :func:`load_confounds`.
    """
    if denoise_strategy not in PRESETS:
        raise ValueError(
            f"'denoise_strategy' must be one of {list(PRESETS)}; {denoise_strategy!r} was provided."
        )
    params = {k: (list(v) if k == "strategy" else v) for k, v in PRESETS[denoise_strategy].items()}
    accepted = [k for k in params if k not in ("strategy", "ica_aroma")]
    for key in accepted:
        value = kwargs.pop(key, None)
        if value is not None:
            params[key] = value
        if key == "global_signal":
            if isinstance(value, str):
                params["strategy"].append("global_signal")
            else:
                params.pop("global_signal")
    if kwargs:
        warnings.warn(
            f"Parameters not used by the '{denoise_strategy}' strategy: {list(kwargs)}; "
            f"parameters accepted: {accepted}.",
            UserWarning,
            stacklevel=2,
        )
    params["strategy"] = tuple(params["strategy"])
    return load_confounds(img_files, **params)


def list_strategies() -> list[str]:
    """Strategy names accepted by :func:`load_strategy` (besides JSON files).

    Returns
    -------
    list of str
        nilearn presets, named sets, and their ``+gsr`` variants.

    Examples
    --------
    >>> "36P" in list_strategies() and "simple+gsr" in list_strategies()
    True
    """
    return _list_strategies()


def load_strategy(
    img_file: str | Path | list, strategy: str | Path, **overrides
) -> tuple[pd.DataFrame, np.ndarray | None, dict]:
    """Confounds, sample mask and the parameters used, for one BOLD file.

    Parameters
    ----------
    img_file : str, Path or [L, R] GIFTI pair
        fMRIPrep BOLD file; the confounds TSV/JSON are read from its folder.
    strategy : str or Path
        A nilearn preset (``simple``, ``scrubbing``, ``compcor``,
        ``ica_aroma``), a named set (``24P``, ``27P``, ``36P``, ``acompcor``,
        ``acompcor_gsr``, ``gsr_only``), any of them with ``+gsr``, or a path
        to a JSON strategy file (format in the module docstring).
    **overrides
        ``fd_threshold``, ``std_dvars_threshold`` (float, or None to disable that
        criterion), ``scrub`` (minimum segment length): given to a strategy
        without scrubbing, they switch scrubbing on, with the criteria not given
        disabled. ``n_dummy_scans`` (int): censor the first volumes through the
        sample mask, on top of fMRIPrep's non-steady-state volumes.

    Returns
    -------
    confounds : pandas.DataFrame
        Regressors (columns sorted by name; no column if the strategy has none).
    sample_mask : numpy.ndarray or None
        Indices of kept volumes, None when all are kept.
    parameters : dict
        JSON-serialisable record: strategy name, kind, description, components,
        their options, extra columns, confounds file, columns used, numbers of
        volumes, dummy scans and censored volumes, and ``censored``: the censored volumes by
        reason (:func:`bidsmask.confounds._components.censoring_counts`), which add up to
        ``n_censored``.
    """
    spec = resolve(strategy)
    _apply_overrides(spec, overrides)
    confounds, sample_mask, tsv, censored = _load_one(img_file, spec)
    n_volumes = len(confounds)
    options = {}
    for comp in spec.components:
        for key in COMPONENT_OPTIONS.get(comp, ()):
            value = spec.options[key]
            options[key] = None if isinstance(value, float) and math.isinf(value) else value
    parameters = {
        "strategy": spec.name,
        "kind": spec.kind,
        "description": spec.description,
        "strategy_file": spec.source,
        "components": list(spec.components),
        "options": options,
        "extra_columns": list(spec.columns),
        "extra_column_patterns": list(spec.column_patterns),
        "demean": spec.demean,
        "confounds_file": str(tsv[0]) if len(tsv) == 1 else [str(p) for p in tsv],
        "columns": [str(c) for c in confounds.columns],
        "n_volumes": n_volumes,
        "n_dummy_scans": spec.n_dummy_scans,
        "n_censored": 0 if sample_mask is None else int(n_volumes - len(sample_mask)),
        "censored": censored,
    }
    return confounds, sample_mask, parameters


_OVERRIDES = ("fd_threshold", "std_dvars_threshold", "scrub", "n_dummy_scans")


def _apply_overrides(spec: StrategySpec, overrides: dict) -> None:
    unknown = set(overrides) - set(_OVERRIDES)
    if unknown:
        raise TypeError(
            f"load_strategy() got unknown overrides {sorted(unknown)}; accepted: "
            f"{list(_OVERRIDES)}."
        )
    if overrides.get("n_dummy_scans") is not None:
        n = overrides["n_dummy_scans"]
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n_dummy_scans must be an integer >= 0; got {n!r}.")
        spec.n_dummy_scans = int(n)
    scrub_keys = [k for k in ("fd_threshold", "std_dvars_threshold", "scrub") if k in overrides]
    if not scrub_keys:
        return
    if "scrub" not in spec.components:
        spec.components.append("scrub")
        spec.options["fd_threshold"] = math.inf
        spec.options["std_dvars_threshold"] = math.inf
    for key in scrub_keys:
        value = overrides[key]
        if key == "scrub":
            spec.options[key] = DEFAULTS["scrub"] if value is None else value
            if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
                spec.options[key] = int(value)
        else:
            if value is not None and not isinstance(value, (int, float, np.number)):
                raise TypeError(f"{key} must be a number or None; got {value!r}.")
            spec.options[key] = math.inf if value is None else float(value)
    check_options(spec.components, spec.options, f"strategy {spec.name!r}")


def _load_one(
    img_file, spec: StrategySpec
) -> tuple[pd.DataFrame | None, np.ndarray | None, list, dict]:
    """Load the confounds of one BOLD file for a resolved strategy."""
    if isinstance(img_file, (list, tuple)) and len(img_file) == 1:
        img_file = img_file[0]
    img_file = [str(f) for f in img_file] if isinstance(img_file, (list, tuple)) else str(img_file)
    opts = spec.options
    use_tedana = "tedana" in spec.components
    full_aroma = "ica_aroma" in spec.components and opts["ica_aroma"] == "full" and not use_tedana
    files.check_image_name(img_file, full_aroma, use_tedana)
    tsv = files.find_confounds_files(img_file, tedana=use_tedana)
    if use_tedana:
        raw = files.read_tedana_tables(tsv)
        meta = {}
        components = ["tedana"]
    else:
        raw = files.read_confounds_tsv(tsv[0])
        anat = "compcor" in spec.components and "anat" in opts["compcor"]
        meta = files.load_confounds_json(tsv[0].with_suffix(".json"), flag_acompcor=anat)
        components = spec.components
    missing_cols, missing_comps = [], []
    parts = [comps.select_non_steady_state(raw)]
    for comp in components:
        if comp == "non_steady_state":
            continue
        try:
            parts.append(_select(comp, raw, meta, opts))
        except comps.MissingConfoundError as err:
            missing_cols += err.params
            missing_comps += err.keywords
    if not use_tedana:
        extra, absent = _extra_columns(raw, spec)
        missing_cols += absent
        parts.append(extra)
    where = ", ".join(str(p) for p in tsv)
    if missing_cols or missing_comps:
        raise ValueError(
            f"Confounds file {where} lacks columns {missing_cols} and components "
            f"{missing_comps} needed by strategy {spec.name!r}; choose another strategy."
        )
    selected = pd.concat(parts, axis=1)
    selected = selected.loc[:, ~selected.columns.duplicated()]
    n_rows = len(raw["mixing"]) if use_tedana else len(raw)
    if selected.shape[0] == 0:
        selected = pd.DataFrame(index=pd.RangeIndex(n_rows))
    if spec.n_dummy_scans >= n_rows:
        raise ValueError(
            f"n_dummy_scans={spec.n_dummy_scans} censors all {n_rows} volumes of {where}."
        )
    dummy = np.arange(spec.n_dummy_scans) if spec.n_dummy_scans else None
    logger.debug("Strategy %s: %d columns selected from %s", spec.name, selected.shape[1], where)
    sample_mask, confounds = comps.prepare_output(selected, spec.demean, dummy)
    return confounds, sample_mask, tsv, comps.censoring_counts(selected, dummy)


def _select(comp: str, raw, meta: dict, opts: dict) -> pd.DataFrame:
    if comp == "high_pass":
        return comps.select_high_pass(raw)
    if comp == "compcor":
        return comps.select_compcor(raw, meta, opts["compcor"], opts["n_compcor"])
    if comp == "scrub":
        return comps.select_scrub(
            raw, opts["scrub"], opts["fd_threshold"], opts["std_dvars_threshold"]
        )
    if comp == "tedana":
        return comps.select_tedana(raw, opts["tedana"])
    selector = getattr(comps, f"select_{comp}")
    return selector(raw, opts[comp])


def _extra_columns(raw: pd.DataFrame, spec: StrategySpec) -> tuple[pd.DataFrame, list[str]]:
    """Extra exact columns (all required) and regex-matched columns of a strategy."""
    absent = [c for c in spec.columns if c not in raw.columns]
    wanted = [c for c in spec.columns if c in raw.columns]
    for pattern in spec.column_patterns:
        regex = re.compile(pattern)
        wanted += [c for c in raw.columns if regex.search(c) and c not in wanted]
    return raw[wanted], absent
