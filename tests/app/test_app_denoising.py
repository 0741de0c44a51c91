"""Group-level denoising quality and --combine-runs, on 6 participants with growing motion.

Every number is recomputed here independently, from the participant-level files, fMRIPrep's
confounds, participants.tsv and the TemplateFlow atlas files, with scipy.stats and numpy.
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
from pandas.testing import assert_frame_equal
from scipy import stats

from bidsmask.app.cli import main
from bidsmask.app.config import Config
from bidsmask.app.denoising import CentroidCache, covariates_for, read_participants

MNI = "space-MNI152NLin2009cAsym"
ATLASES = {
    "Schaefer2018:100Parcels7Networks": "atlas-Schaefer2018_seg-100Parcels7Networks",
    "DiFuMo:64dimensions": "atlas-DiFuMo_seg-64dimensions",
}
STRATEGIES = ("simple", "scrubbing")
OPTIONS = ["--fd-threshold", "0.2", "--min-volumes", "59", "--high-pass", "0.01"]
OPTIONS += ["--low-pass", "0.1"]


@pytest.fixture(scope="module")
def outs(motion_group_dir, templateflow_dir, tmp_path_factory) -> dict[str, Path]:
    """Participant level with --combine-runs, then the group level with and without them."""
    root = tmp_path_factory.mktemp("denoising")
    combined, runs = root / "combined", root / "runs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TEMPLATEFLOW_HOME", str(templateflow_dir))
        args = [str(motion_group_dir), str(combined), "participant", "--atlas", *ATLASES]
        assert main([*args, "--strategy", *STRATEGIES, *OPTIONS, "--combine-runs", "-q"]) == 0
        shutil.copytree(combined, runs)
        shutil.rmtree(runs / "logs" / "combined")  # the group level then uses the runs
        few = root / "few"
        shutil.copytree(combined, few)
        for out in (combined, runs):
            assert main([str(motion_group_dir), str(out), "group", "-q"]) == 0
        label = ["--participant-label", "01", "02"]
        assert main([str(motion_group_dir), str(few), "group", *label, "-q"]) == 0
    return {"combined": combined, "runs": runs, "few": few}


def summary(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "desc-denoising_qc.tsv", sep="\t", na_values="n/a")


def observations(out: Path, atlas: str, strategy: str, combined: bool) -> list[Path]:
    files = sorted(
        out.glob(f"sub-*/func/*_{atlas}_res-2_meas-PearsonCorrelation_desc-{strategy}_relmat.tsv")
    )
    return [f for f in files if ("_run-" in f.name) != combined]


def mean_fd(fmriprep: Path, relmat: Path) -> float:
    """Mean FD of all volumes of the runs behind a matrix, from fMRIPrep's confounds."""
    sub = relmat.name.split("_")[0]
    side = json.loads(relmat.with_suffix(".json").read_text())
    runs = side.get("Runs") or [relmat.name.split("_run-")[1].split("_")[0]]
    fds = []
    for run in runs:
        table = fmriprep / sub / "func" / f"{sub}_task-rest_run-{run}_desc-confounds_timeseries.tsv"
        fds.append(pd.read_csv(table, sep="\t", na_values="n/a")["framewise_displacement"])
    return float(np.nanmean(np.concatenate([f.to_numpy()[1:] for f in fds])))


def expected_qcfc(out, fmriprep, atlas, strategy, combined):
    files = observations(out, atlas, strategy, combined)
    frames = [pd.read_csv(f, sep="\t", index_col=0, na_values="n/a") for f in files]
    upper = np.triu_indices(len(frames[0]), k=1)
    edges = np.stack([f.to_numpy()[upper] for f in frames])
    fd = np.array([mean_fd(fmriprep, f) for f in files])
    people = pd.read_csv(fmriprep / "participants.tsv", sep="\t", index_col="participant_id")
    subs = [f.name.split("_")[0] for f in files]
    design = np.column_stack(
        [np.ones(len(files)), people.loc[subs, "age"], people.loc[subs, "sex"] == "M"]
    ).astype(float)

    def residual(v):
        return v - design @ np.linalg.lstsq(design, v, rcond=None)[0]

    dof = len(files) - 2 - 2  # two covariates: age, and sex as one indicator
    r = np.array([stats.pearsonr(residual(e), residual(fd)).statistic for e in edges.T])
    p = 2 * stats.t.sf(np.abs(r * np.sqrt(dof / (1 - r**2))), dof)
    return r, p, fd, list(frames[0].columns), files


