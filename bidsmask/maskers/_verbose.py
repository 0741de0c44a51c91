"""The maskers' ``verbose``: nilearn's step messages, logged, and shown on stdout when asked.

Every masker logs its steps (``Loading data from ...``, ``Computing mask``, ``Finished fit``
...) at INFO level on the ``bidsmask.maskers`` logger, with nilearn's words. ``verbose=0``
leaves them to the application's logging configuration; ``verbose >= 1`` also shows them on
standard output while the masker works (a logging handler attached for the duration of the
call), as nilearn prints them; ``verbose >= 2`` describes images in full (paths, every image
of a list, affines).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

from nibabel.spatialimages import SpatialImage

logger = logging.getLogger("bidsmask.maskers")

STEPS = {
    "cleaning": "Cleaning extracted signals",
    "compute_mask": "Computing mask",
    "extracting": "Extracting region signals",
    "fit_done": "Finished fit",
    "inverse_transform": "Computing image from signals",
    "load_data": "Loading data from {}",
    "load_mask": "Loading mask from {}",
    "load_regions": "Loading regions from {}",
    "resample_mask": "Resampling mask",
    "resample_regions": "Resampling regions",
}


def describe(img: Any, verbose: int) -> str:
    """Describe an image (or a list of them) for a step message, in more detail from 2."""
    if isinstance(img, (list, tuple)):
        if verbose >= 2 or len(img) <= 1:
            return "[" + ", ".join(describe(one, verbose) for one in img) + "]"
        return f"[{describe(img[0], verbose)}, ... ({len(img)} images)]"
    if isinstance(img, (str, os.PathLike)):
        return str(img) if verbose >= 2 else os.path.basename(str(img))
    if isinstance(img, SpatialImage):
        text = f"{type(img).__name__}(shape={tuple(img.shape)})"
        if verbose >= 2:
            affine = " ".join(f"{v:g}" for v in img.affine.ravel())
            text = f"{text[:-1]}, affine=[{affine}])"
        return text
    return type(img).__name__


def log_step(masker: Any, step: str, img: Any = None) -> None:
    """Log one of nilearn's masker steps (INFO), naming the masker class."""
    text = STEPS[step]
    if "{}" in text:
        text = text.format(describe(img, int(getattr(masker, "verbose", 0) or 0)))
    logger.info("[%s] %s", type(masker).__name__, text)


@contextlib.contextmanager
def _shown(verbose: Any) -> Iterator[None]:
    """Show the maskers' step messages on stdout during the block if ``verbose`` asks."""
    level = int(verbose or 0)
    already = any(getattr(h, "bidsmask_verbose", False) for h in logger.handlers)
    if level < 1 or already:
        yield
        return
    handler = logging.StreamHandler(sys.stdout)  # the stdout of this call (may be redirected)
    handler.bidsmask_verbose = True
    handler.setFormatter(logging.Formatter("%(message)s"))
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def verbose_method(method):
    """Run a masker method with its ``verbose`` messages shown (see :func:`_shown`)."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with _shown(getattr(self, "verbose", 0)):
            return method(self, *args, **kwargs)

    return run
