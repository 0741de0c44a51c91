"""Grid checks of the multi-image mask functions (nilearn's messages, naming the image)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from nibabel.spatialimages import SpatialImage


def _name(img: SpatialImage, index: int) -> str:
    filename = img.get_filename() if hasattr(img, "get_filename") else None
    return f"image #{index} ({filename})" if filename else f"image #{index}"


def check_same_grid(imgs: Sequence[SpatialImage]) -> None:
    """Raise if the images do not all share the 3D shape and affine of the first one.

    Parameters
    ----------
    imgs : sequence of nibabel images
        Loaded images.

    Raises
    ------
    ValueError
        Naming the first image whose grid differs, and how (shape or affine).
    """
    ref = imgs[0]
    for i, img in enumerate(imgs[1:], start=1):
        problems = []
        if img.shape[:3] != ref.shape[:3]:
            problems.append(f"shape ({img.shape[:3]} vs {ref.shape[:3]})")
        if not np.allclose(img.affine, ref.affine):
            problems.append(f"affine (\n{img.affine}\nvs\n{ref.affine})")
        if problems:
            raise ValueError(
                f"Field of view of image #{i} is different from reference FOV: "
                f"{_name(img, i)} and {_name(ref, 0)} do not have the same "
                + " nor the same ".join(problems)
                + ". Resample the images to a common grid (or pass target_affine and "
                "target_shape)."
            )