def centroids(templateflow_dir: Path, atlas: str, names: list[str]) -> np.ndarray:
    name, desc = atlas.split(":")
    folder = templateflow_dir / "tpl-MNI152NLin2009cAsym"
    image = next(folder.glob(f"*_atlas-{name}_desc-{desc}_*seg.nii.gz"))
    img = nib.load(image)
    data, affine = np.asarray(img.dataobj), img.affine
    if data.ndim == 4:  # maps: weighted mean position of each map
        ijk = np.argwhere(np.ones(data.shape[:3], bool))
        world = ijk @ affine[:3, :3].T + affine[:3, 3]
        weights = data.reshape(-1, data.shape[3]).astype(float)
        return (weights.T @ world) / weights.sum(axis=0)[:, None]
    table = pd.read_csv(next(folder.glob(f"*_atlas-{name}_desc-{desc}_dseg.tsv")), sep="\t")
    ids = dict(zip(table["name"], table["index"], strict=True))
    return np.array(
        [(np.argwhere(data == ids[n]) @ affine[:3, :3].T + affine[:3, 3]).mean(0) for n in names]
    )


def test_summary_has_every_column_and_one_row_per_space_atlas_strategy(outs):
    sidecar = json.loads((outs["combined"] / "desc-denoising_qc.json").read_text())
    for key in ("runs", "combined"):
        table = summary(outs[key])
        assert len(table) == 4
        assert set(zip(table["atlas"], table["strategy"], strict=True)) == {
            (a, s) for a in ATLASES for s in STRATEGIES
        }
        assert set(table["space"]) == {"MNI152NLin2009cAsym:res-2"}
        assert set(table["task"]) == {"rest"}
        assert set(table.columns) - {"Method", "ParticipantsFile", "References"} <= set(sidecar)
        values = table.drop(columns=["reason"])
        assert not values.isna().any().any(), values.isna().sum()
        assert table["reason"].isna().all()
        assert set(table["covariates"]) == {"age, sex"}
    assert "NeuroImage 154:174" in " ".join(sidecar["References"])
    assert "NeuroImage 171:415" in " ".join(sidecar["References"])
    assert any("PLOS Computational Biology" in r for r in sidecar["References"])
    assert sidecar["ParticipantsFile"].endswith("participants.tsv")
    page = (outs["combined"] / "group.html").read_text()
    for atlas in ATLASES.values():  # the group report draws the strategies side by side
        stem = f"task-rest_{MNI}_{atlas}_res-2"
        assert f"QC-FC distribution per strategy: {stem}." in page
        assert (outs["combined"] / "figures" / f"{stem}_desc-QCFCstrategies_qc.svg").is_file()
        tdof = outs["combined"] / "figures" / f"{stem}_desc-tdofQCFC_qc.svg"
        assert all(s in tdof.read_text() for s in STRATEGIES)
    for atlas in ATLASES:
        caption = "Median |QC-FC| against the mean tDOF lost, per strategy: "
        assert f"{caption}MNI152NLin2009cAsym:res-2, {atlas}, task rest." in page


