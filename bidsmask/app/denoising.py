"""Group level: how well each denoising strategy removed motion, on this dataset.

For each task × space × atlas × strategy, over the runs of all participants that finished that
strategy (or, with ``--combine-runs``, the combined runs of each participant × session × task —
one row each instead of one per run), with the maths of :mod:`bidsmask.quality`:

- **QC-FC**: per edge, the correlation across runs between its Pearson correlation
  (``meas-PearsonCorrelation``; the measure the literature uses) and the run's mean framewise
  displacement over all its volumes (combined runs: the volume-weighted mean of their runs'
  means). A partial correlation controlling for ``age`` and ``sex`` when the dataset's
  ``participants.tsv`` (``BIDS_DIR``, else the fMRIPrep folder) has them for every participant
  and they vary (``sex``/``gender`` as indicators of its levels). Written as
  ``task-…_space-…_atlas-…_meas-QCFC_desc-<strategy>_relmat.tsv`` (+ ``.json``);
- summaries: median |QC-FC|, % of edges with p < 0.05 uncorrected and after Benjamini–Hochberg;
- **distance dependence**: Spearman correlation between QC-FC and the distance between region
  centroids, from the atlas files at the output root (labels: voxel centroid; maps: weighted
  centroid; spheres: the centre). Not in native spaces (``T1w`` …), where every participant's
  regions sit elsewhere, nor for CIFTI grayordinates (surface coordinates are not read) or an
  atlas without an image or coordinates at the root;
- **temporal degrees of freedom lost** per run (:func:`bidsmask.quality.tdof_lost`, from the
  time series sidecars: confound columns, censored volumes, filter), averaged per strategy
  (a combined row counts the sum over its runs).

With fewer than 3 participants or 3 rows, a measure is ``n/a`` and ``reason`` says why.
One row per task × space × atlas × strategy in ``desc-denoising_qc.tsv`` (+ ``.json``).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from bidsmask import quality
from bidsmask.app.combine import COMBINED_DIR
from bidsmask.app.config import Config
from bidsmask.app.progress import DONE
from bidsmask.atlases import NATIVE_SPACES
from bidsmask.bids import naming, outputs, writer

logger = logging.getLogger(__name__)

SOURCE_MEASURE = "PearsonCorrelation"
REFERENCES = [
    "Ciric R et al. (2017). Benchmarking of participant-level confound regression strategies for "
    "the control of motion artifact in studies of functional connectivity. NeuroImage 154:174. "
    "doi:10.1016/j.neuroimage.2017.03.020",
    "Parkes L et al. (2018). An evaluation of the efficacy, reliability, and sensitivity of "
    "motion correction strategies for resting-state functional MRI. NeuroImage 171:415. "
    "doi:10.1016/j.neuroimage.2017.12.073",
    "Wang HT et al. (2024). Benchmarking fMRI denoising strategies for functional connectomics. "
    "PLOS Computational Biology 20:e1011942. doi:10.1371/journal.pcbi.1011942",
    "Power JD et al. (2012). Spurious but systematic correlations in functional connectivity MRI "
    "networks arise from subject motion. NeuroImage 59:2142. "
    "doi:10.1016/j.neuroimage.2011.10.018",
    "Benjamini Y, Hochberg Y (1995). Controlling the false discovery rate: a practical and "
    "powerful approach to multiple testing. J R Stat Soc B 57:289.",
]
COLUMNS = {
    "task": "Task of the runs: rest and task runs are never pooled.",
    "space": "Output space (with ':res-<r>' when fMRIPrep gave one).",
    "atlas": "Atlas (and segmentation), as in the file names.",
    "strategy": "Denoising strategy.",
    "unit": "What one observation is: 'run', or 'combined' (the runs of a participant × session "
    "× task joined with --combine-runs).",
    "n_participants": "Participants with at least one observation.",
    "n_observations": "Observations (runs or combined runs) that finished the strategy.",
    "mean_fd_mean": "Mean over observations of the mean framewise displacement (mm).",
    "mean_fd_min": "Smallest mean framewise displacement of an observation (mm).",
    "mean_fd_max": "Largest mean framewise displacement of an observation (mm).",
    "covariates": "Covariates regressed out before QC-FC (from participants.tsv), or n/a.",
    "n_edges": "Edges with a QC-FC value (present in at least 3 observations).",
    "median_abs_qcfc": "Median over edges of |QC-FC|; lower is better.",
    "percent_edges_p05": "Percentage of edges whose QC-FC has p < 0.05, uncorrected.",
    "percent_edges_fdr05": "Percentage of edges whose QC-FC has p < 0.05 after "
    "Benjamini-Hochberg FDR correction over the edges.",
    "distance_rho": "Spearman correlation between QC-FC and the Euclidean distance between the "
    "region centroids (distance dependence); closer to 0 is better.",
    "distance_p": "Two-sided p-value of distance_rho.",
    "tdof_lost_mean": "Mean over observations of the temporal degrees of freedom lost: "
    "regressors + censored volumes + volumes removed by filtering.",
    "tdof_regressors_mean": "Mean number of confound regressors.",
    "tdof_censored_mean": "Mean number of volumes censored (dummy scans, non-steady-state, "
    "scrubbed).",
    "tdof_filtered_mean": "Mean number of volumes' worth of degrees of freedom removed by the "
    "high/low-pass filter: the fraction of [0, Nyquist] outside the pass band × kept volumes.",
    "qcfc_file": "The QC-FC matrix, relative to OUTPUT_DIR (n/a when not computed).",
    "reason": "Why a measure is n/a, and why a covariate of participants.tsv was not used.",
}
METHOD = (
    "QC-FC: for each edge, the Pearson correlation across observations between the edge's "
    "Pearson correlation and the observation's mean framewise displacement (all volumes); with "
    "covariates, both are first residualised on an intercept and the covariates, and the "
    "p-value uses n - 2 - k degrees of freedom (k covariate columns). An edge missing in some "
    "observations (region below the minimum coverage) is computed over those that have it; "
    "edges in fewer than 3 observations are n/a. Distance dependence: Spearman correlation "
    "between QC-FC and the Euclidean distance (mm) between region centroids. tDOF lost: "
    "confound regressors + censored volumes + the fraction of [0, Nyquist] removed by the "
    "filter times the kept volumes (an ideal-filter estimate; detrending, common to every "
    "strategy, is not counted). Caveats: QC-FC needs many participants with a range of motion "
    "(the papers used 100+); with few participants or little motion its values are noisy, and "
    "several runs of one participant are not independent observations."
)


def denoising_quality(config: Config, records: list[dict]) -> list[Path]:
    """Write the QC-FC matrices and ``desc-denoising_qc.tsv``; return the files written.

    Parameters
    ----------
    config : Config
        The configuration (``output_dir``, ``bids_dir``, ``fmriprep_dir``,
        ``participant_label``).
    records : list of dict
        The participant level's run records (:func:`bidsmask.app.group.read_run_records`).

    Returns
    -------
    list of Path
        Absolute paths of the files written.
    """
    out = config.output_dir
    observations = collect_observations(out, records, config.participant_label)
    if not observations:
        logger.info(
            "Denoising quality not computed: no Pearson correlation matrix (it needs "
            "--connectivity correlation)."
        )
        return []
    participants = read_participants(config)
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for obs in observations:
        groups[(obs["group_name"], obs["strategy"])].append(obs)
    rows, written = [], []
    centroids = CentroidCache(out)
    for (name, strategy), members in sorted(groups.items()):
        row, files = _strategy_row(out, name, strategy, members, participants, centroids)
        rows.append(row)
        written += files
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    writer.write_tsv(out / "desc-denoising_qc.tsv", table)
    sidecar = {
        **{k: {"Description": v} for k, v in COLUMNS.items()},
        "Method": METHOD,
        "ParticipantsFile": participants.get("file"),
        "References": REFERENCES,
    }
    writer.write_json(out / "desc-denoising_qc.json", sidecar)
    logger.info("Denoising quality: %d task × space × atlas × strategy row(s).", len(rows))
    return [*written, out / "desc-denoising_qc.tsv", out / "desc-denoising_qc.json"]


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def run_tdof(output_dir: Path, info: dict) -> dict[str, float] | None:
    """Return the tDOF one run lost to a strategy, from its first time series sidecar, or None."""
    for rel in info.get("Outputs", []):
        if outputs.parse_output(rel)[1] == "timeseries" and rel.endswith(".tsv"):
            side = _read_json(Path(output_dir) / outputs.sidecar_path(rel))
            clean = side.get("CleaningParameters") or {}
            if "VolumesKept" not in side or not clean.get("t_r"):
                return None
            return quality.tdof_lost(
                len(side.get("ConfoundColumns", [])),
                side.get("VolumesCensored", 0),
                side["VolumesKept"],
                clean["t_r"],
                clean.get("high_pass"),
                clean.get("low_pass"),
            )
    return None


def collect_observations(
    output_dir: Path, records: list[dict], participants: tuple[str, ...] = ()
) -> list[dict]:
    """One entry per run (or combined runs) × strategy × atlas with a Pearson matrix.

    Each entry: ``group_name`` (the QC-FC file's stem), ``strategy``, ``participant``, ``space``,
    ``relmat`` (absolute path), ``mean_fd``, ``tdof`` (dict or None), ``unit``.
    """
    out = Path(output_dir)
    by_run = {record["Run"]: record for record in records}
    combined, covered = [], set()
    for path in sorted((out / COMBINED_DIR).glob("sub-*.json")):
        record = _read_json(path)
        ents = record.get("Entities") or {}
        if not ents or (participants and ents.get("sub") not in participants):
            continue
        params = record.get("RunParameters") or {}
        if any(by_run.get(r, {}).get("Parameters") != params.get(r) for r in record["Runs"]):
            logger.warning("Ignoring %s: its runs were redone since; using the runs.", path.name)
            continue
        for strategy, info in (record.get("Strategies") or {}).items():
            covered.update((run, strategy) for run in [*info["Runs"], *info["RunsLeftOut"]])
            runs = [by_run[r] for r in info["Runs"] if r in by_run]
            if info.get("Status") != DONE or len(runs) != len(info["Runs"]):
                continue
            run_infos = [r["Strategies"][strategy] for r in runs]
            tdofs = [run_tdof(out, i) for i in run_infos]
            fds = [r.get("MeanFramewiseDisplacement") for r in runs]
            weights = [r.get("VolumesTotal") or 0 for r in runs]
            fd = None if None in fds else float(np.average(fds, weights=weights))
            tdof = None if None in tdofs else {k: sum(t[k] for t in tdofs) for k in tdofs[0]}
            combined += _observations(ents, strategy, info, fd, tdof, "combined", out)
    observations = []
    for record in records:
        for strategy, info in (record.get("Strategies") or {}).items():
            if info.get("Status") != DONE or (record["Run"], strategy) in covered:
                continue
            fd = record.get("MeanFramewiseDisplacement")
            tdof = run_tdof(out, info)
            observations += _observations(record["Entities"], strategy, info, fd, tdof, "run", out)
    return observations + combined


def _observations(ents, strategy, info, fd, tdof, unit, out) -> list[dict]:
    found = []
    for rel in info.get("Outputs", []):
        rel_ents, suffix = outputs.parse_output(rel)
        if suffix != "relmat" or not rel.endswith(".tsv"):
            continue
        if rel_ents.get("meas") != SOURCE_MEASURE:
            continue
        name = outputs.group_filename({**rel_ents, "meas": "QCFC"}, "relmat", per_task=True)
        found.append(
            {
                "group_name": name,
                "strategy": strategy,
                "participant": ents.get("sub"),
                "space": ents.get("space", "n/a")
                + (f":res-{ents['res']}" if "res" in ents else ""),
                "entities": rel_ents,
                "relmat": out / rel,
                "mean_fd": fd,
                "tdof": tdof,
                "unit": unit,
            }
        )
    return found


def read_participants(config: Config) -> dict:
    """Read ``participants.tsv`` (BIDS_DIR first, then the fMRIPrep folder); {} if none.

    Returns
    -------
    dict
        ``file`` (the path read) and ``table`` (indexed by label without ``sub-``).
    """
    for folder in (config.bids_dir, config.fmriprep_dir):
        path = Path(folder) / "participants.tsv"
        if path.is_file():
            try:
                table = pd.read_csv(path, sep="\t", na_values="n/a", dtype=str)
            except (OSError, ValueError, pd.errors.ParserError) as exc:
                logger.warning("Ignoring %s: %s", path, exc)
                return {}
            if "participant_id" not in table.columns:
                logger.warning("Ignoring %s: no participant_id column.", path)
                return {}
            table.index = table["participant_id"].str.removeprefix("sub-")
            table.columns = [c.lower() for c in table.columns]
            return {"file": str(path), "table": table}
    return {}


def covariates_for(participants: dict, labels: list[str]) -> tuple[np.ndarray | None, list, list]:
    """Age and sex of each observation's participant, as a numeric design.

    Returns
    -------
    design : numpy.ndarray or None
        ``(n, k)`` covariates (age as a number, sex as indicators of all levels but the first);
        None when none is usable.
    used : list of str
        The covariates used.
    notes : list of str
        Why a present column was not used.
    """
    table = participants.get("table")
    if table is None:
        return None, [], []
    columns, used, notes = [], [], []
    for name in ("age", "sex", "gender"):
        if name not in table.columns or (name == "gender" and "sex" in used):
            continue
        values = table[name].reindex(labels)
        if values.isna().any():
            notes.append(f"{name} missing for some participants")
            continue
        if name == "age":
            numeric = pd.to_numeric(values, errors="coerce")
            if numeric.isna().any():
                notes.append("age is not numeric")
                continue
            block = numeric.to_numpy(dtype=float)[:, None]
        else:
            levels = sorted(values.str.strip().str.upper().unique())
            block = (
                np.column_stack(
                    [(values.str.strip().str.upper() == lv).to_numpy(float) for lv in levels[1:]]
                )
                if len(levels) > 1
                else np.empty((len(labels), 0))
            )
        if block.shape[1] == 0 or np.ptp(block, axis=0).max() == 0:
            notes.append(f"{name} is the same for every participant")
            continue
        columns.append(block)
        used.append(name)
    design = np.column_stack(columns) if columns else None
    return design, used, notes


def _strategy_row(out, name, strategy, members, participants, centroids):
    first = members[0]
    ents = first["entities"]
    row = {
        "task": ents.get("task", "n/a"),
        "space": first["space"],
        "atlas": ents["atlas"] + (f":{ents['seg']}" if "seg" in ents else ""),
        "strategy": strategy,
        "unit": first["unit"] if len({m["unit"] for m in members}) == 1 else "run and combined",
        "n_participants": len({m["participant"] for m in members}),
        "n_observations": len(members),
    }
    reasons = []
    tdofs = [m["tdof"] for m in members if m["tdof"] is not None]
    if tdofs:
        for part in ("total", "regressors", "censored", "filtered"):
            key = "tdof_lost_mean" if part == "total" else f"tdof_{part}_mean"
            row[key] = float(np.mean([t[part] for t in tdofs]))
    fds = [m["mean_fd"] for m in members]
    if None in fds:
        reasons.append("no framewise displacement in some confounds files")
        return {**row, "reason": "; ".join(reasons)}, []
    fd = np.asarray(fds, dtype=float)
    row.update(mean_fd_mean=fd.mean(), mean_fd_min=fd.min(), mean_fd_max=fd.max())
    if row["n_participants"] < quality.MIN_RUNS or len(members) < quality.MIN_RUNS:
        reasons.append(
            f"QC-FC needs at least {quality.MIN_RUNS} participants and observations "
            f"({row['n_participants']} and {len(members)})"
        )
        return {**row, "reason": "; ".join(reasons)}, []
    frames = [pd.read_csv(m["relmat"], sep="\t", index_col=0, na_values="n/a") for m in members]
    names = list(frames[0].columns)
    if any(list(f.columns) != names for f in frames):
        return {**row, "reason": "regions differ between runs"}, []
    edges = np.stack([quality.upper_triangle(f.to_numpy(dtype=float)) for f in frames])
    design, used, notes = covariates_for(participants, [m["participant"] for m in members])
    reasons += notes
    result = quality.qcfc(edges, fd, design)
    row.update(quality.qcfc_summary(result))
    row["covariates"] = ", ".join(used) or None
    distances, why = centroids.distances(ents, first["space"], names)
    if distances is None:
        reasons.append(why)
    else:
        row["distance_rho"], row["distance_p"] = quality.spearman(result.r, distances)
    files = _write_qcfc(out, name, strategy, members, names, result, used, participants)
    row["qcfc_file"] = files[0].name
    return {**row, "reason": "; ".join(reasons) or None}, files


def _write_qcfc(out, name, strategy, members, names, result, used, participants) -> list[Path]:
    matrix = quality.edge_matrix(result.r)
    frame = pd.DataFrame(matrix, index=pd.Index(names, name="node"), columns=names)
    tsv, side = out / f"{name}.tsv", out / f"{name}.json"
    writer.write_tsv(tsv, frame, index=True)
    first = _read_json(outputs.sidecar_path(members[0]["relmat"]))
    sidecar = {
        "RelationshipMeasure": "QCFC",
        "MeasureDescription": "Partial Pearson correlation" if used else "Pearson correlation",
        "Description": f"QC-FC of strategy {strategy!r}: per edge, the correlation across "
        f"{len(members)} observation(s) between the edge's Pearson correlation and the mean "
        "framewise displacement" + (f", controlling for {', '.join(used)}" if used else "") + ".",
        "Covariates": used,
        "ParticipantsFile": participants.get("file") if used else None,
        "Directed": False,
        "Weighted": True,
        "ValidDiagonal": False,
        "StorageFormat": "Full",
        "NodeFiles": first.get("NodeFiles", []),
        "NumberOfObservations": len(members),
        "MeanFramewiseDisplacement": [m["mean_fd"] for m in members],
        "Sources": [writer.bids_uri(m["relmat"], out) for m in members],
        "References": REFERENCES,
    }
    writer.write_json(side, sidecar)
    return [tsv, side]


class CentroidCache:
    """Region centroids (world mm) of the atlases at the output root, read once per atlas."""

    def __init__(self, output_dir: Path):
        self.out = Path(output_dir)
        self.cache: dict[tuple, tuple] = {}

    def distances(self, ents: dict, space: str, names: list[str]) -> tuple[np.ndarray | None, str]:
        """Return the distance of every edge's two regions (or None and why not)."""
        if "den" in ents:
            return None, (
                f"distance dependence n/a for CIFTI grayordinates (den-{ents['den']}): "
                "surface vertex coordinates are not read"
            )
        key = (ents.get("atlas"), ents.get("seg"), space)
        if key not in self.cache:
            self.cache[key] = self._centroids(ents, space)
        found, why = self.cache[key]
        if found is None:
            return None, why
        missing = [n for n in names if n not in found]
        if missing:
            return None, f"no centroid for regions {missing[:3]} in the atlas table"
        return quality.centroid_distances(np.array([found[n] for n in names])), ""

    def _centroids(self, ents: dict, space_text: str) -> tuple[dict | None, str]:
        space, _, res = space_text.partition(":res-")
        if space in NATIVE_SPACES:
            return None, f"distance dependence n/a in space {space}: regions differ per participant"
        atlas, seg = ents["atlas"], ents.get("seg")
        for suffix in ("dseg", "probseg"):
            table = self.out / naming.atlas_filename(atlas, suffix, ".tsv", seg=seg)
            if table.is_file():
                break
        else:
            return None, f"no atlas table for {atlas} at the output root"
        frame = pd.read_csv(table, sep="\t", na_values="n/a")
        if {"x", "y", "z"} <= set(frame.columns):
            return dict(zip(frame["name"], frame[["x", "y", "z"]].to_numpy(float), strict=True)), ""
        head = naming.atlas_filename(atlas, suffix, "", seg=seg, space=space).removesuffix(
            f"_{suffix}"
        )
        images = sorted(self.out.glob(f"{head}_*{suffix}.nii.gz")) + sorted(
            self.out.glob(f"{head}_{suffix}.nii.gz")
        )
        if not images:
            return None, f"no image of atlas {atlas} in space {space} at the output root"
        image = next((p for p in images if f"_res-{res}_" in p.name), images[0])
        img = nib.load(image)
        data = np.asarray(img.dataobj)
        if suffix == "probseg":
            coords = quality.map_centroids(data, img.affine)
            ids = frame["index"].astype(int).to_numpy() - 1
            coords = coords[ids]
        else:
            coords = quality.label_centroids(data, img.affine, frame["index"].astype(int))
        return dict(zip(frame["name"], coords, strict=True)), ""
