"""NiftiLabelsMasker: one cleaned signal per region of a deterministic atlas."""

from __future__ import annotations

import logging
import os
import warnings

import nibabel as nib
import numpy as np
import pandas as pd

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
from bidsmask.regions import LABEL_STRATEGIES, LabelsSpec

logger = logging.getLogger(__name__)

RESAMPLING_TARGETS = ("data", "labels", None)


def _label_values(data: np.ndarray) -> np.ndarray:
    values = np.unique(data)
    return values[np.isfinite(values)]


def _look_up_table(values: np.ndarray, background_label, labels=None, lut=None) -> pd.DataFrame:
    """Look-up table (``index``, ``name``) of the labels present, background first.

    Mirrors nilearn: names come from ``lut`` (a DataFrame or a TSV/CSV path with ``index`` and
    ``name`` columns), from ``labels`` (names in the order of the sorted label values, background
    included or not), or are the label values themselves; missing names become ``"unknown"``.
    """
    index = [v.item() for v in values]
    has_background = background_label in index
    if lut is not None:
        if isinstance(lut, (str, os.PathLike)):
            lut = pd.read_csv(lut, sep=None, engine="python")
        if not {"index", "name"} <= set(lut.columns):
            raise ValueError(
                f"'lut' must have 'index' and 'name' columns; got {list(lut.columns)}."
            )
        table = lut[lut["index"].isin(index)][["index", "name"]]
        missing = sorted(set(index) - set(table["index"].tolist()))
        if missing:
            table = pd.concat(
                [table, pd.DataFrame({"index": missing, "name": ["unknown"] * len(missing)})],
                ignore_index=True,
            )
    else:
        if labels:
            names = ["Background" if n == "background" else n for n in labels]
            if has_background and "Background" not in names:
                names.insert(index.index(background_label), "Background")
            if len(names) < len(index):
                warnings.warn(
                    "Too many indices for the names. Padding 'names' with 'unknown'.",
                    UserWarning,
                    stacklevel=4,
                )
                names += ["unknown"] * (len(index) - len(names))
            elif len(names) > len(index):
                warnings.warn(
                    "Too many names for the indices. Dropping excess names values.",
                    UserWarning,
                    stacklevel=4,
                )
                names = names[: len(index)]
        else:
            names = ["Background" if v == background_label else str(v) for v in index]
        table = pd.DataFrame({"index": index, "name": names})
    table = table.sort_values("index").reset_index(drop=True)
    if has_background:
        table.loc[table["index"] == background_label, "name"] = "Background"
    return table


