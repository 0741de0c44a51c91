"""nilearn's public fMRIPrep helpers (load_confounds_utils, load_confounds_scrub) vs nilearn."""

import json
import shutil
import warnings
from pathlib import Path

import nilearn.interfaces.fmriprep as nl_fmriprep
import numpy as np
import pandas as pd
import pytest
from nilearn.interfaces.fmriprep import load_confounds_scrub as nl_scrub
from nilearn.interfaces.fmriprep import load_confounds_utils as nl_utils
from pandas.testing import assert_frame_equal

from bidsmask import confounds as bc

DATA = Path(nl_fmriprep.__file__).parent / "data"
V21 = "test-v21_desc-confounds_timeseries"


@pytest.fixture
def tsv(tmp_path):
    for ext in ("tsv", "json"):
        shutil.copy(DATA / f"{V21}.{ext}", tmp_path / f"sub-01_desc-confounds_timeseries.{ext}")
    return tmp_path / "sub-01_desc-confounds_timeseries.tsv"


@pytest.mark.parametrize(
    "outliers",
    [[3, 11, 13, 80, 97], [11, 13, 16, 44, 50, 80], [4], [96], [5], [0, 99], [0, 6, 12], [50]],
)
@pytest.mark.parametrize("scrub", [0, 1, 5, 10])
def test_optimize_scrub_matches_nilearn(outliers, scrub):
    ours = bc.optimize_scrub(outliers, 100, scrub)
    ref = nl_scrub.optimize_scrub(outliers, 100, scrub)
    np.testing.assert_array_equal(ours, ref)


def test_optimize_scrub_numbers():
    np.testing.assert_array_equal(bc.optimize_scrub([4], 100, 5), [0, 1, 2, 3, 4])
    # kept segments shorter than `scrub` are censored; one of exactly `scrub` volumes is kept
    np.testing.assert_array_equal(bc.optimize_scrub([94], 100, 5), [94])
    np.testing.assert_array_equal(bc.optimize_scrub([10, 16], 100, 5), [10, 16])
    np.testing.assert_array_equal(bc.optimize_scrub([10, 15], 100, 5), np.arange(10, 16))


def _frame(n_scans=50, seed=0):
    rng = np.random.default_rng(seed)
    eye = np.eye(n_scans)
    return pd.concat(
        [
            pd.DataFrame(rng.random((n_scans, 2)), columns=["trans_x", "csf"]),
            pd.DataFrame(
                eye[:, :3], columns=[f"non_steady_state_outlier{i:02d}" for i in range(3)]
            ),
            pd.DataFrame(eye[:, [2, 4, 34]], columns=[f"motion_outlier{i:02d}" for i in range(3)]),
        ],
        axis=1,
    )


@pytest.mark.parametrize(
    "columns",
    [
        ["trans_x", "csf"],
        ["trans_x", "csf", "non_steady_state_outlier00", "non_steady_state_outlier01"],
        ["csf", "motion_outlier00", "motion_outlier01"],
        None,  # all: non_steady_state_outlier02 and motion_outlier00 flag the same volume
    ],
)
def test_extract_outlier_regressors_matches_nilearn(columns):
    frame = _frame() if columns is None else _frame()[columns]
    mask, conf, out = bc.extract_outlier_regressors(frame)
    ref_mask, ref_conf, ref_out = nl_scrub.extract_outlier_regressors(frame)
    if ref_mask is None:
        assert mask is None
        assert out.empty
    else:
        np.testing.assert_array_equal(mask, ref_mask)
        assert_frame_equal(out, ref_out)
    assert_frame_equal(conf, ref_conf)


def test_extract_outlier_regressors_numbers_and_warning():
    mask, conf, out = bc.extract_outlier_regressors(_frame())
    np.testing.assert_array_equal(mask, np.delete(np.arange(50), [0, 1, 2, 4, 34]))
    assert list(conf.columns) == ["csf", "trans_x"]
    assert "non_steady_state_outlier02" not in out.columns  # same volume as motion_outlier00
    everything = pd.DataFrame(np.eye(6), columns=[f"motion_outlier{i}" for i in range(6)])
    with pytest.warns(RuntimeWarning, match="All volumes were marked as motion outliers"):
        mask, _, _ = bc.extract_outlier_regressors(everything)
    assert mask.size == 0


