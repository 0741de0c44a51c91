"""Find the fMRIPrep runs to process (pybids queries of fMRIPrep 20.2 to 25 outputs).

:func:`find_fmriprep_dir` locates the fMRIPrep derivatives; :func:`collect_runs` returns one
:class:`RunRecord` per preprocessed BOLD in each requested space, with the files fMRIPrep writes
beside it. pybids indexes only the selected participants (``validate=False``, in memory) and its
database is saved under ``<work_dir>/pybids/``, never inside the (possibly read-only) input.

The companions of ``<source>_space-<s>[_res-<r>]_desc-preproc_bold.nii.gz`` are derived from its
name, as fMRIPrep writes them:

* brain mask ``…_desc-brain_mask.nii.gz`` and reference ``…_boldref.nii.gz`` (same entities);
* confounds ``<source>_desc-confounds_timeseries.tsv`` (+ ``.json``), or the pre-20.2 name
  ``<source>_desc-confounds_regressors.tsv``;
* in ``T1w`` space, FreeSurfer segmentations: the per-run ``…_desc-aparcaseg_dseg.nii.gz`` /
  ``…_desc-aseg_dseg.nii.gz`` (fMRIPrep < 23) or else the participant's (session's)
  ``anat/sub-<s>[_ses-<s>]_desc-aparcaseg_dseg.nii.gz``; the grey-matter probability map
  ``anat/sub-<s>[_ses-<s>]_label-GM_probseg.nii.gz`` (``space-<s>_label-GM`` for a template).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib

from bidsmask.bids.naming import run_stem

logger = logging.getLogger(__name__)

_ENTITY = re.compile(r"([a-zA-Z]+)-([a-zA-Z0-9]+)")
_SPACE_ENTITIES = ("space", "cohort", "res", "den")
_BOLD_TAIL = "_desc-preproc_bold"
_VOLUME_QUERY = {"desc": "preproc", "extension": [".nii.gz", ".nii"]}
#: Grayordinate spaces, whose runs are CIFTI dense time series (see ``_cifti_runs``).
CIFTI_SPACES = frozenset({"fsLR"})


class ParticipantNotFoundError(LookupError):
    """A requested participant label has no folder in the fMRIPrep derivatives."""


class NoRunsFoundError(LookupError):
    """The participant/session/task/space selection and filters matched no preprocessed BOLD."""


@dataclass(frozen=True)
class RunRecord:
    """One preprocessed BOLD run in one space, with the fMRIPrep files that go with it.

    Attributes
    ----------
    bold, mask : pathlib.Path
        The preprocessed BOLD and its brain mask (``None`` for a grayordinate ``dtseries``).
    confounds : pathlib.Path
        The confounds TSV (``desc-confounds_timeseries`` or pre-20.2 ``_regressors``).
    confounds_json : pathlib.Path or None
        Its JSON sidecar, when present.
    boldref : pathlib.Path or None
        The BOLD reference image, when present.
    entities : dict
        The BOLD's entities as BIDS short tags, values as written (``{"sub": "01",
        "task": "rest", "run": "1", "space": "T1w", ...}``, without ``desc``/suffix).
    metadata : dict
        The BOLD's JSON sidecar (empty if absent).
    repetition_time : float
        Seconds, from the sidecar or (with a warning) the NIfTI header.
    aparcaseg, aseg, gm_probseg : pathlib.Path or None
        FreeSurfer segmentations (T1w space) and the grey-matter probability map in this space.
    """

    bold: Path
    mask: Path | None
    confounds: Path
    repetition_time: float
    entities: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    confounds_json: Path | None = None
    boldref: Path | None = None
    aparcaseg: Path | None = None
    aseg: Path | None = None
    gm_probseg: Path | None = None

    @property
    def subject(self) -> str:
        """Participant label (without ``sub-``)."""
        return self.entities["sub"]

    @property
    def session(self) -> str | None:
        """Session label, if any."""
        return self.entities.get("ses")

    @property
    def space(self) -> str:
        """The ``space-`` label."""
        return self.entities["space"]

    @property
    def res(self) -> str | None:
        """The ``res-`` label, if any."""
        return self.entities.get("res")

    @property
    def run_id(self) -> str:
        """Identifier of the run in its space, e.g. ``sub-01_task-rest_run-1_space-T1w``."""
        return run_stem(self.entities)


def strip_sub(label: str) -> str:
    """Return a participant label without its ``sub-`` prefix.

    Examples
    --------
    >>> strip_sub("sub-01"), strip_sub("01")
    ('01', '01')
    """
    label = str(label).strip()
    return label[4:] if label.startswith("sub-") else label


def parse_space(text: str) -> tuple[str, dict[str, str]]:
    """Split an fMRIPrep ``--output-spaces`` value into the space and its qualifiers.

    Examples
    --------
    >>> parse_space("MNI152NLin2009cAsym:res-2")
    ('MNI152NLin2009cAsym', {'res': '2'})
    >>> parse_space("MNIPediatricAsym:cohort-1:res-02")
    ('MNIPediatricAsym', {'cohort': '1', 'res': '02'})
    """
    name, *quals = str(text).split(":")
    extra = {}
    for q in quals:
        key, sep, value = q.partition("-")
        if not sep or key not in _SPACE_ENTITIES[1:] or not value.isalnum():
            raise ValueError(
                f"Invalid space {text!r}: qualifiers must be res-<label>, cohort-<label> or "
                "den-<label>, e.g. 'MNI152NLin2009cAsym:res-2'."
            )
        extra[key] = value
    return name, extra


def read_dataset_description(folder: str | os.PathLike) -> dict:
    """Return a folder's ``dataset_description.json`` (empty dict if absent or unreadable)."""
    try:
        return json.loads((Path(folder) / "dataset_description.json").read_text())
    except (OSError, ValueError):
        return {}


