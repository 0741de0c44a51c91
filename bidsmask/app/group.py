"""The group level: summarise the participant-level outputs found in OUTPUT_DIR.

Reads every run's record (``OUTPUT_DIR/logs/runs/<run>.json``, written by the participant level
after the run's outputs) and writes, at the root of OUTPUT_DIR:

- ``qc.tsv`` (+ ``qc.json`` describing the columns): one row per run and strategy — participant,
  session, task, run, space, strategy, status (``done``, ``skipped``: too few volumes left after
  censoring, ``failed``), reason, volumes, volumes kept and censored, mean framewise displacement
  (all volumes, kept volumes), the lowest region coverage over the atlases, mask voxels and the
  output files;
- per template space (and resolution), ``space-<s>[_res-<r>]_desc-group_mask.nii.gz`` (+
  ``.json``): the voxels present in at least ``--group-mask-threshold`` of the runs' masks
  (:func:`bidsmask.masking.intersect_masks` semantics, largest connected component kept); none
  in native spaces (``T1w`` …), where each participant has its own grid;
- per task × space × atlas × strategy × measure,
  ``task-…_space-…_atlas-…_meas-…_desc-<strategy>_relmat.tsv``
  (+ ``.json``): the average over runs of the run matrices — correlations (Pearson and partial)
  averaged in Fisher z space (:func:`bidsmask.connectivity.fisher_z_average`), covariances
  arithmetically; an entry missing in a run (region below the minimum coverage) is averaged over
  the runs that have it; for grayordinate (fsLR) atlases also as a CIFTI ``.pconn.nii``;
- the denoising quality of each strategy (QC-FC, distance dependence, temporal degrees of freedom
  lost): ``space-…_atlas-…_meas-QCFC_desc-<strategy>_relmat.tsv`` and ``desc-denoising_qc.tsv``
  (:mod:`bidsmask.app.denoising`), from the combined runs where ``--combine-runs`` made them.

``--participant-label`` restricts the summary to those participants.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from bidsmask import cifti, connectivity, masking
from bidsmask.app import denoising
from bidsmask.app.config import Config
from bidsmask.app.exitcodes import DataError, NoMatchError
from bidsmask.app.progress import DONE, FAILED, SKIPPED
from bidsmask.atlases import NATIVE_SPACES
from bidsmask.bids import layout, outputs, writer

logger = logging.getLogger(__name__)

QC_COLUMNS = {
    "participant_id": "Participant label, with 'sub-'.",
    "session_id": "Session label, with 'ses-' (n/a without sessions).",
    "task": "Task label.",
    "run": "Run index (n/a when the task has a single run).",
    "space": "Output space of the preprocessed BOLD (with ':res-<r>' when fMRIPrep gave one).",
    "strategy": "Denoising strategy (n/a for a run that failed before denoising).",
    "status": "done, skipped (too few volumes left after censoring) or failed.",
    "reason": "Why the run or strategy was skipped or failed.",
    "volumes": "Volumes in the preprocessed BOLD.",
    "volumes_kept": "Volumes left after removing dummy scans, non-steady-state and scrubbed ones.",
    "volumes_censored": "Volumes removed: the sum of the next three.",
    "volumes_non_steady_state": "Volumes fMRIPrep flagged as non-steady-state.",
    "volumes_dummy_scans": "First volumes removed by --dummy-scans, not already non-steady-state.",
    "volumes_scrubbed": "Other volumes removed by scrubbing (FD/DVARS).",
    "mean_fd": "Mean framewise displacement over all volumes (mm).",
    "mean_fd_kept": "Mean framewise displacement over the kept volumes (mm).",
    "min_region_coverage": "Lowest fraction of a region's voxels inside the mask and with data, "
    "over atlases.",
    "mask_voxels": "Voxels in the run's mask.",
    "voxels_without_data": "Voxels read (the atlases' voxels inside the mask; the whole mask "
    "with --save-denoised-bold) that are non-finite at some volume or constant zero.",
    "output_files": "Files written for this run and strategy, relative to OUTPUT_DIR ('; ').",
}


def run_group_level(config: Config) -> int:
    """Write the QC table, group masks and group-average connectivity; return the exit code.

    Parameters
    ----------
    config : Config
        The validated configuration (``output_dir``, ``participant_label``,
        ``group_mask_threshold`` are used).

    Returns
    -------
    int
        0.

    Raises
    ------
    NoMatchError
        No participant-level output in OUTPUT_DIR for the selected participants (exit code 18).
    DataError
        The masks of one space are on different grids.
    """
    out = config.output_dir
    try:
        records = read_run_records(out, config.participant_label)
        if not records:
            who = ", ".join(f"sub-{p}" for p in config.participant_label) or "any participant"
            raise NoMatchError(
                f"No participant-level outputs for {who} in {out} (no records in "
                f"{out / writer.MARKER_DIR}). Run the participant level first."
            )
        table = qc_table(records)
        written = [out / "qc.tsv", out / "qc.json"]
        writer.write_tsv(out / "qc.tsv", table)
        writer.write_json(out / "qc.json", {k: {"Description": v} for k, v in QC_COLUMNS.items()})
        written += group_masks(out, records, config.group_mask_threshold)
        written += group_connectivity(out, records)
        written += denoising.denoising_quality(config, records)
        if config.reports:
            from bidsmask.app.report_pages import write_group_report

            written += write_group_report(out, records)
        counts = table.drop_duplicates(["participant_id", "session_id", "task", "run", "space"])
        logger.info(
            "Group level: %d run(s) of %d participant(s); run x strategy results: %s; "
            "%d file(s) written under %s.",
            len(counts),
            table["participant_id"].nunique(),
            ", ".join(f"{n} {s}" for s, n in table["status"].value_counts().items()),
            len(written),
            out,
            extra={"summary": True},
        )
    finally:
        if out.is_dir():
            description = writer.dataset_description(
                {"fmriprep": config.fmriprep_dir},
                source_versions={"fmriprep": layout.fmriprep_version(config.fmriprep_dir)},
            )
            writer.write_dataset_description(out, description)
    return 0


def read_run_records(output_dir: Path, participants: tuple[str, ...] = ()) -> list[dict]:
    """Return the participant level's run records (one per run and space), sorted by run.

    Parameters
    ----------
    output_dir : Path
        OUTPUT_DIR.
    participants : tuple of str
        Keep only these participants (labels without ``sub-``); empty keeps all.

    Returns
    -------
    list of dict
        Each record with an added ``"Run"`` key (the run's identifier).
    """
    records = []
    for path in sorted((Path(output_dir) / writer.MARKER_DIR).glob("sub-*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            logger.warning("Ignoring unreadable run record %s (%s).", path, exc)
            continue
        entities = record.get("Entities") or outputs.parse_output(path)[0]
        if participants and entities.get("sub") not in participants:
            continue
        records.append({**record, "Entities": entities, "Run": path.stem})
    return records


def qc_table(records: list[dict]) -> pd.DataFrame:
    """Return the QC table: one row per run and strategy (see :data:`QC_COLUMNS`)."""
    rows = []
    for record in records:
        ents = record["Entities"]
        space = ents.get("space", "n/a") + (f":res-{ents['res']}" if "res" in ents else "")
        base = {
            "participant_id": f"sub-{ents.get('sub')}",
            "session_id": f"ses-{ents['ses']}" if "ses" in ents else None,
            "task": ents.get("task"),
            "run": ents.get("run"),
            "space": space,
            "volumes": record.get("VolumesTotal"),
            "mean_fd": record.get("MeanFramewiseDisplacement"),
            "mask_voxels": record.get("MaskVoxels"),
            "voxels_without_data": record.get("VoxelsWithoutData"),
        }
        strategies = record.get("Strategies") or {}
        if record.get("Status") == FAILED or not strategies:
            rows.append({**base, "status": FAILED, "reason": record.get("Reason")})
            continue
        mask = []
        if record.get("Mask"):
            mask = [record["Mask"], str(outputs.sidecar_path(record["Mask"]))]
        for strategy, info in strategies.items():
            coverage = (info.get("MinRegionCoverage") or {}).values()
            rows.append(
                {
                    **base,
                    "strategy": strategy,
                    "status": info.get("Status"),
                    "reason": info.get("Reason"),
                    "volumes_kept": info.get("VolumesKept"),
                    "volumes_censored": info.get("VolumesCensored"),
                    "volumes_non_steady_state": info.get("VolumesNonSteadyState"),
                    "volumes_dummy_scans": info.get("VolumesDummyScans"),
                    "volumes_scrubbed": info.get("VolumesScrubbed"),
                    "mean_fd_kept": info.get("MeanFramewiseDisplacementKept"),
                    "min_region_coverage": min(coverage) if coverage else None,
                    "output_files": "; ".join([*mask, *info.get("Outputs", [])]) or None,
                }
            )
    return pd.DataFrame(rows, columns=list(QC_COLUMNS))


def group_masks(output_dir: Path, records: list[dict], threshold: float) -> list[Path]:
    """Write one group mask per space (and resolution); return the files written."""
    by_space: dict[tuple, list[Path]] = defaultdict(list)
    for record in records:
        ents = record["Entities"]
        if ents.get("space") in NATIVE_SPACES:
            continue  # each participant has its own grid: no group mask in native space
        if record.get("Status") in (DONE, SKIPPED) and record.get("Mask"):
            by_space[(ents.get("space"), ents.get("res"))].append(output_dir / record["Mask"])
    written = []
    for (space, res), masks in sorted(by_space.items(), key=str):
        try:
            group = masking.intersect_masks([str(m) for m in masks], threshold=threshold)
        except ValueError as exc:
            raise DataError(f"Cannot combine the masks of space {space} ({exc}).") from None
        name = outputs.group_filename({"space": space, "res": res, "desc": "group"}, "mask")
        writer.write_nifti(output_dir / f"{name}.nii.gz", group)
        sidecar = {
            "Type": "Brain",
            "Description": f"Voxels in at least {threshold:g} of the {len(masks)} runs' masks "
            "(largest connected component).",
            "Threshold": threshold,
            "NumberOfRuns": len(masks),
            "Sources": [writer.bids_uri(m, output_dir) for m in masks],
        }
        writer.write_json(output_dir / f"{name}.json", sidecar)
        written += [output_dir / f"{name}.nii.gz", output_dir / f"{name}.json"]
        logger.info("Group mask of %d run(s) in %s: %s.nii.gz", len(masks), space, name)
    return written


def group_connectivity(output_dir: Path, records: list[dict]) -> list[Path]:
    """Write the group-average matrix of each task × space × atlas × strategy × measure."""
    groups: dict[tuple, list[Path]] = defaultdict(list)
    for record in records:
        for info in (record.get("Strategies") or {}).values():
            if info.get("Status") != DONE:
                continue
            for rel in info.get("Outputs", []):
                ents, suffix = outputs.parse_output(rel)
                if suffix == "relmat" and rel.endswith(".tsv"):
                    groups[outputs.group_filename(ents, "relmat", per_task=True)].append(
                        output_dir / rel
                    )
    written = []
    for name, files in sorted(groups.items()):
        ents, _ = outputs.parse_output(name)
        frames = [pd.read_csv(f, sep="\t", index_col=0, na_values="n/a") for f in files]
        names = list(frames[0].columns)
        if any(list(frame.columns) != names for frame in frames):
            logger.warning("Regions differ between runs of %s; no group average.", files[0].name)
            continue
        matrices = [frame.to_numpy(dtype=float) for frame in frames]
        if ents.get("meas") == "Covariance":
            with np.errstate(invalid="ignore"):
                average, method = np.nanmean(np.stack(matrices), axis=0), "arithmetic mean"
        else:
            average = connectivity.fisher_z_average(matrices)
            method = "mean of Fisher z-transformed correlations, transformed back (tanh)"
        frame = pd.DataFrame(average, index=pd.Index(names, name="node"), columns=names)
        writer.write_tsv(output_dir / f"{name}.tsv", frame, index=True)
        first = json.loads(outputs.sidecar_path(files[0]).read_text(encoding="utf-8"))
        sidecar = {
            **{k: first[k] for k in ("RelationshipMeasure", "Directed", "Weighted") if k in first},
            "ValidDiagonal": first.get("ValidDiagonal", False),
            "StorageFormat": "Full",
            "NodeFiles": first.get("NodeFiles", []),
            "Description": f"Group average over {len(files)} run(s): {method}; an entry "
            "missing in a run is averaged over the runs that have it.",
            "NumberOfRuns": len(files),
            "Sources": [writer.bids_uri(f, output_dir) for f in files],
        }
        writer.write_json(output_dir / f"{name}.json", sidecar)
        written += [output_dir / f"{name}.tsv", output_dir / f"{name}.json"]
        written += _group_pconn(output_dir / f"{name}.pconn.nii", average, files[0])
    return written


def _group_pconn(path: Path, average: np.ndarray, first_tsv: Path) -> list[Path]:
    """Write the average as a CIFTI pconn too when the runs' matrices have one (fsLR atlases)."""
    run_pconn = first_tsv.with_suffix(".pconn.nii")
    if not run_pconn.is_file():
        return []
    parcels = nib.load(run_pconn).header.get_axis(0)
    writer.write_nifti(path, cifti.pconn_image(average.astype(np.float32), parcels))
    return [path]