@fill_doc
class NiftiLabelsMasker(BaseMasker):
    """Extract one cleaned signal per region of a labels image.

    Same parameters, defaults, fitted attributes and results as
    ``nilearn.maskers.NiftiLabelsMasker`` 0.14 (without the report parameters ``reports`` and
    ``cmap``). Extraction is a sparse (regions × voxels) product accumulated in float64 for
    ``mean``/``sum``/``variance``/``standard_deviation`` and an exact grouped reduction for
    ``median``/``minimum``/``maximum``, streamed over the run: memory holds the
    (n_volumes × n_regions) signals and one chunk of volumes.

    Beyond nilearn, the fitted masker exposes ``region_voxel_counts_`` and ``region_coverage_``.
    Region ids and names are fixed at ``fit`` (nilearn updates them during ``transform``); with
    ``resampling_target="data"``, fit on the images to transform (or use ``fit_transform``) so
    they describe the data grid.

    Parameters
    ----------
    labels_img : Niimg-like object
        Region definitions, as one 3D image of integer labels.
    labels : list of str or None, default=None
        Region names, in the order of the sorted label values; exclusive with ``lut``.
    lut : pandas.DataFrame, path or None, default=None
        Look-up table with ``index`` and ``name`` columns (a BIDS ``dseg.tsv``).
    background_label : int or float, default=0
        Label of the background.
    mask_img : Niimg-like object or None, default=None
        Mask applied to the regions before extraction.
    %(region_cleaning)s
    resampling_target : {"data", "labels", None}, default="data"
        Grid of the extraction: "data" resamples the labels (nearest) and mask to the images;
        "labels" resamples the mask and the images (chunk by chunk) to the labels; None requires
        all grids to match.
    %(memory)s
    %(memory_level)s
    %(verbose)s
    strategy : str, default="mean"
        "mean", "median", "sum", "minimum", "maximum", "standard_deviation" or "variance".
    keep_masked_labels : bool, default=False
        Keep regions emptied by the mask, with a signal of 0 (deprecated in nilearn).
    %(clean_args)s

    Attributes
    ----------
    %(clean_args_)s
    labels_img_ : nibabel.Nifti1Image
        The labels image (resampled to the data if fitted on images with target "data").
    lut_ : pandas.DataFrame
        Look-up table of the labels of ``labels_img`` as given (rows of labels that resampling
        removes are kept; names are never re-paired with the surviving labels).
    mask_img_ : nibabel.Nifti1Image or None
        The mask on the extraction grid.
    n_elements_ : int
        Number of regions.
    region_atlas_ : nibabel.Nifti1Image
        The labels image after masking (masked voxels set to the background).
    region_coverage_ : numpy.ndarray
        Fraction of each region's voxels that lie inside the mask; after :meth:`fit_transform`,
        inside the mask and with data in the images (finite at every volume, not constant zero;
        the signals themselves keep nilearn's numbers, non-finite values counting as 0).
    region_ids_ : dict
        ``{"background": background_label, 0: id_0, 1: id_1, ...}``: label of each output column.
    region_names_ : dict
        ``{i: name}`` for each output column.
    region_voxel_counts_ : numpy.ndarray
        Voxels used for each output column.
    """

    _fitted_attribute = "labels_img_"

    def __init__(
        self,
        labels_img=None,
        labels=None,
        lut=None,
        background_label=0,
        mask_img=None,
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
        memory=None,
        memory_level=1,
        verbose=0,
        strategy="mean",
        keep_masked_labels=False,
        clean_args=None,
    ):
        self.labels_img = labels_img
        self.labels = labels
        self.lut = lut
        self.background_label = background_label
        self.mask_img = mask_img
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
        self.memory = memory
        self.memory_level = memory_level
        self.verbose = verbose
        self.strategy = strategy
        self.keep_masked_labels = keep_masked_labels
        self.clean_args = clean_args

    def _check_params(self) -> None:
        self._check_cleaning_params()
        if self.strategy not in LABEL_STRATEGIES:
            raise ValueError(
                f"'strategy' must be one of {list(LABEL_STRATEGIES)}. "
                f"'{self.strategy}' was provided."
            )
        if self.resampling_target not in RESAMPLING_TARGETS:
            raise ValueError(
                f"'resampling_target' must be one of {list(RESAMPLING_TARGETS)}. "
                f"'{self.resampling_target}' was provided."
            )
        if self.labels_img is None:
            raise TypeError(
                f"{type(self).__name__} needs 'labels_img' (the input should be a NiftiLike "
                "object); got None. Pass a 3D labels image."
            )
        if self.labels:
            if self.lut is not None:
                raise ValueError(
                    "Pass either labels or a lookup table (lut) to the masker, but not both."
                )
            if not isinstance(self.labels, list):
                raise TypeError(f"'labels' must be a list. Got: {type(self.labels).__name__}")
            if not all(isinstance(x, str) for x in self.labels):
                raise TypeError("All elements of 'labels' must be a string.")

    def _resample_labels(self, labels_img, shape, affine):
        before = set(_label_values(np.asarray(labels_img.dataobj)).tolist())
        resampled = resample_nearest(labels_img, shape, affine)
        after = set(_label_values(np.asarray(resampled.dataobj)).tolist())
        if len(after) <= 1:
            raise ValueError("No label left after resampling the labels image.")
        if removed := before - after:
            warnings.warn(
                "After resampling the label image to the data image, the following labels "
                f"were removed: {removed}. Label image only contains {len(after)} labels "
                "(including background).",
                UserWarning,
                stacklevel=3,
            )
        return resampled

    def _spec(self, labels_img, mask_img) -> LabelsSpec:
        fitted = getattr(self, "_fitted_spec", None)
        if fitted is not None and labels_img is self.labels_img_ and mask_img is self.mask_img_:
            return fitted  # built once by fit
        return LabelsSpec(
            np.asarray(labels_img.dataobj),
            mask_data(mask_img),
            background_label=self.background_label,
            strategy=self.strategy,
            keep_masked_labels=self.keep_masked_labels,
        )

    @verbose_method
    def fit(self, imgs=None, y=None) -> NiftiLabelsMasker:
        """Load the labels (and mask), resampling them to the target grid.

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
        self._check_params()
        if self.keep_masked_labels:
            warnings.warn(
                'In version 0.15.0, "keep_masked_labels" parameter will be removed (as in '
                "nilearn): regions emptied by the mask will then be left out.",
                FutureWarning,
                stacklevel=2,
            )
        self.clean_args_ = {} if self.clean_args is None else dict(self.clean_args)
        log_step(self, "load_regions", self.labels_img)
        labels_img = in_memory(image.check_niimg_3d(self.labels_img))
        labels_data = np.asarray(labels_img.dataobj)
        if labels_data.dtype.kind == "f" and not np.isfinite(labels_data).all():
            warnings.warn(
                "Non-finite values detected. These values will be replaced with zeros "
                "(in 'labels_img').",
                UserWarning,
                stacklevel=2,
            )
            labels_data = np.where(np.isfinite(labels_data), labels_data, 0)
            labels_img = nib.Nifti1Image(labels_data, labels_img.affine)
        if np.all(labels_data == self.background_label):
            raise ValueError("Image has no label.")
        if self.mask_img is not None:
            log_step(self, "load_mask", self.mask_img)
        mask = None if self.mask_img is None else load_mask(self.mask_img)
        if imgs is not None:
            log_step(self, "load_data", imgs)
        data_img = None if imgs is None else open_imgs(imgs)

        if self.resampling_target is None:
            grids = {"labels": labels_img, "mask": mask, "data": data_img}
            check_same_grid({k: v for k, v in grids.items() if v is not None})
        ref = None
        if self.resampling_target == "data" and data_img is not None:
            ref = data_img
            if not same_grid(data_img.shape, data_img.affine, labels_img.shape, labels_img.affine):
                log_step(self, "resample_regions")
                labels_img = self._resample_labels(labels_img, data_img.shape, data_img.affine)
        elif self.resampling_target == "labels":
            ref = labels_img
        loaded_mask = mask
        if mask is not None:
            grid = ref if ref is not None else labels_img
            if not same_grid(grid.shape, grid.affine, mask.shape, mask.affine):
                log_step(self, "resample_mask")
                mask = resample_nearest(mask, grid.shape, grid.affine)
        self.labels_img_ = labels_img
        # as nilearn, a mask is kept on its own grid until the data grid is known
        self.mask_img_ = loaded_mask if ref is None else mask
        # names follow the label values of the atlas as given (before any resampling), so that
        # labels lost to resampling keep their rows and the survivors keep their own names
        self.lut_ = _look_up_table(
            _label_values(labels_data), self.background_label, labels=self.labels, lut=self.lut
        )
        self._fitted_spec = None
        fit_mask = mask
        if self.resampling_target == "data" and data_img is None and mask is not None:
            in_mask = np.asarray(labels_img.dataobj)[mask_data(mask)]
            if np.all(in_mask == self.background_label):
                # as nilearn: the mask may still select labels on the grid of the images to
                # transform, so "No label left" is raised by transform, not by fit
                fit_mask = None
        spec = self._spec(labels_img, fit_mask)
        self._fitted_spec = spec if fit_mask is mask and mask is self.mask_img_ else None
        names = self.lut_.set_index("index")["name"]
        self.region_ids_ = {}
        if self.background_label in self.lut_["index"].tolist():
            self.region_ids_["background"] = self.background_label
        self.region_ids_.update({i: rid.item() for i, rid in enumerate(spec.region_ids)})
        self.region_names_ = {i: names.get(rid, "unknown") for i, rid in enumerate(spec.region_ids)}
        self.region_voxel_counts_ = spec.voxel_counts
        self.region_coverage_ = spec.coverage
        atlas = np.asarray(labels_img.dataobj).copy()
        if mask is not None:
            atlas[~mask_data(mask)] = self.background_label
        self.region_atlas_ = nib.Nifti1Image(atlas.astype(np.int32), labels_img.affine)
        self.n_elements_ = spec.n_elements
        log_step(self, "fit_done")
        return self

    @property
    def labels_(self) -> list:
        """Label values of the output columns, background first if present."""
        self._check_fitted()
        return list(self.region_ids_.values())

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Region names of the output columns.

        Parameters
        ----------
        input_features : None
            Ignored; for scikit-learn compatibility.

        Returns
        -------
        numpy.ndarray of str
        """
        self._check_fitted()
        return np.array(list(self.region_names_.values()), dtype=object)

    def _plan(self, img):
        labels_img, mask = self.labels_img_, self.mask_img_
        if self.resampling_target is None:
            grids = {"labels": labels_img, "data": img}
            if mask is not None:
                grids["mask"] = mask
            check_same_grid(grids, at_transform=True)
            return self._spec(labels_img, mask), None, None
        if self.resampling_target == "labels":
            if same_grid(img.shape, img.affine, labels_img.shape, labels_img.affine):
                return self._spec(labels_img, mask), None, None
            warnings.warn(
                "Resampling images at transform time (chunk by chunk) to the labels grid.",
                UserWarning,
                stacklevel=3,
            )
            return self._spec(labels_img, mask), labels_img.affine, labels_img.shape[:3]
        if not same_grid(img.shape, img.affine, labels_img.shape, labels_img.affine):
            warnings.warn(
                "Resampling labels at transform time...\nTo avoid this warning, make sure to "
                "pass the images you want to transform to fit() first, or directly use "
                "fit_transform().",
                UserWarning,
                stacklevel=3,
            )
            labels_img = self._resample_labels(labels_img, img.shape, img.affine)
        if mask is not None and not same_grid(img.shape, img.affine, mask.shape, mask.affine):
            mask = resample_nearest(mask, img.shape, img.affine)
        return self._spec(labels_img, mask), None, None

    @verbose_method
    def inverse_transform(self, signals):
        """Paint region signals back onto their voxels (3D for 1D input, 4D for 2D input).

        Parameters
        ----------
        signals : numpy.ndarray
            Shape (n_regions,) or (n_samples, n_regions).

        Returns
        -------
        nibabel.Nifti1Image
            Voxels outside the regions (and the mask) are 0.
        """
        signals = self._check_inverse_input(signals)
        log_step(self, "inverse_transform")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # already reported by fit
            spec = self._spec(self.labels_img_, self._mask_on(self.labels_img_))
        shape = self.labels_img_.shape[:3]
        labels = np.asarray(self.labels_img_.dataobj).ravel()[spec.voxels]
        columns = np.searchsorted(spec.region_ids, labels)
        if signals.ndim == 1:
            out = np.zeros(int(np.prod(shape)), dtype=signals.dtype)
            out[spec.voxels] = signals[columns]
            return self._inverse_output(signals, out.reshape(shape), self.labels_img_)
        out = np.zeros((int(np.prod(shape)), signals.shape[0]), dtype=signals.dtype)
        out[spec.voxels] = signals[:, columns].T
        return self._inverse_output(
            signals, out.reshape(*shape, signals.shape[0]), self.labels_img_
        )
