"""Atomic output writers, ``dataset_description.json``, BIDS URIs and run completion markers.

Every file is written under a hidden temporary name in its final directory
(``.<name>.<random>.tmp<ext>``; pybids and the BIDS validator skip dot files) and moved into place
with :func:`os.replace`, which is atomic on POSIX file systems: a reader, a rerun or a killed
process never sees a half-written file, and a failure removes the temporary file.

Completion markers
    A run is complete when ``<output>/logs/runs/<run stem>.json`` exists and lists every expected
    output, each still present with the recorded size. The app writes the marker last, after all
    outputs of the run, so a run killed at any point has no marker and is redone on the next
    invocation. Keeping markers in the output (not the work directory) lets a rerun with a fresh
    work directory skip finished runs. Changing the requested outputs (another atlas, strategy…)
    changes the expected list, so those runs are redone.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from bidsmask._version import __version__
from bidsmask.bids.naming import atlas_filename

TYPE_CHECKING = False
if TYPE_CHECKING:
    from bidsmask.atlases import Atlas

logger = logging.getLogger(__name__)

BIDS_VERSION = "1.10.0"
CODE_URL = "https://github.com/bidsmask/bidsmask"
MARKER_DIR = Path("logs") / "runs"

_EXTENSIONS = (".nii.gz", ".tsv.gz", ".nii", ".tsv", ".json", ".txt", ".toml", ".html", ".log")


def _split_extension(name: str) -> tuple[str, str]:
    for ext in _EXTENSIONS:
        if name.endswith(ext):
            return name[: -len(ext)], ext
    stem, dot, ext = name.rpartition(".")
    return (stem, dot + ext) if dot else (name, "")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path that replaces ``path`` when the block ends without error.

    The temporary file lives in the same directory (created if needed) and keeps the extension,
    so writers that look at it (``.nii.gz`` -> gzip) behave as for the final name. On error the
    temporary file is removed and ``path`` is left as it was.

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stem, ext = _split_extension(path.name)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".tmp{ext}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_stale_temporaries(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Delete temporary files left by a killed :func:`atomic_path` writer of these outputs.

    A process killed with SIGKILL cannot clean up, so ``.<name>.<random>.tmp<ext>`` files may
    remain beside the outputs of an interrupted run. Call this for a run's expected outputs
    before redoing it (when no other process is writing that run).

    Returns
    -------
    list of pathlib.Path
        The files removed.
    """
    removed = []
    for item in paths:
        path = Path(item)
        stem, ext = _split_extension(path.name)
        for tmp in path.parent.glob(f".{stem}.*.tmp{ext}"):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write text atomically; return the final path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def to_jsonable(value: object) -> object:
    """Convert numpy scalars/arrays, paths, tuples and sets to JSON types; NaN/inf -> ``None``.

    Examples
    --------
    >>> to_jsonable({"a": np.float32(0.5), "b": [np.nan, 2], "c": Path("x")})
    {'a': 0.5, 'b': [None, 2], 'c': 'x'}
    """
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value) if isinstance(value, (set, frozenset)) else value
        return [to_jsonable(v) for v in items]
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def dumps_json(data: Mapping) -> str:
    """Serialise like every bidsmask JSON file: sorted keys, 2-space indent, final newline."""
    return json.dumps(to_jsonable(data), indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike, data: Mapping) -> Path:
    """Write a JSON file atomically (sorted keys, indented, NaN as ``null``)."""
    return write_text(path, dumps_json(data))


#: float32 values are written with 9 significant digits (``%.9g``), which read back exactly.
FLOAT32_FORMAT = "%.9g"


def write_tsv(path: str | os.PathLike, frame: pd.DataFrame, index: bool = False) -> Path:
    """Write a tab-separated table atomically, with ``n/a`` for missing values.

    A table of float32 or of float64 numbers (time series, matrices) is formatted a row at a
    time: float64 values in their shortest exact representation (as pandas writes them), float32
    values with :data:`FLOAT32_FORMAT`; both read back exactly in their dtype. Other tables are
    written by pandas.
    """
    text = _float_table(frame, index)
    with atomic_path(path) as tmp:
        if text is None:
            frame.to_csv(tmp, sep="\t", na_rep="n/a", index=index, lineterminator="\n")
        else:
            tmp.write_text(text, encoding="utf-8")
    return Path(path)