@pytest.mark.parametrize("key", ["runs", "combined"])
@pytest.mark.parametrize("atlas", list(ATLASES))
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_qcfc_equals_the_independent_computation(
    outs, motion_group_dir, templateflow_dir, key, atlas, strategy
):
    out = outs[key]
    r, p, fd, names, files = expected_qcfc(
        out, motion_group_dir, ATLASES[atlas], strategy, key == "combined"
    )
    row = summary(out).set_index(["atlas", "strategy"]).loc[(atlas, strategy)]
    qcfc_file = out / row["qcfc_file"]
    assert qcfc_file.name == (
        f"task-rest_{MNI}_{ATLASES[atlas]}_res-2_meas-QCFC_desc-{strategy}_relmat.tsv"
    )
    got = pd.read_csv(qcfc_file, sep="\t", index_col=0, na_values="n/a")
    assert list(got.columns) == names and list(got.index) == names
    assert_allclose(got.to_numpy()[np.triu_indices(len(names), k=1)], r, rtol=0, atol=1e-10)
    assert np.isnan(np.diag(got.to_numpy())).all()
    assert row["n_observations"] == len(files)
    assert row["unit"] == ("combined" if key == "combined" else "run")
    assert row["mean_fd_min"] == pytest.approx(fd.min(), abs=1e-10)
    assert row["mean_fd_max"] == pytest.approx(fd.max(), abs=1e-10)
    assert row["mean_fd_mean"] == pytest.approx(fd.mean(), abs=1e-10)
    assert row["median_abs_qcfc"] == pytest.approx(np.median(np.abs(r)), abs=1e-10)
    assert row["percent_edges_p05"] == pytest.approx(100 * np.mean(p < 0.05), abs=1e-10)
    fdr = stats.false_discovery_control(p)
    assert row["percent_edges_fdr05"] == pytest.approx(100 * np.mean(fdr < 0.05), abs=1e-10)
    c = centroids(templateflow_dir, atlas, names)
    upper = np.triu_indices(len(names), k=1)
    distance = np.linalg.norm(c[upper[0]] - c[upper[1]], axis=1).round(6)  # ties as documented
    expected = stats.spearmanr(r, distance)
    assert row["distance_rho"] == pytest.approx(expected.statistic, abs=1e-10)
    assert row["distance_p"] == pytest.approx(expected.pvalue, abs=1e-10)
    sidecar = json.loads(qcfc_file.with_suffix(".json").read_text())
    assert sidecar["Covariates"] == ["age", "sex"]
    assert sidecar["NumberOfObservations"] == len(files)
    assert len(sidecar["Sources"]) == len(files)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_tdof_lost_counts_regressors_censored_and_filtered_volumes(outs, strategy):
    out = outs["runs"]
    atlas = ATLASES["Schaefer2018:100Parcels7Networks"]
    series = sorted(out.glob(f"sub-*/func/*_run-*_{atlas}_res-2_stat-mean_desc-{strategy}_*.json"))
    sides = [json.loads(s.read_text()) for s in series]
    regressors = np.array([len(s["ConfoundColumns"]) for s in sides], dtype=float)
    censored = np.array([s["VolumesCensored"] for s in sides], dtype=float)
    filtered = np.array([s["VolumesKept"] * (1 - (0.1 - 0.01) / 0.25) for s in sides])
    row = (
        summary(out)
        .set_index(["atlas", "strategy"])
        .loc[("Schaefer2018:100Parcels7Networks", strategy)]
    )
    assert row["tdof_regressors_mean"] == pytest.approx(regressors.mean(), abs=1e-10)
    assert row["tdof_censored_mean"] == pytest.approx(censored.mean(), abs=1e-10)
    assert row["tdof_filtered_mean"] == pytest.approx(filtered.mean(), abs=1e-10)
    total = (regressors + censored + filtered).mean()
    assert row["tdof_lost_mean"] == pytest.approx(total, abs=1e-10)
    # combined: one value per participant, the sum over its runs, averaged
    combined = summary(outs["combined"]).set_index(["atlas", "strategy"])
    value = combined.loc[("Schaefer2018:100Parcels7Networks", strategy), "tdof_lost_mean"]
    per_run = regressors + censored + filtered
    assert value == pytest.approx(per_run.sum() / 6, abs=1e-10)


def test_combined_outputs_are_the_concatenated_run_series(outs):
    out = outs["combined"]
    func = out / "sub-03" / "func"
    for atlas in ATLASES.values():
        for strategy in STRATEGIES:
            stat = "_stat-mean" if "Schaefer" in atlas else ""
            name = f"{atlas}_res-2{stat}_desc-{strategy}_timeseries.tsv"
            runs = [func / f"sub-03_task-rest_run-{r}_{MNI}_{name}" for r in (1, 2)]
            combined = func / f"sub-03_task-rest_{MNI}_{name}"
            frames = [pd.read_csv(f, sep="\t", na_values="n/a") for f in runs]
            got = pd.read_csv(combined, sep="\t", na_values="n/a")
            assert_frame_equal(got, pd.concat(frames, ignore_index=True), check_exact=True)
            side = json.loads(combined.with_suffix(".json").read_text())
            assert side["Runs"] == ["1", "2"] and side["RunsLeftOut"] == {}
            assert side["VolumesKept"] == len(got) == sum(len(f) for f in frames)
            meas = f"meas-PearsonCorrelation_desc-{strategy}_relmat.tsv"
            relmat = func / f"sub-03_task-rest_{MNI}_{atlas}_res-2_{meas}"
            matrix = pd.read_csv(relmat, sep="\t", index_col=0, na_values="n/a").to_numpy()
            values = got.to_numpy(dtype=np.float32).astype(float)  # the float32 values written
            expected = np.corrcoef(values, rowvar=False)
            finite = np.isfinite(values).all(axis=0)
            # relmats are written at float32 precision on purpose (issue 12: faster TSVs)
            assert_allclose(
                matrix[np.ix_(finite, finite)], expected[np.ix_(finite, finite)], atol=1e-7
            )


