"""Region reductions and the single-pass extraction engine.

Every extraction is described by a *spec* built from arrays on the data grid:

- :class:`LabelsSpec` — one signal per label of a deterministic atlas (mean, median, sum,
  minimum, maximum, variance or standard deviation of the region's voxels);
- :class:`MapsSpec` — one signal per probabilistic map, the least-squares solution of
  ``maps @ signals = data`` (nilearn's ``lstsq`` result): the sparse maps' projections, then
  the pseudo-inverse of their small Gram matrix;
- :class:`SpheresSpec` — the mean of the voxels within ``radius`` mm of each seed;
- :class:`VoxelSpec` — the voxels of a mask, in ``data3d[mask]`` order;
- :class:`GrayordinateSpec` — parcel means over CIFTI grayordinates (with
  :func:`extract_grayordinates`, which streams (volumes × grayordinates) data instead of a 4D
  grid).

Each spec lists the voxels it needs (``voxels``: flat C-order indices into the 3D grid) and reduces
a ``(n_volumes, n_voxels)`` block of those voxels to ``(n_volumes, n_elements)``. Each exposes
``region_ids``, ``voxel_counts`` (voxels used per element) and ``coverage`` (fraction of the
element's voxels that lie inside the mask).

:func:`extract` reads a run once, a chunk of volumes at a time, gathers the union of all specs'
voxels once per chunk and feeds every spec from it, so an app can extract any number of atlases for
the cost of one read. Specs that are a sparse ``operator @ data.T`` followed by a small ``finish``
(sums-based labels, maps, spheres) share one stacked sparse product over the gathered voxels.
The data path is float32; sums are accumulated in float64. No float64 copy of a 4D image is ever
made: memory is the outputs plus one chunk.

:func:`extract_regions` does the same pass and also finds the voxels without data (non-finite at
some volume, or constant zero), leaves them out of the signals exactly, and gives each element's
coverage by voxels with data (:class:`Extraction`); :func:`extract` keeps nilearn's numbers
(non-finite values count as 0). Private modules: ``_specs`` (labels, voxels), ``_maps``,
``_spheres``, ``_pass`` (the chunk pipeline), ``_missing`` (voxels without data).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np
from nibabel.spatialimages import SpatialImage
from scipy import sparse

from bidsmask.image import _reader, resample_img, smooth_array  # noqa: F401 - public since the flat layout
from bidsmask.regions._grayordinates import (
    GrayordinateSpec,
    extract_grayordinates,
    qualifying,
    reduce_grayordinates,
)
from bidsmask.regions._maps import MapsSpec, SparseMaps, reduce_maps
from bidsmask.regions._missing import Extraction, MissingData
from bidsmask.regions._pass import _Pass
from bidsmask.regions._specs import LABEL_STRATEGIES, LabelsSpec, VoxelSpec, reduce_labels
from bidsmask.regions._spheres import SpheresSpec

logger = logging.getLogger(__name__)

__all__ = [
    "LABEL_STRATEGIES",
    "Extraction",
    "GrayordinateSpec",
    "LabelsSpec",
    "MapsSpec",
    "SparseMaps",
    "SpheresSpec",
    "VoxelSpec",
    "extract",
    "extract_regions",
    "extract_grayordinates",
    "qualifying",
    "reduce_grayordinates",
    "reduce_labels",
    "reduce_maps",
]

Spec = LabelsSpec | MapsSpec | SpheresSpec | VoxelSpec


class _Operators:
    """The sparse operators of all sums-based specs, stacked, with columns in union coordinates.

    Labels (mean, sum, variance, standard deviation), maps and spheres are all ``finish`` of a
    sparse ``operator @ data.T``: stacking their operators into one CSR matrix whose columns index
    the gathered union of voxels computes every such product at once, straight from the gathered
    block (no per-spec gather of voxels), in one pass over a float64 copy of it.
    """

    def __init__(self, specs: Sequence[Spec], positions: list[np.ndarray | None], n_union: int):
        self.rows: list[slice | None] = []
        self.square_rows: list[slice | None] = []
        self._scratch = np.empty(0, dtype=np.float64)
        linear, squares = [], []
        for spec, pos in zip(specs, positions, strict=True):
            op = spec.operator
            if op is None:
                self.rows.append(None)
                self.square_rows.append(None)
                continue
            op = sparse.csr_array(op)
            # positions increase with the spec's (sorted) voxels: rows stay sorted
            columns = op.indices if pos is None else pos[op.indices]
            op = sparse.csr_array((op.data, columns, op.indptr), shape=(op.shape[0], n_union))
            self.rows.append(self._append(linear, op))
            self.square_rows.append(self._append(squares, op) if spec.needs_squares else None)
        # column-major (CSC): the product then reads each voxel's row of the transposed block
        # once, in order, and scatters into the small output, which stays in cache (a CSR
        # product would fetch block rows at random, once per non-zero: about twice as slow)
        self.linear = sparse.vstack(linear, format="csc") if linear else None
        self.squares = sparse.vstack(squares, format="csc") if squares else None

    @staticmethod
    def _append(ops: list, op: sparse.csr_array) -> slice:
        start = sum(o.shape[0] for o in ops)
        ops.append(op)
        return slice(start, start + op.shape[0])

    def apply(self, block: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """``(linear @ block.T, squares @ (block**2).T)`` in float64, ``None`` where unused."""
        if self.linear is None:
            return None, None
        # the float64 transposed block lives in one buffer reused by every batch: a fresh array
        # per batch would be page-faulted in again each time (about twice the cost of the copy)
        if self._scratch.size < block.size:
            self._scratch = np.empty(block.size, dtype=np.float64)
        block_t = self._scratch[: block.size].reshape(block.shape[::-1])
        np.copyto(block_t, block.T)
        sums = self.linear @ block_t
        squares = None if self.squares is None else self.squares @ np.square(block_t)
        return sums, squares


def extract(
    img: str | os.PathLike | SpatialImage,
    specs: Sequence[Spec],
    *,
    chunk_volumes: int | None = None,
    smoothing_fwhm: float | Sequence[float] | None = None,
    target_affine: np.ndarray | None = None,
    target_shape: Sequence[int] | None = None,
) -> list[np.ndarray]:
    """Read a run once and compute every spec's signals from the same pass.

    Each chunk of volumes is (optionally) resampled to the target grid, (optionally) smoothed,
    then the union of all specs' voxels is gathered once and handed to each spec. Non-finite
    values become 0, as in nilearn (:func:`extract_regions` leaves out the voxels without data
    instead). The next chunk is read (decompressed) by a background thread while the current one
    is reduced.

    Parameters
    ----------
    img : str, os.PathLike or nibabel image
        A 3D or 4D image or the path to one (read lazily, chunk by chunk).
    specs : sequence of LabelsSpec, MapsSpec, SpheresSpec or VoxelSpec
        The extractions, all built on the grid the data is extracted on.
    chunk_volumes : int or None, default=None
        Volumes per chunk; ``None`` keeps one chunk near 32 MiB.
    smoothing_fwhm : float, sequence of 3 floats or None, default=None
        Gaussian smoothing (mm) applied to each volume before extraction.
    target_affine, target_shape : array or None, default=None
        Resample each chunk to this grid (continuous interpolation) before smoothing, as
        nilearn's maskers do when ``resampling_target`` is not the data. Resampled values are
        clipped to the range of the whole run (0 included), as nilearn's ``resample_img`` does;
        that range is found by a first, cheap min/max pass, so only this case reads the run
        twice.

    Returns
    -------
    list of numpy.ndarray
        One array of shape (n_volumes, n_elements) per spec, in the order of ``specs``
        (a 3D image gives ``n_volumes == 1``): float32, float64 for a float64 image (every
        reduction then keeps full float64 precision, as nilearn's).

    Examples
    --------
    >>> import nibabel as nib
    >>> data = np.arange(2 * 2 * 1 * 3, dtype=np.float32).reshape(2, 2, 1, 3)
    >>> labels = np.array([[[1], [1]], [[2], [0]]])
    >>> spec = LabelsSpec(labels, strategy="mean")
    >>> extract(nib.Nifti1Image(data, np.eye(4)), [spec])[0]
    array([[1.5, 6. ],
           [2.5, 7. ],
           [3.5, 8. ]], dtype=float32)
    """
    return extract_regions(
        img,
        specs,
        exclude_missing=False,
        chunk_volumes=chunk_volumes,
        smoothing_fwhm=smoothing_fwhm,
        target_affine=target_affine,
        target_shape=target_shape,
    ).signals


def extract_regions(
    img: str | os.PathLike | SpatialImage,
    specs: Sequence[Spec],
    *,
    exclude_missing: bool = True,
    chunk_volumes: int | None = None,
    smoothing_fwhm: float | Sequence[float] | None = None,
    target_affine: np.ndarray | None = None,
    target_shape: Sequence[int] | None = None,
) -> Extraction:
    """Read a run once: every spec's signals, and each element's coverage by voxels with data.

    A voxel *has data* when its time series is finite at every volume of the run (all volumes,
    censored ones included: the extraction happens before any denoising strategy) and is not
    constant zero; for a smoothed run, that is judged on the values before smoothing. The voxels
    without data are found in the same single pass as the signals.

    With ``exclude_missing`` (the default), they are left out of every sums-based reduction
    exactly, as if they were outside the mask: label means, sums, variances and standard
    deviations are over the voxels with data, sphere means too, and maps' signals are the least
    squares solution over them (the pseudo-inverse of the Gram matrix of the maps restricted to
    them). Their values, summed as 0 where non-finite during the pass, are kept aside (only for
    those few voxels) and subtracted at the end. An element left without any voxel with data is
    NaN; so is a :class:`VoxelSpec` voxel without data. (If a voxel becomes non-finite only
    after volumes where it had values, those earlier volumes are read again for it.) Without
    ``exclude_missing``, the signals are those of :func:`extract` (nilearn's: non-finite values
    count as 0).

    Parameters
    ----------
    img : str, os.PathLike or nibabel image
        A 3D or 4D image or the path to one (read lazily, chunk by chunk).
    specs : sequence of LabelsSpec, MapsSpec, SpheresSpec or VoxelSpec
        The extractions, all built on the grid the data is extracted on.
    exclude_missing : bool, default=True
        Leave the voxels without data out of the signals. Needs sums-based label strategies
        (``mean``, ``sum``, ``variance``, ``standard_deviation``).
    chunk_volumes, smoothing_fwhm, target_affine, target_shape
        As in :func:`extract`.

    Returns
    -------
    Extraction
        Signals, coverage and voxel counts of every spec's elements, and the voxels without data.

    Raises
    ------
    ValueError
        ``exclude_missing`` with a median, minimum or maximum :class:`LabelsSpec` (their values
        over the voxels with data cannot be corrected after one pass).

    Examples
    --------
    >>> import nibabel as nib
    >>> data = np.ones((2, 2, 1, 3), dtype=np.float32)
    >>> data[0, 0] = np.nan
    >>> data[1, 1] = 0
    >>> result = extract_regions(nib.Nifti1Image(data, np.eye(4)), [LabelsSpec(np.ones((2, 2, 1)))])
    >>> result.coverage[0], result.missing_voxels
    (array([0.5]), array([0, 3]))
    """
    img = _reader.open_img(img)
    specs = list(specs)
    if exclude_missing:
        for i, spec in enumerate(specs):
            if isinstance(spec, LabelsSpec) and spec.operator is None:
                raise ValueError(
                    f"specs[{i}] uses strategy {spec.strategy!r}, which cannot leave out voxels "
                    "without data in one pass; use a sums-based strategy "
                    "(mean, sum, variance, standard_deviation) or exclude_missing=False."
                )
    run = _Pass(img, specs, chunk_volumes, smoothing_fwhm, target_affine, target_shape)
    operators = _Operators(specs, run.positions, run.union.size)
    n_volumes = run.n_volumes
    outputs = [np.zeros((n_volumes, spec.n_elements), dtype=run.dtype) for spec in specs]
    sums = squares = None
    if operators.linear is not None:
        sums = np.zeros((operators.linear.shape[0], n_volumes))
    if operators.squares is not None:
        squares = np.zeros((operators.squares.shape[0], n_volumes))
    logger.debug(
        "Extracting %d spec(s) from %s volumes, %d voxels in the union",
        len(specs),
        n_volumes,
        run.union.size,
    )
    missing = MissingData(
        run.union.size, keep_values=exclude_missing, smoothed=smoothing_fwhm is not None
    )
    buffer = run.buffer()
    raw = None if smoothing_fwhm is None else np.empty_like(buffer)
    for times, block, raw_block in run.batches(buffer, raw, n_volumes):
        if not missing.update(raw_block, times.start) and raw is None:
            np.nan_to_num(block, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        missing.keep(block, times.start)
        block_sums, block_squares = operators.apply(block)
        if sums is not None:
            sums[:, times] = block_sums
        if squares is not None:
            squares[:, times] = block_squares
        for spec, pos, rows, out in zip(specs, run.positions, operators.rows, outputs, strict=True):
            if rows is None:
                out[times] = spec.reduce(block if pos is None else block[:, pos])
    if exclude_missing and sums is not None:
        _subtract(run, operators, missing, sums, squares, buffer, raw)
    return _finish(run, specs, operators, missing, exclude_missing, sums, squares, outputs)


def _subtract(run: _Pass, operators: _Operators, missing: MissingData, sums, squares, buffer, raw):
    """Take the summed values of the voxels without data out of ``sums`` and ``squares``."""
    positions = missing.to_subtract()
    if positions.size == 0:
        return
    values = missing.values(positions, run.n_volumes)
    late = missing.recover_until[positions]
    if late.any():
        cols = np.flatnonzero(late)
        logger.info(
            "%d voxel(s) became non-finite after volumes with values: reading volumes 0-%d "
            "again for them",
            cols.size,
            int(late.max()) - 1,
        )
        for times, block, _ in run.batches(buffer, raw, int(late.max())):
            before = block[:, positions[cols]]
            np.nan_to_num(before, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
            rows = np.arange(times.start, times.stop)[:, None] < late[cols]
            kept = values[times.start : times.stop, cols]
            values[times.start : times.stop, cols] = np.where(rows, before, kept)
    values_t = np.ascontiguousarray(values.T)
    sums -= operators.linear[:, positions] @ values_t
    if squares is not None:
        squares -= operators.squares[:, positions] @ np.square(values_t)


def _share_with_data(spec, valid: np.ndarray, with_data: np.ndarray) -> np.ndarray:
    """Return the share of each element's in-mask voxels (maps: of its weight) that have data."""
    weights = getattr(spec, "coverage_weights", None)
    if weights is None:
        return with_data / np.maximum(spec.voxel_counts, 1)
    total = np.asarray(weights.sum(axis=1)).ravel()
    return (weights @ valid.astype(np.float64)) / np.maximum(total, np.finfo(float).tiny)


def _finish(run, specs, operators, missing, exclude_missing, sums, squares, outputs) -> Extraction:
    """Finish each spec's signals from the (corrected) sums; coverage by voxels with data."""
    has_data = ~missing.missing
    coverage, counts = [], []
    for spec, pos, rows, square_rows, out in zip(
        specs, run.positions, operators.rows, operators.square_rows, outputs, strict=True
    ):
        valid = has_data if pos is None else has_data[pos]
        with_data = np.asarray(spec.members @ valid.astype(np.float64)).round().astype(np.int64)
        counts.append(with_data)
        coverage.append(np.asarray(spec.coverage) * _share_with_data(spec, valid, with_data))
        if rows is not None:
            out[...] = spec.finish(
                sums[rows],
                None if square_rows is None else squares[square_rows],
                valid=valid if exclude_missing else None,
            )
        elif exclude_missing:
            out[:, with_data == 0] = np.nan
    union = run.union
    return Extraction(
        signals=outputs,
        coverage=coverage,
        voxel_counts=counts,
        missing_voxels=union[missing.missing],
        non_finite_voxels=union[~missing.finite],
    )
