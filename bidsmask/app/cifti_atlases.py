"""Grayordinate atlases for fsLR runs: ``.dlabel.nii`` files and BIDS-Atlas folders.

In a grayordinate space an ``--atlas`` value must resolve to a ``.dlabel.nii``:

- a path to one (region names from a ``.tsv`` beside it: same name, or XCP-D's
  ``atlas-<A>_dseg.tsv``; else the dlabel's own label table);
- a name (``4S456Parcels``, ``Tian``) looked up in the ``--atlas-dataset`` folders, laid out as
  XCP-D's BIDS-Atlas datasets: ``[atlas-<A>/]tpl-fsLR_atlas-<A>_den-<d>_dseg.dlabel.nii`` (or
  ``atlas-<A>_space-fsLR_den-<d>_dseg.dlabel.nii``), the run's density preferred.

Anything else (a NIfTI, a TemplateFlow volume atlas, coordinates) has no grayordinate version:
a ``ValueError`` that the participant level reports as a usage error (exit code 64).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from bidsmask import cifti
from bidsmask.atlases import REFERENCES, Atlas, AtlasSpec, read_label_table

logger = logging.getLogger(__name__)

__all__ = ["find_in_datasets", "load_cifti_atlas"]


def find_in_datasets(
    name: str, desc: str | None, den: str | None, datasets: Sequence[Path]
) -> Path | None:
    """Find atlas ``name``'s dlabel in BIDS-Atlas folders (density ``den`` preferred).

    With ``desc`` (``--atlas NAME:DESC``) the file must carry ``seg-DESC`` or ``desc-DESC``.
    """
    found = []
    for folder in datasets:
        found += sorted(Path(folder).rglob(f"*atlas-{name}_*dseg.dlabel.nii"))
    if desc:
        found = [p for p in found if f"_seg-{desc}_" in p.name or f"_desc-{desc}_" in p.name]
    exact = [p for p in found if f"_den-{den}_" in p.name]
    chosen = (exact or found or [None])[0]
    if len(exact or found) > 1:
        logger.warning("Several dlabel files for atlas %s; using %s.", name, chosen)
    return chosen


def _label_table(dlabel: Path, name: str) -> Path | None:
    stem = dlabel.name[: -len(".dlabel.nii")]
    for candidate in (f"{stem}.tsv", f"atlas-{name}_dseg.tsv", f"tpl-fsLR_atlas-{name}_dseg.tsv"):
        if (dlabel.parent / candidate).is_file():
            return dlabel.parent / candidate
    return None


def load_cifti_atlas(
    spec: AtlasSpec, space: str, den: str | None, datasets: Sequence[Path] = ()
) -> Atlas:
    """Resolve an ``--atlas`` value for a grayordinate space.

    Raises
    ------
    ValueError
        The atlas has no grayordinate (``.dlabel.nii``) version here, or its files are unusable.
    FileNotFoundError
        A label table named in the folder is missing.
    """
    path = spec.path if spec.source == "file" else None
    if path is not None and not path.name.endswith(".dlabel.nii"):
        path = None
    if path is None and spec.source == "templateflow" and datasets:
        path = find_in_datasets(spec.name, spec.desc, den, datasets)
    if path is None:
        where = (
            f"none of the --atlas-dataset folders ({', '.join(map(str, datasets))}) has it"
            if datasets
            else "no --atlas-dataset was given"
        )
        raise ValueError(
            f"Atlas {spec.text!r} has no CIFTI version for space {space}: give a .dlabel.nii "
            f"file or an --atlas-dataset folder with tpl-{space}_atlas-{spec.name}_den-"
            f"{den or '91k'}_dseg.dlabel.nii ({where})."
        )
    table = _label_table(path, spec.name)
    if table is not None:
        ids, names = read_label_table(table)
    else:
        atlas = cifti.load_dlabel(path)
        ids = tuple(int(i) for i in atlas.region_ids)
        names = tuple(atlas.names[i] for i in ids)
    return Atlas(
        spec,
        "cifti",
        ids,
        names,
        image=path,
        space=space,
        template=space,
        label_table=table,
        references=tuple(r for k, r in REFERENCES.items() if spec.name.startswith(k)),
    )
