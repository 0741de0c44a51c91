"""One run of the participant level: mask, single-pass extraction, cleaning, outputs.

1. the mask (:func:`bidsmask.app.run_inputs.build_mask`: ``--mask fmriprep``, ``epi`` or
   ``gm``);
2. the BOLD is read once (:func:`bidsmask.regions.extract_regions`) for every atlas, plus the
   voxels of the mask with ``--save-denoised-bold``, leaving out the voxels without data;
   atlases are resampled to the BOLD grid as nilearn's maskers do (nearest for labels,
   linear for maps);
3. for each strategy, :func:`bidsmask.confounds.load_strategy` gives the confounds and the sample
   mask (dummy scans, non-steady-state volumes, scrubbing); a strategy leaving fewer than
   ``--min-volumes`` volumes, or no more volumes than regressors, is skipped and recorded;
   :func:`bidsmask.signal.clean` cleans each atlas's signals (linear detrend unless
   ``--no-detrend``, optional Butterworth filter, confound regression, standardization) and the
   kept volumes are written (volumes removed are counted by reason: :mod:`bidsmask.app.volumes`);
   regions with less than ``--min-coverage`` of their voxels inside the mask and with data
   (finite at every volume, not constant zero; :mod:`bidsmask.app.coverage`) are ``n/a``;
4. connectivity matrices (:mod:`bidsmask.connectivity`), then the run's completion record, last.

Every file is written atomically (:mod:`bidsmask.bids.writer`) under the names of the run's output
plan (:attr:`RunJob.outputs`, :class:`bidsmask.bids.outputs.RunOutputs`); the run's completion
record is written last, by :func:`process`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from bidsmask import connectivity, masking, regions, signal
from bidsmask._version import __version__
from bidsmask.app import coverage as cov
from bidsmask.app.config import Config, strategy_label
from bidsmask.app.coverage import region_table
from bidsmask.app.exitcodes import DataError, reading, using_atlas
from bidsmask.app.progress import DONE, SKIPPED
from bidsmask.app.reporting import RunReport
from bidsmask.app.run_files import CONNECTIVITY_KINDS, write_image, write_relmat, write_table
from bidsmask.app.run_inputs import atlas_spec, build_mask
from bidsmask.app.volumes import volume_accounting
from bidsmask.atlases import Atlas, AtlasSpec, load_atlas
from bidsmask.bids import naming, writer
from bidsmask.bids.layout import RunRecord
from bidsmask.bids.outputs import RunOutputs
from bidsmask.confounds import load_strategy

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunJob:
    """Everything one worker needs for one run (picklable)."""

    config: Config
    run: RunRecord
    atlases: tuple[Atlas, ...]
    native_atlases: tuple[AtlasSpec, ...] = ()
    atlas_cache: Path | None = None  # folder of the prepared atlases (None: in the process only)

    @property
    def source(self) -> dict[str, str]:
        """Entities every output of the run carries (BIDS order, short tags)."""
        return naming.source_entities(self.run.entities)

    @property
    def stem(self) -> str:
        """The run's identifier, e.g. ``sub-01_task-rest_space-MNI152NLin2009cAsym_res-2``."""
        return naming.run_stem(self.run.entities)

    @property
    def grayordinates(self) -> bool:
        """Whether the run is a CIFTI dense time series (processed by ``app.run_cifti``)."""
        return self.run.bold.name.endswith(".dtseries.nii")

    @property
    def outputs(self) -> RunOutputs:
        """The run's output plan: every file it writes (atlases, then native atlases)."""
        atlases = [(a.entities, a.kind) for a in self.atlases]
        atlases += [({"atlas": spec.name}, "labels") for spec in self.native_atlases]
        config = self.config
        return RunOutputs(
            self.source,
            tuple(atlases),
            tuple((s, strategy_label(s)) for s in config.strategies),
            tuple(
                (m, connectivity.MEASURES[CONNECTIVITY_KINDS[m]][0]) for m in config.connectivity
            ),
            config.save_denoised_bold and not self.grayordinates,
            self.grayordinates,
        )


