"""Build the Boutiques descriptor of ``bidsmask`` from its command-line parser.

The descriptor committed as ``boutiques/bidsmask.json`` is generated, never edited by hand::

    python -m bidsmask.app.boutiques > boutiques/bidsmask.json

Every argparse action of :func:`bidsmask.app.parser.build_parser` becomes a Boutiques input
(positionals, options with values, lists, choices, flags and counters), so a new option appears in
the descriptor as soon as it is added to the parser, and ``tests/app/test_boutiques.py`` fails until
the committed file is regenerated.

The descriptor follows the BIDS-App conventions checked by ``bosh validate --bids`` and the input
ids that CBRAIN's ``BidsAppHandler`` requires (``bids_dir``, ``analysis_level``,
``participant_label``, ``output_dir_name`` and the ``output_dir`` output). CBRAIN runs BIDS Apps
with Singularity/Apptainer, so the default container is the Docker Hub image pulled by
Singularity (``"index": "docker://"``); ``--container-type docker`` writes a Docker variant.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from bidsmask._version import __version__

logger = logging.getLogger(__name__)

SCHEMA_VERSION = "0.5"
IMAGE = "bidsmask/bidsmask"
SOURCE_URL = "https://github.com/bidsmask/bidsmask"
CONTAINER_TYPES = ("singularity", "docker")

# BIDS-App arguments: argparse dest -> value-key that `bosh validate --bids` looks for.
_BIDS_APP_KEYS = {
    "bids_dir": "[BIDS_DIR]",
    "output_dir": "[OUTPUT_DIR]",
    "analysis_level": "[ANALYSIS_LEVEL]",
    "participant_label": "[PARTICIPANT_LABEL]",
    "session_label": "[SESSION_LABEL]",
}

# Path-typed options that name a place the tool creates, not an input file: Strings.
_CREATED_PATHS = frozenset({"work_dir"})

_SUGGESTED_RESOURCES = {
    "cpu-cores": 1,
    "ram": 4,
    "disk-space": 2,
    "walltime-estimate": 3600,
}


def _flag(action: argparse.Action) -> str:
    """Return the option string used on the generated command line (the first long one)."""
    long_flags = [s for s in action.option_strings if s.startswith("--")]
    return (long_flags or action.option_strings)[0]


def _is_list(action: argparse.Action) -> bool:
    nargs = action.nargs
    if isinstance(nargs, int):
        return nargs > 1
    return nargs in ("+", "*", argparse.REMAINDER)


def _value_type(action: argparse.Action) -> dict:
    """Return the Boutiques ``type`` (and ``integer``) of an action that takes values.

    Numbers are recognised by what the action's ``type`` callable returns for ``"1"`` and
    ``"0.5"``; a ``pathlib.Path`` type or a ``*_file`` destination is a File, except for the
    paths the tool creates (``_CREATED_PATHS``).
    """
    convert = action.type
    if convert is Path or action.dest.endswith("_file"):
        return {"type": "String" if action.dest in _CREATED_PATHS else "File"}
    if convert is None:
        return {"type": "String"}
    for sample in ("1", "0.5"):
        try:
            value = convert(sample)
        except (ValueError, TypeError, argparse.ArgumentTypeError):
            continue
        if isinstance(value, bool):
            break
        if isinstance(value, int):
            return {"type": "Number", "integer": True}
        if isinstance(value, float):
            return {"type": "Number"}
        break
    return {"type": "String"}


def _jsonable(value: object) -> object:
    """Return a default value as JSON: numbers and strings as they are, others as ``str``."""
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _describe(action: argparse.Action, prog: str) -> str:
    """Return the action's help with argparse's ``%(...)s`` substitutions applied."""
    text = action.help or ""
    if "%(" in text:
        params = {k: v for k, v in vars(action).items() if v is not argparse.SUPPRESS}
        params["prog"] = prog
        if params.get("choices") is not None:
            params["choices"] = ", ".join(str(c) for c in params["choices"])
        text = text % params
    return " ".join(text.split())


def _option_input(action: argparse.Action, prog: str) -> dict:
    """Return the Boutiques input of one argparse option or positional."""
    entry = {
        "id": action.dest,
        "name": _flag(action) if action.option_strings else action.dest.upper(),
        "description": _describe(action, prog),
        "value-key": _BIDS_APP_KEYS.get(action.dest, f"[{action.dest.upper()}]"),
        "optional": not action.required if action.option_strings else action.nargs in ("?", "*"),
    }
    if action.option_strings:
        entry["command-line-flag"] = _flag(action)
    if action.nargs == 0:  # store_true, store_false, store_const, count
        entry["type"] = "Flag"
        if isinstance(action, argparse._CountAction):
            flags = ", ".join(action.option_strings)
            entry["description"] += f" (Boutiques passes {flags} once; repeat it by hand.)"
        return entry
    entry.update(_value_type(action))
    if _is_list(action):
        entry["list"] = True
        if action.nargs == "+":
            entry["min-list-entries"] = 1
        elif isinstance(action.nargs, int):
            entry["min-list-entries"] = entry["max-list-entries"] = action.nargs
    if action.choices is not None:
        entry["value-choices"] = [_jsonable(c) for c in action.choices]
    default = action.default
    if default is not None and default is not argparse.SUPPRESS and action.option_strings:
        entry["default-value"] = _jsonable(default)
    return entry


def _output_dir_inputs(action: argparse.Action) -> list[dict]:
    """Return OUTPUT_DIR as the BIDS-App template's two inputs (a name, or earlier outputs)."""
    key = _BIDS_APP_KEYS["output_dir"]
    help_text = " ".join((action.help or "").split())
    return [
        {
            "id": "output_dir_name",
            "name": "Output directory name",
            "type": "String",
            "description": f"OUTPUT_DIR: {help_text}",
            "value-key": key,
            "optional": True,
        },
        {
            "id": "participant_level_analysis_dir",
            "name": "Participant-level output directory",
            "type": "File",
            "description": "OUTPUT_DIR holding the participant-level outputs, for platforms "
            "that pick an existing folder for the group level (the BIDS-App template's input). "
            "With bosh, give that folder as output_dir_name for the group level too: Boutiques "
            "fills [OUTPUT_DIR] from output_dir_name only.",
            "value-key": key,
            "optional": True,
        },
    ]


