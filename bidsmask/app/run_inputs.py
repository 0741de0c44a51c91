"""What a run's extraction needs before its single read: the mask and each atlas's spec.

The mask (``--mask``): ``fmriprep`` — the run's fMRIPrep brain mask; ``epi`` —
:func:`bidsmask.masking.compute_epi_mask` of the BOLD; ``gm`` — the fMRIPrep mask ∩ a grey-matter
probability map thresholded at ``--gm-threshold`` (default 0.5: grey matter is then the majority
tissue of the voxel, its most likely class; nilearn's 0.2 for its GM template mask keeps voxels
that are mostly white matter or CSF, which dilutes region means). The map is TemplateFlow's
``label-GM`` probseg of the space, or, in ``T1w`` space, the participant's own fMRIPrep GM
probseg, resampled (continuous) to the BOLD grid.

Atlases are resampled to the BOLD grid as nilearn's maskers do (nearest for labels, linear for
maps), once per grid (:mod:`bidsmask.app.atlas_cache`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import nibabel as nib
import numpy as np

from bidsmask import image, masking, regions
from bidsmask.app import atlas_cache
from bidsmask.app.exitcodes import DataError, reading
from bidsmask.atlases import NATIVE_SPACES, Atlas
from bidsmask.bids import templateflow, writer

if TYPE_CHECKING:
    from bidsmask.app.run import RunJob

logger = logging.getLogger(__name__)


def atlas_spec(
    atlas: Atlas, bold, mask: np.ndarray, radius: float, cache_dir: Path | None = None
) -> tuple[object, np.ndarray]:
    """Build the extraction spec of an atlas on the BOLD grid, and its atlas positions.

    Labels are resampled to the BOLD grid with nearest-neighbour interpolation, maps with
    linear interpolation (as nilearn's maskers with ``resampling_target="data"``), once per
    grid (:mod:`bidsmask.app.atlas_cache`, on disk in ``cache_dir``); spheres whose every voxel
    is outside the mask are left out (their regions become n/a).

    Returns
    -------
    spec : LabelsSpec, MapsSpec or SpheresSpec
        The spec, with the mask.
    positions : numpy.ndarray
        Atlas region index of each spec column (-1 for labels missing from the atlas's table).
    """
    shape3d, affine = tuple(bold.shape[:3]), bold.affine
    if atlas.kind == "spheres":
        unmasked = regions.SpheresSpec(atlas.coords, affine, shape3d, radius, allow_overlap=True)
        inside = unmasked.membership @ mask.ravel()[unmasked.voxels].astype(float)
        keep = np.flatnonzero(inside > 0)
        spec = regions.SpheresSpec(
            atlas.coords[keep], affine, shape3d, radius, mask, allow_overlap=True
        )
        return spec, keep
    data = atlas_cache.on_grid(atlas.image, atlas.kind, shape3d, affine, cache_dir)
    if atlas.kind == "maps":
        spec = regions.MapsSpec(data, mask, keep_masked_maps=True)
        return spec, np.asarray(spec.region_ids)
    spec = regions.LabelsSpec(data, mask, keep_masked_labels=True)
    where = {rid: i for i, rid in enumerate(atlas.region_ids)}
    positions = np.array([where.get(int(r), -1) for r in spec.region_ids])
    if (positions < 0).any():
        logger.warning(
            "Labels %s of %s are not in its label table; they are left out.",
            spec.region_ids[positions < 0].tolist(),
            atlas.image,
        )
    return spec, positions


def build_mask(job: RunJob, bold) -> tuple[nib.Nifti1Image, dict]:
    """Make the run's mask (see the module docstring) and its sidecar.

    Raises
    ------
    DataError
        The fMRIPrep mask is not on the BOLD grid, or the grey-matter mask is empty.
    FileNotFoundError
        No grey-matter probability map for ``--mask gm``.
    """
    run, config = job.run, job.config
    sources = [writer.bids_uri(run.bold, config.fmriprep_dir, "fmriprep")]
    if config.mask == "epi":
        with reading(run.bold):
            data = np.asarray(masking.compute_epi_mask(run.bold).dataobj).astype(bool)
        method = "compute_epi_mask of the preprocessed BOLD (lower_cutoff=0.2, upper_cutoff=0.85)"
        return _mask_image(data, bold), {"Type": "Brain", "Sources": sources, "Method": method}
    with reading(run.mask):
        data, affine = masking.load_mask_img(run.mask)
    if data.shape != tuple(bold.shape[:3]) or not np.allclose(affine, bold.affine, atol=1e-4):
        raise DataError(
            f"BOLD/mask grid mismatch: {run.mask} has shape {data.shape} and affine "
            f"{np.round(affine, 3).tolist()}, but {run.bold} has shape {tuple(bold.shape[:3])} "
            f"and affine {np.round(bold.affine, 3).tolist()}. They must be fMRIPrep's outputs of "
            "the same run and space; re-run fMRIPrep or restore the original files."
        )
    sources.append(writer.bids_uri(run.mask, config.fmriprep_dir, "fmriprep"))
    sidecar = {"Type": "Brain", "Sources": sources, "Method": "fMRIPrep's brain mask of the run"}
    if config.mask == "gm":
        gm_file = run.gm_probseg if run.space in NATIVE_SPACES else None
        if gm_file is None and run.space in NATIVE_SPACES:
            raise FileNotFoundError(
                f"--mask gm: no label-GM_probseg for sub-{run.subject} in space {run.space} "
                f"in {config.fmriprep_dir}; use --mask fmriprep or a template space."
            )
        gm_file = gm_file or template_gm_probseg(run.space, run.res)
        with reading(gm_file):
            gm = image.resample_img(
                gm_file, target_affine=bold.affine, target_shape=bold.shape[:3], clip=True
            )
        data = data & (np.asarray(gm.dataobj) >= config.gm_threshold)
        if not data.any():
            raise DataError(
                f"--mask gm: no voxel of {run.mask} has a grey-matter probability of at least "
                f"{config.gm_threshold} in {gm_file}; lower --gm-threshold or use --mask fmriprep."
            )
        sidecar["Sources"].append(str(gm_file))
        sidecar["Method"] = (
            f"fMRIPrep's brain mask of the run, intersected with the grey-matter probability map "
            f"resampled to the BOLD grid and thresholded at {config.gm_threshold}"
        )
        sidecar["GreyMatterThreshold"] = config.gm_threshold
    return _mask_image(data, bold), sidecar


def template_gm_probseg(space: str, res: str | None) -> Path:
    """Return TemplateFlow's ``label-GM`` probseg of a template, from ``TEMPLATEFLOW_HOME``.

    The run's resolution is preferred, then 2, then 1 (the map is resampled to the BOLD grid
    anyway). Nothing is downloaded: a missing file is a FileNotFoundError saying how to fetch it.
    """
    try:
        return templateflow.find_file(space, res, label="GM", suffix="probseg", extension=".nii.gz")
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"--mask gm needs TemplateFlow's grey-matter map: {exc}") from None


def _mask_image(data: np.ndarray, bold) -> nib.Nifti1Image:
    img = nib.Nifti1Image(data.astype(np.uint8), bold.affine)
    img.set_sform(bold.affine, int(bold.header.get("sform_code", 1)) or 1)
    img.set_qform(bold.affine, int(bold.header.get("qform_code", 1)) or 1)
    img.header.set_xyzt_units("mm")
    return img
