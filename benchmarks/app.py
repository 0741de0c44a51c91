"""Benchmark the whole participant job against an equivalent nilearn script.

The job (generated once, cached under ``benchmarks/_cache/app/``): one participant, runs of 168
float32 volumes (TR 2.5 s) on fMRIPrep's real MNI152NLin2009cAsym 3 × 3 × 3.33 mm grid
(65 × 77 × 59, the affine and run brain mask of ``../shared/realdata/fmriprep_colornest``; the
same grid with a synthetic brain when that folder is absent), brain-shaped signals and fMRIPrep
confounds from :mod:`bidsmask.datagen`; a TemplateFlow folder with Schaefer-400 (the real
Schaefer 2018 400-parcel 7-network atlas of ``../shared/realdata/atlases``, Tian's subcortex
removed; synthesised with :mod:`bidsmask.datagen` when absent) and the real DiFuMo-64 segmented
maps (114 maps; synthetic 64 maps when absent); Power-264 spheres (5 mm).

1. The 3-run job, strategies ``simple`` and ``scrubbing``: ``bidsmask … participant`` against a
   nilearn 0.14 script doing the same (one masker per atlas × strategy × run on the run's brain
   mask, ``load_confounds_strategy``, ``np.corrcoef``, pandas TSVs), alternately, each in a fresh
   process, median of ``--repeats``: wall time (imports included), CPU seconds (the process and
   its children) and peak RSS. bidsmask gets a fresh ``--work-dir`` each time (its atlas cache is
   cold, as for a user's first job); the "warm" row reuses one work dir. bidsmask runs with
   ``--no-reports`` (the script draws no QC figures); "+ QC reports" is the default job, cold.
2. The first run's time against the later runs' (from bidsmask's log).
3. The 8-run job with ``--nprocs 1`` and ``--nprocs 2``: wall and total CPU seconds.
4. With ``--baseline-src DIR`` (another bidsmask source tree, e.g. ``git archive`` of main before
   a change): its outputs of the 3-run job against this tree's (same files, largest difference).

Run under the shared lock::

    flock /tmp/bidsmask-bench.lock /work/venv/bin/python benchmarks/app.py
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(__file__).parent / "_cache" / "app"
REALDATA = ROOT.parent / "shared" / "realdata"
COLORNEST = REALDATA / "fmriprep_colornest" / "sub-colornest001" / "ses-1"
SPACE = "MNI152NLin2009cAsym"
N_RUNS, N_VOLUMES, T_R = 8, 168, 2.5
STRATEGIES = ("simple", "scrubbing")
SCHAEFER = "Schaefer2018:400Parcels7Networks"
DIFUMO_DESC = "64dimensionsSegmented"
RUN_STEM = "sub-01_task-rest_run-{}"


def _grid():
    """Return the run grid (shape, affine) and brain mask: real fMRIPrep geometry if present."""
    import nibabel as nib
    import numpy as np

    mask_file = (
        COLORNEST
        / "func"
        / (f"sub-colornest001_ses-1_task-rest_run-1_space-{SPACE}_desc-brain_mask.nii.gz")
    )
    if mask_file.is_file():
        img = nib.load(mask_file)
        return img.shape[:3], img.affine, np.asarray(img.dataobj).astype(bool)
    affine = np.diag([3.0, 3.0, 3.33, 1.0])
    affine[:3, 3] = [-96.5, -132.5, -78.5]
    return (65, 77, 59), affine, None


def generate() -> None:
    """Write the fMRIPrep-like dataset (8 runs, and a 3-run view) and the TemplateFlow folder."""
    if (CACHE / "ready").is_file():
        return
    import numpy as np

    from bidsmask.datagen._anatomy import build_anatomy, load_template, prepare_template
    from bidsmask.datagen._bold import render_bold, simulate_timecourses
    from bidsmask.datagen._confounds import compute_confounds
    from bidsmask.datagen._fmriprep import _dataset_description, _write_run, compcor_masks
    from bidsmask.datagen._io import save_json
    from bidsmask.templates import load_mni152_brain_mask

    shutil.rmtree(CACHE, ignore_errors=True)
    shape, affine, real_mask = _grid()
    anat = build_anatomy(prepare_template(load_template(load_mni152_brain_mask())), shape, affine)
    csf, wm = compcor_masks(anat)
    folder = CACHE / "fmriprep8" / "sub-01" / "func"
    folder.mkdir(parents=True)
    for run_number in range(1, N_RUNS + 1):
        rng = np.random.default_rng([12, run_number])
        run = simulate_timecourses(N_VOLUMES, T_R, rng, task=False, n_non_steady=1)
        bold = render_bold(anat, run, rng)
        mask = anat.brain if real_mask is None else real_mask
        stem = RUN_STEM.format(run_number)
        _write_run(folder, stem, f"space-{SPACE}", anat, bold, mask, run, task="rest", code=4)
        table, metadata = compute_confounds(bold, mask, csf, wm, run)
        table.to_csv(folder / f"{stem}_desc-confounds_timeseries.tsv", sep="\t", index=False)
        save_json(folder / f"{stem}_desc-confounds_timeseries.json", metadata)
        print(f"wrote run {run_number}", flush=True)
    save_json(CACHE / "fmriprep8" / "dataset_description.json", _dataset_description())
    three = CACHE / "fmriprep3" / "sub-01" / "func"
    three.mkdir(parents=True)
    for path in folder.iterdir():
        if re.search(r"_run-[123]_", path.name):
            (three / path.name).symlink_to(path)
    (CACHE / "fmriprep3" / "dataset_description.json").symlink_to(
        CACHE / "fmriprep8" / "dataset_description.json"
    )
    _templateflow(CACHE / "templateflow", anat)
    (CACHE / "ready").write_text("1\n")


def _templateflow(root: Path, anat) -> None:
    """Schaefer-400 and DiFuMo-64 (segmented) in MNI152NLin2009cAsym res-02."""
    import nibabel as nib
    import numpy as np
    import pandas as pd

    from bidsmask.datagen._anatomy import build_anatomy, load_template, prepare_template
    from bidsmask.datagen._parcels import difumo_atlas, schaefer_atlas
    from bidsmask.templates import load_mni152_brain_mask

    folder = root / f"tpl-{SPACE}"
    folder.mkdir(parents=True)
    (folder / "template_description.json").write_text(
        json.dumps({"Identifier": SPACE, "Name": "MNI ICBM 2009c Nonlinear Asymmetric"})
    )
    atlases = REALDATA / "atlases"
    schaefer = atlases / (
        "Schaefer2018_400Parcels_7Networks_order_Tian_Subcortex_S1_3T_MNI152NLin2009cAsym_2mm.nii.gz"
    )
    difumo = atlases / f"tpl-{SPACE}_res-02_atlas-DiFuMo_desc-{DIFUMO_DESC}_probseg.nii.gz"
    stem = f"tpl-{SPACE}_res-02_atlas-Schaefer2018_desc-400Parcels7Networks_dseg"
    if schaefer.is_file():  # Tian S1's 16 subcortical labels come first: keep the 400 parcels
        img = nib.load(schaefer)
        data = np.asarray(img.dataobj).astype(np.int16)
        data = np.where(data > 16, data - 16, 0).astype(np.int16)
        nib.save(nib.Nifti1Image(data, img.affine), folder / f"{stem}.nii.gz")
        names = [f"7Networks_parcel{i:03d}" for i in range(1, 401)]
        table = pd.DataFrame({"index": range(1, 401), "name": names})
    else:
        template = prepare_template(load_template(load_mni152_brain_mask()))
        grid = np.diag([2.0, 2.0, 2.0, 1.0])
        grid[:3, 3] = [-96.0, -132.0, -78.0]
        mni2 = build_anatomy(template, (97, 115, 97), grid)
        labels, table = schaefer_atlas(mni2)  # the fixture's Schaefer-like parcels
        nib.save(nib.Nifti1Image(labels, grid), folder / f"{stem}.nii.gz")
    table.to_csv(folder / f"{stem.replace('_res-02', '')}.tsv", sep="\t", index=False)
    stem = f"tpl-{SPACE}_res-02_atlas-DiFuMo_desc-{DIFUMO_DESC}_probseg"
    if difumo.is_file():
        shutil.copy(difumo, folder / f"{stem}.nii.gz")
        shutil.copy(
            difumo.with_name(difumo.name.replace(".nii.gz", ".tsv")), folder / f"{stem}.tsv"
        )
    else:
        maps, table = difumo_atlas(anat, 64)
        nib.save(nib.Nifti1Image(maps, anat.affine), folder / f"{stem}.nii.gz")
        table.to_csv(folder / f"{stem}.tsv", sep="\t", index=False)


def _parity_dataset() -> Path:
    """Run 1 with a brain mask of only the voxels that have data, for the comparison with nilearn.

    The synthetic brain is smaller than fMRIPrep's real mask: a few hundred voxels of the mask
    are 0 at every volume. bidsmask leaves such voxels out of the maps' least squares (README,
    "Missing data"), nilearn keeps them; on this mask both use the same voxels.
    """
    import nibabel as nib
    import numpy as np

    folder = CACHE / "parity1" / "sub-01" / "func"
    if folder.is_dir():
        return CACHE / "parity1"
    source = CACHE / "fmriprep8" / "sub-01" / "func"
    tmp = CACHE / "parity1.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "sub-01" / "func").mkdir(parents=True)
    for path in source.glob(f"{RUN_STEM.format(1)}_*"):
        target = tmp / "sub-01" / "func" / path.name
        if not path.name.endswith("desc-brain_mask.nii.gz"):
            target.symlink_to(path)
            continue
        bold = nib.load(str(path).replace("desc-brain_mask", "desc-preproc_bold"))
        mask = nib.load(path)
        # one read: slicing a .nii.gz volume by volume decompresses it again for each volume
        has_data = (np.asarray(bold.dataobj) != 0).any(axis=3)
        data = (np.asarray(mask.dataobj) > 0) & has_data
        nib.save(nib.Nifti1Image(data.astype(np.uint8), mask.affine, mask.header), target)
    (tmp / "dataset_description.json").symlink_to(CACHE / "fmriprep8" / "dataset_description.json")
    tmp.rename(CACHE / "parity1")
    return CACHE / "parity1"


def _bidsmask_command(
    dataset: str, out: Path, work: Path, nprocs: int = 1, reports: bool = False
) -> list[str]:
    """Return the participant job (without QC reports by default: the script draws none)."""
    return [
        sys.executable,
        "-m",
        "bidsmask.app.cli",
        str(CACHE / dataset),
        str(out),
        "participant",
        "--atlas",
        SCHAEFER,
        f"DiFuMo:{DIFUMO_DESC}",
        "Power2011",
        "--strategy",
        *STRATEGIES,
        "--work-dir",
        str(work),
        "--nprocs",
        str(nprocs),
        *([] if reports else ["--no-reports"]),
    ]


NILEARN_SCRIPT = r"""
import sys, time
from pathlib import Path
import numpy as np, pandas as pd
from nilearn.interfaces.fmriprep import load_confounds_strategy
from nilearn.maskers import NiftiLabelsMasker, NiftiMapsMasker, NiftiSpheresMasker

