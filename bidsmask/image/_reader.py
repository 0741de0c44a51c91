"""Streaming reads of a 4D NIfTI image as chunks of volumes.

A run is read once, sequentially, a few volumes at a time, and never held whole:

- ``.nii.gz`` files are decompressed as one stream from start to end (``zlib``, or ISA-L's faster
  ``isal_zlib`` when the ``isal`` package is installed) by a background thread that inflates up to
  32 MiB ahead while the caller's thread copies the pieces into chunks and works on them (the
  decompressors release the GIL). Reading is O(T): nothing is ever decompressed twice.
- Other images (uncompressed files, in-memory arrays) are sliced through nibabel's array proxy
  (``img.dataobj[..., t0:t1]`` reads only those volumes; ``.nii`` files are memory-mapped).

Paths are opened with ``nib.load(path, keep_file_open=True)``, so that proxy reads of a
``.nii.gz`` (e.g. ``index_img``) go through one ``indexed_gzip`` file object kept open with its
seek index. (With nibabel 5.4 and indexed_gzip 1.10 we measured no difference with
``keep_file_open=False`` either; the streaming path above does not depend on it.)

Every chunk is a fresh, writeable array (never a view into the image's own data or a memory map),
so callers may modify it in place.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.spatialimages import SpatialImage

try:  # ISA-L inflates gzip about twice as fast as zlib; same API.
    from isal import isal_zlib as _zlib
except ImportError:  # pragma: no cover - depends on the environment
    import zlib as _zlib

logger = logging.getLogger(__name__)

__all__ = [
    "ImageNotFoundError",
    "default_chunk_volumes",
    "iter_chunks",
    "iter_masked_chunks",
    "open_img",
]

_DEFAULT_BUDGET_BYTES = 32 * 2**20


class ImageNotFoundError(FileNotFoundError, ValueError):
    """An image path that does not exist (or a glob pattern that matches no file).

    A ``FileNotFoundError``, and a ``ValueError`` as nilearn raises in this case.
    """


def open_img(img: str | os.PathLike | SpatialImage) -> nib.Nifti1Image:
    """Open an image lazily, keeping its file open between reads.

    Parameters
    ----------
    img : str, os.PathLike or nibabel image
        A path to a NIfTI file (loaded lazily with ``keep_file_open=True``) or an image, which is
        returned unchanged.

    Returns
    -------
    nibabel.spatialimages.SpatialImage
        The image; its data are not read.

    Raises
    ------
    ImageNotFoundError
        If ``img`` is a path that does not exist (a ``FileNotFoundError`` and ``ValueError``).
    TypeError
        If ``img`` is neither a path nor a nibabel image.
    """
    if isinstance(img, (str, os.PathLike)):
        path = Path(img).expanduser()
        if not path.exists():
            raise ImageNotFoundError(f"File not found: '{path}'. Check the image path.")
        try:
            return nib.load(path, keep_file_open=True)
        except Exception as exc:
            raise ValueError(
                f"Could not read image file '{path}': {exc}. Check that it is a valid NIfTI file."
            ) from exc
    if isinstance(img, SpatialImage):
        return img
    raise TypeError(
        f"Expected a path or a nibabel image, got {type(img).__name__}: {img!r:.80}. "
        "Pass a file path or a nibabel.Nifti1Image."
    )


def default_chunk_volumes(
    shape3d: tuple[int, ...], itemsize: int, budget_bytes: int = _DEFAULT_BUDGET_BYTES
) -> int:
    """Return how many volumes fit in a memory budget.

    Parameters
    ----------
    shape3d : tuple of int
        Spatial shape of one volume.
    itemsize : int
        Bytes per voxel of the chunk arrays.
    budget_bytes : int, default=32 MiB
        Memory allowed for one chunk.

    Returns
    -------
    int
        Number of volumes per chunk, at least 1.

    Examples
    --------
    >>> default_chunk_volumes((97, 115, 97), 4)
    31
    """
    volume_bytes = int(np.prod(shape3d, dtype=np.int64)) * int(itemsize)
    return max(1, int(budget_bytes // max(volume_bytes, 1)))


def _n_volumes(img: SpatialImage) -> int:
    shape = img.shape
    if len(shape) == 3:
        return 1
    if len(shape) == 4:
        return shape[3]
    raise ValueError(
        f"Computation expects 3D or 4D images, but {len(shape)} dimensions were given "
        f"(shape {shape}). Pass a single volume or a 4D time series."
    )


def iter_chunks(
    img: str | os.PathLike | SpatialImage,
    chunk_volumes: int | None = None,
    dtype: np.typing.DTypeLike = np.float32,
) -> Iterator[tuple[slice, np.ndarray]]:
    """Iterate over a 3D or 4D image as chunks of consecutive volumes.

    Parameters
    ----------
    img : str, os.PathLike or nibabel image
        The image (a path is opened with :func:`open_img`).
    chunk_volumes : int or None, default=None
        Volumes per chunk; ``None`` uses :func:`default_chunk_volumes` with a 32 MiB budget.
    dtype : numpy dtype, default=numpy.float32
        Data type of the chunks (scaling factors of the file are applied first).

    Yields
    ------
    time_slice : slice
        The volumes of this chunk (``slice(t0, t1)``).
    data : numpy.ndarray
        Array of shape (X, Y, Z, t1 - t0), in time order. A 3D image yields one chunk with a
        trailing axis of length 1.
    """
    img = open_img(img)
    n_vols = _n_volumes(img)
    if chunk_volumes is None:
        chunk_volumes = default_chunk_volumes(img.shape[:3], np.dtype(dtype).itemsize)
    elif int(chunk_volumes) < 1:
        raise ValueError(f"chunk_volumes must be a positive integer, got {chunk_volumes!r}.")
    chunk_volumes = int(chunk_volumes)
    slices = [
        slice(start, min(start + chunk_volumes, n_vols))
        for start in range(0, n_vols, chunk_volumes)
    ]
    if _can_stream_gzip(img):
        yield from _iter_gzip_chunks(img, slices, np.dtype(dtype))
        return
    dataobj = img.dataobj
    is_proxy = nib.is_proxy(dataobj)
    is_3d = len(img.shape) == 3
    for time_slice in slices:
        raw = dataobj[...] if is_3d else dataobj[..., time_slice]
        chunk = np.asarray(raw, dtype=dtype)
        if (not is_proxy or isinstance(raw, np.memmap)) and np.shares_memory(chunk, raw):
            chunk = chunk.copy(order="K")
        elif not chunk.flags.writeable:
            chunk = chunk.copy(order="K")
        if is_3d:
            chunk = chunk[..., np.newaxis]
        yield time_slice, chunk


def _can_stream_gzip(img: SpatialImage) -> bool:
    """Whether the image's data can be streamed from its gzipped NIfTI file."""
    filename = img.get_filename() if hasattr(img, "get_filename") else None
    return (
        bool(filename)
        and str(filename).endswith(".gz")
        and isinstance(img, nib.Nifti1Image)
        and len(img.shape) == 4
        and nib.is_proxy(img.dataobj)
        and getattr(img.dataobj, "order", "F") == "F"
        and str(img.dataobj.file_like) == str(filename)
    )


