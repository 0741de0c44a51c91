import json
import multiprocessing as mp
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bidsmask.bids import writer
from bidsmask.bids.writer import (
    atomic_path,
    bids_uri,
    container_info,
    dataset_description,
    is_run_complete,
    mark_run_complete,
    remove_stale_temporaries,
    write_dataset_description,
    write_json,
    write_nifti,
    write_tsv,
)


def _listing(folder):
    return sorted(p.name for p in Path(folder).iterdir())


def test_atomic_write_failure_leaves_nothing(tmp_path):
    target = tmp_path / "sub-01" / "func" / "x_timeseries.tsv"
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(target) as tmp:
            assert tmp.parent == target.parent
            assert tmp.name.startswith(".x_timeseries.") and tmp.name.endswith(".tsv")
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert _listing(target.parent) == []
    # an existing file survives a failed rewrite untouched
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("new")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert _listing(target.parent) == ["x_timeseries.tsv"]


def test_writer_exception_midway_in_tsv(tmp_path, monkeypatch):
    def broken(self, path, **kwargs):
        Path(path).write_text("partial")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    with pytest.raises(OSError, match="disk full"):
        write_tsv(tmp_path / "a.tsv", pd.DataFrame({"a": ["x"]}))
    assert _listing(tmp_path) == []


@pytest.mark.parametrize("index", [False, True])
def test_float_tables_read_back_exactly(tmp_path, index):
    rng = np.random.default_rng(0)
    values = rng.normal(size=(50, 7)) * 10.0 ** rng.integers(-40, 38, size=(50, 7))
    values[3, 2], values[4, 0], values[5, 5] = np.nan, -0.0, 1e-45
    columns = ["a b", "nan", "Region nanxx", "x", "y", "z", "w"]
    names = pd.Index([f"nan{i}" for i in range(50)], name="node")
    for dtype in (np.float32, np.float64):
        frame = pd.DataFrame(values.astype(dtype), columns=columns, index=names)
        path = write_tsv(tmp_path / f"{dtype.__name__}.tsv", frame, index=index)
        back = pd.read_csv(
            path, sep="\t", na_values="n/a", keep_default_na=False, index_col=0 if index else None
        )
        assert list(back.columns) == columns
        np.testing.assert_array_equal(back.to_numpy().astype(dtype), frame.to_numpy())
        if index:
            assert list(back.index) == list(names) and back.index.name == "node"
        lines = path.read_text().splitlines()
        assert lines[4].split("\t")[2 + index] == "n/a" and len(lines) == 51
        expected = frame.to_csv(sep="\t", na_rep="n/a", index=index, lineterminator="\n")
        if dtype is np.float64:  # the same text as pandas writes
            assert path.read_text() == expected


def test_float_table_with_names_to_quote_uses_pandas(tmp_path):
    frame = pd.DataFrame(np.float32([[1.0, 2.0]]), columns=["a\tb", 'c"d'])
    path = write_tsv(tmp_path / "q.tsv", frame)
    back = pd.read_csv(path, sep="\t")
    assert list(back.columns) == ["a\tb", 'c"d'] and back.to_numpy().tolist() == [[1.0, 2.0]]


def test_tsv_na_and_precision(tmp_path):
    frame = pd.DataFrame({"r1": [0.1, np.nan, 1 / 3], "r2": np.float32([1.5, 2.5, np.nan])})
    path = write_tsv(tmp_path / "t.tsv", frame)
    lines = path.read_text().splitlines()
    assert lines[0] == "r1\tr2"
    assert lines[1] == "0.1\t1.5"
    assert lines[2] == "n/a\t2.5"
    assert lines[3].split("\t") == [repr(1 / 3), "n/a"]
    back = pd.read_csv(path, sep="\t", na_values="n/a")
    np.testing.assert_array_equal(back["r1"].to_numpy(), frame["r1"].to_numpy())


