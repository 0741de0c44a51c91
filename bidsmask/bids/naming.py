"""Derivative file names: the one place where bidsmask builds BIDS names.

Entity order follows the BIDS schema (``rules/entities.yaml``, BIDS 1.11 with the atlas entities of
BEP038): ``sub ses task acq ce rec dir run echo part space atlas seg scale res den label desc``.
Two departures, both documented:

* ``cohort`` is placed right after ``space`` (as fMRIPrep/TemplateFlow write it,
  ``space-MNIPediatricAsym_cohort-1_res-2``) because it qualifies the template.
* The draft entities ``stat`` (BEP012) and ``meas`` (BEP017) are not in the schema yet; they are
  placed just before ``desc`` (pybids' rule for unknown entities), ``stat`` before ``meas``.

So an atlas time series is named::

    sub-01_ses-1_task-rest_run-1_space-MNI152NLin2009cAsym_atlas-Schaefer2018_seg-400Parcels7Networks_res-2_stat-mean_desc-simple_timeseries.tsv

Entity values must be alphanumeric in BIDS: :func:`sanitize_label` drops every other character
(``36P+gsr`` -> ``36Pgsr``, ``acompcor_gsr`` -> ``acompcorgsr``), so the ``desc`` value of a
strategy is its name without punctuation; the sidecars keep the original name.

Entity keys may be given as BIDS short tags (``sub``, ``acq``, ``seg``) or as pybids long names
(``subject``, ``acquisition``, ``segmentation``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

#: Output entity order (short tags).
ENTITY_ORDER = tuple(
    "sub ses task acq ce rec dir run echo part space cohort atlas seg scale res den label stat "
    "meas desc".split()
)

#: Entities of an fMRIPrep BOLD kept in every output name of that run.
SOURCE_ENTITIES = tuple("sub ses task acq ce rec dir run echo part space cohort res den".split())

#: pybids long names -> BIDS short tags.
LONG_TO_SHORT = {
    "subject": "sub",
    "session": "ses",
    "acquisition": "acq",
    "ceagent": "ce",
    "reconstruction": "rec",
    "direction": "dir",
    "segmentation": "seg",
    "resolution": "res",
    "density": "den",
    "description": "desc",
    "statistic": "stat",
    "measure": "meas",
}

_NON_ALNUM = re.compile(r"[^A-Za-z0-9]")
_SUFFIX = re.compile(r"^[A-Za-z0-9]+$")


def sanitize_label(value: object) -> str:
    """Make an entity value BIDS-valid by keeping only its letters and digits.

    Raises
    ------
    ValueError
        If nothing alphanumeric is left.

    Examples
    --------
    >>> sanitize_label("36P+gsr"), sanitize_label("acompcor_gsr"), sanitize_label(1)
    ('36Pgsr', 'acompcorgsr', '1')
    """
    label = _NON_ALNUM.sub("", str(value))
    if not label:
        raise ValueError(
            f"Entity value {value!r} has no letters or digits; BIDS labels must be alphanumeric."
        )
    return label


def normalize_entities(entities: Mapping[str, object]) -> dict[str, str]:
    """Map entity keys to short tags and values to sanitized strings; drop ``None`` values.

    Examples
    --------
    >>> normalize_entities({"subject": "01", "run": 2, "desc": "36P+gsr", "ses": None})
    {'sub': '01', 'run': '2', 'desc': '36Pgsr'}
    """
    out = {}
    for key, value in entities.items():
        if value is None:
            continue
        out[LONG_TO_SHORT.get(key, key)] = sanitize_label(value)
    return out


def source_entities(entities: Mapping[str, object]) -> dict[str, str]:
    """Keep the entities of a source BOLD that every output of its run carries.

    Examples
    --------
    >>> source_entities({"subject": "01", "task": "rest", "desc": "preproc", "suffix": "bold"})
    {'sub': '01', 'task': 'rest'}
    """
    short = {LONG_TO_SHORT.get(k, k): v for k, v in entities.items()}
    return normalize_entities({k: short[k] for k in SOURCE_ENTITIES if k in short})


def build_filename(entities: Mapping[str, object], suffix: str, extension: str) -> str:
    """Build a BIDS file name from entities, a suffix and an extension.

    Parameters
    ----------
    entities : mapping
        Entity -> value (short tags or pybids long names; ``None`` values are skipped). Keys
        outside :data:`ENTITY_ORDER` are refused.
    suffix : str
        Alphanumeric suffix, e.g. ``"timeseries"``.
    extension : str
        ``".tsv"``, ``".nii.gz"``, ``".json"`` … (the leading dot is added if missing); ``""``
        gives a stem.

    Returns
    -------
    str
        The file name.

    Examples
    --------
    >>> build_filename(
    ...     {"sub": "01", "task": "rest", "space": "MNI152NLin2009cAsym", "res": "2",
    ...      "atlas": "Schaefer2018", "seg": "400Parcels7Networks",
    ...      "meas": "PearsonCorrelation", "desc": "simple"},
    ...     "relmat", ".tsv")
    'sub-01_task-rest_space-MNI152NLin2009cAsym_atlas-Schaefer2018_seg-400Parcels7Networks_res-2_meas-PearsonCorrelation_desc-simple_relmat.tsv'
    """
    ents = normalize_entities(entities)
    unknown = sorted(set(ents) - set(ENTITY_ORDER))
    if unknown:
        raise ValueError(
            f"Unknown BIDS entities {unknown}; bidsmask names use only {list(ENTITY_ORDER)}."
        )
    if not _SUFFIX.match(suffix):
        raise ValueError(f"Suffix {suffix!r} must be alphanumeric, e.g. 'timeseries'.")
    if extension and not extension.startswith("."):
        extension = "." + extension
    parts = [f"{key}-{ents[key]}" for key in ENTITY_ORDER if key in ents]
    return "_".join([*parts, suffix]) + extension


def build_path(
    entities: Mapping[str, object], suffix: str, extension: str, datatype: str = "func"
) -> Path:
    """Build the path of a derivative relative to the output root.

    ``sub-<s>/[ses-<s>/]<datatype>/<file name>``.

    Examples
    --------
    >>> build_path({"sub": "01", "ses": "1", "task": "rest", "desc": "brain"}, "mask", ".nii.gz")
    PosixPath('sub-01/ses-1/func/sub-01_ses-1_task-rest_desc-brain_mask.nii.gz')
    """
    ents = normalize_entities(entities)
    if "sub" not in ents:
        raise ValueError(f"A participant-level path needs a 'sub' entity; got {sorted(ents)}.")
    folder = Path(f"sub-{ents['sub']}")
    if "ses" in ents:
        folder = folder / f"ses-{ents['ses']}"
    return folder / datatype / build_filename(ents, suffix, extension)


def run_stem(entities: Mapping[str, object]) -> str:
    """Identify a run by its source entities, e.g. ``sub-01_task-rest_run-1_space-T1w``.

    Used for completion markers and log lines.

    Examples
    --------
    >>> run_stem({"subject": "01", "task": "rest", "run": 1, "space": "T1w", "desc": "preproc"})
    'sub-01_task-rest_run-1_space-T1w'
    """
    return build_filename(source_entities(entities), "x", "")[: -len("_x")]


def atlas_filename(
    atlas: str,
    suffix: str,
    extension: str,
    *,
    seg: str | None = None,
    space: str | None = None,
    res: str | None = None,
) -> str:
    """Name a dataset-level atlas file (BEP038 style: ``atlas`` leads, as ``sub`` does).

    Examples
    --------
    >>> atlas_filename("Schaefer2018", "dseg", ".tsv", seg="400Parcels7Networks")
    'atlas-Schaefer2018_seg-400Parcels7Networks_dseg.tsv'
    >>> atlas_filename("DiFuMo", "probseg", ".nii.gz", seg="64dimensions",
    ...                space="MNI152NLin6Asym", res="2")
    'atlas-DiFuMo_seg-64dimensions_space-MNI152NLin6Asym_res-2_probseg.nii.gz'
    """
    head = f"atlas-{sanitize_label(atlas)}"
    if seg is not None:
        head += f"_seg-{sanitize_label(seg)}"
    rest = build_filename({"space": space, "res": res}, suffix, extension)
    return f"{head}_{rest}"


def pybids_config() -> dict:
    """Return a pybids configuration adding the draft ``stat`` and ``meas`` entities.

    Use it with the ``bids`` and ``derivatives`` configurations to index bidsmask outputs
    (ignoring ``logs/``, which holds logs and run completion markers)::

        BIDSLayout(out, validate=False, config=["bids", "derivatives", pybids_config()],
                   indexer=BIDSLayoutIndexer(validate=False, ignore=["logs"]))
        parse_file_entities(name, config=["bids", "derivatives", pybids_config()])
    """
    return {
        "name": "bidsmask",
        "entities": [
            {"name": "stat", "pattern": "[_/\\\\]stat-([a-zA-Z0-9]+)"},
            {"name": "meas", "pattern": "[_/\\\\]meas-([a-zA-Z0-9]+)"},
        ],
    }
