"""Each error the app reports, with its exit code and a message naming the problem."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bidsmask.app.cli import main

MNI = "space-MNI152NLin2009cAsym_res-2"
SCHAEFER = ["--atlas", "Schaefer2018:100Parcels7Networks"]


@pytest.fixture
def run(dataset, tmp_path, templateflow_home):
    """Run the participant level on ``dataset`` in-process (Schaefer unless an --atlas is given)."""

    def run_(*args: str) -> int:
        atlas = [] if "--atlas" in args else SCHAEFER  # --atlas accumulates: A --atlas B is A B
        return main([str(dataset), str(tmp_path / "out"), "participant", *atlas, *args])

    return run_


def test_missing_confounds_file_exits_66(dataset, run, capsys):
    (dataset / "sub-01" / "func" / "sub-01_task-rest_desc-confounds_timeseries.tsv").unlink()
    assert run() == 66
    err = capsys.readouterr().err
    assert "No confounds file" in err and "sub-01_task-rest_desc-confounds_timeseries.tsv" in err


def test_missing_repetition_time_exits_65(dataset, run, capsys):
    func = dataset / "sub-01" / "func"
    sidecar = func / f"sub-01_task-nback_run-1_{MNI}_desc-preproc_bold.json"
    meta = json.loads(sidecar.read_text())
    del meta["RepetitionTime"]
    sidecar.write_text(json.dumps(meta))
    bold_path = func / f"sub-01_task-nback_run-1_{MNI}_desc-preproc_bold.nii.gz"
    bold = nib.load(bold_path)
    bold.header.set_zooms((*bold.header.get_zooms()[:3], 0.0))
    nib.save(nib.Nifti1Image(np.asarray(bold.dataobj), bold.affine, bold.header), bold_path)
    assert run() == 65
    err = capsys.readouterr().err
    assert "No RepetitionTime" in err and bold_path.name in err


def test_low_pass_at_or_above_nyquist_exits_65(dataset, run, capsys):
    """The library lowers such a cut-off with a warning (as nilearn); the app refuses it."""
    func = dataset / "sub-01" / "func"
    sidecar = func / f"sub-01_task-nback_run-1_{MNI}_desc-preproc_bold.json"
    t_r = json.loads(sidecar.read_text())["RepetitionTime"]
    assert run("--low-pass", str(0.5 / t_r), "--task", "nback") == 65
    err = capsys.readouterr().err
    assert "--low-pass" in err and "Nyquist" in err and "task-nback_run-1" in err


def test_bold_mask_grid_mismatch_fails_that_run_with_65(dataset, run, capsys, tmp_path):
    mask_path = dataset / "sub-01" / "func" / f"sub-01_task-rest_{MNI}_desc-brain_mask.nii.gz"
    mask = nib.load(mask_path)
    cropped = np.asarray(mask.dataobj)[1:]
    nib.save(nib.Nifti1Image(cropped, mask.affine), mask_path)
    assert run("--task", "rest", "nback") == 65
    err = capsys.readouterr().err
    assert "BOLD/mask grid mismatch" in err and mask_path.name in err
    assert "2 done, 0 already complete, 0 skipped, 1 failed" in err
    record = tmp_path / "out" / "logs" / "runs" / f"sub-01_task-rest_{MNI}.json"
    assert json.loads(record.read_text())["Status"] == "failed"


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--atlas", "Schaefer2018:100 Parcels"], 64, "Unknown atlas"),
        (["--atlas", "Schaefer2018:400Parcels7Networks"], 66, "bidsmask-fetch-templates"),
        (["--atlas", "Power2011", "--space", "T1w"], 64, "cannot be used in space 'T1w'"),
        (["--atlas", "aparcaseg"], 64, "exists only in space 'T1w'"),
        (["--participant-label", "99"], 18, "sub-99 not found"),
        (["--task", "stroop"], 18, "No preprocessed BOLD"),
        (["--space", "MNI152NLin6Asym"], 18, "No preprocessed BOLD"),
    ],
)
def test_selection_and_atlas_errors(run, capsys, args, code, message):
    assert run(*args) == code
    assert message in capsys.readouterr().err


def test_native_atlas_in_t1w_space(run, tmp_path, capsys):
    assert run("--space", "T1w", "--atlas", "aparcaseg", "--task", "rest", "-v") == 0
    err = capsys.readouterr().err  # -v adds a line per strategy under the progress line
    assert "[1/1] sub-01 task-rest space-T1w … done" in err
    assert "simple: 79/80 volumes kept" in err
    func = tmp_path / "out" / "sub-01" / "func"
    (series,) = func.glob("*_atlas-aparcaseg_stat-mean_desc-simple_timeseries.tsv")
    assert "space-T1w" in series.name
    table = pd.read_csv(series, sep="\t")
    assert "Left-Hippocampus" in table.columns or any(c.startswith("ctx-lh-") for c in table)
    assert (tmp_path / "out" / "atlas-aparcaseg_dseg.tsv").is_file()


def test_too_few_volumes_after_censoring_is_a_recorded_skip(dataset, run, tmp_path, capsys):
    assert run("--task", "rest", "--strategy", "simple", "scrubbing", "--min-volumes", "75") == 0
    err = capsys.readouterr().err
    assert "1 done" in err and "0 failed" in err
    record = json.loads(
        (tmp_path / "out" / "logs" / "runs" / f"sub-01_task-rest_{MNI}.json").read_text()
    )
    assert record["Strategies"]["simple"]["Status"] == "done"
    skipped = record["Strategies"]["scrubbing"]
    assert skipped["Status"] == "skipped" and "--min-volumes 75" in skipped["Reason"]
    func = tmp_path / "out" / "sub-01" / "func"
    assert not list(func.glob("*desc-scrubbing*"))
    assert main([str(tmp_path / "x"), str(tmp_path / "out"), "group"]) == 66
    assert main([str(dataset), str(tmp_path / "out"), "group"]) == 0
    qc = pd.read_csv(tmp_path / "out" / "qc.tsv", sep="\t")
    assert sorted(qc["status"]) == ["done", "skipped"]


def test_killed_run_leaves_no_partial_files_and_a_rerun_completes(
    dataset, tmp_path, templateflow_home
):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "bidsmask.app.cli", str(dataset), str(out), "participant"]
    cmd += [*SCHAEFER, "DiFuMo:64dimensions", "--strategy", "simple", "scrubbing", "compcor"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    deadline = time.monotonic() + 120
    for line in proc.stderr:  # kill as soon as the first run is finished
        if line.startswith("[1/3]") or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    markers = list((out / "logs" / "runs").glob("*.json"))
    assert len(markers) < 3  # it was killed before the end
    assert main([str(dataset), str(out), "participant", *cmd[cmd.index("--atlas") :]]) == 0
    assert not list(out.rglob(".*tmp*"))
    assert len(list((out / "logs" / "runs").glob("*.json"))) == 3
    for series in out.rglob("*_timeseries.tsv"):
        assert len(pd.read_csv(series, sep="\t")) > 20


def test_bids_filter_file_selects_runs(run, tmp_path):
    filters = tmp_path / "filters.json"
    filters.write_text(json.dumps({"bold": {"task": "nback", "run": 2}}))
    assert run("--bids-filter-file", str(filters), "--connectivity", "none") == 0
    (record,) = (tmp_path / "out" / "logs" / "runs").glob("*.json")
    assert record.name == f"sub-01_task-nback_run-2_{MNI}.json"


def test_mask_gm_without_the_templateflow_grey_matter_map_exits_66(
    dataset, tmp_path, templateflow_dir, monkeypatch, capsys
):
    home = tmp_path / "templateflow"
    shutil.copytree(templateflow_dir, home)
    for probseg in home.rglob("*label-GM_probseg.nii.gz"):
        probseg.unlink()
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(home))
    args = [str(dataset), str(tmp_path / "out"), "participant", *SCHAEFER, "--task", "rest"]
    assert main([*args, "--mask", "gm"]) == 66
    err = capsys.readouterr().err
    assert "--mask gm needs TemplateFlow's grey-matter map" in err and "templateflow" in err
