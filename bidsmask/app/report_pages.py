"""The report pages: ``OUTPUT_DIR/sub-<label>.html`` per participant and ``OUTPUT_DIR/group.html``.

Pages are assembled from the run records (``OUTPUT_DIR/logs/runs/*.json``, their ``"Report"``
entry lists each run's figures) and the figures already on disk, so a resumed or ``--reports-only``
invocation gives a complete page without reading any BOLD. Links are relative to OUTPUT_DIR; a
figure missing on disk is named in a note instead of linked. Each page is written atomically.

The group page shows the QC table (sortable), the distributions of mean FD and volumes kept per
strategy, the overlap of the runs' masks per space, the group-average matrices and, when the
denoising-quality outputs exist (``*_meas-QCFC_*_relmat.tsv``, ``*desc-denoising_qc.tsv``),
their figures and table.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from bidsmask import reports
from bidsmask.app.config import Config
from bidsmask.app.exitcodes import NoMatchError
from bidsmask.app.group import qc_table, read_run_records
from bidsmask.app.progress import DONE, FAILED, SKIPPED
from bidsmask.app.reporting import save_figure
from bidsmask.atlases import NATIVE_SPACES
from bidsmask.bids import naming, outputs, writer

logger = logging.getLogger(__name__)

#: Folder of the group page's figures, relative to OUTPUT_DIR.
GROUP_FIGURES = Path("figures")

_SUMMARY = [
    ("strategy", None),
    ("status", "Status"),
    ("volumes", None),
    ("kept", "VolumesKept"),
    ("censored", "VolumesCensored"),
    ("mean FD (all)", None),
    ("mean FD (kept)", "MeanFramewiseDisplacementKept"),
    ("regressors", "Regressors"),
    ("tDOF lost", "TemporalDOFLost"),
    ("mask voxels", None),
    ("lowest coverage", None),
    ("reason", "Reason"),
]


def participant_page_path(output_dir: Path, subject: str) -> Path:
    """Return ``OUTPUT_DIR/sub-<label>.html``."""
    return Path(output_dir) / f"sub-{subject}.html"


def run_heading(entities: dict) -> str:
    """Return a run's section heading: its entities, as in its file names (``sub-01 task-rest``)."""
    return naming.run_stem(entities).replace("_", " ")


def write_participant_reports(output_dir: Path, subjects) -> list[Path]:
    """Write the page of each participant from its run records; return the pages written."""
    out = Path(output_dir)
    pages = []
    for subject in sorted(set(subjects)):
        records = read_run_records(out, (subject,))
        if not records:
            continue
        page = reports.Page(
            f"bidsmask report: sub-{subject}",
            [_run_section(out, record) for record in records],
            [f"{len(records)} run(s). Figures are in sub-{subject}/figures/."],
            [("group.html", "group report")] if (out / "group.html").is_file() else [],
        )
        path = participant_page_path(out, subject)
        writer.write_text(path, reports.render(page))
        pages.append(path)
        logger.info("Report: %s", path)
    return pages


def _run_section(out: Path, record: dict) -> reports.Section:
    entities = record["Entities"]
    section = reports.Section(run_heading(entities), record["Run"], dict(entities))
    if record.get("Status") == FAILED:
        section.notes.append(f"This run failed: {record.get('Reason')}")
        return section
    report = record.get("Report") or {}
    numbers = report.get("Strategies") or {}
    rows = []
    for strategy, info in (record.get("Strategies") or {}).items():
        info = {**info, **numbers.get(strategy, {})}
        coverage = list((info.get("MinRegionCoverage") or {}).values())
        own = {
            "strategy": strategy,
            "volumes": record.get("VolumesTotal"),
            "mean FD (all)": record.get("MeanFramewiseDisplacement"),
            "mask voxels": record.get("MaskVoxels"),
            "lowest coverage": min(coverage) if coverage else None,
        }
        rows.append([own[name] if key is None else info.get(key) for name, key in _SUMMARY])
    section.tables.append(reports.Table([name for name, _ in _SUMMARY], rows))
    if not report:
        section.notes.append(
            "No figures: CIFTI grayordinates get the summary only."
            if "den" in entities
            else "No figures: this run was processed with --no-reports."
        )
    subsections: dict[tuple, reports.Section] = {}
    for fig in report.get("Figures", []):
        rank, title = fig["Section"]
        key = (rank, title)
        if key not in subsections:
            subsections[key] = reports.Section(title, f"{record['Run']}-{title}", dict(entities))
        if (out / fig["Path"]).is_file():
            subsections[key].figures.append(reports.Figure(fig["Path"], fig["Caption"]))
        else:
            subsections[key].notes.append(
                f"Figure missing: {fig['Path']} (rerun with --overwrite)."
            )
    section.subsections = [subsections[k] for k in sorted(subsections, key=lambda k: k[0])]
    return section


