"""Denoising strategies: nilearn presets, XCP-D-style named sets and JSON files.

Every strategy resolves to one :class:`StrategySpec`: the keyword arguments of
:func:`bidsmask.confounds.load_confounds` (``strategy`` components and their
options) plus optional extra columns, column patterns and dummy scans.

The JSON strategy file format and the named sets are documented in
:mod:`bidsmask.confounds`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from bidsmask.confounds._components import COMPCOR_TYPES, CONFOUND_MODELS

COMPONENTS = (
    "motion",
    "high_pass",
    "wm_csf",
    "global_signal",
    "compcor",
    "ica_aroma",
    "tedana",
    "scrub",
    "non_steady_state",
)
# load_confounds keyword defaults (nilearn 0.14)
DEFAULTS = {
    "motion": "full",
    "scrub": 5,
    "fd_threshold": 0.5,
    "std_dvars_threshold": 1.5,
    "wm_csf": "basic",
    "global_signal": "basic",
    "compcor": "anat_combined",
    "n_compcor": "all",
    "ica_aroma": "full",
    "tedana": "aggressive",
}
# options that matter for each component
COMPONENT_OPTIONS = {
    "motion": ("motion",),
    "wm_csf": ("wm_csf",),
    "global_signal": ("global_signal",),
    "compcor": ("compcor", "n_compcor"),
    "ica_aroma": ("ica_aroma",),
    "tedana": ("tedana",),
    "scrub": ("scrub", "fd_threshold", "std_dvars_threshold"),
}

PRESETS = {
    "simple": {
        "strategy": ("high_pass", "motion", "wm_csf"),
        "motion": "full",
        "wm_csf": "basic",
        "global_signal": None,
        "demean": True,
    },
    "scrubbing": {
        "strategy": ("high_pass", "motion", "wm_csf", "scrub"),
        "motion": "full",
        "wm_csf": "full",
        "scrub": 5,
        "fd_threshold": 0.5,
        "std_dvars_threshold": 1.5,
        "global_signal": None,
        "demean": True,
    },
    "compcor": {
        "strategy": ("high_pass", "motion", "compcor"),
        "motion": "full",
        "n_compcor": "all",
        "compcor": "anat_combined",
        "global_signal": None,
        "demean": True,
    },
    "ica_aroma": {
        "strategy": ("high_pass", "wm_csf", "ica_aroma"),
        "wm_csf": "basic",
        "ica_aroma": "full",
        "global_signal": None,
        "demean": True,
    },
}

_ACOMPCOR = {
    "strategy": ["motion", "high_pass", "compcor"],
    "motion": "derivatives",
    "compcor": "anat_separated",
    "n_compcor": 5,
}
NAMED_SETS = {
    "24P": {
        "description": "6 motion parameters, their temporal derivatives and the "
        "squares of both (24 regressors).",
        "strategy": ["motion"],
        "motion": "full",
    },
    "27P": {
        "description": "24P plus mean white matter, CSF and global signals.",
        "strategy": ["motion", "wm_csf", "global_signal"],
        "motion": "full",
        "wm_csf": "basic",
        "global_signal": "basic",
    },
    "36P": {
        "description": "6 motion parameters, mean white matter, CSF and global signals, "
        "their temporal derivatives and the squares of all (36 regressors).",
        "strategy": ["motion", "wm_csf", "global_signal"],
        "motion": "full",
        "wm_csf": "full",
        "global_signal": "full",
    },
    "acompcor": {
        "description": "6 motion parameters and their derivatives, the first 5 aCompCor "
        "components of the white matter and of the CSF masks, and the cosine "
        "regressors of fMRIPrep's high-pass filter.",
        **_ACOMPCOR,
    },
    "acompcor_gsr": {
        "description": "acompcor plus mean white matter, CSF and global signals.",
        **_ACOMPCOR,
        "strategy": [*_ACOMPCOR["strategy"], "wm_csf", "global_signal"],
        "wm_csf": "basic",
        "global_signal": "basic",
    },
    "gsr_only": {
        "description": "The mean global signal only.",
        "strategy": ["global_signal"],
        "global_signal": "basic",
    },
}

_SPEC_KEYS = {
    "name",
    "description",
    "strategy",
    "columns",
    "column_patterns",
    "n_dummy_scans",
    "demean",
    *DEFAULTS,
}


@dataclass
class StrategySpec:
    """A resolved denoising strategy.

    Attributes
    ----------
    name : str
        Strategy name as given (e.g. ``"36P+gsr"`` or a JSON file stem).
    kind : str
        ``"preset"``, ``"named"`` or ``"file"``.
    description : str
        Human-readable summary.
    components : list of str
        nilearn components, in order.
    options : dict
        ``load_confounds`` options (all keywords, defaults filled in).
    columns, column_patterns : list of str
        Extra exact columns and regular expressions.
    n_dummy_scans : int
        First volumes censored.
    demean : bool
        Demean the confounds over kept volumes.
    source : str or None
        JSON file path for ``kind == "file"``.
    """

    name: str
    kind: str
    description: str
    components: list[str]
    options: dict
    columns: list[str] = field(default_factory=list)
    column_patterns: list[str] = field(default_factory=list)
    n_dummy_scans: int = 0
    demean: bool = True
    source: str | None = None


def list_strategies() -> list[str]:
    """Names accepted by :func:`resolve` (presets, named sets, ``+gsr`` variants)."""
    names = []
    for name in [*PRESETS, *NAMED_SETS]:
        names.append(name)
        if "global_signal" not in _base_components(name):
            names.append(f"{name}+gsr")
    return names


def _base_components(name: str) -> list[str]:
    table = PRESETS[name] if name in PRESETS else NAMED_SETS[name]
    return list(table["strategy"])


def resolve(strategy: str | Path) -> StrategySpec:
    """Resolve a strategy name or JSON path into a :class:`StrategySpec`.

    Parameters
    ----------
    strategy : str or pathlib.Path
        A preset (simple, scrubbing, compcor, ica_aroma), a named set (24P, 27P,
        36P, acompcor, acompcor_gsr, gsr_only), either with ``+gsr``, or a path
        to a JSON strategy file (optionally followed by ``+gsr``).

    Returns
    -------
    StrategySpec
        The resolved strategy.
    """
    text = str(strategy)
    add_gsr = text.endswith("+gsr")
    base = text.removesuffix("+gsr")
    if base in PRESETS:
        table = dict(PRESETS[base])
        table.pop("global_signal")
        spec = _from_table(text, "preset", table, base)
        spec.description = f"nilearn's '{base}' load_confounds_strategy preset."
    elif base in NAMED_SETS:
        spec = _from_table(text, "named", NAMED_SETS[base], base)
    elif base.endswith(".json"):
        spec = _from_json(Path(base))
        spec.name = spec.name + ("+gsr" if add_gsr else "")
    else:
        raise ValueError(
            f"Unknown denoising strategy {text!r}; use one of {list_strategies()} "
            "or a path to a JSON strategy file."
        )
    if add_gsr:
        if "global_signal" in spec.components:
            raise ValueError(f"Strategy {base!r} already includes the global signal; drop '+gsr'.")
        spec.components.append("global_signal")
        spec.options["global_signal"] = "basic"
        spec.description += " Plus the mean global signal."
    return spec


def _from_table(name: str, kind: str, table: dict, where: str, source=None) -> StrategySpec:
    unknown = set(table) - _SPEC_KEYS
    if unknown:
        raise ValueError(
            f"Strategy {where}: unknown keys {sorted(unknown)}; allowed: {sorted(_SPEC_KEYS)}."
        )
    components = list(table.get("strategy", []))
    options = {k: table.get(k, v) for k, v in DEFAULTS.items()}
    for key in ("fd_threshold", "std_dvars_threshold"):
        if key in table and table[key] is None:
            options[key] = float("inf")
    check_options(components, options, where)
    columns = table.get("columns", [])
    patterns = table.get("column_patterns", [])
    for key, value in (("columns", columns), ("column_patterns", patterns)):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"Strategy {where}: {key!r} must be a list of strings.")
    n_dummy = table.get("n_dummy_scans", 0)
    if isinstance(n_dummy, bool) or not isinstance(n_dummy, int) or n_dummy < 0:
        raise ValueError(f"Strategy {where}: 'n_dummy_scans' must be an integer >= 0.")
    return StrategySpec(
        name=name,
        kind=kind,
        description=str(table.get("description", "")),
        components=components,
        options=options,
        columns=list(columns),
        column_patterns=list(patterns),
        n_dummy_scans=n_dummy,
        demean=bool(table.get("demean", True)),
        source=source,
    )


def _from_json(path: Path) -> StrategySpec:
    if not path.is_file():
        raise FileNotFoundError(f"Strategy file not found: {path}")
    try:
        table = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"Strategy file {path} is not valid JSON: {err}") from err
    if not isinstance(table, dict):
        raise ValueError(f"Strategy file {path} must hold a JSON object.")
    name = str(table.get("name", path.name.removesuffix(".json")))
    return _from_table(name, "file", table, f"file {path}", source=str(path))


def check_options(components, options: dict, where: str = "load_confounds") -> None:
    """Validate components and the options of the components used (nilearn's checks).

    Parameters
    ----------
    components : list or tuple of str
        nilearn components.
    options : dict
        ``load_confounds`` keyword values.
    where : str
        Prefix for error messages.
    """
    if not isinstance(components, (list, tuple)):
        raise ValueError(
            f"{where}: strategy must be a tuple or list of strings; "
            f"got {type(components).__name__}."
        )
    for comp in components:
        if comp not in COMPONENTS:
            raise ValueError(
                f"{where}: 'strategy' must contain only {list(COMPONENTS)}; {comp!r} was provided."
            )
    if "compcor" in components and "high_pass" not in components:
        raise ValueError(
            f"{where}: with compcor, 'high_pass' must be in the strategy (fMRIPrep's "
            f"CompCor components are computed on high-pass filtered data); got {list(components)}."
        )
    allowed = {
        "motion": CONFOUND_MODELS,
        "wm_csf": CONFOUND_MODELS,
        "global_signal": CONFOUND_MODELS,
        "compcor": COMPCOR_TYPES,
        "ica_aroma": ("full", "basic"),
        "tedana": ("aggressive", "non-aggressive"),
    }
    for comp in components:
        for key in COMPONENT_OPTIONS.get(comp, ()):
            value = options[key]
            if key in allowed and value not in allowed[key]:
                raise ValueError(
                    f"{where}: '{key}' must be one of {list(allowed[key])}; {value!r} was provided."
                )
            if (
                key == "n_compcor"
                and value != "all"
                and (isinstance(value, bool) or not isinstance(value, int) or value < 1)
            ):
                raise ValueError(
                    f"{where}: 'n_compcor' must be 'all' or a positive integer; "
                    f"{value!r} was provided."
                )
            if key == "scrub" and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(
                    f"{where}: 'scrub' must be an integer >= 0; {value!r} was provided."
                )
