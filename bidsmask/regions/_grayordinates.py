"""Parcel means over CIFTI grayordinates, streamed over chunks of grayordinates.

A grayordinate *qualifies* when its data are finite at every volume and not zero at every
volume (fMRIPrep writes grayordinates without signal as 0 or NaN). A parcel's signal is the
mean of its qualifying grayordinates; its coverage is the fraction of the parcel's
grayordinates (all those the atlas gives it, in the data or not) that qualify. A parcel with
none has a signal of 0 and coverage 0.

Arrays only: the atlas arrives as one label per data grayordinate (aligned by
:mod:`bidsmask.cifti`), the data as any object sliced ``data[:, c0:c1]`` (a nibabel
``dataobj`` reads only that block of an uncompressed file, in one contiguous read).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy import sparse

logger = logging.getLogger(__name__)

# ~2 MiB of float32 per chunk (300 volumes of ~1,750 grayordinates): its float64 copy and masks
# stay in cache; 64 MiB chunks took twice as long and 140 MiB more memory (benchmarks/cifti.py)
_CHUNK_BYTES = 2 * 2**20


class GrayordinateSpec:
    """Parcel means of a grayordinate atlas.

    Parameters
    ----------
    labels : numpy.ndarray
        One integer label per data grayordinate (``background_label`` where the atlas gives
        none).
    region_ids : sequence of int or None, default=None
        Labels of the output columns, in order; ``None`` takes the sorted labels present in
        ``labels``. Regions with no grayordinate in the data give 0 (coverage 0).
    atlas_sizes : sequence of int or None, default=None
        Grayordinates of each region in the whole atlas (the coverage denominator); ``None``
        counts them in ``labels``.
    background_label : int, default=0
        Label of grayordinates outside every region.

    Attributes
    ----------
    columns : numpy.ndarray
        Sorted indices of the grayordinates this spec reads.
    column_regions : numpy.ndarray
        Output column (region position) of each of ``columns``.
    operator : scipy.sparse.csr_array
        (n_regions, n_columns) membership matrix.
    data_sizes, atlas_sizes : numpy.ndarray
        Grayordinates of each region among the data's and in the whole atlas.
    """

    def __init__(
        self,
        labels: np.ndarray,
        region_ids: Sequence[int] | None = None,
        atlas_sizes: Sequence[int] | None = None,
        background_label: int = 0,
    ):
        labels = np.asarray(labels)
        if labels.ndim != 1:
            raise ValueError(f"'labels' must be 1D (one per grayordinate); got {labels.shape}.")
        inside = labels != background_label
        present = np.unique(labels[inside])
        self.region_ids = (
            present if region_ids is None else np.asarray(region_ids, dtype=labels.dtype)
        )
        if self.region_ids.size == 0:
            raise ValueError("The atlas gives no region on these grayordinates.")
        if np.unique(self.region_ids).size != self.region_ids.size:
            raise ValueError("'region_ids' has repeated values.")
        self.n_grayordinates = labels.size
        order = np.argsort(self.region_ids)
        sorted_ids = self.region_ids[order]
        position = np.searchsorted(sorted_ids, labels)
        position = np.minimum(position, sorted_ids.size - 1)
        known = inside & (sorted_ids[position] == labels)
        self.columns = np.flatnonzero(known)
        rows = order[position[known]]
        self.operator = sparse.csr_array(
            (np.ones(self.columns.size), (rows, np.arange(self.columns.size))),
            shape=(self.region_ids.size, self.columns.size),
        )
        self.column_regions = rows
        self.data_sizes = np.bincount(rows, minlength=self.region_ids.size)
        self.atlas_sizes = (
            self.data_sizes.copy() if atlas_sizes is None else np.asarray(atlas_sizes, np.int64)
        )
        if self.atlas_sizes.shape != self.region_ids.shape:
            raise ValueError(
                f"'atlas_sizes' has {self.atlas_sizes.size} values for "
                f"{self.region_ids.size} regions."
            )

    @property
    def n_elements(self) -> int:
        """Number of output columns (regions)."""
        return int(self.region_ids.size)

    def counts(self, qualified: np.ndarray) -> np.ndarray:
        """Qualifying grayordinates of each region, given the data's ``qualified`` mask."""
        return np.asarray(self.operator @ qualified[self.columns].astype(np.float64)).astype(
            np.int64
        )

    def coverage(self, qualified: np.ndarray) -> np.ndarray:
        """Fraction of each region's atlas grayordinates that qualify."""
        counts = self.counts(qualified)
        return np.divide(
            counts,
            self.atlas_sizes,
            out=np.zeros(counts.size),
            where=self.atlas_sizes > 0,
        )

    def finish(self, sums: np.ndarray, qualified: np.ndarray) -> np.ndarray:
        """Means from per-region sums (float64 (n_regions, n)) → float32 (n, n_regions)."""
        counts = self.counts(qualified)
        means = np.divide(
            sums.T, counts, out=np.zeros(sums.shape[::-1], dtype=np.float64), where=counts > 0
        )
        return means.astype(np.float32)


def qualifying(data: np.ndarray) -> np.ndarray:
    """Grayordinates (columns) that are finite at every row and not zero at every row.

    Examples
    --------
    >>> qualifying(np.array([[1.0, 0.0, np.nan], [2.0, 0.0, 1.0]]))
    array([ True, False, False])
    """
    data = np.asarray(data)
    return np.isfinite(data).all(axis=0) & (data != 0).any(axis=0)


