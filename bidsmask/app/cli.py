"""The ``bidsmask`` command: ``bidsmask BIDS_DIR OUTPUT_DIR {participant,group} [options]``.

Three parts, each testable on its own:

- :func:`bidsmask.app.parser.build_parser` builds the :mod:`argparse` parser and nothing else;
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

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from bidsmask._version import __version__
from bidsmask.app import config as cfg
from bidsmask.app.config import Config, strategy_label
from bidsmask.app.exitcodes import (
    USAGE,
    AppError,
    MissingInputError,
    OutputError,
    UsageError,
    unreadable_input,
)
from bidsmask.app.parser import LIST_DEFAULTS, build_parser

logger = logging.getLogger(__name__)


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
    ns = build_parser().parse_args(argv)
    for dest, default in LIST_DEFAULTS.items():
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
