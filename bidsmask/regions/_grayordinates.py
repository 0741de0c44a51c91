"""Parcel means over CIFTI grayordinates, streamed over chunks of volumes.

A grayordinate *qualifies* when its data are finite at every volume and not zero at every
volume (fMRIPrep writes grayordinates without signal as 0 or NaN). A parcel's signal is the
mean of its qualifying grayordinates; its coverage is the fraction of the parcel's
grayordinates (all those the atlas gives it, in the data or not) that qualify. A parcel with
none has a signal of 0 and coverage 0.

Arrays only: the atlas arrives as one label per data grayordinate (aligned by
:mod:`bidsmask.cifti`), the data as any object sliced ``data[t0:t1, c0:c1]`` (a nibabel
``dataobj`` reads only that block of an uncompressed file).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy import sparse

logger = logging.getLogger(__name__)

# ~64 MiB of float32 per chunk: a 91k-grayordinate file is read ~180 volumes at a time
_CHUNK_BYTES = 64 * 2**20


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
    """Per-chunk state of a streamed extraction: sums, and which columns qualify so far."""

    def __init__(self, specs: Sequence[GrayordinateSpec], n_volumes: int):
        self.union = np.unique(np.concatenate([spec.columns for spec in specs])).astype(np.intp)
        self.lo = int(self.union[0]) if self.union.size else 0
        self.hi = int(self.union[-1]) + 1 if self.union.size else 0
        local = self.union - self.lo
        # all specs' operators, stacked, with columns in the read range [lo, hi)
        stacked = [
            sparse.csr_array(
                (op.data, spec.columns[op.indices] - self.lo, op.indptr),
                shape=(op.shape[0], self.hi - self.lo),
            )
            for spec in specs
            for op in [sparse.csr_array(spec.operator)]
        ]
        self.operator = sparse.vstack(stacked, format="csr")[:, local].tocsc()
        bounds = np.cumsum([0] + [spec.n_elements for spec in specs])
        self.rows = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        self.local = local
        self.finite = np.ones(self.union.size, dtype=bool)
        self.any_finite = np.zeros(self.union.size, dtype=bool)
        self.nonzero = np.zeros(self.union.size, dtype=bool)
        self.sums = np.zeros((self.operator.shape[0], n_volumes), dtype=np.float64)

    def add(self, block: np.ndarray, times: slice) -> None:
        """Accumulate a (n, hi - lo) block of volumes ``times``."""
        block = block[:, self.local] if self.local.size != block.shape[1] else block
        finite = np.isfinite(block)
        if not finite.all():
            self.finite &= finite.all(axis=0)
            self.any_finite |= finite.any(axis=0)
            block = np.where(finite, block, 0)
        else:
            self.any_finite[:] = True
        self.nonzero |= (block != 0).any(axis=0)
        self.sums[:, times] = self.operator @ np.ascontiguousarray(block.T, dtype=np.float64)

    def partial(self) -> np.ndarray:
        """Union positions of columns finite at some volumes but not all (need a correction)."""
        return np.flatnonzero(~self.finite & self.any_finite & self.nonzero)


def _chunk_volumes(n_columns: int, chunk_volumes: int | None) -> int:
    if chunk_volumes is not None:
        return max(1, int(chunk_volumes))
    return max(1, _CHUNK_BYTES // (4 * max(n_columns, 1)))


def extract_grayordinates(
    data, specs: Sequence[GrayordinateSpec], *, chunk_volumes: int | None = None
) -> tuple[list[np.ndarray], np.ndarray]:
    """Read (n_volumes, n_grayordinates) data once, by chunks of volumes, into every spec.

    Only the range of grayordinates the specs use is read. Columns that are non-finite at
    some volumes only (rare) are taken out of the sums with a second read of those columns.

    Parameters
    ----------
    data : array-like
        Sliced as ``data[t0:t1, c0:c1]`` (a numpy array or a nibabel ``dataobj``).
    specs : sequence of GrayordinateSpec
        Atlases aligned to the data's grayordinates.
    chunk_volumes : int or None, default=None
        Volumes per chunk; ``None`` keeps a chunk near 64 MiB.

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
    step = _chunk_volumes(acc.hi - acc.lo, chunk_volumes)
    logger.debug("Reading %d volumes x %d grayordinates by %d", n_volumes, acc.hi - acc.lo, step)
    for t0 in range(0, n_volumes, step):
        times = slice(t0, min(n_volumes, t0 + step))
        acc.add(np.asarray(data[times, acc.lo : acc.hi], dtype=np.float32), times)
    partial = acc.partial()
    if partial.size:
        _remove_partial(data, acc, partial, step)
    qualified = np.zeros(n_grayordinates, dtype=bool)
    qualified[acc.union] = acc.finite & acc.nonzero
    signals = [
        spec.finish(acc.sums[rows], qualified) for spec, rows in zip(specs, acc.rows, strict=True)
    ]
    return signals, qualified


def _remove_partial(data, acc: _Accumulator, partial: np.ndarray, step: int) -> None:
    """Subtract the finite values of partly non-finite columns from the sums."""
    columns = acc.union[partial]
    lo, hi = int(columns[0]), int(columns[-1]) + 1
    operator = acc.operator[:, partial]
    logger.debug("%d grayordinate(s) are non-finite at some volumes only", partial.size)
    for t0 in range(0, acc.sums.shape[1], step):
        times = slice(t0, min(acc.sums.shape[1], t0 + step))
        block = np.asarray(data[times, lo:hi], dtype=np.float64)[:, columns - lo]
        block[~np.isfinite(block)] = 0.0
        acc.sums[:, times] -= operator @ block.T
