import pytest
from bids.layout import parse_file_entities

from bidsmask.bids.naming import (
    atlas_filename,
    build_filename,
    build_path,
    pybids_config,
    run_stem,
    sanitize_label,
    source_entities,
)

SRC = {
    "subject": "01",
    "session": "1",
    "task": "rest",
    "run": 1,
    "space": "MNI152NLin2009cAsym",
    "resolution": "2",
    "desc": "preproc",
    "suffix": "bold",
    "extension": ".nii.gz",
    "datatype": "func",
}
ATLAS = {"atlas": "Schaefer2018", "seg": "400Parcels7Networks"}
BASE = "sub-01_ses-1_task-rest_run-1_space-MNI152NLin2009cAsym"
CONFIG = ["bids", "derivatives", pybids_config()]


@pytest.mark.parametrize(
    ("extra", "suffix", "ext", "expected"),
    [
        (
            {**ATLAS, "stat": "mean", "desc": "simple"},
            "timeseries",
            ".tsv",
            f"{BASE}_atlas-Schaefer2018_seg-400Parcels7Networks_res-2_stat-mean_desc-simple"
            "_timeseries.tsv",
        ),
        (
            {**ATLAS, "meas": "PearsonCorrelation", "desc": "simple"},
            "relmat",
            ".tsv",
            f"{BASE}_atlas-Schaefer2018_seg-400Parcels7Networks_res-2_meas-PearsonCorrelation"
            "_desc-simple_relmat.tsv",
        ),
        ({"desc": "brain"}, "mask", ".nii.gz", f"{BASE}_res-2_desc-brain_mask.nii.gz"),
        ({"desc": "36P+gsr"}, "bold", "nii.gz", f"{BASE}_res-2_desc-36Pgsr_bold.nii.gz"),
        (
            {"atlas": "Power2011", "stat": "mean", "desc": "24P"},
            "timeseries",
            ".json",
            f"{BASE}_atlas-Power2011_res-2_stat-mean_desc-24P_timeseries.json",
        ),
    ],
)
def test_names_and_pybids_roundtrip(extra, suffix, ext, expected):
    ents = {**source_entities(SRC), **extra}
    name = build_filename(ents, suffix, ext)
    assert name == expected
    parsed = parse_file_entities("/out/sub-01/ses-1/func/" + name, config=CONFIG)
    assert parsed["subject"] == "01" and parsed["session"] == "1"
    assert parsed["task"] == "rest" and parsed["run"] == 1
    assert parsed["space"] == "MNI152NLin2009cAsym" and parsed["res"] == "2"
    assert parsed["suffix"] == suffix
    for key, long in [
        ("atlas", "atlas"),
        ("seg", "segmentation"),
        ("stat", "stat"),
        ("meas", "meas"),
    ]:
        if key in extra:
            assert parsed[long] == extra[key]
    assert parsed["desc"] == sanitize_label(extra["desc"])


def test_t1w_and_multi_entities():
    src = source_entities(
        {
            "sub": "02",
            "task": "nback",
            "acq": "mb4",
            "ce": "x",
            "rec": "y",
            "dir": "PA",
            "run": "02",
            "echo": "1",
            "space": "T1w",
            "desc": "preproc",
            "fmap": "ignored",
        }
    )
    name = build_filename(
        {**src, "atlas": "aparcaseg", "stat": "mean", "desc": "simple"}, "timeseries", ".tsv"
    )
    assert name == (
        "sub-02_task-nback_acq-mb4_ce-x_rec-y_dir-PA_run-02_echo-1_space-T1w"
        "_atlas-aparcaseg_stat-mean_desc-simple_timeseries.tsv"
    )
    cohort = build_filename(
        {
            "sub": "1",
            "task": "a",
            "space": "MNIPediatricAsym",
            "cohort": "1",
            "res": "2",
            "desc": "brain",
        },
        "mask",
        ".nii.gz",
    )
    assert cohort == "sub-1_task-a_space-MNIPediatricAsym_cohort-1_res-2_desc-brain_mask.nii.gz"


def test_paths_and_stems():
    p = build_path({**source_entities(SRC), "desc": "brain"}, "mask", ".nii.gz")
    assert str(p) == f"sub-01/ses-1/func/{BASE}_res-2_desc-brain_mask.nii.gz"
    assert run_stem(SRC) == f"{BASE}_res-2"
    assert atlas_filename("Schaefer2018", "description", ".json", seg="400Parcels7Networks") == (
        "atlas-Schaefer2018_seg-400Parcels7Networks_description.json"
    )
    assert atlas_filename("Power 2011", "spheres", ".tsv") == "atlas-Power2011_spheres.tsv"


def test_errors():
    with pytest.raises(ValueError, match="Unknown BIDS entities"):
        build_filename({"sub": "01", "foo": "bar"}, "bold", ".nii.gz")
    with pytest.raises(ValueError, match="alphanumeric"):
        build_filename({"sub": "01"}, "time_series", ".tsv")
    with pytest.raises(ValueError, match="no letters or digits"):
        sanitize_label("+_-")
    with pytest.raises(ValueError, match="needs a 'sub'"):
        build_path({"task": "rest"}, "bold", ".nii.gz")


def test_pybids_indexes_outputs(tmp_path):
    import json

    from bids.layout import BIDSLayout, BIDSLayoutIndexer

    (tmp_path / "dataset_description.json").write_text(
        json.dumps(
            {
                "Name": "x",
                "BIDSVersion": "1.10.0",
                "DatasetType": "derivative",
                "GeneratedBy": [{"Name": "bidsmask"}],
            }
        )
    )
    src = source_entities(SRC)
    made = {
        "ts": build_path({**src, **ATLAS, "stat": "mean", "desc": "36P+gsr"}, "timeseries", ".tsv"),
        "rel": build_path(
            {**src, **ATLAS, "meas": "PearsonCorrelation", "desc": "36P+gsr"}, "relmat", ".tsv"
        ),
        "rel2": build_path(
            {**src, **ATLAS, "meas": "Covariance", "desc": "36P+gsr"}, "relmat", ".tsv"
        ),
        "mask": build_path({**src, "desc": "brain"}, "mask", ".nii.gz"),
    }
    for rel in made.values():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    marker = tmp_path / "logs" / "runs" / f"{run_stem(SRC)}.json"
    marker.parent.mkdir(parents=True)
    marker.write_text("{}")
    layout = BIDSLayout(
        tmp_path,
        validate=False,
        config=CONFIG,
        indexer=BIDSLayoutIndexer(validate=False, ignore=["logs"]),
    )
    found = layout.get(
        subject="01",
        session="1",
        task="rest",
        run=1,
        atlas="Schaefer2018",
        segmentation="400Parcels7Networks",
        meas="PearsonCorrelation",
        desc="36Pgsr",
        suffix="relmat",
        return_type="file",
    )
    assert [tmp_path / made["rel"]] == [type(tmp_path)(f) for f in found]
    ts = layout.get(stat="mean", suffix="timeseries", extension=".tsv", return_type="file")
    assert [type(tmp_path)(f) for f in ts] == [tmp_path / made["ts"]]
    assert len(layout.get(subject="01", return_type="file")) == 4


def test_docstring_examples():
    import doctest

    import bidsmask.bids.naming as module

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0
