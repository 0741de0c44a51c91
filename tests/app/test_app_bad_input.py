"""Unreadable inputs end in one line naming the file and a documented exit code, never in 1.

Each bad input goes through the command line (``main()`` in-process, or a subprocess where the
real stderr matters); :func:`bidsmask.app.exitcodes.input_error` is the one place that turns the
libraries' errors into those lines.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bidsmask.app.cli import main
from bidsmask.app.exitcodes import DataError, input_error, unreadable_input
from bidsmask.datagen import (
    atlas_brain_models,
    block_parcellation,
    make_fmriprep_dataset,
    small_grayordinates,
    write_dlabel,
)

MNI = "space-MNI152NLin2009cAsym_res-2"
STEM = f"sub-01_task-rest_{MNI}"
BOLD = f"{STEM}_desc-preproc_bold.nii.gz"
MASK = f"{STEM}_desc-brain_mask.nii.gz"
CONFOUNDS = "sub-01_task-rest_desc-confounds_timeseries.tsv"
ARGS = ["--atlas", "Schaefer2018:100Parcels7Networks", "--task", "rest"]


@pytest.fixture
def run(dataset, tmp_path, templateflow_home, capsys):
    """Run the participant level in-process; return the exit code and stderr."""

    def run_(*args: str) -> tuple[int, str]:
        code = main([str(dataset), str(tmp_path / "out"), "participant", *ARGS, *args])
        return code, capsys.readouterr().err

    return run_


def _failure_line(err: str) -> str:
    """The run's one-line failure (the progress line), checked for what the user needs."""
    assert "Traceback" not in err and "Unexpected error" not in err, err
    (line,) = [ln for ln in err.splitlines() if "failed (" in ln]
    return line


def _uncompressed_nifti(path: Path) -> None:
    img = nib.load(path)
    plain = path.with_name("plain.nii")
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), img.affine, img.header), plain)
    plain.replace(path)


def _random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(50_000))


def _gzip_of_random_bytes(path: Path) -> None:
    path.write_bytes(gzip.compress(np.random.default_rng(0).bytes(50_000)))


def _truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _header_only(path: Path) -> None:
    path.write_text(path.read_text().splitlines()[0] + "\n")


def _half_the_rows(path: Path) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:41]) + "\n")


@pytest.mark.parametrize(
    "name, damage, message",
    [
        (BOLD, _uncompressed_nifti, "is an uncompressed NIfTI renamed .gz: compress it with gzip"),
        (BOLD, _random_bytes, "is not gzip-compressed although its name ends in .gz"),
        (BOLD, _gzip_of_random_bytes, "cannot be read as an image"),
        (BOLD, _truncated, "is truncated"),
        (BOLD, _empty, "is empty"),
        (MASK, _random_bytes, "is not a gzip file"),
        (MASK, _truncated, "The file may be truncated or corrupt"),
        (MASK, _uncompressed_nifti, "is not a gzip file"),
        (CONFOUNDS, _empty, "is empty (no header row, no data)"),
        (CONFOUNDS, _random_bytes, "is not UTF-8 text"),
        (CONFOUNDS, _header_only, "has 0 rows but"),
        (CONFOUNDS, _half_the_rows, "has 40 rows but"),
    ],
)
def test_unreadable_input_file_exits_65_naming_it(dataset, run, name, damage, message):
    path = dataset / "sub-01" / "func" / name
    damage(path)
    code, err = run()
    assert code == 65
    line = _failure_line(err)
    assert str(path) in line and message in line


def test_confounds_lacking_a_column_name_it_the_strategy_and_the_file(dataset, run):
    path = dataset / "sub-01" / "func" / CONFOUNDS
    table = pd.read_csv(path, sep="\t")
    table.drop(columns=["global_signal"]).to_csv(path, sep="\t", index=False, na_rep="n/a")
    code, err = run("--strategy", "simple", "36P")
    assert code == 65
    line = _failure_line(err)
    assert (
        f"Confounds file {path} lacks the column 'global_signal', needed by strategy '36P'" in line
    )


