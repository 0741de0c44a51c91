import json
import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from bidsmask.bids.layout import (
    NoRunsFoundError,
    ParticipantNotFoundError,
    collect_runs,
    find_fmriprep_dir,
    fmriprep_version,
    parse_space,
    select_participants,
)

MNI = "MNI152NLin2009cAsym"


def _nii(path, shape=(2, 2, 2), zooms=None):
    img = nib.Nifti1Image(np.ones(shape, np.float32), np.eye(4))
    if zooms is not None:
        img.header.set_zooms(zooms)
        img.header.set_xyzt_units("mm", "sec")
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, path)


def _json(path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content))


def make_fmriprep(
    root, runs, *, version="23.2.1", confounds="timeseries", per_run_segs=True, tr=2.0
):
    """Write a tiny fMRIPrep-like tree; runs are (sub, ses, task, run, space-with-qualifiers)."""
    _json(
        root / "dataset_description.json",
        {
            "Name": "fMRIPrep output",
            "BIDSVersion": "1.8.0",
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "fMRIPrep", "Version": version}],
        },
    )
    for sub, ses, task, run, space in runs:
        folder = root / f"sub-{sub}" / (f"ses-{ses}" if ses else "") / "func"
        src = "_".join(
            p
            for p in (f"sub-{sub}", ses and f"ses-{ses}", f"task-{task}", run and f"run-{run}")
            if p
        )
        base = f"{src}_{space}"
        _nii(folder / f"{base}_desc-preproc_bold.nii.gz", (2, 2, 2, 5), (2, 2, 2, tr or 2.0))
        _json(
            folder / f"{base}_desc-preproc_bold.json",
            {"RepetitionTime": tr, "SkullStripped": False} if tr else {"SkullStripped": False},
        )
        _nii(folder / f"{base}_desc-brain_mask.nii.gz")
        _nii(folder / f"{base}_boldref.nii.gz")
        (folder / f"{src}_desc-confounds_{confounds}.tsv").write_text("csf\n1\n2\n3\n4\n5\n")
        _json(folder / f"{src}_desc-confounds_{confounds}.json", {"csf": {"Method": "mean"}})
        if space == "space-T1w" and per_run_segs:
            for seg in ("aparcaseg", "aseg"):
                _nii(folder / f"{base}_desc-{seg}_dseg.nii.gz")
        anat = root / f"sub-{sub}" / "anat"
        _nii(anat / f"sub-{sub}_label-GM_probseg.nii.gz")
        _nii(anat / f"sub-{sub}_desc-aparcaseg_dseg.nii.gz")
        _nii(anat / f"sub-{sub}_space-{MNI}_res-2_label-GM_probseg.nii.gz")
    return root


RUNS = [
    ("01", None, "rest", None, f"space-{MNI}_res-2"),
    ("01", None, "nback", "1", f"space-{MNI}_res-2"),
    ("01", None, "nback", "2", f"space-{MNI}_res-2"),
    ("01", None, "rest", None, "space-T1w"),
    ("02", "1", "rest", None, f"space-{MNI}_res-2"),
    ("02", "2", "rest", None, f"space-{MNI}_res-2"),
    ("02", "2", "rest", None, f"space-{MNI}_res-1"),
    ("02", "2", "nback", "1", "space-MNI152NLin6Asym_res-2"),
    ("03", None, "rest", None, f"space-{MNI}_res-2"),
]


@pytest.fixture
def fmriprep(tmp_path):
    return make_fmriprep(tmp_path / "bids" / "derivatives" / "fmriprep", RUNS)


def _ids(runs):
    return [r.run_id for r in runs]


