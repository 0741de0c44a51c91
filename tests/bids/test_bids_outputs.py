from pathlib import Path

import pytest

from bidsmask.bids.outputs import (
    RunOutputs,
    group_filename,
    parse_output,
    sidecar_path,
    with_sidecars,
)

SOURCE = {"sub": "01", "ses": "1", "task": "rest", "run": "2", "space": "MNI152NLin2009cAsym"}
ATLASES = (
    ({"atlas": "Schaefer2018", "seg": "100Parcels7Networks"}, "labels"),
    ({"atlas": "DiFuMo", "seg": "64dimensions"}, "maps"),
)
STRATEGIES = (("simple", "simple"), ("36P+gsr", "36Pgsr"))
MEASURES = (("correlation", "PearsonCorrelation"), ("covariance", "Covariance"))


@pytest.fixture
def plan():
    return RunOutputs(SOURCE, ATLASES, STRATEGIES, MEASURES, denoised_bold=True)


def test_every_file_of_a_run(plan):
    files = plan.files()
    # mask + per strategy (2 atlases x (1 series + 2 matrices) + 1 BOLD), each with a sidecar
    assert len(files) == 2 * (1 + 2 * (2 * 3 + 1))
    assert len(set(files)) == len(files)
    folder = Path("sub-01/ses-1/func")
    assert all(f.parent == folder for f in files)
    assert files[0].name == (
        "sub-01_ses-1_task-rest_run-2_space-MNI152NLin2009cAsym_desc-brain_mask.nii.gz"
    )
    assert files[1] == sidecar_path(files[0])
    names = [f.name for f in files]
    assert (
        "sub-01_ses-1_task-rest_run-2_space-MNI152NLin2009cAsym_atlas-Schaefer2018_"
        "seg-100Parcels7Networks_stat-mean_desc-36Pgsr_timeseries.tsv" in names
    )
    # maps are fitted by least squares, not averaged: no stat entity
    assert (
        "sub-01_ses-1_task-rest_run-2_space-MNI152NLin2009cAsym_atlas-DiFuMo_"
        "seg-64dimensions_desc-simple_timeseries.tsv" in names
    )
    assert sum(n.endswith("_bold.nii.gz") for n in names) == 2


def test_skipped_strategies_leave_their_files_out(plan):
    kept = plan.files(skipped={"simple"})
    assert len(kept) == 2 * (1 + 7)
    assert not any("desc-simple" in f.name for f in kept)


def test_roles_and_owners(plan):
    relmat = plan.relmat(1, "36P+gsr", "covariance")
    assert relmat.role == "relmat" and relmat.atlas == 1 and relmat.measure == "covariance"
    assert relmat.path.name.endswith("_meas-Covariance_desc-36Pgsr_relmat.tsv")
    assert relmat.sidecar.name.endswith("_meas-Covariance_desc-36Pgsr_relmat.json")
    assert [f.role for f in plan.strategy_files("simple")] == [
        "timeseries", "relmat", "relmat", "timeseries", "relmat", "relmat", "bold"
    ]  # fmt: skip
    with pytest.raises(KeyError, match="not in this run's plan"):
        plan.timeseries(0, "scrubbing")


def test_parse_and_group_names(plan):
    ents, suffix = parse_output(plan.relmat(0, "simple", "correlation").path)
    assert suffix == "relmat"
    assert ents == {**SOURCE, **ATLASES[0][0], "meas": "PearsonCorrelation", "desc": "simple"}
    assert group_filename(ents, "relmat") == (
        "space-MNI152NLin2009cAsym_atlas-Schaefer2018_seg-100Parcels7Networks_"
        "meas-PearsonCorrelation_desc-simple_relmat"
    )


def test_with_sidecars():
    assert with_sidecars([Path("a/x_bold.nii.gz"), "b/y_relmat.tsv"]) == [
        Path("a/x_bold.nii.gz"),
        Path("a/x_bold.json"),
        Path("b/y_relmat.tsv"),
        Path("b/y_relmat.json"),
    ]
