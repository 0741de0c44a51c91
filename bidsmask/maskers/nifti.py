"""NiftiMasker: voxel time series inside a mask, cleaned (nilearn 0.14 parameters and numbers)."""

from __future__ import annotations

import inspect
import logging
import warnings
from typing import Any

import numpy as np

from bidsmask import image, masking
from bidsmask.maskers._base import BaseMasker
from bidsmask.maskers._docs import fill_doc
from bidsmask.maskers._inputs import check_fit_imgs, in_memory, load_mask, mask_data, same_grid
from bidsmask.maskers._verbose import log_step, verbose_method
from bidsmask.regions import VoxelSpec

logger = logging.getLogger(__name__)

MASK_STRATEGIES = ("background", "epi", "whole-brain-template", "gm-template", "wm-template")


def _mask_function(strategy: str):
    """Return the function computing a mask for ``mask_strategy`` and its fixed arguments."""
    if strategy == "background":
        return masking.compute_background_mask, {}
    if strategy == "epi":
        return masking.compute_epi_mask, {}
    mask_type = {"whole-brain-template": "whole-brain", "gm-template": "gm", "wm-template": "wm"}
    return masking.compute_brain_mask, {"mask_type": mask_type[strategy]}


@fill_doc
class NiftiMasker(BaseMasker):
    """Extract voxel time series inside a mask and clean them.

    Same parameters, defaults, fitted attributes and results as ``nilearn.maskers.NiftiMasker``
    0.14 (without the HTML report parameters ``reports`` and ``cmap``). ``transform`` streams the
    run: it holds the (n_volumes × n_voxels) float32 output and one chunk of volumes, never a copy
    of the 4D image. When the images are not on the mask's grid (or ``target_affine`` /
    ``target_shape`` are given) each chunk of volumes is resampled on its own.

    Parameters
    ----------
    mask_img : Niimg-like object or None, default=None
        Mask of the voxels to extract; computed from the images given to ``fit`` if None.
    runs : numpy.ndarray or None, default=None
        Run index of each volume; cleaning is done run by run.
    %(smoothing_fwhm)s
    %(standardize)s
    %(standardize_confounds)s
    %(detrend)s
    %(high_variance_confounds)s
    %(low_pass)s
    %(high_pass)s
    %(t_r)s
    %(target_affine)s
    %(target_shape)s
    mask_strategy : str, default="background"
        How to compute the mask: "background", "epi", "whole-brain-template", "gm-template" or
        "wm-template".
    mask_args : dict or None, default=None
        Extra arguments of the mask computing function.
    %(dtype)s
    %(memory)s
    %(memory_level)s
    %(verbose)s
    %(clean_args)s

    Attributes
    ----------
    affine_ : numpy.ndarray
        Affine of the extracted data (``target_affine`` or the mask's).
    %(clean_args_)s
    mask_img_ : nibabel.Nifti1Image
        The mask of the extracted voxels.
    n_elements_ : int
        Number of voxels in the mask.
    """

    _fitted_attribute = "mask_img_"
    _empty_computed_mask_ok = False
    _mask_strategies = MASK_STRATEGIES

    def __init__(
        self,
        mask_img=None,
        runs=None,
        smoothing_fwhm=None,
        standardize=False,
        standardize_confounds=True,
        detrend=False,
        high_variance_confounds=False,
        low_pass=None,
        high_pass=None,
        t_r=None,
        target_affine=None,
        target_shape=None,
        mask_strategy="background",
        mask_args=None,
        dtype=None,
        memory=None,
        memory_level=1,
        verbose=0,
        clean_args=None,
    ):
        self.mask_img = mask_img
        self.runs = runs
        self.smoothing_fwhm = smoothing_fwhm
        self.standardize = standardize
        self.standardize_confounds = standardize_confounds
        self.detrend = detrend
        self.high_variance_confounds = high_variance_confounds
        self.low_pass = low_pass
        self.high_pass = high_pass
        self.t_r = t_r
        self.target_affine = target_affine
        self.target_shape = target_shape
        self.mask_strategy = mask_strategy
        self.mask_args = mask_args
        self.dtype = dtype
        self.memory = memory
        self.memory_level = memory_level
        self.verbose = verbose
        self.clean_args = clean_args

    def _compute_mask(self, imgs, strategy: str | None = None):
        strategy = strategy or self.mask_strategy
        compute, fixed = _mask_function(strategy)
        accepted = inspect.signature(compute).parameters
        args: dict[str, Any] = {}
        skipped = []
        for name, value in (self.mask_args or {}).items():
            if name in accepted:
                args[name] = value
            else:
                skipped.append(name)
        if skipped:
            warnings.warn(
                "The following arguments are not supported by the masking strategy "
                f"'{strategy}': {skipped}",
                UserWarning,
                stacklevel=3,
            )
        logger.debug("Computing the mask with strategy %r", strategy)
        return compute(imgs, **fixed, **args)

    @verbose_method
    def fit(self, imgs=None, y=None) -> NiftiMasker:
        """Compute (or load) the mask.

        Parameters
        ----------
        imgs : Niimg-like object, list of them, or None, default=None
            Images the mask is computed from when ``mask_img`` is None.
        y : None
            Ignored; for scikit-learn compatibility.

        Returns
        -------
        self
        """
        del y
        self._check_cleaning_params()
        if self.mask_strategy not in self._mask_strategies:
            raise ValueError(
                f"Unknown value of mask_strategy '{self.mask_strategy}'. Acceptable values are "
                f"{list(MASK_STRATEGIES)}."
            )
        if self.mask_args is not None and not isinstance(self.mask_args, dict):
            raise TypeError(f"'mask_args' must be a dict or None; got {self.mask_args!r}.")
        self.clean_args_ = {} if self.clean_args is None else dict(self.clean_args)
        if imgs is not None:
            check_fit_imgs(imgs)
            log_step(self, "load_data", imgs)
        if self.mask_img is not None:
            log_step(self, "load_mask", self.mask_img)
            mask = load_mask(self.mask_img)
            if imgs is not None:
                warnings.warn(
                    f"[{type(self).__name__}.fit] Generation of a mask has been requested "
                    "(imgs != None) while a mask was given at masker creation. Given mask will "
                    "be used.",
                    RuntimeWarning,
                    stacklevel=2,
                )
        elif imgs is None:
            raise ValueError(
                f"Parameter 'imgs' must be provided to {type(self).__name__}.fit() if no mask "
                "is passed to mask_img."
            )
        else:
            log_step(self, "compute_mask")
            mask = self._compute_mask(imgs)
        if self.target_affine is not None or self.target_shape is not None:
            log_step(self, "resample_mask")
            mask = image.resample_img(
                mask,
                target_affine=self.target_affine,
                target_shape=self.target_shape,
                interpolation="nearest",
            )
        data = np.asarray(mask.dataobj).astype(bool)
        # as nilearn, only MultiNiftiMasker accepts an empty computed mask (a template far from
        # the images); a given mask may never be empty (load_mask refuses it) nor be emptied
        if not data.any() and (self.mask_img is not None or not self._empty_computed_mask_ok):
            raise ValueError(
                "The mask is invalid as it is empty: it masks all data "
                "(after resampling, it selects no voxel)."
            )
        self.mask_img_ = in_memory(mask, data.astype(np.uint8))
        self.affine_ = (
            np.asarray(self.target_affine)
            if self.target_affine is not None
            else self.mask_img_.affine
        )
        self.n_elements_ = int(data.sum())
        log_step(self, "fit_done")
        return self

    def _plan(self, img):
        mask = self.mask_img_
        data = mask_data(mask)
        if same_grid(img.shape, img.affine, mask.shape, mask.affine):
            return VoxelSpec(data), None, None
        warnings.warn(
            "imgs are being resampled to the mask_img resolution. This process is memory "
            "intensive. You might want to provide a target_affine that is equal to the affine "
            "of the imgs or resample the mask beforehand to save memory and computation time. "
            "(bidsmask resamples one chunk of volumes at a time.)",
            UserWarning,
            stacklevel=3,
        )
        # like nilearn, resample onto the mask's bounding box (one voxel of padding): the voxels
        # are the same, and smoothing then sees the same borders
        coords = np.nonzero(data)
        start = np.maximum(np.min(coords, axis=1) - 1, 0)
        stop = np.minimum(np.max(coords, axis=1) + 2, data.shape)
        box = tuple(slice(int(a), int(b)) for a, b in zip(start, stop, strict=True))
        affine = np.array(mask.affine, dtype=np.float64)
        affine[:3, 3] = affine[:3, :3] @ start + affine[:3, 3]
        return VoxelSpec(data[box]), affine, tuple(int(n) for n in stop - start)

    @verbose_method
    def inverse_transform(self, X):
        """Put voxel signals back into brain space (3D for 1D input, 4D for 2D input).

        Parameters
        ----------
        X : numpy.ndarray
            Shape (n_voxels,) or (n_samples, n_voxels).

        Returns
        -------
        nibabel.Nifti1Image
        """
        X = self._check_inverse_input(X)
        log_step(self, "inverse_transform")
        img = masking.unmask(X, self.mask_img_)
        return self._inverse_output(X, img.dataobj, img)