def fmriprep_version(folder: str | os.PathLike) -> str | None:
    """Version of fMRIPrep that made ``folder``, from its ``dataset_description.json``."""
    desc = read_dataset_description(folder)
    for gen in [*desc.get("GeneratedBy", []), desc.get("PipelineDescription", {})]:
        if isinstance(gen, dict) and "fmriprep" in str(gen.get("Name", "")).lower():
            return gen.get("Version")
    return None


def _is_fmriprep(folder: Path) -> bool:
    desc = read_dataset_description(folder)
    names = [g.get("Name", "") for g in desc.get("GeneratedBy", []) if isinstance(g, dict)]
    names.append(desc.get("PipelineDescription", {}).get("Name", ""))
    return any("fmriprep" in str(n).lower() for n in names)


def find_fmriprep_dir(
    bids_dir: str | os.PathLike, derivatives: str | os.PathLike | None = None
) -> Path:
    """Locate the fMRIPrep derivatives.

    Order: ``derivatives`` when given; ``bids_dir`` itself when its ``dataset_description.json``
    says it was generated by fMRIPrep; ``bids_dir/derivatives/fmriprep``; any
    ``bids_dir/derivatives/*`` generated by fMRIPrep; ``bids_dir`` itself when it is a derivative
    dataset holding ``*_desc-preproc_bold`` files.

    Raises
    ------
    FileNotFoundError
        Nothing that looks like fMRIPrep output was found (the message says how to point at it).
    """
    bids_dir = Path(bids_dir).absolute()
    if derivatives is not None:
        path = Path(derivatives).absolute()
        if not path.is_dir():
            raise FileNotFoundError(f"--derivatives folder not found: {path}.")
        if not _is_fmriprep(path):
            logger.warning("%s does not declare fMRIPrep in dataset_description.json.", path)
        return path
    if _is_fmriprep(bids_dir):
        return bids_dir
    deriv = bids_dir / "derivatives"
    candidates = [deriv / "fmriprep"] if (deriv / "fmriprep").is_dir() else []
    if deriv.is_dir():
        candidates += sorted(p for p in deriv.iterdir() if p.is_dir() and _is_fmriprep(p))
    if candidates:
        return candidates[0]
    desc = read_dataset_description(bids_dir)
    if desc.get("DatasetType") == "derivative" and next(
        bids_dir.glob("sub-*/**/func/*_desc-preproc_bold.nii*"), None
    ):
        return bids_dir
    raise FileNotFoundError(
        f"No fMRIPrep derivatives found in {bids_dir}: expected BIDS_DIR to be fMRIPrep's "
        "output or to contain derivatives/fmriprep. Point at it with --derivatives PATH."
    )


