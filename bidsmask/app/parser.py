"""The ``bidsmask`` command line's parser: every option, its help, type and choices.

Nothing is validated across options here (that is :func:`bidsmask.app.cli.parse_args`) and
nothing runs: the Boutiques descriptor (:mod:`bidsmask.app.boutiques`) is generated from this
parser, so the two never disagree.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from bidsmask._version import __version__
from bidsmask.app import config as cfg
from bidsmask.app.config import Space
from bidsmask.app.exitcodes import EPILOG, USAGE

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
LIST_DEFAULTS = {
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


def build_parser() -> argparse.ArgumentParser:
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
