"""The ``bidsmask`` command: ``bidsmask BIDS_DIR OUTPUT_DIR {participant,group} [options]``.

Three parts, each testable on its own:

- :func:`_build_parser` builds the :mod:`argparse` parser and nothing else;
- :func:`parse_args` validates the command line into a frozen :class:`~bidsmask.app.config.Config`
  (single values in argparse ``type=`` callables that name the bad value, option combinations
  here, with the fix in the message);
- :func:`main` sets up logging, runs the requested level and returns the exit code.

Nothing runs at import and nothing touches the network while parsing.

Exit codes (BIDS Apps execution draft): 0 ok, 1 unexpected failure, 18 the filters matched
nothing or a participant was not found, 64 usage error, 65 bad input data, 66 missing input,
73 OUTPUT_DIR cannot be created or written. See :mod:`bidsmask.app.exitcodes`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from bidsmask._version import __version__
from bidsmask.app import config as cfg
from bidsmask.app.config import Config, Space, strategy_label
from bidsmask.app.exitcodes import (
    EPILOG,
    USAGE,
    AppError,
    MissingInputError,
    OutputError,
    UsageError,
    unreadable_input,
)

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Turn fMRIPrep derivatives into analysis-ready data: for every run, the brain mask used, region
time series cleaned of confounds (one TSV per atlas and denoising strategy), connectivity
matrices and a QC record, written as BIDS-Derivatives with JSON sidecars. Run the participant
level first (one job per participant is fine, into the same OUTPUT_DIR), then the group level
(group mask, QC table of every run, group-average connectivity).

TemplateFlow atlases are read from $TEMPLATEFLOW_HOME and never downloaded while processing;
prefetch them with `bidsmask-fetch-templates` on a machine with internet access.

Options that take several values may also be repeated: `--atlas A B` is `--atlas A --atlas B`.

example:
  bidsmask /data/bids /data/bidsmask participant --participant-label 01 02 \\
      --atlas Schaefer2018:400Parcels7Networks DiFuMo:64dimensions --strategy simple 36P
  bidsmask /data/bids /data/bidsmask group
"""


# List options accumulate (``--atlas A --atlas B`` is ``--atlas A B``): argparse's "extend"
# would add the values to a default list, so the parser has none and these are filled in after.
_LIST_DEFAULTS = {
    "space": (Space(cfg.DEFAULT_SPACE),),
    "atlas": (cfg.DEFAULT_ATLAS,),
    "strategy": (cfg.DEFAULT_STRATEGY,),
    "connectivity": (cfg.DEFAULT_CONNECTIVITY,),
}


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors exit with code 64 (EX_USAGE), not argparse's 2."""

    def error(self, message: str) -> None:  # noqa: D102 - argparse's documented hook
        self.print_usage(sys.stderr)
        self.exit(USAGE, f"{self.prog}: error: {message}\n")


def _type(convert: Callable[[str], object], what: str) -> Callable[[str], object]:
    """Wrap ``convert`` so that a failure names the value and what was expected."""

    def parse(text: str) -> object:
        try:
            return convert(text)
        except ValueError as exc:
            detail = str(exc)
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {what}" + (f" ({detail})" if detail else "")
            ) from None

    parse.__name__ = what  # argparse uses it in its own "invalid <name> value" messages
    return parse


