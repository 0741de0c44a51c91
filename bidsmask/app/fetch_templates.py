"""``bidsmask-fetch-templates``: download the TemplateFlow files bidsmask reads.

bidsmask never downloads while processing: compute nodes and containers usually have no
internet. This command, run where there is internet (a login node, the image build), fetches
into ``$TEMPLATEFLOW_HOME`` the brain masks and ``label-GM`` probabilistic segmentations of the
templates and the images and label tables of the TemplateFlow atlases (the app's default atlas
plus those given with ``--atlas``), at resolutions 1 and 2 mm. The list of files comes from
:func:`bidsmask.atlases.templateflow_queries`, so it is the list the app looks for.

Files already present are not downloaded again. Offline, the command stops at the first file it
cannot download with a one-line message and exit code 69.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

from bidsmask.app.config import DEFAULT_ATLAS
from bidsmask.atlases import DEFAULT_TEMPLATES, parse_atlas_spec, templateflow_queries

logger = logging.getLogger(__name__)

OK = 0
FAILURE = 1
USAGE = 64
UNAVAILABLE = 69
CANNOT_CREATE = 73

EPILOG = f"""\
example:
  TEMPLATEFLOW_HOME=/shared/templateflow bidsmask-fetch-templates \\
      --atlas Schaefer2018:100Parcels7Networks DiFuMo:64dimensions HOSPA:th25

exit codes:
  {OK}   every file is present in TEMPLATEFLOW_HOME (downloaded now or before)
  {FAILURE}   the templateflow package lacks its list of files (reinstall it)
  {USAGE}  usage error: a bad option, or an --atlas TemplateFlow has no file for
  {UNAVAILABLE}  a file could not be downloaded (no network): run this where there is internet
  {CANNOT_CREATE}  TEMPLATEFLOW_HOME cannot be created or written
"""


class FetchError(Exception):
    """A failure reported in one line, with the exit code it maps to.

    Parameters
    ----------
    message : str
        What failed and how to fix it.
    exit_code : int
        The command's exit code for it.
    """

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _atlas(text: str) -> str:
    try:
        spec = parse_atlas_spec(text)
    except (ValueError, FileNotFoundError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if spec.source != "templateflow":
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a TemplateFlow atlas (it is a {spec.source} atlas, which needs "
            "no download); give TemplateFlow atlases as NAME:DESC, e.g. DiFuMo:64dimensions."
        )
    return text


def _resolution(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a resolution index such as 1 or 2.")
    return int(text)


def _build_parser() -> argparse.ArgumentParser:
    """Build the parser of ``bidsmask-fetch-templates``.

    Returns
    -------
    argparse.ArgumentParser
        The parser (usage errors exit with code 2 as argparse does; ``main`` maps them to 64).
    """
    parser = argparse.ArgumentParser(
        prog="bidsmask-fetch-templates",
        description="Download into $TEMPLATEFLOW_HOME the TemplateFlow files bidsmask reads: "
        "brain masks and grey-matter probability maps of the templates, and the images and "
        f"label tables of the atlases ({DEFAULT_ATLAS} plus --atlas). Files already present "
        "are kept. bidsmask itself never downloads.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--atlas",
        nargs="+",
        action="extend",
        type=_atlas,
        default=[],
        metavar="NAME:DESC",
        help=f"TemplateFlow atlases to fetch besides {DEFAULT_ATLAS}, as given to bidsmask "
        "--atlas (e.g. Schaefer2018:100Parcels7Networks DiFuMo:64dimensions HOSPA:th25).",
    )
    parser.add_argument(
        "--template",
        nargs="+",
        action="extend",
        metavar="TEMPLATE",
        help=f"TemplateFlow templates (output spaces). Default: {' '.join(DEFAULT_TEMPLATES)}.",
    )
    parser.add_argument(
        "--resolution",
        nargs="+",
        action="extend",
        type=_resolution,
        metavar="RES",
        help="template resolution indices (TemplateFlow res-01, res-02 …). Default: 1 2.",
    )
    return parser


def templateflow_home() -> Path:
    """Return the TemplateFlow folder in use: ``$TEMPLATEFLOW_HOME`` or TemplateFlow's default.

    Returns
    -------
    pathlib.Path
        The absolute folder (it may not exist yet).
    """
    home = os.environ.get("TEMPLATEFLOW_HOME")
    if home is None:
        from platformdirs import user_cache_dir

        home = user_cache_dir("templateflow")
    return Path(home).expanduser().absolute()


def _skeleton_zip() -> Path:
    """Return TemplateFlow's list of files: the zip of empty placeholders its package ships."""
    spec = importlib.util.find_spec("templateflow")  # locates the package without importing it
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        path = Path(folder) / "conf" / "templateflow-skel.zip"
        if path.is_file():
            return path
    raise FetchError(
        f"the installed templateflow package has no conf/templateflow-skel.zip (looked in "
        f"{folders}); reinstall it with `pip install --force-reinstall templateflow`.",
        FAILURE,
    )


