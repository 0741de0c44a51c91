"""End-to-end grayordinate (fsLR) runs: discovery, atlases, outputs, sidecars, group level.

The fixture dataset is the synthetic fMRIPrep dataset with each run also written as
``*_space-fsLR_den-91k_bold.dtseries.nii`` (on the small layout, for speed), and a BIDS-Atlas
folder laid out like XCP-D's holding a full-mesh dlabel of the same name as a TemplateFlow atlas,
so that one ``--atlas`` serves both spaces.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from bidsmask.app.cli import main
from bidsmask.app.config import Space
from bidsmask.bids.layout import NoRunsFoundError, collect_runs
from bidsmask.confounds import load_strategy
from bidsmask.datagen import (
    atlas_brain_models,
    block_parcellation,
    make_fmriprep_dataset,
    small_grayordinates,
    write_dlabel,
)
from bidsmask.maskers import CiftiLabelsMasker

ATLAS = "Schaefer2018:100Parcels7Networks"
CIFTI_ENTS = "space-fsLR_atlas-Schaefer2018_seg-100Parcels7Networks_den-91k"
WB = shutil.which("wb_command")


@pytest.fixture(scope="module")
def cifti_dataset(tmp_path_factory, mni_brain_mask) -> Path:
    root = tmp_path_factory.mktemp("cifti") / "fmriprep"
    return make_fmriprep_dataset(root, mni_brain_mask, n_volumes=50, grayordinates="small")


@pytest.fixture(scope="module")
def atlas_dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("atlases")
    folder = root / "atlas-Schaefer2018"
    folder.mkdir()
    axis = atlas_brain_models(small_grayordinates(), "full")  # medial wall labelled too
    labels = block_parcellation(axis, 4, 1)
    name = "tpl-fsLR_atlas-Schaefer2018_seg-100Parcels7Networks_den-91k_dseg"
    write_dlabel(folder / f"{name}.dlabel.nii", axis, labels)
    table = pd.DataFrame({"index": range(1, 12), "name": [f"P{i}" for i in range(1, 12)]})
    table.to_csv(folder / f"{name}.tsv", sep="\t", index=False)
    return root


@pytest.fixture(scope="module")
def tf_env(templateflow_dir):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TEMPLATEFLOW_HOME", str(templateflow_dir))
        mp.setenv("TEMPLATEFLOW_AUTOUPDATE", "0")
        yield templateflow_dir


@pytest.fixture(scope="module")
def out(cifti_dataset, atlas_dataset, tf_env, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cifti-out") / "out"
    args = [str(cifti_dataset), str(out), "participant", "--participant-label", "01"]
    args += ["--space", "fsLR", "MNI152NLin2009cAsym", "--atlas", ATLAS]
    args += ["--atlas-dataset", str(atlas_dataset), "--strategy", "simple", "scrubbing"]
    args += ["--connectivity", "correlation", "--work-dir", str(out.parent / "work")]
    assert main(args) == 0
    return out


def test_space_parsing():
    assert Space.parse("fsLR") == Space("fsLR", None, "91k")
    assert Space.parse("fsLR:den-170k").entities == {"space": "fsLR", "den": "170k"}
    assert str(Space.parse("MNI152NLin2009cAsym:res-2")) == "MNI152NLin2009cAsym:res-2"
    with pytest.raises(ValueError, match="den- applies to grayordinate spaces"):
        Space.parse("MNI152NLin2009cAsym:den-91k")


def test_pybids_finds_dtseries_with_confounds_and_metadata(cifti_dataset, tmp_path):
    runs = collect_runs(cifti_dataset, tmp_path, participants=["02"], spaces=["fsLR:den-91k"])
    assert len(runs) == 6
    run = runs[0]
    assert run.bold.name == "sub-02_ses-1_task-nback_run-1_space-fsLR_den-91k_bold.dtseries.nii"
    assert run.mask is None
    assert run.confounds.name == "sub-02_ses-1_task-nback_run-1_desc-confounds_timeseries.tsv"
    assert run.repetition_time == 2.0 and run.metadata["TaskName"] == "nback"
    assert run.entities == {"sub": "02", "ses": "1", "task": "nback", "run": "1"} | {
        "space": "fsLR",
        "den": "91k",
    }
    both = collect_runs(
        cifti_dataset, tmp_path, participants=["01"], spaces=["fsLR", "MNI152NLin2009cAsym"]
    )
    assert sorted({r.space for r in both}) == ["MNI152NLin2009cAsym", "fsLR"] and len(both) == 6
    with pytest.raises(NoRunsFoundError, match="fsLR:den-170k"):
        collect_runs(cifti_dataset, tmp_path, spaces=["fsLR:den-170k"], participants=["01"])


def test_outputs_of_both_spaces_in_one_call(out):
    func = out / "sub-01" / "func"
    stem = "sub-01_task-rest"
    for strategy in ("simple", "scrubbing"):
        base = f"{stem}_{CIFTI_ENTS}"
        for name in (
            f"{base}_stat-mean_desc-{strategy}_timeseries.tsv",
            f"{base}_stat-mean_desc-{strategy}_timeseries.ptseries.nii",
            f"{base}_stat-mean_desc-{strategy}_timeseries.json",
            f"{base}_meas-PearsonCorrelation_desc-{strategy}_relmat.tsv",
            f"{base}_meas-PearsonCorrelation_desc-{strategy}_relmat.pconn.nii",
            f"{base}_meas-PearsonCorrelation_desc-{strategy}_relmat.json",
        ):
            assert (func / name).is_file(), name
    assert (func / f"{stem}_{CIFTI_ENTS}_stat-coverage_boldmap.pscalar.nii").is_file()
    assert (func / f"{stem}_{CIFTI_ENTS}_stat-coverage_boldmap.json").is_file()
    volume = f"{stem}_space-MNI152NLin2009cAsym_atlas-Schaefer2018_seg-100Parcels7Networks_res-2"
    assert (func / f"{volume}_stat-mean_desc-simple_timeseries.tsv").is_file()
    assert not list(func.glob("*space-fsLR*_mask.nii.gz"))
    assert (out / "atlas-Schaefer2018_seg-100Parcels7Networks_space-fsLR_dseg.dlabel.nii").is_file()


def test_time_series_are_the_cifti_maskers(out, cifti_dataset, atlas_dataset):
    dtseries = cifti_dataset / "sub-01/func/sub-01_task-rest_space-fsLR_den-91k_bold.dtseries.nii"
    base = out / "sub-01/func" / f"sub-01_task-rest_{CIFTI_ENTS}"
    table = pd.read_csv(
        f"{base}_stat-mean_desc-scrubbing_timeseries.tsv", sep="\t", na_values="n/a"
    )
    confounds, sample_mask, _ = load_strategy(dtseries, "scrubbing")
    dlabel = next(atlas_dataset.rglob("*.dlabel.nii"))
    masker = CiftiLabelsMasker(dlabel, detrend=True, standardize="zscore_sample")
    expected = masker.fit_transform(
        dtseries, confounds=confounds.to_numpy(), sample_mask=sample_mask
    )
    assert list(table.columns) == [f"P{i}" for i in range(1, 12)]
    sidecar = json.loads(Path(f"{base}_stat-mean_desc-scrubbing_timeseries.json").read_text())
    coverage = np.array([sidecar["RegionCoverage"][name] for name in table.columns])
    assert_allclose(coverage, masker.region_coverage_, atol=1e-4)
    # P1..P8 cortex (30 vertices per parcel, medial-wall vertices missing from the data),
    # P9..P11 one per subcortical structure; all above --min-coverage 0.5 here
    assert coverage.min() < 1 and coverage.min() >= 0.5
    assert_allclose(table.to_numpy(), expected, rtol=1e-4, atol=1e-5)
    ptseries = nib.load(f"{base}_stat-mean_desc-scrubbing_timeseries.ptseries.nii")
    assert ptseries.nifti_header.get_intent()[0] == "ConnParcelSries"
    assert_allclose(np.asarray(ptseries.dataobj), table.to_numpy(), rtol=1e-6)
    assert list(ptseries.header.get_axis(1).name) == list(table.columns)
    assert ptseries.header.get_axis(0).step == 2.0
    relmat = pd.read_csv(
        f"{base}_meas-PearsonCorrelation_desc-scrubbing_relmat.tsv", sep="\t", index_col=0
    )
    assert_allclose(relmat.to_numpy(), np.corrcoef(table.to_numpy().T), atol=1e-5)
    pconn = nib.load(f"{base}_meas-PearsonCorrelation_desc-scrubbing_relmat.pconn.nii")
    assert pconn.nifti_header.get_intent()[0] == "ConnParcels"
    assert_allclose(np.asarray(pconn.dataobj), relmat.to_numpy(), atol=1e-6)
    pscalar = nib.load(f"{base}_stat-coverage_boldmap.pscalar.nii")
    assert pscalar.nifti_header.get_intent()[0] == "ConnParcelScalr"
    assert_allclose(np.asarray(pscalar.dataobj)[0], coverage, atol=1e-4)
    assert sidecar["Sources"][0] == "bids:fmriprep:" + str(dtseries.relative_to(cifti_dataset))
    assert sidecar["VolumesKept"] == len(sample_mask)


@pytest.mark.skipif(WB is None, reason="wb_command not installed")
def test_workbench_reads_the_outputs(out):
    for path in sorted(out.rglob("*space-fsLR*.p*.nii"))[:6]:
        done = subprocess.run([WB, "-file-information", str(path)], capture_output=True, text=True)
        assert done.returncode == 0 and "Type:                     CIFTI - Parcel" in done.stdout


def test_min_coverage_gives_na_and_resume(cifti_dataset, atlas_dataset, tf_env, tmp_path):
    out = tmp_path / "out"
    args = [str(cifti_dataset), str(out), "participant", "--participant-label", "01"]
    args += ["--space", "fsLR", "--atlas", ATLAS, "--atlas-dataset", str(atlas_dataset)]
    args += ["--min-coverage", "0.9", "--task", "rest"]
    assert main(args) == 0
    base = out / "sub-01/func" / f"sub-01_task-rest_{CIFTI_ENTS}"
    table = pd.read_csv(f"{base}_stat-mean_desc-simple_timeseries.tsv", sep="\t", na_values="n/a")
    sidecar = json.loads(Path(f"{base}_stat-mean_desc-simple_timeseries.json").read_text())
    below = [n for n, c in sidecar["RegionCoverage"].items() if c < 0.9]
    assert below and sidecar["RegionsBelowMinCoverage"] == below
    assert sidecar["RegionsNotAvailable"] == dict.fromkeys(below, "missing data")
    assert table[below].isna().all().all() and table.drop(columns=below).notna().all().all()
    record = out / "logs/runs/sub-01_task-rest_space-fsLR_den-91k.json"
    before = record.stat().st_mtime_ns
    assert main(args) == 0
    assert record.stat().st_mtime_ns == before  # complete: not redone


def test_atlas_without_cifti_version_is_a_usage_error(cifti_dataset, atlas_dataset, tmp_path):
    args = [str(cifti_dataset), str(tmp_path / "out"), "participant", "--participant-label", "01"]
    assert main([*args, "--space", "fsLR", "--atlas", "Power2011"]) == 64
    assert (
        main([*args, "--space", "fsLR", "--atlas", "Other", "--atlas-dataset", str(atlas_dataset)])
        == 64
    )
    assert main([*args, "--atlas-dataset", str(tmp_path / "missing")]) == 66


def test_dlabel_path_atlas_with_its_own_label_table(cifti_dataset, tmp_path):
    axis = atlas_brain_models(small_grayordinates(), "subcortex")
    dlabel = write_dlabel(
        tmp_path / "atlas-Sub_dseg.dlabel.nii", axis, block_parcellation(axis, 0, 2), {1: "a"}
    )
    out = tmp_path / "out"
    args = [str(cifti_dataset), str(out), "participant", "--participant-label", "01"]
    assert main([*args, "--space", "fsLR", "--atlas", str(dlabel), "--task", "rest"]) == 0
    tsv = out / "sub-01/func/sub-01_task-rest_space-fsLR_atlas-Sub_den-91k_stat-mean_desc-simple"
    tsv = tsv.with_name(tsv.name + "_timeseries.tsv")
    assert list(pd.read_csv(tsv, sep="\t").columns) == ["a", *[f"parcel{i}" for i in range(2, 7)]]


def test_group_level_averages_cifti_matrices(out, cifti_dataset):
    assert main([str(cifti_dataset), str(out), "group"]) == 0
    for task, n_runs in (("rest", 1), ("nback", 2)):  # tasks are averaged apart
        name = f"task-{task}_{CIFTI_ENTS}_meas-PearsonCorrelation_desc-simple_relmat"
        group = pd.read_csv(out / f"{name}.tsv", sep="\t", index_col=0)
        pconn = nib.load(out / f"{name}.pconn.nii")
        assert pconn.nifti_header.get_intent()[0] == "ConnParcels"
        assert_allclose(np.asarray(pconn.dataobj), group.to_numpy(), atol=1e-6)
        runs = sorted(
            (out / "sub-01/func").glob(
                f"*task-{task}_*space-fsLR*PearsonCorrelation_desc-simple_relmat.tsv"
            )
        )
        assert len(runs) == n_runs
        matrices = [pd.read_csv(r, sep="\t", index_col=0).to_numpy() for r in runs]
        z = np.mean([np.arctanh(np.clip(m, -0.9999999, 0.9999999)) for m in matrices], axis=0)
        off = ~np.eye(len(group), dtype=bool)
        assert_allclose(group.to_numpy()[off], np.tanh(z)[off], atol=1e-5)
    qc = pd.read_csv(out / "qc.tsv", sep="\t")
    assert set(qc["space"]) == {"fsLR", "MNI152NLin2009cAsym:res-2"}
    assert_array_equal(sorted(qc["strategy"].unique()), ["scrubbing", "simple"])


def test_report_figures_of_grayordinate_runs(out):
    record = json.loads((out / "logs/runs/sub-01_task-rest_space-fsLR_den-91k.json").read_text())
    figures = {Path(f["Path"]).name: f for f in record["Report"]["Figures"]}
    stem = "sub-01_task-rest_space-fsLR"
    carpet = figures[f"{stem}_den-91k_desc-scrubbing_carpetplot.svg"]
    assert carpet["Caption"].startswith("272 grayordinates (left cortex, right cortex, subcortex)")
    for name in (
        f"{stem}_atlas-Schaefer2018_seg-100Parcels7Networks_den-91k_meas-PearsonCorrelation"
        "_desc-simple_relmat.svg",
        f"{stem}_atlas-Schaefer2018_seg-100Parcels7Networks_den-91k_desc-coverage_histogram.svg",
    ):
        assert name in figures
    for figure in figures.values():
        assert (out / figure["Path"]).stat().st_size > 1000
    assert set(record["Report"]["Strategies"]) == {"simple", "scrubbing"}
    page = (out / "sub-01.html").read_text()
    assert carpet["Path"] in page


def test_save_denoised_bold_says_fslr_runs_get_none(
    cifti_dataset, atlas_dataset, tf_env, tmp_path, caplog
):
    out = tmp_path / "out"
    args = [str(cifti_dataset), str(out), "participant", "--participant-label", "01"]
    args += ["--space", "fsLR", "--atlas", ATLAS, "--atlas-dataset", str(atlas_dataset)]
    args += ["--task", "rest", "--no-reports", "--save-denoised-bold"]
    with caplog.at_level("WARNING", logger="bidsmask"):
        assert main(args) == 0
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("sub-01_task-rest_space-fsLR_den-91k" in m and "volumes only" in m for m in warned)
    assert not list(out.rglob("*_bold.*"))
