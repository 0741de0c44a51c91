"""Synthetic CIFTI-2 grayordinate files: fsLR 91k-layout dtseries and dlabel atlases.

The 91k layout is written from counts and index lists generated here: 29,696 left and
29,716 right cortical vertices kept out of each 32,492-vertex fsLR mesh (the rest play the
medial wall), and 19 subcortical structures with their real voxel counts (31,870 voxels in
all), each grown around its real centre on the 2 mm MNI152NLin6Asym grid. Structure names,
counts, grid and voxel order (Fortran order within a structure) are those of fMRIPrep's and
HCP's files; which vertices and voxels are kept is synthetic. :func:`small_grayordinates`
gives the same kinds of structures with a few hundred grayordinates for fast tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel import cifti2

FSLR_32K_VERTICES = 32492
MNI152NLIN6ASYM_2MM_SHAPE = (91, 109, 91)
MNI152NLIN6ASYM_2MM_AFFINE = np.array(
    [[-2.0, 0.0, 0.0, 90.0], [0.0, 2.0, 0.0, -126.0], [0.0, 0.0, 2.0, -72.0], [0, 0, 0, 1.0]]
)

#: Vertices kept on each fsLR 32k hemisphere in the 91k layout (medial wall removed).
CORTEX_VERTICES = {"CIFTI_STRUCTURE_CORTEX_LEFT": 29696, "CIFTI_STRUCTURE_CORTEX_RIGHT": 29716}

#: Subcortical structures of the 91k layout: voxel count and centre (voxel indices, 2 mm grid).
SUBCORTICAL_VOXELS = {
    "CIFTI_STRUCTURE_ACCUMBENS_LEFT": (135, (49, 68, 32)),
    "CIFTI_STRUCTURE_ACCUMBENS_RIGHT": (140, (41, 68, 32)),
    "CIFTI_STRUCTURE_AMYGDALA_LEFT": (315, (56, 61, 26)),
    "CIFTI_STRUCTURE_AMYGDALA_RIGHT": (332, (33, 61, 26)),
    "CIFTI_STRUCTURE_BRAIN_STEM": (3472, (45, 48, 20)),
    "CIFTI_STRUCTURE_CAUDATE_LEFT": (728, (51, 67, 41)),
    "CIFTI_STRUCTURE_CAUDATE_RIGHT": (755, (38, 67, 41)),
    "CIFTI_STRUCTURE_CEREBELLUM_LEFT": (8709, (57, 32, 18)),
    "CIFTI_STRUCTURE_CEREBELLUM_RIGHT": (9144, (33, 32, 18)),
    "CIFTI_STRUCTURE_DIENCEPHALON_VENTRAL_LEFT": (706, (50, 55, 31)),
    "CIFTI_STRUCTURE_DIENCEPHALON_VENTRAL_RIGHT": (712, (39, 56, 31)),
    "CIFTI_STRUCTURE_HIPPOCAMPUS_LEFT": (764, (57, 52, 29)),
    "CIFTI_STRUCTURE_HIPPOCAMPUS_RIGHT": (795, (32, 52, 29)),
    "CIFTI_STRUCTURE_PALLIDUM_LEFT": (297, (55, 61, 35)),
    "CIFTI_STRUCTURE_PALLIDUM_RIGHT": (260, (35, 61, 35)),
    "CIFTI_STRUCTURE_PUTAMEN_LEFT": (1060, (58, 63, 36)),
    "CIFTI_STRUCTURE_PUTAMEN_RIGHT": (1010, (32, 64, 36)),
    "CIFTI_STRUCTURE_THALAMUS_LEFT": (1288, (50, 53, 39)),
    "CIFTI_STRUCTURE_THALAMUS_RIGHT": (1248, (39, 54, 39)),
}

_SMALL_CORTEX = {
    "CIFTI_STRUCTURE_CORTEX_LEFT": (120, 100),
    "CIFTI_STRUCTURE_CORTEX_RIGHT": (120, 104),
}
_SMALL_SUBCORTEX = {
    "CIFTI_STRUCTURE_BRAIN_STEM": (30, (5, 4, 3)),
    "CIFTI_STRUCTURE_THALAMUS_LEFT": (18, (7, 6, 5)),
    "CIFTI_STRUCTURE_THALAMUS_RIGHT": (20, (3, 6, 5)),
}
_SMALL_SHAPE = (10, 12, 9)
_SMALL_AFFINE = np.array([[-4.0, 0, 0, 20], [0, 4.0, 0, -30], [0, 0, 4.0, -20], [0, 0, 0, 1]])


def _kept_vertices(n_vertices: int, n_kept: int, seed: int) -> np.ndarray:
    """Sorted vertex indices kept on a mesh: all but one contiguous 'medial wall' run."""
    start = np.random.default_rng(seed).integers(0, n_kept)
    return np.concatenate(
        [np.arange(start), np.arange(start + n_vertices - n_kept, n_vertices)]
    ).astype(np.int64)


def _grow_structures(
    structures: Mapping[str, tuple[int, tuple[int, int, int]]], shape: tuple[int, int, int]
) -> dict[str, np.ndarray]:
    """Voxels (i, j, k) of each structure: the ``count`` free voxels nearest its centre."""
    taken = np.zeros(shape, dtype=bool)
    out = {}
    for name, (count, centre) in structures.items():
        half = int(np.ceil((3 * count / (4 * np.pi)) ** (1 / 3))) + 2
        while True:  # search a box around the centre, grown until it surely holds the nearest
            lo = np.maximum(np.asarray(centre) - half, 0)
            hi = np.minimum(np.asarray(centre) + half + 1, shape)
            box = np.indices(hi - lo).reshape(3, -1).T + lo
            free = box[~taken[tuple(box.T)]]
            # slightly anisotropic distance: a fixed tie-break keeps the shapes deterministic
            dist = np.sum(((free - np.asarray(centre)) * (1.0, 1.001, 1.002)) ** 2, axis=1)
            order = np.argsort(dist, kind="stable")[:count]
            if order.size == count and dist[order[-1]] <= half**2:
                break
            half *= 2
        chosen = free[order]
        taken[tuple(chosen.T)] = True
        fortran = np.ravel_multi_index(tuple(chosen.T), shape, order="F")
        out[name] = chosen[np.argsort(fortran)]
    return out


def _brain_models(
    cortex: Mapping[str, tuple[int, np.ndarray]],
    voxels: Mapping[str, np.ndarray],
    shape: tuple[int, int, int],
    affine: np.ndarray,
) -> cifti2.BrainModelAxis:
    """One BrainModelAxis from per-structure vertex and voxel lists (one constructor call)."""
    names, vertex, voxel = [], [], []
    for name, (_, vertices) in cortex.items():
        names += [name] * vertices.size
        vertex.append(vertices)
        voxel.append(np.full((vertices.size, 3), -1))
    for name, ijk in voxels.items():
        names += [name] * len(ijk)
        vertex.append(np.full(len(ijk), -1))
        voxel.append(ijk)
    return cifti2.BrainModelAxis(
        np.array(names),
        voxel=np.concatenate(voxel),
        vertex=np.concatenate(vertex),
        affine=affine if voxels else None,
        volume_shape=shape if voxels else None,
        nvertices={name: n for name, (n, _) in cortex.items()},
    )


def grayordinates_91k() -> cifti2.BrainModelAxis:
    """Return the brain models of an fsLR 91k file (91,282 grayordinates).

    Returns
    -------
    nibabel.cifti2.BrainModelAxis
        Left and right cortex on 32,492-vertex meshes (29,696 and 29,716 vertices kept), then
        19 subcortical structures (31,870 voxels) on the 2 mm MNI152NLin6Asym grid.
    """
    cortex = {
        name: (FSLR_32K_VERTICES, _kept_vertices(FSLR_32K_VERTICES, kept, seed=i))
        for i, (name, kept) in enumerate(CORTEX_VERTICES.items())
    }
    voxels = _grow_structures(SUBCORTICAL_VOXELS, MNI152NLIN6ASYM_2MM_SHAPE)
    return _brain_models(cortex, voxels, MNI152NLIN6ASYM_2MM_SHAPE, MNI152NLIN6ASYM_2MM_AFFINE)


def small_grayordinates() -> cifti2.BrainModelAxis:
    """Return a small layout of the same kinds: two 120-vertex hemispheres, three structures.

    Returns
    -------
    nibabel.cifti2.BrainModelAxis
        272 grayordinates (100 + 104 vertices, 68 voxels on a 10 × 12 × 9 grid of 4 mm).
    """
    cortex = {
        name: (n_vertices, _kept_vertices(n_vertices, kept, seed=i))
        for i, (name, (n_vertices, kept)) in enumerate(_SMALL_CORTEX.items())
    }
    voxels = _grow_structures(_SMALL_SUBCORTEX, _SMALL_SHAPE)
    return _brain_models(cortex, voxels, _SMALL_SHAPE, _SMALL_AFFINE)


def atlas_brain_models(data_axis: cifti2.BrainModelAxis, coverage: str) -> cifti2.BrainModelAxis:
    """Brain models of an atlas laid out differently from the data.

    Parameters
    ----------
    data_axis : nibabel.cifti2.BrainModelAxis
        The data's brain models.
    coverage : {"full", "cortex", "subcortex"}
        "full": every vertex of both meshes (medial wall included), then the subcortical
        structures in reverse order; "cortex": the data's cortical vertices only;
        "subcortex": the data's subcortical voxels only.

    Returns
    -------
    nibabel.cifti2.BrainModelAxis
    """
    if coverage not in ("full", "cortex", "subcortex"):
        raise ValueError(f"coverage must be 'full', 'cortex' or 'subcortex'; got {coverage!r}.")
    cortex, voxels = {}, {}
    for name, _, part in data_axis.iter_structures():
        if part.surface_mask.any():
            n_vertices = part.nvertices[name]
            kept = np.arange(n_vertices) if coverage == "full" else part.vertex
            cortex[name] = (n_vertices, kept)
        else:
            voxels[name] = part.voxel
    if coverage == "full":
        voxels = dict(reversed(list(voxels.items())))
    elif coverage == "cortex":
        voxels = {}
    else:
        cortex = {}
    return _brain_models(cortex, voxels, data_axis.volume_shape, data_axis.affine)


def block_parcellation(
    axis: cifti2.BrainModelAxis, cortical_per_hemisphere: int, subcortical_per_structure: int
) -> np.ndarray:
    """Integer labels on an axis: runs of vertex indices per hemisphere, voxel runs per structure.

    Cortical parcels are contiguous ranges of vertex index (the same parcel for a vertex
    whatever the layout that lists it), numbered from 1 per hemisphere in turn; each
    subcortical structure is cut into ``subcortical_per_structure`` runs of its voxels, in
    Fortran order. ``0`` for none.

    Returns
    -------
    numpy.ndarray
        int32 labels, one per grayordinate of ``axis``.
    """
    labels = np.zeros(len(axis), dtype=np.int32)
    parts = {name: (slc, part) for name, slc, part in axis.iter_structures()}
    next_label = 1
    for name in sorted(parts, key=_structure_rank):
        slc, part = parts[name]
        if part.surface_mask.any():
            if cortical_per_hemisphere == 0:
                continue
            n_vertices = part.nvertices[name]
            size = -(-n_vertices // cortical_per_hemisphere)
            labels[slc] = next_label + part.vertex // size
            next_label += cortical_per_hemisphere
        else:
            if subcortical_per_structure == 0:
                continue
            shape = part.volume_shape
            fortran = np.ravel_multi_index(tuple(part.voxel.T), shape, order="F")
            rank = np.argsort(np.argsort(fortran))
            labels[slc] = next_label + rank * subcortical_per_structure // len(part)
            next_label += subcortical_per_structure
    return labels


def _structure_rank(name: str) -> tuple[int, str]:
    """Cortex first (left, right), then structures by name: a layout-independent order."""
    return (0 if "CORTEX" in name else 1, name)


def write_dtseries(
    path: str | Path,
    axis: cifti2.BrainModelAxis,
    n_volumes: int,
    *,
    t_r: float = 2.0,
    seed: int = 0,
    dtype: type = np.float32,
    nan_columns: Sequence[int] = (),
    zero_columns: Sequence[int] = (),
    n_networks: int = 8,
) -> Path:
    """Write a dense time series: network signals on a baseline, with noise.

    Each grayordinate loads on one of ``n_networks`` random signals (by position along the
    axis, in blocks), on a baseline of 500–1500, with 5 % noise. Columns listed in
    ``nan_columns`` are NaN throughout and those in ``zero_columns`` are 0 throughout
    (grayordinates without data, as fMRIPrep writes them).

    Returns
    -------
    pathlib.Path
        The written file (uncompressed NIfTI-2, intent ConnDenseSeries).
    """
    rng = np.random.default_rng(seed)
    n = len(axis)
    networks = rng.standard_normal((n_volumes, n_networks)).astype(np.float32)
    membership = (np.arange(n) * n_networks // max(n, 1)).astype(np.intp)
    baseline = rng.uniform(500, 1500, n).astype(np.float32)
    data = np.empty((n_volumes, n), dtype=np.float32)
    for start in range(0, n, 8192):  # in blocks: a 91k x 300 float64 temporary is not needed
        cols = slice(start, min(n, start + 8192))
        noise = rng.standard_normal((n_volumes, cols.stop - start)).astype(np.float32)
        data[:, cols] = baseline[cols] * (1 + 0.02 * networks[:, membership[cols]] + 0.05 * noise)
    data[:, list(nan_columns)] = np.nan
    data[:, list(zero_columns)] = 0.0
    series = cifti2.SeriesAxis(start=0.0, step=float(t_r), size=n_volumes, unit="SECOND")
    img = cifti2.Cifti2Image(data.astype(dtype, copy=False), header=(series, axis))
    img.nifti_header.set_intent("ConnDenseSeries")
    path = Path(path)
    nib.save(img, path)
    return path


def write_dlabel(
    path: str | Path,
    axis: cifti2.BrainModelAxis,
    labels: np.ndarray,
    names: Mapping[int, str] | None = None,
) -> Path:
    """Write a dense label file (one map) with a label table.

    Parameters
    ----------
    path : str or Path
        Output file (``*.dlabel.nii``).
    axis : nibabel.cifti2.BrainModelAxis
        The atlas's own brain models.
    labels : numpy.ndarray
        One integer label per grayordinate of ``axis``; 0 is "???" (unlabelled).
    names : mapping or None
        Name of each label; ``"parcel<label>"`` where missing.

    Returns
    -------
    pathlib.Path
    """
    labels = np.asarray(labels)
    names = dict(names or {})
    rng = np.random.default_rng(1)
    table = {0: ("???", (1.0, 1.0, 1.0, 0.0))}
    for key in np.unique(labels[labels != 0]).tolist():
        table[int(key)] = (names.get(key, f"parcel{key}"), (*rng.uniform(0, 1, 3), 1.0))
    label_axis = cifti2.LabelAxis(["parcellation"], [table])
    img = cifti2.Cifti2Image(labels[None, :].astype(np.float32), header=(label_axis, axis))
    img.nifti_header.set_intent("ConnDenseLabel")
    path = Path(path)
    nib.save(img, path)
    return path
