"""Command-line parsing, validation into Config, help text and exit codes of ``bidsmask``."""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from bidsmask.app import cli
from bidsmask.app import config as cfg
from bidsmask.app.config import Config, Space
from bidsmask.app.exitcodes import MissingInputError, UsageError, exit_code_for
from bidsmask.app.parser import build_parser
from bidsmask.app.progress import Progress, RunOutcome, logging_to

HERE = Path(__file__).parent


@pytest.fixture
def fmriprep(tmp_path: Path) -> Path:
    """A folder that looks like fMRIPrep output (its dataset_description names fMRIPrep)."""
    root = tmp_path / "fmriprep"
    root.mkdir()
    (root / "dataset_description.json").write_text(
        json.dumps(
            {
                "Name": "fMRIPrep output",
                "BIDSVersion": "1.4.0",
                "DatasetType": "derivative",
                "GeneratedBy": [{"Name": "fMRIPrep", "Version": "23.2.0"}],
            }
        )
    )
    return root


def test_help_shows_every_default_and_the_exit_codes(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for default in (
        "Default: MNI152NLin2009cAsym.",
        "Default: Schaefer2018:400Parcels7Networks.",
        "Default: simple.",
        "Default: zscore_sample.",
        "Default: fmriprep.",
        "Default: correlation.",
        "Default: 0.5.",
        "Default: 5.",
        "Default: 1.",
    ):
        assert default in text
    for code in ("18 ", "64 ", "65 ", "66 ", "73 "):
        assert code in text
    # every option's help says what it defaults to (or is a flag that says "Default: off")
    for action in build_parser()._actions:
        if action.option_strings and action.dest not in ("help", "version", "verbose", "quiet"):
            assert "Default" in action.help, action.dest


def test_version(capsys):
    from bidsmask import __version__

    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"bidsmask {__version__}"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--radius", "-3"], "'-3' is not a positive radius in mm"),
        (["--min-coverage", "1.5"], "'1.5' is not a fraction between 0 and 1"),
        (["--nprocs", "0"], "'0' is not a positive number of processes"),
        (["--space", "MNI:res=2"], "invalid space 'MNI:res=2'"),
        (["--participant-label", "sub-0_1"], "'sub-0_1' is not a participant label"),
        (["--connectivity", "pearson"], "invalid choice: 'pearson'"),
        (["--mask", "brain"], "invalid choice: 'brain'"),
    ],
)
def test_bad_option_values_are_named_and_exit_64(args, message, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["in", "out", "participant", *args])
    assert exc.value.code == 64
    assert message in capsys.readouterr().err


def test_bids_filter_file_is_validated(tmp_path, capsys):
    bad = tmp_path / "filters.json"
    bad.write_text('["bold"]')
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["in", "out", "group", "--bids-filter-file", str(bad)])
    assert exc.value.code == 64
    assert "expected a JSON object of queries" in capsys.readouterr().err


def test_parse_args_builds_the_config(fmriprep, tmp_path):
    filters = tmp_path / "filters.json"
    filters.write_text('{"bold": {"acquisition": "mb4"}}')
    config = cli.parse_args(
        [
            str(fmriprep),
            str(tmp_path / "out"),
            "participant",
            "--participant_label",
            "sub-01",
            "02",
            "01",
            "--session-label",
            "ses-1",
            "--task",
            "task-rest",
            "--space",
            "MNI152NLin2009cAsym:res-02",
            "T1w",
            "--strategy",
            "simple",
            "24P+gsr",
            "--standardize",
            "none",
            "--connectivity",
            "none",
            "--bids-filter-file",
            str(filters),
            "-vv",
        ]
    )
    assert isinstance(config, Config)
    assert config.fmriprep_dir == fmriprep
    assert config.participant_label == ("01", "02")
    assert config.session_label == ("1",)
    assert config.task == ("rest",)
    assert config.spaces == (Space("MNI152NLin2009cAsym", "2"), Space("T1w"))
    assert config.strategies == ("simple", "24P+gsr")
    assert config.standardize is None
    assert config.connectivity == ()
    assert config.bids_filters == {"bold": {"acquisition": "mb4"}}
    assert config.verbosity == 2
    with pytest.raises(AttributeError):
        config.nprocs = 4  # frozen


def test_defaults(fmriprep, tmp_path):
    config = cli.parse_args([str(fmriprep), str(tmp_path / "out"), "participant"])
    assert config.spaces == (Space("MNI152NLin2009cAsym"),)
    assert config.atlases == ("Schaefer2018:400Parcels7Networks",)
    assert config.strategies == ("simple",)
    assert config.standardize == "zscore_sample"
    assert config.mask == "fmriprep"
    assert config.connectivity == ("correlation",)
    assert (config.nprocs, config.overwrite, config.verbosity) == (1, False, 0)