def test_atlas_outside_the_mask_names_the_atlas_and_the_run(dataset, run, tmp_path):
    mask = nib.load(dataset / "sub-01" / "func" / MASK)
    corner = np.zeros(mask.shape, dtype=np.int16)
    corner[:2, :2, :2] = 1  # a region in the corner of the grid, outside the brain
    atlas = tmp_path / "corner_dseg.nii.gz"
    nib.save(nib.Nifti1Image(corner, mask.affine), atlas)
    code, err = run("--atlas", str(atlas))
    assert code == 65
    line = _failure_line(err)
    assert f"--atlas {atlas} cannot be used for run {STEM}" in line
    assert "No label left after applying mask" in line


def test_coordinates_outside_the_brain_name_the_atlas_and_the_run(run, tmp_path):
    coords = tmp_path / "far.csv"
    coords.write_text("x,y,z\n500,500,500\n-600,600,600\n")
    code, err = run("--atlas", str(coords))
    assert code == 65
    assert f"--atlas {coords} cannot be used for run {STEM}" in _failure_line(err)


@pytest.mark.parametrize(
    "damaged, damage, message",
    [
        ("image", _random_bytes, "is not gzip-compressed"),
        ("image", _truncated, "cannot be read as an image"),
        ("table", _empty, "is empty (no header row, no data)"),
        ("table", _random_bytes, "is not UTF-8 text"),
    ],
)
def test_unreadable_local_atlas_exits_65_naming_the_file(
    run, tmp_path, templateflow_dir, damaged, damage, message
):
    # A local copy of the fixture's Schaefer atlas, its label table beside it.
    name = "atlas-Schaefer2018_desc-100Parcels7Networks_dseg"
    atlas = {"image": tmp_path / "mine_dseg.nii.gz", "table": tmp_path / "mine_dseg.tsv"}
    shutil.copy(next(templateflow_dir.rglob(f"*res-02_{name}.nii.gz")), atlas["image"])
    shutil.copy(next(templateflow_dir.rglob(f"*_{name}.tsv")), atlas["table"])
    damage(atlas[damaged])
    code, err = run("--atlas", str(atlas["image"]))
    assert code == 65
    assert "Traceback" not in err and "[1/" not in err  # before any run starts
    (line,) = [ln for ln in err.splitlines() if message in ln]
    assert line.startswith(f"ERROR: {atlas[damaged]} ")


def test_group_level_names_a_damaged_participant_output(dataset, run, tmp_path, capsys):
    assert run()[0] == 0
    out = tmp_path / "out"
    (relmat,) = out.glob("sub-01/func/*_relmat.tsv")
    _empty(relmat)
    assert main([str(dataset), str(out), "group"]) == 65
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Unexpected error" not in err
    (line,) = [ln for ln in err.splitlines() if str(relmat) in ln]
    assert line == f"ERROR: {relmat} is empty (no header row, no data); re-create it."


@pytest.fixture(scope="module")
def cifti_dataset(tmp_path_factory, mni_brain_mask) -> Path:
    """A small fMRIPrep dataset whose runs are also fsLR grayordinates, and a dlabel atlas."""
    root = tmp_path_factory.mktemp("cifti")
    make_fmriprep_dataset(root / "fmriprep", mni_brain_mask, n_volumes=30, grayordinates="small")
    axis = atlas_brain_models(small_grayordinates(), "subcortex")
    write_dlabel(root / "atlas-Sub_dseg.dlabel.nii", axis, block_parcellation(axis, 0, 2))
    return root


@pytest.mark.parametrize("kept", [2_000, 30_000])  # header extension cut / data cut
def test_truncated_dtseries_exits_65_naming_it(cifti_dataset, tmp_path, kept, capsys):
    data = tmp_path / "fmriprep"
    shutil.copytree(cifti_dataset / "fmriprep", data)
    dtseries = data / "sub-01" / "func" / "sub-01_task-rest_space-fsLR_den-91k_bold.dtseries.nii"
    dtseries.write_bytes(dtseries.read_bytes()[:kept])
    atlas = cifti_dataset / "atlas-Sub_dseg.dlabel.nii"
    args = [str(data), str(tmp_path / "out"), "participant", "--participant-label", "01"]
    assert main([*args, "--space", "fsLR", "--atlas", str(atlas), "--task", "rest"]) == 65
    line = _failure_line(capsys.readouterr().err)
    assert str(dtseries) in line and "cannot" in line


