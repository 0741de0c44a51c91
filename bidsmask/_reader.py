"""Streaming reads of a 4D NIfTI image as chunks of volumes.

A run is read once, sequentially, a few volumes at a time, through nibabel's array proxy
(``img.dataobj[..., t0:t1]`` reads only those volumes). Paths are opened with
``keep_file_open=True``: for ``.nii.gz`` files nibabel then keeps one ``indexed_gzip`` file object
whose seek index survives between chunks, so each chunk continues the decompression where the
previous one stopped instead of restarting from the beginning of the file (O(T) instead of O(T²)).

Every chunk is a fresh, writeable array (never a view into the image's own data or a memory map),
so callers may modify it in place.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.spatialimages import SpatialImage

logger = logging.getLogger(__name__)

__all__ = ["default_chunk_volumes", "iter_chunks", "iter_masked_chunks", "open_img"]

_DEFAULT_BUDGET_BYTES = 128 * 2**20


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
    FileNotFoundError
        If ``img`` is a path that does not exist.
    TypeError
        If ``img`` is neither a path nor a nibabel image.
    """
    if isinstance(img, (str, os.PathLike)):
        path = Path(img).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"Image file not found: '{path}'. Check the path.")
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
    budget_bytes : int, default=128 MiB
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
        f"Expected a 3D or 4D image, got shape {shape}. Pass a single volume or a 4D time series."
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
        Volumes per chunk; ``None`` uses :func:`default_chunk_volumes` with a 128 MiB budget.
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
    dataobj = img.dataobj
    is_proxy = nib.is_proxy(dataobj)
    is_3d = len(img.shape) == 3
    for start in range(0, n_vols, chunk_volumes):
        time_slice = slice(start, min(start + chunk_volumes, n_vols))
        raw = dataobj[...] if is_3d else dataobj[..., time_slice]
        chunk = np.asarray(raw, dtype=dtype)
        if (not is_proxy or isinstance(raw, np.memmap)) and np.shares_memory(chunk, raw):
            chunk = chunk.copy(order="K")
        elif not chunk.flags.writeable:
            chunk = chunk.copy(order="K")
        if is_3d:
            chunk = chunk[..., np.newaxis]
        yield time_slice, chunk


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