def test_counts_and_selection(fmriprep, tmp_path):
    work = tmp_path / "work"
    runs = collect_runs(fmriprep, work)
    assert len(runs) == 7  # every MNI152NLin2009cAsym run, both resolutions
    assert {r.subject for r in runs} == {"01", "02", "03"}
    one = collect_runs(fmriprep, work, participants=["sub-01"])
    assert _ids(one) == [
        f"sub-01_task-nback_run-1_space-{MNI}_res-2",
        f"sub-01_task-nback_run-2_space-{MNI}_res-2",
        f"sub-01_task-rest_space-{MNI}_res-2",
    ]
    assert _ids(collect_runs(fmriprep, work, participants=["01"])) == _ids(one)
    both = collect_runs(fmriprep, work, participants=["01", "sub-02"], tasks=["rest"])
    assert len(both) == 4 and {r.entities["task"] for r in both} == {"rest"}
    ses = collect_runs(fmriprep, work, participants=["02"], sessions=["ses-2"])
    assert _ids(ses) == [
        f"sub-02_ses-2_task-rest_space-{MNI}_res-1",
        f"sub-02_ses-2_task-rest_space-{MNI}_res-2",
    ]
    res2 = collect_runs(fmriprep, work, participants=["02"], spaces=[f"{MNI}:res-02"])
    assert [r.res for r in res2] == ["2", "2"] and [r.session for r in res2] == ["1", "2"]
    multi = collect_runs(
        fmriprep, work, participants=["02"], spaces=["MNI152NLin6Asym", f"{MNI}:res-1"]
    )
    assert sorted(r.space for r in multi) == [MNI, "MNI152NLin6Asym"]
    t1w = collect_runs(fmriprep, work, spaces=["T1w"])
    assert _ids(t1w) == ["sub-01_task-rest_space-T1w"]


def test_bids_filters(fmriprep, tmp_path):
    work = tmp_path / "work"
    runs = collect_runs(fmriprep, work, participants=["01"], bids_filters={"bold": {"run": 2}})
    assert _ids(runs) == [f"sub-01_task-nback_run-2_space-{MNI}_res-2"]
    no_run = collect_runs(fmriprep, work, participants=["01"], bids_filters={"bold": {"run": None}})
    assert _ids(no_run) == [f"sub-01_task-rest_space-{MNI}_res-2"]
    with pytest.raises(NoRunsFoundError, match="task-x|tasks \\['x'\\]"):
        collect_runs(fmriprep, work, tasks=["x"])
    with pytest.raises(NoRunsFoundError, match="spaces"):
        collect_runs(fmriprep, work, participants=["01"], spaces=[f"{MNI}:res-1"])


def test_record_fields(fmriprep, tmp_path):
    [run] = collect_runs(fmriprep, tmp_path / "w", participants=["01"], spaces=["T1w"])
    func = fmriprep / "sub-01" / "func"
    assert run.bold == func / "sub-01_task-rest_space-T1w_desc-preproc_bold.nii.gz"
    assert run.mask == func / "sub-01_task-rest_space-T1w_desc-brain_mask.nii.gz"
    assert run.boldref == func / "sub-01_task-rest_space-T1w_boldref.nii.gz"
    assert run.confounds == func / "sub-01_task-rest_desc-confounds_timeseries.tsv"
    assert run.confounds_json == func / "sub-01_task-rest_desc-confounds_timeseries.json"
    assert run.aparcaseg == func / "sub-01_task-rest_space-T1w_desc-aparcaseg_dseg.nii.gz"
    assert run.aseg == func / "sub-01_task-rest_space-T1w_desc-aseg_dseg.nii.gz"
    assert run.gm_probseg == fmriprep / "sub-01" / "anat" / "sub-01_label-GM_probseg.nii.gz"
    assert run.entities == {"sub": "01", "task": "rest", "space": "T1w"}
    assert run.repetition_time == 2.0 and run.metadata["RepetitionTime"] == 2.0
    [mni] = collect_runs(fmriprep, tmp_path / "w", participants=["01"], tasks=["rest"])
    assert mni.aparcaseg is None
    assert mni.gm_probseg.name == f"sub-01_space-{MNI}_res-2_label-GM_probseg.nii.gz"


def test_fmriprep23_anat_segmentation_fallback(tmp_path):
    root = make_fmriprep(
        tmp_path / "fp", [("01", None, "rest", None, "space-T1w")], per_run_segs=False
    )
    [run] = collect_runs(root, tmp_path / "w", spaces=["T1w"])
    assert run.aparcaseg == root / "sub-01" / "anat" / "sub-01_desc-aparcaseg_dseg.nii.gz"
    assert run.aseg is None


def test_pre_20_2_regressors(tmp_path):
    root = make_fmriprep(tmp_path / "fp", RUNS[:1], version="1.5.0", confounds="regressors")
    [run] = collect_runs(root, tmp_path / "w")
    assert run.confounds.name == "sub-01_task-rest_desc-confounds_regressors.tsv"
    assert fmriprep_version(root) == "1.5.0"