def _cli(*args: str, env: dict | None = None, no_temp: bool = False) -> subprocess.CompletedProcess:
    """Run ``bidsmask`` in a subprocess; ``no_temp``: as if no temporary folder were usable."""
    code = "import os, sys, tempfile\n"
    if no_temp:  # what tempfile finds in a read-only container without --tmpfs /tmp
        code += "tempfile._candidate_tempdir_list = lambda: [os.environ['TMPDIR']]\n"
        code += "tempfile.tempdir = None\n"
    code += "from bidsmask.app.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=False
    )


def test_bad_bold_in_a_subprocess_has_no_traceback(dataset, tmp_path, templateflow_home):
    _uncompressed_nifti(dataset / "sub-01" / "func" / BOLD)
    result = _cli(str(dataset), str(tmp_path / "out"), "participant", *ARGS, env=dict(os.environ))
    assert result.returncode == 65
    assert "Traceback" not in result.stderr
    assert f"{dataset / 'sub-01' / 'func' / BOLD} is not gzip-compressed" in result.stderr


def test_no_usable_temporary_folder_exits_73_saying_what_to_pass(
    dataset, tmp_path, templateflow_home
):
    # TMPDIR points nowhere and tempfile has no fallback (in a read-only container, /tmp,
    # /var/tmp and the current folder are not writable): no usable temporary directory.
    env = {**os.environ, "TMPDIR": str(tmp_path / "nowhere")}
    out = tmp_path / "out"
    result = _cli(str(dataset), str(out), "participant", *ARGS, env=env, no_temp=True)
    assert result.returncode == 73, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = [ln for ln in result.stderr.splitlines() if "temporary folder" in ln]
    assert "pass --work-dir PATH" in line and "--tmpfs /tmp" in line
    # The advice works: with --work-dir the same run completes.
    work = ["--work-dir", str(tmp_path / "work")]
    result = _cli(str(dataset), str(out), "participant", *ARGS, *work, env=env, no_temp=True)
    assert result.returncode == 0, result.stderr
    assert len(list(out.rglob("*_timeseries.tsv"))) == 1


@pytest.mark.parametrize(
    "error, strategy, expected",
    [
        (
            KeyError("['csf', 'csf_power2'] not in index"),
            "36P",
            "lacks the columns 'csf', 'csf_power2'",
        ),
        (KeyError("global_signal"), "gsr_only", "lacks the column 'global_signal'"),
        (
            pd.errors.ParserError("Error tokenizing data"),
            None,
            "is not a valid tab-separated table",
        ),
        (EOFError("Compressed file ended"), None, "cannot be read as an image"),
    ],
)
def test_input_error_names_the_file(tmp_path, error, strategy, expected):
    path = tmp_path / "input.tsv"
    mapped = input_error(error, path, strategy)
    assert isinstance(mapped, DataError) and mapped.exit_code == 65
    assert str(mapped).startswith(f"Confounds file {path}" if strategy else str(path))
    assert expected in str(mapped) and "\n" not in str(mapped)


@pytest.mark.parametrize(
    "error, strategy",
    [(KeyError("x"), None), (RuntimeError("bug"), None), (DataError("already"), "simple")],
)
def test_input_error_leaves_other_errors_alone(error, strategy):
    assert input_error(error, "input.tsv", strategy) is None


def test_unreadable_input_finds_the_file_in_the_traceback(tmp_path):
    empty = tmp_path / "table.tsv"
    empty.write_text("")
    try:
        pd.read_csv(empty, sep="\t")
    except pd.errors.EmptyDataError as exc:
        mapped = unreadable_input(exc)
    assert isinstance(mapped, DataError) and str(mapped).startswith(f"{empty} is empty")
    assert unreadable_input(pd.errors.EmptyDataError("not raised by read_csv")) is None
