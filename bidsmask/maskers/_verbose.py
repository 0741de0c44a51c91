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
    """Describe an image (or a list of them) for a step message, in more detail from 2.

    A list is summed up by its first item at 1; from 2 every item is shown, except that a
    list of in-memory images shows its first and last at 2 (their affines are long).
    """
    if isinstance(img, (list, tuple)):
        in_memory = any(isinstance(one, SpatialImage) for one in img)
        if len(img) <= 1 or verbose >= 3 or (verbose == 2 and not in_memory):
            return "[" + ", ".join(describe(one, verbose) for one in img) + "]"
        if verbose == 2:
            first, last = describe(img[0], verbose), describe(img[-1], verbose)
            return f"[{first}, ..., {last}] ({len(img)} images)"
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


def mask_logger(step: str, img: Any = None, verbose: int = 0) -> None:
    """Log one of the maskers' steps, as nilearn's ``mask_logger`` (shown on stdout from 1).

    Parameters
    ----------
    step : str
        One of "cleaning", "compute_mask", "extracting", "fit_done", "inverse_transform",
        "load_data", "load_mask", "load_regions", "resample_mask", "resample_regions".
    img : image, path, list of them or None, default=None
        The image a "load_*" step names; without it (or at ``verbose=0``) those steps say
        nothing, as nilearn's.
    verbose : int, default=0
        0: logged only; 1: also shown on standard output; 2 and more: images in more detail.

    Raises
    ------
    ValueError
        For an unknown ``step``.
    """
    if step not in STEPS:
        raise ValueError(f"'step' must be one of {sorted(STEPS)}; got {step!r}.")
    level = int(verbose or 0)
    if "{}" in STEPS[step] and (img is None or level < 1):
        return
    text = STEPS[step].format(describe(img, level)) if "{}" in STEPS[step] else STEPS[step]
    with _shown(level):
        logger.info(text)


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
