"""Missing data is never a flat zero: n/a regions, coverage by data, volume accounting (issue 17).

A copy of one fixture run is damaged: NaN and zero voxels cover whole regions and parts of
regions of an atlas drawn on the BOLD grid, one region lies mostly outside the mask. The run is
processed with two strategies, ``--dummy-scans`` and scrubbing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from bidsmask.app.cli import main, parse_args

MNI = "space-MNI152NLin2009cAsym_res-2"
STEM = "sub-01_task-rest"
N_DUMMY = 3
NAMES = [f"region_{k}" for k in range(1, 9)]
NOT_AVAILABLE = {
    "region_1": "missing data",  # all NaN
    "region_2": "missing data",  # all zero
    "region_3": "missing data",  # 70 % NaN
    "region_5": "missing data",  # 60 % NaN at one volume only
    "region_7": "mask",  # mostly outside the mask
}


def _damage(values: np.ndarray, labels: np.ndarray) -> None:
    """NaN and zero voxels over whole regions and parts of regions (in place)."""

    def part(label, fraction):
        voxels = np.flatnonzero(labels.ravel() == label)
        return np.unravel_index(voxels[: int(round(fraction * voxels.size))], labels.shape)

    values[labels == 1] = np.nan
    values[labels == 2] = 0
    values[part(3, 0.7)] = np.nan
    values[part(4, 0.3)] = 0  # coverage 0.7: kept
    values[(*part(5, 0.6), 40)] = np.nan
    values[(*part(6, 0.2), slice(0, 10))] = np.inf  # coverage 0.8: kept


def _copy_participant(fmriprep_dir: Path, data: Path) -> Path:
    """Copy sub-01 of the fixture dataset (and its top-level files) to ``data``."""
    shutil.copytree(fmriprep_dir / "sub-01", data / "sub-01")
    for item in fmriprep_dir.iterdir():
        if item.is_file():
            shutil.copy(item, data / item.name)
    return data


@pytest.fixture(scope="module")
def damaged(fmriprep_dir, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("missing")
    data = _copy_participant(fmriprep_dir, root / "fmriprep")
    func = data / "sub-01" / "func"
    bold_file = func / f"{STEM}_{MNI}_desc-preproc_bold.nii.gz"
    bold = nib.load(bold_file)
    values = np.asarray(bold.dataobj, dtype=np.float32)
    mask = np.asarray(nib.load(func / f"{STEM}_{MNI}_desc-brain_mask.nii.gz").dataobj) > 0
    # eight regions: slabs of the mask along x, region 7 also over voxels outside the mask
    labels = np.zeros(mask.shape, dtype=np.int16)
    x = np.nonzero(mask)[0]
    labels[mask] = np.searchsorted(np.quantile(x, np.linspace(0, 1, 9)[1:-1]), x, "right") + 1
    outside = np.flatnonzero(~mask.ravel())[: 4 * np.sum(labels == 7)]
    labels.ravel()[outside] = 7
    _damage(values, labels)
    header = bold.header.copy()
    header.set_data_dtype(np.float32)
    nib.save(nib.Nifti1Image(values, bold.affine, header), bold_file)
    atlas = root / "atlas-Damage_dseg.nii.gz"
    nib.save(nib.Nifti1Image(labels, bold.affine), atlas)
    table = pd.DataFrame({"index": range(9), "name": ["Background", *NAMES]})
    table.to_csv(root / "atlas-Damage_dseg.tsv", sep="\t", index=False)
    out = root / "out"
    args = [str(data), str(out), "participant", "--participant-label", "01", "--task", "rest"]
    args += ["--atlas", str(atlas), "--strategy", "simple", "scrubbing"]
    args += ["--dummy-scans", str(N_DUMMY), "--save-denoised-bold"]
    assert main([*args, "--work-dir", str(root / "work")]) == 0
    assert main([str(data), str(out), "group", "--work-dir", str(root / "work")]) == 0
    has_data = np.isfinite(values).all(axis=3) & (values != 0).any(axis=3)
    confounds = pd.read_csv(func / f"{STEM}_desc-confounds_timeseries.tsv", sep="\t")
    return {
        "data": data,
        "out": out,
        "labels": labels,
        "mask": mask,
        "has_data": has_data,
        "confounds": confounds,
    }


def _outputs(out: Path, strategy: str, suffix: str, atlas: str = "Damage") -> Path:
    func = out / "sub-01" / "func"
    (found,) = func.glob(f"{STEM}_*atlas-{atlas}*desc-{strategy}_{suffix}")
    return found


@pytest.mark.parametrize("strategy", ["simple", "scrubbing"])
def test_regions_without_data_are_na(damaged, strategy):
    out, labels = damaged["out"], damaged["labels"]
    table = pd.read_csv(_outputs(out, strategy, "timeseries.tsv"), sep="\t", na_values="n/a")
    assert list(table.columns) == NAMES
    na = [name for name in NAMES if table[name].isna().all()]
    assert na == list(NOT_AVAILABLE)
    assert table.drop(columns=na).notna().all().all()
    # no column is constant (a flat zero least of all)
    values = table.drop(columns=na).to_numpy()
    assert (values.max(axis=0) > values.min(axis=0)).all()
    sidecar = json.loads(_outputs(out, strategy, "timeseries.json").read_text())
    valid = damaged["mask"] & damaged["has_data"]
    hand = [np.sum((labels == k) & valid) / np.sum(labels == k) for k in range(1, 9)]
    assert_allclose(list(sidecar["RegionCoverage"].values()), np.round(hand, 4))
    assert sidecar["RegionsNotAvailable"] == NOT_AVAILABLE
    assert sidecar["RegionsBelowMinCoverage"] == list(NOT_AVAILABLE)
    assert sidecar["CleaningParameters"]["detrend"] is True
    matrix = pd.read_csv(
        _outputs(out, strategy, "relmat.tsv"), sep="\t", index_col=0, na_values="n/a"
    )
    for name in NAMES:
        row, column = matrix.loc[name].drop(name), matrix[name].drop(name)
        if name in NOT_AVAILABLE:
            assert row.isna().all() and column.isna().all()
        else:
            assert row.drop(list(NOT_AVAILABLE)).notna().all()
    assert matrix.loc[list(NOT_AVAILABLE)].isna().all().all()


def test_the_log_warns_with_run_atlas_and_reasons(damaged):
    (log,) = (damaged["out"] / "logs").glob("bidsmask-participant-*.log")
    lines = [line for line in log.read_text().splitlines() if "set to n/a" in line]
    assert len(lines) == 1, lines
    assert "WARNING" in lines[0] and STEM in lines[0] and "atlas-Damage_dseg" in lines[0]
    assert "5 of 8 regions" in lines[0] and "1 by the mask, 4 by missing data" in lines[0]
    (record,) = (damaged["out"] / "logs" / "runs").glob(f"{STEM}_*.json")
    record = json.loads(record.read_text())
    labels, mask, has_data = damaged["labels"], damaged["mask"], damaged["has_data"]
    assert record["VoxelsWithoutData"] == np.sum((labels > 0) & mask & ~has_data)


def test_denoised_bold_is_nan_where_voxels_lack_data(damaged):
    (path,) = (damaged["out"] / "sub-01" / "func").glob(f"{STEM}_*desc-simple_bold.nii.gz")
    values = np.asarray(nib.load(path).dataobj)
    mask, has_data = damaged["mask"], damaged["has_data"]
    assert np.isnan(values[mask & ~has_data]).all()
    inside = values[mask & has_data]
    assert np.isfinite(inside).all() and (inside.max(axis=1) > inside.min(axis=1)).all()


def _scrubbed(confounds: pd.DataFrame, fd: float = 0.5, dvars: float = 1.5, scrub: int = 5):
    """Volumes flagged by FD/DVARS, plus kept segments shorter than ``scrub`` (Power 2014)."""
    n = len(confounds)
    flagged = (confounds["framewise_displacement"] > fd) | (confounds["std_dvars"] > dvars)
    flagged = flagged.to_numpy()
    out = flagged.copy()
    start = 0
    for t in range(n + 1):
        if t == n or flagged[t]:
            if t - start < scrub:
                out[start:t] = True
            start = t + 1
    return out


@pytest.mark.parametrize("strategy", ["simple", "scrubbing"])
def test_volume_accounting_adds_up(damaged, strategy):
    confounds = damaged["confounds"]
    n = len(confounds)
    steady = [c for c in confounds.columns if c.startswith("non_steady_state_outlier")]
    non_steady = confounds[steady].to_numpy().sum(axis=1) > 0
    assert non_steady.sum() >= 1
    dummy = (np.arange(n) < N_DUMMY) & ~non_steady
    scrubbed = np.zeros(n, dtype=bool)
    if strategy == "scrubbing":
        scrubbed = _scrubbed(confounds) & ~non_steady & ~dummy
        assert scrubbed.sum() > 0
    sidecar = json.loads(_outputs(damaged["out"], strategy, "timeseries.json").read_text())
    assert sidecar["VolumesNonSteadyState"] == non_steady.sum()
    assert sidecar["VolumesDummyScans"] == dummy.sum()
    assert sidecar["VolumesScrubbed"] == scrubbed.sum()
    removed = non_steady.sum() + dummy.sum() + scrubbed.sum()
    assert sidecar["VolumesCensored"] == removed == n - sidecar["VolumesKept"]
    assert sidecar["VolumesTotal"] == n
    qc = pd.read_csv(damaged["out"] / "qc.tsv", sep="\t")
    (row,) = qc[qc["strategy"] == strategy].to_dict("records")
    assert row["volumes_non_steady_state"] == non_steady.sum()
    assert row["volumes_dummy_scans"] == dummy.sum()
    assert row["volumes_scrubbed"] == scrubbed.sum()
    assert row["volumes_censored"] == row["volumes"] - row["volumes_kept"] == removed


def test_no_detrend_option(damaged, tmp_path):
    base = [str(damaged["data"]), str(tmp_path / "out"), "participant"]
    assert parse_args(base).detrend is True
    assert parse_args([*base, "--no-detrend"]).detrend is False


SCHAEFER_TIAN = (
    "Schaefer2018_400Parcels_7Networks_order_Tian_Subcortex_S1_3T_MNI152NLin2009cAsym_2mm"
)


def test_real_atlas_over_dropout_has_no_flat_column(realdata, fmriprep_dir, tmp_path):
    """The real Schaefer 400 + Tian atlas over a run with inferior dropout (NaN) and a frontal
    edge outside the field of view (zeros), as in real fMRIPrep runs."""
    from bidsmask import image

    data = _copy_participant(fmriprep_dir, tmp_path / "fmriprep")
    func = data / "sub-01" / "func"
    bold_file = func / f"{STEM}_{MNI}_desc-preproc_bold.nii.gz"
    bold = nib.load(bold_file)
    values = np.asarray(bold.dataobj, dtype=np.float32)
    ijk = np.indices(values.shape[:3]).reshape(3, -1).T
    xyz = (ijk @ bold.affine[:3, :3].T + bold.affine[:3, 3]).reshape(*values.shape[:3], 3)
    values[xyz[..., 2] < -24] = np.nan  # orbitofrontal / temporal dropout
    values[xyz[..., 1] > 52] = 0  # frontal pole outside the field of view
    header = bold.header.copy()
    header.set_data_dtype(np.float32)
    nib.save(nib.Nifti1Image(values, bold.affine, header), bold_file)
    atlas = tmp_path / "atlas-SchaeferTian_dseg.nii.gz"
    shutil.copy(realdata / "atlases" / f"{SCHAEFER_TIAN}.nii.gz", atlas)
    out = tmp_path / "out"
    args = [str(data), str(out), "participant", "--participant-label", "01", "--task", "rest"]
    args += ["--atlas", str(atlas), "--work-dir", str(tmp_path / "work")]
    assert main(args) == 0

    table = pd.read_csv(
        _outputs(out, "simple", "timeseries.tsv", "SchaeferTian"), sep="\t", na_values="n/a"
    )
    sidecar = json.loads(_outputs(out, "simple", "timeseries.json", "SchaeferTian").read_text())
    assert table.shape[1] == 416
    na = table.isna().all()
    assert table.loc[:, ~na].notna().all().all()
    values_kept = table.loc[:, ~na].to_numpy()
    assert (values_kept.max(axis=0) > values_kept.min(axis=0)).all()  # no flat column
    reasons = sidecar["RegionsNotAvailable"]
    assert set(reasons) == set(table.columns[na])
    assert sum(r == "missing data" for r in reasons.values()) >= 10
    # coverage equals the hand count on the BOLD grid (nearest-neighbour atlas)
    labels = np.asarray(
        image.resample_img(
            str(atlas),
            target_affine=bold.affine,
            target_shape=values.shape[:3],
            interpolation="nearest",
        ).dataobj
    )
    mask = np.asarray(nib.load(func / f"{STEM}_{MNI}_desc-brain_mask.nii.gz").dataobj) > 0
    has_data = np.isfinite(values).all(axis=3) & (values != 0).any(axis=3)
    for name, coverage in sidecar["RegionCoverage"].items():
        region = labels == int(name.removeprefix("region"))
        hand = np.sum(region & mask & has_data) / max(np.sum(region), 1)
        assert coverage == pytest.approx(hand, abs=1e-4), name
