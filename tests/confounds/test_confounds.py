import json
import shutil
import warnings
from pathlib import Path

import nilearn.interfaces.fmriprep as nl_fmriprep
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from bidsmask import confounds as bc

DATA = Path(nl_fmriprep.__file__).parent / "data"
SPACE = "space-MNI152NLin2009cAsym_res-2"
MOTION = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]


def _fake_run(folder: Path, source: str, stem: str, suffix: str, bold: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for ext in ("tsv", "json"):
        shutil.copy(DATA / f"{source}.{ext}", folder / f"{stem}_desc-confounds_{suffix}.{ext}")
    img = folder / f"{stem}_{bold}"
    img.touch()
    return img


@pytest.fixture(params=["v21", "old"])
def run(request, tmp_path):
    """A fake fMRIPrep run: (BOLD file, full-AROMA BOLD file) next to real confounds."""
    if request.param == "v21":
        source, stem, suffix = (
            "test-v21_desc-confounds_timeseries",
            "sub-01_ses-1_task-rest_run-1",
            "timeseries",
        )
    else:
        source, stem, suffix = "test_desc-confounds_regressors", "sub-01_task-rest", "regressors"
    img = _fake_run(tmp_path, source, stem, suffix, f"{SPACE}_desc-preproc_bold.nii.gz")
    aroma = tmp_path / f"{stem}_{SPACE}_desc-smoothAROMAnonaggr_bold.nii.gz"
    aroma.touch()
    return img, aroma


def _nilearn(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


def _assert_same(ours, ref):
    (conf, mask), (conf_ref, mask_ref) = ours, ref
    if mask_ref is None:
        assert mask is None
    else:
        np.testing.assert_array_equal(mask, mask_ref)
    if conf_ref is None:
        assert conf is None
        return
    assert list(conf.columns) == list(conf_ref.columns)
    assert conf.shape == conf_ref.shape
    assert_allclose(conf.to_numpy(float), conf_ref.to_numpy(float), rtol=1e-12, atol=1e-12)


PRESET_OPTIONS = [
    {},
    {"global_signal": "full"},
    {"global_signal": "basic", "motion": "basic"},
    {"motion": "derivatives", "wm_csf": "power2"},
    {"fd_threshold": 0.2, "std_dvars_threshold": 1.0, "scrub": 0},
    {"fd_threshold": 0.1, "scrub": 3},
    {"n_compcor": 2},
    {"compcor": "anat_separated", "n_compcor": 3},
    {"compcor": "temporal_anat_separated"},
    {"compcor": "temporal_anat_combined", "n_compcor": 1},
    {"demean": False},
]


@pytest.mark.parametrize("preset", ["simple", "scrubbing", "compcor"])
@pytest.mark.parametrize("options", PRESET_OPTIONS)
def test_load_confounds_strategy_parity(run, preset, options):
    img = str(run[0])
    ref = _nilearn(nl_fmriprep.load_confounds_strategy, img, preset, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = bc.load_confounds_strategy(img, preset, **options)
    _assert_same(ours, ref)


def test_ica_aroma_preset_parity(run):
    aroma = str(run[1])
    _assert_same(
        bc.load_confounds_strategy(aroma, "ica_aroma"),
        _nilearn(nl_fmriprep.load_confounds_strategy, aroma, "ica_aroma"),
    )


STRATEGIES = [
    ("motion",),
    ("high_pass",),
    ("motion", "wm_csf", "global_signal", "scrub"),
    ("motion", "high_pass", "compcor"),
    ("global_signal",),
    (),
]
KEYWORDS = [
    {},
    {"motion": "power2", "wm_csf": "full", "global_signal": "derivatives"},
    {"scrub": 0, "fd_threshold": 0.15, "std_dvars_threshold": 2.0},
    {"compcor": "temporal", "n_compcor": 2, "demean": False},
]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("keywords", KEYWORDS)
def test_load_confounds_parity(run, strategy, keywords):
    img = str(run[0])
    ref = _nilearn(nl_fmriprep.load_confounds, img, strategy=strategy, **keywords)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = bc.load_confounds(img, strategy=strategy, **keywords)
    _assert_same(ours, ref)


def test_ica_aroma_basic_parity(tmp_path):
    img = _fake_run(
        tmp_path,
        "test_desc-confounds_regressors",
        "sub-01_task-rest",
        "regressors",
        f"{SPACE}_desc-preproc_bold.nii.gz",
    )
    kwargs = {"strategy": ("motion", "high_pass", "ica_aroma"), "ica_aroma": "basic"}
    ours = bc.load_confounds(str(img), **kwargs)
    _assert_same(ours, _nilearn(nl_fmriprep.load_confounds, str(img), **kwargs))
    assert sum(c.startswith("aroma_motion") for c in ours[0].columns) == 13


@pytest.mark.parametrize("tedana", ["aggressive", "non-aggressive"])
def test_tedana_parity(tmp_path, tedana):
    stem = "sub-01_task-rest"
    shutil.copy(DATA / "test_desc-ICA_mixing.tsv", tmp_path / f"{stem}_desc-ICA_mixing.tsv")
    shutil.copy(DATA / "test_desc-tedana_metrics.tsv", tmp_path / f"{stem}_desc-tedana_metrics.tsv")
    img = tmp_path / f"{stem}_desc-optcom_bold.nii.gz"
    img.touch()
    kwargs = {"strategy": ("tedana",), "tedana": tedana}
    ours = bc.load_confounds(str(img), **kwargs)
    _assert_same(ours, _nilearn(nl_fmriprep.load_confounds, str(img), **kwargs))
    assert all(c.split("_")[0] in ("rejected", "accepted") for c in ours[0].columns)


def test_lists_of_files_and_cifti_gifti_names(tmp_path):
    img1 = _fake_run(
        tmp_path / "a",
        "test-v21_desc-confounds_timeseries",
        "sub-01_task-rest",
        "timeseries",
        f"{SPACE}_desc-preproc_bold.nii.gz",
    )
    img2 = _fake_run(
        tmp_path / "b",
        "test_desc-confounds_regressors",
        "sub-02_task-rest",
        "regressors",
        "space-fsLR_den-91k_bold.dtseries.nii",
    )
    ours = bc.load_confounds([str(img1), img2])
    ref = _nilearn(nl_fmriprep.load_confounds, [str(img1), str(img2)])
    assert isinstance(ours[0], list) and len(ours[0]) == 2
    for o, r in zip(zip(*ours, strict=True), zip(*ref, strict=True), strict=True):
        _assert_same(o, r)
    pair = []
    for hemi in "LR":
        pair.append(tmp_path / "a" / f"sub-01_task-rest_hemi-{hemi}_space-fsaverage5_bold.func.gii")
        pair[-1].touch()
    pair = [str(p) for p in pair]
    _assert_same(bc.load_confounds(pair), _nilearn(nl_fmriprep.load_confounds, pair))
    # one hemisphere alone is accepted too (nilearn finds its confounds the same way)
    _assert_same(bc.load_confounds(pair[0]), _nilearn(nl_fmriprep.load_confounds, pair[0]))
    with pytest.raises(ValueError, match="must be a pair of hemisphere files"):
        bc.load_confounds([[pair[0], pair[1], pair[0]]])


def test_non_steady_state_in_sample_mask(run):
    conf, mask = bc.load_confounds(str(run[0]), strategy=("motion",), motion="basic")
    raw = pd.read_csv(next(run[0].parent.glob("*_desc-confounds_*.tsv")), sep="\t")
    nss = raw.filter(like="non_steady_state").to_numpy().sum(axis=1) > 0
    np.testing.assert_array_equal(mask, np.flatnonzero(~nss))
    assert list(conf.columns) == sorted(MOTION)
    assert_allclose(conf.iloc[mask].mean().to_numpy(), 0, atol=1e-12)


# ---- errors ------------------------------------------------------------------


def test_error_missing_confounds_file(tmp_path):
    img = tmp_path / f"sub-01_task-rest_{SPACE}_desc-preproc_bold.nii.gz"
    img.touch()
    with pytest.raises(bc.ConfoundsFileNotFoundError, match="sub-01_task-rest_space") as err:
        bc.load_confounds(str(img))
    assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, ValueError)
    assert "Could not find associated confound file" in str(err.value)


def test_error_bad_image_name(run):
    bad = run[0].parent / "sub-01_task-rest_bold.nii"
    with pytest.raises(ValueError, match="sub-01_task-rest_bold.nii"):
        bc.load_confounds(str(bad))
    with pytest.raises(ValueError, match="desc-smoothAROMAnonaggr"):
        bc.load_confounds_strategy(str(run[0]), "ica_aroma")


def test_error_missing_component_names_file(v21):
    with pytest.raises(ValueError, match=r"desc-confounds_.*lacks .*\['ica_aroma'\]"):
        bc.load_confounds(str(v21), strategy=("ica_aroma",), ica_aroma="basic")


def test_error_parameters(run):
    img = str(run[0])
    with pytest.raises(ValueError, match="'motion' must be one of"):
        bc.load_confounds(img, motion="quadratic")
    with pytest.raises(ValueError, match="'high_pass' must be in the strategy"):
        bc.load_confounds(img, strategy=("compcor",))
    with pytest.raises(ValueError, match="'strategy' must contain only"):
        bc.load_confounds(img, strategy=("motions",))
    with pytest.raises(ValueError, match="'denoise_strategy' must be one of"):
        bc.load_confounds_strategy(img, "36P")


def test_error_anat_compcor_needs_json(run):
    next(run[0].parent.glob("*.json")).unlink()
    with pytest.raises(
        bc.ConfoundsFileNotFoundError, match=r"associated json file .*desc-confounds_.*\.json;"
    ):
        bc.load_confounds_strategy(str(run[0]), "compcor")


# ---- named sets, JSON strategies and load_strategy ----------------------------


def _expand(names, *suffixes):
    return [f"{n}{s}" for n in names for s in ("", *suffixes)]


FULL = ("_derivative1", "_power2", "_derivative1_power2")
V21_EXPECTED = {
    "24P": _expand(MOTION, *FULL),
    "27P": _expand(MOTION, *FULL) + ["csf", "white_matter", "global_signal"],
    "36P": _expand(MOTION + ["csf", "white_matter", "global_signal"], *FULL),
    "acompcor": _expand(MOTION, "_derivative1")
    + [f"w_comp_cor_0{i}" for i in range(4)]
    + [f"c_comp_cor_0{i}" for i in range(3)]
    + ["cosine00"],
    "acompcor_gsr": _expand(MOTION, "_derivative1")
    + [f"w_comp_cor_0{i}" for i in range(4)]
    + [f"c_comp_cor_0{i}" for i in range(3)]
    + ["cosine00", "csf", "white_matter", "global_signal"],
    "gsr_only": ["global_signal"],
    "24P+gsr": _expand(MOTION, *FULL) + ["global_signal"],
}


@pytest.fixture
def v21(tmp_path):
    return _fake_run(
        tmp_path,
        "test-v21_desc-confounds_timeseries",
        "sub-01_ses-1_task-rest_run-1",
        "timeseries",
        f"{SPACE}_desc-preproc_bold.nii.gz",
    )


@pytest.mark.parametrize("name", list(V21_EXPECTED))
def test_named_sets_columns(v21, name):
    conf, mask, params = bc.load_strategy(v21, name)
    assert list(conf.columns) == sorted(V21_EXPECTED[name])
    raw = pd.read_csv(next(v21.parent.glob("*.tsv")), sep="\t")
    expected = raw[sorted(V21_EXPECTED[name])].copy()
    expected.iloc[0] = expected.iloc[0].fillna(expected.iloc[1])
    expected -= expected.iloc[mask].mean()
    assert_allclose(conf.to_numpy(), expected.to_numpy(), rtol=1e-12, atol=1e-12)
    assert params["columns"] == list(conf.columns)
    assert params["n_censored"] == 3  # the three non-steady-state volumes
    json.dumps(params)


def test_acompcor_old_fmriprep_uses_json_masks(tmp_path):
    img = _fake_run(
        tmp_path,
        "test_desc-confounds_regressors",
        "sub-01_task-rest",
        "regressors",
        f"{SPACE}_desc-preproc_bold.nii.gz",
    )
    meta = json.loads(next(tmp_path.glob("*.json")).read_text())
    conf, _, _ = bc.load_strategy(img, "acompcor")
    acc = [c for c in conf.columns if c.startswith("a_comp_cor")]
    masks = [meta[c]["Mask"] for c in acc]
    assert masks.count("WM") == 5 and masks.count("CSF") == 5


@pytest.mark.filterwarnings("ignore:All volumes were marked")
@pytest.mark.parametrize("preset", ["simple", "scrubbing", "compcor"])
def test_load_strategy_presets_match_nilearn(run, preset):
    conf, mask, params = bc.load_strategy(run[0], preset)
    _assert_same((conf, mask), _nilearn(nl_fmriprep.load_confounds_strategy, str(run[0]), preset))
    conf, mask, params = bc.load_strategy(run[0], f"{preset}+gsr")
    ref = _nilearn(nl_fmriprep.load_confounds_strategy, str(run[0]), preset, global_signal="basic")
    _assert_same((conf, mask), ref)
    assert params["options"]["global_signal"] == "basic"
    assert params["kind"] == "preset"


def test_load_strategy_overrides(v21):
    conf, mask, params = bc.load_strategy(v21, "36P", fd_threshold=4.0, n_dummy_scans=5)
    raw = pd.read_csv(next(v21.parent.glob("*.tsv")), sep="\t")
    fd = raw["framewise_displacement"].to_numpy()
    assert set(np.flatnonzero(fd > 4.0)) == {2, 11, 12}
    # FD outliers, the short segment 0-1 before them, dummy scans 0-4
    np.testing.assert_array_equal(mask, np.setdiff1d(np.arange(len(raw)), [0, 1, 2, 3, 4, 11, 12]))
    assert params["options"]["fd_threshold"] == 4.0
    assert params["options"]["std_dvars_threshold"] is None  # not given: disabled
    assert params["n_dummy_scans"] == 5
    assert params["n_censored"] == len(raw) - len(mask)
    # by reason: the dummy scans 0-4 (less the non-steady-state ones), then FD outliers 11, 12
    steady = [c for c in raw.columns if c.startswith("non_steady_state_outlier")]
    n_steady = int(raw[steady].to_numpy().sum()) if steady else 0
    assert params["censored"] == {
        "non_steady_state": n_steady,
        "dummy_scans": 5 - n_steady,
        "scrubbed": 2,
    }
    scale = conf.abs().max().to_numpy()
    assert_allclose(conf.iloc[mask].mean().to_numpy() / scale, 0, atol=1e-12)
    json.dumps(params)
    # dummy scans only
    _, mask, _ = bc.load_strategy(v21, "24P", n_dummy_scans=4)
    np.testing.assert_array_equal(mask, np.arange(4, len(raw)))
    # scrubbing preset: overriding one threshold keeps the other
    _, mask_a, p = bc.load_strategy(v21, "scrubbing", fd_threshold=4.0)
    ref = _nilearn(nl_fmriprep.load_confounds_strategy, str(v21), "scrubbing", fd_threshold=4.0)
    np.testing.assert_array_equal(mask_a, ref[1])
    assert 0 < len(mask_a) < len(raw)
    assert p["options"]["std_dvars_threshold"] == 1.5


def test_json_strategy_file(v21, tmp_path):
    spec = {
        "name": "mine",
        "description": "motion, cosines, rmsd and the first two aCompCor",
        "strategy": ["motion", "high_pass", "scrub"],
        "motion": "basic",
        "scrub": 0,
        "fd_threshold": 4.0,
        "std_dvars_threshold": None,
        "columns": ["rmsd"],
        "column_patterns": ["^a_comp_cor_0[01]$"],
        "n_dummy_scans": 1,
    }
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(spec))
    conf, mask, params = bc.load_strategy(v21, path)
    expected = sorted(MOTION + ["cosine00", "rmsd", "a_comp_cor_00", "a_comp_cor_01"])
    assert list(conf.columns) == expected
    raw = pd.read_csv(next(v21.parent.glob("*.tsv")), sep="\t")
    nss = raw.filter(like="non_steady_state").to_numpy().sum(axis=1) > 0
    censored = nss | (raw["framewise_displacement"].to_numpy() > 4.0)
    censored[0] = True
    np.testing.assert_array_equal(mask, np.flatnonzero(~censored))
    assert params["strategy"] == "mine" and params["kind"] == "file"
    assert params["strategy_file"] == str(path)
    assert params["options"]["std_dvars_threshold"] is None
    json.dumps(params)
    conf_gsr, _, params = bc.load_strategy(v21, f"{path}+gsr")
    assert "global_signal" in conf_gsr.columns and params["strategy"] == "mine+gsr"


def test_json_strategy_errors(v21, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"strategy": ["motion"], "colums": ["rmsd"]}))
    with pytest.raises(ValueError, match=r"bad.json: unknown keys \['colums'\]"):
        bc.load_strategy(v21, bad)
    bad.write_text(json.dumps({"strategy": ["motion"], "motion": "all"}))
    with pytest.raises(ValueError, match="bad.json: 'motion' must be one of"):
        bc.load_strategy(v21, bad)
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json is not valid JSON"):
        bc.load_strategy(v21, bad)
    with pytest.raises(FileNotFoundError, match="nope.json"):
        bc.load_strategy(v21, tmp_path / "nope.json")
    bad.write_text(json.dumps({"columns": ["no_such_column"]}))
    with pytest.raises(ValueError, match=r"lacks columns \['no_such_column'\]"):
        bc.load_strategy(v21, bad)


