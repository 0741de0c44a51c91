"""The Boutiques descriptor: generated from the parser, valid, BIDS-App and CBRAIN ready."""

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

import pytest
from boutiques.validator import DescriptorValidationError

import bidsmask
from bidsmask.app.boutiques import build_descriptor, dumps, main
from bidsmask.app.parser import build_parser
from boutiques import bosh

ROOT = Path(__file__).parents[2]
DESCRIPTOR = ROOT / "boutiques" / "bidsmask.json"


@pytest.fixture(scope="module")
def descriptor() -> dict:
    return json.loads(DESCRIPTOR.read_text())


def _inputs(descriptor: dict) -> dict[str, dict]:
    return {entry["id"]: entry for entry in descriptor["inputs"]}


def _without_descriptions(value):
    """The descriptor minus its free text: what bosh and CBRAIN execute."""
    if isinstance(value, dict):
        return {k: _without_descriptions(v) for k, v in value.items() if k != "description"}
    if isinstance(value, list):
        return [_without_descriptions(v) for v in value]
    return value


def test_committed_descriptor_is_up_to_date():
    # Inputs, flags, types, lists, choices, defaults, command line, container and version must
    # match the parser exactly; help texts may lag until the next regeneration.
    regenerated = build_descriptor(build_parser())
    committed = json.loads(DESCRIPTOR.read_text())
    assert _without_descriptions(committed) == _without_descriptions(regenerated), (
        "boutiques/bidsmask.json is out of date with the CLI: regenerate it with "
        "`python -m bidsmask.app.boutiques > boutiques/bidsmask.json`"
    )


def test_drift_check_sees_changes_that_matter(descriptor):
    changed = json.loads(json.dumps(descriptor))
    changed["inputs"][-1]["description"] = "reworded help"
    assert _without_descriptions(changed) == _without_descriptions(descriptor)
    changed["inputs"][-1]["command-line-flag"] = "--renamed"
    assert _without_descriptions(changed) != _without_descriptions(descriptor)


def test_generator_command_writes_the_descriptor(tmp_path, capsys):
    assert main([]) == 0
    assert capsys.readouterr().out == dumps(build_descriptor(build_parser()))
    out = tmp_path / "docker.json"
    assert main(["--container-type", "docker", "-o", str(out)]) == 0
    docker = json.loads(out.read_text())
    assert docker["container-image"] == {"type": "docker", "image": "bidsmask/bidsmask:0.1.0"}
    bosh(["validate", "--bids", str(out)])


def test_every_cli_option_is_an_input(descriptor):
    inputs = _inputs(descriptor)
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        if action.dest == "output_dir":
            assert inputs["output_dir_name"]["value-key"] == "[OUTPUT_DIR]"
            continue
        entry = inputs[action.dest]
        assert entry["value-key"] in descriptor["command-line"]
        if action.option_strings:
            assert entry["command-line-flag"] in action.option_strings
            assert entry["optional"] is (not action.required)
        else:
            assert entry["optional"] is False
        if action.nargs == 0:
            assert entry["type"] == "Flag"
            continue
        assert entry.get("list", False) is (action.nargs in ("+", "*"))
        if action.choices is not None:
            assert entry["value-choices"] == list(action.choices)
        if action.option_strings and action.default is not None:
            default = entry["default-value"]
            # The descriptor's default parses back to the CLI's own default.
            values = default if isinstance(default, list) else [default]
            convert = action.type or (lambda text: text)
            parsed = [convert(str(v)) for v in values]
            assert (parsed if isinstance(default, list) else parsed[0]) == action.default
    accounted = {a.dest for a in parser._actions} | {"output_dir_name"}
    extra = set(inputs) - accounted - {"participant_level_analysis_dir"}
    assert not extra, f"inputs without a CLI option: {extra}"


def test_types_of_representative_options(descriptor):
    inputs = _inputs(descriptor)
    assert inputs["bids_dir"]["type"] == "File"
    assert inputs["bids_filter_file"]["type"] == "File"
    assert inputs["work_dir"]["type"] == "String"  # created by the tool, not an input file
    assert inputs["nprocs"]["type"] == "Number" and inputs["nprocs"]["integer"] is True
    assert inputs["radius"]["type"] == "Number" and "integer" not in inputs["radius"]
    assert inputs["atlas"]["list"] is True and inputs["atlas"]["min-list-entries"] == 1
    assert inputs["analysis_level"]["value-choices"] == ["participant", "group"]
    assert inputs["overwrite"]["type"] == "Flag"
    assert inputs["verbose"]["type"] == "Flag"  # a count action


def test_passes_bosh_validate_and_bids_validate():
    bosh(["validate", str(DESCRIPTOR)])
    bosh(["validate", "--bids", str(DESCRIPTOR)])


