"""Multi-subject maskers: MultiNiftiMasker, MultiNiftiLabelsMasker, MultiNiftiMapsMasker.

Each is its single-image masker plus ``n_jobs``: ``transform`` of a list of 4D images (one per
subject) returns one signal array per image, each image read once by its own
:func:`bidsmask.regions.extract` pass; ``n_jobs`` images are processed at a time in threads
(decompression and the BLAS reductions release the GIL).
"""

from __future__ import annotations

import inspect
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bidsmask import image, masking
from bidsmask.maskers._inputs import images_as_x
from bidsmask.maskers.labels import NiftiLabelsMasker
from bidsmask.maskers.maps import NiftiMapsMasker
from bidsmask.maskers.nifti import NiftiMasker

_MULTI_MASKS = {
    "background": (masking.compute_multi_background_mask, {}),
    "epi": (masking.compute_multi_epi_mask, {}),
    "whole-brain-template": (masking.compute_multi_brain_mask, {"mask_type": "whole-brain"}),
    "gm-template": (masking.compute_multi_brain_mask, {"mask_type": "gm"}),
    "wm-template": (masking.compute_multi_brain_mask, {"mask_type": "wm"}),
}


def is_multi(imgs: Any) -> bool:
    """Return True for a list of subjects' images (4D images or lists of 3D images)."""
    if not isinstance(imgs, (list, tuple)) or len(imgs) == 0:
        return False
    first = imgs[0]
    if isinstance(first, (list, tuple)):
        return True
    return len(image.check_niimg(first).shape) == 4


def _per_image(values: Any, n: int, name: str) -> list:
    if values is None:
        return [None] * n
    values = list(values)
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} items but there are {n} images; give one each.")
    return values


def _with_n_jobs(base: type):
    """``__init__`` taking ``base``'s parameters plus ``n_jobs`` (its signature shows them all)."""
    params = list(inspect.signature(base.__init__).parameters.values())
    params.append(inspect.Parameter("n_jobs", inspect.Parameter.KEYWORD_ONLY, default=1))

    def __init__(self, *args, n_jobs=1, **kwargs):  # noqa: N807
        base.__init__(self, *args, **kwargs)
        self.n_jobs = n_jobs

    __init__.__signature__ = inspect.Signature(params)
    __init__.__doc__ = base.__init__.__doc__
    return __init__


def _with_n_jobs_doc(cls: type) -> type:
    """Append ``base``'s parameters and attributes, then ``n_jobs``, to ``cls``'s summary.

    ``base`` is the single-image masker ``cls`` derives from; its ``clean_args`` entry is the
    last parameter, which ``n_jobs`` follows as in the ``__init__`` signature.
    """
    base = cls.__mro__[2]
    sections = base.__doc__[base.__doc__.index("    Parameters\n") :]
    attributes = sections.index("\n    Attributes\n")
    n_jobs = (
        "    n_jobs : int, default=1\n"
        "        Number of images ``transform_imgs`` processes at a time (threads; -1: all CPUs).\n"
    )
    cls.__doc__ = (
        cls.__doc__.rstrip() + "\n\n" + sections[:attributes] + n_jobs + sections[attributes:]
    )
    return cls