def test_repetition_time_fallback(tmp_path, caplog):
    root = make_fmriprep(tmp_path / "fp", RUNS[:1], tr=None)
    bold = next(root.rglob("*_bold.nii.gz"))
    _nii(bold, (2, 2, 2, 5), (2, 2, 2, 1.5))
    with caplog.at_level(logging.WARNING, logger="bidsmask.bids.layout"):
        [run] = collect_runs(root, tmp_path / "w")
    assert run.repetition_time == pytest.approx(1.5)
    assert "RepetitionTime missing" in caplog.text and bold.name in caplog.text
    img = nib.load(bold)
    img.header.set_xyzt_units("mm", "msec")
    img.header.set_zooms((2, 2, 2, 800))
    nib.save(img, bold)
    assert collect_runs(root, tmp_path / "w")[0].repetition_time == pytest.approx(0.8)
    _nii(bold, (2, 2, 2, 5), (2, 2, 2, 0))
    with pytest.raises(ValueError, match=f"No RepetitionTime for .*{bold.name}"):
        collect_runs(root, tmp_path / "w")


def test_missing_companions(fmriprep, tmp_path):
    mask = next(fmriprep.rglob("sub-03_*_desc-brain_mask.nii.gz"))
    mask.unlink()
    with pytest.raises(FileNotFoundError, match=f"No brain mask for .*expected {mask.name}"):
        collect_runs(fmriprep, tmp_path / "w", participants=["03"])
    _nii(mask)
    next(fmriprep.rglob("sub-03_*_desc-confounds_timeseries.tsv")).unlink()
    with pytest.raises(
        FileNotFoundError,
        match="No confounds file for .*sub-03_task-rest_desc-confounds_timeseries",
    ):
        collect_runs(fmriprep, tmp_path / "w", participants=["03"])


def test_participant_not_found(fmriprep):
    with pytest.raises(ParticipantNotFoundError, match=r"sub-09 not found.*available: sub-01"):
        select_participants(fmriprep, ["sub-01", "09"])
    assert select_participants(fmriprep, None) == ["01", "02", "03"]
    assert issubclass(ParticipantNotFoundError, LookupError)


def test_database_in_work_dir_and_input_untouched(fmriprep, tmp_path):
    def snapshot():
        return {p: p.stat().st_mtime_ns for p in sorted(fmriprep.parent.parent.rglob("*"))}

    before = snapshot()
    fmriprep.parent.parent.chmod(0o555)
    try:
        collect_runs(fmriprep, tmp_path / "work", participants=["01"])
    finally:
        fmriprep.parent.parent.chmod(0o755)
    assert snapshot() == before
    assert any((tmp_path / "work" / "pybids").iterdir())


def test_only_selected_participants_indexed(fmriprep, tmp_path):
    import sqlite3

    figure = fmriprep / "sub-02" / "figures" / "sub-02_ses-1_task-rest_desc-carpetplot_bold.svg"
    figure.parent.mkdir()
    figure.write_text("<svg/>")
    collect_runs(fmriprep, tmp_path / "work", participants=["02"])
    [db] = [p for p in (tmp_path / "work" / "pybids").rglob("*.sqlite")]
    paths = [row[0] for row in sqlite3.connect(db).execute("select path from files")]
    assert any("sub-02" in p for p in paths)
    assert not any("sub-01" in p or "sub-03" in p for p in paths)
    assert not any("figures" in p or "/anat/" in p for p in paths)


def test_find_fmriprep_dir(tmp_path, fmriprep):
    bids = fmriprep.parent.parent
    assert find_fmriprep_dir(bids) == fmriprep
    assert find_fmriprep_dir(fmriprep) == fmriprep
    assert find_fmriprep_dir(bids, derivatives=fmriprep) == fmriprep
    other = tmp_path / "raw"
    _json(other / "dataset_description.json", {"Name": "raw", "BIDSVersion": "1.8.0"})
    named = make_fmriprep(other / "derivatives" / "fmriprep-20.2.0", RUNS[:1], version="20.2.0")
    assert find_fmriprep_dir(other) == named
    old = tmp_path / "old"
    _json(
        old / "dataset_description.json",
        {"PipelineDescription": {"Name": "fMRIPrep", "Version": "1.4.0"}},
    )
    assert find_fmriprep_dir(old) == old and fmriprep_version(old) == "1.4.0"
    with pytest.raises(FileNotFoundError, match="--derivatives"):
        find_fmriprep_dir(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="--derivatives folder not found"):
        find_fmriprep_dir(bids, derivatives=tmp_path / "missing")


def test_parse_space():
    assert parse_space("T1w") == ("T1w", {})
    assert parse_space(f"{MNI}:res-2") == (MNI, {"res": "2"})
    with pytest.raises(ValueError, match="Invalid space 'MNI:foo'"):
        parse_space("MNI:foo")


