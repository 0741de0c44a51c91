"""The validated configuration of one ``bidsmask`` invocation.

:class:`Config` is built by ``bidsmask.app.cli.parse_args`` and travels, unchanged, to the
participant and group levels (and into worker processes): there is no global state. Its
:meth:`Config.save` writes every value used, with the command line and version, to
``OUTPUT_DIR/logs/`` so that a result can be reproduced.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bidsmask._version import __version__
from bidsmask.app.exitcodes import MissingInputError, OutputError, UsageError
from bidsmask.bids.naming import sanitize_label

#: Default analysis choices, shown in ``--help`` and recorded in every sidecar.
DEFAULT_SPACE = "MNI152NLin2009cAsym"
DEFAULT_ATLAS = "Schaefer2018:400Parcels7Networks"
DEFAULT_STRATEGY = "simple"
DEFAULT_STANDARDIZE = "zscore_sample"
DEFAULT_MIN_COVERAGE = 0.5
DEFAULT_MIN_VOLUMES = 20
DEFAULT_RADIUS = 5.0
DEFAULT_GM_THRESHOLD = 0.5
DEFAULT_GROUP_MASK_THRESHOLD = 0.5
DEFAULT_CONNECTIVITY = "correlation"

MASK_CHOICES = ("fmriprep", "epi", "gm")
STANDARDIZE_CHOICES = ("zscore_sample", "zscore", "psc", "none")
CONNECTIVITY_CHOICES = ("correlation", "partial-correlation", "covariance", "none")

_SPACE_RE = re.compile(
    r"^(?P<name>[A-Za-z0-9]+)(?::res-(?P<res>[A-Za-z0-9]+))?(?::den-(?P<den>[A-Za-z0-9]+))?$"
)
#: Grayordinate (CIFTI) spaces and their default density.
CIFTI_SPACES = {"fsLR": "91k"}


@dataclass(frozen=True)
class Space:
    """An output space, optionally at one TemplateFlow/fMRIPrep resolution.

    Parameters
    ----------
    name : str
        The ``space-`` label, e.g. ``"MNI152NLin2009cAsym"`` or ``"T1w"``.
    res : str or None
        The ``res-`` label (``"2"`` for ``res-2``); None selects every resolution found.
    den : str or None
        The ``den-`` label of a grayordinate space (``fsLR`` defaults to ``"91k"``).

    Examples
    --------
    >>> Space.parse("MNI152NLin2009cAsym:res-2")
    Space(name='MNI152NLin2009cAsym', res='2', den=None)
    >>> str(Space("T1w"))
    'T1w'
    >>> str(Space.parse("fsLR"))
    'fsLR:den-91k'
    """

    name: str
    res: str | None = None
    den: str | None = None

    @classmethod
    def parse(cls, text: str) -> Space:
        """Parse ``NAME``, ``NAME:res-LABEL`` or ``fsLR:den-LABEL`` (fMRIPrep's syntax).

        Parameters
        ----------
        text : str
            The space as typed on the command line.

        Returns
        -------
        Space
            The parsed space.

        Raises
        ------
        ValueError
            If ``text`` is not of that form.
        """
        match = _SPACE_RE.match(text.strip())
        if match is None:
            raise ValueError(
                f"invalid space {text!r}: use a space label such as 'MNI152NLin2009cAsym', "
                "optionally with a resolution, e.g. 'MNI152NLin2009cAsym:res-2', or a "
                "grayordinate space with its density, e.g. 'fsLR:den-91k'"
            )
        res, den = match["res"], match["den"]
        if res is not None and res.isdigit():
            res = str(int(res))  # 'res-02' and 'res-2' are the same resolution
        if den is not None and match["name"] not in CIFTI_SPACES:
            raise ValueError(
                f"invalid space {text!r}: den- applies to grayordinate spaces "
                f"({', '.join(CIFTI_SPACES)}), e.g. 'fsLR:den-91k'"
            )
        if match["name"] in CIFTI_SPACES:
            den = den or CIFTI_SPACES[match["name"]]
        return cls(match["name"], res, den)

    @property
    def is_cifti(self) -> bool:
        """Whether this is a grayordinate space (CIFTI ``dtseries`` runs)."""
        return self.name in CIFTI_SPACES

    @property
    def entities(self) -> dict[str, str]:
        """Return the BIDS entities of this space (``space``, and ``res``/``den`` when set)."""
        ents = {"space": self.name, "res": self.res, "den": self.den}
        return {k: v for k, v in ents.items() if v is not None}

    def __str__(self) -> str:
        return self.name + "".join(
            f":{k}-{v}" for k, v in (("res", self.res), ("den", self.den)) if v is not None
        )


@dataclass(frozen=True)
class Config:
    """Everything one invocation of ``bidsmask`` needs, validated.

    Parameters
    ----------
    bids_dir : Path
        The BIDS_DIR argument, resolved.
    output_dir : Path
        The OUTPUT_DIR argument, resolved.
    analysis_level : {"participant", "group"}
        Which level to run.
    fmriprep_dir : Path
        The fMRIPrep derivatives actually read (BIDS_DIR itself, BIDS_DIR/derivatives/fmriprep,
        or ``--derivatives``).
    participant_label, session_label, task : tuple of str
        Selection filters, without their ``sub-``/``ses-``/``task-`` prefixes; empty selects all.
    bids_filters : dict
        The ``--bids-filter-file`` content (fMRIPrep format: ``{"bold": {entity: value}}``).
    spaces : tuple of Space
        Output spaces.
    atlases : tuple of str
        Atlas specifications, as typed (resolved by :mod:`bidsmask.atlases`).
    atlas_datasets : tuple of Path
        BIDS-Atlas folders searched for grayordinate atlases (``--atlas-dataset``).
    radius : float
        Sphere radius in mm for coordinate atlases.
    strategies : tuple of str
        Denoising strategies (names or JSON files).
    fd_threshold, std_dvars_threshold : float or None
        Scrubbing thresholds overriding the strategy's own; None keeps the strategy's.
    dummy_scans : int or None
        Volumes to drop at the start of each run, on top of fMRIPrep's non-steady-state volumes
        (always dropped); None keeps the strategy's own (0 for every built-in strategy).
    high_pass, low_pass : float or None
        Butterworth filter cut-offs in Hz; None: no such filter.
    smoothing_fwhm : float or None
        Spatial smoothing FWHM in mm before extraction; None: none.
    detrend : bool
        Remove a linear trend from each signal before confound regression.
    standardize : str or None
        ``"zscore_sample"``, ``"zscore"``, ``"psc"`` or None.
    min_coverage : float
        Regions with a smaller fraction of their voxels inside the mask and with data (finite at
        every volume, not constant zero) are written as n/a.
    min_volumes : int
        Runs left with fewer volumes after censoring are skipped.
    mask : {"fmriprep", "epi", "gm"}
        How each run's mask is made.
    gm_threshold : float
        Grey-matter probability threshold for ``mask="gm"``.
    save_denoised_bold : bool
        Also write the cleaned voxel time series as 4D NIfTI.
    combine_runs : bool
        Also join the runs of each participant × session × task × space
        (:mod:`bidsmask.app.combine`).
    connectivity : tuple of str
        Connectivity measures (``correlation``, ``partial-correlation``, ``covariance``); empty
        for none.
    group_mask_threshold : float
        Fraction of runs a voxel must be in to enter the group mask.
    nprocs : int
        Parallel worker processes.
    omp_nthreads : int or None
        BLAS/OpenMP threads per worker; None divides the available CPUs between the workers.
    work_dir : Path or None
        Folder for the pybids database and scratch files; None uses a temporary folder.
    overwrite : bool
        Recompute runs whose outputs are complete.
    reports : bool
        Draw the figures and write the HTML reports (``--no-reports`` turns them off).
    reports_only : bool
        Only rebuild the reports from existing outputs and run records (no BOLD is read).
    verbosity : int
        0 normal, > 0 more detail, < 0 warnings and errors only.
    argv : tuple of str
        The command line, for the record.
    """

    bids_dir: Path
    output_dir: Path
    analysis_level: str
    fmriprep_dir: Path
    participant_label: tuple[str, ...] = ()
    session_label: tuple[str, ...] = ()
    task: tuple[str, ...] = ()
    bids_filters: dict[str, Any] = field(default_factory=dict)
    spaces: tuple[Space, ...] = (Space(DEFAULT_SPACE),)
    atlases: tuple[str, ...] = (DEFAULT_ATLAS,)
    atlas_datasets: tuple[Path, ...] = ()
    radius: float = DEFAULT_RADIUS
    strategies: tuple[str, ...] = (DEFAULT_STRATEGY,)
    fd_threshold: float | None = None
    std_dvars_threshold: float | None = None
    dummy_scans: int | None = None
    high_pass: float | None = None
    low_pass: float | None = None
    smoothing_fwhm: float | None = None
    detrend: bool = True
    standardize: str | None = DEFAULT_STANDARDIZE
    min_coverage: float = DEFAULT_MIN_COVERAGE
    min_volumes: int = DEFAULT_MIN_VOLUMES
    mask: str = "fmriprep"
    gm_threshold: float = DEFAULT_GM_THRESHOLD
    save_denoised_bold: bool = False
    combine_runs: bool = False
    connectivity: tuple[str, ...] = (DEFAULT_CONNECTIVITY,)
    group_mask_threshold: float = DEFAULT_GROUP_MASK_THRESHOLD
    nprocs: int = 1
    omp_nthreads: int | None = None
    work_dir: Path | None = None
    overwrite: bool = False
    reports: bool = True
    reports_only: bool = False
    verbosity: int = 0
    argv: tuple[str, ...] = ()

    @property
    def logs_dir(self) -> Path:
        """Return ``OUTPUT_DIR/logs``, where the log file and the saved configuration go."""
        return self.output_dir / "logs"

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as JSON-serialisable values.

        Returns
        -------
        dict
            One key per field; paths and spaces as strings, tuples as lists.
        """
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = [str(v) if isinstance(v, Space | Path) else v for v in value]
            out[f.name] = value
        return out

    def save(self, directory: Path | None = None) -> Path:
        """Write the configuration used, with the version and time, as JSON.

        Parameters
        ----------
        directory : Path or None
            Where to write; default :attr:`logs_dir`.

        Returns
        -------
        Path
            ``config-<level>-<UTC timestamp>-<pid>.json``; the process id keeps two jobs started
            in the same second from overwriting each other's record.
        """
        directory = self.logs_dir if directory is None else Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = directory / f"config-{self.analysis_level}-{stamp}-{os.getpid()}.json"
        record = {"bidsmask_version": __version__, "created": stamp, **self.to_dict()}
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path


def strategy_label(strategy: str) -> str:
    """Return the ``desc-`` value of a strategy's outputs (a JSON file gives its stem).

    Examples
    --------
    >>> strategy_label("36P+gsr"), strategy_label("/data/my_set.json")
    ('36Pgsr', 'myset')
    """
    name = Path(strategy).name.split(".")[0] if strategy.endswith(".json") else strategy
    return sanitize_label(name)


# Validation of single values (used by the parser in ``bidsmask.app.cli``) ---------------------
def in_range(kind: type, low: float, high: float = math.inf, *, open_low: bool = False):
    """Return a converter to ``kind`` that accepts values in [low, high] (or (low, high])."""

    def convert(text: str) -> float:
        value = kind(text)
        if not low <= value <= high or (open_low and value == low):
            raise ValueError("")
        return value

    return convert


POSITIVE_FLOAT = in_range(float, 0.0, open_low=True)
FRACTION = in_range(float, 0.0, 1.0)


def strip_prefix(prefix: str) -> Callable[[str], str]:
    """Return a converter of a BIDS label given with or without ``prefix`` (e.g. ``sub-``)."""

    def strip(text: str) -> str:
        label = text[len(prefix) :] if text.startswith(prefix) else text
        if not label or not label.isalnum():
            raise ValueError("labels are letters and digits only")
        return label

    return strip


def read_filter_file(text: str) -> dict:
    """Read a ``--bids-filter-file``: a JSON object of queries (ValueError naming the problem)."""
    path = Path(text)
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read it as JSON: {exc}") from None
    if not isinstance(content, dict) or not all(isinstance(v, dict) for v in content.values()):
        raise ValueError('expected a JSON object of queries, e.g. {"bold": {"acquisition": "mb4"}}')
    return content


def check_strategy(strategy: str) -> str:
    """Return a known strategy name, or a JSON strategy file as an absolute path."""
    from bidsmask.confounds import list_strategies

    if strategy.endswith(".json"):
        path = Path(strategy).expanduser().resolve()
        if not path.is_file():
            raise MissingInputError(f"--strategy: strategy file not found: {path}.")
        return str(path)
    known = list_strategies()
    if strategy not in known:
        raise UsageError(
            f"--strategy: unknown strategy {strategy!r}; choose from {', '.join(known)}, "
            "or give a JSON strategy file."
        )
    return strategy


def check_atlas(atlas: str) -> None:
    """Check that an --atlas value can be understood (files are read later, per space)."""
    from bidsmask.atlases import parse_atlas_spec

    try:
        parse_atlas_spec(atlas)
    except FileNotFoundError as exc:
        raise MissingInputError(f"--atlas: {exc}") from None
    except ValueError as exc:
        raise UsageError(f"--atlas: {exc}") from None


def prepare_output_dir(output_dir: Path) -> None:
    """Create OUTPUT_DIR and check that files can be written in it (OutputError otherwise)."""
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output_dir, prefix=".bidsmask-write-test-"):
            pass
    except OSError as exc:
        raise OutputError(
            f"OUTPUT_DIR {output_dir} cannot be created or written ({exc.strerror or exc}). "
            "Choose a folder you can write to, or fix its permissions."
        ) from None
