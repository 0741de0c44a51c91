"""Group level after two participant jobs that wrote into the same OUTPUT_DIR at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from bidsmask.app.cli import main
from bidsmask.connectivity import fisher_z_average
from bidsmask.masking import intersect_masks

SPACE = "space-MNI152NLin2009cAsym"
ATLAS = "atlas-Schaefer2018_seg-100Parcels7Networks"


@pytest.fixture(scope="module")
def out(fmriprep_dir, templateflow_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("group") / "out"
    env = {**os.environ, "TEMPLATEFLOW_HOME": str(templateflow_dir), "TEMPLATEFLOW_AUTOUPDATE": "0"}
    jobs = [
        subprocess.Popen(
            [sys.executable, "-m", "bidsmask.app.cli", str(fmriprep_dir), str(out)]
            + ["participant", "--participant-label", label, "--task", "rest"]
            + ["--atlas", "Schaefer2018:100Parcels7Networks", "--strategy", "simple", "24P"],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for label in ("01", "sub-02")
    ]
    for job in jobs:
        _, err = job.communicate(timeout=300)
        assert job.returncode == 0, err[-2000:]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TEMPLATEFLOW_HOME", str(templateflow_dir))
        assert main([str(fmriprep_dir), str(out), "group"]) == 0
    return out


def run_files(out: Path, pattern: str) -> list[Path]:
    return sorted(out.glob(f"sub-*/**/func/*{pattern}"))


def test_concurrent_participant_jobs_share_the_output_dir(out):
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    assert len(run_files(out, "_desc-brain_mask.nii.gz")) == 3
    assert len(run_files(out, "_timeseries.tsv")) == 3 * 2
    assert len(list((out / "logs").glob("bidsmask-participant-*.log"))) == 2
    assert not list(out.rglob(".*tmp*"))


def test_qc_table_has_one_row_per_run_and_strategy(out):
    qc = pd.read_csv(out / "qc.tsv", sep="\t", na_values="n/a", keep_default_na=False)
    assert list(qc.columns[:8]) == [
        "participant_id",
        "session_id",
        "task",
        "run",
        "space",
        "strategy",
        "status",
        "reason",
    ]
    assert len(qc) == 3 * 2
    assert sorted(qc["participant_id"].unique()) == ["sub-01", "sub-02"]
    assert set(qc["status"]) == {"done"} and set(qc["strategy"]) == {"simple", "24P"}
    assert set(qc["space"]) == {"MNI152NLin2009cAsym:res-2"}
    row = qc[(qc["participant_id"] == "sub-02") & (qc["session_id"] == "ses-2")]
    row = row[row["strategy"] == "24P"].iloc[0]
    series = out / (
        f"sub-02/ses-2/func/sub-02_ses-2_task-rest_{SPACE}_{ATLAS}_res-2_stat-mean_desc-24P"
        "_timeseries"
    )
    sidecar = json.loads(series.with_suffix(".json").read_text())
    assert row["volumes"] == 80 and row["volumes_kept"] == sidecar["VolumesKept"]
    assert row["mean_fd"] == pytest.approx(sidecar["MeanFramewiseDisplacement"])
    assert row["min_region_coverage"] == pytest.approx(
        min(sidecar["RegionCoverage"].values()), abs=1e-4
    )
    files = row["output_files"].split("; ")
    assert f"{series.relative_to(out)}.tsv" in files and all((out / f).is_file() for f in files)
    assert "Description" in json.loads((out / "qc.json").read_text())["mean_fd"]


def test_group_mask_is_the_thresholded_overlap_of_the_run_masks(out):
    group = nib.load(out / f"{SPACE}_res-2_desc-group_mask.nii.gz")
    masks = run_files(out, "_desc-brain_mask.nii.gz")
    expected = intersect_masks([str(m) for m in masks], threshold=0.5)
    assert_array_equal(np.asarray(group.dataobj), np.asarray(expected.dataobj))
    sidecar = json.loads((out / f"{SPACE}_res-2_desc-group_mask.json").read_text())
    assert sidecar["NumberOfRuns"] == 3 and len(sidecar["Sources"]) == 3


def test_group_connectivity_is_the_fisher_z_average(out):
    name = f"task-rest_{SPACE}_{ATLAS}_res-2_meas-PearsonCorrelation_desc-24P_relmat"
    group = pd.read_csv(out / f"{name}.tsv", sep="\t", index_col=0, na_values="n/a")
    runs = run_files(out, "_meas-PearsonCorrelation_desc-24P_relmat.tsv")
    matrices = [pd.read_csv(f, sep="\t", index_col=0).to_numpy() for f in runs]
    assert_allclose(group.to_numpy(), fisher_z_average(matrices), rtol=1e-12, equal_nan=True)
    sidecar = json.loads((out / f"{name}.json").read_text())
    assert sidecar["NumberOfRuns"] == 3 and sidecar["RelationshipMeasure"] == "PearsonCorrelation"
    assert sidecar["NodeFiles"] == [f"bids::{ATLAS}_dseg.tsv"]


def test_group_level_of_one_participant_and_of_nothing(out, fmriprep_dir, tmp_path):
    assert main([str(fmriprep_dir), str(tmp_path / "empty"), "group"]) == 18
    assert main([str(fmriprep_dir), str(out), "group", "--participant-label", "01"]) == 0
    qc = pd.read_csv(out / "qc.tsv", sep="\t")
    assert set(qc["participant_id"]) == {"sub-01"}


def test_group_matrices_never_pool_tasks(fmriprep_dir, templateflow_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(templateflow_dir))
    out = tmp_path / "out"
    args = ["--atlas", "Schaefer2018:100Parcels7Networks", "--strategy", "simple", "--no-reports"]
    assert (
        main([str(fmriprep_dir), str(out), "participant", "--participant-label", "01", *args]) == 0
    )
    assert main([str(fmriprep_dir), str(out), "group"]) == 0
    suffix = "_meas-PearsonCorrelation_desc-simple_relmat.tsv"
    for task, n_runs in (("rest", 1), ("nback", 2)):
        runs = run_files(out, f"task-{task}_*{SPACE}*{suffix}")
        assert len(runs) == n_runs
        group = pd.read_csv(
            out / f"task-{task}_{SPACE}_{ATLAS}_res-2{suffix}", sep="\t", index_col=0
        )
        matrices = [pd.read_csv(f, sep="\t", index_col=0).to_numpy() for f in runs]
        assert_allclose(group.to_numpy(), fisher_z_average(matrices), rtol=1e-12, equal_nan=True)
    assert not list(out.glob(f"{SPACE}*{suffix}"))  # no file pools rest with nback
