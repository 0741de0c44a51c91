"""Atlases prepared once per grid: resampled to the runs' grid, kept in memory and in the work dir.

Resampling an atlas to a run's grid (nearest neighbour for labels, trilinear for maps, as
nilearn 0.14's ``NiftiLabelsMasker`` and ``NiftiMapsMasker`` do with ``resampling_target="data"``)
costs far more than reducing a run with it,
and every run of a space shares one grid. :func:`on_grid` therefore prepares each (atlas, grid)
once: the parent process calls :func:`prepare` before any worker starts, and each result is

- kept in the process (:func:`on_grid` returns the same object for the same atlas and grid), and
- written to ``<cache_dir>/<key>.npz``, where ``key`` hashes the atlas file's *content*, the
  interpolation, the target grid (shape and affine) and the versions of bidsmask and scipy (which
  compute the values). Worker processes, later invocations and other participant jobs sharing the
  work dir (SLURM array tasks) load it instead of resampling again. A changed atlas file has
  another key, so it is never served stale.

Entries are written under a temporary name and renamed (a reader never sees a partial file), while
an exclusive lock on ``<key>.lock`` makes concurrent builders of one entry wait for the first
instead of repeating its work. An unreadable entry is rebuilt. Labels are stored as the resampled
3D array; maps as :class:`bidsmask.regions.SparseMaps` (their non-zero voxels), from which each run
builds its least-squares operator for its own mask without scanning dense volumes again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

import nibabel as nib
import numpy as np
import scipy

from bidsmask import image
from bidsmask._version import __version__
from bidsmask.bids import writer
from bidsmask.image._separable import resample_separable
from bidsmask.regions import SparseMaps

logger = logging.getLogger(__name__)

#: Bump when the stored format or the way values are computed changes.
CACHE_FORMAT = 3  # 3: maps trilinear (nilearn 0.14's NiftiMapsMasker), were cubic
#: Prepared atlases kept in a process (atlases × grids of one invocation).
MEMORY_ENTRIES = 8
_INTERPOLATION = {"labels": "nearest", "maps": "linear"}

_memory: OrderedDict[str, np.ndarray | SparseMaps] = OrderedDict()
_digests: dict[tuple, str] = {}


def file_digest(path: str | os.PathLike) -> str:
    """Return the SHA-256 of a file's content (remembered while its size and mtime stay)."""
    stat = os.stat(path)
    token = (str(path), stat.st_size, stat.st_mtime_ns)
    if token not in _digests:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _digests[token] = digest.hexdigest()
    return _digests[token]


def cache_key(
    path: str | os.PathLike, interpolation: str, shape: tuple[int, ...], affine: np.ndarray
) -> str:
    """Return the cache key of an atlas image resampled to a grid (64 hex digits).

    Parameters
    ----------
    path : str or os.PathLike
        The atlas image; its content (not its name) enters the key.
    interpolation : {"nearest", "linear"}
        The interpolation used.
    shape : tuple of 3 int
        The target grid's shape.
    affine : numpy.ndarray
        The target grid's (4, 4) affine (rounded to 1e-6 mm).
    """
    grid = np.round(np.asarray(affine, dtype=float), 6) + 0.0  # no "-0.0"
    parts = (
        f"format={CACHE_FORMAT}",
        f"bidsmask={__version__}",
        f"scipy={scipy.__version__}",
        f"atlas={file_digest(path)}",
        f"interpolation={interpolation}",
        f"shape={tuple(int(n) for n in shape[:3])}",
        f"affine={grid.tolist()}",
    )
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def on_grid(
    path: str | os.PathLike,
    kind: str,
    shape: tuple[int, ...],
    affine: np.ndarray,
    cache_dir: str | os.PathLike | None = None,
) -> np.ndarray | SparseMaps:
    """Return an atlas image on a grid, preparing it only if no process did it before.

    Parameters
    ----------
    path : str or os.PathLike
        A labels (dseg) or maps (probseg) image.
    kind : {"labels", "maps"}
        Labels are resampled with nearest-neighbour interpolation and returned as a read-only
        3D array; maps with trilinear interpolation (clipped to their range, as
        :func:`bidsmask.image.resample_img`) and returned as :class:`SparseMaps`.
    shape, affine
        The target grid (3D shape and (4, 4) affine).
    cache_dir : str, os.PathLike or None, default=None
        Folder of the on-disk cache (created if needed); None keeps results in the process only.

    Returns
    -------
    numpy.ndarray or SparseMaps
        The atlas on the grid.
    """
    interpolation = _INTERPOLATION[kind]
    shape = tuple(int(n) for n in shape[:3])
    key = cache_key(path, interpolation, shape, affine)
    if key in _memory:
        _memory.move_to_end(key)
        return _memory[key]
    if cache_dir is None:
        data = _resample(path, kind, shape, affine)
    else:
        data = _from_disk(Path(cache_dir), key, path, kind, shape, affine)
    _memory[key] = data
    while len(_memory) > MEMORY_ENTRIES:
        _memory.popitem(last=False)
    return data