def test_a_run_skipped_for_too_few_volumes_is_left_out_and_said_so(outs):
    out = outs["combined"]
    func = out / "sub-06" / "func"
    atlas = ATLASES["Schaefer2018:100Parcels7Networks"]
    name = f"{atlas}_res-2_stat-mean_desc-scrubbing_timeseries"
    assert not (func / f"sub-06_task-rest_run-2_{MNI}_{name}.tsv").exists()
    combined = pd.read_csv(func / f"sub-06_task-rest_{MNI}_{name}.tsv", sep="\t")
    run1 = pd.read_csv(func / f"sub-06_task-rest_run-1_{MNI}_{name}.tsv", sep="\t")
    assert_frame_equal(combined, run1)
    side = json.loads((func / f"sub-06_task-rest_{MNI}_{name}.json").read_text())
    assert side["Runs"] == ["1"]
    [(left_out, reason)] = side["RunsLeftOut"].items()
    assert "run-2" in left_out and "volumes left after censoring" in reason
    record = json.loads(
        (out / "logs" / "combined" / f"sub-06_task-rest_{MNI}_res-2.json").read_text()
    )
    assert record["Strategies"]["scrubbing"]["RunsLeftOut"] == side["RunsLeftOut"]
    # the group level counts sub-06 once per strategy, from its combined matrix
    row = (
        summary(out)
        .set_index(["atlas", "strategy"])
        .loc[("Schaefer2018:100Parcels7Networks", "scrubbing")]
    )
    assert row["n_observations"] == 6 and row["n_participants"] == 6
    runs_row = (
        summary(outs["runs"])
        .set_index(["atlas", "strategy"])
        .loc[("Schaefer2018:100Parcels7Networks", "scrubbing")]
    )
    assert runs_row["n_observations"] == 11


def test_fewer_than_three_participants_give_na_with_the_reason(outs):
    table = summary(outs["few"])
    assert len(table) == 4
    assert table["reason"].str.contains("at least 3 participants").all()
    assert table[["median_abs_qcfc", "distance_rho", "qcfc_file"]].isna().all().all()
    assert (table["n_participants"] == 2).all()
    assert table["tdof_lost_mean"].notna().all()
    assert not list(outs["few"].glob("*_meas-QCFC_*"))


def test_centroids_of_spheres_and_where_distance_is_not_available(tmp_path):
    coords = np.array([[0.0, 0, 0], [3, 4, 0], [-10, 2, 7]])
    table = pd.DataFrame({"index": [1, 2, 3], "name": ["a", "b", "c"]})
    table[["x", "y", "z"]] = coords
    table.to_csv(tmp_path / "atlas-Power2011_dseg.tsv", sep="\t", index=False)
    cache = CentroidCache(tmp_path)
    distances, why = cache.distances(
        {"atlas": "Power2011"}, "MNI152NLin2009cAsym:res-2", ["c", "a"]
    )
    assert_allclose(distances, [np.linalg.norm(coords[2] - coords[0])]) and why == ""
    native, why = cache.distances({"atlas": "aparcaseg"}, "T1w", ["a", "b"])
    assert native is None and "T1w" in why and "differ per participant" in why
    cifti, why = cache.distances({"atlas": "Schaefer2018", "den": "91k"}, "fsLR", ["a", "b"])
    assert cifti is None and "CIFTI" in why
    absent, why = cache.distances({"atlas": "Nope"}, "MNI152NLin2009cAsym", ["a", "b"])
    assert absent is None and "no atlas table" in why


def test_a_combined_record_older_than_its_runs_is_ignored(outs, motion_group_dir, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(outs["few"], out)  # participant outputs with --combine-runs
    marker = next((out / "logs" / "runs").glob("sub-01_task-rest_run-1_*.json"))
    record = json.loads(marker.read_text())
    record["Parameters"]["low_pass"] = 0.09  # as if the run was redone with other options
    marker.write_text(json.dumps(record))
    assert main([str(motion_group_dir), str(out), "group", "-q"]) == 0
    row = (
        summary(out)
        .set_index(["atlas", "strategy"])
        .loc[("Schaefer2018:100Parcels7Networks", "simple")]
    )
    assert row["unit"] == "run and combined"
    assert row["n_observations"] == 5 + 2 and row["n_participants"] == 6


def test_covariates_from_participants_tsv(tmp_path):
    table = pd.DataFrame(
        {
            "participant_id": ["sub-01", "sub-02", "sub-03", "sub-04"],
            "Age": ["30", "41", "n/a", "25"],
            "gender": ["f", "M", "F", "m"],
            "site": ["a", "b", "a", "b"],
        }
    )
    table.to_csv(tmp_path / "participants.tsv", sep="\t", index=False)
    config = Config(
        bids_dir=tmp_path,
        output_dir=tmp_path / "out",
        analysis_level="group",
        fmriprep_dir=tmp_path / "none",
    )
    participants = read_participants(config)
    assert participants["file"] == str(tmp_path / "participants.tsv")
    design, used, notes = covariates_for(participants, ["01", "02", "02", "04"])
    assert used == ["age", "gender"] and notes == []
    assert_allclose(design, [[30, 0], [41, 1], [41, 1], [25, 1]])  # levels F < M, case-blind
    design, used, notes = covariates_for(participants, ["01", "03", "04"])
    assert used == ["gender"] and notes == ["age missing for some participants"]
    design, used, notes = covariates_for(participants, ["02", "02", "02"])
    assert design is None and used == []
    assert notes == [
        "age is the same for every participant",
        "gender is the same for every participant",
    ]
    assert covariates_for({}, ["01"]) == (None, [], [])
