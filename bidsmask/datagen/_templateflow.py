"""Writer of a TemplateFlow-layout folder holding synthetic MNI152NLin2009cAsym files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bidsmask.datagen._anatomy import (
    DECIMATION,
    MNI_RES2_ORIGIN,
    build_anatomy,
    load_template,
    mni_grid,
    prepare_template,
    t1w_contrast,
)
from bidsmask.datagen._io import save_nifti
from bidsmask.datagen._parcels import difumo_atlas, schaefer_atlas

TEMPLATE = "MNI152NLin2009cAsym"


def _description(shape: tuple[int, int, int], voxel_size: float, decimation: int) -> dict:
    return {
        "Authors": ["Fonov V", "Evans AC", "Botteron K", "Almli CR", "McKinstry RC", "Collins DL"],
        "BIDSVersion": "1.1.0",
        "Identifier": TEMPLATE,
        "Name": "ICBM 152 Nonlinear Asymmetrical template version 2009c (synthetic stand-in)",
        "Description": (
            f"Synthetic files written by bidsmask.datagen. 'res-02' is the real res-02 grid "
            f"decimated by {decimation} ({voxel_size:g} mm voxels)."
        ),
        "ReferencesAndLinks": ["https://doi.org/10.1016/j.neuroimage.2010.07.033"],
        "Species": "Homo sapiens",
        "TemplateFlowVersion": "1.0.0",
        "res": {
            "02": {
                "origin": list(MNI_RES2_ORIGIN),
                "shape": list(shape),
                "zooms": [voxel_size] * 3,
            }
        },
    }


def make_templateflow_home(
    root, template_img, *, seed: int = 0, decimation: int = DECIMATION
) -> Path:
    """Write a folder laid out like ``TEMPLATEFLOW_HOME`` with synthetic MNI files.

    ``tpl-MNI152NLin2009cAsym/`` holds ``template_description.json`` and, named
    ``res-02`` as TemplateFlow names them but on the decimated grid of
    :func:`bidsmask.datagen.mni_grid` (the grid of the fMRIPrep dataset's
    ``res-2`` files):

    - ``_res-02_T1w``, ``_res-02_desc-brain_mask``, ``_res-02_label-{GM,WM,CSF}_probseg``;
    - ``_res-02_atlas-Schaefer2018_desc-100Parcels7Networks_dseg`` (100 parcels with the
      real atlas' names; ``.tsv`` with ``index``, ``name``, ``color`` and no ``res``
      entity, as in TemplateFlow);
    - ``_res-02_atlas-DiFuMo_desc-64dimensions_probseg`` (64 maps; ``.tsv`` with
      TemplateFlow's DiFuMo columns).

    Parameters
    ----------
    root : str or pathlib.Path
        The folder to write (created if needed).
    template_img : str, pathlib.Path or nibabel image
        3D MNI-space brain image giving the brain its shape (see
        :func:`bidsmask.datagen.make_fmriprep_dataset`).
    seed : int, default=0
        Seed of the T1w image's noise (the atlases are deterministic).
    decimation : int, default=4
        Decimation of the MNI res-02 grid.

    Returns
    -------
    pathlib.Path
        ``root``.
    """
    root = Path(root)
    folder = root / f"tpl-{TEMPLATE}"
    folder.mkdir(parents=True, exist_ok=True)
    shape, affine = mni_grid(decimation)
    anat = build_anatomy(prepare_template(load_template(template_img)), shape, affine)
    (folder / "template_description.json").write_text(
        json.dumps(_description(shape, float(affine[0, 0]), decimation), indent=2) + "\n"
    )
    stem = folder / f"tpl-{TEMPLATE}_res-02"
    rng = np.random.default_rng([seed, 2000])
    save_nifti(Path(f"{stem}_T1w.nii.gz"), t1w_contrast(anat, rng), affine, code=4)
    save_nifti(Path(f"{stem}_desc-brain_mask.nii.gz"), anat.brain.astype(np.uint8), affine, code=4)
    for label, prob in (("GM", anat.gm), ("WM", anat.wm), ("CSF", anat.csf)):
        save_nifti(Path(f"{stem}_label-{label}_probseg.nii.gz"), prob, affine, code=4)
    labels, table = schaefer_atlas(anat)
    atlas = "atlas-Schaefer2018_desc-100Parcels7Networks_dseg"
    save_nifti(Path(f"{stem}_{atlas}.nii.gz"), labels, affine, code=4)
    table.to_csv(folder / f"tpl-{TEMPLATE}_{atlas}.tsv", sep="\t", index=False)
    maps, table = difumo_atlas(anat, 64)
    atlas = "atlas-DiFuMo_desc-64dimensions_probseg"
    save_nifti(Path(f"{stem}_{atlas}.nii.gz"), maps, affine, code=4)
    table.to_csv(folder / f"tpl-{TEMPLATE}_{atlas}.tsv", sep="\t", index=False)
    return root
