"""The GitHub Actions workflows: valid against the workflow schema, and doing what they claim."""

import importlib.metadata
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"


def _check_jsonschema() -> str:
    venv_bin = str(Path(sys.executable).parent)
    found = shutil.which("check-jsonschema") or shutil.which("check-jsonschema", path=venv_bin)
    assert found, "check-jsonschema not found: install the test extra (pip install -e '.[test]')"
    return found


def _load(name: str) -> dict:
    return YAML(typ="safe").load((WORKFLOWS / name).read_text())


def _run_lines(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


@pytest.mark.parametrize("name", ["tests.yml", "docker.yml"])
def test_workflow_matches_github_schema(name):
    # The schema is bundled with check-jsonschema: this works offline.
    result = subprocess.run(
        [_check_jsonschema(), "--builtin-schema", "vendor.github-workflows", str(WORKFLOWS / name)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_rejects_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("name: broken\non: push\njobs:\n  build:\n    steps: []\n")  # no runs-on
    result = subprocess.run(
        [_check_jsonschema(), "--builtin-schema", "vendor.github-workflows", str(broken)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0


def test_tests_workflow_runs_the_readme_command_on_every_supported_python():
    workflow = _load("tests.yml")
    job = workflow["jobs"]["test"]
    versions = job["strategy"]["matrix"]["python-version"]
    assert versions == ["3.10", "3.11", "3.12", "3.13"]
    classifiers = importlib.metadata.metadata("bidsmask").get_all("Classifier")
    declared = [c.rsplit(" :: ", 1)[1] for c in classifiers if re.fullmatch(r".*:: 3\.\d+", c)]
    assert declared == versions
    readme = (ROOT / "README.md").read_text()
    command = 'pip install -e ".[test]" && pytest -q tests'
    assert command in readme
    assert command in _run_lines(job).splitlines()
    lint = _run_lines(workflow["jobs"]["lint"])
    assert "ruff check ." in lint and "ruff format --check ." in lint
    assert set(workflow["on"]) >= {"push", "pull_request"}


def test_docker_workflow_builds_runs_read_only_and_pushes_only_tags():
    workflow = _load("docker.yml")
    job = workflow["jobs"]["image"]
    steps = job["steps"]
    build = next(s for s in steps if s.get("uses", "").startswith("docker/build-push-action"))
    assert build["with"]["load"] is True
    assert "push" not in build["with"]
    assert "VERSION=${{ steps.version.outputs.version }}" in build["with"]["build-args"]
    run = _run_lines(job)
    assert "hadolint Dockerfile" in run
    assert re.search(r'docker run --rm --read-only "\$IMAGE:\$VERSION" --version', run)
    assert "/version" in run
    demo = next(s["run"] for s in steps if "bidsmask-demo" in s.get("run", ""))
    assert "--read-only" in demo and "--tmpfs /tmp" in demo and "--network none" in demo
    assert '--user "$(id -u):$(id -g)"' in demo
    # A read-only run with neither a writable /tmp nor --work-dir: exit 73, one line, no traceback.
    no_tmp = next(s["run"] for s in steps if "no-tmp" in s.get("run", ""))
    command = no_tmp[no_tmp.index("docker run") : no_tmp.index("|| code=$?")]
    assert "--read-only" in command and "--tmpfs" not in command and "--work-dir" not in command
    assert 'test "$code" -eq 73' in no_tmp and "Traceback" in no_tmp
    # The image also builds with the legacy builder (no BuildKit).
    legacy = next(s["run"] for s in steps if "DOCKER_BUILDKIT=0" in s.get("run", ""))
    assert "docker build" in legacy and "--version" in legacy
    apptainer = next(s["run"] for s in steps if "apptainer run" in s.get("run", ""))
    assert "--cleanenv" in apptainer and "docker-daemon://" in apptainer
    tag_only = "startsWith(github.ref, 'refs/tags/v')"
    for step in steps:
        if "docker push" in step.get("run", "") or "login-action" in step.get("uses", ""):
            assert step["if"] == tag_only
    login = next(s for s in steps if "login-action" in s.get("uses", ""))
    assert all(v.startswith("${{ secrets.") for v in login["with"].values())
    assert "tags" in workflow["on"]["push"]
