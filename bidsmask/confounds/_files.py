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
    "func.gii": ("_hemi-[LR](_space-.*)?_bold.func.gii", "~hemi-L/R_bold.func.gii file(s)"),
}
# nilearn's message for each kind of input, kept at the start of ours
_IMAGE_ERRORS = {
    "aroma": "Input must be desc-smoothAROMAnonaggr_bold for full ICA-AROMA strategy",
    "tedana": "Input must be the ~desc-optcom_bold.nii.gz file for tedana strategy",
    "nii.gz": "Invalid file type for the selected 'nii.gz' method",
    "dtseries.nii": "Invalid file type for the selected 'dtseries.nii' method",
    "func.gii": "Invalid file type: need fMRIprep output with extension func.gii",
}


class ConfoundsFileNotFoundError(FileNotFoundError, ValueError):
    """A confounds file (TSV or JSON sidecar) that is not there.

    A :class:`FileNotFoundError` (the app's exit code 66) and, as nilearn raises for it, a
    :class:`ValueError`.
    """


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
        If the name does not match, or a list is not a pair of GIFTI files.
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
    if isinstance(img_file, list) and len(names) != 2:
        raise ValueError(
            f"GIFTI input given as a list must be a pair of hemisphere files; got {names}."
        )
    for name in names:
        if not re.search(pattern, name):
            raise ValueError(
                f"{_IMAGE_ERRORS[kind]}: image file {name} does not match the strategy. "
                f"Input must be the {expected}."
            )


def sanitize_confounds(img_files: str | Path | list | tuple) -> tuple[list, bool]:
    """Normalise ``img_files`` into a list of inputs and a "single input" flag.

    Same name and results as ``nilearn``'s ``load_confounds_utils.sanitize_confounds``: a
    path, a one-element list, or a pair of ``*.func.gii`` files (given as such or inside a
    one-element list) is a single input; other lists hold one input per element.

    Parameters
    ----------
    img_files : str, pathlib.Path, list or tuple
        BOLD file(s), or ``[L, R]`` GIFTI pairs.

    Returns
    -------
    img_files : list
        One entry per input: a path string, or a ``[L, R]`` list of path strings.
    single : bool
        Whether a single input was given.

    Raises
    ------
    TypeError
        ``img_files`` is neither a path nor a non-empty list.

    Examples
    --------
    >>> sanitize_confounds(["a_hemi-L_bold.func.gii", "a_hemi-R_bold.func.gii"])
    ([['a_hemi-L_bold.func.gii', 'a_hemi-R_bold.func.gii']], True)
    """
    if isinstance(img_files, (str, Path)):
        return [str(img_files)], True
    if not isinstance(img_files, (list, tuple)) or len(img_files) == 0:
        raise TypeError(
            "img_files must be a file path, a list of paths, or [L, R] GIFTI pairs; "
            f"got {img_files!r}."
        )
    img_files = [f if isinstance(f, (list, tuple)) else str(f) for f in img_files]
    if len(img_files) == 1:
        first = img_files[0]
        return [list(map(str, first)) if isinstance(first, (list, tuple)) else first], True
    if len(img_files) == 2 and all(
        isinstance(f, str) and f.endswith("func.gii") for f in img_files
    ):
        return [img_files], True
    return [list(map(str, f)) if isinstance(f, (list, tuple)) else f for f in img_files], False


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
    ConfoundsFileNotFoundError
        If no confounds file is found (a FileNotFoundError and a ValueError).
    ValueError
        If several candidates match (tedana: not exactly two).
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
        raise ConfoundsFileNotFoundError(
            f"Could not find associated confound file: no {what} file next to {first}; the "
            "confounds must be in the same folder as the BOLD file, with matching BIDS entities."
        )
    if len(found) != expected:
        listing = ", ".join(str(f) for f in found)
        nilearn_phrase = f"Found {len(found)} confound files (expected 2 for TEDANA). " * tedana
        raise ValueError(
            f"{nilearn_phrase}Expected {expected} confounds file(s) next to {first}, found "
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
            f"The confound file contains header in camel case: {path} has columns "
            f"{camel[:3]}, from fMRIPrep 1.0/1.1; only fMRIPrep >= 1.2 outputs are supported."
        )
    try:
        float(table.columns[0])
    except ValueError:
        return table
    raise ValueError(
        f"The confound file contains no header: {path} (an old fMRIPrep output?); "
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
            "The confound file does not contain the expected columns for TEDANA output: "
            f"{[str(p) for p in paths]} lack 'ICA_xx' columns (mixing table) and a "
            "'Component' column (metrics table)."
        )
    return tables


def load_confounds_json(confounds_json: str | Path, flag_acompcor: bool) -> dict:
    """Read the JSON sidecar of an fMRIPrep confounds TSV (needed for anatomical CompCor).

    Same name and parameters as ``nilearn``'s ``load_confounds_utils.load_confounds_json``.
    Unlike nilearn, which then returns the path itself, a missing sidecar gives an empty
    dict when ``flag_acompcor`` is False.

    Parameters
    ----------
    confounds_json : str or pathlib.Path
        The ``*_desc-confounds_timeseries.json`` file.
    flag_acompcor : bool
        Whether anatomical CompCor is used: the sidecar is then required (it says which
        component comes from which mask).

    Returns
    -------
    dict
        The sidecar's content, or an empty dict when it is missing and not required.

    Raises
    ------
    ConfoundsFileNotFoundError
        The sidecar is missing and ``flag_acompcor`` is True (a FileNotFoundError and, as in
        nilearn, a ValueError).
    ValueError
        The sidecar is not valid JSON.
    """
    json_path = Path(confounds_json)
    if not json_path.is_file():
        if flag_acompcor:
            raise ConfoundsFileNotFoundError(
                f"Could not find associated json file {json_path}; anatomical CompCor needs "
                "it (fMRIPrep >= 1.4)."
            )
        return {}
    with json_path.open("rb") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"Confounds sidecar {json_path} is not valid JSON: {err}") from err


def load_confounds_file_as_dataframe(
    confounds_raw_path: str | Path | list, flag_tedana: bool = False
) -> pd.DataFrame | dict[str, pd.DataFrame]:
    """Read an fMRIPrep confounds TSV, or tedana's two tables, checking the format.

    Same name, parameters and results as ``nilearn``'s
    ``load_confounds_utils.load_confounds_file_as_dataframe``.

    Parameters
    ----------
    confounds_raw_path : str, pathlib.Path or list
        The ``*_desc-confounds_timeseries.tsv`` file; with ``flag_tedana``, the paths of
        tedana's ``*_mixing.tsv`` and ``*_metrics.tsv``.
    flag_tedana : bool, default=False
        Read tedana's tables.

    Returns
    -------
    pandas.DataFrame or dict
        The confounds (``n/a`` read as NaN); with ``flag_tedana``,
        ``{"mixing": DataFrame, "metrics": DataFrame}``.

    Raises
    ------
    ValueError
        Camel-case headers (fMRIPrep 1.0/1.1), no header, or tedana tables without their
        columns.
    """
    if flag_tedana:
        return read_tedana_tables([Path(p) for p in confounds_raw_path])
    return read_confounds_tsv(Path(confounds_raw_path))