data, tf, coords_file, out = (Path(a) for a in sys.argv[1:5])
tpl = tf / "tpl-MNI152NLin2009cAsym"
schaefer = next(tpl.glob("*_atlas-Schaefer2018_desc-400Parcels7Networks_dseg.nii.gz"))
difumo = next(tpl.glob("*atlas-DiFuMo*_probseg.nii.gz"))
coords = pd.read_csv(coords_file, comment="#")[["x", "y", "z"]].to_numpy(float)
out.mkdir(parents=True, exist_ok=True)
common = dict(standardize="zscore_sample", detrend=True, t_r=2.5)
for bold in sorted(data.glob("sub-01/func/*_desc-preproc_bold.nii.gz")):
    mask = str(bold).replace("desc-preproc_bold", "desc-brain_mask")
    for strategy in ("simple", "scrubbing"):
        confounds, sample_mask = load_confounds_strategy(str(bold), denoise_strategy=strategy)
        maskers = {
            "schaefer": NiftiLabelsMasker(schaefer, mask_img=mask, **common),
            "difumo": NiftiMapsMasker(difumo, mask_img=mask, **common),
            "power": NiftiSpheresMasker(coords, radius=5.0, mask_img=mask, **common),
        }
        for name, masker in maskers.items():
            series = masker.fit_transform(str(bold), confounds=confounds, sample_mask=sample_mask)
            stem = out / f"{bold.name.split('_space')[0]}_{name}_{strategy}"
            table = pd.DataFrame(series)
            table.to_csv(f"{stem}_timeseries.tsv", sep="\t", index=False, na_rep="n/a")
            matrix = pd.DataFrame(np.corrcoef(series.T))
            matrix.to_csv(f"{stem}_relmat.tsv", sep="\t", na_rep="n/a")
