"""Benchmark compute_epi_mask and mean_img: bidsmask vs nilearn on a realistic fMRIPrep-like run.

Generates (once, cached under benchmarks/_cache/) a 97 x 115 x 97 x 300 float32 ``.nii.gz`` on the
MNI152NLin2009cAsym res-02 grid: a brain-shaped image (from bidsmask's packaged MNI152 template)
with tissue contrast, a slow drift, a small BOLD-like signal and thermal noise inside a head-shaped
region, zeros outside (so gzip compresses it like a real run). Each case runs in a fresh
subprocess, alternating bidsmask and nilearn, three times; the table gives the median wall time of
the call, the peak RSS of the child process and the ratios (nilearn / bidsmask time, bidsmask /
nilearn memory). "(zlib)" rows hide the optional ``isal`` package, so bidsmask inflates with the
standard zlib. The "read:" rows (one run each) time reading the whole run in chunks of 31
volumes: bidsmask's gzip stream, and nibabel array-proxy slices with and without
``keep_file_open``.

Run under the shared lock:
    flock /tmp/bidsmask-bench.lock /work/venv/bin/python benchmarks/masking.py
"""

from __future__ import annotations

import gzip
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np

CACHE = Path(__file__).parent / "_cache"
RUN = CACHE / "sub-bench_task-rest_space-MNI152NLin2009cAsym_res-2_desc-preproc_bold.nii.gz"
SHAPE = (97, 115, 97)
N_VOLS = 300
AFFINE = np.array([[2.0, 0, 0, -96.0], [0, 2.0, 0, -132.0], [0, 0, 2.0, -78.0], [0, 0, 0, 1.0]])
REPEATS = 3

CHILD = r"""
import json, resource, sys, time
case, path = sys.argv[1], sys.argv[2]
if "(zlib)" in case:
    sys.modules["isal"] = None  # hide ISA-L: bidsmask falls back to the standard zlib
if case.startswith("nilearn"):
    import nilearn.masking as masking, nilearn.image as image
else:
    import bidsmask.masking as masking, bidsmask.image as image, bidsmask.image._reader as reader
import nibabel as nib
import numpy as np
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
if case.endswith("compute_epi_mask"):
    summary = int(masking.compute_epi_mask(path).get_fdata().sum())
elif case.endswith("mean_img"):
    summary = round(float(image.mean_img(path).get_fdata().mean()), 3)
elif case.startswith("read: bidsmask"):
    summary = sum(c.shape[-1] for _, c in reader.iter_chunks(path))
elif case.startswith("read: nibabel proxy slices"):
    img = nib.load(path, keep_file_open="keep_file_open=True" in case)
    n_vols, step = img.shape[3], 31
    starts = range(0, n_vols, step)
    summary = sum(np.asarray(img.dataobj[..., t:t + step]).shape[-1] for t in starts)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_kib": peak, "import_kib": rss_before,
                  "summary": summary}))
"""


def _brain_volume() -> tuple[np.ndarray, np.ndarray]:
    """Return a brain-like mean image and a head mask on the res-02 grid."""
    from scipy.ndimage import binary_dilation, gaussian_filter

    from bidsmask.image import resample_img
    from bidsmask.masking._templates import load_mni152_template

    template = resample_img(
        load_mni152_template(resolution=1), target_affine=AFFINE, target_shape=SHAPE
    )
    t1 = np.asarray(template.dataobj, dtype=np.float32)
    brain = t1 > 0.2
    head = binary_dilation(brain, iterations=6)
    # EPI contrast: CSF bright, grey matter brighter than white matter, smooth bias field.
    epi = np.where(brain, 600 + 500 * (1 - t1), 0) + np.where(head & ~brain, 150, 0)
    grid = (
        np.indices(SHAPE, dtype=np.float32) / np.array(SHAPE, dtype=np.float32)[:, None, None, None]
    )
    bias = 1 + 0.2 * np.cos(2.5 * grid[0]) * np.sin(2.0 * grid[1] + 0.5)
    epi = gaussian_filter(epi * bias, 1.0).astype(np.float32)
    epi[~head] = 0
    return epi, head