def _error_codes(epilog: str | None) -> list[dict]:
    """Return the non-zero exit codes documented in the parser's epilog (``  CODE  meaning``)."""
    codes = []
    for line in (epilog or "").splitlines():
        match = re.match(r"\s+(\d+)\s+(\S.*)$", line)
        if match and int(match[1]) != 0:
            codes.append({"code": int(match[1]), "description": match[2].strip()})
    return codes


def _actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    skipped = (argparse._HelpAction, argparse._VersionAction)
    return [a for a in parser._actions if not isinstance(a, skipped)]


def build_descriptor(
    parser: argparse.ArgumentParser, *, container_type: str = "singularity"
) -> dict:
    """Return the Boutiques descriptor of a BIDS-App argparse parser.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The parser, with positionals ``bids_dir``, ``output_dir`` and ``analysis_level`` and the
        options ``--participant-label`` and ``--session-label``.
    container_type : {"singularity", "docker"}
        ``singularity`` (what CBRAIN's BidsAppHandler accepts; the image is pulled from Docker
        Hub) or ``docker``.

    Returns
    -------
    dict
        The descriptor, ready for ``json.dumps``.

    Raises
    ------
    ValueError
        If ``container_type`` is unknown or the parser lacks a BIDS-App argument.

    Examples
    --------
    >>> from bidsmask.app.parser import build_parser
    >>> descriptor = build_descriptor(build_parser())
    >>> descriptor["command-line"].split()[:4]
    ['mkdir', '-p', '[OUTPUT_DIR];', 'bidsmask']
    """
    if container_type not in CONTAINER_TYPES:
        raise ValueError(
            f"container_type must be one of {list(CONTAINER_TYPES)}; {container_type!r} was given."
        )
    actions = _actions(parser)
    missing = sorted(set(_BIDS_APP_KEYS) - {a.dest for a in actions})
    if missing:
        raise ValueError(
            f"the parser lacks the BIDS-App argument(s) {missing}; a BIDS-App descriptor needs "
            f"all of {sorted(_BIDS_APP_KEYS)}."
        )
    positionals = [a for a in actions if not a.option_strings]
    options = [a for a in actions if a.option_strings]
    bids_options = [a for a in options if a.dest in _BIDS_APP_KEYS]
    other_options = [a for a in options if a.dest not in _BIDS_APP_KEYS]

    inputs = []
    for action in positionals + bids_options + other_options:
        if action.dest == "output_dir":
            inputs += _output_dir_inputs(action)
        else:
            inputs.append(_option_input(action, parser.prog))
    keys = list(dict.fromkeys(entry["value-key"] for entry in inputs))
    command = f"mkdir -p {_BIDS_APP_KEYS['output_dir']}; {parser.prog} " + " ".join(keys)

    groups = [
        {
            "id": "output_directory",
            "name": "Output directory",
            "description": "A new output directory name for the participant level, or the "
            "directory of participant-level outputs for the group level.",
            "members": ["output_dir_name", "participant_level_analysis_dir"],
            "mutually-exclusive": True,
            "one-is-required": True,
        }
    ]
    for number, group in enumerate(parser._mutually_exclusive_groups, start=1):
        members = [a.dest for a in group._group_actions if a in actions]
        groups.append(
            {
                "id": f"exclusive_{number}",
                "name": " or ".join(_flag(a) for a in group._group_actions),
                "members": members,
                "mutually-exclusive": True,
                "one-is-required": group.required,
            }
        )

    container = {"type": container_type, "image": f"{IMAGE}:{__version__}"}
    if container_type == "singularity":
        container["index"] = "docker://"
    description = (parser.description or "").strip().split("\n\n")[0]
    return {
        "name": parser.prog,
        "tool-version": __version__,
        "description": " ".join(description.split()) + f" See {SOURCE_URL}",
        "author": "The bidsmask developers",
        "url": SOURCE_URL,
        "schema-version": SCHEMA_VERSION,
        "command-line": command,
        "container-image": container,
        "inputs": inputs,
        "groups": groups,
        "output-files": [
            {
                "id": "output_dir",
                "name": "Output directory",
                "description": "OUTPUT_DIR: BIDS-Derivatives (dataset_description.json, "
                "sub-<label>/ with masks, time series, connectivity matrices and sidecars; "
                "group-level outputs and logs at the root).",
                "path-template": _BIDS_APP_KEYS["output_dir"],
                "optional": False,
            }
        ],
        "suggested-resources": dict(_SUGGESTED_RESOURCES),
        "error-codes": _error_codes(parser.epilog),
        "tags": {"domain": ["neuroinformatics", "fmri", "bids"]},
        "tests": [
            {
                "name": "participant_level",
                "invocation": {
                    "bids_dir": "fmriprep",
                    "output_dir_name": "bidsmask-output",
                    "analysis_level": "participant",
                    "participant_label": ["01"],
                },
                "assertions": {"exit-code": 0, "output-files": [{"id": "output_dir"}]},
            }
        ],
        "custom": {
            "cbrain:integrator_modules": {
                "BoutiquesBidsSingleSubjectMaker": {
                    "dataset_input_id": "bids_dir",
                    "subjects_input_id": "participant_label",
                    "keep_sub_prefix": False,
                }
            }
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Write the descriptor of ``bidsmask`` as JSON (to stdout unless ``--output``).

    Parameters
    ----------
    argv : sequence of str or None
        Command-line arguments; None reads ``sys.argv[1:]``.

    Returns
    -------
    int
        0.
    """
    from bidsmask.app.parser import build_parser

    parser = argparse.ArgumentParser(
        prog="python -m bidsmask.app.boutiques",
        description="Write the Boutiques descriptor of bidsmask, generated from its parser.",
    )
    parser.add_argument("--container-type", choices=CONTAINER_TYPES, default="singularity")
    parser.add_argument("-o", "--output", type=Path, help="file to write. Default: stdout.")
    args = parser.parse_args(argv)
    text = dumps(build_descriptor(build_parser(), container_type=args.container_type))
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
        logger.info("wrote %s", args.output)
    return 0


def dumps(descriptor: dict) -> str:
    """Serialise a descriptor the way ``boutiques/bidsmask.json`` is committed.

    Parameters
    ----------
    descriptor : dict
        A descriptor from :func:`build_descriptor`.

    Returns
    -------
    str
        Indented JSON with a final newline.
    """
    return json.dumps(descriptor, indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
