"""Volume accounting of a run cleaned with one strategy: why each removed volume was removed."""

from __future__ import annotations

VOLUME_FIELDS = {
    "VolumesCensored": "Volumes removed, for any reason (the sum of the three below).",
    "VolumesNonSteadyState": "Volumes fMRIPrep flagged as non-steady-state "
    "(non_steady_state_outlier_XX columns).",
    "VolumesDummyScans": "First volumes removed by --dummy-scans (or the strategy's "
    "n_dummy_scans) that were not already non-steady-state.",
    "VolumesScrubbed": "Other volumes removed by scrubbing (framewise displacement, DVARS, and "
    "the segments too short between them).",
}


def volume_accounting(censored: dict[str, int]) -> dict[str, int]:
    """Sidecar fields of the volumes removed, by reason, from a strategy's ``censored`` counts.

    Parameters
    ----------
    censored : dict
        ``{"non_steady_state": int, "dummy_scans": int, "scrubbed": int}``, as in the parameters
        :func:`bidsmask.confounds.load_strategy` returns (each volume counted once).

    Returns
    -------
    dict
        The fields of :data:`VOLUME_FIELDS`; ``VolumesCensored`` is the sum of the others, so
        that ``VolumesKept + VolumesCensored`` is the run's number of volumes.

    Examples
    --------
    >>> counts = {"non_steady_state": 2, "dummy_scans": 1, "scrubbed": 5}
    >>> volume_accounting(counts)["VolumesCensored"]
    8
    """
    parts = {
        "VolumesNonSteadyState": int(censored["non_steady_state"]),
        "VolumesDummyScans": int(censored["dummy_scans"]),
        "VolumesScrubbed": int(censored["scrubbed"]),
    }
    return {"VolumesCensored": sum(parts.values()), **parts}
