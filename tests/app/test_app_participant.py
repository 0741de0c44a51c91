"""End-to-end participant level on the fixture dataset: files, values, sidecars, pybids, resume."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from bidsmask.app.cli import main
from bidsmask.bids.naming import pybids_config
from bidsmask.confounds import load_strategy
from bidsmask.maskers import NiftiLabelsMasker, NiftiMapsMasker, NiftiMasker

MNI = "space-MNI152NLin2009cAsym"
SCHAEFER = "atlas-Schaefer2018_seg-100Parcels7Networks"
DIFUMO = "atlas-DiFuMo_seg-64dimensions"
RUNS = [
    ("sub-01", "sub-01_task-nback_run-1"),
    ("sub-01", "sub-01_task-nback_run-2"),
    ("sub-01", "sub-01_task-rest"),
    *[
        (f"sub-02/ses-{s}", f"sub-02_ses-{s}_task-{t}")
        for s in (1, 2)
        for t in ("nback_run-1", "nback_run-2", "rest")
    ],
]
STRATEGIES = ("simple", "scrubbing")


@pytest.fixture(scope="module")
def tf_env(templateflow_dir):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TEMPLATEFLOW_HOME", str(templateflow_dir))
        mp.setenv("TEMPLATEFLOW_AUTOUPDATE", "0")
        yield templateflow_dir


@pytest.fixture(scope="module")
def out(fmriprep_dir, tf_env, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("participant") / "out"
    code = main(
        [
            str(fmriprep_dir),
            str(out),
            "participant",
            "--atlas",
            "Schaefer2018:100Parcels7Networks",
            "DiFuMo:64dimensions",
            "--strategy",
            *STRATEGIES,
            "--connectivity",
            "correlation",
            "covariance",
            "--work-dir",
            str(out.parent / "work"),
        ]
    )
    assert code == 0
    return out


def expected_files() -> set[str]:
    files = {
        "dataset_description.json",
        f"{SCHAEFER}_dseg.tsv",
        f"{SCHAEFER}_description.json",
        f"{SCHAEFER}_{MNI}_res-2_dseg.nii.gz",
        f"{DIFUMO}_probseg.tsv",
        f"{DIFUMO}_description.json",
        f"{DIFUMO}_{MNI}_res-2_probseg.nii.gz",
    }
    for folder, stem in RUNS:
        names = [f"{stem}_{MNI}_res-2_desc-brain_mask"]
        for strategy in STRATEGIES:
            for atlas, stat in ((SCHAEFER, "_stat-mean"), (DIFUMO, "")):
                base = f"{stem}_{MNI}_{atlas}_res-2"
                names.append(f"{base}{stat}_desc-{strategy}_timeseries")
                for meas in ("PearsonCorrelation", "Covariance"):
                    names.append(f"{base}_meas-{meas}_desc-{strategy}_relmat")
        for name in names:
            ext = ".nii.gz" if name.endswith("_mask") else ".tsv"
            files |= {f"{folder}/func/{name}{ext}", f"{folder}/func/{name}.json"}
        files |= report_figures(folder.split("/")[0], stem)
    return files | {"sub-01.html", "sub-02.html"}


def report_figures(subject: str, stem: str) -> set[str]:
    """The figures of a run's report (matrices: the first measure only)."""
    names = [f"{stem}_{MNI}_res-2_desc-brain_mask.svg"]
    for atlas in (SCHAEFER, DIFUMO):
        base = f"{stem}_{MNI}_{atlas}_res-2"
        names += [f"{base}_coverage.svg", f"{base}_desc-coverage_histogram.svg"]
        for strategy in STRATEGIES:
            names += [
                f"{base}_meas-PearsonCorrelation_desc-{strategy}_{s}.svg"
                for s in ("relmat", "histogram")
            ]
    names += [f"{stem}_{MNI}_res-2_desc-{strategy}_carpetplot.svg" for strategy in STRATEGIES]
    return {f"{subject}/figures/{name}" for name in names}