def list_participants(fmriprep_dir: str | os.PathLike) -> list[str]:
    """Participant labels (without ``sub-``) that have a folder in ``fmriprep_dir``."""
    return sorted(p.name[4:] for p in Path(fmriprep_dir).glob("sub-*") if p.is_dir())


def select_participants(
    fmriprep_dir: str | os.PathLike, labels: Sequence[str] | None = None
) -> list[str]:
    """Validate participant labels (with or without ``sub-``); ``None`` selects everyone.

    Raises
    ------
    ParticipantNotFoundError
        A label has no ``sub-<label>`` folder (the message lists the available ones).
    """
    available = list_participants(fmriprep_dir)
    if not labels:
        return available
    wanted = list(dict.fromkeys(strip_sub(lab) for lab in labels))
    missing = [lab for lab in wanted if lab not in available]
    if missing:
        raise ParticipantNotFoundError(
            f"Participant(s) {', '.join('sub-' + m for m in missing)} not found in "
            f"{fmriprep_dir}; available: {', '.join('sub-' + a for a in available) or 'none'}."
        )
    return wanted


def collect_runs(
    fmriprep_dir: str | os.PathLike,
    work_dir: str | os.PathLike,
    *,
    participants: Sequence[str] | None = None,
    sessions: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    spaces: Sequence[str] = ("MNI152NLin2009cAsym",),
    bids_filters: Mapping | None = None,
) -> list[RunRecord]:
    """List the preprocessed BOLD runs to process, with their companion files.

    Parameters
    ----------
    fmriprep_dir : path
        fMRIPrep derivatives (see :func:`find_fmriprep_dir`).
    work_dir : path
        Work folder; the pybids database goes in ``<work_dir>/pybids/``.
    participants : sequence of str, optional
        Labels with or without ``sub-``; default every participant.
    sessions, tasks : sequence of str, optional
        Keep only these sessions (with or without ``ses-``) / tasks.
    spaces : sequence of str, default=("MNI152NLin2009cAsym",)
        Output spaces, optionally qualified (``MNI152NLin2009cAsym:res-2``); without ``res-``
        every resolution present is used.
    bids_filters : mapping, optional
        fMRIPrep-style ``--bids-filter-file`` content; its ``"bold"`` entry (pybids entity
        names, ``null`` = entity absent, ``"*"`` = any value) narrows the query.

    Returns
    -------
    list of RunRecord
        Sorted by file name.

    Raises
    ------
    ParticipantNotFoundError, NoRunsFoundError
        Nothing to process (the app exits with code 18).
    FileNotFoundError
        A BOLD has no brain mask or no confounds file (the message names the file).
    ValueError
        A BOLD has no usable repetition time.
    """
    from bids.layout import BIDSLayout, BIDSLayoutIndexer, Query

    root = Path(fmriprep_dir).absolute()
    subjects = select_participants(root, participants)
    query = _filter_query(bids_filters, Query)
    if sessions:
        query["session"] = [s[4:] if s.startswith("ses-") else s for s in sessions]
    if tasks:
        query["task"] = [t[5:] if t.startswith("task-") else t for t in tasks]
    keep = "|".join(re.escape(s) for s in subjects)
    ignore = [
        re.compile(rf"^/sub-(?!({keep})(/|$))"),
        re.compile(r"^/(code|figures|logs|sourcedata|work|derivatives)(/|$)"),
        re.compile(r"/\."),
        re.compile(r"/anat/"),
        re.compile(r"^/sub-[^/]+/(figures|log)/"),
    ]
    layout = BIDSLayout(
        root,
        validate=False,
        config=["bids", "derivatives"],
        indexer=BIDSLayoutIndexer(validate=False, ignore=ignore, index_metadata=False),
    )
    _save_database(layout, Path(work_dir), root, subjects)
    bolds = set()
    for text in spaces:
        name, extra = parse_space(getattr(text, "name", text))
        res = getattr(text, "res", None) or extra.pop("res", None)
        # grayordinate runs: *_space-fsLR_den-91k_bold.dtseries.nii (no desc entity)
        kind = {"extension": ".dtseries.nii"} if name in CIFTI_SPACES else _VOLUME_QUERY
        files = layout.get(
            return_type="file",
            subject=subjects,
            datatype="func",
            suffix="bold",
            **kind,
            **{**query, "space": name},
        )
        for f in files:
            ents = _entities(Path(f).name)
            if res is not None and not _same_label(ents.get("res"), res):
                continue
            if any(not _same_label(ents.get(k), v) for k, v in extra.items()):
                continue
            bolds.add(Path(f))
    if not bolds:
        raise NoRunsFoundError(
            f"No preprocessed BOLD in {root} matched participants {subjects}, spaces "
            f"{list(spaces)}, sessions {sessions or 'any'}, tasks {tasks or 'any'} and filters "
            f"{dict(bids_filters or {}).get('bold', {})}; check the selection against the "
            "files in the func folders."
        )
    from bidsmask.bids._cifti_runs import cifti_record

    return [
        cifti_record(root, bold) if bold.name.endswith(".dtseries.nii") else _record(root, bold)
        for bold in sorted(bolds, key=lambda p: p.name)
    ]


