"""Labels, maps and voxel extraction specs and their reductions (see :mod:`bidsmask.regions`)."""

from __future__ import annotations

import logging
import warnings

import numpy as np
from scipy import sparse

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

    def finish(
        self,
        sums: np.ndarray,
        squares: np.ndarray | None,
        strategy: str,
        counts: np.ndarray | None = None,
    ) -> np.ndarray:
        """Linear strategies from ``weights @ data.T`` (and ``weights @ (data**2).T``).

        ``sums`` and ``squares`` are float64 (n_groups, n); so is the result (n, n_groups): the
        caller's output buffer sets the final type (float32, or float64 for a float64 image).
        ``counts`` replaces the voxels per group (the voxels with data); a group without any
        is then NaN instead of 0.
        """
        if counts is None:
            out = np.zeros((sums.shape[1], self.n_groups), dtype=np.float64)
            present = self.present
        else:
            out = np.full((sums.shape[1], self.n_groups), np.nan)
            present = np.flatnonzero(counts > 0)
        counts = (self.counts if counts is None else counts)[present]
        sums = sums.T[:, present]
        if strategy == "sum":
            out[:, present] = sums
            return out
        means = sums / counts
        if strategy == "mean":
            out[:, present] = means
            return out
        variance = np.maximum(squares.T[:, present] / counts - means**2, 0.0)
        out[:, present] = variance if strategy == "variance" else np.sqrt(variance)
        return out

    def reduce(self, data: np.ndarray, strategy: str) -> np.ndarray:
        """Reduce (n, n_voxels) ``data``: float32, or float64 for float64 (or integer) data."""
        dtype = np.result_type(data.dtype, np.float32)
        if strategy in _LINEAR_STRATEGIES:
            data_t = _transposed_float64(data)
            squares = self.weights @ np.square(data_t) if strategy in _SQUARE_STRATEGIES else None
            return self.finish(self.weights @ data_t, squares, strategy).astype(dtype, copy=False)
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
        return out.astype(dtype, copy=False)


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
    return _GroupedReducer(index.ravel(), ids.size).reduce(data, strategy).astype(np.float32)


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
        """Reduce a (n, len(voxels)) block to (n, n_elements) signals (float64 data: float64)."""
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

    @property
    def members(self) -> sparse.csr_array:
        """Sparse (regions × len(voxels)) 0/1 matrix: the voxels of each region."""
        return self._reducer.weights

    def finish(
        self,
        sums: np.ndarray,
        squares: np.ndarray | None = None,
        *,
        valid: np.ndarray | None = None,
    ) -> np.ndarray:
        """Signals (n, n_elements) float64 from ``operator @ data.T`` (float64 (regions, n)).

        ``valid`` (boolean, one per voxel) gives the voxels the sums were taken over; without
        it, all of them. A region with no valid voxel is then NaN.
        """
        counts = None if valid is None else self.members @ valid.astype(np.float64)
        return self._reducer.finish(sums, squares, self.strategy, counts)


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

    @property
    def members(self) -> sparse.csr_array:
        """The (n_voxels × n_voxels) identity: each element is one voxel."""
        return sparse.identity(self.n_elements, format="csr")

    def reduce(self, data: np.ndarray) -> np.ndarray:
        """Return the block itself (n, n_voxels), float32 unless it is float64."""
        return np.asarray(data, dtype=np.result_type(data.dtype, np.float32))
