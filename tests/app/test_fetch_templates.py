"""bidsmask-fetch-templates, offline: the network is cut in every test, downloads are faked."""

import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from bidsmask.app.config import DEFAULT_ATLAS
from bidsmask.app.fetch_templates import main

ROOT = Path(__file__).parents[2]
TPL = "MNI152NLin6Asym"
SCHAEFER = DEFAULT_ATLAS.split(":")[1]
# The files the default query needs in MNI152NLin6Asym at res-02, named as TemplateFlow names them
# (TemplateFlow has no label-GM probseg for this template at res-02).
PRESENT = (
    f"tpl-{TPL}/tpl-{TPL}_res-02_desc-brain_mask.nii.gz",
    f"tpl-{TPL}/tpl-{TPL}_res-02_atlas-Schaefer2018_desc-{SCHAEFER}_dseg.nii.gz",
    f"tpl-{TPL}/tpl-{TPL}_atlas-Schaefer2018_desc-{SCHAEFER}_dseg.tsv",
)
ARGS = ["--template", TPL, "--resolution", "2"]


def _refuse(*args, **kwargs):
    raise OSError("network access is disabled in the tests")


@pytest.fixture
def no_network(monkeypatch):
    """Cut every route out: name resolution and connections fail as on an offline node."""
    monkeypatch.setattr(socket, "getaddrinfo", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    monkeypatch.setattr(socket.socket, "connect", _refuse)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A TEMPLATEFLOW_HOME holding the files of the default query in MNI152NLin6Asym res-02."""
    home = tmp_path / "templateflow"
    for name in PRESENT:
        path = home / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"fixture:" + name.encode())
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(home))
    return home


class _FakeResponse:
    """What ``requests.get(url, stream=True)`` returns for a TemplateFlow S3 file."""

    status_code = 200

    def __init__(self, url: str) -> None:
        self.content = b"downloaded:" + url.encode()
        self.headers = {"content-length": str(len(self.content))}

    def iter_content(self, block_size):
        yield self.content


@pytest.fixture
def fake_s3(monkeypatch, no_network) -> list[str]:
    """Serve TemplateFlow downloads locally; returns the URLs requested."""
    urls = []

    def get(url, **kwargs):
        urls.append(url)
        return _FakeResponse(url)

    monkeypatch.setattr(requests, "get", get)
    return urls


def test_reports_present_files_and_touches_no_network(home, no_network, capsys):
    assert main(ARGS) == 0
    err = capsys.readouterr().err
    for name in PRESENT:
        assert re.search(rf"^present\s+{re.escape(name)}$", err, re.MULTILINE), err
        assert (home / name).read_bytes() == b"fixture:" + name.encode()
    assert f"TEMPLATEFLOW_HOME={home}: 3 files present, 0 downloaded." in err


def test_missing_file_offline_fails_with_one_clear_line(home, no_network, capsys):
    (home / PRESENT[1]).unlink()
    assert main(ARGS) == 69
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [ln for ln in err.splitlines() if "error" in ln]
    assert line.startswith(f"bidsmask-fetch-templates: error: cannot download {PRESENT[1]}")
    assert "no internet access" in line and f"TEMPLATEFLOW_HOME={home}" in line


def test_console_script_offline_exit_code(home, tmp_path):
    (home / PRESENT[0]).write_bytes(b"")  # an empty placeholder, as TemplateFlow leaves them
    # A proxy on a closed loopback port: the download fails at once, nothing leaves the machine.
    proxy = "http://127.0.0.1:9"
    env = {
        "TEMPLATEFLOW_HOME": str(home),
        "HTTPS_PROXY": proxy,
        "https_proxy": proxy,
        "HTTP_PROXY": proxy,
        "http_proxy": proxy,
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "-m", "bidsmask.app.fetch_templates", *ARGS],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 69, result.stderr
    assert "Traceback" not in result.stderr
    assert f"error: cannot download {PRESENT[0]} from TemplateFlow" in result.stderr


def test_downloads_what_is_missing_and_keeps_the_rest(home, fake_s3, capsys):
    (home / PRESENT[1]).unlink()
    assert main(ARGS) == 0
    assert fake_s3 == [f"https://templateflow.s3.amazonaws.com/{PRESENT[1]}"]
    assert (home / PRESENT[1]).read_bytes() == b"downloaded:" + fake_s3[0].encode()
    assert (home / PRESENT[0]).read_bytes().startswith(b"fixture:")
    err = capsys.readouterr().err
    assert re.search(rf"^downloaded\s+{re.escape(PRESENT[1])}$", err, re.MULTILINE)
    assert "2 files present, 1 downloaded." in err
    # A second run downloads nothing.
    assert main(ARGS) == 0
    assert len(fake_s3) == 1


def _dockerfile_fetch_args() -> list[str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    (line,) = [ln for ln in text.splitlines() if "bidsmask-fetch-templates" in ln]
    command = line.split("bidsmask-fetch-templates", 1)[1].split("&&")[0]
    return shlex.split(command)


def test_image_build_command_matches_real_templateflow_files(tmp_path, monkeypatch, fake_s3):
    # An empty TEMPLATEFLOW_HOME gets TemplateFlow's own list of files (shipped with the
    # templateflow package), so every query of the Dockerfile's command is checked against
    # the real TemplateFlow names.
    home = tmp_path / "empty-home"
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(home))
    args = _dockerfile_fetch_args()
    assert "--atlas" in args
    assert main(args) == 0
    names = {url.rsplit("/", 1)[1] for url in fake_s3}
    for template in ("MNI152NLin2009cAsym", "MNI152NLin6Asym"):
        for res in ("01", "02"):
            assert f"tpl-{template}_res-{res}_desc-brain_mask.nii.gz" in names
            assert (
                f"tpl-{template}_res-{res}_atlas-Schaefer2018_desc-{SCHAEFER}_dseg.nii.gz" in names
            )
    assert "tpl-MNI152NLin2009cAsym_res-02_label-GM_probseg.nii.gz" in names
    for atlas in args[args.index("--atlas") + 1 :]:
        if atlas.startswith("-"):
            break
        name, _, desc = atlas.partition(":")
        assert any(f"_atlas-{name}_desc-{desc}_" in n for n in names), atlas
    assert all((home / url.split(".com/")[1]).stat().st_size > 0 for url in fake_s3)


def test_unknown_templateflow_atlas_is_a_usage_error(home, no_network, capsys):
    assert main([*ARGS, "--atlas", "Schaefer2018:999Parcels7Networks"]) == 64
    err = capsys.readouterr().err
    assert "TemplateFlow has no image of atlas Schaefer2018:999Parcels7Networks" in err


@pytest.mark.parametrize(
    "args",
    [["--atlas", "Power2011"], ["--atlas", "not an atlas"], ["--resolution", "two"]],
)
def test_bad_options_exit_64(args, home, no_network, capsys):
    assert main(args) == 64
    assert "error:" in capsys.readouterr().err


def test_unwritable_home_exits_73(tmp_path, monkeypatch, no_network, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(blocker / "templateflow"))
    assert main(ARGS) == 73
    err = capsys.readouterr().err
    assert "cannot be created or written" in err and "Traceback" not in err


def test_help_lists_exit_codes(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "exit codes:" in out and "69" in out and "73" in out
