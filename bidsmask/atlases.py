"""Atlas specifications: TemplateFlow atlases, local files, coordinate sets, fMRIPrep segmentations.

An atlas is given as text (the ``--atlas`` option) and resolved for one output space:

``NAME:DESC`` (or ``NAME``)
    A TemplateFlow atlas, e.g. ``Schaefer2018:400Parcels7Networks`` (any ``NParcelsMNetworks``),
    ``DiFuMo:64dimensions`` (probabilistic maps), ``HOSPA:th25`` / ``HOCPA:th25`` (Harvard-Oxford
    subcortical / cortical, thresholded at 25 %). Files are looked up in ``TEMPLATEFLOW_HOME``
    with the TemplateFlow client's listing only: nothing is ever downloaded; a file that is
    missing (or an empty placeholder of TemplateFlow's skeleton) is a :class:`FileNotFoundError`
    that says how to fetch it. Resolution: the requested ``res`` if TemplateFlow has it, else 2,
    else 1, else the finest available (the engine resamples the atlas to the BOLD grid anyway).
A path to a NIfTI file
    A local deterministic (3D: ``labels``) or probabilistic (4D: ``maps``) atlas, assumed to be in
    the requested space (a ``space-``/``tpl-`` entity in its name that names another space is an
    error). A label table next to it (same name with ``.tsv``; columns ``index`` and ``name`` as in
    BIDS/TemplateFlow) gives the region names.
``Power2011``, ``Dosenbach2010`` or a path to a CSV of ``x,y,z`` (optional ``name``)
    Sphere centres in MNI millimetres (``spheres``); the shipped sets are in
    ``bidsmask/data/coords`` with their citations.
``aparcaseg``, ``aseg``
    fMRIPrep's own FreeSurfer segmentation of each run (``--space T1w`` only), named with the
    FreeSurfer lookup table (aseg structures and Desikan-Killiany ``ctx-lh-*``/``ctx-rh-*``).
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from bidsmask.bids import templateflow as tf
from bidsmask.bids.naming import sanitize_label

logger = logging.getLogger(__name__)

DATA_DIR = Path(__file__).parent / "data" / "coords"
COORDINATE_SETS = {"power2011": "power2011.csv", "dosenbach2010": "dosenbach2010.csv"}
NATIVE_ATLASES = ("aparcaseg", "aseg")
#: Spaces that are not TemplateFlow templates (subject-specific).
NATIVE_SPACES = frozenset({"T1w", "T2w", "anat", "func", "boldref", "fsnative"})
DEFAULT_TEMPLATES = ("MNI152NLin2009cAsym", "MNI152NLin6Asym")
#: TemplateFlow atlases whose label table has no ``desc`` entity (one table for all thresholds).
_TSV_WITHOUT_DESC = frozenset({"HOSPA", "HOCPA", "HOCPAL"})
_PROBSEG_ATLASES = frozenset({"DiFuMo"})

REFERENCES = {
    "Schaefer2018": "Schaefer A, et al. Local-global parcellation of the human cerebral cortex "
    "from intrinsic functional connectivity MRI. Cereb Cortex 28(9):3095-3114, 2018. "
    "doi:10.1093/cercor/bhx179",
    "DiFuMo": "Dadi K, et al. Fine-grain atlases of functional modes for fMRI analysis. "
    "NeuroImage 221:117126, 2020. doi:10.1016/j.neuroimage.2020.117126",
    "HO": "Harvard-Oxford cortical and subcortical structural atlases (FSL); Makris N, et al. "
    "Schizophr Res 83(2-3):155-171, 2006; Desikan RS, et al. NeuroImage 31(3):968-980, 2006. "
    "doi:10.1016/j.neuroimage.2006.01.021",
    "Power2011": "Power JD, et al. Functional network organization of the human brain. "
    "Neuron 72(4):665-678, 2011. doi:10.1016/j.neuron.2011.09.006",
    "Dosenbach2010": "Dosenbach NUF, et al. Prediction of individual brain maturity using fMRI. "
    "Science 329(5997):1358-1361, 2010. doi:10.1126/science.1194144",
    "FreeSurfer": "Fischl B. FreeSurfer. NeuroImage 62(2):774-781, 2012. "
    "doi:10.1016/j.neuroimage.2012.01.021; Desikan RS, et al. NeuroImage 31(3):968-980, 2006.",
}


@dataclass(frozen=True)
class AtlasSpec:
    """A parsed ``--atlas`` value.

    Attributes
    ----------
    text : str
        The value as typed.
    source : {"templateflow", "file", "coordinates", "native"}
        Where the atlas comes from.
    name : str
        The ``atlas-`` entity value (alphanumeric).
    desc : str or None
        The TemplateFlow ``desc`` (written as the ``seg-`` entity), if any.
    path : pathlib.Path or None
        The local NIfTI or CSV file, or the shipped coordinate table.
    """

    text: str
    source: str
    name: str
    desc: str | None = None
    path: Path | None = None


@dataclass(frozen=True, eq=False)
class Atlas:
    """An atlas resolved for one space, ready for the extraction engine.

    Attributes
    ----------
    spec : AtlasSpec
        What was asked for.
    kind : {"labels", "maps", "spheres", "cifti"}
        Deterministic labels, probabilistic maps (one volume per region), sphere centres, or
        grayordinate labels (a ``.dlabel.nii``, :mod:`bidsmask.app.cifti_atlases`).
    region_ids : tuple of int
        Label value (labels), 1-based volume number (maps) or 1-based row (spheres) per region.
    region_names : tuple of str
        Unique region names, in ``region_ids`` order (the time series header).
    image : pathlib.Path or None
        The dseg/probseg image (None for spheres).
    coords : numpy.ndarray or None
        ``(n_regions, 3)`` sphere centres in mm (spheres only).
    networks : tuple of str or None
        Network of each region when the atlas defines one.
    space, res, template : str or None
        The space and resolution resolved; ``template`` is the TemplateFlow template used.
    label_table : pathlib.Path or None
        The label table the names came from.
    """

    spec: AtlasSpec
    kind: str
    region_ids: tuple[int, ...]
    region_names: tuple[str, ...]
    image: Path | None = None
    coords: np.ndarray | None = None
    networks: tuple[str, ...] | None = None
    space: str | None = None
    res: str | None = None
    template: str | None = None
    label_table: Path | None = None
    references: tuple[str, ...] = field(default=())

    @property
    def entities(self) -> dict[str, str]:
        """The ``atlas`` (and ``seg``) entities of outputs made with this atlas."""
        ents = {"atlas": self.spec.name}
        if self.spec.desc:
            ents["seg"] = sanitize_label(self.spec.desc)
        return ents

    def label_frame(self) -> pd.DataFrame:
        """Region table: ``index``, ``name`` (+ ``x, y, z`` for spheres, ``network`` if known)."""
        frame = pd.DataFrame({"index": list(self.region_ids), "name": list(self.region_names)})
        if self.coords is not None:
            frame[["x", "y", "z"]] = self.coords
        if self.networks is not None:
            frame["network"] = list(self.networks)
        return frame

    def description(self) -> dict:
        """Content of ``atlas-<label>_description.json`` (BEP038 draft fields)."""
        desc = {
            "Name": self.spec.name if not self.spec.desc else f"{self.spec.name} {self.spec.desc}",
            "AtlasType": {
                "labels": "dseg",
                "cifti": "dseg",
                "maps": "probseg",
                "spheres": "coordinates",
            }[self.kind],
            "NumberOfRegions": len(self.region_ids),
            "SpatialReference": self.template or self.space,
            "Source": self.spec.text,
            "ReferencesAndLinks": list(self.references),
        }
        if self.res is not None:
            desc["Resolution"] = self.res
        if self.kind == "spheres":
            desc["CoordinateUnits"] = "mm (MNI)"
        return desc


def parse_atlas_spec(text: str) -> AtlasSpec:
    """Classify an ``--atlas`` value (see the module docstring).

    Examples
    --------
    >>> spec = parse_atlas_spec("Schaefer2018:400Parcels7Networks")
    >>> spec.source, spec.name, spec.desc
    ('templateflow', 'Schaefer2018', '400Parcels7Networks')
    >>> parse_atlas_spec("power2011").name
    'Power2011'
    """
    key = text.strip()
    if key.lower() in COORDINATE_SETS:
        path = DATA_DIR / COORDINATE_SETS[key.lower()]
        return AtlasSpec(text, "coordinates", path.stem.capitalize(), path=path)
    if key.lower() in NATIVE_ATLASES:
        return AtlasSpec(text, "native", key.lower())
    lower = key.lower()
    if lower.endswith((".nii", ".nii.gz", ".csv", ".tsv", ".txt")) or os.sep in key:
        path = Path(key).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"Atlas file not found: {path}. Give an existing file.")
        ents = dict(re.findall(r"(?:^|_)([a-z]+)-([A-Za-z0-9]+)", path.name.split(".")[0]))
        stem = path.name.split(".")[0]
        name = sanitize_label(ents.get("atlas", stem))
        if lower.endswith(".nii") or lower.endswith(".nii.gz"):
            return AtlasSpec(text, "file", name, ents.get("seg") or ents.get("desc"), path)
        return AtlasSpec(text, "coordinates", name, path=path)
    name, _, desc = key.partition(":")
    if not re.fullmatch(r"[A-Za-z0-9]+", name) or (
        desc and not re.fullmatch(r"[A-Za-z0-9]+", desc)
    ):
        raise ValueError(
            f"Unknown atlas {text!r}: use a TemplateFlow atlas 'NAME:DESC' "
            "(e.g. Schaefer2018:400Parcels7Networks), a NIfTI or CSV path, "
            f"{', '.join(s.capitalize() for s in COORDINATE_SETS)}, or aparcaseg/aseg."
        )
    return AtlasSpec(text, "templateflow", name, desc or None)


def load_atlas(
    spec: str | AtlasSpec,
    space: str,
    res: str | None = None,
    *,
    templateflow_home: str | os.PathLike | None = None,
    native_dseg: str | os.PathLike | None = None,
) -> Atlas:
    """Resolve an atlas for a space.

    Parameters
    ----------
    spec : str or AtlasSpec
        The ``--atlas`` value or its parsed form.
    space : str
        The output space (``MNI152NLin2009cAsym``, ``T1w`` …).
    res : str, optional
        The ``res-`` label of the runs (TemplateFlow resolution index).
    templateflow_home : path, optional
        TemplateFlow folder; default ``$TEMPLATEFLOW_HOME``, else TemplateFlow's default cache.
    native_dseg : path, optional
        The run's fMRIPrep ``desc-aparcaseg``/``desc-aseg`` dseg (native atlases only).

    Returns
    -------
    Atlas

    Raises
    ------
    ValueError
        The atlas does not exist in this kind of space, or its files are inconsistent.
    FileNotFoundError
        A file is missing (with how to get it).
    """
    spec = parse_atlas_spec(spec) if isinstance(spec, str) else spec
    if spec.source == "native":
        return _load_native(spec, space, native_dseg)
    if spec.source == "coordinates":
        if space in NATIVE_SPACES:
            raise ValueError(
                f"Atlas {spec.text!r} is a set of MNI coordinates and cannot be used in space "
                f"{space!r}: use a template space (e.g. MNI152NLin2009cAsym) or, in T1w space, "
                "aparcaseg/aseg or a local atlas."
            )
        coords, names, networks = load_coordinates(spec.path)
        return Atlas(
            spec,
            "spheres",
            tuple(range(1, len(names) + 1)),
            names,
            coords=coords,
            networks=networks,
            space=space,
            references=tuple(r for k, r in REFERENCES.items() if k == spec.name),
        )
    if spec.source == "file":
        return _load_file(spec, space, res)
    return _load_templateflow(spec, space, res, templateflow_home)


def read_label_table(path: str | os.PathLike) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """Read region ids and names from a BIDS/TemplateFlow label table.

    Uses the ``index`` and ``name`` columns when present; otherwise the first column holds the
    ids and the first column whose header contains "name" (else the second column) the names
    (TemplateFlow's DiFuMo tables: ``Component``, ``Difumo_names``). Row 0 (background) is
    dropped.

    Returns
    -------
    ids : tuple of int
    names : tuple of str
    """
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    cols = list(table.columns)
    named = [c for c in cols if "name" in c.lower()]
    if len(cols) >= 2:
        ids_col = "index" if "index" in cols else cols[0]
        names_col = "name" if "name" in cols else (named or [cols[1]])[0]
    else:
        raise ValueError(
            f"Label table {path} needs 'index' and 'name' columns (tab-separated); found {cols}."
        )
    try:
        ids = [int(float(v)) for v in table[ids_col]]
    except ValueError as err:
        raise ValueError(f"Label table {path}: column {ids_col!r} must hold integers.") from err
    pairs = [(i, n.strip()) for i, n in zip(ids, table[names_col], strict=True) if i != 0]
    return tuple(i for i, _ in pairs), _unique_names([n for _, n in pairs])


def load_coordinates(
    path: str | os.PathLike,
) -> tuple[np.ndarray, tuple[str, ...], tuple[str, ...] | None]:
    """Read sphere centres from a CSV/TSV of ``x, y, z`` (optional ``name``, ``network``).

    A file without a header row is read as ``x, y, z[, name]``. Lines starting with ``#`` are
    comments.

    Returns
    -------
    coords : numpy.ndarray
        ``(n, 3)`` float64 coordinates in mm.
    names : tuple of str
        Unique names (``roi001`` … when none are given; shipped sets: ``roi<index>_<name>``).
    networks : tuple of str or None
    """
    path = Path(path)
    sep = "\t" if path.suffix == ".tsv" else ","
    table = pd.read_csv(path, sep=sep, comment="#", header=None, dtype=str)
    first = [str(v).strip().lower() for v in table.iloc[0]]
    if {"x", "y", "z"} <= set(first):
        table = table.iloc[1:].set_axis(first, axis=1)
    else:
        table = table.set_axis(["x", "y", "z", "name", "network"][: table.shape[1]], axis=1)
    try:
        coords = table[["x", "y", "z"]].astype(float).to_numpy()
    except (KeyError, ValueError) as err:
        raise ValueError(
            f"Coordinate file {path} must have numeric x, y, z columns (mm); {err}."
        ) from err
    n = len(coords)
    index = table["index"].astype(int).tolist() if "index" in table else list(range(1, n + 1))
    if "name" in table and "index" in table:
        names = [
            f"roi{i:03d}_{nm}" if not nm.startswith("roi") else nm
            for i, nm in zip(index, table["name"].str.strip(), strict=True)
        ]
    elif "name" in table:
        names = table["name"].str.strip().tolist()
    else:
        names = [f"roi{i:03d}" for i in index]
    names = [re.sub(r"\s+", "-", nm) for nm in names]
    networks = tuple(table["network"].str.strip()) if "network" in table else None
    return coords, _unique_names(names), networks


def freesurfer_names(ids: Sequence[int]) -> tuple[str, ...]:
    """FreeSurfer lookup-table names of label ids (``label<id>`` for ids not shipped).

    Examples
    --------
    >>> freesurfer_names([17, 1028, 2035, 9999])
    ('Left-Hippocampus', 'ctx-lh-superiorfrontal', 'ctx-rh-insula', 'label9999')
    """
    lut = _freesurfer_lut()
    return tuple(lut.get(int(i), f"label{int(i)}") for i in ids)


def templateflow_queries(
    atlases: Sequence[str],
    templates: Sequence[str] = DEFAULT_TEMPLATES,
    resolutions: Sequence[int] = (1, 2),
) -> list[dict]:
    """List the TemplateFlow files bidsmask needs, as keyword arguments of ``templateflow.api.get``.

    For each template: the brain mask and the ``label-GM`` probseg at each resolution; for each
    TemplateFlow atlas in ``atlases`` (other kinds are skipped): its image at each resolution
    and its label table. Queries for files TemplateFlow does not have match nothing.

    Examples
    --------
    >>> qs = templateflow_queries(["HOSPA:th25", "Power2011"], ["MNI152NLin6Asym"], [2])
    >>> [q.get("atlas") for q in qs]
    [None, None, 'HOSPA', 'HOSPA']
    >>> qs[-1] == {"template": "MNI152NLin6Asym", "atlas": "HOSPA", "desc": None,
    ...            "suffix": "dseg", "extension": ".tsv"}
    True
    """
    queries = []
    specs = [parse_atlas_spec(a) for a in atlases]
    nii = {"extension": ".nii.gz"}
    for tpl in templates:
        for r in resolutions:
            queries.append(dict(template=tpl, resolution=r, desc="brain", suffix="mask", **nii))
            queries.append(dict(template=tpl, resolution=r, label="GM", suffix="probseg", **nii))
        for spec in specs:
            if spec.source != "templateflow":
                continue
            suffix = "probseg" if spec.name in _PROBSEG_ATLASES else "dseg"
            atlas = {"template": tpl, "atlas": spec.name}
            for r in resolutions:
                queries.append(dict(atlas, resolution=r, desc=spec.desc, suffix=suffix, **nii))
            tsv_desc = None if spec.name in _TSV_WITHOUT_DESC else spec.desc
            queries.append(dict(atlas, desc=tsv_desc, suffix=suffix, extension=".tsv"))
    return queries


# --------------------------------------------------------------------------------------------
def _load_native(spec: AtlasSpec, space: str, native_dseg) -> Atlas:
    if space != "T1w":
        raise ValueError(
            f"Atlas {spec.text!r} is fMRIPrep's per-subject FreeSurfer segmentation and exists "
            f"only in space 'T1w', not {space!r}: add --space T1w or choose another atlas."
        )
    if native_dseg is None:
        raise FileNotFoundError(
            f"No fMRIPrep desc-{spec.name}_dseg image was found for this run; fMRIPrep writes it "
            "when FreeSurfer reconstruction is enabled (do not use --fs-no-reconall)."
        )
    path = Path(native_dseg)
    data = np.asarray(nib.load(path).dataobj)
    ids = tuple(int(v) for v in np.unique(data) if v != 0)
    return Atlas(
        spec,
        "labels",
        ids,
        _unique_names(freesurfer_names(ids)),
        image=path,
        space=space,
        label_table=DATA_DIR / "freesurfer_lut.tsv",
        references=(REFERENCES["FreeSurfer"],),
    )


def _load_file(spec: AtlasSpec, space: str, res: str | None) -> Atlas:
    path = spec.path
    ents = dict(re.findall(r"(?:^|_)([a-z]+)-([A-Za-z0-9]+)", path.name.split(".")[0]))
    declared = ents.get("space") or ents.get("tpl")
    if declared is not None and declared != space:
        raise ValueError(
            f"Atlas file {path} is in space {declared!r} (from its name), not the requested "
            f"space {space!r}: give an atlas resampled to {space!r} or request --space {declared}."
        )
    img = nib.load(path)
    table = _sibling_table(path)
    kind = "maps" if len(img.shape) == 4 and img.shape[3] > 1 else "labels"
    ids, names = _ids_and_names(path, img, kind, table)
    if "res" in ents:
        res = ents["res"].lstrip("0") or "0"
    return Atlas(spec, kind, ids, names, image=path, space=space, res=res, label_table=table)


def _load_templateflow(spec: AtlasSpec, space: str, res: str | None, home) -> Atlas:
    if space in NATIVE_SPACES:
        raise ValueError(
            f"TemplateFlow atlas {spec.text!r} exists in template spaces only, not in space "
            f"{space!r}: use a template space such as MNI152NLin2009cAsym, or, in T1w space, "
            "aparcaseg/aseg or a local atlas file in T1w space."
        )
    query = {"atlas": spec.name, "desc": spec.desc, "extension": ".nii.gz"}
    hint = tf.fetch_command(
        space,
        f"bidsmask-fetch-templates --atlas {spec.text}",
        atlas=spec.name,
        desc=spec.desc,
        resolution=int(res) if res and str(res).isdigit() else None,
    )
    suffixes = ("probseg", "dseg") if spec.name in _PROBSEG_ATLASES else ("dseg", "probseg")
    try:
        found = [(sfx, tf.list_files(space, home=home, suffix=sfx, **query)) for sfx in suffixes]
    except FileNotFoundError as err:
        raise FileNotFoundError(f"Atlas {spec.text!r}: {err} {hint}") from err
    suffix, files = next(((sfx, f) for sfx, f in found if f), (None, []))
    if not files:
        present = tf.list_files(space, home=home, suffix=["dseg", "probseg"], extension=".nii.gz")
        local = sorted(
            {p.name.split("atlas-")[1].split("_")[0] for p in present if "atlas-" in p.name}
        )
        raise FileNotFoundError(
            f"Atlas {spec.text!r} was not found for template {space!r} in TEMPLATEFLOW_HOME "
            f"({tf.templateflow_home(home)}); atlases present there for {space}: "
            f"{local or 'none'}. Either TemplateFlow has no such atlas in {space}, or it was not "
            f"fetched. {hint}"
        )
    image = tf.pick_resolution(files, res)
    if tf.is_placeholder(image):
        raise FileNotFoundError(
            f"TemplateFlow file {image} is an empty placeholder (not downloaded). {hint}"
        )
    table = None
    for tsv_desc in (None,) if spec.name in _TSV_WITHOUT_DESC else (spec.desc, None):
        tables = tf.list_files(
            space, home=home, atlas=spec.name, desc=tsv_desc, suffix=suffix, extension=".tsv"
        )
        table = next((t for t in tables if not tf.is_placeholder(t)), None)
        if table is not None:
            break
    kind = "maps" if suffix == "probseg" else "labels"
    ids, names = _ids_and_names(image, nib.load(image), kind, table)
    tf_res = re.search(r"_res-0*(\d+)", image.name)
    refs = tuple(r for k, r in REFERENCES.items() if spec.name.startswith(k))
    return Atlas(
        spec,
        kind,
        ids,
        names,
        image=image,
        space=space,
        template=space,
        res=tf_res.group(1) if tf_res else None,
        label_table=table,
        references=refs,
    )


def _ids_and_names(path: Path, img, kind: str, table: Path | None):
    if kind == "maps":
        n = img.shape[3] if len(img.shape) == 4 else 1
        if table is None:
            return tuple(range(1, n + 1)), tuple(f"component{i:03d}" for i in range(1, n + 1))
        ids, names = read_label_table(table)
        if len(names) != n:
            raise ValueError(
                f"Label table {table} has {len(names)} regions but {path} has {n} maps; "
                "give a table with one row per map."
            )
        return tuple(range(1, n + 1)), names
    if table is not None:
        return read_label_table(table)
    data = np.asarray(img.dataobj)
    ids = tuple(int(v) for v in np.unique(data) if v != 0)
    return ids, tuple(f"region{i}" for i in ids)


def _sibling_table(path: Path) -> Path | None:
    stem = path.name[: -len(".nii.gz")] if path.name.endswith(".nii.gz") else path.stem
    table = path.with_name(stem + ".tsv")
    return table if table.is_file() else None


@functools.lru_cache(maxsize=1)
def _freesurfer_lut() -> dict[int, str]:
    table = pd.read_csv(DATA_DIR / "freesurfer_lut.tsv", sep="\t")
    return dict(zip(table["index"].astype(int), table["name"], strict=True))


def _unique_names(names: Sequence[str]) -> tuple[str, ...]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        name = name or "region"
        count = seen.get(name, 0)
        seen[name] = count + 1
        out.append(name if count == 0 else f"{name}_{count + 1}")
    return tuple(out)
