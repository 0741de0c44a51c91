"""``bidsmask-demo OUT``: run the whole app on a tiny dataset it makes itself, offline.

Writes, under OUT:

- ``fmriprep/`` — a synthetic fMRIPrep ≥ 21 derivatives dataset (2 participants, one with two
  sessions, a resting-state and a two-run task, 80 volumes of 8 mm voxels) made by
  :func:`bidsmask.datagen.make_fmriprep_dataset`, with the brain shape of the MNI152 template
  shipped in the package (:mod:`bidsmask.templates`);
- ``templateflow/`` — a TemplateFlow-layout folder with a Schaefer-2018-like 100-parcel atlas and a
  DiFuMo-like 64-map atlas (:func:`bidsmask.datagen.make_templateflow_home`), used as
  ``TEMPLATEFLOW_HOME`` for the run, so nothing is downloaded;
- ``bidsmask/`` — the outputs of ``bidsmask fmriprep bidsmask participant`` (both atlases,
  strategies ``simple`` and ``scrubbing``) followed by the group level, with the reports
  ``sub-01.html``, ``sub-02.html`` and ``group.html`` (their paths are printed at the end).

Running it again on the same OUT reuses the data and skips completed runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from bidsmask.app import cli
from bidsmask.app.exitcodes import CANNOT_CREATE, OK

ATLASES = ("Schaefer2018:100Parcels7Networks", "DiFuMo:64dimensions")
DESCRIPTION = """\
Run bidsmask end to end on a tiny dataset made here, with no network access. Under OUT:
  fmriprep/      a synthetic fMRIPrep dataset (2 participants, sessions, rest + a 2-run task)
  templateflow/  a TemplateFlow folder with two small atlases (Schaefer-like, DiFuMo-like)
  bidsmask/      the outputs of the participant level (both atlases, strategies simple and
                 scrubbing) and of the group level
Running it again on the same OUT reuses the data and skips completed runs.
"""
STRATEGIES = ("simple", "scrubbing")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bidsmask-demo",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "out",
        type=Path,
        help="folder for the demo data and outputs (created; must be empty or a previous demo).",
    )
    parser.add_argument(
        "--nprocs", metavar="N", type=int, default=1, help="runs processed in parallel. Default: 1."
    )
    return parser


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Set environment variables for the duration of the block, then restore them."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def make_demo_data(out: Path) -> tuple[Path, Path]:
    """Create (or reuse) the demo's fMRIPrep dataset and TemplateFlow folder under ``out``.

    Parameters
    ----------
    out : Path
        The demo folder.

    Returns
    -------
    fmriprep_dir, templateflow_dir : Path
        ``out/fmriprep`` and ``out/templateflow``.
    """
    from bidsmask.datagen import make_fmriprep_dataset, make_templateflow_home
    from bidsmask.masking._templates import load_mni152_brain_mask

    fmriprep_dir, templateflow_dir = out / "fmriprep", out / "templateflow"
    brain = None
    if not (fmriprep_dir / "dataset_description.json").is_file():
        brain = load_mni152_brain_mask()
        print(f"Making a synthetic fMRIPrep dataset in {fmriprep_dir} …", flush=True)
        make_fmriprep_dataset(fmriprep_dir, brain)
    if not (templateflow_dir / "tpl-MNI152NLin2009cAsym").is_dir():
        print(f"Making a TemplateFlow folder with two atlases in {templateflow_dir} …", flush=True)
        make_templateflow_home(templateflow_dir, brain or load_mni152_brain_mask())
    return fmriprep_dir, templateflow_dir


def main(argv: Sequence[str] | None = None) -> int:
    """Build the demo data, run the participant and group levels, say where the outputs are.

    Parameters
    ----------
    argv : sequence of str or None
        Command-line arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, else the exit code of the failing step.
    """
    args = _build_parser().parse_args(argv)
    out = args.out.expanduser().resolve()
    known = {"fmriprep", "templateflow", "bidsmask", "work"}
    if out.exists() and (not out.is_dir() or not {p.name for p in out.iterdir()} <= known):
        print(
            f"bidsmask-demo: {out} exists and is not an earlier demo folder; give a new or "
            "empty folder.",
            file=sys.stderr,
        )
        return CANNOT_CREATE
    try:
        fmriprep_dir, templateflow_dir = make_demo_data(out)
    except OSError as exc:
        print(f"bidsmask-demo: cannot write the demo data in {out}: {exc}", file=sys.stderr)
        return CANNOT_CREATE
    outputs = out / "bidsmask"
    common = [str(fmriprep_dir), str(outputs)]
    participant = [
        *common,
        "participant",
        "--atlas",
        *ATLASES,
        "--strategy",
        *STRATEGIES,
        "--nprocs",
        str(args.nprocs),
        "--work-dir",
        str(out / "work"),
    ]
    env = {"TEMPLATEFLOW_HOME": str(templateflow_dir), "TEMPLATEFLOW_AUTOUPDATE": "0"}
    with _environment(**env):
        print(f"$ TEMPLATEFLOW_HOME={templateflow_dir} bidsmask {' '.join(participant)}")
        code = cli.main(participant)
        if code == OK:
            print(f"$ bidsmask {' '.join(common)} group")
            code = cli.main([*common, "group"])
    if code != OK:
        print(f"bidsmask-demo: failed with exit code {code}; see {outputs / 'logs'}.")
        return code
    print(
        "\nDone. Outputs (BIDS-Derivatives) are in\n"
        f"  {outputs}\n"
        f"  per run:  {outputs}/sub-*/[ses-*/]func/ (mask, *_timeseries.tsv, *_relmat.tsv)\n"
        f"  QC table: {outputs / 'qc.tsv'}\n"
        f"  reports:  {outputs / 'sub-01.html'} (one per participant), {outputs / 'group.html'}\n"
        f"  logs:     {outputs / 'logs'}\n"
        f"Input used: {fmriprep_dir} (synthetic fMRIPrep output), atlases from {templateflow_dir}."
    )
    return OK


if __name__ == "__main__":
    raise SystemExit(main())
