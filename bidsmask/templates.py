"""Packaged MNI152 templates and masks (the public path; the code is in ``bidsmask.masking``).

``bidsmask.templates.load_mni152_brain_mask`` and its siblings keep the import path they had; they
live in :mod:`bidsmask.masking._templates`, next to the mask computations they serve, and
:mod:`bidsmask.masking` exports them too.
"""

from bidsmask.masking._templates import (
    TEMPLATE_DIR,
    load_mni152_brain_mask,
    load_mni152_gm_mask,
    load_mni152_gm_template,
    load_mni152_template,
    load_mni152_wm_mask,
    load_mni152_wm_template,
)

__all__ = [
    "TEMPLATE_DIR",
    "load_mni152_brain_mask",
    "load_mni152_gm_mask",
    "load_mni152_gm_template",
    "load_mni152_template",
    "load_mni152_wm_mask",
    "load_mni152_wm_template",
]