def run_parameters(config: Config) -> dict:
    """Return the options that determine a run's outputs (a rerun with others redoes the run)."""
    keys = (
        "atlases radius strategies fd_threshold std_dvars_threshold dummy_scans high_pass "
        "low_pass smoothing_fwhm detrend standardize min_coverage min_volumes mask gm_threshold "
        "save_denoised_bold connectivity"
    ).split()
    values = config.to_dict()
    return {"bidsmask_version": __version__, **{k: values[k] for k in keys}}


def process(job: RunJob) -> tuple[str, list[str], list[str], str]:
    """Process one run and write its completion record last.

    Returns
    -------
    tuple
        ``(status, files written, notes for -v, reason)``; status is ``done``, or ``skipped``
        when every strategy left too few volumes. Errors propagate (the caller records them).
    """
    if job.grayordinates:
        from bidsmask.app.run_cifti import process_grayordinates

        return process_grayordinates(job)
    config, run, out = job.config, job.run, job.config.output_dir
    with reading(run.bold):
        bold = nib.load(run.bold)  # lazy: only the header is read here
    if len(bold.shape) != 4:
        raise DataError(f"{run.bold} is not a 4D BOLD series (shape {bold.shape}).")
    n_volumes = int(bold.shape[3])
    mask_img, mask_sidecar = build_mask(job, bold)
    mask = np.asarray(mask_img.dataobj).astype(bool)
    atlases = list(job.atlases)
    for spec in job.native_atlases:
        native = getattr(run, spec.name)
        with reading(native):
            atlases.append(load_atlas(spec, run.space, run.res, native_dseg=native))
        writer.write_atlas(out, atlases[-1])
    built = []
    for atlas in atlases:
        with using_atlas(atlas.spec.text, job.stem), reading(atlas.image or atlas.spec.text):
            built.append(atlas_spec(atlas, bold, mask, config.radius, job.atlas_cache))
    specs = [spec for spec, _ in built]
    if config.save_denoised_bold:
        specs.append(regions.VoxelSpec(mask))
    report = RunReport(job, bold, mask, atlases, built) if config.reports else None
    logger.debug("%s: extracting %d region sets in one pass", job.stem, len(specs))
    with reading(run.bold):
        extraction = regions.extract_regions(
            run.bold, specs + (report.specs if report else []), smoothing_fwhm=config.smoothing_fwhm
        )
    if report:
        report.take(extraction)
    signals = extraction.signals
    built = [
        (spec, pos, data, cov.unavailable_regions(job.stem, atlas, pos, spec, data, config))
        for atlas, (spec, pos), data in zip(atlases, built, extraction.coverage, strict=False)
    ]

    mask_file = job.outputs.mask().path
    uris = {
        "bold": writer.bids_uri(run.bold, config.fmriprep_dir, "fmriprep"),
        "confounds": writer.bids_uri(run.confounds, config.fmriprep_dir, "fmriprep"),
        "mask": writer.bids_uri(out / mask_file, out),
    }
    written = write_image(out, mask_file, mask_img, mask_sidecar)
    fd, record = start_record(job, n_volumes)
    record.update(
        {
            "Mask": str(mask_file),
            "MaskVoxels": int(mask.sum()),
            "VoxelsWithoutData": int(extraction.missing_voxels.size),
            "Strategies": {},
        }
    )
    notes = [f"mask ({config.mask}): {int(mask.sum())} voxels; {len(specs)} extraction(s)"]
    return run_strategies(
        job,
        lambda ctx: _write_strategy(ctx, atlases, built, signals, mask_img),
        n_volumes,
        fd,
        uris,
        written,
        record,
        notes,
        report,
    )