def test_fixture_dataset(request, tmp_path):
    """Counts on the shared synthetic dataset (tests/conftest.py), when available."""
    try:
        root = Path(request.getfixturevalue("fmriprep_dir"))
    except pytest.FixtureLookupError:
        pytest.skip("conftest fixture fmriprep_dir not available")
    runs = collect_runs(root, tmp_path / "w", spaces=[MNI, "T1w"])
    per_sub = {s: sum(r.subject == s for r in runs) for s in ("01", "02")}
    assert per_sub == {"01": 6, "02": 6}
    t1w = [r for r in runs if r.space == "T1w"]
    assert len(t1w) == 3 and all(r.aparcaseg and r.aseg and r.gm_probseg for r in t1w)
    assert all(r.repetition_time > 0 and r.confounds_json for r in runs)


REALDATA = Path(__file__).resolve().parents[3] / "shared" / "realdata" / "fmriprep_colornest"


def test_real_fmriprep_20_2_layout(tmp_path):
    """fMRIPrep 20.2.1 file names (rec-refaced anatomy, sessions) from a real dataset.

    The real BOLD series and confounds TSV were not published: stand-ins are written next to
    links to the real files.
    """
    if not REALDATA.is_dir():
        pytest.skip(f"Real data not available at {REALDATA}.")
    root = tmp_path / "fmriprep"
    for src in REALDATA.rglob("*"):
        dst = root / src.relative_to(REALDATA)
        if src.is_dir():
            dst.mkdir(parents=True, exist_ok=True)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(src)
    func = root / "sub-colornest001" / "ses-1" / "func"
    stem = "sub-colornest001_ses-1_task-rest_run-1"
    _nii(func / f"{stem}_space-{MNI}_desc-preproc_bold.nii.gz", (2, 2, 2, 5), (3, 3, 3.33, 9))
    (func / f"{stem}_desc-confounds_timeseries.tsv").write_text("csf\n1\n")
    assert find_fmriprep_dir(root) == root and fmriprep_version(root) == "20.2.1"
    [run] = collect_runs(root, tmp_path / "work", participants=["colornest001"])
    real_tr = json.loads((func / f"{stem}_space-{MNI}_desc-preproc_bold.json").read_text())
    assert run.repetition_time == real_tr["RepetitionTime"] != 9
    assert run.mask.name == f"{stem}_space-{MNI}_desc-brain_mask.nii.gz"
    assert run.boldref.name == f"{stem}_space-{MNI}_boldref.nii.gz"
    assert run.confounds_json.name == f"{stem}_desc-confounds_timeseries.json"
    assert run.entities == {
        "sub": "colornest001",
        "ses": "1",
        "task": "rest",
        "run": "1",
        "space": MNI,
    }
    with pytest.raises(NoRunsFoundError):
        collect_runs(root, tmp_path / "work", spaces=["T1w"])
    anat = root / "sub-colornest001" / "ses-1" / "anat"
    _nii(func / f"{stem}_space-T1w_desc-preproc_bold.nii.gz", (2, 2, 2, 5), (3, 3, 3, 2))
    _nii(func / f"{stem}_space-T1w_desc-brain_mask.nii.gz")
    [t1w] = collect_runs(root, tmp_path / "work", spaces=["T1w"])
    assert t1w.gm_probseg == anat / "sub-colornest001_ses-1_rec-refaced_label-GM_probseg.nii.gz"
    assert t1w.aparcaseg is None


def test_docstring_examples():
    import doctest

    import bidsmask.bids.layout as module

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


def test_cifti_repetition_time_from_series_axis(tmp_path, caplog):
    """A dtseries whose sidecar lacks RepetitionTime takes the step of its series axis."""
    from bidsmask.bids._cifti_runs import cifti_record
    from bidsmask.datagen._cifti import small_grayordinates, write_dtseries

    func = tmp_path / "sub-01" / "func"
    func.mkdir(parents=True)
    bold = write_dtseries(
        func / "sub-01_task-rest_space-fsLR_den-91k_bold.dtseries.nii",
        small_grayordinates(),
        5,
        t_r=0.8,
    )
    (func / "sub-01_task-rest_desc-confounds_timeseries.tsv").write_text("a\n1\n")
    with caplog.at_level("WARNING"):
        record = cifti_record(tmp_path, bold)
    assert record.repetition_time == pytest.approx(0.8)
    assert record.mask is None
    assert "RepetitionTime missing" in caplog.text and bold.name in caplog.text
