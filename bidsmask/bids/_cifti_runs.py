"""Grayordinate runs: fMRIPrep's ``*_space-fsLR_den-<d>_bold.dtseries.nii`` and companions.

fMRIPrep's ``--cifti-output`` writes ``<source>_space-fsLR_den-91k_bold.dtseries.nii`` beside the
volumes, with a JSON sidecar ``…_bold.dtseries.json`` (or ``…_bold.json``); the confounds are
the run's ``<source>_desc-confounds_timeseries.tsv``, shared with its volumes. There is no mask:
which grayordinates hold data is decided from the data (:mod:`bidsmask.regions`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from bidsmask.bids.layout import RunRecord, _confounds, _entities, _first, _read_json
from bidsmask.cifti import open_dense

logger = logging.getLogger(__name__)

_TAIL = "_bold.dtseries.nii"


def cifti_record(root: Path, dtseries: Path) -> RunRecord:
    """Describe one grayordinate run (``mask`` is None).

    Raises
    ------
    FileNotFoundError
        No confounds file next to the run.
    ValueError
        The file is not a CIFTI-2 dense series or has no usable repetition time.
    """
    del root  # the companions of a dtseries all sit in its folder
    name = dtseries.name
    if not name.endswith(_TAIL):
        raise ValueError(f"{dtseries} is not named like an fMRIPrep '*_bold.dtseries.nii' file.")
    ents = _entities(name)
    confounds = _confounds(dtseries, ents)
    folder = dtseries.parent
    base = name[: -len(".nii")]
    sidecar = _first([folder / f"{base}.json", folder / f"{name[: -len('.dtseries.nii')]}.json"])
    metadata = {} if sidecar is None else _read_json(sidecar)
    return RunRecord(
        bold=dtseries,
        mask=None,
        confounds=confounds,
        repetition_time=_repetition_time(dtseries, metadata),
        entities=ents,
        metadata=metadata,
        confounds_json=_first([confounds.with_suffix(".json")]),
    )


def _repetition_time(dtseries: Path, metadata: dict) -> float:
    """Return the sidecar's RepetitionTime, else the step of the file's series axis (s)."""
    t_r = metadata.get("RepetitionTime")
    if isinstance(t_r, (int, float)) and t_r > 0:
        return float(t_r)
    try:
        series = open_dense(dtseries).series  # (start, step) in seconds; data not read
    except Exception as exc:  # noqa: BLE001 - any unreadable file is reported the same way
        raise ValueError(f"{dtseries}: cannot read it as a CIFTI-2 dense series ({exc}).") from None
    if series is None or series[1] <= 0:
        raise ValueError(
            f"No RepetitionTime for {dtseries}: its sidecar lacks 'RepetitionTime' and its "
            "first axis is not a time series. Add RepetitionTime (seconds) to the sidecar."
        )
    step = series[1]
    logger.warning(
        "%s: RepetitionTime missing from the sidecar; using %.4g s.", dtseries.name, step
    )
    return float(step)