def test_bids_validation_catches_a_broken_descriptor(tmp_path, descriptor):
    log = {"id": "log", "name": "Log", "path-template": "[OUTPUT_DIR]/logs"}
    broken = dict(descriptor, **{"output-files": [*descriptor["output-files"], log]})
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(DescriptorValidationError, match="multiple outputs"):
        bosh(["validate", "--bids", str(path)])


def test_version_container_and_metadata(descriptor):
    assert descriptor["schema-version"] == "0.5"
    assert descriptor["tool-version"] == bidsmask.__version__
    image = descriptor["container-image"]
    assert image == {
        "type": "singularity",
        "image": f"bidsmask/bidsmask:{bidsmask.__version__}",
        "index": "docker://",
    }
    resources = descriptor["suggested-resources"]
    assert resources["cpu-cores"] >= 1 and resources["ram"] > 0
    assert resources["walltime-estimate"] > 0
    codes = {e["code"] for e in descriptor["error-codes"]}
    assert codes == {1, 18, 64, 65, 66, 73}


def test_cbrain_bids_app_handler_requirements(descriptor):
    # CbrainTask::BidsAppHandler refuses descriptors without these inputs, the output_dir
    # output, or with a container that is not Singularity.
    inputs = _inputs(descriptor)
    for required in ("bids_dir", "analysis_level", "participant_label", "output_dir_name"):
        assert required in inputs
    assert [o["id"] for o in descriptor["output-files"]] == ["output_dir"]
    assert descriptor["container-image"]["type"] == "singularity"
    assert inputs["participant_label"]["list"] is True
    assert "session_label" in inputs
    module = descriptor["custom"]["cbrain:integrator_modules"]["BoutiquesBidsSingleSubjectMaker"]
    assert module["dataset_input_id"] == "bids_dir"
    assert module["subjects_input_id"] == "participant_label"
    group = next(g for g in descriptor["groups"] if g["id"] == "output_directory")
    assert group["members"] == ["output_dir_name", "participant_level_analysis_dir"]


def test_simulated_command_parses_with_the_cli(tmp_path):
    invocation = {
        "bids_dir": "/data/fmriprep",
        "output_dir_name": "/data/bidsmask",
        "analysis_level": "participant",
        "participant_label": ["01", "sub-02"],
        "session_label": ["1"],
        "atlas": ["Schaefer2018:100Parcels7Networks", "DiFuMo:64dimensions"],
        "strategy": ["simple", "36P+gsr"],
        "fd_threshold": 0.3,
        "dummy_scans": 4,
        "standardize": "zscore",
        "connectivity": ["correlation", "partial-correlation"],
        "save_denoised_bold": True,
        "verbose": True,
        "nprocs": 2,
        "work_dir": "/scratch/work",
    }
    path = tmp_path / "invocation.json"
    path.write_text(json.dumps(invocation))
    result = bosh(["exec", "simulate", "-i", str(path), str(DESCRIPTOR)])
    assert result.exit_code == 0
    mkdir, _, command = result.shell_command.partition("; ")
    assert mkdir == "mkdir -p /data/bidsmask"
    argv = shlex.split(command)
    assert argv[0] == "bidsmask"
    ns = build_parser().parse_args(argv[1:])
    assert (str(ns.bids_dir), str(ns.output_dir), ns.analysis_level) == (
        "/data/fmriprep",
        "/data/bidsmask",
        "participant",
    )
    assert ns.participant_label == ["01", "02"]
    assert ns.session_label == ["1"]
    assert ns.atlas == invocation["atlas"]
    assert ns.strategy == invocation["strategy"]
    assert ns.fd_threshold == 0.3 and ns.dummy_scans == 4 and ns.nprocs == 2
    assert ns.connectivity == invocation["connectivity"]
    assert ns.save_denoised_bold is True and ns.verbose == 1
    assert str(ns.work_dir) == "/scratch/work"
    # Defaults filled in by Boutiques are the CLI's own defaults.
    defaults = build_parser().parse_args(["/a", "/b", "participant"])
    assert ns.min_volumes == defaults.min_volumes and ns.mask == defaults.mask


def test_descriptor_example_test_is_a_valid_invocation(tmp_path, descriptor):
    (case,) = descriptor["tests"]
    assert case["assertions"]["exit-code"] == 0
    path = tmp_path / "invocation.json"
    path.write_text(json.dumps(case["invocation"]))
    bosh(["invocation", str(DESCRIPTOR), "-i", str(path)])