def filter_and_mask(
    imgs: Any,
    mask_img_: Any,
    parameters: dict[str, Any],
    memory_level: int = 0,
    memory: Any = None,
    verbose: int = 0,
    confounds: Any = None,
    sample_mask: Any = None,
    copy: bool = True,
    sklearn_output_config: dict | None = None,
) -> Any:
    """Extract and clean the signals of the voxels of a mask (nilearn's ``filter_and_mask``).

    The function form of :meth:`NiftiMasker.transform`: one streamed pass over ``imgs``.

    Parameters
    ----------
    imgs : 3D/4D Niimg-like object
        Images to mask.
    mask_img_ : 3D Niimg-like object
        The mask; the images are resampled to its grid (with a warning) when they differ.
    parameters : dict
        :class:`NiftiMasker` parameters (``get_params()``); ``clean_kwargs`` is read as
        ``clean_args``, keys that are not parameters are ignored, ``mask_img`` is replaced by
        ``mask_img_``.
    memory_level, memory, verbose : default=0, None, 0
        Accepted for compatibility with nilearn (nothing is cached).
    confounds : array, DataFrame, path or list of these, default=None
        Confounds regressed out of the signals.
    sample_mask : array or None, default=None
        Indices (or boolean mask) of the volumes to keep.
    copy : bool, default=True
        Accepted for compatibility with nilearn (the output is always a new array).
    sklearn_output_config : dict or None, default=None
        ``{"transform": "pandas"}`` (or ``"polars"``) for a DataFrame output.

    Returns
    -------
    numpy.ndarray
        Shape (n_volumes, n_voxels), also for a 3D image (one row).

    Raises
    ------
    bidsmask.image.DimensionError
        If ``mask_img_`` is not 3D.
    """
    del memory_level, memory, verbose, copy
    mask = image.check_niimg_3d(mask_img_)
    accepted = set(NiftiMasker._get_param_names()) - {"mask_img"}
    params = {k: v for k, v in parameters.items() if k in accepted}
    if parameters.get("clean_args") is None and parameters.get("clean_kwargs"):
        params["clean_args"] = parameters["clean_kwargs"]
    masker = NiftiMasker(mask_img=mask, **params).fit()
    if sklearn_output_config:
        masker.set_output(transform=sklearn_output_config.get("transform"))
    signals = masker.transform(imgs, confounds=confounds, sample_mask=sample_mask)
    if isinstance(signals, np.ndarray):
        return np.atleast_2d(signals)
    return signals