@pytest.mark.parametrize(
    ("inputs", "single"),
    [
        (["image.nii.gz"], True),
        ("image.nii.gz", True),
        (Path("image.nii.gz"), True),
        (["image1.nii.gz", "image2.nii.gz"], False),
        (["image_L.func.gii", "image_R.func.gii"], True),
        ([["image_L.func.gii", "image_R.func.gii"]], True),
        ([["a_L.func.gii", "a_R.func.gii"], ["b_L.func.gii", "b_R.func.gii"]], False),
    ],
)
def test_sanitize_confounds_matches_nilearn(inputs, single):
    files, flag = bc.sanitize_confounds(inputs)
    assert flag is single
    assert (
        nl_utils.sanitize_confounds(inputs if not isinstance(inputs, Path) else str(inputs))[1]
        is single
    )
    if single:
        assert len(files) == 1
    with pytest.raises(TypeError, match="img_files must be"):
        bc.sanitize_confounds([])


def test_load_confounds_json_matches_nilearn(tsv):
    path = tsv.with_suffix(".json")
    ours = bc.load_confounds_json(path, flag_acompcor=True)
    assert ours == nl_utils.load_confounds_json(str(path), flag_acompcor=True)
    assert ours == json.loads(path.read_text())
    path.unlink()
    assert bc.load_confounds_json(path, flag_acompcor=False) == {}
    with pytest.raises(ValueError, match="Could not find associated json file") as err:
        bc.load_confounds_json(path, flag_acompcor=True)
    assert isinstance(err.value, FileNotFoundError)
    assert str(path) in str(err.value)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        bc.load_confounds_json(path, flag_acompcor=False)


def test_load_confounds_file_as_dataframe_matches_nilearn(tsv):
    ours = bc.load_confounds_file_as_dataframe(tsv)
    assert_frame_equal(ours, nl_utils.load_confounds_file_as_dataframe(str(tsv)))


def test_load_confounds_file_as_dataframe_errors(tsv):
    table = pd.read_csv(tsv, sep="\t")
    np.savetxt(tsv, np.random.default_rng(0).random((10, 4)), delimiter="\t")
    with pytest.raises(ValueError, match="The confound file contains no header") as err:
        bc.load_confounds_file_as_dataframe(tsv)
    assert str(tsv) in str(err.value)
    table.rename(columns={"trans_x": "TransX"}).to_csv(tsv, sep="\t", index=False)
    with pytest.raises(ValueError, match=r"header in camel case: .* columns \['TransX'\]"):
        bc.load_confounds_file_as_dataframe(tsv)


def test_load_confounds_file_as_dataframe_tedana(tmp_path):
    mixing = tmp_path / "sub-01_desc-ICA_mixing.tsv"
    metrics = tmp_path / "sub-01_desc-tedana_metrics.tsv"
    pd.DataFrame({"ICA_00": [0.1, 0.2], "ICA_01": [0.3, 0.1]}).to_csv(mixing, sep="\t", index=False)
    pd.DataFrame(
        {"Component": ["ICA_00", "ICA_01"], "classification": ["accepted", "rejected"]}
    ).to_csv(metrics, sep="\t", index=False)
    paths = [str(mixing), str(metrics)]
    ours = bc.load_confounds_file_as_dataframe(paths, flag_tedana=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = nl_utils.load_confounds_file_as_dataframe(paths, flag_tedana=True)
    assert set(ours) == set(ref) == {"mixing", "metrics"}
    for key in ours:
        assert_frame_equal(ours[key], ref[key])
    pd.DataFrame({"junk": [1, 0]}).to_csv(mixing, sep="\t", index=False)
    pd.DataFrame({"junk": [1, 0]}).to_csv(metrics, sep="\t", index=False)
    with pytest.raises(ValueError, match="does not contain the expected columns for TEDANA"):
        bc.load_confounds_file_as_dataframe(paths, flag_tedana=True)