def test_output_files_are_exactly_the_documented_ones(out):
    found = {
        p.relative_to(out).as_posix()
        for p in out.rglob("*")
        if p.is_file() and p.relative_to(out).parts[0] != "logs"
    }
    assert found == expected_files()
    assert not list(out.rglob(".*tmp*"))  # no temporary file left
    runs = sorted(p.stem for p in (out / "logs" / "runs").glob("*.json"))
    assert runs == sorted(f"{stem}_{MNI}_res-2" for _, stem in RUNS)
    assert len(list((out / "logs").glob("config-participant-*.json"))) == 1
    assert len(list((out / "logs").glob("bidsmask-participant-*.log"))) == 1


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_timeseries_equal_the_labels_masker(out, one_run, templateflow_dir, strategy):
    confounds, sample_mask, _ = load_strategy(one_run["bold"], strategy)
    atlas = templateflow_dir / "tpl-MNI152NLin2009cAsym"
    masker = NiftiLabelsMasker(
        labels_img=atlas
        / "tpl-MNI152NLin2009cAsym_res-02_atlas-Schaefer2018_desc-100Parcels7Networks_dseg.nii.gz",
        mask_img=one_run["mask"],
        detrend=True,
        standardize="zscore_sample",
        t_r=2.0,
    )
    expected = masker.fit_transform(one_run["bold"], confounds=confounds, sample_mask=sample_mask)
    stem = f"sub-01/func/sub-01_task-rest_{MNI}_{SCHAEFER}_res-2_stat-mean_desc-{strategy}"
    table = pd.read_csv(out / f"{stem}_timeseries.tsv", sep="\t", na_values="n/a")
    sidecar = json.loads((out / f"{stem}_timeseries.json").read_text())
    labels = pd.read_csv(out / f"{SCHAEFER}_dseg.tsv", sep="\t")
    name_of = dict(zip(labels["index"], labels["name"], strict=True))
    ids = [rid for key, rid in masker.region_ids_.items() if key != "background"]
    assert len(table) == expected.shape[0] == len(sidecar["SampleMask"])
    kept = [i for i, rid in enumerate(ids) if sidecar["RegionCoverage"][name_of[rid]] >= 0.5]
    assert len(kept) > 50
    ours = table[[name_of[ids[i]] for i in kept]].to_numpy()
    assert_allclose(ours, expected[:, kept], rtol=1e-4, atol=1e-5)
    below = [n for n, c in sidecar["RegionCoverage"].items() if c < 0.5]
    assert set(below) == set(sidecar["RegionsBelowMinCoverage"])
    assert table[below].isna().all().all()


def test_maps_timeseries_equal_the_maps_masker(out, one_run, templateflow_dir):
    confounds, sample_mask, _ = load_strategy(one_run["bold"], "simple")
    atlas = templateflow_dir / "tpl-MNI152NLin2009cAsym"
    masker = NiftiMapsMasker(
        maps_img=atlas
        / "tpl-MNI152NLin2009cAsym_res-02_atlas-DiFuMo_desc-64dimensions_probseg.nii.gz",
        mask_img=one_run["mask"],
        detrend=True,
        standardize="zscore_sample",
        t_r=2.0,
        keep_masked_maps=True,
    )
    expected = masker.fit_transform(one_run["bold"], confounds=confounds, sample_mask=sample_mask)
    stem = f"sub-01/func/sub-01_task-rest_{MNI}_{DIFUMO}_res-2_desc-simple_timeseries"
    table = pd.read_csv(out / f"{stem}.tsv", sep="\t", na_values="n/a").to_numpy()
    valid = ~np.isnan(table).all(axis=0)
    assert valid.sum() > 40
    assert_allclose(table[:, valid], expected[:, valid], rtol=1e-4, atol=1e-5)