def _save_database(layout, work_dir: Path, root: Path, subjects: Sequence[str]) -> Path:
    """Keep the pybids index in ``<work_dir>/pybids/<key>`` (for inspection and reuse).

    Indexing happens in memory (an on-disk SQLite database costs one synchronous commit per
    table, seconds on network file systems) and the result is then saved once; a lock file
    serialises processes that select the same participants.
    """
    db_dir = work_dir.absolute() / "pybids"
    db_dir.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha1(f"{root}\n{' '.join(subjects)}".encode()).hexdigest()[:16]
    with open(db_dir / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        shutil.rmtree(db_dir / key, ignore_errors=True)
        layout.save(db_dir / key, replace_connection=False)
    return db_dir / key


def _filter_query(bids_filters: Mapping | None, query_cls) -> dict:
    if not bids_filters:
        return {}
    bold = bids_filters.get("bold", {})
    if not isinstance(bold, Mapping):
        raise ValueError(
            f"The BIDS filter's 'bold' entry must be an object of entities, got {bold!r}."
        )
    out = {}
    for key, value in bold.items():
        if key in ("suffix", "datatype", "desc", "extension"):
            logger.warning("Ignoring BIDS filter entity %r: bidsmask reads desc-preproc BOLD.", key)
            continue
        if value is None:
            value = query_cls.NONE
        elif value == "*":
            value = query_cls.ANY
        out[key] = value
    return out


def _entities(name: str) -> dict[str, str]:
    stem = name.split(".")[0]
    return dict(_ENTITY.findall(stem.rsplit("_", 1)[0]))


def _same_label(found: str | None, wanted: str) -> bool:
    if found is None:
        return False
    if found.isdigit() and str(wanted).isdigit():
        return int(found) == int(wanted)
    return found == str(wanted)


def _record(root: Path, bold: Path) -> RunRecord:
    name = bold.name
    ext = ".nii.gz" if name.endswith(".nii.gz") else ".nii"
    stem = name[: -len(ext)]
    if not stem.endswith(_BOLD_TAIL):
        raise ValueError(f"{bold} is not named like an fMRIPrep '*_desc-preproc_bold' file.")
    base = stem[: -len(_BOLD_TAIL)]
    ents = {k: v for k, v in _entities(name).items() if k != "desc"}
    folder = bold.parent
    mask = folder / f"{base}_desc-brain_mask{ext}"
    if not mask.is_file():
        raise FileNotFoundError(
            f"No brain mask for {bold}: expected {mask.name} next to it. Check that the fMRIPrep "
            "output is complete."
        )
    confounds = _confounds(bold, ents)
    metadata = _read_json(folder / f"{stem}.json")
    segs = {}
    if ents.get("space") == "T1w":
        for seg in ("aparcaseg", "aseg"):
            segs[seg] = _first(
                [folder / f"{base}_desc-{seg}_dseg{ext}", *_anat(root, ents, f"desc-{seg}_dseg")]
            )
    space = f"space-{ents['space']}"
    gm_names = [f"{space}_res-{ents['res']}", space] if "res" in ents else [space]
    if ents["space"] == "T1w":
        gm_names.append("")
    gm = [p for n in gm_names for p in _anat(root, ents, f"{n}_label-GM_probseg".lstrip("_"))]
    return RunRecord(
        bold=bold,
        mask=mask,
        confounds=confounds,
        repetition_time=_repetition_time(bold, metadata),
        entities=ents,
        metadata=metadata,
        confounds_json=_first([confounds.with_suffix(".json")]),
        boldref=_first([folder / f"{base}_boldref{ext}"]),
        aparcaseg=segs.get("aparcaseg"),
        aseg=segs.get("aseg"),
        gm_probseg=_first(gm),
    )


def _confounds(bold: Path, ents: Mapping[str, str]) -> Path:
    """Return the run's confounds TSV beside ``bold`` (shared by volumes and grayordinates)."""
    folder = bold.parent
    source = "_".join(f"{k}-{v}" for k, v in ents.items() if k not in _SPACE_ENTITIES)
    confounds = _first(
        folder / f"{source}_desc-confounds_{s}.tsv" for s in ("timeseries", "regressors")
    )
    if confounds is None:
        raise FileNotFoundError(
            f"No confounds file for {bold}: expected {source}_desc-confounds_timeseries.tsv "
            f"(or the pre-20.2 _desc-confounds_regressors.tsv) in {folder}."
        )
    return confounds


def _anat(root: Path, ents: Mapping[str, str], tail: str) -> list[Path]:
    """Anatomical files ``sub-<s>[_ses-<s>][_acq-…_rec-…]_<tail>``, session folder first.

    A ``tail`` without ``space-`` (T1w space) excludes files that have a ``space-`` entity.
    """
    sub = f"sub-{ents['sub']}"
    folders = [root / sub / f"ses-{ents['ses']}" / "anat"] if "ses" in ents else []
    folders.append(root / sub / "anat")
    out = []
    for folder in folders:
        for ext in (".nii.gz", ".nii"):
            for path in sorted(folder.glob(f"{sub}_*{tail}{ext}")) + [
                folder / f"{sub}_{tail}{ext}"
            ]:
                if "space-" not in tail and "_space-" in path.name:
                    continue
                ses = _entities(path.name).get("ses")
                if ses is not None and ses != ents.get("ses"):
                    continue
                if path.name.endswith(f"_{tail}{ext}") and path not in out:
                    out.append(path)
    return out


def _first(paths) -> Path | None:
    return next((p for p in paths if p.is_file()), None)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(f"Invalid JSON sidecar {path}: {err}. Fix or remove it.") from err


def _repetition_time(bold: Path, metadata: Mapping) -> float:
    t_r = metadata.get("RepetitionTime")
    if isinstance(t_r, (int, float)) and t_r > 0:
        return float(t_r)
    header = nib.load(bold).header
    zooms = header.get_zooms()
    t_r = float(zooms[3]) if len(zooms) > 3 else 0.0
    unit = header.get_xyzt_units()[1]
    t_r = t_r / 1000.0 if unit == "msec" else t_r / 1e6 if unit == "usec" else t_r
    if t_r <= 0:
        raise ValueError(
            f"No RepetitionTime for {bold}: its JSON sidecar lacks 'RepetitionTime' and the NIfTI "
            "header has no time step. Add RepetitionTime (seconds) to the sidecar."
        )
    logger.warning(
        "%s: RepetitionTime missing from the JSON sidecar; using %.4g s from the NIfTI header.",
        bold.name,
        t_r,
    )
    return t_r