# Every list option, two values, and what the Config holds for them.
LIST_OPTIONS = [
    ("--participant-label", ["sub-02", "01"], "participant_label", ("02", "01")),
    ("--participant_label", ["02", "sub-01"], "participant_label", ("02", "01")),
    ("--session-label", ["1", "ses-2"], "session_label", ("1", "2")),
    ("--task", ["rest", "task-nback"], "task", ("rest", "nback")),
    (
        "--space",
        ["T1w", "MNI152NLin6Asym:res-2"],
        "spaces",
        (Space("T1w"), Space("MNI152NLin6Asym", "2")),
    ),
    ("--atlas", ["Schaefer2018:100Parcels7Networks", "Power2011"], "atlases", None),
    (
        "--atlas-dataset",
        [str(HERE), str(HERE.parent)],
        "atlas_datasets",
        (HERE.resolve(), HERE.parent.resolve()),
    ),
    ("--strategy", ["36P", "simple"], "strategies", None),
    ("--connectivity", ["covariance", "correlation"], "connectivity", None),
]


@pytest.mark.parametrize("flag, values, field, expected", LIST_OPTIONS)
def test_list_options_accumulate_when_repeated(fmriprep, tmp_path, flag, values, field, expected):
    base = [str(fmriprep), str(tmp_path / "out"), "participant"]
    together = cli.parse_args([*base, flag, *values])
    repeated = cli.parse_args([*base, flag, values[0], flag, values[1]])
    assert getattr(together, field) == getattr(repeated, field)
    assert getattr(repeated, field) == (expected or tuple(values))
    # Repeating a value keeps it once; a given value replaces the default, not adds to it.
    thrice = cli.parse_args([*base, flag, *values, flag, values[0]])
    assert getattr(thrice, field) == getattr(together, field)
    once = cli.parse_args([*base, flag, values[0]])
    assert getattr(once, field) == (expected or tuple(values))[:1]


def test_participant_label_spellings_accumulate_together(fmriprep, tmp_path):
    argv = [str(fmriprep), str(tmp_path / "out"), "participant"]
    argv += ["--participant-label", "sub-02", "--participant_label", "01", "03"]
    assert cli.parse_args(argv).participant_label == ("02", "01", "03")


def test_every_list_option_is_repeatable_and_tested():
    from bidsmask.app import fetch_templates

    tested = {flag for flag, *_ in LIST_OPTIONS}
    for parser in (build_parser(), fetch_templates._build_parser()):
        for action in parser._actions:
            if action.nargs in ("+", "*") and action.option_strings:
                # "extend": --opt A B and --opt A --opt B mean the same; no default list that
                # argparse would extend (defaults are filled in after parsing).
                assert isinstance(action, argparse._ExtendAction), action.option_strings
                assert action.default in (None, []), action.option_strings
                if parser.prog == "bidsmask":
                    assert set(action.option_strings) <= tested, action.option_strings


def test_fetch_templates_list_options_accumulate(monkeypatch):
    from bidsmask.app import fetch_templates

    calls = []
    monkeypatch.setattr(
        fetch_templates,
        "fetch",
        lambda *args: calls.append(args) or {"present": [], "downloaded": []},
    )
    argv = ["--atlas", "DiFuMo:64dimensions", "--atlas", "HOSPA:th25", "--template", "A", "B"]
    assert (
        fetch_templates.main([*argv, "--template", "C", "--resolution", "2", "--resolution", "1"])
        == 0
    )
    assert fetch_templates.main([]) == 0
    (atlases, templates, resolutions), defaults = calls
    assert atlases == [cfg.DEFAULT_ATLAS, "DiFuMo:64dimensions", "HOSPA:th25"]
    assert (templates, resolutions) == (["A", "B", "C"], [2, 1])
    assert defaults[1:] == (list(fetch_templates.DEFAULT_TEMPLATES), [1, 2])


def test_fmriprep_folder_is_found_in_derivatives(fmriprep, tmp_path):
    bids = tmp_path / "bids"
    (bids / "derivatives").mkdir(parents=True)
    fmriprep.rename(bids / "derivatives" / "fmriprep")
    config = cli.parse_args([str(bids), str(tmp_path / "out"), "participant"])
    assert config.fmriprep_dir == bids / "derivatives" / "fmriprep"
    with pytest.raises(MissingInputError, match="--derivatives folder not found"):
        cli.parse_args(
            [str(bids), str(tmp_path / "out"), "participant", "--derivatives", str(tmp_path / "x")]
        )


