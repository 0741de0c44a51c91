"""The container image's install path, without a Docker engine.

Like the Dockerfile: copy pyproject.toml, README.md, LICENSE and bidsmask/ (nothing else), build
the wheel, install it into a fresh virtual environment that has nothing else (dependencies come
from the package index, through pip's cache), then run the installed commands from outside the
source tree.
"""

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

import bidsmask

ROOT = Path(__file__).parents[1]
BUILD_CONTEXT = ("pyproject.toml", "README.md", "LICENSE", "bidsmask")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.update(extra)
    return env


def _run(args, cwd, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"{result.args}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    context = tmp_path_factory.mktemp("context")
    for name in BUILD_CONTEXT:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, context / name)
    out = tmp_path_factory.mktemp("wheels")
    _ok(
        _run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", out, context],
            cwd=context,
        )
    )
    (built,) = out.glob("bidsmask-*.whl")
    return built


@pytest.fixture(scope="module")
def bin_dir(wheel, tmp_path_factory) -> Path:
    prefix = tmp_path_factory.mktemp("venv") / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(prefix)
    scripts = prefix / "bin"
    # --no-compile: modules are byte-compiled when first imported, not all of them up front.
    install = ["install", "--quiet", "--no-compile", wheel]
    _ok(_run([scripts / "python", "-m", "pip", *install], cwd=prefix))
    return scripts


def test_wheel_holds_every_package_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "bidsmask").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert expected <= names, sorted(expected - names)
    assert f"bidsmask-{bidsmask.__version__}.dist-info/licenses/LICENSE" in names
    assert not any(n.startswith(("tests/", "benchmarks/", "boutiques/")) for n in names)


def test_fresh_venv_has_only_the_wheel_and_its_dependencies(bin_dir, tmp_path):
    located = _ok(
        _run(
            [bin_dir / "python", "-c", "import bidsmask, sys; print(bidsmask.__file__)"],
            cwd=tmp_path,
        )
    )
    assert "site-packages" in located.stdout
    assert str(ROOT) not in located.stdout
    frozen = _ok(_run([bin_dir / "python", "-m", "pip", "list", "--format=freeze"], cwd=tmp_path))
    installed = {line.split("==")[0].lower() for line in frozen.stdout.split()}
    assert "bidsmask" in installed
    assert not installed & {"pytest", "nilearn", "scikit-learn", "boutiques"}


def test_installed_commands_run(bin_dir, tmp_path):
    version = _ok(_run([bin_dir / "bidsmask", "--version"], cwd=tmp_path))
    assert version.stdout.strip() == f"bidsmask {bidsmask.__version__}"
    usage = _ok(_run([bin_dir / "bidsmask", "--help"], cwd=tmp_path))
    assert usage.stdout.startswith("usage: bidsmask")
    assert "--participant-label" in usage.stdout
    bad = _run(
        [bin_dir / "bidsmask", str(tmp_path), str(tmp_path / "out"), "sideways"], cwd=tmp_path
    )
    assert bad.returncode == 64
    assert "Traceback" not in bad.stderr
    # The other console scripts the image and its CI use.
    for script in ("bidsmask-fetch-templates", "bidsmask-demo"):
        helped = _ok(_run([bin_dir / script, "--help"], cwd=tmp_path))
        assert helped.stdout.startswith(f"usage: {script}")


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
    }


def test_participant_and_group_levels_from_the_wheel(
    bin_dir, fmriprep_dir, templateflow_dir, tmp_path
):
    # As in the image: TEMPLATEFLOW_HOME holds the files already, caches point to a scratch
    # folder, and only OUTPUT_DIR, the work dir and that scratch folder may be written to.
    templateflow = tmp_path / "templateflow"
    shutil.copytree(templateflow_dir, templateflow)
    home, scratch, out, work = (tmp_path / name for name in ("home", "tmp", "out", "work"))
    home.mkdir()
    scratch.mkdir()
    env = {
        "TEMPLATEFLOW_HOME": str(templateflow),
        "HOME": str(home),
        "TMPDIR": str(scratch),
        "XDG_CACHE_HOME": str(scratch / ".cache"),
        "MPLCONFIGDIR": str(scratch / ".matplotlib"),
    }
    inputs_before, templates_before = _snapshot(fmriprep_dir), _snapshot(templateflow)
    atlas = ["--atlas", "Schaefer2018:100Parcels7Networks"]
    participant = [bin_dir / "bidsmask", fmriprep_dir, out, "participant", "--participant-label"]
    _ok(_run([*participant, "02", *atlas, "--work-dir", work, "--nprocs", "2"], tmp_path, **env))
    _ok(_run([bin_dir / "bidsmask", fmriprep_dir, out, "group", *atlas], tmp_path, **env))

    series = sorted(out.glob("sub-02/ses-*/func/*_stat-mean_desc-simple_timeseries.tsv"))
    assert len(series) == 6  # sub-02: 2 sessions x (task-rest, task-nback run-1 and run-2)
    rows = series[0].read_text().splitlines()
    assert len(rows[0].split("\t")) == 100
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["GeneratedBy"][0]["Version"] == bidsmask.__version__
    assert len((out / "qc.tsv").read_text().splitlines()) == 1 + 6
    assert _snapshot(fmriprep_dir) == inputs_before
    assert _snapshot(templateflow) == templates_before
    assert list(home.iterdir()) == []