def write_group_report(output_dir: Path, records: list[dict]) -> list[Path]:
    """Write ``OUTPUT_DIR/group.html`` and its figures; return the files written."""
    out = Path(output_dir)
    table = qc_table(records)
    written: list[Path] = []
    sections = [_qc_section(out, table, written), *_overlap_sections(out, records, written)]
    sections += _matrix_sections(out, written)
    sections += _quality_sections(out, written)
    participants = sorted(table["participant_id"].unique())
    links = [(f"{p}.html", f"{p}.html") for p in participants if (out / f"{p}.html").is_file()]
    intro = [f"{len(records)} run(s) of {len(participants)} participant(s)."]
    page = reports.Page("bidsmask group report", sections, intro, links)
    writer.write_text(out / "group.html", reports.render(page))
    logger.info("Report: %s", out / "group.html")
    return [out / "group.html", *written]


def _save(out: Path, name: str, fig: reports.Drawing, written: list[Path]) -> str:
    rel = save_figure(out, GROUP_FIGURES / f"{name}.{fig.suffix}", fig)
    written.append(out / rel)
    return rel.as_posix()


def _qc_section(out: Path, table: pd.DataFrame, written: list[Path]) -> reports.Section:
    columns = [c for c in table.columns if c != "output_files"]
    rows = table[columns].astype(object).where(table[columns].notna(), None).values.tolist()
    section = reports.Section(
        "QC table", "qc", tables=[reports.Table(columns, rows, sortable=True)]
    )
    done = table[table["status"] == DONE]
    for column, label, what in (
        ("mean_fd_kept", "mean FD of the kept volumes (mm)", "meanFD"),
        ("volumes_kept", "volumes kept", "volumesKept"),
    ):
        values = {
            s: g[column].to_numpy(dtype=float) for s, g in done.groupby("strategy", sort=False)
        }
        if not values or not any(np.isfinite(v).any() for v in values.values()):
            continue
        fig = reports.plot_distributions(values, label)
        src = _save(out, f"desc-{what}_qc", fig, written)
        section.figures.append(reports.Figure(src, f"Distribution per strategy: {label}."))
    return section


def _overlap_sections(out: Path, records: list[dict], written: list[Path]) -> list:
    by_space: dict[tuple, list[Path]] = defaultdict(list)
    for record in records:
        ents = record["Entities"]
        if ents.get("space") in NATIVE_SPACES or record.get("Status") not in (DONE, SKIPPED):
            continue
        if record.get("Mask") and (out / record["Mask"]).is_file():
            by_space[(ents.get("space"), ents.get("res"))].append(out / record["Mask"])
    sections = []
    for (space, res), masks in sorted(by_space.items(), key=str):
        first = nib.load(masks[0])
        same = [m for m in masks if np.allclose(nib.load(m).affine, first.affine)]
        total = sum(np.asarray(nib.load(m).dataobj, dtype=np.float32) for m in same)
        fraction = reports.to_ras(total / len(same), first.affine)
        name = outputs.group_filename({"space": space, "res": res, "desc": "overlap"}, "mask")
        src = _save(out, name, reports.plot_fraction(None, fraction), written)
        caption = f"Fraction of the {len(same)} runs whose mask holds each voxel."
        heading = f"Mask overlap, space {space}" + (f" res-{res}" if res else "")
        sections.append(reports.Section(heading, figures=[reports.Figure(src, caption)]))
    return sections


def _matrix_sections(out: Path, written: list[Path]) -> list:
    section = reports.Section("Group-average connectivity", "group-matrices")
    for path in sorted(out.glob("*_relmat.tsv")):
        ents, _ = outputs.parse_output(path)
        if ents.get("meas") == "QCFC":
            continue
        frame = pd.read_csv(path, sep="\t", index_col=0, na_values="n/a")
        fig = reports.plot_matrix(
            frame.to_numpy(dtype=float), list(frame.columns), None, ents.get("meas", "")
        )
        src = _save(out, path.name.split(".")[0], fig, written)
        section.figures.append(
            reports.Figure(
                src, f"{path.name}: atlas {ents.get('atlas')}, strategy {ents.get('desc')}."
            )
        )
    return [section] if section.figures else []