class _GzipStream:
    """A (possibly multi-member) gzip file inflated by a background thread.

    The thread inflates pieces of at most 1 MiB into a bounded queue (32 MiB); :meth:`readinto`
    copies them into the caller's buffers. Inflating (zlib/isal release the GIL) and copying,
    converting and reducing the chunks thus run on two cores.
    """

    _BLOCK = 256 * 2**10  # compressed bytes read at a time (small: cheap unconsumed tails)
    _PIECE = 2**20  # decompressed bytes per call: small outputs reuse heap memory (faster)
    _QUEUE = 32  # pieces inflated ahead of the reader

    def __init__(self, path: str, n_bytes: int):
        self.path = path
        self._pieces: queue.Queue = queue.Queue(maxsize=self._QUEUE)
        self._stop = threading.Event()
        self._rest = memoryview(b"")
        self._thread = threading.Thread(
            target=self._inflate_all, args=(n_bytes,), name="bidsmask-reader", daemon=True
        )
        self._thread.start()

    def _put(self, item: bytes | Exception | None) -> None:
        while not self._stop.is_set():
            try:
                self._pieces.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _inflate_all(self, n_bytes: int) -> None:
        try:
            with open(self.path, "rb") as file:
                inflate, pending, produced = _zlib.decompressobj(31), b"", 0
                while produced < n_bytes and not self._stop.is_set():
                    if not pending:
                        pending = file.read(self._BLOCK)
                        if not pending:
                            break
                    out = inflate.decompress(pending, min(n_bytes - produced, self._PIECE))
                    if inflate.eof:  # end of a gzip member: the next one starts in unused_data
                        pending, inflate = inflate.unused_data, _zlib.decompressobj(31)
                    else:
                        pending = inflate.unconsumed_tail
                    if out:
                        self._put(out)
                        produced += len(out)
            self._put(None)
        except Exception as exc:  # handed to the reading thread, which raises it
            self._put(exc)

    def _get(self) -> bytes | Exception | None:
        while True:
            try:
                return self._pieces.get(timeout=1.0)
            except queue.Empty:
                if not self._thread.is_alive() and self._pieces.empty():
                    return RuntimeError(f"The reader thread of '{self.path}' stopped unexpectedly.")

    def readinto(self, buffer: np.ndarray) -> None:
        view = memoryview(buffer).cast("B")
        filled, size = 0, len(view)
        while filled < size:
            if not len(self._rest):
                item = self._get()
                if item is None:
                    raise ValueError(
                        f"Image file '{self.path}' is truncated: the data end before all volumes "
                        "were read. Re-create or re-download it."
                    )
                if isinstance(item, Exception):
                    raise item
                self._rest = memoryview(item)
            n = min(len(self._rest), size - filled)
            view[filled : filled + n] = self._rest[:n]
            self._rest = self._rest[n:]
            filled += n

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def _iter_gzip_chunks(
    img: nib.Nifti1Image, slices: list[slice], dtype: np.dtype
) -> Iterator[tuple[slice, np.ndarray]]:
    proxy = img.dataobj
    disk_dtype = np.dtype(proxy.dtype)
    shape3d = tuple(img.shape[:3])
    volume_items = int(np.prod(shape3d, dtype=np.int64))
    slope, inter = float(proxy.slope), float(proxy.inter)
    scaled = (slope, inter) != (1.0, 0.0)
    offset = int(proxy.offset)
    n_bytes = offset + volume_items * img.shape[3] * disk_dtype.itemsize
    stream = _GzipStream(str(img.get_filename()), n_bytes)
    try:
        stream.readinto(np.empty(offset, dtype=np.uint8))
        for time_slice in slices:
            n = time_slice.stop - time_slice.start
            raw = np.empty(volume_items * n, dtype=disk_dtype)
            stream.readinto(raw)
            raw = raw.reshape((*shape3d, n), order="F")
            if scaled:
                data = raw.astype(np.promote_types(disk_dtype, np.float64))
                data *= slope
                data += inter
                chunk = data.astype(dtype, copy=False)
            else:
                chunk = raw.astype(dtype, copy=not (raw.dtype == dtype and raw.dtype.isnative))
            yield time_slice, chunk
    except (OSError, EOFError, _zlib.error) as exc:
        raise ValueError(
            f"Could not read image file '{stream.path}': {exc}. The file may be truncated or "
            "corrupt; re-create or re-download it."
        ) from exc
    finally:
        stream.close()


