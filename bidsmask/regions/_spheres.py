"""Sphere extraction spec: a sparse (spheres × voxels) membership matrix (see :mod:`regions`)."""

from __future__ import annotations

import logging

import numpy as np
from scipy import sparse

logger = logging.getLogger(__name__)


def _box_voxels(center_mm: np.ndarray, radius: float, inv_affine: np.ndarray, shape) -> np.ndarray:
    """Voxel indices (k × 3) of the grid box that contains the ball of ``radius`` mm."""
    center_vox = inv_affine[:3, :3] @ center_mm + inv_affine[:3, 3]
    # extent of a ball of radius r along voxel axis i is r * ||row i of inv(M)||
    half = radius * np.linalg.norm(inv_affine[:3, :3], axis=1) + 1.0
    lo = np.maximum(np.floor(center_vox - half).astype(int), 0)
    hi = np.minimum(np.ceil(center_vox + half).astype(int) + 1, np.asarray(shape))
    if np.any(hi <= lo):
        return np.empty((0, 3), dtype=int)
    axes = [np.arange(a, b) for a, b in zip(lo, hi, strict=True)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


def sphere_members(
    seeds: np.ndarray,
    affine: np.ndarray,
    candidates: np.ndarray,
    radius: float,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Flat C-order voxel indices belonging to each sphere, with nilearn's rules.

    A sphere holds the candidate voxels whose centre is within ``radius`` mm of the seed
    (inclusive), plus the candidate voxel nearest to the seed (``round`` of its voxel
    coordinates), plus the first candidate voxel (C order) whose world coordinates truncate to the
    same integers as the seed — the three rules of nilearn 0.14's
    ``apply_mask_and_get_affinity``.

    Parameters
    ----------
    seeds : numpy.ndarray
        World coordinates in mm, shape (n_seeds, 3).
    affine : numpy.ndarray
        4 × 4 voxel-to-world affine of the grid.
    candidates : numpy.ndarray
        3D boolean array: voxels that may belong to a sphere (the mask, or all voxels).
    radius : float
        Sphere radius in mm.

    Returns
    -------
    members : list of numpy.ndarray
        Sorted flat C-order indices of each sphere's voxels (possibly empty).
    full_sizes : numpy.ndarray
        Number of voxels of each sphere when every voxel of the grid is a candidate (the
        denominator of the coverage), found in the same pass.
    """
    shape = candidates.shape
    flat_candidates = candidates.ravel()
    inv_affine = np.linalg.inv(affine)
    members = []
    full_sizes = np.zeros(len(seeds), dtype=np.int64)
    search = max(float(radius), 2.0)
    for i, seed in enumerate(np.asarray(seeds, dtype=np.float64)):
        box = _box_voxels(seed, search, inv_affine, shape)  # C order: flat indices increase
        flat = np.ravel_multi_index(box.T, shape)
        inside = flat_candidates[flat]
        world = box @ affine[:3, :3].T + affine[:3, 3]
        dist = np.sqrt(np.sum((world - seed) ** 2, axis=1))
        keep = dist <= radius
        nearest = np.round(inv_affine[:3, :3] @ seed + inv_affine[:3, 3]).astype(int)
        if np.all(nearest >= 0) and np.all(nearest < shape):
            keep |= flat == np.ravel_multi_index(nearest, shape)
        same_int = np.all(world.astype(int) == seed.astype(int), axis=1)
        keep_all = keep.copy()
        first = np.flatnonzero(same_int)
        if first.size:
            keep_all[first[0]] = True
        full_sizes[i] = np.count_nonzero(keep_all)
        keep &= inside
        first = np.flatnonzero(same_int & inside)
        if first.size:
            keep[first[0]] = True
        members.append(flat[keep])
    return members, full_sizes


class SpheresSpec:
    """Extraction of the mean signal in spheres around seeds.

    Sphere membership follows nilearn's ``NiftiSpheresMasker`` (voxels within ``radius`` mm,
    inclusive, plus the voxel nearest to the seed), but means are always computed in floating
    point: nilearn 0.14 stores sphere means of integer images in an integer array, truncating
    them; here they are not truncated.

    Parameters
    ----------
    seeds : array-like
        World coordinates (mm) of the sphere centres, shape (n_seeds, 3).
    affine : numpy.ndarray
        4 × 4 affine of the data grid.
    shape : tuple of int
        3D shape of the data grid.
    radius : float or None, default=None
        Radius in mm; ``None`` (or 0) keeps only the voxel nearest to each seed.
    mask : numpy.ndarray or None, default=None
        3D boolean mask on the data grid; spheres only contain voxels inside it.
    allow_overlap : bool, default=False
        If False, a voxel shared by two spheres raises a ValueError.
    validate : bool, default=True
        Raise at once if a sphere is empty or spheres overlap; with False, only
        :meth:`validate` raises (nilearn's masker fits such spheres and refuses to extract).

    Attributes
    ----------
    region_ids : numpy.ndarray
        ``arange(n_seeds)``.
    voxel_counts : numpy.ndarray
        Voxels in each sphere (inside the mask).
    coverage : numpy.ndarray
        Fraction of each sphere's voxels (on the whole grid) that lie inside the mask.
    voxels : numpy.ndarray
        Flat C-order indices of the voxels in any sphere.
    membership : scipy.sparse.csr_array
        Boolean (n_seeds × len(voxels)) membership matrix.
    n_elements : int
        Number of spheres.
    """

    def __init__(
        self,
        seeds,
        affine: np.ndarray,
        shape,
        radius: float | None = None,
        mask: np.ndarray | None = None,
        *,
        allow_overlap: bool = False,
        validate: bool = True,
    ):
        seeds = np.asarray(seeds, dtype=np.float64)
        if seeds.ndim != 2 or seeds.shape[1] != 3:
            raise ValueError(
                f"'seeds' must be a list of (x, y, z) triplets in mm; got shape {seeds.shape}."
            )
        radius = 0.0 if radius is None else float(radius)
        if radius < 0:
            raise ValueError(f"'radius' must be a non-negative number of mm, got {radius}.")
        self.shape = tuple(int(s) for s in shape[:3])
        affine = np.asarray(affine, dtype=np.float64)
        if mask is not None:
            mask = np.asarray(mask).astype(bool)
            if mask.shape != self.shape:
                raise ValueError(
                    f"'mask' has shape {mask.shape} but the data grid is {self.shape}. "
                    "Resample the mask to the data grid first."
                )
        candidates = np.ones(self.shape, dtype=bool) if mask is None else mask
        members, full_sizes = sphere_members(seeds, affine, candidates, radius)
        self.voxel_counts = np.array([m.size for m in members], dtype=np.int64)
        self._seeds = seeds
        self.coverage = self.voxel_counts / np.maximum(full_sizes, 1)
        self.voxels = np.unique(np.concatenate(members))
        rows = np.repeat(np.arange(len(members)), self.voxel_counts)
        cols = np.searchsorted(self.voxels, np.concatenate(members))
        self.membership = sparse.csr_array(
            (np.ones(cols.size), (rows, cols)), shape=(len(members), self.voxels.size)
        )
        self._overlap = not allow_overlap and bool(
            np.any(np.bincount(cols, minlength=self.voxels.size) >= 2)
        )
        self.region_ids = np.arange(len(members))
        self.n_elements = len(members)
        if validate:
            self.validate()

    def validate(self) -> None:
        """Raise a ValueError if a sphere is empty, or if spheres overlap (``allow_overlap``).

        Raises
        ------
        ValueError
            Naming the empty spheres and their seeds, or the overlap.
        """
        empty = np.flatnonzero(self.voxel_counts == 0)
        if empty.size:
            raise ValueError(
                f"These spheres are empty: {empty.tolist()} (seeds "
                f"{self._seeds[empty].tolist()}). Check that the seeds are in world (mm) "
                "coordinates inside the mask, or increase 'radius'."
            )
        if self._overlap:
            raise ValueError(
                "Overlap detected between spheres. Set allow_overlap=True, use a smaller "
                "'radius', or move the seeds apart."
            )

    needs_squares = False

    @property
    def operator(self) -> sparse.csr_array:
        """The membership matrix; the engine hands ``operator @ data.T`` to :meth:`finish`."""
        return self.membership

    @property
    def members(self) -> sparse.csr_array:
        """The membership matrix (the voxels of each sphere)."""
        return self.membership

    def finish(
        self,
        sums: np.ndarray,
        squares: np.ndarray | None = None,
        *,
        valid: np.ndarray | None = None,
    ) -> np.ndarray:
        """Sphere means (n, n_spheres) float64 from the float64 sums ``membership @ data.T``.

        The caller's output buffer sets the final type (float32, or float64 for a float64
        image, whose means then equal ``numpy.mean`` of the sphere's voxels).

        ``valid`` (boolean, one per voxel) gives the voxels the sums were taken over; without
        it, all of them. A sphere with no valid voxel is then NaN.
        """
        counts = self.voxel_counts if valid is None else self.membership @ valid.astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = sums.T / counts
        if valid is not None:
            means[:, counts == 0] = np.nan
        return means

    def reduce(self, data: np.ndarray) -> np.ndarray:
        """Sphere means of a (n, len(voxels)) block: float32 (float64 data: float64)."""
        sums = self.membership @ np.ascontiguousarray(data.T, dtype=np.float64)
        return self.finish(sums).astype(np.result_type(data.dtype, np.float32), copy=False)
