"""CiftiLabelsMasker: cleaned parcel signals from CIFTI-2 dense time series."""

from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd
from nibabel import cifti2

from bidsmask import cifti, signal
from bidsmask.maskers._base import BaseMasker
from bidsmask.maskers.labels import NiftiLabelsMasker

logger = logging.getLogger(__name__)

__all__ = ["CiftiLabelsMasker"]


class CiftiLabelsMasker(BaseMasker):
    """Extract one cleaned signal per parcel of a ``.dlabel.nii`` from ``.dtseries.nii`` files.

    nilearn has no CIFTI masker; this one follows the API of ``NiftiLabelsMasker`` (``fit``,
    ``transform(imgs, confounds=, sample_mask=)``, ``inverse_transform``, ``region_names_``,
    ``generate_report()``) and its cleaning parameters. The atlas is matched to the data by
    structure and vertex or voxel index, so atlases on whole 32k meshes, on the cortex only or
    on the subcortex only all work with fMRIPrep's 91k files. A parcel's signal is the mean of
    its grayordinates whose data are finite and not all zero; its coverage is the fraction of
    the parcel's grayordinates that qualify. Without cleaning the signals equal Connectome
    Workbench's ``wb_command -cifti-parcellate … COLUMN -only-numeric`` on files without
    all-zero grayordinates.

    Parameters
    ----------
    labels_img : str, os.PathLike or nibabel.cifti2.Cifti2Image
        The atlas: a ``.dlabel.nii`` (its first map), or a ``.dscalar.nii`` of integers.
    labels : list of str or None, default=None
        Region names in increasing label order (background excluded); exclusive with ``lut``.
    lut : pandas.DataFrame, path or None, default=None
        Look-up table with ``index`` and ``name`` columns. Without ``labels`` or ``lut`` the
        names come from the dlabel's label table.
    standardize, standardize_confounds, high_variance_confounds, detrend, low_pass, \
high_pass, dtype, clean_args
        As :class:`bidsmask.maskers.NiftiMasker` (high-variance confounds are computed over
        all grayordinates of the raw data).
    t_r : float or None, default=None
        Repetition time; ``None`` takes the step of the data's series axis.
    memory, memory_level, verbose : default=None, 1, 0
        Accepted for compatibility with the other maskers (nothing is cached).
    strategy : {"mean"}, default="mean"
        Reduction over a parcel's grayordinates.

    Attributes
    ----------
    labels_img_ : nibabel.cifti2.Cifti2Image
        The atlas.
    brain_models_ : nibabel.cifti2.BrainModelAxis
        Grayordinates of the data fitted on (the atlas's own without data).
    lut_ : pandas.DataFrame
        ``index`` and ``name`` of each region, background first.
    region_ids_ : dict
        ``{"background": 0, 0: id_0, 1: id_1, ...}`` (label 0 is unlabelled in a dlabel).
    region_names_ : dict
        ``{i: name}`` for each output column.
    region_grayordinate_counts_ : numpy.ndarray
        Grayordinates of each region among the fitted data's.
    region_coverage_ : numpy.ndarray
        Fraction of each region's atlas grayordinates that qualify in the fitted data (without
        data: that lie among the brain models).
    n_elements_ : int
        Number of regions.
    clean_args_ : dict
        Arguments passed to :func:`bidsmask.signal.clean`.
    """

    _fitted_attribute = "labels_img_"

    def __init__(
        self,
        labels_img=None,
        labels=None,
        lut=None,
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
        strategy="mean",
        clean_args=None,
    ):
        self.labels_img = labels_img
        self.labels = labels
        self.lut = lut
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
        self.strategy = strategy
        self.clean_args = clean_args

    def _check_params(self) -> None:
        self._check_cleaning_params()
        if self.strategy != "mean":
            raise ValueError(f"'strategy' must be one of ['mean']. '{self.strategy}' was provided.")
        if self.labels_img is None:
            raise TypeError(
                f"{type(self).__name__} needs 'labels_img'; got None. Pass a .dlabel.nii file."
            )
        if self.labels is not None and self.lut is not None:
            raise ValueError("Pass either labels or a lookup table (lut) to the masker, not both.")
        if self.labels is not None and (
            not isinstance(self.labels, list) or not all(isinstance(x, str) for x in self.labels)
        ):
            raise TypeError("'labels' must be a list of str.")

    def _names(self, atlas: cifti.CiftiAtlas) -> dict[int, str] | None:
        if self.lut is not None:
            table = self.lut
            if isinstance(table, (str, os.PathLike)):
                table = pd.read_csv(table, sep="\t")
            if not {"index", "name"} <= set(table.columns):
                raise ValueError(
                    f"'lut' needs 'index' and 'name' columns; got {list(table.columns)}."
                )
            return dict(zip(table["index"].astype(int), table["name"].astype(str), strict=True))
        if self.labels is not None:
            ids = atlas.region_ids
            if len(self.labels) != ids.size:
                raise ValueError(
                    f"'labels' has {len(self.labels)} names for {ids.size} regions in the atlas."
                )
            return dict(zip(ids.tolist(), self.labels, strict=True))
        return None

    def _load_atlas(self) -> cifti.CiftiAtlas:
        atlas = cifti.load_dlabel(self.labels_img)
        names = self._names(atlas)
        if names is not None:
            atlas = cifti.load_dlabel(self.labels_img, names=names)
        return atlas

    def fit(self, imgs=None, y=None) -> CiftiLabelsMasker:
        """Load the atlas and align it to the data's grayordinates.

        Parameters
        ----------
        imgs : str, os.PathLike, nibabel.cifti2.Cifti2Image or None, default=None
            A dense file the masker will transform: its brain models are the extraction's,
            and its data give ``region_coverage_`` (one read). ``None`` uses the atlas's own
            brain models.
        y : None
            Ignored; for scikit-learn compatibility.

        Returns
        -------
        self
        """
        del y
        self._fit(imgs)
        if imgs is not None:
            _, qualified = cifti.extract(cifti.open_dense(imgs), [self._fitted_spec])
            self.region_coverage_ = self._fitted_spec.coverage(qualified)
        return self

    def _fit(self, imgs) -> cifti.DenseFile | None:
        self._check_params()
        self.clean_args_ = {} if self.clean_args is None else dict(self.clean_args)
        atlas = self._load_atlas()
        img = None if imgs is None else cifti.open_dense(imgs)
        axis = atlas.axis if img is None else img.axis
        spec = cifti.atlas_spec(atlas, axis)
        self._atlas = atlas
        self._fitted_spec = spec
        self.labels_img_ = cifti.load_cifti(self.labels_img)
        self.brain_models_ = axis
        self._t_r = None if img is None or img.series is None else img.series[1]
        names = [atlas.names[int(rid)] for rid in spec.region_ids]
        self.lut_ = pd.DataFrame(
            {
                "index": [0, *spec.region_ids.tolist()],
                "name": ["Background", *names],
            }
        )
        self.region_ids_ = {"background": 0}
        self.region_ids_.update({i: int(rid) for i, rid in enumerate(spec.region_ids)})
        self.region_names_ = dict(enumerate(names))
        self.region_grayordinate_counts_ = spec.data_sizes
        self.region_coverage_ = np.divide(
            spec.data_sizes,
            spec.atlas_sizes,
            out=np.zeros(spec.n_elements),
            where=spec.atlas_sizes > 0,
        )
        self.n_elements_ = spec.n_elements
        return img

    # region names as output names, as the labels masker
    get_feature_names_out = NiftiLabelsMasker.get_feature_names_out

    def fit_transform(self, imgs, y=None, confounds=None, sample_mask=None) -> np.ndarray:
        """Fit to ``imgs`` and extract their cleaned signals, reading the data once.

        Parameters
        ----------
        imgs : str, os.PathLike or nibabel.cifti2.Cifti2Image
            A dense time series (``.dtseries.nii``).
        y : None
            Ignored; for scikit-learn compatibility.
        confounds : array, DataFrame, path or list of these, default=None
            Confounds regressed out of the signals (see :func:`bidsmask.signal.clean`).
        sample_mask : array or None, default=None
            Indices (or boolean mask) of the volumes to keep.

        Returns
        -------
        numpy.ndarray
            Shape (n_volumes, n_regions).
        """
        del y
        img = self._fit(imgs)
        cleaned, qualified = self._extract(img, confounds, sample_mask)
        self.region_coverage_ = self._fitted_spec.coverage(qualified)
        return cleaned

    def transform(self, imgs, confounds=None, sample_mask=None) -> np.ndarray:
        """Extract cleaned parcel signals, reading the file once by chunks of grayordinates.

        Parameters
        ----------
        imgs : str, os.PathLike or nibabel.cifti2.Cifti2Image
            A dense time series (``.dtseries.nii``) or dense maps (``.dscalar.nii``).
        confounds : array, DataFrame, path or list of these, default=None
            Confounds regressed out of the signals (see :func:`bidsmask.signal.clean`).
        sample_mask : array or None, default=None
            Indices (or boolean mask) of the volumes to keep.

        Returns
        -------
        numpy.ndarray
            Shape (n_volumes, n_regions).
        """
        self._check_fitted()
        return self._extract(cifti.open_dense(imgs), confounds, sample_mask)[0]

    def _extract(self, img: cifti.DenseFile, confounds, sample_mask):
        axis = img.axis
        spec = self._fitted_spec
        if axis != self.brain_models_:
            spec = cifti.atlas_spec(self._atlas, axis)
        (signals,), qualified = cifti.extract(img, [spec])
        own = []
        if self.high_variance_confounds:
            raw = np.array(img.dataobj, dtype=np.float32)  # a copy: dataobj may be read-only
            own.append(signal.high_variance_confounds(np.nan_to_num(raw, copy=False)))
            del raw
        t_r = None if img.series is None else img.series[1]
        cleaned = self._clean_signals(
            signals, own, confounds, sample_mask, np.dtype(img.dataobj.dtype), t_r=t_r
        )
        return cleaned, qualified

    def inverse_transform(self, signals) -> cifti2.Cifti2Image:
        """Paint parcel signals back onto their grayordinates (0 elsewhere).

        Parameters
        ----------
        signals : numpy.ndarray
            Shape (n_regions,) for one map or (n_samples, n_regions).

        Returns
        -------
        nibabel.cifti2.Cifti2Image
            A dense scalar image (``.dscalar.nii``) for 1D input, a dense time series
            (``.dtseries.nii``; TR ``t_r``, else the fitted data's, else 1 s) for 2D input,
            on ``brain_models_``.
        """
        signals = self._check_inverse_input(signals)
        spec = self._fitted_spec
        values = np.atleast_2d(signals)
        dense = np.zeros((values.shape[0], len(self.brain_models_)), dtype=np.float32)
        dense[:, spec.columns] = values[:, spec.column_regions]
        if signals.ndim == 1:
            return cifti.dscalar_image(dense, self.brain_models_, ["inverse_transform"])
        return cifti.dtseries_image(dense, self.brain_models_, self.t_r or self._t_r or 1.0)
