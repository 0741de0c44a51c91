"""Region reductions and the single-pass extraction engine.

Every extraction is described by a *spec* built from arrays on the data grid:

- :class:`LabelsSpec` — one signal per label of a deterministic atlas (mean, median, sum,
  minimum, maximum, variance or standard deviation of the region's voxels);
- :class:`MapsSpec` — one signal per probabilistic map, the least-squares solution of
  ``maps @ signals = data`` (nilearn's ``lstsq`` result): the sparse maps' projections, then
  the pseudo-inverse of their small Gram matrix;
- :class:`SpheresSpec` — the mean of the voxels within ``radius`` mm of each seed;
- :class:`VoxelSpec` — the voxels of a mask, in ``data3d[mask]`` order.

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
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Iterator, Sequence

import nibabel as nib
import numpy as np
from nibabel.spatialimages import SpatialImage
from scipy import sparse

from bidsmask.image import _reader, resample_img, smooth_array
from bidsmask.regions._specs import (
    LABEL_STRATEGIES,
    LabelsSpec,
    MapsSpec,
    VoxelSpec,
    reduce_labels,
    reduce_maps,
)
from bidsmask.regions._spheres import SpheresSpec

logger = logging.getLogger(__name__)

__all__ = [
    "LABEL_STRATEGIES",
    "LabelsSpec",
    "MapsSpec",
    "SpheresSpec",
    "VoxelSpec",
    "extract",
    "reduce_labels",
    "reduce_maps",
]

# a chunk of ~32 MiB of float32 volumes: large enough for efficient BLAS and gathers, small
# enough that the reader's buffers and the chunk stay far below the signals' own memory
_CHUNK_BYTES = 32 * 2**20
_REDUCE_BYTES = 32 * 2**20

Spec = LabelsSpec | MapsSpec | SpheresSpec | VoxelSpec


def _union_voxels(specs: Sequence[Spec], n_grid: int) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """Return the sorted union of the specs' voxels and each spec's positions in it.

    A position array is ``None`` when the spec uses the whole union in order (no gather needed).
    """
    used = np.zeros(n_grid, dtype=bool)
    for spec in specs:
        used[spec.voxels] = True
    union = np.flatnonzero(used)
    positions = [
        None if spec.voxels.size == union.size else np.searchsorted(union, spec.voxels)
        for spec in specs
    ]
    return union, positions


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


def _check_specs(specs: Sequence[Spec], shape3d: tuple[int, int, int]) -> None:
    if len(specs) == 0:
        raise ValueError("extract() needs at least one spec; got an empty list.")
    for i, spec in enumerate(specs):
        if not isinstance(spec, (LabelsSpec, MapsSpec, SpheresSpec, VoxelSpec)):
            raise TypeError(
                f"specs[{i}] is a {type(spec).__name__}; expected LabelsSpec, MapsSpec, "
                "SpheresSpec or VoxelSpec."
            )
        if tuple(spec.shape) != tuple(shape3d):
            raise ValueError(
                f"specs[{i}] ({type(spec).__name__}) was built on a grid of shape {spec.shape}, "
                f"but the data grid is {tuple(shape3d)}. Build the spec from arrays resampled to "
                "the data grid (or pass target_affine/target_shape to resample the data)."
            )


def _gather(chunk: np.ndarray, mask: np.ndarray, index_f: np.ndarray, out: np.ndarray) -> None:
    """Gather the masked voxels of a (X, Y, Z, n) chunk into ``out``, a float32 (n, n_voxels) block.

    NIfTI chunks come in Fortran order, where each volume is contiguous: gathering volume by
    volume with precomputed Fortran-order indices reads memory sequentially (about twice as fast
    as boolean indexing of the 4D array). Voxels are in C order, as ``data3d[mask]``.
    """
    n = chunk.shape[3]
    if chunk.flags.f_contiguous and chunk.dtype == np.float32:
        volumes = chunk.reshape(-1, n, order="F")
        for t in range(n):  # a vectorised gather per volume, for memory locality
            np.take(volumes[:, t], index_f, out=out[t])
    else:
        out[...] = chunk[mask].T


def _read_ahead(chunks: Iterator, depth: int = 1) -> Iterator:
    """Consume an iterator in a background thread, up to ``depth`` items ahead.

    Decompressing the next chunk (zlib releases the GIL) then overlaps with the reductions of the
    current one. Exceptions of the reader are re-raised in the caller.
    """
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in chunks:
                if not put(item):
                    return
            put(end)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put(exc)

    thread = threading.Thread(target=produce, name="bidsmask-read-ahead", daemon=True)
    thread.start()
    try:
        while (item := items.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _reduce(block: np.ndarray, specs, positions, operators: _Operators, outputs) -> None:
    """Feed a gathered (n, n_union) block to every spec, writing into ``outputs``."""
    # any NaN or infinity makes the sum non-finite (a float32 overflow only costs a needless scan)
    if not np.isfinite(np.add.reduce(block, axis=None)):
        np.nan_to_num(block, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    sums, squares = operators.apply(block)
    for spec, pos, rows, square_rows, out in zip(
        specs, positions, operators.rows, operators.square_rows, outputs, strict=True
    ):
        if rows is None:
            out[...] = spec.reduce(block if pos is None else block[:, pos])
        else:
            out[...] = spec.finish(
                sums[rows], None if square_rows is None else squares[square_rows]
            )


def _value_range(img: SpatialImage, chunk_volumes: int | None) -> tuple[float, float]:
    """Minimum and maximum of a run, 0 included (the clipping range of nilearn's resampling)."""
    vmin, vmax = 0.0, 0.0
    for _, chunk in _reader.iter_chunks(img, chunk_volumes=chunk_volumes):
        vmin = min(vmin, float(np.nanmin(chunk)))
        vmax = max(vmax, float(np.nanmax(chunk)))
    return vmin, vmax


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
    values become 0, as in nilearn. The next chunk is read (decompressed) by a background thread
    while the current one is reduced.

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
        One float32 array of shape (n_volumes, n_elements) per spec, in the order of ``specs``
        (a 3D image gives ``n_volumes == 1``).

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
    img = _reader.open_img(img)
    resample = target_affine is not None or target_shape is not None
    if resample:
        affine = np.asarray(target_affine if target_affine is not None else img.affine)
        if target_shape is None:
            raise ValueError(
                "target_shape is None while target_affine is given. Pass both target_affine "
                "and target_shape to resample the data."
            )
        shape3d = tuple(int(s) for s in target_shape)[:3]
    else:
        affine = np.asarray(img.affine)
        shape3d = tuple(int(s) for s in img.shape[:3])
    specs = list(specs)
    _check_specs(specs, shape3d)

    union, positions = _union_voxels(specs, int(np.prod(shape3d)))
    operators = _Operators(specs, positions, union.size)
    union_mask = np.zeros(int(np.prod(shape3d)), dtype=bool)
    union_mask[union] = True
    union_mask = union_mask.reshape(shape3d)
    union_f = np.ravel_multi_index(np.unravel_index(union, shape3d), shape3d, order="F")

    n_volumes = 1 if len(img.shape) == 3 else int(img.shape[3])
    if chunk_volumes is None:
        chunk_volumes = _reader.default_chunk_volumes(
            img.shape[:3], np.dtype(np.float32).itemsize, budget_bytes=_CHUNK_BYTES
        )
    outputs = [np.zeros((n_volumes, spec.n_elements), dtype=np.float32) for spec in specs]
    logger.debug(
        "Extracting %d spec(s) from %s volumes, %d voxels in the union",
        len(specs),
        n_volumes,
        union.size,
    )
    if resample:
        vmin, vmax = _value_range(img, chunk_volumes)
    # gathered voxels of several chunks are reduced together: the reductions' operators (the
    # maps pseudo-inverse is n_maps x n_voxels) are then read once per ~32 MiB of data, not
    # once per chunk
    per_volume = 4 * max(union.size, 1)
    buffer_volumes = chunk_volumes * max(1, _REDUCE_BYTES // (per_volume * chunk_volumes))
    buffer = np.empty((min(buffer_volumes, n_volumes), union.size), dtype=np.float32)
    filled = 0
    chunks = _read_ahead(_reader.iter_chunks(img, chunk_volumes=chunk_volumes))
    for time_slice, chunk in chunks:
        if resample:
            chunk = np.asarray(
                resample_img(
                    nib.Nifti1Image(chunk, img.affine),
                    target_affine=affine,
                    target_shape=shape3d,
                    interpolation="continuous",
                    clip=False,
                ).dataobj,
                dtype=np.float32,
            )
            np.clip(chunk, vmin, vmax, out=chunk)
        if smoothing_fwhm is not None:
            chunk = smooth_array(chunk, affine, fwhm=smoothing_fwhm, ensure_finite=True, copy=False)
        _gather(chunk, union_mask, union_f, buffer[filled : filled + chunk.shape[3]])
        filled += chunk.shape[3]
        del chunk
        if filled + chunk_volumes > buffer.shape[0] or time_slice.stop == n_volumes:
            times = slice(time_slice.stop - filled, time_slice.stop)
            _reduce(buffer[:filled], specs, positions, operators, [out[times] for out in outputs])
            filled = 0
    return outputs