def generate(path: Path = RUN) -> Path:
    """Write the benchmark run volume by volume (never holding it whole)."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    epi, head = _brain_volume()
    rng = np.random.default_rng(42)
    slow = np.cumsum(rng.normal(size=(N_VOLS, 8)), axis=0) * 0.002
    header = nib.Nifti1Header()
    header.set_data_shape((*SHAPE, N_VOLS))
    header.set_data_dtype(np.float32)
    header.set_zooms((2.0, 2.0, 2.0, 2.0))
    header.set_xyzt_units("mm", "sec")
    header.set_sform(AFFINE, code=4)
    header.set_qform(AFFINE, code=4)
    header.set_data_offset(352)
    tmp = path.with_suffix(".tmp")
    patterns = rng.normal(size=(8, *SHAPE)).astype(np.float32)
    with gzip.open(tmp, "wb", compresslevel=6) as f:
        header.write_to(f)
        f.write(b"\0" * (352 - f.tell()))
        for t in range(N_VOLS):
            drift = (
                1 + 0.01 * np.sin(2 * np.pi * t / N_VOLS) + np.tensordot(slow[t], patterns, 1) * 0.1
            )
            vol = epi * drift + rng.normal(scale=12.0, size=SHAPE).astype(np.float32) * (epi > 0)
            vol[~head] = 0
            f.write(np.asarray(vol, dtype=np.float32).tobytes(order="F"))
    tmp.rename(path)
    return path


def run_case(case: str, path: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, case, str(path)], capture_output=True, text=True, check=False
    )
    if proc.returncode:
        raise RuntimeError(f"case {case!r} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    t0 = time.perf_counter()
    path = generate()
    raw = np.prod(SHAPE) * N_VOLS * 4
    print(
        f"run: {path.name}  {SHAPE + (N_VOLS,)} float32, {path.stat().st_size / 2**20:.0f} MiB "
        f"gzip ({path.stat().st_size / raw:.0%} of {raw / 2**20:.0f} MiB)"
        f"  [ready in {time.perf_counter() - t0:.0f} s]"
    )
    subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)  # warm page cache
    names = ["compute_epi_mask", "mean_img"]
    impls = ["bidsmask", "bidsmask (zlib)", "nilearn"]
    cases = [f"{impl} {name}" for name in names for impl in impls]
    io_cases = [
        "read: bidsmask.image._reader.iter_chunks",
        "read: bidsmask.image._reader.iter_chunks (zlib)",
        "read: nibabel proxy slices keep_file_open=True",
        "read: nibabel proxy slices keep_file_open=False",
    ]
    results: dict[str, list[dict]] = {case: [] for case in cases + io_cases}
    for _ in range(REPEATS):
        for case in cases:
            results[case].append(run_case(case, path))
    for case in io_cases:
        results[case].append(run_case(case, path))
    for case in cases + io_cases:
        summaries = {r["summary"] for r in results[case]}
        assert len(summaries) == 1, (case, summaries)

    def med(case: str, key: str) -> float:
        return statistics.median(r[key] for r in results[case])

    header = f"| {'case':<56} | {'wall s':>8} | {'peak RSS MiB':>8} | {'imports MiB':>7} |"
    print(
        f"wall time: median of {REPEATS} runs of the call in a fresh process; peak RSS of that "
        "process (imports included)"
    )
    print(header)
    print("|" + "|".join("-" * len(col) for col in header.split("|")[1:-1]) + "|")
    for case in cases + io_cases:
        runs = "" if len(results[case]) == REPEATS else " (1 run)"
        print(
            f"| {case + runs:<56} | {med(case, 'seconds'):>8.2f} "
            f"| {med(case, 'peak_kib') / 1024:>8.0f} | {med(case, 'import_kib') / 1024:>7.0f} |"
        )
    print()
    print(
        "| function | bidsmask | speed-up (nilearn / bidsmask time) "
        "| memory (bidsmask / nilearn peak RSS) | same result (bidsmask vs nilearn) |"
    )
    print("|---|---|---|---|---|")
    for name in names:
        theirs = f"nilearn {name}"
        for impl in impls[:2]:
            ours = f"{impl} {name}"
            speed = med(theirs, "seconds") / med(ours, "seconds")
            memory = med(ours, "peak_kib") / med(theirs, "peak_kib")
            same, other = results[ours][0]["summary"], results[theirs][0]["summary"]
            print(
                f"| {name} | {impl} | {speed:.2f}x | {memory:.2f}x "
                f"| {same == other} ({same} vs {other}) |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