def test_json_and_nifti(tmp_path):
    path = write_json(tmp_path / "a.json", {"b": np.float32(0.5), "a": [np.nan, np.int64(3)]})
    assert path.read_text() == '{\n  "a": [\n    null,\n    3\n  ],\n  "b": 0.5\n}\n'
    img = nib.Nifti1Image(np.arange(24, dtype=np.int16).reshape(2, 3, 4), np.eye(4))
    out = write_nifti(tmp_path / "m_mask.nii.gz", img)
    assert out.read_bytes()[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(nib.load(out).get_fdata(), img.get_fdata())
    assert _listing(tmp_path) == ["a.json", "m_mask.nii.gz"]


def test_bids_uri_and_description(tmp_path):
    fmriprep = tmp_path / "derivatives" / "fmriprep"
    bold = fmriprep / "sub-01" / "func" / "sub-01_task-rest_desc-preproc_bold.nii.gz"
    assert bids_uri(bold, fmriprep, "fmriprep") == (
        "bids:fmriprep:sub-01/func/sub-01_task-rest_desc-preproc_bold.nii.gz"
    )
    desc = dataset_description(
        {"fmriprep": fmriprep}, source_versions={"fmriprep": "23.2.1"}, environ={}
    )
    assert desc["DatasetType"] == "derivative"
    assert desc["BIDSVersion"] >= "1.10.0"
    assert desc["GeneratedBy"][0]["Name"] == "bidsmask"
    assert "Container" not in desc["GeneratedBy"][0]
    assert desc["SourceDatasets"] == [{"URL": "bids:fmriprep:", "Version": "23.2.1"}]
    assert desc["DatasetLinks"] == {"fmriprep": fmriprep.as_uri()}


def test_container_info():
    assert container_info({}) is None
    sing = container_info({"SINGULARITY_CONTAINER": "/images/bidsmask_0.1.sif"})
    assert sing == {"Type": "singularity", "Tag": "bidsmask_0.1.sif"}
    explicit = {"BIDSMASK_CONTAINER_TYPE": "docker", "BIDSMASK_CONTAINER_TAG": "bidsmask:1"}
    assert container_info(explicit) == {"Type": "docker", "Tag": "bidsmask:1"}
    # a Docker image run by Apptainer: the runtime is Singularity, the tag the image's own
    both = {**explicit, "APPTAINER_CONTAINER": "/images/bidsmask.sif"}
    assert container_info(both) == {"Type": "singularity", "Tag": "bidsmask:1"}


def _write_description(args):
    out, n = args
    desc = dataset_description({"fmriprep": "/data/fmriprep"}, environ={})
    for _ in range(n):
        write_dataset_description(out, desc)
        json.loads((Path(out) / "dataset_description.json").read_text())
    return True


def test_concurrent_dataset_description(tmp_path):
    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        assert all(pool.map(_write_description, [(str(tmp_path), 30)] * 2))
    text = (tmp_path / "dataset_description.json").read_text()
    assert json.loads(text)["GeneratedBy"][0]["Name"] == "bidsmask"
    assert _listing(tmp_path) == ["dataset_description.json", "logs"]
    assert _listing(tmp_path / "logs") == [".dataset_description.lock"]


def test_dataset_description_unchanged_is_not_rewritten(tmp_path):
    desc = dataset_description({"fmriprep": tmp_path / "in"}, environ={})
    path = write_dataset_description(tmp_path, desc)
    inode = path.stat().st_ino
    write_dataset_description(tmp_path, desc)
    assert path.stat().st_ino == inode
    write_dataset_description(tmp_path, {**desc, "Name": "other"})
    assert path.stat().st_ino != inode
    assert json.loads(path.read_text())["Name"] == "other"


def test_completion_markers(tmp_path):
    run = "sub-01_task-rest_space-T1w"
    files = [Path("sub-01/func") / f"{run}_{k}.tsv" for k in ("a", "b")]
    assert not is_run_complete(tmp_path, run, files)
    for f in files:
        write_tsv(tmp_path / f, pd.DataFrame({"x": [1]}))
    assert not is_run_complete(tmp_path, run, files)
    marker = mark_run_complete(tmp_path, run, files, info={"Status": "done"})
    assert marker == tmp_path / "logs" / "runs" / f"{run}.json"
    assert json.loads(marker.read_text())["Status"] == "done"
    assert is_run_complete(tmp_path, run, files)
    assert is_run_complete(tmp_path, run, [tmp_path / files[0]])
    # a new expected output (e.g. another atlas) is not covered by the marker
    assert not is_run_complete(tmp_path, run, [*files, "sub-01/func/c.tsv"])
    # a modified or missing output invalidates the marker
    (tmp_path / files[1]).write_text("x\n1\n2\n")
    assert not is_run_complete(tmp_path, run, files)
    (tmp_path / files[1]).unlink()
    assert not is_run_complete(tmp_path, run, files)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        mark_run_complete(tmp_path, run, files)


def test_marker_dir_is_under_logs():
    assert writer.MARKER_DIR.parts == ("logs", "runs")


def test_docstring_examples():
    import doctest

    import bidsmask.bids.writer as module

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


def test_killed_writer_leaves_only_hidden_temporaries(tmp_path):
    import subprocess
    import sys

    target = tmp_path / "sub-01" / "func" / "a_timeseries.tsv"
    code = (
        "import os, signal, sys\n"
        "from bidsmask.bids.writer import atomic_path\n"
        "with atomic_path(sys.argv[1]) as tmp:\n"
        "    tmp.write_text('half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(target)], check=False)
    assert proc.returncode == -9
    left = _listing(target.parent)
    assert len(left) == 1 and left[0].startswith(".a_timeseries.") and not target.exists()
    other = target.with_name("b_timeseries.tsv")
    (other.parent / ".b_timeseries.x.tmp.tsv").write_text("other run")
    assert remove_stale_temporaries([target]) == [target.parent / left[0]]
    assert _listing(target.parent) == [".b_timeseries.x.tmp.tsv"]
