"""The participant level: find the selected runs, process each, report progress.

:func:`run_participant_level` lists the runs with :func:`bidsmask.bids.layout.collect_runs`
(pybids database in the work dir), resolves every ``--atlas`` for each space
(:func:`plan_jobs`; an atlas missing from a space is an error before any run starts, and the atlases
used are written at the output root), then processes the runs one after the other, or in
``--nprocs`` worker processes (``spawn``), with :func:`process_run`; each run's steps are in
:mod:`bidsmask.app.run`. Before any run starts, every atlas is resampled once to each grid of the
runs (:func:`prepare_atlases`, cached in ``<work dir>/atlases``), and the CPUs the job may use are
divided between the workers (:mod:`bidsmask.app.resources`; the log states the split). A progress
line is logged as each run finishes, then the summary; ``dataset_description.json`` is written in
a ``finally``.

Resume: a run whose completion record (``OUTPUT_DIR/logs/runs/<run>.json``) lists every expected
output, unchanged, made with the same parameters, is not redone unless ``--overwrite``; a run
killed part-way has no record and is redone (its stale temporary files removed). A run made with
other parameters is redone; files of strategies or atlases no longer requested stay on disk but
are not in the run's record, so the group level ignores them. One failing run does not stop the
others: it is recorded as failed and sets the exit code. With ``--combine-runs``, the runs of each
participant × session × task × space are then joined (:mod:`bidsmask.app.combine`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import as_completed
from pathlib import Path

import nibabel as nib

from bidsmask._version import __version__
from bidsmask.app import atlas_cache, resources
from bidsmask.app.cifti_atlases import load_cifti_atlas
from bidsmask.app.combine import combine_runs
from bidsmask.app.config import Config
from bidsmask.app.exitcodes import (
    DataError,
    MissingInputError,
    NoMatchError,
    OutputError,
    UsageError,
    exit_code_for,
    reading,
    unreadable_input,
)
from bidsmask.app.progress import (
    DONE,
    FAILED,
    SKIPPED,
    UP_TO_DATE,
    Progress,
    RunOutcome,
    setup_worker_logging,
)
from bidsmask.app.report_pages import write_participant_reports
from bidsmask.app.reporting import has_figures
from bidsmask.app.run import RunJob, process, run_parameters
from bidsmask.atlases import Atlas, AtlasSpec, load_atlas, parse_atlas_spec
from bidsmask.bids import layout, writer
from bidsmask.bids.layout import RunRecord

logger = logging.getLogger(__name__)


def _remove_stale_temporaries(job: RunJob) -> None:
    """Remove the temporary files that a killed earlier attempt at this run left behind."""
    out = job.config.output_dir
    paths = [out / path for path in job.outputs.files()]
    paths.append(writer.run_marker_path(out, job.stem))
    for tmp in writer.remove_stale_temporaries(paths):
        logger.info("Removed %s, left by an interrupted earlier attempt.", tmp)


def _is_complete(job: RunJob) -> bool:
    out = job.config.output_dir
    record = writer.run_marker_path(out, job.stem)
    try:
        info = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if info.get("Status") not in (DONE, SKIPPED) or info.get("Parameters") != run_parameters(
        job.config
    ):
        return False
    strategies = info.get("Strategies") or {}
    skipped = {s for s, rec in strategies.items() if rec.get("Status") == SKIPPED}
    if job.config.reports and not job.grayordinates and not has_figures(out, info):
        return False
    return writer.is_run_complete(out, job.stem, job.outputs.files(skipped))


def process_run(job: RunJob) -> RunOutcome:
    """Process one run; never raises (a failure is returned, and recorded for the group level).

    Parameters
    ----------
    job : RunJob
        The run and its configuration.

    Returns
    -------
    RunOutcome
        Status, time, files written, and the reason of a skip or failure.
    """
    start = time.perf_counter()
    label = job.stem.replace("_", " ")
    if not job.config.overwrite and _is_complete(job):
        return RunOutcome(label, UP_TO_DATE)
    try:
        _remove_stale_temporaries(job)
        status, outputs, notes, reason = process(job)
    except Exception as exc:  # one bad run must not stop the others
        logger.debug("Run %s failed", job.stem, exc_info=True)
        error = unreadable_input(exc) or exc
        why = " ".join(str(error).split()) or type(error).__name__  # one line, whatever raised it
        info = {"Status": FAILED, "Reason": why, "Entities": job.source}
        try:
            writer.write_json(writer.run_marker_path(job.config.output_dir, job.stem), info)
        except OSError as write_error:
            logger.error("Cannot record the failure of %s: %s", job.stem, write_error)
        return RunOutcome(
            label,
            FAILED,
            time.perf_counter() - start,
            reason=why,
            exit_code=exit_code_for(error),
        )
    return RunOutcome(label, status, time.perf_counter() - start, outputs, reason, notes=notes)


def run_participant_level(config: Config, log_file: Path | None = None) -> int:
    """Process every selected run; return the exit code.

    Parameters
    ----------
    config : Config
        The validated configuration.
    log_file : Path or None
        The log file, which worker processes append to.

    Returns
    -------
    int
        0 when no run failed, else the exit code of the first failure.

    Raises
    ------
    NoMatchError
        No participant or run matched the selection (exit code 18).
    MissingInputError, DataError, UsageError
        An input is missing or unusable, or an atlas does not exist in a requested space.
    """
    out = config.output_dir
    try:
        runs = _collect_runs(config)
        jobs = plan_jobs(config, runs)
        participants = sorted({run.subject for run in runs})
        logger.info(
            "bidsmask %s: %d run(s) of %d participant(s) (%s) → %s, %d process(es)",
            __version__,
            len(jobs),
            len(participants),
            ", ".join(f"sub-{p}" for p in participants),
            out,
            min(config.nprocs, len(jobs)),
        )
        split = resources.split_cpus(config.nprocs, len(jobs), config.omp_nthreads)
        logger.info("%s", split.describe())
        progress = Progress(len(jobs), out)
        with atlas_cache_dir(config) as cache_dir:
            jobs = prepare_atlases(jobs, cache_dir)
            for outcome in _execute(jobs, split, config, log_file):
                progress.report(outcome)
        if config.combine_runs:
            combine_runs(jobs)
        if config.reports:
            write_participant_reports(out, participants)
        progress.log_summary(log_file)
    finally:
        description = writer.dataset_description(
            {"fmriprep": config.fmriprep_dir},
            source_versions={"fmriprep": layout.fmriprep_version(config.fmriprep_dir)},
        )
        writer.write_dataset_description(out, description)
    failures = [o for o in progress.outcomes if o.status == FAILED]
    return failures[0].exit_code if failures else 0


def _collect_runs(config: Config) -> list[RunRecord]:
    """Find the runs (pybids database in the work dir, a temporary one by default)."""
    try:
        work = config.work_dir or Path(tempfile.mkdtemp(prefix="bidsmask-work-"))
    except OSError as exc:  # e.g. a read-only container without a writable /tmp
        raise OutputError(
            f"Cannot create a temporary folder ({exc.strerror or exc}): pass --work-dir PATH (a "
            "writable folder), or give the container a writable /tmp (docker run --tmpfs /tmp)."
        ) from None
    try:
        return layout.collect_runs(
            config.fmriprep_dir,
            work,
            participants=config.participant_label or None,
            sessions=config.session_label or None,
            tasks=config.task or None,
            spaces=[str(space) for space in config.spaces],
            bids_filters=config.bids_filters,
        )
    except (layout.ParticipantNotFoundError, layout.NoRunsFoundError) as exc:
        raise NoMatchError(str(exc)) from None
    except FileNotFoundError as exc:
        raise MissingInputError(str(exc)) from None
    except ValueError as exc:
        raise DataError(str(exc)) from None
    finally:
        if config.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)


def plan_jobs(config: Config, runs: list[RunRecord]) -> list[RunJob]:
    """Resolve the atlases for each space (writing them at the output root) and pair them with runs.

    Raises
    ------
    UsageError
        An atlas does not exist in a requested space (e.g. a coordinate set in ``T1w``).
    MissingInputError
        An atlas's files are missing (the message says how to fetch them).
    """
    resolved: dict[tuple[str, str | None], tuple[tuple[Atlas, ...], tuple[AtlasSpec, ...]]] = {}
    jobs = []
    for run in runs:
        key = (run.space, run.res or run.entities.get("den"))
        if key not in resolved:
            atlases, native = [], []
            for text in config.atlases:
                spec = parse_atlas_spec(text)
                if spec.source == "native" and run.space == "T1w":
                    native.append(spec)
                    continue
                try:
                    with reading(spec.path or text):
                        if run.mask is None:  # a grayordinate run: the atlas must be a dlabel
                            atlas = load_cifti_atlas(
                                spec, run.space, run.entities.get("den"), config.atlas_datasets
                            )
                        else:
                            atlas = load_atlas(spec, run.space, run.res)
                    atlases.append(atlas)
                except FileNotFoundError as exc:
                    raise MissingInputError(f"--atlas {text}: {exc}") from None
                except ValueError as exc:
                    raise UsageError(f"--atlas {text}: {exc}") from None
                writer.write_atlas(config.output_dir, atlases[-1])
            resolved[key] = (tuple(atlases), tuple(native))
        atlases, native = resolved[key]
        jobs.append(RunJob(config, run, atlases, native))
    return jobs


@contextlib.contextmanager
def atlas_cache_dir(config: Config) -> Iterator[Path]:
    """Yield the prepared atlases' folder: ``<work dir>/atlases``, or a temporary one."""
    if config.work_dir is not None:
        yield config.work_dir / "atlases"
        return
    with tempfile.TemporaryDirectory(prefix="bidsmask-atlases-") as folder:
        yield Path(folder)