def start_record(job: RunJob, n_volumes: int) -> tuple[np.ndarray | None, dict]:
    """Read the run's framewise displacement; return it and the start of the run's record."""
    with reading(job.run.confounds):
        fd = _framewise_displacement(job.run.confounds, job.run.bold, n_volumes)
    return fd, {
        "Status": DONE,
        "Entities": job.source,
        "Parameters": run_parameters(job.config),
        "VolumesTotal": n_volumes,
        "MeanFramewiseDisplacement": None if fd is None else float(np.nanmean(fd)),
    }


def run_strategies(
    job: RunJob,
    write,
    n_volumes: int,
    fd,
    uris: dict,
    written: list,
    record: dict,
    notes: list,
    report=None,
):
    """Clean and write each strategy, draw its figures, and write the run's record, last.

    Parameters
    ----------
    job : RunJob
        The run.
    write : callable
        ``write(context) -> (files, lowest coverage per atlas)``: one strategy's outputs.
    n_volumes, fd, uris
        The run's volume count, framewise displacement (or None) and its sources' BIDS URIs.
    written, record, notes
        The files written so far, the run's record and its notes, completed here.
    report : RunReport or None
        The run's report, when ``--reports``.

    Returns
    -------
    tuple
        As :func:`process`.
    """
    for context in strategy_contexts(job, n_volumes, fd, uris, record, notes):
        files, coverage = write(context)
        record_strategy(context, files, coverage, record, notes)
        written += files
        if report:
            report.strategy(context, fd)
    if report:
        record["Report"] = report.finish()
    return finish_run(job, written, record, notes)


def strategy_contexts(job: RunJob, n_volumes: int, fd, uris: dict, record: dict, notes: list):
    """Yield the cleaning context of each strategy; record those leaving too few volumes."""
    config = job.config
    for strategy in config.strategies:
        overrides = {
            "fd_threshold": config.fd_threshold,
            "std_dvars_threshold": config.std_dvars_threshold,
            "n_dummy_scans": config.dummy_scans,
        }
        with reading(job.run.confounds, strategy):
            confounds, sample_mask, params = load_strategy(
                job.run.bold, strategy, **{k: v for k, v in overrides.items() if v is not None}
            )
        kept = np.arange(n_volumes) if sample_mask is None else np.asarray(sample_mask)
        info = {"VolumesKept": int(kept.size), **volume_accounting(params["censored"])}
        if fd is not None:
            info["MeanFramewiseDisplacement"] = record["MeanFramewiseDisplacement"]
            info["MeanFramewiseDisplacementKept"] = float(np.nanmean(fd[kept]))
        too_few = _too_few_volumes(kept.size, confounds.shape[1], config.min_volumes)
        if too_few:
            record["Strategies"][strategy] = {"Status": SKIPPED, "Reason": too_few, **info}
            notes.append(f"{strategy}: skipped, {too_few}")
            continue
        yield _Context(job, strategy, params, confounds, kept, uris, info)


def record_strategy(ctx, files: list[Path], coverage: dict, record: dict, notes: list) -> None:
    """Add a written strategy to the run's record and notes."""
    n_volumes = ctx.info["VolumesKept"] + ctx.info["VolumesCensored"]
    notes.append(
        f"{ctx.strategy}: {ctx.kept.size}/{n_volumes} volumes kept, {ctx.confounds.shape[1]} "
        f"regressors, lowest region coverage {min(coverage.values()):.2f}, {len(files)} files"
    )
    record["Strategies"][ctx.strategy] = {
        "Status": DONE,
        "MinRegionCoverage": coverage,
        "Outputs": [str(f) for f in files],
        **ctx.info,
    }


def finish_run(job: RunJob, written: list[Path], record: dict, notes: list):
    """Set the run's status from its strategies and write its completion record, last."""
    strategies = record["Strategies"].values()
    if all(rec["Status"] == SKIPPED for rec in strategies):
        record["Status"] = SKIPPED
    skips = [
        f"{s}: skipped, {r['Reason']}"
        for s, r in record["Strategies"].items()
        if r["Status"] == SKIPPED
    ]
    reason = "; ".join(skips) if record["Status"] == SKIPPED else ""
    writer.mark_run_complete(job.config.output_dir, job.stem, written, record)
    return record["Status"], [str(p) for p in written], notes, reason


