"""Writing NIfTI and JSON files of the synthetic datasets."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np


def save_nifti(
    path: Path, data: np.ndarray, affine: np.ndarray, *, code: int, t_r: float | None = None
) -> None:
    """Save ``data`` as NIfTI-1 with sform/qform ``code``, mm units and TR as 4th zoom."""
    img = nib.Nifti1Image(data, affine)
    img.set_sform(affine, code=code)
    img.set_qform(affine, code=code)
    img.header.set_xyzt_units("mm", "sec")
    if t_r is not None:
        img.header.set_zooms(img.header.get_zooms()[:3] + (float(t_r),))
    nib.save(img, path)


def save_json(path: Path, content: dict) -> None:
    """Save ``content`` as indented JSON with sorted keys."""
    path.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")