def _quality_sections(out: Path, written: list[Path]) -> list:
    """Figures of the denoising-quality outputs (:mod:`bidsmask.app.denoising`), when present."""
    from bidsmask.app.denoising import CentroidCache

    section = reports.Section("Denoising quality", "quality")
    centroids = CentroidCache(out)
    by_atlas: dict[str, dict[str, np.ndarray]] = defaultdict(dict)
    for path in sorted(out.glob("*_meas-QCFC_*relmat.tsv")):
        ents, _ = outputs.parse_output(path)
        frame = pd.read_csv(path, sep="\t", index_col=0, na_values="n/a")
        values = frame.to_numpy(dtype=float)[np.triu_indices(len(frame), 1)]
        by_atlas[path.name.split("_meas-")[0]][ents.get("desc", "")] = values
        stem = path.name.split(".")[0]
        what = f"atlas {ents.get('atlas')}, strategy {ents.get('desc')}"
        fig = reports.plot_histogram(values, "QC-FC", value_range=(-1, 1))
        src = _save(out, stem.replace("_relmat", "_histogram"), fig, written)
        section.figures.append(reports.Figure(src, f"QC-FC distribution over edges: {what}."))
        space = ents.get("space", "") + (f":res-{ents['res']}" if "res" in ents else "")
        distances, why = centroids.distances(ents, space, list(frame.columns))
        if distances is None:
            section.notes.append(f"QC-FC against distance, {what}: {why}.")
            continue
        fig = reports.plot_scatter(distances, values, "distance between regions (mm)", "QC-FC")
        src = _save(out, stem.replace("_relmat", "_scatter"), fig, written)
        section.figures.append(reports.Figure(src, f"QC-FC against distance: {what}."))
    for stem, values in sorted(by_atlas.items()):
        fig = reports.plot_distributions(values, "QC-FC")
        src = _save(out, f"{stem}_desc-QCFCstrategies_qc", fig, written)
        section.figures.append(reports.Figure(src, f"QC-FC distribution per strategy: {stem}."))
    for path in sorted(out.glob("*desc-denoising_qc.tsv")):
        frame = pd.read_csv(path, sep="\t", na_values="n/a")
        rows = frame.astype(object).where(frame.notna(), None).values.tolist()
        section.tables.append(reports.Table(list(frame.columns), rows, sortable=True))
        section.figures += _tdof_against_qcfc(out, frame, written)
        parts = {
            cause: frame[f"tdof_{cause}_mean"]
            for cause in ("regressors", "censored", "filtered")
            if f"tdof_{cause}_mean" in frame
        }
        if parts:
            keys = (
                ["atlas", "strategy"]
                if frame.get("task", pd.Series()).nunique() < 2
                else ["task", "atlas", "strategy"]
            )
            labels = [" / ".join(map(str, row)) for row in frame[keys].itertuples(index=False)]
            fig = reports.plot_stacked_bars(labels, parts, "temporal degrees of freedom lost")
            src = _save(out, "desc-tdofLost_qc", fig, written)
            caption = "Mean temporal degrees of freedom lost per run, by cause."
            section.figures.append(reports.Figure(src, caption))
    return [section] if section.figures or section.tables else []


def _tdof_against_qcfc(out: Path, frame: pd.DataFrame, written: list[Path]) -> list:
    """Per task × space × atlas: mean tDOF lost against median |QC-FC|, a point per strategy."""
    if not {"tdof_lost_mean", "median_abs_qcfc"} <= set(frame.columns):
        return []
    figures = []
    frame = frame if "task" in frame else frame.assign(task=None)  # written before tasks split
    groups = frame.groupby(["task", "space", "atlas"], sort=True, dropna=False)
    for (task, space, atlas), rows in groups:
        task = task if isinstance(task, str) else None
        if not rows["median_abs_qcfc"].notna().any():
            continue
        fig = reports.plot_scatter(
            rows["tdof_lost_mean"].to_numpy(dtype=float),
            rows["median_abs_qcfc"].to_numpy(dtype=float),
            "mean temporal degrees of freedom lost",
            "median |QC-FC|",
            labels=list(rows["strategy"].astype(str)),
        )
        space_name, _, res = str(space).partition(":res-")
        atlas_name, _, seg = str(atlas).partition(":")
        ents = {"task": task, "space": space_name, "atlas": atlas_name, "seg": seg or None}
        name = naming.build_filename({**ents, "res": res or None, "desc": "tdofQCFC"}, "qc", "")
        src = _save(out, name, fig, written)
        where = f"{space}, {atlas}" + (f", task {task}" if task else "")
        caption = f"Median |QC-FC| against the mean tDOF lost, per strategy: {where}."
        figures.append(reports.Figure(src, caption))
    return figures


def rebuild_reports(config: Config) -> int:
    """``--reports-only``: rebuild the pages from records and outputs (no BOLD read); exit code.

    Raises
    ------
    NoMatchError
        No run record for the selected participants.
    """
    out = config.output_dir
    records = read_run_records(out, config.participant_label)
    if not records:
        raise NoMatchError(
            f"--reports-only: no run records in {out / writer.MARKER_DIR} for "
            f"{', '.join(config.participant_label) or 'any participant'}; run the participant "
            "level first."
        )
    write_participant_reports(out, {r["Entities"]["sub"] for r in records})
    if config.analysis_level == "group":
        write_group_report(out, records)
    return 0