def _float_table(frame: pd.DataFrame, index: bool) -> str | None:
    """Format a table whose columns share one float dtype; None for any other table."""
    dtypes = set(frame.dtypes)
    if len(dtypes) != 1 or dtypes.pop() not in (np.float32, np.float64) or frame.shape[1] == 0:
        return None
    header = [str(name) for name in frame.columns]
    names = [str(name) for name in frame.index] if index else []
    if index:
        header.insert(0, "" if frame.index.name is None else str(frame.index.name))
    if any(set(text) & set('\t\n\r"') for text in header + names):
        return None  # needs quoting: leave it to pandas
    values = frame.to_numpy()
    if values.dtype == np.float64:
        rows = ["\t".join(map(repr, row)) for row in values.tolist()]
    else:
        row_format = "\t".join([FLOAT32_FORMAT] * values.shape[1])
        rows = [row_format % tuple(row) for row in values.tolist()]
    if np.isnan(values).any():  # NaN is written "nan"; numbers never contain it
        rows = [row.replace("nan", "n/a") for row in rows]
    if index:
        rows = [f"{name}\t{row}" for name, row in zip(names, rows, strict=True)]
    return "\n".join(["\t".join(header), *rows]) + "\n"


def write_nifti(path: str | os.PathLike, img: nib.Nifti1Image) -> Path:
    """Save a NIfTI image atomically (``.nii.gz`` is compressed)."""
    with atomic_path(path) as tmp:
        nib.save(img, tmp)
    return Path(path)


def bids_uri(path: str | os.PathLike, root: str | os.PathLike, dataset: str = "") -> str:
    """BIDS URI of ``path`` inside the dataset at ``root``.

    ``dataset`` is the name under which the dataset is registered in ``DatasetLinks``
    (``""`` = the current dataset).

    Examples
    --------
    >>> bids_uri("/d/fmriprep/sub-01/func/x_bold.nii.gz", "/d/fmriprep", "fmriprep")
    'bids:fmriprep:sub-01/func/x_bold.nii.gz'
    >>> bids_uri("/out/atlas-A_dseg.tsv", "/out")
    'bids::atlas-A_dseg.tsv'
    """
    rel = Path(os.path.abspath(path)).relative_to(os.path.abspath(root))
    return f"bids:{dataset}:{rel.as_posix()}"


def container_info(environ: Mapping[str, str] | None = None) -> dict | None:
    """Describe the container bidsmask runs in, for ``GeneratedBy.Container``.

    Type: ``singularity`` when Apptainer/Singularity runs it (its ``APPTAINER_CONTAINER`` /
    ``SINGULARITY_CONTAINER`` variables), else ``BIDSMASK_CONTAINER_TYPE`` (set in the image),
    else ``docker`` when ``/.dockerenv`` exists. Tag: ``BIDSMASK_CONTAINER_TAG`` (set in the
    image), else the Singularity image file name, else ``bidsmask/bidsmask:<version>``.
    Returns ``None`` outside a container.
    """
    env = os.environ if environ is None else environ
    image = env.get("APPTAINER_CONTAINER") or env.get("SINGULARITY_CONTAINER")
    kind = "singularity" if image else env.get("BIDSMASK_CONTAINER_TYPE")
    if kind is None and environ is None and Path("/.dockerenv").exists():
        kind = "docker"
    if kind is None:
        return None
    tag = env.get("BIDSMASK_CONTAINER_TAG") or (Path(image).name if image else None)
    return {"Type": kind, "Tag": tag or f"bidsmask/bidsmask:{__version__}"}