class _MultiImages:
    """``transform`` / ``transform_imgs`` over a list of subjects (composed with a masker)."""

    n_jobs: int

    def _first_subject(self, imgs: Any) -> Any:
        return imgs[0] if is_multi(imgs) else imgs

    def transform_imgs(self, imgs_list, confounds=None, sample_mask=None, copy=True) -> list:
        """Extract the cleaned signals of each image of ``imgs_list``.

        Parameters
        ----------
        imgs_list : list of 4D images (or of lists of 3D images)
            One item per subject.
        confounds, sample_mask : list or None, default=None
            One item per image (see the single-image ``transform``).
        copy : bool, default=True
            Accepted for nilearn compatibility (outputs are always new arrays).

        Returns
        -------
        list of numpy.ndarray
        """
        del copy
        self._check_fitted()
        n = len(imgs_list)
        confounds = _per_image(confounds, n, "confounds")
        sample_mask = _per_image(sample_mask, n, "sample_mask")
        single = super().transform  # the single-image masker's transform

        def one(i: int):
            return single(imgs_list[i], confounds=confounds[i], sample_mask=sample_mask[i])

        if self.n_jobs in (-1, None):
            workers = os.cpu_count() or 1
        else:
            workers = max(1, int(self.n_jobs))
        if workers == 1 or n == 1:
            return [one(i) for i in range(n)]
        with ThreadPoolExecutor(max_workers=min(workers, n)) as pool:
            return list(pool.map(one, range(n)))

    @images_as_x
    def transform(self, imgs, confounds=None, sample_mask=None):
        """Signals of one image, or a list of them for a list of subjects' images."""
        if is_multi(imgs):
            return self.transform_imgs(imgs, confounds=confounds, sample_mask=sample_mask)
        return super().transform(imgs, confounds=confounds, sample_mask=sample_mask)

    @images_as_x
    def fit_transform(self, imgs, y=None, confounds=None, sample_mask=None):
        """Fit on ``imgs``, then transform them (see :meth:`transform`)."""
        del y
        if not is_multi(imgs):
            return super().fit_transform(imgs, confounds=confounds, sample_mask=sample_mask)
        self.fit(imgs)
        return self.transform_imgs(imgs, confounds=confounds, sample_mask=sample_mask)


@_with_n_jobs_doc
class MultiNiftiMasker(_MultiImages, NiftiMasker):
    """``NiftiMasker`` for several subjects: the mask is computed from all of them.

    Same parameters as :class:`bidsmask.maskers.NiftiMasker` plus ``n_jobs`` (images processed
    at a time by ``transform_imgs``), as ``nilearn.maskers.MultiNiftiMasker`` 0.14.
    """

    __init__ = _with_n_jobs(NiftiMasker)
    _empty_computed_mask_ok = True  # as nilearn's compute_multi_* masks
    _mask_strategies = (*NiftiMasker._mask_strategies, "template")  # deprecated in nilearn

    def _compute_mask(self, imgs):
        strategy = self.mask_strategy
        if strategy == "template":
            warnings.warn(
                "Masking strategy 'template' is deprecated. Please use 'whole-brain-template' "
                "instead.",
                UserWarning,
                stacklevel=4,
            )
            strategy = "whole-brain-template"
        if not is_multi(imgs):
            return super()._compute_mask(imgs, strategy)
        compute, fixed = _MULTI_MASKS[strategy]
        accepted = inspect.signature(compute).parameters
        args = {k: v for k, v in (self.mask_args or {}).items() if k in accepted}
        return compute(imgs, **fixed, **args)


@_with_n_jobs_doc
class MultiNiftiLabelsMasker(_MultiImages, NiftiLabelsMasker):
    """``NiftiLabelsMasker`` for several subjects (the first one gives the grid at ``fit``).

    Same parameters as :class:`bidsmask.maskers.NiftiLabelsMasker` plus ``n_jobs``, as
    ``nilearn.maskers.MultiNiftiLabelsMasker`` 0.14.
    """

    __init__ = _with_n_jobs(NiftiLabelsMasker)

    def fit(self, imgs=None, y=None) -> MultiNiftiLabelsMasker:
        """Fit on the first subject's images (see ``NiftiLabelsMasker.fit``)."""
        return super().fit(None if imgs is None else self._first_subject(imgs), y)


@_with_n_jobs_doc
class MultiNiftiMapsMasker(_MultiImages, NiftiMapsMasker):
    """``NiftiMapsMasker`` for several subjects (the first one gives the grid at ``fit``).

    Same parameters as :class:`bidsmask.maskers.NiftiMapsMasker` plus ``n_jobs``, as
    ``nilearn.maskers.MultiNiftiMapsMasker`` 0.14.
    """

    __init__ = _with_n_jobs(NiftiMapsMasker)

    def fit(self, imgs=None, y=None) -> MultiNiftiMapsMasker:
        """Fit on the first subject's images (see ``NiftiMapsMasker.fit``)."""
        return super().fit(None if imgs is None else self._first_subject(imgs), y)
