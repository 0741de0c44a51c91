"""Benchmark ``clean`` on voxel-sized data: bidsmask vs nilearn.

250,000 float32 signals x 300 time points, linear detrend, Butterworth
band-pass 0.01-0.08 Hz (t_r 2 s), 14 confounds, ``standardize="zscore_sample"``.
Each case runs in a fresh subprocess (median of ``--repeats`` runs); the child
reports the wall time of ``clean`` alone and its peak RSS. Also checks that both
results agree.

Run under the shared lock::

    flock /tmp/bidsmask-bench.lock /work/venv/bin/python benchmarks/signal_clean.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

CACHE = Path(__file__).parent / "_cache"

CHILD = r"""
import json, resource, sys, time, warnings
import numpy as np
warnings.simplefilter("ignore")
impl, signals_path, confounds_path, out_path = sys.argv[1:5]
if impl == "bidsmask":
    from bidsmask.signal import clean
else:
    from nilearn.signal import clean
signals = np.load(signals_path)
confounds = np.load(confounds_path)
base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
out = clean(signals, detrend=True, standardize="zscore_sample", confounds=confounds,
            filter="butterworth", low_pass=0.08, high_pass=0.01, t_r=2.0)
wall = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if out_path != "-":
    np.save(out_path, out[:, ::997])
print(json.dumps({"wall": wall, "peak_mib": peak / 1024, "base_mib": base_rss / 1024,
                  "dtype": str(out.dtype)}))
"""


def _data(n_times: int, n_signals: int) -> tuple[Path, Path]:
    import numpy as np

    CACHE.mkdir(exist_ok=True)
    sig = CACHE / f"clean_signals_{n_times}x{n_signals}.npy"
    conf = CACHE / f"clean_confounds_{n_times}x14.npy"
    if not sig.exists() or not conf.exists():
        rng = np.random.default_rng(0)
        drift = np.linspace(0, 1, n_times, dtype=np.float32)[:, None]
        x = rng.standard_normal((n_times, n_signals), dtype=np.float32)
        x += 100 + 5 * drift
        np.save(sig, x)
        np.save(conf, rng.standard_normal((n_times, 14)))
    return sig, conf


def _run(impl: str, sig: Path, conf: Path, out: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, impl, str(sig), str(conf), out],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-signals", type=int, default=250_000)
    parser.add_argument("--n-times", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import numpy as np

    sig, conf = _data(args.n_times, args.n_signals)
    results = {}
    for impl in ("bidsmask", "nilearn"):
        runs = []
        for i in range(args.repeats):
            out = str(CACHE / f"clean_out_{impl}.npy") if i == 0 else "-"
            runs.append(_run(impl, sig, conf, out))
            print(f"{impl} run {i + 1}: {runs[-1]['wall']:.2f} s", file=sys.stderr)
        results[impl] = {
            "wall": statistics.median(r["wall"] for r in runs),
            "peak_mib": statistics.median(r["peak_mib"] for r in runs),
            "base_mib": statistics.median(r["base_mib"] for r in runs),
        }
    ours = np.load(CACHE / "clean_out_bidsmask.npy")
    ref = np.load(CACHE / "clean_out_nilearn.npy")
    max_diff = float(np.abs(ours.astype(np.float64) - ref).max())

    b, n = results["bidsmask"], results["nilearn"]
    print(
        f"clean: {args.n_signals} float32 signals x {args.n_times} time points, detrend + "
        "band-pass 0.01-0.08 Hz (t_r 2 s) + 14 confounds + zscore_sample; "
        f"median of {args.repeats} fresh processes"
    )
    print()
    print("| implementation | wall time (s) | peak RSS (MiB) | RSS after loading data (MiB) |")
    print("|---|---:|---:|---:|")
    for name, r in (("bidsmask", b), ("nilearn 0.14.1", n)):
        print(f"| {name} | {r['wall']:.2f} | {r['peak_mib']:.0f} | {r['base_mib']:.0f} |")
    print(
        f"| ratio nilearn / bidsmask | {n['wall'] / b['wall']:.1f}x | "
        f"{n['peak_mib'] / b['peak_mib']:.2f}x | |"
    )
    print()
    print(f"max |bidsmask - nilearn| on sampled columns (z-scored values): {max_diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
