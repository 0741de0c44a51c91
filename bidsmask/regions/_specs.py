"""Labels, maps and voxel extraction specs and their reductions (see :mod:`bidsmask.regions`)."""

from __future__ import annotations

import logging
import warnings

import numpy as np
from nibabel.spatialimages import SpatialImage
from scipy import sparse

from bidsmask.image import _reader

logger = logging.getLogger(__name__)

LABEL_STRATEGIES = (
    "mean",
    "median",
    "sum",
    "minimum",
    "maximum",
    "standard_deviation",
    "variance",
)
_LINEAR_STRATEGIES = ("mean", "sum", "standard_deviation", "variance")
_SQUARE_STRATEGIES = ("standard_deviation", "variance")


def _check_3d(name: str, array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim == 4 and array.shape[3] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise ValueError(f"'{name}' must be a 3D array, got shape {array.shape}.")
    return array


def _check_mask(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    if mask is None:
        return None
    mask = _check_3d("mask", mask)
    if mask.shape != shape:
        raise ValueError(
            f"'mask' has shape {mask.shape} but the atlas has shape {shape}. "
            "Resample the mask to the atlas grid first."
        )
    return mask.astype(bool)


def _transposed_float64(data: np.ndarray) -> np.ndarray:
    """Transpose a (n, n_voxels) block to C-contiguous float64 (n_voxels, n).

    That is the layout sparse and dense products over voxels want.
    """
    return np.ascontiguousarray(np.asarray(data).T, dtype=np.float64)


class _GroupedReducer:
    """Reduce columns of a (n, n_voxels) block by group, vectorised over rows.

    ``index`` gives each voxel's group in ``range(n_groups)``; groups may be empty (their
    output is 0, as nilearn gives for ``keep_masked_labels``).
    """

    def __init__(self, index: np.ndarray, n_groups: int):
        index = np.asarray(index, dtype=np.intp)
        self.n_groups = int(n_groups)
        self.counts = np.bincount(index, minlength=self.n_groups).astype(np.int64)
        n_vox = index.size
        self.weights = sparse.csr_array(
            (np.ones(n_vox), (index, np.arange(n_vox))), shape=(self.n_groups, n_vox)
        )
        self.order = np.argsort(index, kind="stable")
        self.present = np.flatnonzero(self.counts > 0)
        bounds = np.concatenate([[0], np.cumsum(self.counts)])
        self.starts = bounds[:-1][self.present]
        self.stops = bounds[1:][self.present]

    def finish(self, sums: np.ndarray, squares: np.ndarray | None, strategy: str) -> np.ndarray:
        """Linear strategies from ``weights @ data.T`` (and ``weights @ (data**2).T``).

        ``sums`` and ``squares`` are float64 (n_groups, n); the result is float32 (n, n_groups).
        """
        out = np.zeros((sums.shape[1], self.n_groups), dtype=np.float64)
        present = self.present
        counts = self.counts[present]
        sums = sums.T[:, present]
        if strategy == "sum":
            out[:, present] = sums
            return out.astype(np.float32)
        means = sums / counts
        if strategy == "mean":
            out[:, present] = means
            return out.astype(np.float32)
        variance = np.maximum(squares.T[:, present] / counts - means**2, 0.0)
        out[:, present] = variance if strategy == "variance" else np.sqrt(variance)
        return out.astype(np.float32)

    def reduce(self, data: np.ndarray, strategy: str) -> np.ndarray:
        if strategy in _LINEAR_STRATEGIES:
            data_t = _transposed_float64(data)
            squares = self.weights @ np.square(data_t) if strategy in _SQUARE_STRATEGIES else None
            return self.finish(self.weights @ data_t, squares, strategy)
        n = data.shape[0]
        out = np.zeros((n, self.n_groups), dtype=np.float64)
        present = self.present
        ordered = data[:, self.order]
        if strategy == "minimum":
            out[:, present] = np.minimum.reduceat(ordered, self.starts, axis=1)
        elif strategy == "maximum":
            out[:, present] = np.maximum.reduceat(ordered, self.starts, axis=1)
        else:  # median: one vectorised call per region, over all time points at once
            for col, start, stop in zip(present, self.starts, self.stops, strict=True):
                out[:, col] = np.median(ordered[:, start:stop], axis=1)
        return out.astype(np.float32)


def reduce_labels(data: np.ndarray, labels: np.ndarray, strategy: str = "mean") -> np.ndarray:
    """Reduce voxel signals to one signal per label.

    Parameters
    ----------
    data : numpy.ndarray
        Signals, shape (n_samples, n_voxels).
    labels : numpy.ndarray
        Label of each voxel, shape (n_voxels,).
    strategy : str, default="mean"
        One of ``mean``, ``median``, ``sum``, ``minimum``, ``maximum``, ``standard_deviation``,
        ``variance`` (population statistics, as :mod:`scipy.ndimage`).

    Returns
    -------
    numpy.ndarray
        float32 array of shape (n_samples, n_labels); columns follow ``np.unique(labels)``.

    Examples
    --------
    >>> reduce_labels(np.array([[1.0, 3.0, 10.0]]), np.array([2, 2, 5]))
    array([[ 2., 10.]], dtype=float32)
    """
    if strategy not in LABEL_STRATEGIES:
        raise ValueError(
            f"'strategy' must be one of {list(LABEL_STRATEGIES)}. '{strategy}' was provided."
        )
    data = np.atleast_2d(np.asarray(data))
    ids, index = np.unique(np.asarray(labels), return_inverse=True)
    return _GroupedReducer(index.ravel(), ids.size).reduce(data, strategy)


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
    return solver.finish(weights_t @ _transposed_float64(np.atleast_2d(data)))


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
        gram = np.asarray((weights_t @ weights_t.T).toarray(), dtype=np.float64)
        self.gram_inverse = np.linalg.pinv(gram, hermitian=True)

    def finish(self, projections: np.ndarray) -> np.ndarray:
        """Signals (n, n_maps) float32 from the float64 (n_maps, n) ``A.T @ b``."""
        return (self.gram_inverse @ projections).T.astype(np.float32)


class LabelsSpec:
    """Extraction of one signal per label of a deterministic atlas.

    Parameters
    ----------
    labels : numpy.ndarray
        3D label image on the data grid (non-finite values count as 0).
    mask : numpy.ndarray or None, default=None
        3D boolean mask on the same grid; voxels outside it are ignored.
    background_label : int or float, default=0
        Label of the background.
    strategy : str, default="mean"
        One of :data:`LABEL_STRATEGIES`. ``mean``, ``sum``, ``variance`` and
        ``standard_deviation`` use a sparse (regions × voxels) product accumulated in float64;
        ``median``, ``minimum`` and ``maximum`` an exact grouped reduction.
    keep_masked_labels : bool, default=False
        Keep labels that the mask removes entirely, with a signal of 0 (nilearn's deprecated
        behaviour); otherwise they are dropped with a warning.

    Attributes
    ----------
    region_ids : numpy.ndarray
        Label of each output column.
    voxel_counts : numpy.ndarray
        Voxels used for each region (inside the mask).
    coverage : numpy.ndarray
        Fraction of each region's atlas voxels that lie inside the mask (1.0 without a mask).
    voxels : numpy.ndarray
        Flat C-order indices of the voxels read.
    n_elements : int
        Number of output columns.
    """

    def __init__(
        self,
        labels: np.ndarray,
        mask: np.ndarray | None = None,
        *,
        background_label: float = 0,
        strategy: str = "mean",
        keep_masked_labels: bool = False,
    ):
        if strategy not in LABEL_STRATEGIES:
            raise ValueError(
                f"'strategy' must be one of {list(LABEL_STRATEGIES)}. '{strategy}' was provided."
            )
        labels = _check_3d("labels", labels)
        labels = np.where(np.isfinite(labels), labels, 0)
        self.shape = labels.shape
        self.strategy = strategy
        self.background_label = background_label
        mask = _check_mask(mask, labels.shape)
        flat = labels.ravel()
        in_atlas = flat != background_label
        all_ids, sizes = np.unique(flat[in_atlas], return_counts=True)
        if all_ids.size == 0:
            raise ValueError(
                f"The labels image has no label other than the background ({background_label})."
            )
        used = in_atlas if mask is None else in_atlas & mask.ravel()
        kept_ids = np.unique(flat[used])
        if kept_ids.size == 0:
            raise ValueError("No label left after applying mask to the labels image.")
        removed = np.setdiff1d(all_ids, kept_ids)
        if removed.size and not keep_masked_labels:
            warnings.warn(
                "After applying mask to the labels image, the following labels were removed: "
                f"{set(removed.tolist())}. Out of {all_ids.size} labels, the masked labels image "
                f"only contains {kept_ids.size} labels (excluding background).",
                UserWarning,
                stacklevel=2,
            )
        self.region_ids = all_ids if keep_masked_labels else kept_ids
        self.voxels = np.flatnonzero(used)
        index = np.searchsorted(self.region_ids, flat[self.voxels])
        self._reducer = _GroupedReducer(index, self.region_ids.size)
        self.voxel_counts = self._reducer.counts.copy()
        region_sizes = sizes[np.searchsorted(all_ids, self.region_ids)]
        self.coverage = self.voxel_counts / region_sizes
        self.n_elements = int(self.region_ids.size)

    def reduce(self, data: np.ndarray) -> np.ndarray:
        """Reduce a (n, len(voxels)) block to (n, n_elements) float32 signals."""
        return self._reducer.reduce(data, self.strategy)

    @property
    def operator(self) -> sparse.csr_array | None:
        """Sparse (regions × len(voxels)) float64 membership for sums-based strategies, else None.

        The extraction engine computes ``operator @ data.T`` (and, if :attr:`needs_squares`,
        ``operator @ (data**2).T``) and hands them to :meth:`finish`.
        """
        return self._reducer.weights if self.strategy in _LINEAR_STRATEGIES else None

    @property
    def needs_squares(self) -> bool:
        """Whether :meth:`finish` needs the sums of squares (variance, standard deviation)."""
        return self.strategy in _SQUARE_STRATEGIES

    def finish(self, sums: np.ndarray, squares: np.ndarray | None = None) -> np.ndarray:
        """Signals (n, n_elements) float32 from ``operator @ data.T`` (float64 (regions, n))."""
        return self._reducer.finish(sums, squares, self.strategy)


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


class MapsSpec:
    """Extraction of one signal per map by least squares (nilearn's ``lstsq`` solution).

    Parameters
    ----------
    maps : numpy.ndarray, array-like or nibabel image
        4D maps (X, Y, Z, n_maps) on the data grid (non-finite values count as 0). A nibabel
        image is streamed a few maps at a time in one sequential read (the fastest for a
        ``.nii.gz``); an array proxy (``img.dataobj``) is sliced a few maps at a time.
    mask : numpy.ndarray or None, default=None
        3D boolean mask on the same grid; only voxels inside it are used.
    keep_masked_maps : bool, default=False
        Keep maps with no weight inside the mask (their signal is 0); otherwise they are
        dropped, with a warning, as nilearn does.

    Attributes
    ----------
    region_ids : numpy.ndarray
        Index (in ``maps``) of each output column.
    voxel_counts : numpy.ndarray
        Non-zero voxels of each map inside the mask.
    coverage : numpy.ndarray
        Fraction of each map's non-zero voxels inside the mask (1.0 without a mask).
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
    ):
        if not hasattr(maps, "shape") or not hasattr(maps, "__getitem__"):
            maps = np.asarray(maps)
        if len(maps.shape) == 3 and not isinstance(maps, SpatialImage):
            maps = np.asarray(maps)[..., np.newaxis]
        if len(maps.shape) not in (3, 4):
            raise ValueError(f"'maps' must be a 4D array, got shape {maps.shape}.")
        self.shape = tuple(int(n) for n in maps.shape[:3])
        n_maps = int(maps.shape[3]) if len(maps.shape) == 4 else 1
        mask = _check_mask(mask, self.shape)
        # one pass over a few maps at a time (a lazily read maps file is never held whole),
        # keeping only the non-zero entries: the maps are stored sparse
        mask_flat = None if mask is None else mask.ravel()
        entries = []
        sizes = np.zeros(n_maps, dtype=np.int64)
        for k0, block in _iter_maps(maps):
            for j in range(block.shape[3]):
                index, values = _map_entries(block[..., j])
                sizes[k0 + j] = index.size
                if mask_flat is not None:
                    inside = mask_flat[index]
                    index, values = index[inside], values[inside]
                entries.append((index, values))
        if not sizes.any():
            raise ValueError("maps_img contains no map: every value is 0 (or not finite).")
        counts = np.array([index.size for index, _ in entries], dtype=np.int64)
        if mask is None or keep_masked_maps:
            kept = np.arange(n_maps)
        else:
            kept = np.flatnonzero(counts > 0)
            if kept.size == 0:
                raise ValueError("No map left after applying mask to the maps image.")
            removed = np.setdiff1d(np.arange(n_maps), kept)
            if removed.size:
                warnings.warn(
                    "After applying mask to the maps image, maps with the following indices "
                    f"were removed: {set(removed.tolist())}. Out of {n_maps} maps, the "
                    f"masked map image only contains {kept.size} maps.",
                    UserWarning,
                    stacklevel=2,
                )
        used = np.zeros(int(np.prod(self.shape)), dtype=bool)
        for k in kept:
            used[entries[k][0]] = True
        self.voxels = np.flatnonzero(used)
        columns = np.concatenate([entries[k][0] for k in kept])
        indptr = np.concatenate([[0], np.cumsum(counts[kept])])
        weights_t = sparse.csr_array(
            (
                np.concatenate([entries[k][1] for k in kept]).astype(np.float64),
                np.searchsorted(self.voxels, columns),
                indptr,
            ),
            shape=(kept.size, self.voxels.size),
        )
        del entries, columns
        self.region_ids = kept
        self._solver = _LeastSquares(weights_t)
        self.voxel_counts = counts[kept]
        self.coverage = self.voxel_counts / np.maximum(sizes[kept], 1)
        self.n_elements = int(kept.size)

    @property
    def operator(self) -> sparse.csr_array:
        """Sparse (n_elements × len(voxels)) float64 map weights, the transposed maps ``A.T``.

        The extraction engine computes ``operator @ data.T`` and hands it to :meth:`finish`.
        """
        return self._solver.weights_t

    needs_squares = False

    def finish(self, sums: np.ndarray, squares: np.ndarray | None = None) -> np.ndarray:
        """Signals (n, n_elements) float32 from ``operator @ data.T`` (float64 (n_elements, n))."""
        return self._solver.finish(sums)

    def reduce(self, data: np.ndarray) -> np.ndarray:
        """Least-squares signals of a (n, len(voxels)) block, shape (n, n_elements)."""
        return self.finish(self.operator @ _transposed_float64(data))


class VoxelSpec:
    """Extraction of every voxel of a mask, in ``data3d[mask]`` (C) order.

    Parameters
    ----------
    mask : numpy.ndarray
        3D boolean mask.

    Attributes
    ----------
    region_ids, voxels : numpy.ndarray
        Flat C-order index of each voxel.
    voxel_counts, coverage : numpy.ndarray
        Ones (each element is one voxel, always inside the mask).
    n_elements : int
        Number of voxels.
    """

    def __init__(self, mask: np.ndarray):
        mask = _check_3d("mask", mask).astype(bool)
        if not mask.any():
            raise ValueError("The mask is empty: it selects no voxel.")
        self.shape = mask.shape
        self.voxels = np.flatnonzero(mask)
        self.region_ids = self.voxels
        self.voxel_counts = np.ones(self.voxels.size, dtype=np.int64)
        self.coverage = np.ones(self.voxels.size)
        self.n_elements = int(self.voxels.size)

    operator = None

    def reduce(self, data: np.ndarray) -> np.ndarray:
        """Return the block itself as float32 (n, n_voxels)."""
        return np.asarray(data, dtype=np.float32)
