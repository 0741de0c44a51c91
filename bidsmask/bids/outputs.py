"""The output plan: which files a run writes, with which sidecars — decided in one place.

:class:`RunOutputs` answers "which files does this run write" for the three places that need it:
the run itself (:mod:`bidsmask.app.run` writes exactly these paths), the resume check
(:mod:`bidsmask.app.participant` compares them with the run's completion record) and the group
level (:mod:`bidsmask.app.group` reads them back through :func:`parse_output`). Names come from
:mod:`bidsmask.bids.naming`; every output has a JSON sidecar (:func:`sidecar_path`).

Roles of the files of a run::

    mask        …_desc-brain_mask.nii.gz                                      one per run
    timeseries  …_atlas-<A>[_seg-<S>]_stat-mean_desc-<strategy>_timeseries.tsv  per atlas × strategy
                (no ``stat`` for maps: a least-squares fit is not a mean)
    relmat      …_atlas-<A>…_meas-<measure>_desc-<strategy>_relmat.tsv       per atlas × strategy ×
                                                                               measure
    bold        …_desc-<strategy>_bold.nii.gz                                  per strategy, with
                                                                               ``--save-denoised-bold``

Grayordinate (CIFTI) runs have no mask; per atlas they add the coverage map and, beside each
TSV, its CIFTI twin (the TSV's JSON sidecar describes both)::

    coverage    …_atlas-<A>_den-<d>_stat-coverage_boldmap.pscalar.nii         per atlas
    ptseries    …_atlas-<A>_den-<d>_stat-mean_desc-<strategy>_timeseries.ptseries.nii
    pconn       …_atlas-<A>_den-<d>_meas-<measure>_desc-<strategy>_relmat.pconn.nii
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bidsmask.bids import naming

_ENTITY = re.compile(r"([a-z]+)-([A-Za-z0-9]+)")
#: Entities that identify a run (dropped from group-level names; ``space``/``res`` stay).
RUN_ENTITIES = ("sub", "ses", "task", "acq", "ce", "rec", "dir", "run", "echo", "part")
#: Run entities a group-level statistic of the runs' data (a group-average matrix, QC-FC) pools
#: over: every one but ``task`` (rest and task runs are never pooled; acquisitions, phase-encoding
#: directions or echoes of one task are).
POOLED_ENTITIES = tuple(e for e in RUN_ENTITIES if e != "task")


def sidecar_path(path: Path | str) -> Path:
    """Return the JSON sidecar of a data file (every extension replaced by ``.json``).

    Examples
    --------
    >>> sidecar_path("sub-01/func/sub-01_task-rest_desc-brain_mask.nii.gz").name
    'sub-01_task-rest_desc-brain_mask.json'
    """
    path = Path(path)
    return path.with_name(path.name.split(".")[0] + ".json")


def with_sidecars(paths: Iterable[Path]) -> list[Path]:
    """Return each path followed by its sidecar (a sidecar shared by two files listed once)."""
    return list(dict.fromkeys(p for path in paths for p in (Path(path), sidecar_path(path))))


@dataclass(frozen=True)
class OutputFile:
    """One planned output: its role, its path relative to OUTPUT_DIR and what it belongs to.

    ``atlas`` is the index of the atlas in the plan (``None`` for the mask and the denoised BOLD),
    ``strategy`` the strategy's name (``None`` for the mask), ``measure`` the connectivity option
    of a relmat (``correlation`` …).
    """

    role: str
    path: Path
    atlas: int | None = None
    strategy: str | None = None
    measure: str | None = None

    @property
    def sidecar(self) -> Path:
        """The file's JSON sidecar."""
        return sidecar_path(self.path)


