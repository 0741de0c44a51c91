"""The chunk pipeline of one extraction: read, resample, smooth, gather (see :mod:`regions`)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence

import nibabel as nib
import numpy as np
from nibabel.spatialimages import SpatialImage

from bidsmask.image import _reader, resample_img, smooth_array
from bidsmask.regions._maps import MapsSpec
from bidsmask.regions._specs import LabelsSpec, VoxelSpec
from bidsmask.regions._spheres import SpheresSpec

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
    """Gather the masked voxels of a (X, Y, Z, n) chunk into ``out``, a (n, n_voxels) block.

    NIfTI chunks come in Fortran order, where each volume is contiguous: gathering volume by
    volume with precomputed Fortran-order indices reads memory sequentially (about twice as fast
    as boolean indexing of the 4D array). Voxels are in C order, as ``data3d[mask]``.
    """
    n = chunk.shape[3]
    if chunk.flags.f_contiguous and chunk.dtype == out.dtype:
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


def _value_range(img: SpatialImage, chunk_volumes: int | None) -> tuple[float, float]:
    """Minimum and maximum of a run, 0 included (the clipping range of nilearn's resampling)."""
    vmin, vmax = 0.0, 0.0
    for _, chunk in _reader.iter_chunks(img, chunk_volumes=chunk_volumes):
        vmin = min(vmin, float(np.nanmin(chunk)))
        vmax = max(vmax, float(np.nanmax(chunk)))
    return vmin, vmax


class _Pass:
    """The chunk pipeline of one run: read, (resample), (smooth), gather the union's voxels."""

    def __init__(self, img, specs, chunk_volumes, smoothing_fwhm, target_affine, target_shape):
        self.img = img
        # float64 images are extracted in float64 (as nilearn); everything else in float32
        self.dtype = np.dtype(np.float64 if img.get_data_dtype() == np.float64 else np.float32)
        self.resample = target_affine is not None or target_shape is not None
        if self.resample:
            if target_shape is None:
                raise ValueError(
                    "target_shape is None while target_affine is given. Pass both target_affine "
                    "and target_shape to resample the data."
                )
            self.affine = np.asarray(target_affine if target_affine is not None else img.affine)
            self.shape3d = tuple(int(s) for s in target_shape)[:3]
        else:
            self.affine = np.asarray(img.affine)
            self.shape3d = tuple(int(s) for s in img.shape[:3])
        _check_specs(specs, self.shape3d)
        n_grid = int(np.prod(self.shape3d))
        self.union, self.positions = _union_voxels(specs, n_grid)
        union_mask = np.zeros(n_grid, dtype=bool)
        union_mask[self.union] = True
        self.union_mask = union_mask.reshape(self.shape3d)
        self.union_f = np.ravel_multi_index(
            np.unravel_index(self.union, self.shape3d), self.shape3d, order="F"
        )
        self.n_volumes = 1 if len(img.shape) == 3 else int(img.shape[3])
        if chunk_volumes is None:
            chunk_volumes = _reader.default_chunk_volumes(
                img.shape[:3], self.dtype.itemsize, budget_bytes=_CHUNK_BYTES
            )
        self.chunk_volumes = int(chunk_volumes)
        self.smoothing_fwhm = smoothing_fwhm
        self.range = _value_range(img, chunk_volumes) if self.resample else None

    def buffer(self) -> np.ndarray:
        """Return a (n, n_union) buffer (float32; float64 images: float64) for a few chunks.

        Gathered voxels of several chunks are reduced together: the reductions' operators (the
        maps pseudo-inverse is n_maps x n_voxels) are then read once per ~32 MiB of data, not
        once per chunk.
        """
        per_volume = self.dtype.itemsize * max(self.union.size, 1)
        chunk = self.chunk_volumes
        volumes = chunk * max(1, _REDUCE_BYTES // (per_volume * chunk))
        return np.empty((min(volumes, self.n_volumes), self.union.size), dtype=self.dtype)

    def batches(
        self, buffer: np.ndarray, raw: np.ndarray | None, stop: int
    ) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
        """Yield ``(times, block, raw_block)`` for the volumes up to (at least) ``stop``.

        ``block`` holds the gathered voxels as extracted (resampled, smoothed); ``raw_block``
        the same voxels before smoothing (``raw`` is a second buffer, used only when smoothing;
        otherwise ``raw_block`` is ``block``).
        """
        filled = 0
        chunks = _read_ahead(
            _reader.iter_chunks(self.img, chunk_volumes=self.chunk_volumes, dtype=self.dtype)
        )
        try:
            for time_slice, chunk in chunks:
                rows = slice(filled, filled + chunk.shape[3])
                chunk = self._resampled(chunk)
                if self.smoothing_fwhm is not None:
                    _gather(chunk, self.union_mask, self.union_f, raw[rows])
                    chunk = smooth_array(
                        chunk, self.affine, fwhm=self.smoothing_fwhm, ensure_finite=True, copy=False
                    )
                _gather(chunk, self.union_mask, self.union_f, buffer[rows])
                filled = rows.stop
                del chunk
                last = time_slice.stop >= min(stop, self.n_volumes)
                if filled + self.chunk_volumes > buffer.shape[0] or last:
                    block = buffer[:filled]
                    raw_block = block if self.smoothing_fwhm is None else raw[:filled]
                    yield slice(time_slice.stop - filled, time_slice.stop), block, raw_block
                    filled = 0
                if last:
                    return
        finally:
            chunks.close()

    def _resampled(self, chunk: np.ndarray) -> np.ndarray:
        if not self.resample:
            return chunk
        chunk = np.asarray(
            resample_img(
                nib.Nifti1Image(chunk, self.img.affine),
                target_affine=self.affine,
                target_shape=self.shape3d,
                interpolation="continuous",
                clip=False,
            ).dataobj,
            dtype=self.dtype,
        )
        return np.clip(chunk, *self.range, out=chunk)