def reduce_grayordinates(data: np.ndarray, labels: np.ndarray, background_label: int = 0):
    """Mean of each label's qualifying grayordinates, for data held in memory.

    Parameters
    ----------
    data : numpy.ndarray
        (n_volumes, n_grayordinates) data.
    labels : numpy.ndarray
        One integer label per grayordinate.
    background_label : int, default=0
        Label of grayordinates outside every region.

    Returns
    -------
    numpy.ndarray
        float32 (n_volumes, n_regions), regions in increasing label order.

    Examples
    --------
    >>> data = np.array([[1.0, 3.0, np.nan, 4.0], [2.0, 4.0, 0.0, 6.0]])
    >>> reduce_grayordinates(data, np.array([1, 1, 2, 2]))
    array([[2., 4.],
           [3., 6.]], dtype=float32)
    """
    spec = GrayordinateSpec(labels, background_label=background_label)
    (signals,), _ = extract_grayordinates(np.asarray(data), [spec])
    return signals


class _Accumulator:
    """State of a streamed extraction: the specs' stacked operator, sums, qualifying columns."""

    def __init__(self, specs: Sequence[GrayordinateSpec], n_volumes: int):
        self.union = np.unique(np.concatenate([spec.columns for spec in specs])).astype(np.intp)
        self.lo = int(self.union[0]) if self.union.size else 0
        self.hi = int(self.union[-1]) + 1 if self.union.size else 0
        # all specs' operators, stacked, with columns in union positions (CSC: sliced by chunk)
        stacked = [
            sparse.csr_array(
                (op.data, np.searchsorted(self.union, spec.columns[op.indices]), op.indptr),
                shape=(op.shape[0], self.union.size),
            )
            for spec in specs
            for op in [sparse.csr_array(spec.operator)]
        ]
        self.operator = sparse.vstack(stacked, format="csc")
        bounds = np.cumsum([0] + [spec.n_elements for spec in specs])
        self.rows = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        self.qualified = np.zeros(self.union.size, dtype=bool)
        self.sums = np.zeros((self.operator.shape[0], n_volumes), dtype=np.float64)

    def add(self, block: np.ndarray, positions: slice) -> None:
        """Accumulate a (n_volumes, n) block: every volume of union columns ``positions``."""
        ok = np.isfinite(block).all(axis=0)
        if not ok.all():
            block = np.where(ok, block, 0)  # columns without data count for nothing
        ok &= (block != 0).any(axis=0)  # all-zero columns are 0 already
        self.qualified[positions] = ok
        operator = self.operator[:, positions]
        self.sums += operator @ np.ascontiguousarray(block.T, dtype=np.float64)


def _chunk_columns(n_volumes: int, chunk_grayordinates: int | None) -> int:
    if chunk_grayordinates is not None:
        return max(1, int(chunk_grayordinates))
    return max(1, _CHUNK_BYTES // (4 * max(n_volumes, 1)))


def extract_grayordinates(
    data, specs: Sequence[GrayordinateSpec], *, chunk_grayordinates: int | None = None
) -> tuple[list[np.ndarray], np.ndarray]:
    """Read (n_volumes, n_grayordinates) data once, by chunks of grayordinates, into every spec.

    Each chunk holds every volume of a range of grayordinates: in a CIFTI file (NIfTI stores
    time fastest) that is one contiguous read, and a grayordinate's whole series is then at
    hand to decide whether it qualifies. Only the range of grayordinates the specs use is read.

    Parameters
    ----------
    data : array-like
        Sliced as ``data[:, c0:c1]`` (a numpy array or a nibabel ``dataobj``).
    specs : sequence of GrayordinateSpec
        Atlases aligned to the data's grayordinates.
    chunk_grayordinates : int or None, default=None
        Grayordinates per chunk; ``None`` keeps a chunk near 2 MiB of float32.

    Returns
    -------
    signals : list of numpy.ndarray
        float32 (n_volumes, n_regions) per spec.
    qualified : numpy.ndarray
        Boolean (n_grayordinates,): which grayordinates qualified (False outside all specs).
    """
    specs = list(specs)
    if not specs:
        raise ValueError("extract_grayordinates() needs at least one spec; got none.")
    n_volumes, n_grayordinates = (int(s) for s in data.shape)
    for i, spec in enumerate(specs):
        if spec.n_grayordinates != n_grayordinates:
            raise ValueError(
                f"specs[{i}] was built for {spec.n_grayordinates} grayordinates; the data "
                f"has {n_grayordinates}. Align the atlas to the data's brain models."
            )
    acc = _Accumulator(specs, n_volumes)
    step = _chunk_columns(n_volumes, chunk_grayordinates)
    logger.debug("Reading %d volumes x %d grayordinates by %d", n_volumes, acc.hi - acc.lo, step)
    for c0 in range(acc.lo, acc.hi, step):
        c1 = min(acc.hi, c0 + step)
        a, b = np.searchsorted(acc.union, [c0, c1])
        if a == b:
            continue
        block = np.asarray(data[:, c0:c1], dtype=np.float32)
        columns = acc.union[a:b] - c0
        if columns.size != c1 - c0:
            block = block[:, columns]
        acc.add(block, slice(a, b))
    qualified = np.zeros(n_grayordinates, dtype=bool)
    qualified[acc.union] = acc.qualified
    signals = [
        spec.finish(acc.sums[rows], qualified) for spec, rows in zip(specs, acc.rows, strict=True)
    ]
    return signals, qualified
