"""Maps extraction spec and least-squares reduction (see :mod:`bidsmask.regions`)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from nibabel.spatialimages import SpatialImage
from scipy import sparse
from threadpoolctl import threadpool_limits

from bidsmask.image import _reader
from bidsmask.regions._specs import _check_mask, _transposed_float64


def reduce_maps(data: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """Least-squares region signals: the ``X`` minimising ``||maps @ X.T - data.T||``.

    Parameters
    ----------
    data : numpy.ndarray
        Signals, shape (n_samples, n_voxels).
    maps : numpy.ndarray
        Map weights, shape (n_voxels, n_maps).

    Returns
    -------
    numpy.ndarray
        float32 array of shape (n_samples, n_maps), equal to
        ``np.linalg.lstsq(maps, data.T)[0].T``.

    Examples
    --------
    >>> maps = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> reduce_maps(np.array([[1.0, 2.0, 3.0]]), maps)
    array([[1., 2.]], dtype=float32)
    """
    weights_t = sparse.csr_array(np.asarray(maps, dtype=np.float64).T)
    solver = _LeastSquares(weights_t)
    return solver.finish(weights_t @ _transposed_float64(np.atleast_2d(data))).astype(np.float32)


def _gram(weights_t: sparse.csr_array) -> np.ndarray:
    """Return ``weights_t @ weights_t.T`` (float64, dense).

    Resampled probabilistic maps overlap widely (spline tails): past a few percent of non-zeros
    the dense BLAS product is far faster than the sparse one (and the dense copy is small). It
    runs on one BLAS thread: for (n_maps × n_voxels) maps more threads cost more than they save
    (measured 5× slower with 2 threads on a busy 2-core machine).
    """
    n_maps, n_voxels = weights_t.shape
    if weights_t.nnz > 0.05 * n_maps * n_voxels:
        dense = weights_t.toarray()
        with threadpool_limits(limits=1, user_api="blas"):
            return dense @ dense.T
    return np.asarray((weights_t @ weights_t.T).toarray(), dtype=np.float64)


class _LeastSquares:
    """Least squares through the pseudo-inverse of the small Gram matrix of sparse maps.

    With ``A`` the (n_voxels × n_maps) maps, ``pinv(A) = pinv(A.T @ A) @ A.T`` for any ``A``, so
    the minimum-norm least-squares solution (``lstsq(A, b)``, zero signals for all-zero maps
    included) is ``pinv(G) @ (A.T @ b)`` with the Gram matrix ``G = A.T @ A`` (n_maps × n_maps,
    float64). ``A.T`` is stored as a sparse (n_maps × n_voxels) CSR matrix: probabilistic maps
    are mostly zeros, so ``A.T @ b`` costs the maps' non-zeros, not n_maps × n_voxels.
    """

    def __init__(self, weights_t: sparse.csr_array):
        self.weights_t = weights_t
        self.gram_inverse = np.linalg.pinv(_gram(weights_t), hermitian=True)

    def finish(self, projections: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """Signals (n, n_maps) float64 from the float64 (n_maps, n) ``A.T @ b``.

        With ``valid`` (boolean, one per voxel), ``A.T @ b`` was taken over those voxels only:
        the solution is the least squares over them, ``pinv(A_v.T @ A_v) @ (A_v.T @ b_v)``; a
        map without any non-zero weight on them is NaN.
        """
        if valid is None or valid.all():
            return (self.gram_inverse @ projections).T
        weights = self.weights_t[:, np.flatnonzero(valid)]
        signals = (np.linalg.pinv(_gram(weights), hermitian=True) @ projections).T
        signals[:, np.diff(sparse.csr_array(weights).indptr) == 0] = np.nan
        return signals


_MAPS_PER_READ = 8


def _iter_maps(maps):
    """Yield ``(first_index, block)`` with a few maps at a time.

    ``maps`` is an array, a lazy proxy, or a nibabel image, which is streamed by
    :func:`bidsmask.image._reader.iter_chunks` (one sequential read; ``.nii.gz`` inflated in a
    background thread, faster than a proxy's slices).
    """
    if isinstance(maps, SpatialImage):
        dtype = np.float64 if maps.get_data_dtype() == np.float64 else np.float32
        for maps_slice, block in _reader.iter_chunks(maps, _MAPS_PER_READ, dtype=dtype):
            yield maps_slice.start, block
        return
    for k0 in range(0, int(maps.shape[3]), _MAPS_PER_READ):
        yield k0, np.asarray(maps[..., k0 : k0 + _MAPS_PER_READ])


def _map_entries(volume: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted flat C-order indices and values of the finite non-zero voxels of a 3D map.

    A Fortran-ordered volume (a slice of a NIfTI array) is scanned in its own memory order
    without a copy; only its few non-zero indices are converted to C order.
    """
    fortran = volume.flags.f_contiguous and not volume.flags.c_contiguous
    flat = volume.ravel(order="F" if fortran else "C")
    index = np.flatnonzero(flat != 0)  # about 6x faster than on the floats themselves
    values = flat[index]
    finite = np.isfinite(values)
    if not finite.all():
        index, values = index[finite], values[finite]
    if fortran:
        index = np.ravel_multi_index(np.unravel_index(index, volume.shape, order="F"), volume.shape)
        order = np.argsort(index)
        index, values = index[order], values[order]
    return index, values


@dataclass(frozen=True)
class SparseMaps:
    """4D maps kept as the finite non-zero voxels of each map (CSR-like, one row per map).

    A :class:`MapsSpec` built from a ``SparseMaps`` gives the same result as one built from the
    dense maps, without scanning the dense volumes again: an app keeps the maps resampled to a
    grid once in this form and builds one spec per mask from it.

    Parameters
    ----------
    shape : tuple of 3 int
        The 3D grid.
    indptr : numpy.ndarray
        Map ``k``'s entries are ``indices[indptr[k]:indptr[k + 1]]`` (n_maps + 1 int64).
    indices : numpy.ndarray
        Flat C-order voxel index of each entry, sorted within each map.
    values : numpy.ndarray
        Value of each entry (the maps' float dtype).

    Examples
    --------
    >>> maps = np.zeros((2, 2, 1, 2), np.float32)
    >>> maps[0, 1, 0, 0], maps[1, 0, 0, 1] = 0.5, 2.0
    >>> sparse_maps = SparseMaps.from_maps(maps)
    >>> sparse_maps.n_maps, sparse_maps.sizes.tolist(), sparse_maps.indices.tolist()
    (2, [1, 1], [1, 2])
    """

    shape: tuple[int, int, int]
    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray

    @classmethod
    def from_maps(cls, maps) -> SparseMaps:
        """Scan 4D maps (array, array proxy or nibabel image), a few maps at a time."""
        shape = tuple(int(n) for n in maps.shape[:3])
        indices, values = [], []
        for _, block in _iter_maps(maps):
            for j in range(block.shape[3]):
                index, value = _map_entries(block[..., j])
                indices.append(index)
                values.append(value)
        sizes = [index.size for index in indices]
        return cls(
            shape,
            np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            np.concatenate(indices).astype(np.int64),
            np.concatenate(values),
        )

    @property
    def n_maps(self) -> int:
        """Number of maps."""
        return int(self.indptr.size - 1)

    @property
    def sizes(self) -> np.ndarray:
        """Number of non-zero voxels of each map."""
        return np.diff(self.indptr)


class MapsSpec:
    """Extraction of one signal per map by least squares (nilearn's ``lstsq`` solution).

    Parameters
    ----------
    maps : numpy.ndarray, array-like, nibabel image or SparseMaps
        4D maps (X, Y, Z, n_maps) on the data grid (non-finite values count as 0). A nibabel
        image is streamed a few maps at a time in one sequential read (the fastest for a
        ``.nii.gz``); an array proxy (``img.dataobj``) is sliced a few maps at a time; a
        :class:`SparseMaps` (the maps' non-zero voxels, kept from an earlier scan) is used as is.
    mask : numpy.ndarray or None, default=None
        3D boolean mask on the same grid; only voxels inside it are used.
    keep_masked_maps : bool, default=False
        Keep maps with no weight inside the mask (their signal is 0); otherwise they are
        dropped, with a warning, as nilearn does.
    warn_removed : bool, default=True
        Give that warning now; with False, :meth:`warn_removed` gives it (the masker warns when
        it extracts, as nilearn, not when it is fitted).

    Attributes
    ----------
    region_ids : numpy.ndarray
        Index (in ``maps``) of each output column.
    removed_maps : numpy.ndarray
        Indices of the maps the mask removed (empty with ``keep_masked_maps``).
    voxel_counts : numpy.ndarray
        Non-zero voxels of each map inside the mask.
    coverage : numpy.ndarray
        Fraction of each map's weight (sum of absolute values) inside the mask (1.0 without a
        mask). Weighted rather than counted: resampled maps carry tiny interpolation values far
        from their blob, which would make a count-based fraction small for every map.
    voxels : numpy.ndarray
        Flat C-order indices of the voxels read (where any kept map is non-zero).
    n_elements : int
        Number of output columns.
    """

    def __init__(
        self,
        maps: np.ndarray,
        mask: np.ndarray | None = None,
        *,
        keep_masked_maps: bool = False,
        warn_removed: bool = True,
    ):
        if not isinstance(maps, SparseMaps):
            if not hasattr(maps, "shape") or not hasattr(maps, "__getitem__"):
                maps = np.asarray(maps)
            if len(maps.shape) == 3 and not isinstance(maps, SpatialImage):
                maps = np.asarray(maps)[..., np.newaxis]
            if len(maps.shape) not in (3, 4):
                raise ValueError(f"'maps' must be a 4D array, got shape {maps.shape}.")
            # one pass over a few maps at a time (a lazily read maps file is never held
            # whole), keeping only the non-zero entries: the maps are stored sparse
            maps = SparseMaps.from_maps(maps)
        self.shape = tuple(maps.shape)
        n_maps = maps.n_maps
        mask = _check_mask(mask, self.shape)
        sizes = maps.sizes
        if not sizes.any():
            raise ValueError("maps_img contains no map: every value is 0 (or not finite).")
        index, values, counts = maps.indices, maps.values, sizes
        owner = np.repeat(np.arange(n_maps), sizes)
        total_weight = np.bincount(owner, weights=np.abs(values), minlength=n_maps)
        inside_weight = total_weight
        if mask is not None:
            inside = mask.ravel()[index]
            inside_weight = np.bincount(
                owner[inside], weights=np.abs(values[inside]), minlength=n_maps
            )
            index, values = index[inside], values[inside]
            flags = np.append(inside, False).view(np.uint8)  # every start is a valid index
            counts = np.add.reduceat(flags, maps.indptr[:-1], dtype=np.int64)
            counts[sizes == 0] = 0  # reduceat gives an empty map the next map's first flag
        if mask is None or keep_masked_maps:
            kept = np.arange(n_maps)
        else:
            kept = np.flatnonzero(counts > 0)
            if kept.size == 0:
                raise ValueError("No map left after applying mask to the maps image.")
        self.removed_maps = np.setdiff1d(np.arange(n_maps), kept)
        used = np.zeros(int(np.prod(self.shape)), dtype=bool)
        used[index] = True  # removed maps have no entry left inside the mask
        self.voxels = np.flatnonzero(used)
        weights_t = sparse.csr_array(
            (
                values.astype(np.float64),
                np.searchsorted(self.voxels, index),
                np.concatenate([[0], np.cumsum(counts[kept])]),
            ),
            shape=(kept.size, self.voxels.size),
        )
        del index, values
        self.region_ids = kept
        self._solver = _LeastSquares(weights_t)
        self.voxel_counts = counts[kept]
        self.coverage = inside_weight[kept] / np.maximum(total_weight[kept], np.finfo(float).tiny)
        self.n_elements = int(kept.size)
        if warn_removed:
            self.warn_removed()

    def warn_removed(self) -> None:
        """Warn (UserWarning, nilearn's words) if the mask removed maps."""
        removed = self.removed_maps
        if removed.size:
            warnings.warn(
                "After applying mask to the maps image, maps with the following indices were "
                f"removed: {set(removed.tolist())}. Out of {removed.size + self.n_elements} maps, "
                f"the masked map image only contains {self.n_elements} maps.",
                UserWarning,
                stacklevel=3,
            )

    @property
    def operator(self) -> sparse.csr_array:
        """Sparse (n_elements × len(voxels)) float64 map weights, the transposed maps ``A.T``.

        The extraction engine computes ``operator @ data.T`` and hands it to :meth:`finish`.
        """
        return self._solver.weights_t

    @property
    def coverage_weights(self) -> sparse.csr_array:
        """Sparse (n_elements × len(voxels)) absolute map weights: what coverage is a share of."""
        return abs(self._solver.weights_t)

    @property
    def members(self) -> sparse.csr_array:
        """Sparse (n_elements × len(voxels)) 0/1 matrix: the non-zero voxels of each map."""
        weights = self._solver.weights_t
        return sparse.csr_array(
            (np.ones(weights.nnz), weights.indices, weights.indptr), shape=weights.shape
        )

    needs_squares = False

    def finish(
        self,
        sums: np.ndarray,
        squares: np.ndarray | None = None,
        *,
        valid: np.ndarray | None = None,
    ) -> np.ndarray:
        """Signals (n, n_elements) float64 from ``operator @ data.T`` (float64 (n_elements, n)).

        The caller's output buffer sets the final type (float32, or float64 for a float64 image).

        ``valid`` (boolean, one per voxel) gives the voxels the sums were taken over (see
        :class:`LabelsSpec`); the least squares are then over them.
        """
        return self._solver.finish(sums, valid)

    def reduce(self, data: np.ndarray) -> np.ndarray:
        """Least-squares signals of a (n, len(voxels)) block, shape (n, n_elements)."""
        return self.finish(self.operator @ _transposed_float64(data))