def _too_few_volumes(n_kept: int, n_regressors: int, min_volumes: int) -> str:
    """Return why a strategy leaves too few volumes, or an empty string."""
    if n_kept < min_volumes:
        return f"{n_kept} volumes left after censoring (--min-volumes {min_volumes})"
    if n_kept <= n_regressors + 1:
        return (
            f"{n_kept} volumes left after censoring for {n_regressors} confound regressors "
            "(no degrees of freedom left)"
        )
    return ""


@dataclass
class _Context:
    """One run cleaned with one strategy: what every output of that strategy needs."""

    job: RunJob
    strategy: str
    params: dict
    confounds: pd.DataFrame
    kept: np.ndarray
    uris: dict
    info: dict
    #: The matrices written, by (atlas position, ``--connectivity`` option): for the report.
    matrices: dict = field(default_factory=dict)

    def clean(self, signals: np.ndarray) -> np.ndarray:
        """Clean (n_volumes, n) signals; return the kept volumes, float32.

        Columns without data (NaN) are left out of the cleaning and stay NaN.
        """
        with_data = np.isfinite(signals).all(axis=0)
        if with_data.all():
            return self._clean(signals)
        out = np.full((self.kept.size, signals.shape[1]), np.nan, dtype=np.float32)
        if with_data.any():
            out[:, with_data] = self._clean(signals[:, with_data])
        return out

    def _clean(self, signals: np.ndarray) -> np.ndarray:
        config = self.job.config
        t_r = self.job.run.repetition_time
        for option, freq in (("--low-pass", config.low_pass), ("--high-pass", config.high_pass)):
            if freq is not None and freq >= 0.5 / t_r:  # the library would lower it (nilearn)
                raise DataError(
                    f"{self.job.run.bold}: {option} {freq:g} Hz is not below the Nyquist "
                    f"frequency {0.5 / t_r:g} Hz of this run (TR {t_r:g} s)."
                )
        return signal.clean(
            signals,
            detrend=config.detrend,
            standardize=config.standardize,
            sample_mask=None if self.kept.size == signals.shape[0] else self.kept,
            confounds=self.confounds.to_numpy() if self.confounds.shape[1] else None,
            standardize_confounds=True,
            filter="butterworth",
            low_pass=config.low_pass,
            high_pass=config.high_pass,
            t_r=self.job.run.repetition_time,
        )

    def sidecar(self) -> dict:
        """Fields shared by the strategy's time series and denoised BOLD sidecars."""
        config = self.job.config
        params = {k: v for k, v in self.params.items() if k != "columns"}
        if isinstance(params.get("confounds_file"), str):
            params["confounds_file"] = self.uris["confounds"]
        return {
            "SamplingFrequency": 1.0 / self.job.run.repetition_time,
            "RepetitionTime": self.job.run.repetition_time,
            "Sources": [self.uris["bold"], self.uris["confounds"], self.uris["mask"]],
            "Strategy": self.strategy,
            "ConfoundColumns": list(self.confounds.columns),
            "ConfoundParameters": params,
            "CleaningParameters": {
                "detrend": self.job.config.detrend,
                "standardize": config.standardize,
                "standardize_confounds": True,
                "filter": "butterworth" if config.low_pass or config.high_pass else None,
                "high_pass": config.high_pass,
                "low_pass": config.low_pass,
                "smoothing_fwhm": config.smoothing_fwhm,
                "t_r": self.job.run.repetition_time,
            },
            "VolumesTotal": int(self.info["VolumesKept"] + self.info["VolumesCensored"]),
            **self.info,
            "SampleMask": self.kept.tolist(),
            "SoftwareVersion": f"bidsmask {__version__}",
        }