def _build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser (no validation across options, no side effects).

    Returns
    -------
    argparse.ArgumentParser
        The parser; its usage errors exit with code 64.
    """
    parser = _Parser(
        prog="bidsmask",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "bids_dir",
        type=Path,
        help="the BIDS dataset, or the fMRIPrep derivatives folder itself "
        "(fMRIPrep output is looked for in BIDS_DIR, then BIDS_DIR/derivatives/fmriprep; "
        "see --derivatives). Never written to.",
    )
    parser.add_argument(
        "output_dir",
        type=Path,
        help="where outputs go (created if needed). Must not be BIDS_DIR or inside it.",
    )
    parser.add_argument(
        "analysis_level",
        choices=("participant", "group"),
        help="'participant': process runs; 'group': summarise all participant outputs in "
        "OUTPUT_DIR (run it after the participant level).",
    )
    parser.add_argument("--version", action="version", version=f"bidsmask {__version__}")

    sel = parser.add_argument_group("selecting runs")
    sel.add_argument(
        "--participant-label",
        "--participant_label",
        dest="participant_label",
        nargs="+",
        action="extend",
        metavar="LABEL",
        type=_type(cfg.strip_prefix("sub-"), "a participant label"),
        help="participants to process, with or without 'sub-' (e.g. 01 sub-02). Default: all.",
    )
    sel.add_argument(
        "--session-label",
        nargs="+",
        action="extend",
        metavar="LABEL",
        type=_type(cfg.strip_prefix("ses-"), "a session label"),
        help="sessions to process, with or without 'ses-'. Default: all.",
    )
    sel.add_argument(
        "--task",
        nargs="+",
        action="extend",
        metavar="LABEL",
        type=_type(cfg.strip_prefix("task-"), "a task label"),
        help="tasks to process, with or without 'task-'. Default: all.",
    )
    sel.add_argument(
        "--bids-filter-file",
        metavar="FILE",
        type=_type(cfg.read_filter_file, "a BIDS filter file"),
        help='JSON file of extra pybids filters, fMRIPrep style; its "bold" query selects '
        'the runs, e.g. {"bold": {"acquisition": "mb4"}}. Default: none.',
    )
    sel.add_argument(
        "--derivatives",
        metavar="PATH",
        type=Path,
        help="the fMRIPrep output folder, when it is neither BIDS_DIR nor "
        "BIDS_DIR/derivatives/fmriprep. Default: found automatically.",
    )
    sel.add_argument(
        "--space",
        nargs="+",
        action="extend",
        metavar="SPACE",
        type=_type(Space.parse, "a space"),
        help="output spaces of the fMRIPrep runs to use, optionally with a resolution "
        "(e.g. MNI152NLin2009cAsym:res-2, MNI152NLin6Asym, T1w). Without res-, every resolution "
        "present is used. fsLR (fsLR:den-91k by default, or fsLR:den-170k) uses fMRIPrep's "
        f"CIFTI grayordinate runs (*_bold.dtseries.nii). Default: {cfg.DEFAULT_SPACE}.",
    )

    atl = parser.add_argument_group("atlases")
    atl.add_argument(
        "--atlas",
        nargs="+",
        action="extend",
        metavar="ATLAS",
        help="one or more atlases: a TemplateFlow atlas 'NAME:DESC' "
        "(Schaefer2018:400Parcels7Networks, DiFuMo:64dimensions, HOSPA:th25, HOCPA:th25 …) "
        "read from $TEMPLATEFLOW_HOME; a local "
        "dseg/probseg NIfTI (a .tsv label table next to it is used); a packaged coordinate "
        "set (Power2011, Dosenbach2010) or a CSV of x,y,z coordinates (spheres of --radius); "
        "with --space T1w, fMRIPrep's own aparcaseg or aseg. "
        f"Default: {cfg.DEFAULT_ATLAS}.",
    )
    atl.add_argument(
        "--atlas-dataset",
        nargs="+",
        action="extend",
        metavar="PATH",
        type=Path,
        help="BIDS-Atlas folders (as XCP-D's) where --atlas NAME finds grayordinate atlases for "
        "fsLR runs: tpl-fsLR_atlas-NAME_den-<den>_dseg.dlabel.nii with its .tsv. In fsLR, "
        "--atlas also takes a .dlabel.nii path. Default: none.",
    )
    atl.add_argument(
        "--radius",
        metavar="MM",
        type=_type(cfg.POSITIVE_FLOAT, "a positive radius in mm"),
        default=cfg.DEFAULT_RADIUS,
        help=f"sphere radius in mm for coordinate atlases. Default: {cfg.DEFAULT_RADIUS:g}.",
    )
    atl.add_argument(
        "--min-coverage",
        metavar="FRACTION",
        type=_type(cfg.FRACTION, "a fraction between 0 and 1"),
        default=cfg.DEFAULT_MIN_COVERAGE,
        help="regions with a smaller fraction of their voxels inside the run's mask and with "
        "data (finite at every volume, not constant zero) get n/a time series and matrix rows. "
        f"Default: {cfg.DEFAULT_MIN_COVERAGE:g}.",
    )

    den = parser.add_argument_group("denoising")
    den.add_argument(
        "--strategy",
        nargs="+",
        action="extend",
        metavar="STRATEGY",
        help="one or more denoising strategies: nilearn presets (simple, scrubbing, compcor, "
        "ica_aroma), named sets (24P, 27P, 36P, acompcor, acompcor_gsr, gsr_only), any of these "
        "with '+gsr' (adds the global signal), or a JSON strategy file. Each gives its own "
        f"outputs (desc-<strategy>). Default: {cfg.DEFAULT_STRATEGY}.",
    )
    den.add_argument(
        "--fd-threshold",
        metavar="MM",
        type=_type(cfg.POSITIVE_FLOAT, "a positive framewise displacement in mm"),
        help="censor volumes with framewise displacement above this; with a strategy that does "
        "not scrub (e.g. simple) it turns scrubbing on. Default: the strategy's own (0.5 mm "
        "for scrubbing, none for the others).",
    )
    den.add_argument(
        "--std-dvars-threshold",
        metavar="VALUE",
        type=_type(cfg.POSITIVE_FLOAT, "a positive standardised DVARS"),
        help="censor volumes with standardised DVARS above this; with a strategy that does not "
        "scrub it turns scrubbing on. Default: the strategy's own (1.5 for scrubbing, none for "
        "the others).",
    )
    den.add_argument(
        "--dummy-scans",
        metavar="N",
        type=_type(cfg.in_range(int, 0), "a number of volumes (0 or more)"),
        help="also drop the first N volumes of each run, on top of the non-steady-state "
        "volumes fMRIPrep detected (always dropped). Default: the strategy's own (0 for every "
        "built-in strategy).",
    )
    den.add_argument(
        "--high-pass",
        metavar="HZ",
        type=_type(cfg.POSITIVE_FLOAT, "a positive frequency in Hz"),
        help="Butterworth high-pass cut-off in Hz (e.g. 0.01). Default: none (strategies with "
        "'high_pass' already regress fMRIPrep's cosine drift terms).",
    )
    den.add_argument(
        "--low-pass",
        metavar="HZ",
        type=_type(cfg.POSITIVE_FLOAT, "a positive frequency in Hz"),
        help="Butterworth low-pass cut-off in Hz (e.g. 0.08). Default: none.",
    )
    den.add_argument(
        "--smoothing-fwhm",
        metavar="MM",
        type=_type(cfg.POSITIVE_FLOAT, "a positive FWHM in mm"),
        help="spatial smoothing (Gaussian FWHM in mm) before extraction. Default: none.",
    )
    den.add_argument(
        "--no-detrend",
        dest="detrend",
        action="store_false",
        help="do not remove a linear trend from the signals before confound regression. "
        "Default: off (a linear trend is removed, on top of the strategies' cosine drift "
        "terms; see the README).",
    )
    den.add_argument(
        "--standardize",
        choices=cfg.STANDARDIZE_CHOICES,
        default=cfg.DEFAULT_STANDARDIZE,
        help="scaling of the cleaned time series: zscore_sample (unit sample variance), zscore "
        "(population variance), psc (percent signal change) or none. "
        f"Default: {cfg.DEFAULT_STANDARDIZE}.",
    )
    den.add_argument(
        "--min-volumes",
        metavar="N",
        type=_type(cfg.in_range(int, 1), "a positive number of volumes"),
        default=cfg.DEFAULT_MIN_VOLUMES,
        help="skip (and record in the QC table) a run with fewer volumes left after censoring, "
        "or with no more volumes than confound regressors. "
        f"Default: {cfg.DEFAULT_MIN_VOLUMES}.",
    )

    msk = parser.add_argument_group("masks")
    msk.add_argument(
        "--mask",
        choices=cfg.MASK_CHOICES,
        default="fmriprep",
        help="the mask of each run: fmriprep (the run's fMRIPrep brain mask), epi (recomputed "
        "from the BOLD with compute_epi_mask) or gm (the fMRIPrep mask intersected with a "
        "grey-matter prior: TemplateFlow's label-GM probseg of the space, or in T1w space the "
        "participant's own GM probseg, thresholded at --gm-threshold). Default: fmriprep.",
    )
    msk.add_argument(
        "--gm-threshold",
        metavar="P",
        type=_type(cfg.FRACTION, "a probability between 0 and 1"),
        default=cfg.DEFAULT_GM_THRESHOLD,
        help="grey-matter probability a voxel needs for --mask gm. 0.5 keeps voxels where grey "
        "matter is the majority tissue, so grey matter is their most likely class. "
        f"Default: {cfg.DEFAULT_GM_THRESHOLD:g}.",
    )
    msk.add_argument(
        "--group-mask-threshold",
        metavar="FRACTION",
        type=_type(cfg.FRACTION, "a fraction between 0 and 1"),
        default=cfg.DEFAULT_GROUP_MASK_THRESHOLD,
        help="group level: a voxel enters the group mask when it is in at least this fraction "
        "of the runs' masks (1 = intersection, 0 = union). "
        f"Default: {cfg.DEFAULT_GROUP_MASK_THRESHOLD:g}.",
    )

    out = parser.add_argument_group("outputs")
    out.add_argument(
        "--connectivity",
        nargs="+",
        action="extend",
        choices=cfg.CONNECTIVITY_CHOICES,
        metavar="MEASURE",
        help="connectivity matrices to write per atlas and strategy: correlation (Pearson), "
        "partial-correlation, covariance, or none. "
        f"Default: {cfg.DEFAULT_CONNECTIVITY}.",
    )
    out.add_argument(
        "--save-denoised-bold",
        action="store_true",
        help="also write the cleaned voxel time series inside the mask as a 4D NIfTI per "
        "strategy (large). Default: off.",
    )
    out.add_argument(
        "--combine-runs",
        action="store_true",
        help="also join the runs of each participant, session, task and space: the kept volumes "
        "of the runs' cleaned time series, concatenated, and their connectivity, written without "
        "the run entity; the group level then uses them. Default: off.",
    )
    out.add_argument(
        "--overwrite",
        action="store_true",
        help="recompute runs whose outputs are already complete. Default: off (a rerun skips "
        "them and finishes interrupted ones).",
    )

    out.add_argument(
        "--no-reports",
        dest="reports",
        action="store_false",
        help="do not draw figures or write the HTML reports (OUTPUT_DIR/sub-<label>.html, "
        "group.html). Default: reports on.",
    )
    out.add_argument(
        "--reports-only",
        action="store_true",
        help="only rebuild the reports from the outputs and run records already in OUTPUT_DIR "
        "(participant pages; at the group level also group.html); no BOLD is read. Default: off.",
    )

    perf = parser.add_argument_group("performance")
    perf.add_argument(
        "--nprocs",
        metavar="N",
        type=_type(cfg.in_range(int, 1), "a positive number of processes"),
        default=1,
        help="runs processed in parallel, one process each. Default: 1.",
    )
    perf.add_argument(
        "--omp-nthreads",
        "--omp_nthreads",
        metavar="N",
        type=_type(cfg.in_range(int, 1), "a positive number of threads"),
        help="BLAS/OpenMP threads per process. Default: the CPUs available to the job "
        "(affinity, cgroup quota, SLURM_CPUS_PER_TASK) divided by the processes.",
    )
    perf.add_argument(
        "--work-dir",
        metavar="PATH",
        type=Path,
        help="scratch folder (pybids database). Default: a temporary folder, removed at the end.",
    )

    log = parser.add_argument_group("logging")
    log.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more detail (-vv for debugging). A log file is always written in OUTPUT_DIR/logs.",
    )
    log.add_argument(
        "-q", "--quiet", action="store_true", help="only warnings, errors and the summary."
    )
    return parser


def parse_args(argv: Sequence[str] | None = None) -> Config:
    """Parse and validate a command line into a :class:`~bidsmask.app.config.Config`.

    Parameters
    ----------
    argv : sequence of str or None
        The arguments after the program name; None reads ``sys.argv[1:]``.

    Returns
    -------
    Config
        The validated configuration.

    Raises
    ------
    SystemExit
        For ``--help``/``--version`` (code 0) and malformed options (code 64).
    UsageError
        Options that contradict each other (exit code 64).
    MissingInputError
        BIDS_DIR or the fMRIPrep derivatives do not exist (exit code 66).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    ns = _build_parser().parse_args(argv)
    for dest, default in _LIST_DEFAULTS.items():
        if getattr(ns, dest) is None:
            setattr(ns, dest, list(default))

    bids_dir = ns.bids_dir.expanduser().resolve()
    if not bids_dir.is_dir():
        raise MissingInputError(f"BIDS_DIR not found: {bids_dir}. Give an existing folder.")
    output_dir = ns.output_dir.expanduser().resolve()
    from bidsmask.bids.layout import find_fmriprep_dir

    try:
        fmriprep_dir = find_fmriprep_dir(bids_dir, ns.derivatives).resolve()
    except FileNotFoundError as exc:
        raise MissingInputError(str(exc)) from None
    for inputs in {bids_dir, fmriprep_dir}:
        if output_dir == inputs or output_dir.is_relative_to(inputs):
            raise UsageError(
                f"OUTPUT_DIR {output_dir} is {'' if output_dir == inputs else 'inside '}the "
                f"input folder {inputs}; inputs are never written to. Choose an OUTPUT_DIR "
                f"outside it, e.g. {inputs.parent / 'bidsmask'}."
            )
    if ns.low_pass is not None and ns.high_pass is not None and ns.low_pass <= ns.high_pass:
        raise UsageError(
            f"--low-pass {ns.low_pass:g} Hz must be above --high-pass {ns.high_pass:g} Hz "
            "(a band-pass keeps the frequencies between them)."
        )
    connectivity = tuple(dict.fromkeys(ns.connectivity))
    if "none" in connectivity:
        if len(connectivity) > 1:
            raise UsageError(
                f"--connectivity {' '.join(connectivity)}: 'none' cannot be combined with "
                "other measures; give either 'none' or the measures you want."
            )
        connectivity = ()
    strategies = tuple(dict.fromkeys(cfg.check_strategy(s) for s in ns.strategy))
    labels = [strategy_label(s) for s in strategies]
    clashes = sorted({lab for lab in labels if labels.count(lab) > 1})
    if clashes:
        raise UsageError(
            f"--strategy {' '.join(ns.strategy)}: several strategies would write the same "
            f"desc-{clashes[0]} outputs; keep only one of them."
        )
    atlases = tuple(dict.fromkeys(ns.atlas))
    for atlas in atlases:
        cfg.check_atlas(atlas)
    if ns.analysis_level == "group" and (ns.session_label or ns.task or ns.bids_filter_file):
        logger.warning(
            "--session-label/--task/--bids-filter-file select runs at the participant level; "
            "the group level summarises every run found in OUTPUT_DIR for the selected "
            "participants."
        )
    if ns.reports_only and not ns.reports:
        raise UsageError("--reports-only and --no-reports contradict each other; give one.")
    work_dir = None if ns.work_dir is None else ns.work_dir.expanduser().resolve()
    return Config(
        bids_dir=bids_dir,
        output_dir=output_dir,
        analysis_level=ns.analysis_level,
        fmriprep_dir=fmriprep_dir,
        participant_label=tuple(dict.fromkeys(ns.participant_label or ())),
        session_label=tuple(dict.fromkeys(ns.session_label or ())),
        task=tuple(dict.fromkeys(ns.task or ())),
        bids_filters=ns.bids_filter_file or {},
        spaces=tuple(dict.fromkeys(ns.space)),
        atlases=atlases,
        atlas_datasets=_atlas_datasets(ns.atlas_dataset or []),
        radius=ns.radius,
        strategies=strategies,
        fd_threshold=ns.fd_threshold,
        std_dvars_threshold=ns.std_dvars_threshold,
        dummy_scans=ns.dummy_scans,
        high_pass=ns.high_pass,
        low_pass=ns.low_pass,
        smoothing_fwhm=ns.smoothing_fwhm,
        detrend=ns.detrend,
        standardize=None if ns.standardize == "none" else ns.standardize,
        min_coverage=ns.min_coverage,
        min_volumes=ns.min_volumes,
        mask=ns.mask,
        gm_threshold=ns.gm_threshold,
        save_denoised_bold=ns.save_denoised_bold,
        combine_runs=ns.combine_runs,
        connectivity=connectivity,
        group_mask_threshold=ns.group_mask_threshold,
        nprocs=ns.nprocs,
        omp_nthreads=ns.omp_nthreads,
        work_dir=work_dir,
        overwrite=ns.overwrite,
        reports=ns.reports,
        reports_only=ns.reports_only,
        verbosity=-1 if ns.quiet else ns.verbose,
        argv=tuple(argv),
    )


