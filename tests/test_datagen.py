"""Tests of the synthetic fMRIPrep dataset and TemplateFlow home (bidsmask.datagen)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from bidsmask.datagen import make_fmriprep_dataset, make_templateflow_home, mni_grid
from bidsmask.datagen._anatomy import build_anatomy, prepare_template
from bidsmask.datagen._bold import simulate_timecourses
from bidsmask.datagen._confounds import cosine_basis

MNI = "space-MNI152NLin2009cAsym_res-2"
TPL = "MNI152NLin2009cAsym"
NILEARN_V21 = (
    Path(__import__("nilearn").__file__).parent
    / "interfaces"
    / "fmriprep"
    / "data"
    / "test-v21_desc-confounds_timeseries.tsv"
)


def _confounds_of(bold: Path) -> tuple[pd.DataFrame, dict]:
    stem = bold.name.split("_space-")[0]
    table = pd.read_csv(bold.parent / f"{stem}_desc-confounds_timeseries.tsv", sep="\t")
    meta = json.loads((bold.parent / f"{stem}_desc-confounds_timeseries.json").read_text())
    return table, meta


def _spikes(table: pd.DataFrame) -> np.ndarray:
    return np.flatnonzero(table["framewise_displacement"].fillna(0).to_numpy() > 0.5)


# --- grid -----------------------------------------------------------------------------


def test_mni_grid():
    shape, affine = mni_grid(1)
    assert shape == (97, 115, 97)
    assert_array_equal(affine, [[2, 0, 0, -96], [0, 2, 0, -132], [0, 0, 2, -78], [0, 0, 0, 1]])
    shape, affine = mni_grid()
    assert shape == (25, 29, 25)
    assert_array_equal(np.diag(affine), [8, 8, 8, 1])
    assert_array_equal(affine[:3, 3], [-96, -132, -78])
    with pytest.raises(ValueError, match="decimation"):
        mni_grid(0)
    with pytest.raises(TypeError, match="decimation"):
        mni_grid(2.0)


def _centre_of_mass(img) -> np.ndarray:
    data = np.asarray(img.dataobj, dtype=np.float64)
    ijk = np.argwhere(data > 0)
    weights = data[data > 0]
    return nib.affines.apply_affine(img.affine, (ijk * weights[:, None]).sum(0) / weights.sum())


def test_prepare_template_keeps_the_brain_in_place(mni_brain_mask):
    small = prepare_template(mni_brain_mask)
    assert small.header.get_zooms() == (2.0, 2.0, 2.0)
    assert np.asarray(small.dataobj).max() <= 1.0
    assert_allclose(_centre_of_mass(small), _centre_of_mass(mni_brain_mask), atol=0.1)


def test_t1_template_or_mask_give_the_same_brain(mni_brain_mask):
    from nilearn.datasets import load_mni152_template

    grid = mni_grid()
    from_mask = build_anatomy(prepare_template(mni_brain_mask), *grid).brain
    from_t1 = build_anatomy(prepare_template(load_mni152_template()), *grid).brain
    assert 3400 < from_t1.sum() <= from_mask.sum() < 4000
    assert 2 * (from_mask & from_t1).sum() / (from_mask.sum() + from_t1.sum()) > 0.95


# --- pybids -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [{"is_derivative": True}, {"config": ["bids", "derivatives"]}],
    ids=["is_derivative", "config"],
)
def test_pybids_indexes_every_run(fmriprep_dir, kwargs):
    from bids import BIDSLayout

    layout = BIDSLayout(fmriprep_dir, validate=False, **kwargs)
    assert layout.get_subjects() == ["01", "02"]
    assert layout.get_sessions() == ["1", "2"]
    assert layout.get_tasks() == ["nback", "rest"]
    assert layout.get_runs() == [1, 2]
    assert set(layout.get_spaces()) == {"MNI152NLin2009cAsym", "T1w"}
    query = {"suffix": "bold", "desc": "preproc", "extension": ".nii.gz"}
    mni = layout.get(space="MNI152NLin2009cAsym", res="2", **query)
    assert len(mni) == 9
    t1w = layout.get(space="T1w", **query)
    assert sorted(f.filename for f in t1w) == [
        "sub-01_task-nback_run-1_space-T1w_desc-preproc_bold.nii.gz",
        "sub-01_task-nback_run-2_space-T1w_desc-preproc_bold.nii.gz",
        "sub-01_task-rest_space-T1w_desc-preproc_bold.nii.gz",
    ]
    for bold in mni + t1w:
        entities = {
            k: v
            for k, v in bold.get_entities().items()
            if k in ("subject", "session", "task", "run", "space", "res")
        }
        for key in ("session", "run"):
            entities.setdefault(key, None)
        assert len(layout.get(suffix="mask", desc="brain", extension=".nii.gz", **entities)) == 1
        assert len(layout.get(suffix="boldref", extension=".nii.gz", **entities)) == 1
        no_space = {k: v for k, v in entities.items() if k not in ("space", "res")}
        for ext in (".tsv", ".json"):
            found = layout.get(
                suffix="timeseries", desc="confounds", extension=ext, space=None, **no_space
            )
            assert len(found) == 1
        metadata = bold.get_metadata()
        assert metadata["RepetitionTime"] == 2.0
        assert metadata["TaskName"] == entities["task"]
    t1w_dseg = layout.get(space="T1w", suffix="dseg", extension=".nii.gz", datatype="func")
    assert sorted({f.entities["desc"] for f in t1w_dseg}) == ["aparcaseg", "aseg"]
    assert len(t1w_dseg) == 6
    assert len(layout.get(datatype="anat", label="GM", suffix="probseg")) == 4


def test_dataset_description(fmriprep_dir):
    description = json.loads((fmriprep_dir / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    assert description["GeneratedBy"][0]["Name"] == "fMRIPrep"
    assert description["GeneratedBy"][0]["Version"] == "23.2.1"
    assert "BIDSVersion" in description


def test_fixture_paths(fmriprep_dir, bold_files, one_run):
    assert len(bold_files) == 9
    assert bold_files == sorted(bold_files)
    assert all(path.is_file() for path in one_run.values())
    assert set(one_run) == {"bold", "mask", "boldref", "confounds", "confounds_json", "bold_json"}
    anat = fmriprep_dir / "sub-01" / "anat"
    for name in (
        "sub-01_desc-brain_mask.nii.gz",
        "sub-01_desc-preproc_T1w.nii.gz",
        "sub-01_label-GM_probseg.nii.gz",
        "sub-01_label-WM_probseg.nii.gz",
        "sub-01_label-CSF_probseg.nii.gz",
        f"sub-01_{MNI}_desc-brain_mask.nii.gz",
        f"sub-01_{MNI}_label-GM_probseg.nii.gz",
    ):
        assert (anat / name).is_file(), name
    assert (fmriprep_dir / "sub-02" / "anat" / "sub-02_desc-preproc_T1w.nii.gz").is_file()


# --- BOLD -----------------------------------------------------------------------------


def test_bold_image(one_run):
    img = nib.load(one_run["bold"])
    data = np.asarray(img.dataobj)
    assert data.shape == (25, 29, 25, 80)
    assert data.dtype == np.float32
    assert img.header.get_zooms() == (8.0, 8.0, 8.0, 2.0)
    assert_array_equal(img.affine, mni_grid()[1])
    mask = np.asarray(nib.load(one_run["mask"]).dataobj).astype(bool)
    assert 3400 < mask.sum() < 3800
    mean = data[..., 1:].mean(axis=-1)
    assert 500 < mean[mask].min() and mean[mask].max() < 2000
    head = mean > 0
    assert 4000 < head.sum() < 5500 and (mask <= head).all()
    sidecar = json.loads(one_run["bold_json"].read_text())
    assert sidecar["RepetitionTime"] == 2.0
    assert sidecar["TaskName"] == "rest"
    assert sidecar["SkullStripped"] is False
    assert 0 < sidecar["StartTime"] < 2.0
    boldref = np.asarray(nib.load(one_run["boldref"]).dataobj)
    assert_allclose(boldref, data[..., 1:].mean(axis=-1), rtol=1e-5, atol=1e-3)


def test_run_masks_differ_slightly(fmriprep_dir, bold_files):
    anat = fmriprep_dir / "sub-01" / "anat" / f"sub-01_{MNI}_desc-brain_mask.nii.gz"
    brain = np.asarray(nib.load(anat).dataobj).astype(bool)
    masks = [
        np.asarray(nib.load(str(b).replace("desc-preproc_bold", "desc-brain_mask")).dataobj) > 0
        for b in bold_files
    ]
    for mask in masks:
        assert (mask <= brain).all() and mask.sum() > 0.97 * brain.sum()
    assert len({m.tobytes() for m in masks}) == len(masks)


def test_network_signals_are_shared(one_run):
    """Voxels of one network co-vary: nearby voxels correlate more than noise would."""
    data = np.asarray(nib.load(one_run["bold"]).dataobj)[..., 1:].astype(np.float64)
    mask = np.asarray(nib.load(one_run["mask"]).dataobj).astype(bool)
    series = data[mask]
    series = series - series.mean(axis=1, keepdims=True)
    series /= series.std(axis=1, keepdims=True)
    corr = series @ series.T / series.shape[1]
    off_diagonal = corr[~np.eye(len(corr), dtype=bool)]
    assert off_diagonal.mean() > 0.05
    assert np.percentile(off_diagonal, 99) > 0.3


# --- confounds ------------------------------------------------------------------------


def test_confounds_columns_follow_fmriprep(bold_files):
    reference = pd.read_csv(NILEARN_V21, sep="\t")

    def families(columns):
        return {re.sub(r"_?\d+$", "", c) for c in columns}

    for bold in bold_files:
        table, _ = _confounds_of(bold)
        assert families(reference.columns) <= families(table.columns)
        assert len(table) == 80
        nan_first = set(table.columns[table.iloc[0].isna()])
        expected = set(reference.columns[reference.iloc[0].isna()]) & set(table.columns)
        assert nan_first == expected
        assert not table.iloc[1:].isna().any().any()
    text = bold_files[0].parent / "sub-01_task-nback_run-1_desc-confounds_timeseries.tsv"
    assert "\tn/a\t" in text.read_text().splitlines()[1]


def test_global_signal_is_mean_bold_in_mask(bold_files):
    for bold in bold_files:
        data = nib.load(bold).get_fdata()
        mask = np.asarray(
            nib.load(str(bold).replace("desc-preproc_bold", "desc-brain_mask")).dataobj
        )
        table, _ = _confounds_of(bold)
        assert_allclose(table["global_signal"], data[mask > 0].mean(axis=0), rtol=1e-10)
        derivative = np.diff(table["global_signal"].to_numpy())
        assert_allclose(table["global_signal_derivative1"].iloc[1:], derivative, rtol=1e-6)
        assert_allclose(table["global_signal_power2"], table["global_signal"] ** 2, rtol=1e-12)


def test_motion_spikes(bold_files):
    for bold in bold_files:
        table, _ = _confounds_of(bold)
        spikes = _spikes(table)
        assert 2 <= len(spikes) <= 4
        fd = table["framewise_displacement"].to_numpy()
        steady = np.setdiff1d(np.arange(1, 80), spikes)
        assert fd[steady].max() < 0.2
        # Power's FD from the motion columns.
        motion = table[["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]].to_numpy()
        delta = np.abs(np.diff(motion, axis=0))
        assert_allclose(fd[1:], delta[:, :3].sum(1) + 50 * delta[:, 3:].sum(1), rtol=1e-9)
        # The BOLD jumps at the spike volumes only (the global signal shows it).
        gs = table["global_signal"].to_numpy()
        volumes = np.arange(1, 79)
        jump = gs[1:-1] / (0.5 * (gs[:-2] + gs[2:])) - 1
        assert (jump[np.isin(volumes, spikes)] > 0.03).all()
        near = np.concatenate([[1], spikes - 1, spikes, spikes + 1])
        assert np.abs(jump[~np.isin(volumes, near)]).max() < 0.015
        std_dvars = table["std_dvars"].to_numpy()
        flagged = np.flatnonzero(np.nan_to_num(std_dvars) > 1.5)
        assert_array_equal(flagged, np.union1d([1], np.union1d(spikes, spikes + 1)))
        outliers = [c for c in table.columns if c.startswith("motion_outlier")]
        assert_array_equal(np.flatnonzero(table[outliers].sum(axis=1)), flagged)


def test_non_steady_state_volume(bold_files):
    for bold in bold_files:
        table, _ = _confounds_of(bold)
        assert_array_equal(table["non_steady_state_outlier00"], np.eye(80)[0])
        gs = table["global_signal"].to_numpy()
        assert gs[0] > 1.4 * np.median(gs[1:])


def test_cosine_and_compcor(one_run):
    table = pd.read_csv(one_run["confounds"], sep="\t")
    meta = json.loads(one_run["confounds_json"].read_text())
    basis = cosine_basis(79, 2.0)
    assert basis.shape == (79, 1)
    assert_allclose(table["cosine00"], np.r_[0, basis[:, 0]], atol=1e-12)
    assert_allclose(basis.T @ basis, np.eye(1), atol=1e-12)
    masks = {"a": "combined", "c": "CSF", "w": "WM"}
    for prefix in "acwt":
        columns = [c for c in table.columns if c.startswith(f"{prefix}_comp_cor_")]
        assert columns == [f"{prefix}_comp_cor_{i:02d}" for i in range(len(columns))]
        values = table[columns].to_numpy()
        assert_allclose(values[0], 0)
        assert_allclose(values[1:].T @ values[1:], np.eye(len(columns)), atol=1e-8)
        entries = [meta[c] for c in columns]
        assert all(e["Retained"] is True for e in entries)
        assert all(e["Method"] == ("tCompCor" if prefix == "t" else "aCompCor") for e in entries)
        if prefix in masks:
            assert all(e["Mask"] == masks[prefix] for e in entries)
        cumulative = [e["CumulativeVarianceExplained"] for e in entries]
        assert cumulative[-1] >= 0.5 and (len(cumulative) == 1 or cumulative[-2] < 0.5)
        singular = [e["SingularValue"] for e in entries]
        assert singular == sorted(singular, reverse=True)
    dropped = [v for k, v in meta.items() if k.startswith("dropped_")]
    assert dropped and all(v["Retained"] is False for v in dropped)
    for name in ("global_signal", "csf", "white_matter", "csf_wm", "tcompcor"):
        assert meta[name] == {"Method": "Mean"}


@pytest.mark.parametrize("strategy", ["simple", "scrubbing", "compcor"])
def test_nilearn_load_confounds_strategy(bold_files, strategy):
    from nilearn.interfaces.fmriprep import load_confounds_strategy

    for bold in bold_files:
        confounds, sample_mask = load_confounds_strategy(str(bold), strategy)
        assert confounds.shape[0] == 80
        assert not confounds.isna().any().any()
        if strategy == "scrubbing":
            spikes = _spikes(_confounds_of(bold)[0])
            dropped = np.union1d([0, 1], np.union1d(spikes, spikes + 1))
            assert_array_equal(sample_mask, np.setdiff1d(np.arange(80), dropped))
        else:
            assert_array_equal(sample_mask, np.arange(1, 80))
        if strategy == "compcor":
            table, _ = _confounds_of(bold)
            acompcor = [c for c in table.columns if c.startswith("a_comp_cor_")]
            assert set(acompcor) <= set(confounds.columns)
            assert not any(c.startswith(("c_comp", "w_comp", "t_comp")) for c in confounds.columns)


def test_nilearn_load_confounds_compcor(one_run):
    from nilearn.interfaces.fmriprep import load_confounds

    table = pd.read_csv(one_run["confounds"], sep="\t")
    for compcor, prefixes in (("anat_combined", "a"), ("anat_separated", "cw"), ("temporal", "t")):
        confounds, _ = load_confounds(
            str(one_run["bold"]),
            strategy=("high_pass", "compcor"),
            compcor=compcor,
            n_compcor="all",
        )
        expected = [c for c in table.columns if re.match(f"[{prefixes}]_comp_cor_", c)]
        assert sorted(confounds.columns) == sorted(expected + ["cosine00"])


# --- native space ---------------------------------------------------------------------


def test_t1w_space_runs(fmriprep_dir):
    func = fmriprep_dir / "sub-01" / "func"
    bold = nib.load(func / "sub-01_task-rest_space-T1w_desc-preproc_bold.nii.gz")
    mni = nib.load(func / f"sub-01_task-rest_{MNI}_desc-preproc_bold.nii.gz")
    assert bold.shape[-1] == 80 and bold.shape[:3] != mni.shape[:3]
    assert nib.aff2axcodes(bold.affine) == ("L", "A", "S")
    assert not np.allclose(bold.affine, mni.affine)
    mask = np.asarray(nib.load(func / "sub-01_task-rest_space-T1w_desc-brain_mask.nii.gz").dataobj)
    aseg = np.asarray(nib.load(func / "sub-01_task-rest_space-T1w_desc-aseg_dseg.nii.gz").dataobj)
    aparc = np.asarray(
        nib.load(func / "sub-01_task-rest_space-T1w_desc-aparcaseg_dseg.nii.gz").dataobj
    )
    assert aseg.shape == aparc.shape == mask.shape == bold.shape[:3]
    labels = set(np.unique(aseg).tolist())
    assert {0, 2, 41, 3, 42, 10, 49, 17, 53, 11, 50, 12, 51, 4, 43, 16} <= labels
    cortical = {*range(1001, 1036), *range(2001, 2036)} - {1004, 2004}
    assert cortical <= set(np.unique(aparc).tolist())
    assert not {3, 42} & set(np.unique(aparc).tolist())
    assert_array_equal(aparc[aparc < 1000], aseg[aparc < 1000])
    # Left structures (odd aseg codes 10/17) lie on the image's left: x world < 0 side.
    ijk = np.argwhere(aseg == 10).mean(axis=0)
    ijk_r = np.argwhere(aseg == 49).mean(axis=0)
    assert (bold.affine[:3, :3] @ ijk)[0] < (bold.affine[:3, :3] @ ijk_r)[0]


# --- TemplateFlow ---------------------------------------------------------------------


def test_templateflow_api_finds_fixture(templateflow_home):
    from templateflow import api

    schaefer = api.get(
        TPL,
        atlas="Schaefer2018",
        desc="100Parcels7Networks",
        suffix="dseg",
        resolution=2,
        extension=".nii.gz",
    )
    assert Path(schaefer).parent.parent == templateflow_home
    tsv = api.get(
        TPL, atlas="Schaefer2018", desc="100Parcels7Networks", suffix="dseg", extension=".tsv"
    )
    difumo = api.get(
        TPL,
        atlas="DiFuMo",
        desc="64dimensions",
        suffix="probseg",
        resolution=2,
        extension=".nii.gz",
    )
    difumo_tsv = api.get(
        TPL, atlas="DiFuMo", desc="64dimensions", suffix="probseg", extension=".tsv"
    )
    for path in (schaefer, tsv, difumo, difumo_tsv):
        assert Path(path).is_file() and Path(path).is_relative_to(templateflow_home)
    assert Path(api.get(TPL, resolution=2, desc="brain", suffix="mask")).is_file()
    assert Path(api.get(TPL, resolution=2, label="GM", suffix="probseg")).is_file()
    assert Path(api.get(TPL, resolution=2, desc=None, suffix="T1w")).is_file()
    assert api.templates() == [TPL]


def test_templateflow_in_subprocess(templateflow_home):
    code = (
        "from templateflow import api; print(api.get('MNI152NLin2009cAsym', atlas='Schaefer2018',"
        " desc='100Parcels7Networks', suffix='dseg', resolution=2, extension='.nii.gz'))"
    )
    assert os.environ["TEMPLATEFLOW_HOME"] == str(templateflow_home)
    out = subprocess.run(
        [sys.executable, "-c", code], env=os.environ, capture_output=True, text=True, check=True
    )
    assert Path(out.stdout.strip()).is_relative_to(templateflow_home)


def test_schaefer_atlas(templateflow_dir, one_run):
    folder = templateflow_dir / f"tpl-{TPL}"
    img = nib.load(
        folder / f"tpl-{TPL}_res-02_atlas-Schaefer2018_desc-100Parcels7Networks_dseg.nii.gz"
    )
    table = pd.read_csv(
        folder / f"tpl-{TPL}_atlas-Schaefer2018_desc-100Parcels7Networks_dseg.tsv", sep="\t"
    )
    labels = np.asarray(img.dataobj)
    assert_array_equal(img.affine, nib.load(one_run["bold"]).affine)
    assert np.issubdtype(labels.dtype, np.integer)
    assert_array_equal(np.unique(labels), np.arange(101))
    assert list(table.columns) == ["index", "name", "color"]
    assert_array_equal(table["index"], np.arange(1, 101))
    assert table["name"].str.fullmatch(r"7Networks_(LH|RH)_[A-Za-z]+(_[A-Za-z]+)?_\d+").all()
    assert table["name"].is_unique
    assert (table["name"].iloc[:50].str.contains("_LH_")).all()
    assert table["name"].iloc[0] == "7Networks_LH_Vis_1"
    assert table["name"].iloc[-1] == "7Networks_RH_Default_PCC_2"
    x = nib.affines.apply_affine(img.affine, np.argwhere(labels > 0))[:, 0]
    assert (x[labels[labels > 0] <= 50] < 0).all() and (x[labels[labels > 0] > 50] >= 0).all()
    brain = np.asarray(nib.load(folder / f"tpl-{TPL}_res-02_desc-brain_mask.nii.gz").dataobj)
    assert ((labels > 0) <= (brain > 0)).all()


def test_schaefer_parcels_of_one_network_correlate(templateflow_dir, one_run):
    """Parcel means correlate more within a network than across networks."""
    folder = templateflow_dir / f"tpl-{TPL}"
    atlas = f"tpl-{TPL}_res-02_atlas-Schaefer2018_desc-100Parcels7Networks_dseg.nii.gz"
    labels = np.asarray(nib.load(folder / atlas).dataobj)
    table = pd.read_csv(
        folder / f"tpl-{TPL}_atlas-Schaefer2018_desc-100Parcels7Networks_dseg.tsv", sep="\t"
    )
    network = table["name"].str.split("_").str[2].to_numpy()
    data = np.asarray(nib.load(one_run["bold"]).dataobj)
    spikes = _spikes(pd.read_csv(one_run["confounds"], sep="\t"))
    keep = np.setdiff1d(np.arange(1, 80), np.r_[spikes, spikes + 1])
    series = np.stack([data[labels == k][:, keep].mean(axis=0) for k in range(1, 101)], axis=1)
    trend = np.column_stack([np.ones(len(keep)), keep])
    series -= trend @ np.linalg.lstsq(trend, series, rcond=None)[0]
    corr = np.corrcoef(series.T)
    same = (network[:, None] == network[None, :]) & ~np.eye(100, dtype=bool)
    between = network[:, None] != network[None, :]
    assert corr[same].mean() > corr[between].mean() + 0.1


def test_difumo_atlas(templateflow_dir):
    folder = templateflow_dir / f"tpl-{TPL}"
    maps = np.asarray(
        nib.load(folder / f"tpl-{TPL}_res-02_atlas-DiFuMo_desc-64dimensions_probseg.nii.gz").dataobj
    )
    table = pd.read_csv(folder / f"tpl-{TPL}_atlas-DiFuMo_desc-64dimensions_probseg.tsv", sep="\t")
    assert maps.shape == (25, 29, 25, 64) and maps.dtype == np.float32
    assert (maps >= 0).all() and ((maps > 0).sum(axis=(0, 1, 2)) >= 5).all()
    assert ((maps > 0).sum(axis=-1) >= 2).sum() > 500
    assert list(table.columns) == [
        "Component",
        "Difumo_names",
        "Yeo_networks7",
        "Yeo_networks17",
        "GM",
        "WM",
        "CSF",
    ]
    assert_array_equal(table["Component"], np.arange(1, 65))
    assert_allclose(table[["GM", "WM", "CSF"]].sum(axis=1), 1)
    description = json.loads((folder / "template_description.json").read_text())
    assert description["res"]["02"]["shape"] == [25, 29, 25]


# --- determinism and errors ----------------------------------------------------------


def _arrays(root: Path) -> dict[str, bytes]:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.name.endswith(".nii.gz"):
            out[str(path.relative_to(root))] = np.asarray(nib.load(path).dataobj).tobytes()
        elif path.suffix in (".tsv", ".json"):
            out[str(path.relative_to(root))] = path.read_bytes()
    return out


def test_same_seed_same_data(tmp_path, mni_brain_mask, fmriprep_dir, templateflow_dir):
    again = make_fmriprep_dataset(tmp_path / "again", mni_brain_mask)
    assert _arrays(again) == _arrays(fmriprep_dir)
    tf_again = make_templateflow_home(tmp_path / "tf", mni_brain_mask)
    assert _arrays(tf_again) == _arrays(templateflow_dir)
    rng = np.random.default_rng
    first = simulate_timecourses(80, 2.0, rng([0, 0]))
    assert_array_equal(first.motion, simulate_timecourses(80, 2.0, rng([0, 0])).motion)
    assert not np.array_equal(first.motion, simulate_timecourses(80, 2.0, rng([1, 0])).motion)


def test_errors(tmp_path, mni_brain_mask):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "file.txt").write_text("x")
    with pytest.raises(FileExistsError, match="empty"):
        make_fmriprep_dataset(tmp_path / "full", mni_brain_mask)
    img4d = nib.Nifti1Image(np.ones((4, 4, 4, 2), dtype=np.float32), np.eye(4))
    with pytest.raises(ValueError, match="3D"):
        make_fmriprep_dataset(tmp_path / "a", img4d)
    with pytest.raises(ValueError, match="n_volumes"):
        make_fmriprep_dataset(tmp_path / "b", mni_brain_mask, n_volumes=10)
    with pytest.raises(TypeError, match="template_img"):
        make_fmriprep_dataset(tmp_path / "c", [1, 2, 3])