"""


def _measure(command: list[str], env: dict) -> dict:
    """Run a command in a fresh process: wall, CPU (with children) and peak RSS."""
    start = time.perf_counter()
    process = subprocess.Popen(  # not from a source tree: ``-m`` would import its bidsmask
        command,
        env=env,
        cwd=tempfile.gettempdir(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output = process.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{command[:4]} failed:\n{output[-3000:]}")
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss": usage.ru_maxrss / 1024**2,  # GiB (ru_maxrss is in KiB)
    }


def _run_times(out: Path) -> list[float]:
    """Per-run seconds from the progress lines of bidsmask's log, in finishing order."""
    text = "".join(p.read_text() for p in sorted((out / "logs").glob("*.log")))
    return [float(t) for t in re.findall(r"done[^\n]*?\(([\d.]+) s\)", text)]


def _environment(src: Path) -> dict:
    return {
        **os.environ,
        "PYTHONPATH": str(src),
        "TEMPLATEFLOW_HOME": str(CACHE / "templateflow"),
        "TEMPLATEFLOW_AUTOUPDATE": "0",
    }


def _compare(a: Path, b: Path) -> str:
    """Largest |difference| between two output folders' TSVs, per atlas and kind of file."""
    import numpy as np
    import pandas as pd

    files_a = {p.relative_to(a) for p in a.rglob("*.tsv") if "logs" not in p.parts}
    files_b = {p.relative_to(b) for p in b.rglob("*.tsv") if "logs" not in p.parts}
    worst: dict[str, float] = {}
    for rel in sorted(files_a & files_b):
        x = pd.read_csv(a / rel, sep="\t", na_values="n/a").select_dtypes("number").to_numpy()
        y = pd.read_csv(b / rel, sep="\t", na_values="n/a").select_dtypes("number").to_numpy()
        if x.shape != y.shape or not np.array_equal(np.isnan(x), np.isnan(y)):
            return f"{rel}: shapes or n/a differ"
        atlas = re.search(r"_atlas-([A-Za-z0-9]+)", rel.name)
        kind = f"{atlas.group(1) if atlas else '-'} {rel.stem.rsplit('_', 1)[-1]}"
        worst[kind] = max(worst.get(kind, 0.0), float(np.nanmax(np.abs(x - y), initial=0.0)))
    same = files_a == files_b
    largest = "; ".join(f"{kind} {value:.2g}" for kind, value in sorted(worst.items()))
    counts = f"{len(files_a)} vs {len(files_b)} TSVs, same names: {same}"
    return f"{counts}; largest |difference|: {largest}"