@pytest.mark.parametrize(
    "args, error, message",
    [
        (["--strategy", "simplest"], UsageError, "unknown strategy 'simplest'"),
        (["--strategy", "nowhere.json"], MissingInputError, "strategy file not found"),
        (["--strategy", "acompcor_gsr", "acompcor+gsr"], UsageError, "same desc-acompcorgsr"),
        (["--atlas", "Schaefer2018:400 Parcels"], UsageError, "Unknown atlas"),
        (["--atlas", "nowhere/atlas.nii.gz"], MissingInputError, "Atlas file not found"),
    ],
)
def test_strategies_and_atlases_are_checked(fmriprep, tmp_path, args, error, message):
    with pytest.raises(error, match=message):
        cli.parse_args([str(fmriprep), str(tmp_path / "out"), "participant", *args])


def test_strategy_file_is_made_absolute(fmriprep, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.json").write_text("{}")
    config = cli.parse_args([str(fmriprep), "out", "participant", "--strategy", "mine.json"])
    assert config.strategies == (str(tmp_path / "mine.json"),)
    assert config.output_dir == tmp_path / "out"


@pytest.mark.parametrize("where", ["equal", "inside"])
def test_output_dir_in_the_input_is_refused(fmriprep, where, caplog):
    out = fmriprep if where == "equal" else fmriprep / "derivatives" / "bidsmask"
    with pytest.raises(UsageError, match="inputs are never written to"):
        cli.parse_args([str(fmriprep), str(out), "participant"])
    assert cli.main([str(fmriprep), str(out), "participant"]) == 64
    assert not (fmriprep / "derivatives").exists()


def test_band_pass_order_and_connectivity_none_are_checked(fmriprep, tmp_path):
    out = str(tmp_path / "out")
    with pytest.raises(UsageError, match="--low-pass 0.01 Hz must be above --high-pass 0.1 Hz"):
        cli.parse_args(
            [str(fmriprep), out, "participant", "--low-pass", "0.01", "--high-pass", "0.1"]
        )
    with pytest.raises(UsageError, match="'none' cannot be combined"):
        cli.parse_args([str(fmriprep), out, "participant", "--connectivity", "none", "covariance"])


def test_missing_bids_dir_exits_66(tmp_path, capsys):
    assert cli.main([str(tmp_path / "missing"), str(tmp_path / "out"), "participant"]) == 66
    assert "BIDS_DIR not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unwritable_output_dir_exits_73(fmriprep, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert cli.main([str(fmriprep), str(blocker / "out"), "participant"]) == 73
    assert "cannot be created or written" in capsys.readouterr().err


def test_config_is_saved_as_json(fmriprep, tmp_path):
    config = cli.parse_args([str(fmriprep), str(tmp_path / "out"), "group", "--radius", "6"])
    path = config.save()
    record = json.loads(path.read_text())
    assert path.parent == tmp_path / "out" / "logs"
    assert record["radius"] == 6.0
    assert record["spaces"] == ["MNI152NLin2009cAsym"]
    assert record["argv"] == [str(fmriprep), str(tmp_path / "out"), "group", "--radius", "6"]
    assert "bidsmask_version" in record


def test_exit_code_mapping():
    assert exit_code_for(FileNotFoundError("x")) == 66
    assert exit_code_for(ValueError("x")) == 65
    assert exit_code_for(PermissionError("x")) == 73
    assert exit_code_for(RuntimeError("x")) == 1


def test_progress_lines_and_summary(tmp_path, caplog):
    progress = Progress(3, tmp_path)
    with caplog.at_level(logging.INFO, logger="bidsmask"):
        progress.report(RunOutcome("sub-01 task-rest", "done", 1.25, outputs=["a", "b"]))
        progress.report(RunOutcome("sub-02 task-rest", "skipped", 0.5, reason="3 volumes left"))
        progress.report(RunOutcome("sub-03 task-rest", "up-to-date"))
        progress.log_summary()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "[1/3] sub-01 task-rest … done (1.2 s)"
    assert lines[1] == "[2/3] sub-02 task-rest … skipped (0.5 s): 3 volumes left"
    assert lines[2] == "[3/3] sub-03 task-rest … up-to-date"
    assert "1 done, 1 already complete, 1 skipped, 0 failed; 2 file(s) written" in lines[3]


def test_console_verbosity(capsys, tmp_path):
    log_file = tmp_path / "run.log"
    with logging_to(0, log_file):
        logging.getLogger("bidsmask.app.participant").info("progress line")
        logging.getLogger("bidsmask.masking").info("library detail")
        logging.getLogger("bidsmask.masking").warning("library warning")
    err = capsys.readouterr().err
    assert "progress line" in err
    assert "library detail" not in err
    assert "WARNING: library warning" in err
    assert "library detail" in log_file.read_text()  # the log file keeps everything
    with logging_to(-1):
        logging.getLogger("bidsmask.app.participant").info("progress line")
    assert capsys.readouterr().err == ""
    assert not logging.getLogger("bidsmask").handlers  # handlers removed on exit


def test_help_does_not_import_the_heavy_layers():
    code = (
        "import sys; from bidsmask.app import cli\n"
        "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('bids', 'templateflow', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"