def _atlas_datasets(paths: list[Path]) -> tuple[Path, ...]:
    """Resolve the --atlas-dataset folders (MissingInputError for one that does not exist)."""
    folders = tuple(dict.fromkeys(p.expanduser().resolve() for p in paths))
    for folder in folders:
        if not folder.is_dir():
            raise MissingInputError(f"--atlas-dataset: folder not found: {folder}.")
    return folders


def _run_level(config: Config, log_file: Path) -> int:
    """Run the requested analysis level; the import waits so that ``--help`` stays fast."""
    if config.reports_only:
        from bidsmask.app.report_pages import rebuild_reports

        return rebuild_reports(config)
    if config.analysis_level == "participant":
        from bidsmask.app.participant import run_participant_level

        return run_participant_level(config, log_file)
    from bidsmask.app.group import run_group_level

    return run_group_level(config)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``bidsmask`` and return its exit code (the console script's entry point).

    Parameters
    ----------
    argv : sequence of str or None
        The arguments after the program name; None reads ``sys.argv[1:]``.

    Returns
    -------
    int
        0 on success, else one of the codes in :mod:`bidsmask.app.exitcodes`.
    """
    from bidsmask.app.progress import log_file_path, logging_to

    try:
        config = parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else USAGE
    except AppError as exc:
        with logging_to(0):
            logger.error("%s", exc)
        return exc.exit_code

    try:
        cfg.prepare_output_dir(config.output_dir)
        config.logs_dir.mkdir(exist_ok=True)
    except (AppError, OSError) as exc:
        with logging_to(config.verbosity):
            logger.error("%s", exc)
        return exc.exit_code if isinstance(exc, AppError) else OutputError.exit_code

    log_file = log_file_path(config.logs_dir, config.analysis_level)
    with logging_to(config.verbosity, log_file):
        logger.debug("bidsmask %s, Python %s", __version__, sys.version.split()[0])
        logger.debug("Configuration saved to %s", config.save())
        try:
            return _run_level(config, log_file)
        except AppError as exc:
            logger.error("%s", exc)
            return exc.exit_code
        except KeyboardInterrupt:
            logger.error("Interrupted; rerun the same command to finish (completed runs are kept).")
            return 130
        except Exception as exc:
            unreadable = unreadable_input(exc)  # a file that nibabel or pandas could not read
            if unreadable is not None:
                logger.debug("Reading an input failed", exc_info=True)
                logger.error("%s", unreadable)
                return unreadable.exit_code
            logger.exception("Unexpected error; please report it with the log file %s", log_file)
            return 1


if __name__ == "__main__":
    raise SystemExit(main())
