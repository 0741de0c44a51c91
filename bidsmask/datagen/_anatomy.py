"""Grids and the synthetic anatomy drawn on them.

An :class:`Anatomy` is everything the generators need to know about one grid: where each
voxel sits in MNI space, which voxels are brain and head, tissue probabilities, the depth
of each brain voxel below the brain surface, and a FreeSurfer-like ``aseg`` labelling.
The brain shape comes from a template image; everything else is drawn from the tables
in :mod:`bidsmask.datagen._tables`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.processing import resample_from_to, smooth_image
from scipy import ndimage

from bidsmask.datagen import _tables

logger = logging.getLogger(__name__)

MNI_RES2_SHAPE = (97, 115, 97)
MNI_RES2_ORIGIN = (-96.0, -132.0, -78.0)
DECIMATION = 4


def mni_grid(decimation: int = DECIMATION) -> tuple[tuple[int, int, int], np.ndarray]:
    """Return the MNI152NLin2009cAsym res-02 grid decimated by an integer factor.

    Parameters
    ----------
    decimation : int, default=4
        Keep one voxel in ``decimation`` along each axis of the 97×115×97, 2 mm grid
        (origin −96, −132, −78 mm). The first voxel is unchanged, the voxel size becomes
        ``2 * decimation`` mm.

    Returns
    -------
    shape : tuple of int
        ``ceil(n / decimation)`` for each axis of the res-02 grid.
    affine : numpy.ndarray
        The 4×4 voxel-to-MNI affine.

    Examples
    --------
    >>> shape, affine = mni_grid(4)
    >>> shape
    (25, 29, 25)
    >>> affine[:3, 3].tolist(), float(affine[0, 0])
    ([-96.0, -132.0, -78.0], 8.0)
    """
    if isinstance(decimation, bool) or not isinstance(decimation, (int, np.integer)):
        raise TypeError(f"decimation must be a positive integer, got {decimation!r}.")
    if decimation < 1:
        raise ValueError(f"decimation must be a positive integer, got {decimation}.")
    shape = tuple(-(-n // int(decimation)) for n in MNI_RES2_SHAPE)
    affine = np.diag([2.0 * decimation] * 3 + [1.0])
    affine[:3, 3] = MNI_RES2_ORIGIN
    return shape, affine


def subject_grid(
    shift: tuple[float, float, float], voxel_size: float
) -> tuple[tuple[int, int, int], np.ndarray]:
    """Return a LAS grid covering the MNI field of view translated by ``shift``.

    It stands for a participant's T1w space: a head placed elsewhere in scanner
    coordinates, stored with the x axis flipped and voxel centres offset by half a voxel
    from the MNI grid's, so that nothing lines up by accident.

    Parameters
    ----------
    shift : tuple of float
        Translation (mm) from MNI to subject coordinates.
    voxel_size : float
        Isotropic voxel size (mm).

    Returns
    -------
    shape : tuple of int
    affine : numpy.ndarray
    """
    extent = (np.asarray(MNI_RES2_SHAPE) - 1) * 2.0
    low = np.asarray(MNI_RES2_ORIGIN) + np.asarray(shift, dtype=float)
    shape = tuple(int(n) for n in np.ceil(extent / voxel_size) + 2)
    affine = np.diag([-voxel_size, voxel_size, voxel_size, 1.0])
    affine[:3, 3] = low - voxel_size / 2
    affine[0, 3] = low[0] + extent[0] + voxel_size / 2
    return shape, affine


def translation(shift: tuple[float, float, float]) -> np.ndarray:
    """Return the 4×4 affine of a translation by ``shift`` mm."""
    out = np.eye(4)
    out[:3, 3] = shift
    return out


def world_coordinates(shape: tuple[int, ...], affine: np.ndarray) -> np.ndarray:
    """Return the world coordinates (mm) of every voxel centre, shape ``shape + (3,)``."""
    ijk = np.stack(np.meshgrid(*(np.arange(n) for n in shape[:3]), indexing="ij"), axis=-1)
    return (ijk @ affine[:3, :3].T + affine[:3, 3]).astype(np.float32)


def _ellipsoid(xyz: np.ndarray, centre, radii) -> np.ndarray:
    return (((xyz - np.asarray(centre)) / np.asarray(radii)) ** 2).sum(axis=-1)


@dataclass(frozen=True)
class Anatomy:
    """The synthetic anatomy on one grid.

    Attributes
    ----------
    shape : tuple of int
        Grid shape (3D).
    affine : numpy.ndarray
        Voxel-to-world affine of the grid.
    mni_xyz : numpy.ndarray
        MNI coordinates (mm) of every voxel, shape ``shape + (3,)``.
    brain, head : numpy.ndarray
        Boolean masks; ``head`` is ``brain`` dilated by about 8 mm.
    gm, wm, csf : numpy.ndarray
        float32 tissue probabilities summing to 1 inside ``brain``, 0 outside.
    depth : numpy.ndarray
        Distance (mm) of each brain voxel to the nearest non-brain voxel.
    aseg : numpy.ndarray
        int16 FreeSurfer ``aseg`` labels (0 outside the brain).
    """

    shape: tuple[int, int, int]
    affine: np.ndarray
    mni_xyz: np.ndarray
    brain: np.ndarray
    head: np.ndarray
    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    depth: np.ndarray
    aseg: np.ndarray

    @property
    def voxel_size(self) -> float:
        """Largest voxel size of the grid (mm)."""
        return float(np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0)).max())

    @property
    def left(self) -> np.ndarray:
        """Boolean map of the left hemisphere (MNI x < 0)."""
        return self.mni_xyz[..., 0] < 0

    def cortex(self) -> np.ndarray:
        """Boolean map of the cortical ribbon (aseg labels 3 and 42)."""
        return np.isin(self.aseg, tuple(_tables.ASEG_CORTEX.values()))


def load_template(template_img) -> nib.spatialimages.SpatialImage:
    """Return ``template_img`` as a nibabel image (a path is loaded)."""
    if isinstance(template_img, (str, Path)):
        return nib.load(template_img)
    if not hasattr(template_img, "dataobj") or not hasattr(template_img, "affine"):
        raise TypeError(
            f"template_img must be a path or a nibabel image, got {type(template_img).__name__}."
        )
    return template_img


def prepare_template(template_img: nib.spatialimages.SpatialImage) -> nib.Nifti1Image:
    """Scale a brain template to [0, 1] and average it down to voxels of about 2 mm.

    Parameters
    ----------
    template_img : nibabel image
        3D MNI-space brain mask or skull-stripped T1 template.

    Returns
    -------
    nibabel.Nifti1Image
        float32 image, divided by the 99th percentile of its positive voxels and clipped
        to [0, 1]; finer voxels are averaged in blocks (e.g. 2×2×2 for a 1 mm template),
        which keeps the later smoothing cheap.
    """
    data = np.asarray(template_img.dataobj, dtype=np.float32)
    if data.ndim != 3:
        raise ValueError(
            f"template_img must be a 3D brain image (a T1 template or a brain mask), "
            f"got shape {data.shape}."
        )
    positive = data[data > 0]
    if positive.size == 0:
        raise ValueError("template_img has no positive voxel: pass a brain mask or T1 template.")
    scaled = np.clip(data / np.percentile(positive, 99), 0, 1)
    zooms = np.sqrt((template_img.affine[:3, :3] ** 2).sum(axis=0))
    block = np.maximum(np.floor(2.0 / zooms + 1e-6).astype(int), 1)
    shape = np.asarray(scaled.shape) // block
    cropped = scaled[: shape[0] * block[0], : shape[1] * block[1], : shape[2] * block[2]]
    reduced = cropped.reshape(shape[0], block[0], shape[1], block[1], shape[2], block[2])
    affine = template_img.affine.copy()
    affine[:3, :3] = template_img.affine[:3, :3] * block
    # A block's centre sits half a block minus half a voxel from its first voxel.
    affine[:3, 3] = template_img.affine[:3, :3] @ ((block - 1) / 2) + template_img.affine[:3, 3]
    return nib.Nifti1Image(reduced.mean(axis=(1, 3, 5)).astype(np.float32), affine)


def _brain_probability(template, shape, affine, to_mni) -> np.ndarray:
    voxel_size = float(np.sqrt((affine[:3, :3] ** 2).sum(axis=0)).max())
    smoothed = smooth_image(template, fwhm=0.8 * voxel_size)
    # The template lives in MNI space; seen from this grid's world it sits at inv(to_mni).
    moved = nib.Nifti1Image(
        np.asarray(smoothed.dataobj, dtype=np.float32),
        np.linalg.inv(to_mni) @ template.affine,
    )
    resampled = resample_from_to(moved, (shape, affine), order=1)
    return np.asarray(resampled.dataobj, dtype=np.float32)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    labels, n = ndimage.label(mask)
    if n == 0:
        raise ValueError("The template gives an empty brain on this grid: check template_img.")
    sizes = np.bincount(labels.ravel())[1:]
    return ndimage.binary_fill_holes(labels == (np.argmax(sizes) + 1))


def _segment(mni_xyz, brain, depth, voxel_size) -> np.ndarray:
    x, y, z = (mni_xyz[..., i] for i in range(3))
    left = x < 0
    aseg = np.zeros(brain.shape, dtype=np.int16)
    aseg[brain & left] = _tables.ASEG_WM["L"]
    aseg[brain & ~left] = _tables.ASEG_WM["R"]
    ribbon = brain & (depth <= max(voxel_size, 8.0) + 1e-3)
    aseg[ribbon & left] = _tables.ASEG_CORTEX["L"]
    aseg[ribbon & ~left] = _tables.ASEG_CORTEX["R"]
    cerebellum = brain & (z < -24) & (y < -44)
    aseg[cerebellum & ribbon & left] = _tables.ASEG_CEREBELLUM_CORTEX["L"]
    aseg[cerebellum & ribbon & ~left] = _tables.ASEG_CEREBELLUM_CORTEX["R"]
    aseg[cerebellum & ~ribbon & left] = _tables.ASEG_CEREBELLUM_WM["L"]
    aseg[cerebellum & ~ribbon & ~left] = _tables.ASEG_CEREBELLUM_WM["R"]
    stem = brain & ~cerebellum & (np.abs(x) < 10) & (y > -44) & (y < -14) & (z < -12)
    aseg[stem] = _tables.ASEG_BRAINSTEM
    inside = np.flatnonzero(brain)
    for _name, label_l, label_r, centre, radii in _tables.ASEG_DEEP:
        for label, sign in ((label_l, 1.0), (label_r, -1.0)):
            mirrored = (sign * centre[0], centre[1], centre[2])
            dist = _ellipsoid(mni_xyz, mirrored, radii)
            structure = brain & (dist <= 1.0)
            if not structure.any():
                # Coarse grids may miss a small ellipsoid: keep its nearest brain voxel.
                structure.flat[inside[np.argmin(dist.flat[inside])]] = True
            aseg[structure] = label
    return aseg


def _tissues(aseg, brain, depth) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    deep_gm = np.isin(aseg, [lab for row in _tables.ASEG_DEEP[1:] for lab in row[1:3]])
    ventricles = np.isin(aseg, _tables.ASEG_DEEP[0][1:3])
    gm = 0.85 * np.exp(-(((depth - 4.0) / 8.0) ** 2)) + 0.8 * deep_gm
    csf = 0.25 * np.exp(-(((depth - 4.0) / 6.0) ** 2)) + 0.9 * ventricles
    wm = np.clip(1.0 - gm - csf, 0.02, 1.0)
    total = gm + wm + csf
    return tuple(np.where(brain, t / total, 0).astype(np.float32) for t in (gm, wm, csf))


def build_anatomy(
    template_img: nib.spatialimages.SpatialImage,
    shape: tuple[int, int, int],
    affine: np.ndarray,
    *,
    to_mni: np.ndarray | None = None,
    threshold: float = 0.4,
) -> Anatomy:
    """Draw the synthetic anatomy of ``template_img``'s brain on a grid.

    Parameters
    ----------
    template_img : nibabel image
        Output of :func:`prepare_template`. It is smoothed to the grid's resolution and
        resampled; voxels above ``threshold`` are brain.
    shape, affine : tuple of int, numpy.ndarray
        The grid.
    to_mni : numpy.ndarray or None, default=None
        4×4 map from the grid's world coordinates to MNI (identity when None).
    threshold : float, default=0.4
        Brain threshold on the smoothed, scaled template.

    Returns
    -------
    Anatomy
    """
    to_mni = np.eye(4) if to_mni is None else np.asarray(to_mni, dtype=float)
    prob = _brain_probability(template_img, shape, affine, to_mni)
    brain = _largest_component(prob > threshold)
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    voxel_size = float(zooms.max())
    head = ndimage.binary_dilation(brain, iterations=max(1, round(8.0 / voxel_size)))
    depth = ndimage.distance_transform_edt(brain, sampling=zooms).astype(np.float32)
    mni_xyz = world_coordinates(shape, to_mni @ affine)
    aseg = _segment(mni_xyz, brain, depth, voxel_size)
    gm, wm, csf = _tissues(aseg, brain, depth)
    logger.debug("Anatomy on %s grid: %d brain voxels", shape, int(brain.sum()))
    return Anatomy(tuple(shape), affine, mni_xyz, brain, head, gm, wm, csf, depth, aseg)


def t1w_contrast(anat: Anatomy, rng: np.random.Generator) -> np.ndarray:
    """Return a T1w-like float32 image: WM > GM > CSF, scalp 350, 1.5 % noise."""
    image = 250.0 * anat.csf + 520.0 * anat.gm + 800.0 * anat.wm
    image = np.where(anat.brain, image, np.where(anat.head, 350.0, 0.0))
    noise = rng.standard_normal(anat.shape) * 0.015 * image
    return (image + noise).astype(np.float32)