@dataclass(frozen=True)
class RunOutputs:
    """The files one run writes.

    Parameters
    ----------
    source : Mapping
        The run's source entities (:func:`bidsmask.bids.naming.source_entities`).
    atlases : tuple of (Mapping, str)
        Each atlas's entities (``atlas``, ``seg`` …) and kind (``labels``, ``maps``, ``spheres``),
        in the order the run extracts them.
    strategies : tuple of (str, str)
        Each strategy's name and its ``desc`` label.
    measures : tuple of (str, str)
        Each connectivity option and its BEP017 ``meas`` value (``PearsonCorrelation`` …).
    denoised_bold : bool
        Whether the cleaned voxels are written as 4D NIfTI.
    grayordinates : bool
        A CIFTI run: no mask; coverage maps, ptseries and pconn files besides the TSVs.

    Examples
    --------
    >>> plan = RunOutputs({"sub": "01", "task": "rest"}, (({"atlas": "X"}, "labels"),),
    ...                   (("simple", "simple"),), (("correlation", "PearsonCorrelation"),))
    >>> [f.path.name for f in plan.strategy_files("simple")]
    ['sub-01_task-rest_atlas-X_stat-mean_desc-simple_timeseries.tsv', \
'sub-01_task-rest_atlas-X_meas-PearsonCorrelation_desc-simple_relmat.tsv']
    """

    source: Mapping[str, str]
    atlases: tuple[tuple[Mapping[str, str], str], ...]
    strategies: tuple[tuple[str, str], ...]
    measures: tuple[tuple[str, str], ...] = ()
    denoised_bold: bool = False
    grayordinates: bool = False

    def _desc(self, strategy: str) -> str:
        for name, desc in self.strategies:
            if name == strategy:
                return desc
        raise KeyError(f"Strategy {strategy!r} is not in this run's plan {self.strategies}.")

    def mask(self) -> OutputFile:
        """Return the run's brain mask."""
        path = naming.build_path({**self.source, "desc": "brain"}, "mask", ".nii.gz")
        return OutputFile("mask", path)

    def timeseries(self, atlas: int, strategy: str) -> OutputFile:
        """Return the cleaned time series of one atlas and strategy."""
        ents, kind = self.atlases[atlas]
        stat = None if kind == "maps" else "mean"
        path = naming.build_path(
            {**self.source, **ents, "stat": stat, "desc": self._desc(strategy)},
            "timeseries",
            ".tsv",
        )
        return OutputFile("timeseries", path, atlas, strategy)

    def relmat(self, atlas: int, strategy: str, measure: str) -> OutputFile:
        """Return the connectivity matrix of one atlas, strategy and connectivity option."""
        meas = dict(self.measures)[measure]
        ents = {**self.source, **self.atlases[atlas][0], "meas": meas, "desc": self._desc(strategy)}
        path = naming.build_path(ents, "relmat", ".tsv")
        return OutputFile("relmat", path, atlas, strategy, measure)

    def ptseries(self, atlas: int, strategy: str) -> OutputFile:
        """Return the CIFTI parcellated time series that goes with :meth:`timeseries`."""
        path = self.timeseries(atlas, strategy).path
        return OutputFile("ptseries", path.with_suffix(".ptseries.nii"), atlas, strategy)

    def pconn(self, atlas: int, strategy: str, measure: str) -> OutputFile:
        """Return the CIFTI parcel matrix that goes with :meth:`relmat`."""
        path = self.relmat(atlas, strategy, measure).path.with_suffix(".pconn.nii")
        return OutputFile("pconn", path, atlas, strategy, measure)

    def coverage(self, atlas: int) -> OutputFile:
        """Return the coverage map of one atlas on a grayordinate run (a pscalar)."""
        ents = {**self.source, **self.atlases[atlas][0], "stat": "coverage"}
        return OutputFile("coverage", naming.build_path(ents, "boldmap", ".pscalar.nii"), atlas)

    def bold(self, strategy: str) -> OutputFile:
        """Return the denoised BOLD of one strategy."""
        path = naming.build_path({**self.source, "desc": self._desc(strategy)}, "bold", ".nii.gz")
        return OutputFile("bold", path, None, strategy)

    def strategy_files(self, strategy: str) -> list[OutputFile]:
        """Every output of one strategy (sidecars not listed: see :attr:`OutputFile.sidecar`)."""
        files = []
        for i in range(len(self.atlases)):
            files.append(self.timeseries(i, strategy))
            files += [self.ptseries(i, strategy)] if self.grayordinates else []
            for measure, _ in self.measures:
                files.append(self.relmat(i, strategy, measure))
                files += [self.pconn(i, strategy, measure)] if self.grayordinates else []
        if self.denoised_bold:
            files.append(self.bold(strategy))
        return files

    def files(self, skipped: Iterable[str] = ()) -> list[Path]:
        """Every file of a complete run, sidecars included (``skipped``: strategies left out)."""
        skipped = set(skipped)
        if self.grayordinates:
            planned = [self.coverage(i) for i in range(len(self.atlases))]
        else:
            planned = [self.mask()]
        for strategy, _ in self.strategies:
            if strategy not in skipped:
                planned += self.strategy_files(strategy)
        return with_sidecars(f.path for f in planned)


def parse_output(path: Path | str) -> tuple[dict[str, str], str]:
    """Return a bidsmask output's entities and suffix (``relmat``, ``timeseries`` …).

    Examples
    --------
    >>> parse_output("sub-01/func/sub-01_task-rest_atlas-X_meas-PearsonCorrelation_relmat.tsv")
    ({'sub': '01', 'task': 'rest', 'atlas': 'X', 'meas': 'PearsonCorrelation'}, 'relmat')
    """
    stem = Path(path).name.split(".")[0]
    return dict(_ENTITY.findall(stem)), stem.rsplit("_", 1)[-1]


def group_filename(entities: Mapping[str, str], suffix: str, per_task: bool = False) -> str:
    """Name the group-level file that summarises participant outputs with these entities.

    The run's entities (:data:`RUN_ENTITIES`) are dropped; ``space``, ``atlas``, ``meas`` … stay.
    With ``per_task``, ``task`` stays (:data:`POOLED_ENTITIES` are dropped): matrices of a
    resting-state and a task run are summarised apart.

    Examples
    --------
    >>> group_filename({"sub": "01", "task": "rest", "space": "MNI", "desc": "group"}, "mask")
    'space-MNI_desc-group_mask'
    >>> group_filename({"sub": "01", "task": "rest", "dir": "AP", "meas": "QCFC"}, "relmat", True)
    'task-rest_meas-QCFC_relmat'
    """
    dropped = POOLED_ENTITIES if per_task else RUN_ENTITIES
    kept = {k: v for k, v in entities.items() if k not in dropped}
    return naming.build_filename(kept, suffix, "")