def _tsv_times() -> list[str]:
    """Milliseconds to write the job's tables (best of 5), relmats at float64 and at float32.

    The relmats were written at float64 precision before issue 12 (shortest repr of each
    value), and are now written at float32 precision (``%.9g`` of the float32 values).
    """
    import numpy as np
    import pandas as pd

    from bidsmask.bids import writer

    def best(frame, index: bool, path: Path) -> float:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            writer.write_tsv(path, frame, index=index)
            times.append(time.perf_counter() - start)
        return 1000 * min(times)

    rng = np.random.default_rng(0)
    lines = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "table.tsv"
        for n in (400, 264, 114):
            names = [f"region{i}" for i in range(n)]
            series = pd.DataFrame(rng.standard_normal((N_VOLUMES, n), np.float32), columns=names)
            matrix = pd.DataFrame(
                np.corrcoef(series.to_numpy().T), index=pd.Index(names, name="node"), columns=names
            )
            lines.append(
                f"{n} regions: time series ({N_VOLUMES} × {n}, float32) "
                f"{best(series, False, path):.0f} ms; relmat float64 (before) "
                f"{best(matrix, True, path):.0f} ms, float32 (now) "
                f"{best(matrix.astype(np.float32), True, path):.0f} ms"
            )
    return lines


NILEARN_NAMES = {"schaefer": "Schaefer2018", "difumo": "DiFuMo", "power": "Power2011"}


