"""NiftiSpheresMasker: one cleaned signal per sphere around a seed (world mm coordinates)."""

from __future__ import annotations

import logging

import numpy as np

from bidsmask.maskers._base import BaseMasker
from bidsmask.maskers._docs import fill_doc
from bidsmask.maskers._inputs import load_mask, mask_data, open_imgs, resample_nearest, same_grid
from bidsmask.maskers._verbose import log_step, verbose_method
from bidsmask.regions import SpheresSpec

logger = logging.getLogger(__name__)


@fill_doc
class NiftiSpheresMasker(BaseMasker):
    """Extract the cleaned mean signal of spheres around seeds.

    Same parameters, defaults, fitted attributes and sphere membership as
    ``nilearn.maskers.NiftiSpheresMasker`` 0.14 (without the report parameter ``reports``); the
    means are a sparse (spheres × voxels) membership product, streamed over the run.

    Deliberate difference: nilearn 0.14 stores sphere means of integer images in an integer
    array, truncating them toward zero; here means are always computed and returned in floating
    point (float32), so they are not truncated.

    Beyond nilearn, the fitted masker exposes ``region_voxel_counts_`` (voxels per sphere) and
    ``region_coverage_`` (fraction of each sphere's voxels inside the mask; after
    :meth:`fit_transform`, inside the mask and with data) when the grid is known
    at fit (a mask was given, or images were passed to ``fit``); otherwise they are None.

    Parameters
    ----------
    seeds : list of triplets
        Sphere centres in world (mm) coordinates.
    radius : float or None, default=None
        Sphere radius in mm; None keeps the voxel nearest to each seed only.
    mask_img : Niimg-like object or None, default=None
        Mask restricting the spheres (resampled to the data, nearest neighbour).
    allow_overlap : bool, default=False
        If False, spheres sharing a voxel raise a ValueError.
    %(region_cleaning)s
    %(memory)s
    %(memory_level)s
    %(verbose)s
    %(clean_args)s

    Attributes
    ----------
    %(clean_args_)s
    mask_img_ : nibabel.Nifti1Image or None
        The mask as given.
    n_elements_ : int
        Number of spheres.
    region_coverage_ : numpy.ndarray or None
        Per sphere: fraction of the sphere inside the mask.
    region_voxel_counts_ : numpy.ndarray or None
        Per sphere: voxels used.
    seeds_ : list of lists
        The seeds, as lists of 3 floats.
    """

    _fitted_attribute = "seeds_"

    def __init__(
        self,
        seeds=None,
        radius=None,
        mask_img=None,
        allow_overlap=False,
        smoothing_fwhm=None,
        standardize=False,
        standardize_confounds=True,
        high_variance_confounds=False,
        detrend=False,
        low_pass=None,
        high_pass=None,
        t_r=None,
        dtype=None,
        memory=None,
        memory_level=1,
        verbose=0,
        clean_args=None,
    ):
        self.seeds = seeds
        self.radius = radius
        self.mask_img = mask_img
        self.allow_overlap = allow_overlap
        self.smoothing_fwhm = smoothing_fwhm
        self.standardize = standardize
        self.standardize_confounds = standardize_confounds
        self.high_variance_confounds = high_variance_confounds
        self.detrend = detrend
        self.low_pass = low_pass
        self.high_pass = high_pass
        self.t_r = t_r
        self.dtype = dtype
        self.memory = memory
        self.memory_level = memory_level
        self.verbose = verbose
        self.clean_args = clean_args

    @verbose_method
    def fit(self, imgs=None, y=None) -> NiftiSpheresMasker:
        """Validate the seeds (and load the mask).

        Parameters
        ----------
        imgs : Niimg-like object or None, default=None
            Images the masker will transform; used to report voxel counts and coverage.
        y : None
            Ignored; for scikit-learn compatibility.

        Returns
        -------
        self
        """
        del y
        self._check_cleaning_params()
        error = "Seeds must be a list of triplets of coordinates in native space.\n"
        if not hasattr(self.seeds, "__iter__"):
            raise ValueError(f"{error}Given seed list is of type: {type(self.seeds)}")
        if self.radius is not None and (
            isinstance(self.radius, bool) or not isinstance(self.radius, (int, float, np.number))
        ):
            raise TypeError(f"'radius' must be a number of mm or None; got {self.radius!r}.")
        seeds = []
        for i, seed in enumerate(self.seeds):
            if not hasattr(seed, "__len__"):
                raise ValueError(
                    f"{error}Seed #{i} is not a valid triplet of coordinates. "
                    f"It is of type {type(seed).__name__}."
                )
            seed = seed.tolist() if isinstance(seed, np.ndarray) else list(seed)
            if len(seed) != 3:
                raise ValueError(f"{error}Seed #{i} is of length {len(seed)} instead of 3.")
            seeds.append(seed)
        self.clean_args_ = {} if self.clean_args is None else dict(self.clean_args)
        if self.mask_img is not None:
            log_step(self, "load_mask", self.mask_img)
        self.mask_img_ = None if self.mask_img is None else load_mask(self.mask_img)
        if imgs is not None:
            log_step(self, "load_data", imgs)
        self.seeds_ = seeds
        self.n_elements_ = len(seeds)
        grid = open_imgs(imgs) if imgs is not None else self.mask_img_
        self._fitted_spec = None
        if grid is None:
            self.region_voxel_counts_ = None
            self.region_coverage_ = None
        else:
            spec = self._spec(grid)
            self._fitted_spec = (tuple(grid.shape[:3]), np.asarray(grid.affine), spec)
            self.region_voxel_counts_ = spec.voxel_counts
            self.region_coverage_ = spec.coverage
        log_step(self, "fit_done")
        return self

    def _spec(self, img) -> SpheresSpec:
        fitted = getattr(self, "_fitted_spec", None)
        if fitted is not None and same_grid(img.shape, img.affine, fitted[0], fitted[1]):
            return fitted[2]  # built once by fit, on this grid
        mask = self.mask_img_
        if mask is not None and not same_grid(img.shape, img.affine, mask.shape, mask.affine):
            mask = resample_nearest(mask, img.shape, img.affine)
        return SpheresSpec(
            self.seeds_,
            img.affine,
            img.shape[:3],
            self.radius,
            mask_data(mask),
            allow_overlap=self.allow_overlap,
            validate=False,
        )

    def _plan(self, img):
        spec = self._spec(img)
        spec.validate()  # like nilearn: empty or overlapping spheres fit, but do not extract
        return spec, None, None

    def generate_report(self, displayed_spheres="all", title: str | None = None):
        """Return an HTML report of the spheres the masker extracts (nilearn's ``generate_report``).

        Parameters
        ----------
        displayed_spheres : int, list of int or "all", default="all"
            The spheres to draw: the first N, these indices, or all.
        title : str or None, default=None
            The report's title; default the masker's class name.

        Returns
        -------
        bidsmask.reports.HTMLReport
            Shown in notebooks (``_repr_html_``); ``save_as_html(path)``, ``open_in_browser()``.
        """
        from bidsmask.maskers._report import masker_report

        return masker_report(self, title, displayed_spheres)

    @verbose_method
    def inverse_transform(self, region_signals):
        """Paint each sphere's signal on its voxels (overlaps averaged), on the mask's grid.

        Parameters
        ----------
        region_signals : numpy.ndarray
            Shape (n_spheres,) or (n_samples, n_spheres).

        Returns
        -------
        nibabel.Nifti1Image

        Raises
        ------
        ValueError
            If the masker has no ``mask_img`` (it defines the output grid), if a sphere is
            empty in the mask, or if spheres overlap and ``allow_overlap`` is False.
        """
        signals = self._check_inverse_input(region_signals)
        log_step(self, "inverse_transform")
        if self.mask_img_ is None:
            raise ValueError(
                "Please provide mask_img at initialization to provide a reference for the "
                "inverse_transform."
            )
        spec = self._spec(self.mask_img_)
        spec.validate()
        membership = spec.membership
        if self.allow_overlap:
            n_spheres = np.asarray(membership.sum(axis=0)).ravel()
            membership = membership.multiply(1.0 / np.maximum(1.0, n_spheres)).tocsr()
        values = membership.T @ (signals.T if signals.ndim == 2 else signals)
        shape = self.mask_img_.shape[:3]
        n_vox = int(np.prod(shape))
        if signals.ndim == 1:
            out = np.zeros(n_vox, dtype=values.dtype)
            out[spec.voxels] = values
            return self._inverse_output(signals, out.reshape(shape), self.mask_img_)
        out = np.zeros((n_vox, signals.shape[0]), dtype=values.dtype)
        out[spec.voxels] = values
        return self._inverse_output(signals, out.reshape(*shape, signals.shape[0]), self.mask_img_)