def test_load_strategy_errors(v21):
    with pytest.raises(ValueError, match="Unknown denoising strategy '37P'"):
        bc.load_strategy(v21, "37P")
    with pytest.raises(ValueError, match="already includes the global signal"):
        bc.load_strategy(v21, "36P+gsr")
    with pytest.raises(TypeError, match="unknown overrides"):
        bc.load_strategy(v21, "36P", low_pass=0.1)
    with pytest.raises(ValueError, match="n_dummy_scans must be an integer"):
        bc.load_strategy(v21, "36P", n_dummy_scans=-1)
    with pytest.raises(ValueError, match="censors all 30 volumes"):
        bc.load_strategy(v21, "36P", n_dummy_scans=30)


def test_list_strategies():
    names = bc.list_strategies()
    for name in ["simple", "scrubbing", "compcor", "ica_aroma", "24P", "27P", "36P"]:
        assert name in names
    for name in ["acompcor", "acompcor_gsr", "gsr_only", "simple+gsr", "24P+gsr"]:
        assert name in names
    assert "36P+gsr" not in names and "gsr_only+gsr" not in names
    assert len(names) == len(set(names))


def test_error_ambiguous_confounds_files(v21):
    tsv = next(v21.parent.glob("*_timeseries.tsv"))
    shutil.copy(tsv, tsv.parent / "sub-01_task-rest_desc-confounds_timeseries.tsv")
    with pytest.raises(ValueError, match="Expected 1 confounds file.*found more than one \\(2\\)"):
        bc.load_strategy(v21, "24P")


def test_censoring_counts_each_volume_once():
    from bidsmask.confounds._components import censoring_counts, prepare_output

    one_hot = np.eye(12, dtype=int)
    frame = pd.DataFrame(
        {
            "non_steady_state_outlier00": one_hot[0],
            "non_steady_state_outlier01": one_hot[1],
            "motion_outlier_0": one_hot[2],  # also a dummy scan
            "motion_outlier_1": one_hot[7],
            "motion_outlier_2": one_hot[1],  # also non-steady-state
            "motion_outlier_3": one_hot[9],
            "trans_x": np.arange(12.0),
        }
    )
    dummy = np.arange(4)
    counts = censoring_counts(frame, dummy)
    assert counts == {"non_steady_state": 2, "dummy_scans": 2, "scrubbed": 2}
    mask, _ = prepare_output(frame, True, dummy)
    assert sum(counts.values()) == 12 - len(mask)
    assert censoring_counts(frame[["trans_x"]]) == dict.fromkeys(counts, 0)


def test_preset_strategies_is_nilearns_table():
    from nilearn.interfaces.fmriprep.load_confounds_strategy import preset_strategies as ref

    from bidsmask.confounds import preset_strategies

    assert preset_strategies == ref