def _compare_nilearn(ours: Path, theirs: Path) -> list[str]:
    """Largest |difference| per atlas between bidsmask's and the nilearn script's outputs.

    bidsmask writes every atlas region (n/a where a region has no voxel in the mask); the
    script only the regions its maskers kept, in the same order: the all-n/a columns (and rows
    of a matrix) are dropped before comparing.
    """
    import numpy as np
    import pandas as pd

    worst: dict[str, dict[str, float]] = {}
    for path in sorted(theirs.glob("*.tsv")):
        stem, name, strategy, kind = path.stem.rsplit("_", 3)
        pattern = f"sub-01/func/{stem}_space-{SPACE}_atlas-{NILEARN_NAMES[name]}_*"
        pattern += f"desc-{strategy}_{kind}.tsv"
        (mine,) = ours.glob(pattern)
        index = 0 if kind == "relmat" else None
        x = pd.read_csv(mine, sep="\t", na_values="n/a", index_col=index).to_numpy()
        y = pd.read_csv(path, sep="\t", na_values="n/a", index_col=index).to_numpy()
        used = ~np.isnan(x).all(axis=0)
        x = x[np.ix_(used, used)] if kind == "relmat" else x[:, used]
        if x.shape != y.shape:
            raise RuntimeError(f"{mine.name} {x.shape} vs {path.name} {y.shape}")
        row = worst.setdefault(NILEARN_NAMES[name], {"timeseries": 0.0, "relmat": 0.0})
        row[kind] = max(row[kind], float(np.nanmax(np.abs(x - y), initial=0.0)))
    return [
        f"{atlas:14s} time series {row['timeseries']:.2g}, correlation matrices {row['relmat']:.2g}"
        for atlas, row in worst.items()
    ]


