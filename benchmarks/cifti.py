"""Benchmark: a 400-parcel atlas from a 91k × 300 dtseries, bidsmask against Connectome Workbench.

Data (generated once, cached under ``benchmarks/_cache/``): a float32 dense time series of 300
volumes on the fsLR 91k layout (91,282 grayordinates, :func:`bidsmask.datagen.grayordinates_91k`;
an uncompressed NIfTI-2 of 105 MiB, as fMRIPrep writes) and a 400-parcel ``.dlabel.nii`` on
whole 32k meshes (200 runs of the kept vertices per hemisphere; medial wall unlabelled, as
Workbench requires).

Cases, each in a fresh process, alternating, median of ``--repeats`` (default 3):

- ``bidsmask``: load the atlas, open the run (:func:`bidsmask.cifti.open_dense`), align the
  atlas to the data by structure and vertex index, read the run by chunks of grayordinates into
  the parcel means (:func:`bidsmask.cifti.extract`), write the ptseries (as Workbench does).
  Wall time of the child process measured from the parent (Python start and imports included)
  and the work alone (timed in the child, imports excluded);
- ``workbench``: ``wb_command -cifti-parcellate <dtseries> <dlabel> COLUMN <out> -only-numeric``.

Each child's peak RSS comes from ``wait4``.

The two outputs are compared (maximum relative difference). Run under the shared lock::

    flock /tmp/bidsmask-bench.lock /work/venv/bin/python benchmarks/cifti.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

CACHE = Path(__file__).parent / "_cache"
DTSERIES = CACHE / "cifti_sub-bench_task-rest_space-fsLR_den-91k_bold.dtseries.nii"
DLABEL = CACHE / "cifti_atlas-Blocks400_den-91k_dseg.dlabel.nii"
N_VOLUMES = 300

CHILD = """
import resource, sys, time
from bidsmask import cifti
t0 = time.perf_counter()
atlas = cifti.load_dlabel(sys.argv[1])
dense = cifti.open_dense(sys.argv[2])
spec = cifti.atlas_spec(atlas, dense.axis)
(signals,), _ = cifti.extract(dense, [spec])
names = [atlas.names[int(r)] for r in spec.region_ids]
labels = cifti.align_labels(atlas, dense.axis)
parcels = cifti.parcels_axis(labels, dense.axis, spec.region_ids, names)
cifti.save(cifti.ptseries_image(signals, parcels, dense.series[1]), sys.argv[3])
wall = time.perf_counter() - t0
print(wall, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def generate() -> None:
    """Write the dtseries and the atlas (once)."""
    import numpy as np

    from bidsmask.datagen import atlas_brain_models, grayordinates_91k, write_dlabel, write_dtseries

    CACHE.mkdir(exist_ok=True)
    axis = grayordinates_91k()
    if not DTSERIES.is_file():
        write_dtseries(DTSERIES, axis, N_VOLUMES, t_r=2.0, seed=7)
    if not DLABEL.is_file():
        atlas_axis = atlas_brain_models(axis, "full")
        labels = np.zeros(len(atlas_axis), dtype=np.int32)
        kept = {n: p.vertex for n, _, p in axis.iter_structures() if p.surface_mask.any()}
        for h, (name, slc, part) in enumerate(atlas_axis.iter_structures()):
            if name in kept:  # 200 runs of the kept vertices per hemisphere; medial wall 0
                rank = np.searchsorted(kept[name], part.vertex)
                present = np.isin(part.vertex, kept[name])
                parcel = 1 + 200 * h + rank * 200 // kept[name].size
                labels[slc] = np.where(present, parcel, 0)
        write_dlabel(DLABEL, atlas_axis, labels)


def _child(command: list[str]) -> tuple[float, float, str]:
    """Run a command; its wall time, its own peak RSS (MiB, from wait4) and its stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({proc.returncode})")
    return wall, usage.ru_maxrss / 1024, stdout


def _bidsmask(out: Path) -> dict:
    wall, rss, stdout = _child([sys.executable, "-c", CHILD, str(DLABEL), str(DTSERIES), str(out)])
    return {"process_s": wall, "work_s": float(stdout.split()[0]), "peak_rss_mib": rss}


def _workbench(wb: str, out: Path) -> dict:
    command = [wb, "-cifti-parcellate", str(DTSERIES), str(DLABEL), "COLUMN", str(out)]
    wall, rss, _ = _child([*command, "-only-numeric"])
    return {"process_s": wall, "peak_rss_mib": rss}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    wb = shutil.which("wb_command")
    if wb is None:
        print("wb_command (connectome-workbench) is not installed.", file=sys.stderr)
        return 1
    generate()
    ours_out, wb_out = CACHE / "cifti_bidsmask.ptseries.nii", CACHE / "cifti_wb.ptseries.nii"
    results = {"bidsmask": [], "workbench": []}
    for _ in range(args.repeats):
        results["workbench"].append(_workbench(wb, wb_out))
        results["bidsmask"].append(_bidsmask(ours_out))
    import nibabel as nib
    import numpy as np

    ours = np.asarray(nib.load(ours_out).dataobj)
    theirs = np.asarray(nib.load(wb_out).dataobj)
    rel = float(np.max(np.abs(ours - theirs)) / np.max(np.abs(theirs)))
    median = {
        impl: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        for impl, runs in results.items()
    }
    size = DTSERIES.stat().st_size / 2**20
    print(f"{ours.shape[1]} parcels from {DTSERIES.name} ({N_VOLUMES} x 91282, {size:.0f} MiB)")
    print(f"median of {args.repeats}, fresh processes; max relative difference {rel:.1e}\n")
    print("| implementation | process wall (s) | work, imports excluded (s) | peak RSS (MiB) |")
    print("|---|---|---|---|")
    b, w = median["bidsmask"], median["workbench"]
    print(f"| bidsmask | {b['process_s']:.2f} | {b['work_s']:.2f} | {b['peak_rss_mib']:.0f} |")
    wb_row = f"{w['process_s']:.2f} | n/a | {w['peak_rss_mib']:.0f}"
    print(f"| wb_command -cifti-parcellate | {wb_row} |")
    print("\ntarget: bidsmask no slower than wb_command's process wall")
    for label, key in (("work, imports excluded", "work_s"), ("process wall", "process_s")):
        verdict = "met" if b[key] <= w["process_s"] else "NOT met"
        print(f"- {label}: {w['process_s'] / b[key]:.2f}x Workbench's speed: {verdict}")
    print(json.dumps({"median": median, "max_relative_difference": rel}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