def test_sidecars_hold_the_documented_fields(out):
    stem = f"sub-02/ses-1/func/sub-02_ses-1_task-rest_{MNI}"
    ts = json.loads(
        (out / f"{stem}_{SCHAEFER}_res-2_stat-mean_desc-scrubbing_timeseries.json").read_text()
    )
    for key in (
        "SamplingFrequency",
        "Sources",
        "ConfoundColumns",
        "ConfoundParameters",
        "CleaningParameters",
        "VolumesTotal",
        "VolumesKept",
        "VolumesCensored",
        "MeanFramewiseDisplacement",
        "RegionCoverage",
        "MinCoverage",
        "NodeFiles",
    ):
        assert key in ts, key
    assert ts["SamplingFrequency"] == 0.5
    assert ts["VolumesTotal"] == 80 and ts["VolumesKept"] + ts["VolumesCensored"] == 80
    assert ts["VolumesCensored"] > 1  # the non-steady-state volume plus scrubbed spikes
    assert ts["ConfoundParameters"]["options"]["fd_threshold"] == 0.5
    assert ts["CleaningParameters"]["standardize"] == "zscore_sample"
    assert ts["Sources"][0] == f"bids:fmriprep:{stem}_res-2_desc-preproc_bold.nii.gz"
    assert ts["NodeFiles"] == [f"bids::{SCHAEFER}_dseg.tsv"]
    rel = json.loads(
        (
            out / f"{stem}_{SCHAEFER}_res-2_meas-PearsonCorrelation_desc-simple_relmat.json"
        ).read_text()
    )
    assert rel["RelationshipMeasure"] == "PearsonCorrelation"
    assert rel["Directed"] is False and rel["ValidDiagonal"] is False
    mask = json.loads((out / f"{stem}_res-2_desc-brain_mask.json").read_text())
    assert mask["Type"] == "Brain" and len(mask["Sources"]) == 2
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    assert description["GeneratedBy"][0]["Name"] == "bidsmask"


def test_relmat_is_the_correlation_of_the_timeseries(out):
    stem = f"sub-01/func/sub-01_task-nback_run-2_{MNI}_{SCHAEFER}_res-2"
    table = pd.read_csv(out / f"{stem}_stat-mean_desc-simple_timeseries.tsv", sep="\t")
    matrix = pd.read_csv(
        out / f"{stem}_meas-PearsonCorrelation_desc-simple_relmat.tsv", sep="\t", index_col=0
    )
    assert list(matrix.columns) == list(table.columns) == list(matrix.index)
    valid = table.columns[table.notna().all()]
    assert_allclose(matrix.loc[valid, valid], table[valid].corr(), atol=1e-5)
    missing = table.columns[table.isna().all()]
    assert matrix[missing].isna().all().all()


def test_pybids_finds_every_output_by_its_entities(out):
    from bids import BIDSLayout

    layout = BIDSLayout(out, validate=False, config=["bids", "derivatives", pybids_config()])
    series = layout.get(suffix="timeseries", extension=".tsv")
    assert len(series) == len(RUNS) * len(STRATEGIES) * 2
    got = layout.get(
        subject="02",
        session="1",
        task="nback",
        run=2,
        space="MNI152NLin2009cAsym",
        atlas="Schaefer2018",
        desc="scrubbing",
        suffix="timeseries",
        extension=".tsv",
    )
    assert len(got) == 1
    assert got[0].get_metadata()["Strategy"] == "scrubbing"
    relmats = layout.get(meas="Covariance", suffix="relmat", extension=".tsv")
    assert len(relmats) == len(RUNS) * len(STRATEGIES) * 2
    masks = layout.get(desc="brain", suffix="mask", extension=".nii.gz")
    assert len(masks) == len(RUNS)


def test_rerun_skips_complete_runs_and_finishes_an_interrupted_one(out, fmriprep_dir, caplog):
    args = [
        str(fmriprep_dir),
        str(out),
        "participant",
        "--atlas",
        "Schaefer2018:100Parcels7Networks",
        "DiFuMo:64dimensions",
        "--strategy",
        *STRATEGIES,
        "--connectivity",
        "correlation",
        "covariance",
    ]
    stem = f"sub-02/ses-2/func/sub-02_ses-2_task-rest_{MNI}"
    victim = out / f"{stem}_{DIFUMO}_res-2_desc-scrubbing_timeseries.tsv"
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.tsv") if p != victim}
    # What a kill leaves: no completion record, a missing output, a temporary file.
    (out / "logs" / "runs" / f"sub-02_ses-2_task-rest_{MNI}_res-2.json").unlink()
    victim.unlink()
    stale = victim.with_name(f".{victim.name[:-4]}.x1y2z3.tmp.tsv")
    stale.write_text("half a file")
    with caplog.at_level("INFO", logger="bidsmask"):
        assert main(args) == 0
    lines = [r.getMessage() for r in caplog.records]
    assert sum("… up-to-date" in line for line in lines) == len(RUNS) - 1
    assert sum("… done" in line for line in lines) == 1
    assert victim.is_file() and not stale.exists()
    assert not list(out.rglob(".*tmp*"))
    unchanged = [p for p, t in before.items() if p.stat().st_mtime_ns == t]
    assert len(unchanged) == len(before) - sum(str(p).startswith(str(out / stem)) for p in before)