def _table(results: dict[str, list[dict]], repeats: int) -> None:
    rows = {
        name: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        for name, runs in results.items()
        if runs
    }
    print(f"\n3 runs × 3 atlases × 2 strategies, median of {repeats}")
    print(f"{'':16s}{'wall s':>9s}{'CPU s':>9s}{'peak RSS GiB':>14s}{'nilearn/this':>22s}")
    reference = rows.get("nilearn")
    for name, row in rows.items():
        ratio = ""
        if reference:
            ratio = f"{reference['wall'] / row['wall']:.1f}× wall, "
            ratio += f"{reference['cpu'] / row['cpu']:.1f}× CPU"
        print(f"{name:16s}{row['wall']:9.1f}{row['cpu']:9.1f}{row['rss']:14.2f}{ratio:>22s}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-src", type=Path, help="another bidsmask source tree")
    parser.add_argument("--skip-nilearn", action="store_true")
    args = parser.parse_args()
    generate()
    env = _environment(ROOT)
    scratch = Path(tempfile.mkdtemp(prefix="bidsmask-bench-app-"))
    power = ROOT / "bidsmask" / "data" / "coords" / "power2011.csv"
    results: dict[str, list[dict]] = {
        "bidsmask": [],
        "nilearn": [],
        "bidsmask warm": [],
        "+ QC reports": [],
    }
    first_later = []
    print(f"load average at start: {os.getloadavg()}")
    print("\nTSV writing, per table:", *_tsv_times(), sep="\n")
    try:
        for i in range(args.repeats):
            out, work = scratch / f"out{i}", scratch / f"work{i}"
            results["bidsmask"].append(_measure(_bidsmask_command("fmriprep3", out, work), env))
            times = _run_times(out)
            if len(times) == 3:
                first_later.append(times[0] / statistics.median(times[1:]))
            if not args.skip_nilearn:
                command = [sys.executable, "-c", NILEARN_SCRIPT, str(CACHE / "fmriprep3")]
                command += [str(CACHE / "templateflow"), str(power), str(scratch / f"nl{i}")]
                results["nilearn"].append(_measure(command, env))
            warm = _bidsmask_command("fmriprep3", scratch / f"warm{i}", scratch / "work0")
            results["bidsmask warm"].append(_measure(warm, env))
            out, work = scratch / f"rep{i}", scratch / f"wr{i}"
            command = _bidsmask_command("fmriprep3", out, work, reports=True)
            results["+ QC reports"].append(_measure(command, env))
        _table(results, args.repeats)
        if first_later:
            ratios = ", ".join(f"{r:.2f}" for r in first_later)
            print(f"first run / median of the later runs: {ratios}")
        print(f"\n{N_RUNS} runs, bidsmask (cold atlas cache)")
        for nprocs in (1, 2):
            out, work = scratch / f"o8-{nprocs}", scratch / f"w8-{nprocs}"
            row = _measure(_bidsmask_command("fmriprep8", out, work, nprocs), env)
            print(
                f"--nprocs {nprocs}: wall {row['wall']:.1f} s, CPU {row['cpu']:.1f} s "
                f"(children included), peak RSS {row['rss']:.2f} GiB"
            )
        if not args.skip_nilearn:
            parity = _parity_dataset()
            _measure(
                [
                    *_bidsmask_command(parity.name, scratch / "pb", scratch / "pw"),
                    "--min-coverage",
                    "0",
                ],
                env,
            )
            command = [sys.executable, "-c", NILEARN_SCRIPT, str(parity)]
            command += [str(CACHE / "templateflow"), str(power), str(scratch / "pn")]
            _measure(command, env)
            print(
                "\nrun 1 (mask: its voxels with data) vs the nilearn script, largest |difference|:"
            )
            print(*_compare_nilearn(scratch / "pb", scratch / "pn"), sep="\n")
        if args.baseline_src:  # every region written, whatever its coverage
            outputs = {}
            for name, src in (("baseline", args.baseline_src), ("this", ROOT)):
                outputs[name] = scratch / f"compare-{name}"
                command = _bidsmask_command(  # reports on: older trees lack --no-reports
                    "fmriprep3", outputs[name], scratch / f"wc-{name}", reports=True
                )
                _measure([*command, "--min-coverage", "0"], _environment(src))
            result = _compare(outputs["baseline"], outputs["this"])
            print(f"\noutputs (--min-coverage 0) vs {args.baseline_src}: {result}")
    finally:
        print(f"load average at end: {os.getloadavg()}")
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
