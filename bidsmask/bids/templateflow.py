"""Offline TemplateFlow lookups: list files in ``TEMPLATEFLOW_HOME``, never download.

TemplateFlow's ``api.get`` downloads files that are missing or are empty placeholders of its
skeleton. On compute nodes without network that hangs or fails, so bidsmask only *lists* files
with the TemplateFlow client (its pybids index of ``TEMPLATEFLOW_HOME``) and treats an empty file
as absent; errors say how to fetch what is missing on a machine with internet access.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from unittest import mock

logger = logging.getLogger(__name__)


def templateflow_home(home: str | os.PathLike | None = None) -> Path:
    """Resolve the TemplateFlow folder: ``home``, else ``$TEMPLATEFLOW_HOME``, else the default.

    Raises
    ------
    FileNotFoundError
        The folder is missing or empty.
    """
    if home is None:
        home = os.environ.get("TEMPLATEFLOW_HOME")
    if home is None:
        from platformdirs import user_cache_dir

        home = user_cache_dir("templateflow")
    home = Path(home).expanduser().absolute()
    if not home.is_dir() or not any(home.iterdir()):
        raise FileNotFoundError(
            f"TEMPLATEFLOW_HOME ({home}) is missing or empty: fetch the TemplateFlow files on a "
            "machine with internet access (`bidsmask-fetch-templates`) and point "
            "TEMPLATEFLOW_HOME to that folder."
        )
    return home


def list_files(
    template: str, *, home: str | os.PathLike | None = None, **entities: object
) -> list[Path]:
    """List the files of ``template`` matching TemplateFlow entities, without downloading.

    ``entities`` are the keyword arguments of ``templateflow.api.get`` (``resolution``,
    ``atlas``, ``desc``, ``label``, ``suffix``, ``extension`` …; ``None`` = entity absent).
    Empty placeholders are included: see :func:`is_placeholder`.
    """
    client = _client(str(templateflow_home(home)))
    return client.ls(template, **entities)


def is_placeholder(path: str | os.PathLike) -> bool:
    """Tell whether a TemplateFlow file is an empty placeholder (listed but not downloaded)."""
    return Path(path).stat().st_size == 0


def pick_resolution(files: Sequence[Path], res: str | int | None) -> Path:
    """Choose among files differing by ``res-``: ``res`` if present, else 2, else 1, else any.

    Examples
    --------
    >>> files = [Path("tpl-X_res-01_T1w.nii.gz"), Path("tpl-X_res-02_T1w.nii.gz")]
    >>> pick_resolution(files, "1").name, pick_resolution(files, None).name
    ('tpl-X_res-01_T1w.nii.gz', 'tpl-X_res-02_T1w.nii.gz')
    """
    if not files:
        raise ValueError("'files' is empty: nothing to choose a resolution from.")
    by_res: dict[int, Path] = {}
    for f in files:
        m = re.search(r"_res-0*(\d+)", f.name)
        by_res.setdefault(int(m.group(1)) if m else 0, f)
    wanted = [int(res)] if res is not None and str(res).isdigit() else []
    for r in [*wanted, 2, 1, *sorted(by_res)]:
        if r in by_res:
            if wanted and r != wanted[0]:
                logger.info("TemplateFlow has no res-%s of %s; using res-%s.", res, files[0], r)
            return by_res[r]
    return files[0]


def find_file(
    template: str,
    res: str | int | None = None,
    *,
    home: str | os.PathLike | None = None,
    **entities: object,
) -> Path:
    """Return one downloaded TemplateFlow file, preferring resolution ``res`` (then 2, then 1).

    Examples
    --------
    ``find_file("MNI152NLin2009cAsym", "2", label="GM", suffix="probseg", extension=".nii.gz")``

    Raises
    ------
    FileNotFoundError
        No such file in ``TEMPLATEFLOW_HOME``, or only an empty placeholder (the message gives
        the command that fetches it).
    """
    files = [f for f in list_files(template, home=home, **entities) if not is_placeholder(f)]
    if not files:
        raise FileNotFoundError(
            f"No TemplateFlow file for template {template!r} with {entities} in "
            f"{templateflow_home(home)}. {fetch_command(template, **entities)}"
        )
    return pick_resolution(files, res)


def fetch_command(
    template: str, alternative: str = "bidsmask-fetch-templates", **entities: object
) -> str:
    """Say how to download a TemplateFlow file on a machine with internet access.

    Examples
    --------
    >>> cmd = fetch_command("MNI152NLin6Asym", atlas="HOSPA", desc=None)
    >>> "t.get('MNI152NLin6Asym', atlas='HOSPA')" in cmd
    True
    """
    args = "".join(f", {k}={v!r}" for k, v in entities.items() if v is not None)
    return (
        'On a machine with internet access run `python -c "import templateflow.api as t; '
        f"t.get('{template}'{args})\"` (or `{alternative}`), then copy that "
        "TEMPLATEFLOW_HOME here or point TEMPLATEFLOW_HOME to it."
    )


@functools.lru_cache(maxsize=4)
def _client(home: str):
    # templateflow sets up its global cache when first imported: point it at ``home`` (which
    # exists and is not empty) so that importing it neither unpacks nor downloads anything.
    with mock.patch.dict(os.environ, {"TEMPLATEFLOW_HOME": home, "TEMPLATEFLOW_AUTOUPDATE": "0"}):
        from templateflow.client import TemplateFlowClient
        from templateflow.conf.cache import CacheConfig, TemplateFlowCache

    config = CacheConfig(root=Path(home), autoupdate=False, use_datalad=False)
    return TemplateFlowClient(cache=TemplateFlowCache(config))