def _client(home: Path, templates: Sequence[str]):
    """Return a TemplateFlow client on ``home`` whose index lists the templates' files.

    TemplateFlow ships the list of its files as empty placeholders (the "skeleton"). The
    placeholders of ``templates`` that ``home`` lacks are added (locally, overwriting nothing),
    so that a query matches a placeholder to download rather than nothing. Only those templates
    are added, which keeps the index, built again by every bidsmask run, small.
    """
    try:
        home.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(_skeleton_zip()) as skeleton:
            for name in skeleton.namelist():
                if name.split("/")[0] in {f"tpl-{t}" for t in templates}:
                    if not (home / name).exists():
                        skeleton.extract(name, home)
        # Imported only now: templateflow.conf fills an empty $TEMPLATEFLOW_HOME at import.
        from templateflow.client import TemplateFlowClient
        from templateflow.conf.cache import CacheConfig, TemplateFlowCache
    except OSError as exc:
        raise FetchError(
            f"TEMPLATEFLOW_HOME {home} cannot be created or written ({exc.strerror or exc}); "
            "set TEMPLATEFLOW_HOME to a folder you can write to.",
            CANNOT_CREATE,
        ) from None
    cache = TemplateFlowCache(CacheConfig(root=home, autoupdate=False, use_datalad=False))
    return TemplateFlowClient(cache=cache)


def _describe(query: dict) -> str:
    entities = " ".join(f"{k}={v}" for k, v in query.items() if v is not None)
    return entities or "(empty query)"


def _is_present(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 0


def fetch(atlases: Sequence[str], templates: Sequence[str], resolutions: Sequence[int]) -> dict:
    """Make every TemplateFlow file bidsmask needs present in ``$TEMPLATEFLOW_HOME``.

    Parameters
    ----------
    atlases : sequence of str
        ``--atlas`` values; only TemplateFlow atlases are fetched.
    templates : sequence of str
        TemplateFlow template names.
    resolutions : sequence of int
        Resolution indices.

    Returns
    -------
    dict
        ``{"present": [...], "downloaded": [...], "not_in_templateflow": [...]}``: paths of the
        files already there and fetched now, and the queries TemplateFlow has no file for.

    Raises
    ------
    FetchError
        When a file cannot be downloaded (exit code 69), TEMPLATEFLOW_HOME cannot be written (73),
        or an atlas has no image in any of ``templates`` (64).
    """
    home = templateflow_home()
    client = _client(home, templates)
    report: dict[str, list] = {"present": [], "downloaded": [], "not_in_templateflow": []}
    found_atlases = set()
    for query in templateflow_queries(atlases, templates, resolutions):
        files = client.ls(**query)
        if not files:
            logger.info("TemplateFlow has no file for %s", _describe(query))
            report["not_in_templateflow"].append(query)
            continue
        if query.get("atlas") and query["extension"] != ".tsv":
            found_atlases.add((query["atlas"], query.get("desc")))
        missing = [f for f in files if not _is_present(f)]
        if missing:
            _download(client, query, missing, home)
        for path in files:
            status = "downloaded" if path in missing else "present"
            report[status].append(path)
            logger.info("%-10s %s", status, path.relative_to(home))
    unknown = [
        f"{spec.name}:{spec.desc}" if spec.desc else spec.name
        for spec in map(parse_atlas_spec, atlases)
        if (spec.name, spec.desc) not in found_atlases
    ]
    if unknown:
        raise FetchError(
            f"TemplateFlow has no image of atlas {', '.join(unknown)} in {', '.join(templates)} "
            f"at resolution {', '.join(map(str, resolutions))}; check the NAME:DESC spelling "
            "against TemplateFlow's tpl-*/ file names (e.g. Schaefer2018:400Parcels7Networks).",
            USAGE,
        )
    return report


def _download(client, query: dict, missing: list[Path], home: Path) -> None:
    try:
        client.get(**query)
    except PermissionError as exc:
        raise FetchError(
            f"cannot write {missing[0]} ({exc.strerror or exc}): TEMPLATEFLOW_HOME {home} is "
            "read-only; set TEMPLATEFLOW_HOME to a folder you can write to.",
            CANNOT_CREATE,
        ) from None
    except (OSError, RuntimeError) as exc:  # requests' errors are OSErrors
        raise FetchError(
            f"cannot download {missing[0].relative_to(home)} from TemplateFlow "
            f"({type(exc).__name__}); this machine seems to have no internet access. Run "
            f"bidsmask-fetch-templates where there is (e.g. a login node) with "
            f"TEMPLATEFLOW_HOME={home}, or copy a TEMPLATEFLOW_HOME that has the files.",
            UNAVAILABLE,
        ) from None
    still_missing = [f for f in missing if not _is_present(f)]
    if still_missing:
        raise FetchError(
            f"TemplateFlow returned no data for {still_missing[0].relative_to(home)}; retry later, "
            "or delete the file and run again.",
            UNAVAILABLE,
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``bidsmask-fetch-templates``.

    Parameters
    ----------
    argv : sequence of str or None
        Command-line arguments; None reads ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit code: 0, 1 (broken templateflow), 64 (usage), 69 (download failed) or 73
        (TEMPLATEFLOW_HOME not writable).
    """
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 0 for --help, 2 for usage errors
        return OK if exc.code in (0, None) else USAGE
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    atlases = list(dict.fromkeys([DEFAULT_ATLAS, *args.atlas]))
    try:
        # Repeatable options have no parser default (argparse would extend it): filled here.
        templates = list(dict.fromkeys(args.template or DEFAULT_TEMPLATES))
        report = fetch(atlases, templates, list(dict.fromkeys(args.resolution or [1, 2])))
        logger.info(
            "TEMPLATEFLOW_HOME=%s: %d files present, %d downloaded.",
            templateflow_home(),
            len(report["present"]),
            len(report["downloaded"]),
        )
    except FetchError as exc:
        logger.error("bidsmask-fetch-templates: error: %s", exc)
        return exc.exit_code
    finally:
        logger.removeHandler(handler)
    return OK


if __name__ == "__main__":
    raise SystemExit(main())
