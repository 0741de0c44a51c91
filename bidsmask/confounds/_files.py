"""Find and read the fMRIPrep (or tedana) confounds files next to a BOLD file.

Follows ``nilearn.interfaces.fmriprep`` 0.14: the BOLD name must look like an
fMRIPrep output (``*_desc-preproc_bold.nii.gz``, ``*_bold.dtseries.nii``, a pair
of ``*_hemi-{L,R}*_bold.func.gii``, ``*_desc-smoothAROMAnonaggr_bold*`` for full
ICA-AROMA, ``*_desc-optcom_bold.nii.gz`` for tedana); the confounds file is the
single ``*_desc-confounds_timeseries.tsv`` (or pre-20.2 ``_regressors.tsv``) in
the same folder whose entities are a subset of the BOLD file's, with ``desc``
set to ``confounds``.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pandas as pd

_IMAGE_PATTERNS = {
    "aroma": ("_desc-smoothAROMAnonaggr_bold", "~desc-smoothAROMAnonaggr_bold file"),
    "tedana": ("_desc-optcom_bold.nii.gz", "~desc-optcom_bold.nii.gz file"),
    "nii.gz": ("(_space-.*)?_desc-preproc_bold.nii.gz", "~desc-preproc_bold.nii.gz file"),
    "dtseries.nii": ("(_space-.*)?_bold.dtseries.nii", "~bold.dtseries.nii file"),
    "func.gii": ("_hemi-[LR](_space-.*)?_bold.func.gii", "pair of ~hemi-L/R_bold.func.gii files"),
}


def check_image_name(img_file: str | list[str], full_aroma: bool, tedana: bool) -> None:
    """Check that ``img_file`` is named like the fMRIPrep output the strategy needs.

    Parameters
    ----------
    img_file : str or list of str
        BOLD file, or a pair of GIFTI files.
    full_aroma : bool
        Whether the full ICA-AROMA strategy (non-aggressively denoised BOLD) is used.
    tedana : bool
        Whether the tedana strategy (optimally combined BOLD) is used.

    Raises
    ------
    ValueError
        If the name does not match.
    """
    if isinstance(img_file, list):
        names, kind = [str(f) for f in img_file], "func.gii"
    else:
        names = [str(img_file)]
        kind = (
            "aroma"
            if full_aroma
            else "tedana"
            if tedana
            else ".".join(Path(names[0]).name.split(".")[-2:])
        )
    if kind not in _IMAGE_PATTERNS:
        raise ValueError(
            f"Unsupported input: image file {names[0]}; expected an fMRIPrep "
            "*_desc-preproc_bold.nii.gz, *_bold.dtseries.nii or a pair of *_bold.func.gii."
        )
    pattern, expected = _IMAGE_PATTERNS[kind]
    if kind == "func.gii" and len(names) != 2:
        raise ValueError(f"GIFTI input must be a pair of hemisphere files; got {names}.")
    for name in names:
        if not re.search(pattern, name):
            raise ValueError(
                f"Invalid file type: image file {name} does not match the strategy. Input must "
                f"be the {expected}."
            )


def _entities(img_file: str) -> dict[str, str | None]:
    parts = Path(img_file).name.split("_")[:-1]
    entities = {}
    for part in parts:
        key, _, label = part.partition("-")
        entities[key] = label if label else None
    return entities


def _candidates(entities: dict, desc: str) -> list[str]:
    """Names made of every subset of the entities that keeps ``desc``."""
    entities = {**entities, "desc": desc}
    keys = list(entities)
    names = []
    for n in range(1, len(keys) + 1):
        for subset in itertools.combinations(keys, n):
            if "desc" in subset:
                names.append("_".join(f"{k}-{entities[k]}" for k in subset))
    return names


def find_confounds_files(img_file: str | list[str], tedana: bool = False) -> list[Path]:
    """Return the confounds TSV next to ``img_file`` (tedana: mixing and metrics TSVs).

    Parameters
    ----------
    img_file : str or list of str
        BOLD file (first of a GIFTI pair is used).
    tedana : bool, default=False
        Look for tedana's ``desc-ICA_mixing.tsv`` and ``desc-tedana_metrics.tsv``.

    Returns
    -------
    list of pathlib.Path
        One path (two for tedana).

    Raises
    ------
    FileNotFoundError
        If no confounds file is found.
    ValueError
        If several candidates match.
    """
    first = str(img_file[0] if isinstance(img_file, list) else img_file)
    folder = Path(first).parent
    entities = _entities(first)
    if tedana:
        stems = _candidates(entities, "ICA") + _candidates(entities, "tedana")
        suffixes = ("_mixing.tsv", "_metrics.tsv")
    else:
        stems = _candidates(entities, "confounds")
        suffixes = ("_timeseries.tsv", "_regressors.tsv")
    names = {stem + suffix for suffix in suffixes for stem in stems}
    found = sorted(folder / name for name in names if (folder / name).is_file())
    expected = 2 if tedana else 1
    if not found:
        what = (
            "tedana *_mixing.tsv / *_metrics.tsv" if tedana else "*_desc-confounds_timeseries.tsv"
        )
        raise FileNotFoundError(
            f"No {what} file found next to {first}; the confounds must be in the same "
            "folder as the BOLD file, with matching BIDS entities."
        )
    if len(found) != expected:
        listing = ", ".join(str(f) for f in found)
        raise ValueError(
            f"Expected {expected} confounds file(s) next to {first}, found "
            f"{'more than one' if len(found) > expected else 'only one'} ({len(found)}): "
            f"{listing}."
        )
    return found


def read_confounds_tsv(path: Path) -> pd.DataFrame:
    """Read an fMRIPrep confounds TSV, rejecting fMRIPrep < 1.2 formats.

    Parameters
    ----------
    path : pathlib.Path
        The ``*_desc-confounds_timeseries.tsv`` file.

    Returns
    -------
    pandas.DataFrame
        All columns, ``n/a`` read as NaN.

    Raises
    ------
    ValueError
        For camel-case headers (fMRIPrep 1.0/1.1) or a missing header.
    """
    table = pd.read_csv(path, sep="\t", encoding="utf-8")
    camel = [c for c in table.columns if c != c.lower() and c != c.upper() and "_" not in c]
    if camel:
        raise ValueError(
            f"Confounds file {path} has camel-case columns {camel[:3]}, from fMRIPrep "
            "1.0/1.1; only fMRIPrep >= 1.2 outputs are supported."
        )
    try:
        float(table.columns[0])
    except ValueError:
        return table
    raise ValueError(
        f"Confounds file {path} has no header row (an old fMRIPrep output?); "
        "only fMRIPrep >= 1.2 outputs are supported."
    )


def read_tedana_tables(paths: list[Path]) -> dict[str, pd.DataFrame]:
    """Read tedana's mixing and metrics tables.

    Parameters
    ----------
    paths : list of pathlib.Path
        The two files returned by :func:`find_confounds_files` with ``tedana=True``.

    Returns
    -------
    dict
        ``{"mixing": DataFrame, "metrics": DataFrame}``.
    """
    tables = {}
    for kind in ("mixing", "metrics"):
        path = next((p for p in paths if kind in str(p)), None)
        if path is None:
            raise FileNotFoundError(f"No tedana {kind} file among {[str(p) for p in paths]}.")
        tables[kind] = pd.read_csv(path, sep="\t", encoding="utf-8")
    ok = any(str(c).startswith("ICA_") for t in tables.values() for c in t.columns) or any(
        "Component" in t.columns for t in tables.values()
    )
    if not ok:
        raise ValueError(
            f"Files {[str(p) for p in paths]} are not tedana outputs: expected 'ICA_xx' "
            "columns in the mixing table and a 'Component' column in the metrics table."
        )
    return tables


def read_confounds_json(tsv_path: Path, required: bool) -> dict:
    """Read the JSON sidecar of a confounds TSV (needed for anatomical CompCor).

    Parameters
    ----------
    tsv_path : pathlib.Path
        The confounds TSV.
    required : bool
        Raise if the sidecar is missing (anatomical CompCor needs it).

    Returns
    -------
    dict
        The sidecar's content, or an empty dict when it is missing and not required.
    """
    json_path = tsv_path.with_suffix(".json")
    if not json_path.is_file():
        if required:
            raise FileNotFoundError(
                f"Confounds sidecar {json_path} not found; anatomical CompCor needs it "
                "(fMRIPrep >= 1.4)."
            )
        return {}
    with json_path.open("rb") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"Confounds sidecar {json_path} is not valid JSON: {err}") from err
