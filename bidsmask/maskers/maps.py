"""NiftiMapsMasker: one cleaned signal per (possibly overlapping) probabilistic map."""

from __future__ import annotations

import logging
import warnings

import nibabel as nib
import numpy as np

from bidsmask import image
from bidsmask.maskers._base import BaseMasker
from bidsmask.maskers._docs import fill_doc
from bidsmask.maskers._inputs import (
    check_same_grid,
    in_memory,
    load_mask,
    mask_data,
    open_imgs,
    resample_nearest,
    same_grid,
)
from bidsmask.maskers._verbose import log_step, verbose_method
from bidsmask.regions import MapsSpec

logger = logging.getLogger(__name__)

_MAPS_PER_CHECK = 8  # maps read at a time when looking for weight inside the mask

RESAMPLING_TARGETS = ("data", "mask", "maps", None)


def _any_weight_inside(maps_img, inside: np.ndarray) -> bool:
    """Whether any map has a non-zero (or NaN) value in ``inside`` (3D boolean).

    Equal to ``np.any(maps[inside])``, reading a few maps at a time and stopping at the first
    map found: the whole (n_maps) array is never held in memory.
    """
    maps = maps_img.dataobj
    return any(
        np.any(np.asarray(maps[..., k : k + _MAPS_PER_CHECK])[inside])
        for k in range(0, int(maps_img.shape[3]), _MAPS_PER_CHECK)
    )


def _resample_maps(maps_img, shape, affine) -> nib.Nifti1Image:
    with warnings.catch_warnings():
        # maps are always resampled linearly (as nilearn): binary maps are no mistake of the user's
        warnings.filterwarnings("ignore", "Resampling binary images", UserWarning)
        out = image.resample_img(
            maps_img,
            target_affine=np.asarray(affine),
            target_shape=tuple(shape[:3]),
            interpolation="linear",
        )
    data = np.asarray(out.dataobj)
    if np.all(data == 0):
        raise ValueError("No map left after resampling maps_img.")
    return in_memory(out, data)


