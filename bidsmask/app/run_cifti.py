"""One grayordinate run (``*_space-fsLR_den-91k_bold.dtseries.nii``) of the participant level.

As for volumes (:mod:`bidsmask.app.run`), but without a mask: the run is read once, in chunks of
volumes, into every atlas (:func:`bidsmask.cifti.extract`); each parcel's signal is the mean of
its grayordinates whose data are finite and not all zero, and its coverage the fraction of the
parcel's grayordinates that qualify (written per atlas as a ``pscalar``; parcels below
``--min-coverage`` are ``n/a``). Each strategy's confounds, censoring, cleaning and connectivity
are the volumes' own. Every table is also written as CIFTI (``ptseries``, ``pconn``) with the
intents Connectome Workbench expects; the TSV's JSON sidecar describes both.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from nibabel import cifti2

from bidsmask import cifti
from bidsmask.app.coverage import MISSING_DATA
from bidsmask.app.exitcodes import DataError, reading
from bidsmask.app.report_cifti import GrayordinateReport
from bidsmask.app.run import RunJob, _Context, run_strategies, start_record
from bidsmask.app.run_files import write_image, write_relmat, write_table
from bidsmask.atlases import Atlas
from bidsmask.bids import writer
from bidsmask.regions import GrayordinateSpec

logger = logging.getLogger(__name__)

__all__ = ["atlas_spec", "process_grayordinates"]


def atlas_spec(
    atlas: Atlas, axis: cifti2.BrainModelAxis
) -> tuple[GrayordinateSpec, cifti2.ParcelsAxis]:
    """Align an atlas's dlabel to the run's grayordinates; its spec and parcels axis.

    Regions are the atlas's (its table's) in order; a region with no grayordinate in the run
    gets coverage 0. Labels of the dlabel missing from the table are left out (with a warning).
    """
    dense = cifti.load_dlabel(atlas.image)
    labels = cifti.align_labels(dense, axis)
    ids = np.asarray(atlas.region_ids, dtype=np.int64)
    unknown = np.setdiff1d(dense.region_ids, ids)
    if unknown.size:
        logger.warning(
            "Labels %s of %s are not in its label table; they are left out.",
            unknown.tolist()[:10],
            atlas.image,
        )
    sizes = np.array([np.count_nonzero(dense.labels == i) for i in ids], dtype=np.int64)
    spec = GrayordinateSpec(labels, region_ids=ids, atlas_sizes=sizes)
    return spec, cifti.parcels_axis(labels, axis, ids, list(atlas.region_names))


def process_grayordinates(job: RunJob) -> tuple[str, list[str], list[str], str]:
    """Process one grayordinate run and write its completion record last.

    Returns
    -------
    tuple
        ``(status, files written, notes for -v, reason)``, as :func:`bidsmask.app.run.process`.
    """
    config, run, out = job.config, job.run, job.config.output_dir
    try:
        img = cifti.open_dense(run.bold)
        axis = img.axis
        built = [atlas_spec(atlas, axis) for atlas in job.atlases]
    except ValueError as exc:
        raise DataError(str(exc)) from None
    if img.series is None:
        raise DataError(f"{run.bold}: axis 0 is not a time series (not a dtseries).")
    n_volumes = img.shape[0]
    if config.save_denoised_bold:
        logger.warning(
            "%s: --save-denoised-bold writes volumes only; no denoised dtseries for this run.",
            job.stem,
        )
    logger.debug("%s: %d atlas(es) from one pass over %s", job.stem, len(built), run.bold.name)
    report = GrayordinateReport(job, axis, list(job.atlases)) if config.reports else None
    specs = [spec for spec, _ in built] + (report.specs if report else [])
    with reading(run.bold):
        signals, qualified = cifti.extract(img, specs)
    plan = job.outputs
    uris = {
        "bold": writer.bids_uri(run.bold, config.fmriprep_dir, "fmriprep"),
        "confounds": writer.bids_uri(run.confounds, config.fmriprep_dir, "fmriprep"),
    }
    uris["mask"] = uris["bold"]  # no mask: the run's own data decide (see the sidecars)
    written: list[Path] = []
    coverages = []
    for i, (atlas, (spec, parcels)) in enumerate(zip(job.atlases, built, strict=True)):
        coverages.append(spec.coverage(qualified))
        rel = plan.coverage(i).path
        sidecar = {
            "Description": f"Fraction of each parcel's grayordinates of atlas {atlas.spec.text} "
            "whose data are finite and not all zero.",
            "Sources": [uris["bold"]],
            "Atlas": atlas.spec.text,
        }
        written += write_image(
            out, rel, cifti.pscalar_image(coverages[-1], parcels, ["coverage"]), sidecar
        )
    fd, record = start_record(job, n_volumes)
    record.update(
        {
            "Grayordinates": len(axis),
            "GrayordinatesWithData": int(np.count_nonzero(qualified)),
            "Strategies": {},
        }
    )
    notes = [f"{int(qualified.sum())} grayordinates with data; {len(built)} atlas(es)"]
    if report:
        report.take(signals, coverages)
    return run_strategies(
        job,
        lambda ctx: _write_strategy(ctx, built, signals, coverages),
        n_volumes,
        fd,
        uris,
        written,
        record,
        notes,
        report,
    )


def _write_strategy(ctx: _Context, built, signals, coverages) -> tuple[list[Path], dict]:
    """Clean and write one strategy's tables and matrices, as TSV and CIFTI."""
    job, config = ctx.job, ctx.job.config
    out, plan = config.output_dir, job.outputs
    common = ctx.sidecar()
    common["Sources"] = [ctx.uris["bold"], ctx.uris["confounds"]]
    written: list[Path] = []
    min_coverage = {}
    for i, (atlas, (_, parcels), raw, coverage) in enumerate(
        zip(job.atlases, built, signals, coverages, strict=True)
    ):
        names = list(atlas.region_names)
        values = ctx.clean(raw)
        below = (coverage < config.min_coverage) | (coverage == 0)
        values[:, below] = np.nan
        table = pd.DataFrame(values, columns=names)
        node_file = writer.bids_uri(out / writer.atlas_table_name(atlas), out)
        timeseries = plan.timeseries(i, ctx.strategy).path
        sidecar = {
            **common,
            "Description": f"Mean BOLD signal of the grayordinates with data of each parcel of "
            f"atlas {atlas.spec.text}, cleaned with denoising strategy {ctx.strategy!r}; "
            "censored volumes removed. The .ptseries.nii holds the same values.",
            "Atlas": atlas.spec.text,
            "NodeFiles": [node_file],
            "RegionCoverage": dict(zip(names, coverage.round(4).tolist(), strict=True)),
            "MinCoverage": config.min_coverage,
            "RegionsBelowMinCoverage": [n for n, b in zip(names, below, strict=True) if b],
            # no mask here: a parcel is short of grayordinates with data (or absent from them)
            "RegionsNotAvailable": {
                n: MISSING_DATA for n, b in zip(names, below, strict=True) if b
            },
        }
        written += write_table(out, timeseries, table, sidecar)
        ptseries = cifti.ptseries_image(values, parcels, job.run.repetition_time)
        written += _write_cifti(out, plan.ptseries(i, ctx.strategy).path, ptseries)
        min_coverage[atlas.spec.text] = float(coverage.min())
        for option in config.connectivity:
            relmat = plan.relmat(i, ctx.strategy, option).path
            files, matrix = write_relmat(
                out, relmat, option, values, names, [node_file], timeseries
            )
            written += files
            ctx.matrices[i, option] = matrix
            pconn = cifti.pconn_image(matrix, parcels)
            written += _write_cifti(out, plan.pconn(i, ctx.strategy, option).path, pconn)
    return written, min_coverage


def _write_cifti(out: Path, rel: Path, img: cifti2.Cifti2Image) -> list[Path]:
    """Write a CIFTI twin of a table (its sidecar is the table's)."""
    writer.write_nifti(out / rel, img)
    return [rel]