def dataset_description(
    source_datasets: Mapping[str, str | os.PathLike],
    *,
    source_versions: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict:
    """Content of the output's ``dataset_description.json``.

    Parameters
    ----------
    source_datasets : mapping
        Dataset name -> folder (e.g. ``{"fmriprep": "/data/derivatives/fmriprep"}``); each is
        registered in ``DatasetLinks`` (as a ``file://`` URI) so that ``Sources`` can use BIDS
        URIs such as ``bids:fmriprep:sub-01/func/...``, and listed in ``SourceDatasets``.
    source_versions : mapping, optional
        Dataset name -> version of the software that made it (e.g. the fMRIPrep version).
    environ : mapping, optional
        Environment used to detect the container (default ``os.environ``).

    Returns
    -------
    dict
    """
    versions = source_versions or {}
    generated = {"Name": "bidsmask", "Version": __version__, "CodeURL": CODE_URL}
    container = container_info(environ)
    if container is not None:
        generated["Container"] = container
    sources = []
    for name in source_datasets:
        entry = {"URL": f"bids:{name}:"}
        if versions.get(name):
            entry["Version"] = versions[name]
        sources.append(entry)
    return {
        "Name": "bidsmask outputs: brain masks, region time series and connectivity",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [generated],
        "SourceDatasets": sources,
        "DatasetLinks": {
            name: Path(os.path.abspath(folder)).as_uri() for name, folder in source_datasets.items()
        },
        "HowToAcknowledge": f"Please cite bidsmask ({CODE_URL}) and the atlases you used.",
    }


@contextlib.contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if needed) for the block.

    The lock file is opened for writing so that the lock also works where ``flock`` is emulated
    with POSIX record locks (NFS). Where the file system refuses locks altogether, a warning is
    logged and the block runs unlocked (callers only rely on the lock to avoid redundant work;
    atomic renames keep files whole either way).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError as err:
            logger.warning("Cannot lock %s (%s); continuing without the lock.", path, err)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(handle, fcntl.LOCK_UN)


def write_dataset_description(output_dir: str | os.PathLike, description: Mapping) -> Path:
    """Write ``dataset_description.json`` safely when several processes share ``output_dir``.

    Writers are serialised with an exclusive lock on ``logs/.dataset_description.lock``; a file
    with the same content is left untouched, another content is replaced atomically (a reader
    sees the old or the new file, never a mixture).
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "dataset_description.json"
    text = dumps_json(description)
    with file_lock(out / "logs" / ".dataset_description.lock"):
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            return path
        if path.is_file():
            logger.info("Updating %s (its content differs from this run's).", path)
        write_text(path, text)
    return path


def run_marker_path(output_dir: str | os.PathLike, run_id: str) -> Path:
    """Path of the completion marker of run ``run_id`` (see the module docstring)."""
    return Path(output_dir) / MARKER_DIR / f"{run_id}.json"


def mark_run_complete(
    output_dir: str | os.PathLike,
    run_id: str,
    outputs: Sequence[str | os.PathLike],
    info: Mapping | None = None,
) -> Path:
    """Record that every file in ``outputs`` of run ``run_id`` is written (call it last).

    Parameters
    ----------
    output_dir : path
        The output root.
    run_id : str
        The run's identifier, e.g. :func:`bidsmask.bids.naming.run_stem` of its entities.
    outputs : sequence of path
        Every file written for the run (absolute, or relative to ``output_dir``).
    info : mapping, optional
        Extra JSON-able fields stored in the marker (status, timing…).

    Returns
    -------
    pathlib.Path
        The marker file.
    """
    out = Path(output_dir)
    files = {}
    for item in outputs:
        full = out / item
        if not full.is_file():
            raise FileNotFoundError(f"Cannot mark run {run_id} complete: {full} does not exist.")
        files[_relative(full, out)] = full.stat().st_size
    return write_json(run_marker_path(out, run_id), {**(info or {}), "Outputs": files})


def is_run_complete(
    output_dir: str | os.PathLike, run_id: str, expected: Sequence[str | os.PathLike]
) -> bool:
    """Tell whether run ``run_id`` has a marker covering ``expected``, all present and intact."""
    out = Path(output_dir)
    marker = run_marker_path(out, run_id)
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8"))["Outputs"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    for item in expected:
        rel = _relative(out / item, out)
        size = recorded.get(rel)
        full = out / rel
        if size is None or not full.is_file() or full.stat().st_size != size:
            return False
    return True


def _relative(path: Path, root: Path) -> str:
    return Path(os.path.abspath(path)).relative_to(os.path.abspath(root)).as_posix()


def atlas_table_name(atlas: Atlas) -> str:
    """File name of an atlas's region table at the output root (the relmat ``NodeFiles``)."""
    ents = atlas.entities
    suffix = "probseg" if atlas.kind == "maps" else "dseg"
    return atlas_filename(ents["atlas"], suffix, ".tsv", seg=ents.get("seg"))


