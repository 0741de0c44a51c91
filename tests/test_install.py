"""The container image's install path, without a Docker engine.

Like the Dockerfile: copy pyproject.toml, README.md, LICENSE and bidsmask/ (nothing else), build
the wheel, install it into a fresh virtual environment that has nothing else (dependencies come
from the package index, through pip's cache), then run the installed commands from outside the
source tree.
"""

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
    _ok(_run([scripts / "python", "-m", "pip", "install", "--quiet", wheel], cwd=prefix))
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