def _toy_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="toy", epilog="exit codes:\n  0  ok\n  3  bad\n")
    parser.add_argument("bids_dir", type=Path)
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("analysis_level", choices=["participant", "group"])
    parser.add_argument("--participant-label", nargs="+")
    parser.add_argument("--session-label", nargs="*")
    parser.add_argument("--pair", nargs=2, type=float, help="two numbers (default %(default)s)")
    parser.add_argument("--level", type=int, choices=[1, 2, 3], default=2)
    parser.add_argument("--tag", action="append")
    parser.add_argument("-d", "--debug", action="count", default=0)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--fast", action="store_true")
    group.add_argument("--no-cache", action="store_false", dest="cache")
    return parser


def test_generator_walks_any_parser_generically(tmp_path):
    descriptor = build_descriptor(_toy_parser(), container_type="docker")
    inputs = _inputs(descriptor)
    assert inputs["pair"]["list"] is True
    assert inputs["pair"]["min-list-entries"] == inputs["pair"]["max-list-entries"] == 2
    assert inputs["pair"]["type"] == "Number" and "integer" not in inputs["pair"]
    assert inputs["pair"]["description"] == "two numbers (default None)"
    assert inputs["level"]["value-choices"] == [1, 2, 3]
    assert inputs["level"]["integer"] is True and inputs["level"]["default-value"] == 2
    assert inputs["tag"]["type"] == "String" and "list" not in inputs["tag"]
    assert inputs["debug"]["type"] == "Flag" and inputs["debug"]["command-line-flag"] == "--debug"
    assert inputs["cache"]["type"] == "Flag"
    assert (
        inputs["session_label"]["list"] is True
        and "min-list-entries" not in inputs["session_label"]
    )
    exclusive = [g for g in descriptor["groups"] if g["id"].startswith("exclusive_")]
    assert exclusive == [
        {
            "id": "exclusive_1",
            "name": "--fast or --no-cache",
            "members": ["fast", "cache"],
            "mutually-exclusive": True,
            "one-is-required": False,
        }
    ]
    assert descriptor["error-codes"] == [{"code": 3, "description": "bad"}]
    path = tmp_path / "toy.json"
    path.write_text(dumps(descriptor))
    bosh(["validate", "--bids", str(path)])


def test_generator_refuses_a_parser_that_is_not_a_bids_app():
    parser = argparse.ArgumentParser(prog="toy")
    parser.add_argument("bids_dir")
    with pytest.raises(ValueError, match="lacks the BIDS-App argument"):
        build_descriptor(parser)
    with pytest.raises(ValueError, match="container_type must be one of"):
        build_descriptor(_toy_parser(), container_type="podman")


def _launch(descriptor_path: Path, invocation: dict, folder: Path):
    path = folder / f"invocation-{invocation['analysis_level']}.json"
    path.write_text(json.dumps(invocation))
    return bosh(
        [
            "exec",
            "launch",
            "--no-container",
            "--skip-data-collection",
            str(descriptor_path),
            str(path),
        ]
    )


def test_launch_without_container_on_the_fixture_dataset(
    fmriprep_dir, templateflow_home, tmp_path, monkeypatch
):
    # The descriptor's command calls `bidsmask` from PATH, as inside the image.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "bidsmask-output"
    atlas = ["Schaefer2018:100Parcels7Networks"]
    participant = _launch(
        DESCRIPTOR,
        {
            "bids_dir": str(fmriprep_dir),
            "output_dir_name": str(out),
            "analysis_level": "participant",
            "participant_label": ["01"],
            "atlas": atlas,
            "work_dir": str(tmp_path / "work"),
        },
        tmp_path,
    )
    assert participant.exit_code == 0, participant.stderr
    assert [f.boutiques_name for f in participant.output_files] == ["output_dir"]
    assert participant.missing_files == []
    series = sorted((out / "sub-01" / "func").glob("*_stat-mean_desc-simple_timeseries.tsv"))
    assert len(series) == 3  # sub-01: task-rest, task-nback run-1 and run-2
    assert not (out / "sub-02").exists()
    header = series[0].read_text().splitlines()[0].split("\t")
    assert len(header) == 100
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"

    group = _launch(
        DESCRIPTOR,
        {
            "bids_dir": str(fmriprep_dir),
            "output_dir_name": str(out),  # bosh fills [OUTPUT_DIR] from this input only
            "analysis_level": "group",
            "atlas": atlas,
        },
        tmp_path,
    )
    assert group.exit_code == 0, group.stderr
    qc = (out / "qc.tsv").read_text().splitlines()
    assert len(qc) == 1 + 3
    group_matrices = sorted(out.glob("*_meas-PearsonCorrelation_desc-simple_relmat.tsv"))
    assert [f.name.split("_")[0] for f in group_matrices] == ["task-nback", "task-rest"]