@fill_doc
class NiftiMapsMasker(BaseMasker):
    """Extract one cleaned signal per map by least squares.

    Same parameters, defaults, fitted attributes and results as
    ``nilearn.maskers.NiftiMapsMasker`` 0.14 (without the report parameters): the signals are the
    least-squares solution of ``maps @ signals.T = data.T`` over the voxels where a map is non-zero
    (inside the mask), computed with a pseudo-inverse precomputed once per fit and applied to
    each chunk of the streamed run.

    Beyond nilearn, the fitted masker exposes ``region_voxel_counts_`` (non-zero voxels of each
    map inside the mask) and ``region_coverage_`` (their fraction of the map's non-zero voxels;
    after :meth:`fit_transform`, of those with data: finite at every volume, not constant zero).

    Parameters
    ----------
    maps_img : 4D Niimg-like object
        The maps, one per volume.
    mask_img : Niimg-like object or None, default=None
        Mask applied to the maps before extraction.
    allow_overlap : bool, default=True
        If False, maps that overlap (a voxel with two positive maps) raise a ValueError.
    %(region_cleaning)s
    resampling_target : {"data", "mask", "maps", None}, default="data"
        Grid of the extraction: the maps (linear) and mask (nearest) are resampled to the data
        or mask grid; with "maps" the images are resampled to the maps, chunk by chunk; None
        requires all grids to match.
    keep_masked_maps : bool, default=False
        Keep maps emptied by the mask (signal 0), as nilearn's deprecated option.
    %(memory)s
    memory_level : int, default=0
        Accepted for compatibility with nilearn (nothing is cached).
    %(verbose)s
    %(clean_args)s

    Attributes
    ----------
    %(clean_args_)s
    maps_img_ : nibabel.Nifti1Image
        The maps on the extraction grid (a file given as ``maps_img`` stays on disk, read
        lazily; non-finite values count as 0).
    mask_img_ : nibabel.Nifti1Image or None
        The mask on the extraction grid.
    n_elements_ : int
        Number of maps.
    region_coverage_ : numpy.ndarray
        Per map: fraction of the map's support (non-zero voxels) inside the mask.
    region_ids_ : numpy.ndarray
        Index of the map of each output column.
    region_voxel_counts_ : numpy.ndarray
        Per map: non-zero voxels inside the mask.
    """

    _fitted_attribute = "maps_img_"

    def __init__(
        self,
        maps_img=None,
        mask_img=None,
        allow_overlap=True,
        smoothing_fwhm=None,
        standardize=False,
        standardize_confounds=True,
        high_variance_confounds=False,
        detrend=False,
        low_pass=None,
        high_pass=None,
        t_r=None,
        dtype=None,
        resampling_target="data",
        keep_masked_maps=False,
        memory=None,
        memory_level=0,
        verbose=0,
        clean_args=None,
    ):
        self.maps_img = maps_img
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
        self.resampling_target = resampling_target
        self.keep_masked_maps = keep_masked_maps
        self.memory = memory
        self.memory_level = memory_level
        self.verbose = verbose
        self.clean_args = clean_args

    @verbose_method
    def fit(self, imgs=None, y=None) -> NiftiMapsMasker:
        """Load the maps (and mask), resampling them to the target grid.

        Parameters
        ----------
        imgs : Niimg-like object or None, default=None
            Images the masker will transform (their grid is used when the resampling target is
            "data").
        y : None
            Ignored; for scikit-learn compatibility.

        Returns
        -------
        self
        """
        del y
        self._check_cleaning_params()
        if self.resampling_target not in RESAMPLING_TARGETS:
            raise ValueError(
                f"'resampling_target' must be one of {list(RESAMPLING_TARGETS)}. "
                f"'{self.resampling_target}' was provided."
            )
        if self.maps_img is None:
            raise TypeError(
                f"{type(self).__name__} needs 'maps_img' (the input should be a NiftiLike "
                "object); got None. Pass a 4D maps image."
            )
        if self.mask_img is None and self.resampling_target == "mask":
            raise ValueError(
                "resampling_target has been set to 'mask' but no mask has been provided.\n"
                "Set resampling_target to something else or provide a mask."
            )
        if self.keep_masked_maps and self.mask_img is not None:
            warnings.warn(
                'Applying "mask_img" before signal extraction may result in empty region '
                'signals in the output. These are currently kept.\n"keep_masked_maps" parameter '
                "will be removed in version 0.15.0 (as in nilearn): empty maps will be left out.",
                FutureWarning,
                stacklevel=2,
            )
        self.clean_args_ = {} if self.clean_args is None else dict(self.clean_args)
        # a file stays a lazy image: its data is read once here, and dropped after the
        # pseudo-inverse is built (non-finite values count as 0 everywhere, as in nilearn)
        log_step(self, "load_regions", self.maps_img)
        maps_img = image.check_niimg(self.maps_img, atleast_4d=True)
        if self.mask_img is not None:
            log_step(self, "load_mask", self.mask_img)
        mask = None if self.mask_img is None else load_mask(self.mask_img)
        if imgs is not None:
            log_step(self, "load_data", imgs)
        data_img = None if imgs is None else open_imgs(imgs)
        loaded_mask = mask
        if self.resampling_target is None:
            grids = {"maps": maps_img, "mask": mask, "data": data_img}
            check_same_grid({k: v for k, v in grids.items() if v is not None})
        ref = {"data": data_img, "mask": mask, "maps": maps_img, None: None}[self.resampling_target]
        if ref is not None:
            if self.resampling_target != "maps" and not same_grid(
                ref.shape, ref.affine, maps_img.shape, maps_img.affine
            ):
                log_step(self, "resample_regions")
                maps_img = _resample_maps(maps_img, ref.shape, ref.affine)
            if mask is not None and not same_grid(ref.shape, ref.affine, mask.shape, mask.affine):
                mask = resample_nearest(mask, ref.shape, ref.affine)
        if mask is not None and not same_grid(
            maps_img.shape, maps_img.affine, mask.shape, mask.affine
        ):
            mask = resample_nearest(mask, maps_img.shape, maps_img.affine)
        if mask is not loaded_mask:
            log_step(self, "resample_mask")
        self.maps_img_ = maps_img
        # as nilearn, a mask is kept on its own grid until the data grid is known
        data_grid_unknown = self.resampling_target == "data" and data_img is None
        self.mask_img_ = loaded_mask if data_grid_unknown else mask
        self._fitted_spec = None
        fit_mask = mask
        if self.resampling_target == "data" and data_img is None and mask is not None:
            if not _any_weight_inside(maps_img, mask_data(mask)):
                # as nilearn: the mask may still select maps on the grid of the images to
                # transform, so "No map left" is raised by transform, not by fit
                fit_mask = None
        spec = self._spec(maps_img, fit_mask)
        self._fitted_spec = spec if fit_mask is self.mask_img_ else None
        self.n_elements_ = int(maps_img.shape[3])
        self.region_ids_ = spec.region_ids
        self.region_voxel_counts_ = spec.voxel_counts
        self.region_coverage_ = spec.coverage
        log_step(self, "fit_done")
        return self

    def _spec(self, maps_img, mask) -> MapsSpec:
        fitted = getattr(self, "_fitted_spec", None)
        if fitted is not None and maps_img is self.maps_img_ and mask is self.mask_img_:
            return fitted  # built once by fit (the pseudo-inverse is the costly part)
        return MapsSpec(
            maps_img.dataobj,
            mask_data(mask),
            keep_masked_maps=self.keep_masked_maps,
            warn_removed=False,
        )

    def _check_overlap(self, maps: np.ndarray) -> None:
        if maps.dtype.kind == "f":
            positive = maps >= np.finfo(maps.dtype).eps
        else:
            positive = maps > 0
        if np.any(np.sum(positive, axis=3) > 1):
            raise ValueError(
                "Overlap detected in the maps. The overlap may be due to the atlas itself or "
                "possibly introduced by resampling. Set allow_overlap=True to allow it."
            )

    def _plan(self, img):
        maps_img, mask = self.maps_img_, self.mask_img_
        target_affine = target_shape = None
        if self.resampling_target is None:
            grids = {"maps": maps_img, "data": img}
            if mask is not None:
                grids["mask"] = mask
            check_same_grid(grids, at_transform=True)
        elif self.resampling_target == "data":
            if not same_grid(img.shape, img.affine, maps_img.shape, maps_img.affine):
                warnings.warn(
                    "Resampling maps at transform time...\nTo avoid this warning, make sure to "
                    "pass the images you want to transform to fit() first, or directly use "
                    "fit_transform().",
                    UserWarning,
                    stacklevel=3,
                )
                maps_img = _resample_maps(maps_img, img.shape, img.affine)
            if mask is not None and not same_grid(img.shape, img.affine, mask.shape, mask.affine):
                mask = resample_nearest(mask, img.shape, img.affine)
        elif not same_grid(img.shape, img.affine, maps_img.shape, maps_img.affine):
            warnings.warn(
                "Resampling images at transform time (chunk by chunk) to the maps grid.",
                UserWarning,
                stacklevel=3,
            )
            target_affine, target_shape = maps_img.affine, maps_img.shape[:3]
        if not self.allow_overlap:
            self._check_overlap(np.asarray(maps_img.dataobj))
        spec = self._spec(maps_img, mask)
        spec.warn_removed()  # as nilearn: when extracting, not when fitting
        return spec, target_affine, target_shape

    def generate_report(self, displayed_maps=10, title: str | None = None):
        """Return an HTML report of the maps the masker extracts (nilearn's ``generate_report``).

        Parameters
        ----------
        displayed_maps : int, list of int or "all", default=10
            The maps to draw: the first N, these indices, or all.
        title : str or None, default=None
            The report's title; default the masker's class name.

        Returns
        -------
        bidsmask.reports.HTMLReport
            Shown in notebooks (``_repr_html_``); ``save_as_html(path)``, ``open_in_browser()``.
        """
        from bidsmask.maskers._report import masker_report

        return masker_report(self, title, displayed_maps)

    @verbose_method
    def inverse_transform(self, region_signals):
        """Voxel signals ``region_signals @ maps.T`` (3D for 1D input, 4D for 2D input).

        Parameters
        ----------
        region_signals : numpy.ndarray
            Shape (n_maps,) or (n_samples, n_maps).

        Returns
        -------
        nibabel.Nifti1Image
            Zero outside the mask and outside every map.
        """
        signals = self._check_inverse_input(region_signals)
        log_step(self, "inverse_transform")
        maps = np.nan_to_num(np.asarray(self.maps_img_.dataobj))
        shape = maps.shape[:3]
        flat = maps.reshape(-1, maps.shape[3])
        support = np.flatnonzero(np.any(flat != 0, axis=1))
        if self.mask_img_ is not None:
            support = support[mask_data(self._mask_on(self.maps_img_)).ravel()[support]]
        weights = flat[support]
        if signals.ndim == 1:
            out = np.zeros(flat.shape[0], dtype=np.result_type(signals, weights))
            out[support] = weights @ signals
            return self._inverse_output(signals, out.reshape(shape), self.maps_img_)
        out = np.zeros((flat.shape[0], signals.shape[0]), dtype=np.result_type(signals, weights))
        out[support] = weights @ signals.T
        return self._inverse_output(signals, out.reshape(*shape, signals.shape[0]), self.maps_img_)