def test_options_mask_gm_denoised_bold_and_two_processes(fmriprep_dir, tf_env, tmp_path, one_run):
    out = tmp_path / "out"
    args = [
        str(fmriprep_dir),
        str(out),
        "participant",
        "--participant-label",
        "sub-01",
        "--task",
        "rest",
        "nback",
        "--atlas",
        "Schaefer2018:100Parcels7Networks",
        "--mask",
        "gm",
        "--save-denoised-bold",
        "--connectivity",
        "none",
        "--low-pass",
        "0.08",
        "--high-pass",
        "0.01",
        "--nprocs",
        "2",
    ]
    assert main(args) == 0
    func = out / "sub-01" / "func"
    mask_img = nib.load(func / f"sub-01_task-rest_{MNI}_res-2_desc-brain_mask.nii.gz")
    mask = np.asarray(mask_img.dataobj).astype(bool)
    fmriprep_mask = np.asarray(nib.load(one_run["mask"]).dataobj).astype(bool)
    assert 0 < mask.sum() < fmriprep_mask.sum() and not (mask & ~fmriprep_mask).any()
    assert "GreyMatterThreshold" in json.loads(
        (func / f"sub-01_task-rest_{MNI}_res-2_desc-brain_mask.json").read_text()
    )
    assert not list(func.glob("*_relmat.tsv"))
    bold = nib.load(func / f"sub-01_task-rest_{MNI}_res-2_desc-simple_bold.nii.gz")
    confounds, sample_mask, _ = load_strategy(one_run["bold"], "simple")
    masker = NiftiMasker(
        mask_img=mask_img,
        detrend=True,
        standardize="zscore_sample",
        low_pass=0.08,
        high_pass=0.01,
        t_r=2.0,
    )
    expected = masker.fit().transform(one_run["bold"], confounds=confounds, sample_mask=sample_mask)
    assert bold.shape[3] == expected.shape[0] == 79
    assert bold.header.get_zooms()[3] == 2.0
    ours = np.asarray(bold.dataobj)[mask].T
    assert_allclose(ours, expected, rtol=1e-4, atol=1e-4)
    assert len(list((out / "logs" / "runs").glob("*.json"))) == 3
    log = "".join(path.read_text() for path in (out / "logs").glob("*.log"))
    assert "2 worker process(es) × " in log and "BLAS/OpenMP thread(s)" in log
    assert "Prepared 1 atlas grid(s)" in log


def test_no_output_column_is_constant(out):
    """Every time series column and matrix row has data or is n/a entirely (issue 17)."""
    tables = sorted(out.rglob("*_timeseries.tsv"))
    assert len(tables) == len(RUNS) * len(STRATEGIES) * 2
    for path in tables:
        values = pd.read_csv(path, sep="\t", na_values="n/a").to_numpy()
        present = ~np.isnan(values).all(axis=0)
        assert np.isfinite(values[:, present]).all(), path.name
        assert (values[:, present].max(axis=0) > values[:, present].min(axis=0)).all(), path.name
    for path in sorted(out.rglob("*_relmat.tsv")):
        matrix = pd.read_csv(path, sep="\t", index_col=0, na_values="n/a").to_numpy()
        rows = ~np.isnan(matrix).all(axis=1)
        assert np.isfinite(matrix[np.ix_(rows, rows)]).all(), path.name