def prepare(items: Iterable[tuple[Path, str, tuple[int, ...], np.ndarray]], cache_dir) -> int:
    """Prepare each distinct ``(image, kind, shape, affine)`` once; return how many there were.

    Called by the parent process before the runs start, so that every worker (and every run)
    only loads the result.
    """
    done = set()
    for path, kind, shape, affine in items:
        key = cache_key(path, _INTERPOLATION[kind], shape, affine)
        if key not in done:
            on_grid(path, kind, shape, affine, cache_dir)
            done.add(key)
    return len(done)


def _from_disk(cache_dir: Path, key: str, path, kind: str, shape, affine):
    entry = cache_dir / f"{key}.npz"
    data = _load(entry, kind)
    if data is not None:
        return data
    with writer.file_lock(cache_dir / f"{key}.lock"):
        data = _load(entry, kind)  # another process may have built it while we waited
        if data is not None:
            return data
        data = _resample(path, kind, shape, affine)
        with writer.atomic_path(entry) as tmp, open(tmp, "wb") as handle:
            if isinstance(data, SparseMaps):
                np.savez(
                    handle,
                    shape=np.array(data.shape),
                    indptr=data.indptr,
                    indices=data.indices,
                    values=data.values,
                )
            else:
                np.savez(handle, labels=data)
        logger.debug("Atlas cache: wrote %s for %s", entry.name, path)
    return data


def _load(entry: Path, kind: str) -> np.ndarray | SparseMaps | None:
    """Read a cache entry; None when it is absent or unreadable (then it is rebuilt)."""
    try:
        with np.load(entry, allow_pickle=False) as stored:
            if kind == "labels":
                data = stored["labels"]
                data.setflags(write=False)
                return data
            return SparseMaps(
                tuple(int(n) for n in stored["shape"]),
                stored["indptr"],
                stored["indices"],
                stored["values"],
            )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        logger.warning("Atlas cache: %s is unreadable (%s); preparing it again.", entry, exc)
        return None


def _resample(path, kind: str, shape: tuple[int, ...], affine: np.ndarray):
    """Resample an atlas image to a grid (whole grid), as nilearn's maskers do."""
    img = nib.load(path)
    target = np.asarray(affine, dtype=float)
    interpolation = _INTERPOLATION[kind]
    if tuple(img.shape[:3]) == shape and np.allclose(img.affine, target, atol=1e-4):
        data = np.asarray(img.dataobj, dtype=np.float32 if kind == "maps" else None)
    else:
        logger.debug("Resampling %s to the grid %s (%s)", path, shape, interpolation)
        if kind == "maps":  # axis-aligned grids: only where each map can be non-zero
            entries = resample_separable(img, target, shape, interpolation)
            if entries is not None:
                return _sparse_float32(shape, *entries)
        img = image.resample_img(
            img, target_affine=target, target_shape=shape, interpolation=interpolation
        )
        data = np.asarray(img.dataobj, dtype=np.float32 if kind == "maps" else None)
    if kind == "maps":
        return SparseMaps.from_maps(data if data.ndim == 4 else data[..., np.newaxis])
    data.setflags(write=False)
    return data


def _sparse_float32(shape, indptr, indices, values) -> SparseMaps:
    """SparseMaps of float32 values (float64 ones rounded; those rounded to 0 dropped)."""
    rounded = values.astype(np.float32)
    kept = rounded != 0
    if not kept.all():
        owner = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))
        counts = np.bincount(owner[kept], minlength=indptr.size - 1)
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        indices, rounded = indices[kept], rounded[kept]
    return SparseMaps(tuple(shape), indptr, indices, rounded)