def write_atlas(output_dir: str | os.PathLike, atlas: Atlas) -> list[Path]:
    """Write the atlas used, its region table and description at the output root.

    Files (BEP038 style, ``atlas`` leading): ``atlas-<a>[_seg-<s>]_{dseg,probseg}.tsv`` (regions:
    ``index``, ``name``, plus ``x, y, z`` for spheres and ``network`` when known),
    ``atlas-<a>[_seg-<s>]_description.json`` and, for image atlases, a copy of the image as
    ``atlas-<a>[_seg-<s>]_space-<space>[_res-<r>]_{dseg,probseg}.nii.gz``. fMRIPrep's per-run
    ``aparcaseg``/``aseg`` images are not copied (they stay with fMRIPrep's outputs); their table
    is the shipped FreeSurfer lookup table, identical for every run. Files whose content is
    already there are left untouched, so concurrent participants can call this safely.

    Returns
    -------
    list of pathlib.Path
        The files of this atlas at the output root.
    """
    out = Path(output_dir)
    ents = atlas.entities
    suffix = "probseg" if atlas.kind == "maps" else "dseg"
    if atlas.spec.source == "native":
        frame = pd.read_csv(atlas.label_table, sep="\t")
    else:
        frame = atlas.label_frame()
    table_text = frame.to_csv(sep="\t", na_rep="n/a", index=False, lineterminator="\n")
    paths = [
        _write_if_changed(out / atlas_table_name(atlas), table_text),
        _write_if_changed(
            out / atlas_filename(ents["atlas"], "description", ".json", seg=ents.get("seg")),
            dumps_json(atlas.description()),
        ),
    ]
    if atlas.kind == "cifti":  # the dlabel, copied as it is
        target = out / atlas_filename(
            ents["atlas"], suffix, ".dlabel.nii", seg=ents.get("seg"), space=atlas.space
        )
        if not _same_copy(target, Path(atlas.image)):
            with atomic_path(target) as tmp:
                shutil.copyfile(atlas.image, tmp)
        return [*paths, target]
    if atlas.image is not None and atlas.spec.source != "native":
        target = out / atlas_filename(
            ents["atlas"], suffix, ".nii.gz", seg=ents.get("seg"), space=atlas.space, res=atlas.res
        )
        paths.append(target)
        if not _same_copy(target, Path(atlas.image)):
            if str(atlas.image).endswith(".nii.gz"):
                with atomic_path(target) as tmp:
                    shutil.copyfile(atlas.image, tmp)
            else:
                write_nifti(target, nib.load(atlas.image))
    return paths


def _same_copy(target: Path, source: Path) -> bool:
    """Tell whether ``target`` already holds the atlas image (same size; any size for ``.nii``).

    Comparing sizes rather than bytes keeps repeated calls cheap (one per run) for large
    probabilistic atlases; a ``.nii`` source is stored compressed, so only presence counts.
    """
    if not target.is_file():
        return False
    byte_copy = source.name.endswith((".nii.gz", ".dlabel.nii"))  # copied as they are
    return not byte_copy or target.stat().st_size == source.stat().st_size


def _write_if_changed(path: Path, text: str) -> Path:
    if not (path.is_file() and path.read_text(encoding="utf-8") == text):
        write_text(path, text)
    return path
