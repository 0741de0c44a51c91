"""What the reports cost on top of a participant job: the same job with and without --no-reports.

The job is ``bidsmask FMRIPREP OUT participant --participant-label 01`` (3 runs) with two atlases
(Schaefer-like 100 parcels, DiFuMo-like 64 maps) and two strategies (simple, scrubbing) on the
synthetic dataset of :mod:`bidsmask.datagen` (``--decimation 2``: 4 mm voxels, 49×58×49;
``--volumes`` per run). Each repeat runs both variants in fresh processes, alternating which
goes first, into fresh output folders; the table gives the median wall time and peak RSS.

    python benchmarks/reports.py --repeats 3 --volumes 300 --decimation 2 [--data DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ATLASES = ("Schaefer2018:100Parcels7Networks", "DiFuMo:64dimensions")


def make_data(root: Path, volumes: int, decimation: int) -> tuple[Path, Path]:
    from bidsmask.datagen import make_fmriprep_dataset, make_templateflow_home
    from bidsmask.masking._templates import load_mni152_brain_mask

    brain = load_mni152_brain_mask()
    fmriprep, tf = root / "fmriprep", root / "templateflow"
    make_fmriprep_dataset(fmriprep, brain, n_volumes=volumes, decimation=decimation)
    make_templateflow_home(tf, brain, decimation=decimation)
    return fmriprep, tf


def run_job(fmriprep: Path, out: Path, tf: Path, reports: bool) -> tuple[float, float]:
    """Run one participant job in a fresh process; return (seconds, peak RSS in MiB)."""
    args = [sys.executable, "-m", "bidsmask.app.cli", str(fmriprep), str(out), "participant"]
    args += ["--participant-label", "01", "--atlas", *ATLASES, "--strategy", "simple", "scrubbing"]
    args += ["--work-dir", str(out.parent / f"work-{out.name}"), "-q"]
    if not reports:
        args.append("--no-reports")
    env = {**os.environ, "TEMPLATEFLOW_HOME": str(tf), "TEMPLATEFLOW_AUTOUPDATE": "0"}
    start = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bidsmask failed ({status}): {' '.join(args)}")
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--volumes", type=int, default=300)
    parser.add_argument("--decimation", type=int, default=2)
    parser.add_argument(
        "--data", type=Path, help="reuse fmriprep/ and templateflow/ made here by an earlier run"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bidsmask-bench-reports-") as tmp:
        root = Path(tmp)
        if args.data and (args.data / "fmriprep").is_dir():
            fmriprep, tf = args.data / "fmriprep", args.data / "templateflow"
        else:
            fmriprep, tf = make_data(args.data or root, args.volumes, args.decimation)
        times: dict[bool, list[float]] = {True: [], False: []}
        rss: dict[bool, list[float]] = {True: [], False: []}
        for repeat in range(args.repeats):
            order = (False, True) if repeat % 2 == 0 else (True, False)
            for reports in order:
                out = root / f"out-{repeat}-{'reports' if reports else 'noreports'}"
                seconds, peak = run_job(fmriprep, out, tf, reports)
                times[reports].append(seconds)
                rss[reports].append(peak)
        base, with_reports = statistics.median(times[False]), statistics.median(times[True])
        print(
            f"participant job: sub-01, 3 runs x {args.volumes} volumes, decimation "
            f"{args.decimation}, atlases {', '.join(ATLASES)}, strategies simple scrubbing; "
            f"median of {args.repeats}, fresh processes"
        )
        print("| variant | wall time (s) | peak RSS (MiB) | runs (s) |")
        print("|---|---|---|---|")
        for reports, name in ((False, "--no-reports"), (True, "reports (default)")):
            runs = ", ".join(f"{t:.1f}" for t in times[reports])
            print(
                f"| {name} | {statistics.median(times[reports]):.1f} | "
                f"{statistics.median(rss[reports]):.0f} | {runs} |"
            )
        print(f"reports overhead: {100 * (with_reports / base - 1):+.1f}% of the job's wall time")


if __name__ == "__main__":
    main()