def prepare_atlases(jobs: list[RunJob], cache_dir: Path) -> list[RunJob]:
    """Resample every atlas to every grid of the runs once, before any run starts.

    Returns the jobs with ``atlas_cache`` set, so that each run (and each worker) loads the
    prepared atlases from ``cache_dir`` (:mod:`bidsmask.app.atlas_cache`).
    """
    todo = []
    for job in jobs:
        if job.grayordinates:
            continue  # dlabel atlases are aligned by index in the run itself (cheap)
        if job.config.overwrite or not _is_complete(job):
            try:
                with reading(job.run.bold):
                    header = nib.load(job.run.bold)
            except (DataError, OSError):
                continue  # the run itself reports its unreadable BOLD, as its failure
            grid = (tuple(header.shape[:3]), header.affine)
            todo += [(a.image, a.kind, *grid) for a in job.atlases if a.kind != "spheres"]
    start = time.perf_counter()
    count = 0
    for image in dict.fromkeys(item[0] for item in todo):  # one atlas file at a time
        with reading(image):
            count += atlas_cache.prepare([item for item in todo if item[0] == image], cache_dir)
    if count:
        logger.info(
            "Prepared %d atlas grid(s) in %.1f s (cache: %s)",
            count,
            time.perf_counter() - start,
            cache_dir,
        )
    return [dataclasses.replace(job, atlas_cache=cache_dir) for job in jobs]


def _execute(
    jobs: list[RunJob], split: resources.CpuSplit, config: Config, log_file: Path | None
) -> Iterator[RunOutcome]:
    """Yield the outcome of each run as it finishes (in worker processes with ``--nprocs``)."""
    if split.workers == 1:
        with resources.limit_threads(split.threads):
            for job in jobs:
                logger.debug("Starting %s", job.stem)
                yield process_run(job)
        return
    with resources.worker_pool(
        split,
        initializer=setup_worker_logging,
        initargs=(config.verbosity, None if log_file is None else str(log_file)),
    ) as pool:
        futures = {pool.submit(process_run, job): job for job in jobs}
        for future in as_completed(futures):
            try:
                yield future.result()
            except Exception as exc:  # a worker killed (e.g. out of memory) or unpicklable error
                job = futures[future]
                yield RunOutcome(job.stem.replace("_", " "), FAILED, reason=repr(exc), exit_code=1)
