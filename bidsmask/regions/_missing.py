"""Voxels without data, found during the single read of a run (see :func:`regions.extract_regions`).

A voxel *has data* when its time series is finite at every volume of the run and is not constant
zero. :class:`MissingData` follows each voxel of the gathered union through the pass: whether it
has been finite so far, whether it has been non-zero so far, and, for the voxels that may have to
be taken out of the sums (the *suspects*), the values that were summed for them, so that their
contribution can be subtracted exactly at the end, without a second read:

- a voxel with a non-finite value was summed as 0 at those volumes, and as its value elsewhere;
- a constant-zero voxel contributed nothing, unless the run is smoothed (its smoothed values are
  not zero), so it is a suspect only then.

A suspect's values are kept from the chunk it becomes suspect in. In the rare case where a voxel
becomes non-finite only after volumes where it had (summed) values (or, for a smoothed run, after
any volume), its values at those earlier volumes were never kept: the run is then read again from
its first volume up to the last such one (:attr:`MissingData.recover_until`) - for a ``.nii.gz``
run, a second decompression of that part of the file - and only those voxels' values are taken
from it. This happens only with ``exclude_missing`` and is logged at INFO.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Extraction:
    """The result of :func:`bidsmask.regions.extract_regions`.

    Attributes
    ----------
    signals : list of numpy.ndarray
        One float32 (n_volumes, n_elements) array per spec. With ``exclude_missing``, an element
        without any voxel with data is NaN.
    coverage : list of numpy.ndarray
        Per spec, the fraction of each element's voxels (its atlas voxels, before the mask) that
        are inside the mask *and* have data.
    voxel_counts : list of numpy.ndarray
        Per spec, the voxels with data of each element.
    missing_voxels : numpy.ndarray
        Sorted flat C-order indices of the voxels read that have no data.
    non_finite_voxels : numpy.ndarray
        The subset of ``missing_voxels`` with a non-finite value (the others are constant zero).
    """

    signals: list
    coverage: list
    voxel_counts: list
    missing_voxels: np.ndarray
    non_finite_voxels: np.ndarray


class MissingData:
    """Per-voxel flags and suspects' values over one pass (positions index the gathered union).

    Parameters
    ----------
    n_voxels : int
        Voxels of the gathered union.
    keep_values : bool
        Keep the suspects' summed values (needed only to exclude them from the outputs).
    smoothed : bool
        The summed values are smoothed: constant-zero voxels are suspects too.
    """

    def __init__(self, n_voxels: int, *, keep_values: bool, smoothed: bool):
        self.finite = np.ones(n_voxels, dtype=bool)
        self.nonzero = np.zeros(n_voxels, dtype=bool)
        self.keep_values = keep_values
        self.smoothed = smoothed
        self.suspect = np.zeros(n_voxels, dtype=bool)
        self.recover_until = np.zeros(n_voxels, dtype=np.int64)
        self._records: list[tuple[int, np.ndarray, np.ndarray]] = []

    def update(self, raw: np.ndarray, start: int) -> bool:
        """Update the flags with a gathered (n, n_voxels) block of volumes ``start:start+n``.

        ``raw`` holds the values before any zero-filling or smoothing. Returns whether they are
        all finite.
        """
        had_values = self.nonzero.copy() if self.keep_values and start > 0 else None
        # any NaN or infinity makes the sum non-finite (a float32 overflow costs a needless scan)
        all_finite = bool(np.isfinite(np.add.reduce(raw, axis=None)))
        if not all_finite:
            self.finite &= np.isfinite(raw).all(axis=0)
        unknown = np.flatnonzero(~self.nonzero)
        if unknown.size == self.nonzero.size:
            self.nonzero = (raw != 0).any(axis=0)
        elif unknown.size:
            self.nonzero[unknown] = (raw[:, unknown] != 0).any(axis=0)
        if not self.keep_values:
            return all_finite
        suspect = ~self.finite
        if self.smoothed:
            suspect |= ~self.nonzero
        new = suspect & ~self.suspect
        if had_values is not None and new.any():
            # their earlier volumes were summed but not kept: read again at the end
            late = new & (had_values | self.smoothed)
            self.recover_until[late] = start
        self.suspect |= new
        return all_finite

    def keep(self, summed: np.ndarray, start: int) -> None:
        """Keep the suspects' columns of the (n, n_voxels) block that was summed."""
        if self.keep_values and self.suspect.any():
            positions = np.flatnonzero(self.suspect)
            self._records.append((start, positions, summed[:, positions]))  # a copy

    @property
    def missing(self) -> np.ndarray:
        """Boolean (n_voxels,): the voxels without data."""
        return ~self.finite | ~self.nonzero

    def to_subtract(self) -> np.ndarray:
        """Positions whose summed values must be taken out of the sums (sorted)."""
        summed = ~self.finite
        if self.smoothed:
            summed |= ~self.nonzero
        return np.flatnonzero(summed)

    def values(self, positions: np.ndarray, n_volumes: int) -> np.ndarray:
        """Return the kept (n_volumes, len(positions)) float64 summed values of those voxels.

        Volumes before a voxel's :attr:`recover_until` are 0 here; the caller fills them.
        """
        out = np.zeros((n_volumes, positions.size), dtype=np.float64)
        for start, kept, values in self._records:
            where = np.searchsorted(kept, positions)
            where = np.minimum(where, kept.size - 1)
            found = kept[where] == positions
            if found.any():
                rows = slice(start, start + values.shape[0])
                out[rows, np.flatnonzero(found)] = values[:, where[found]]
        return out