def iter_masked_chunks(
    img: str | os.PathLike | SpatialImage,
    mask: np.ndarray,
    chunk_volumes: int | None = None,
    dtype: np.typing.DTypeLike = np.float32,
) -> Iterator[tuple[slice, np.ndarray]]:
    """Iterate over the in-mask voxels of a 3D or 4D image, a chunk of volumes at a time.

    Parameters
    ----------
    img : str, os.PathLike or nibabel image
        The image (a path is opened with :func:`open_img`).
    mask : numpy.ndarray of bool
        3D boolean mask with the image's spatial shape.
    chunk_volumes : int or None, default=None
        Volumes per chunk; ``None`` uses :func:`default_chunk_volumes`.
    dtype : numpy dtype, default=numpy.float32
        Data type of the chunks.

    Yields
    ------
    time_slice : slice
        The volumes of this chunk.
    data : numpy.ndarray
        Array of shape (t1 - t0, n_voxels); voxel order is ``data3d[mask]`` (C order), the same as
        :func:`bidsmask.masking.apply_mask`.
    """
    img = open_img(img)
    mask = np.asarray(mask)
    if mask.dtype != bool:
        raise TypeError(f"mask must be a boolean array, got dtype {mask.dtype}. Use mask > 0.")
    if mask.shape != tuple(img.shape[:3]):
        raise ValueError(
            f"mask shape {mask.shape} does not match the image's spatial shape "
            f"{tuple(img.shape[:3])}. Resample the mask to the image grid first."
        )
    for time_slice, chunk in iter_chunks(img, chunk_volumes=chunk_volumes, dtype=dtype):
        yield time_slice, chunk[mask].T