def _write_strategy(
    ctx: _Context, atlases: list[Atlas], specs: list, signals: list[np.ndarray], mask_img
) -> tuple[list[Path], dict]:
    """Clean and write one strategy's time series, matrices and denoised BOLD."""
    job, out, config = ctx.job, ctx.job.config.output_dir, ctx.job.config
    plan = job.outputs
    common = ctx.sidecar()
    written: list[Path] = []
    min_coverage = {}
    for i, (atlas, (spec, positions, data_coverage, unavailable), raw) in enumerate(
        zip(atlases, specs, signals, strict=False)
    ):
        cleaned = ctx.clean(raw)
        where = f"{job.stem} (strategy {ctx.strategy})"
        constant = cov.blank_constant(where, atlas, positions, raw[ctx.kept], cleaned)
        table, coverage = region_table(
            atlas, spec, positions, cleaned, config.min_coverage, data_coverage
        )
        node_file = writer.bids_uri(out / writer.atlas_table_name(atlas), out)
        names = list(atlas.region_names)
        sidecar = {
            **common,
            "Description": _describe(atlas, ctx.strategy),
            "Atlas": atlas.spec.text,
            "NodeFiles": [node_file],
            "RegionCoverage": dict(zip(names, coverage.round(4).tolist(), strict=True)),
            "MinCoverage": config.min_coverage,
            "RegionsBelowMinCoverage": [n for n in names if n in unavailable],
            "RegionsNotAvailable": {**constant, **unavailable},
        }
        timeseries = plan.timeseries(i, ctx.strategy).path
        written += write_table(out, timeseries, table, sidecar)
        min_coverage[atlas.spec.text] = float(coverage.min())
        values = table.to_numpy()
        for option in config.connectivity:
            relmat = plan.relmat(i, ctx.strategy, option).path
            files, ctx.matrices[i, option] = write_relmat(
                out, relmat, option, values, names, [node_file], timeseries
            )
            written += files
    if config.save_denoised_bold:
        cleaned = ctx.clean(signals[-1])
        img = masking.unmask(cleaned, mask_img)
        img.header.set_zooms((*img.header.get_zooms()[:3], job.run.repetition_time))
        img.header.set_xyzt_units("mm", "sec")
        sidecar = {**common, "SkullStripped": True, "Description": _describe(None, ctx.strategy)}
        written += write_image(out, plan.bold(ctx.strategy).path, img, sidecar)
    return written, min_coverage


def _describe(atlas: Atlas | None, strategy: str) -> str:
    if atlas is None:
        what = "BOLD signal of every voxel of the mask"
    elif atlas.kind == "maps":
        what = f"Least-squares signal of each map of atlas {atlas.spec.text}"
    elif atlas.kind == "spheres":
        what = f"Mean BOLD signal in a sphere around each coordinate of {atlas.spec.text}"
    else:
        what = f"Mean BOLD signal of each region of atlas {atlas.spec.text}"
    return f"{what}, cleaned with denoising strategy {strategy!r}; censored volumes removed."


def _framewise_displacement(confounds: Path, bold: Path, n_volumes: int) -> np.ndarray | None:
    """Return the run's framewise displacement (NaN for the first volume), if fMRIPrep wrote it.

    A confounds table without one row per volume of the BOLD is a DataError naming both files.
    """
    header = pd.read_csv(confounds, sep="\t", nrows=0).columns
    fd = "framewise_displacement"
    column = fd if fd in header else header[0]  # one column parsed: the table may be wide
    table = pd.read_csv(confounds, sep="\t", usecols=[column], na_values="n/a")
    if len(table) != n_volumes:
        raise DataError(
            f"Confounds file {confounds} has {len(table)} rows but {bold} has {n_volumes} "
            "volumes; they must be fMRIPrep's outputs of the same run (re-run fMRIPrep)."
        )
    return table[fd].to_numpy(dtype=float) if column == fd else None
