"""Shared machinery of the maskers: scikit-learn plumbing, extraction and cleaning.

Their inputs (images, masks, grids) are checked in :mod:`bidsmask.maskers._inputs`.

scikit-learn is never imported here. The estimator contract is implemented directly:
``get_params``/``set_params`` read the ``__init__`` signature (so ``sklearn.base.clone`` works),
``__sklearn_is_fitted__`` answers ``check_is_fitted``, and ``__sklearn_tags__`` builds its answer
from scikit-learn's own tag classes, taken from the already-imported module when scikit-learn
asks for them.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import sys
import warnings
from typing import Any

import nibabel as nib
import numpy as np
from nibabel.spatialimages import SpatialImage

from bidsmask import image, signal
from bidsmask.maskers._inputs import (
    images_as_x,
    in_memory,
    open_imgs,
    output_dtype,
    resample_nearest,
    same_grid,
)
from bidsmask.maskers._output import check_output, to_output
from bidsmask.maskers._verbose import log_step, verbose_method
from bidsmask.regions import VoxelSpec, extract, extract_regions

logger = logging.getLogger(__name__)

_STANDARDIZE = (False, True, None, "zscore_sample", "psc")


class NotFittedError(ValueError, AttributeError):
    """Raised when a masker is used before ``fit`` (like scikit-learn's NotFittedError)."""


@functools.cache
def _image_input_tags(base: type) -> type:
    """scikit-learn's ``InputTags`` class extended with nilearn's image input tags."""

    @dataclasses.dataclass
    class ImageInputTags(base):
        niimg_like: bool = True
        surf_img: bool = False

    return ImageInputTags


class BaseMasker:
    """Base class of the maskers: parameters, fitting state, extraction and cleaning.

    Subclasses implement ``fit`` (setting fitted attributes whose names end in ``_``),
    ``_plan(img)`` returning ``(spec, target_affine, target_shape)`` for an opened image
    without changing ``self``, and ``inverse_transform``.
    """

    _fitted_attribute = "n_elements_"

    def generate_report(self, title: str | None = None):
        """Return an HTML report of what the masker extracts (nilearn's ``generate_report``).

        Parameters
        ----------
        title : str or None, default=None
            The report's title; default the masker's class name.

        Returns
        -------
        bidsmask.reports.HTMLReport
            Shown in notebooks (``_repr_html_``); ``save_as_html(path)``, ``open_in_browser()``.
        """
        from bidsmask.maskers._report import masker_report

        return masker_report(self, title)

    # --- scikit-learn estimator contract -------------------------------------------------
    @classmethod
    def _get_param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return sorted(
            name
            for name, p in signature.parameters.items()
            if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        )

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Get the parameters of this masker.

        Parameters
        ----------
        deep : bool, default=True
            Also return the parameters of parameters that are estimators.

        Returns
        -------
        dict
            Parameter names mapped to their values.
        """
        out = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update({f"{name}__{k}": v for k, v in value.get_params().items()})
            out[name] = value
        return out

    def set_params(self, **params: Any) -> BaseMasker:
        """Set the parameters of this masker.

        Parameters
        ----------
        **params : dict
            Parameter names and new values.

        Returns
        -------
        self
        """
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter '{name}' for {type(self).__name__}. "
                    f"Valid parameters are: {valid}."
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        signature = inspect.signature(type(self).__init__)
        changed = []
        for name in self._get_param_names():
            default = signature.parameters[name].default
            value = getattr(self, name, default)
            if value is not default and not (
                isinstance(value, (str, int, float, bool, type(None))) and value == default
            ):
                changed.append(f"{name}={value!r:.60}")
        return f"{type(self).__name__}({', '.join(changed)})"

    def __getstate__(self) -> dict[str, Any]:
        """Pickle fitted images that are read lazily from a file as in-memory images."""
        state = dict(self.__dict__)
        for name, value in state.items():
            if (
                name.endswith("_")
                and isinstance(value, SpatialImage)
                and nib.is_proxy(value.dataobj)
            ):
                state[name] = in_memory(value)
        return state

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, self._fitted_attribute)

    def __sklearn_tags__(self):
        """Describe the masker to scikit-learn (only scikit-learn calls this).

        As nilearn's maskers: estimator type ``"masker"``, no target, and input tags that add
        ``niimg_like=True`` (NIfTI paths and images are accepted) and ``surf_img=False``.
        """
        tags = sys.modules.get("sklearn.utils._tags")
        if tags is None:
            raise RuntimeError(
                "__sklearn_tags__ is meant to be called by scikit-learn, which is not imported."
            )
        return tags.Tags(
            estimator_type="masker",
            target_tags=tags.TargetTags(required=False),
            transformer_tags=tags.TransformerTags(preserves_dtype=["float32"]),
            input_tags=_image_input_tags(tags.InputTags)(),
            requires_fit=True,
        )

    def _more_tags(self):
        """Tags for scikit-learn < 1.6; the same object as ``__sklearn_tags__`` after that."""
        if "sklearn.utils._tags" in sys.modules and hasattr(
            sys.modules["sklearn.utils._tags"], "Tags"
        ):
            return self.__sklearn_tags__()
        return {"requires_y": False, "X_types": ["niimg_like"], "preserves_dtype": ["float32"]}

    def _check_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            )

    @property
    def _n_features_out(self) -> int:
        return self.n_elements_

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names of the output columns: ``<classname><i>``.

        Parameters
        ----------
        input_features : None
            Ignored; for scikit-learn compatibility.

        Returns
        -------
        numpy.ndarray of str
        """
        self._check_fitted()
        prefix = type(self).__name__.lower()
        return np.array([f"{prefix}{i}" for i in range(self.n_elements_)], dtype=object)

    # --- parameter validation --------------------------------------------------------------
    def _check_cleaning_params(self) -> None:
        if self.standardize not in _STANDARDIZE:
            raise ValueError(
                f"'standardize' must be one of {list(_STANDARDIZE)}. "
                f"'{self.standardize}' was provided."
            )
        for name in ("detrend", "standardize_confounds", "high_variance_confounds"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(
                    f"'{name}' must be a boolean; got {getattr(self, name)!r}. Pass True or False."
                )
        for name in ("t_r", "low_pass", "high_pass", "smoothing_fwhm"):
            value = getattr(self, name, None)  # CIFTI maskers have no smoothing_fwhm
            if name == "smoothing_fwhm" and isinstance(value, (list, tuple, np.ndarray)):
                values = list(np.ravel(value))
            else:
                values = [value]
            for v in values:
                if v is None:
                    continue
                if isinstance(v, bool) or not isinstance(v, (int, float, np.number)):
                    raise TypeError(f"'{name}' must be a number or None; got {v!r}.")
                if v < 0:
                    raise ValueError(f"'{name}' must be positive; got {v}.")
        if self.clean_args is not None and not isinstance(self.clean_args, dict):
            raise TypeError(
                f"'clean_args' must be a dict or None; got {type(self.clean_args).__name__}."
            )
        if self.dtype is not None and not (isinstance(self.dtype, str) and self.dtype == "auto"):
            if np.dtype(self.dtype) == np.dtype(bool):
                raise TypeError("'dtype' cannot be bool. Use a float type, 'auto' or None.")

    # --- transform ------------------------------------------------------------------------
    @images_as_x
    @verbose_method
    def fit_transform(self, imgs, y=None, confounds=None, sample_mask=None) -> np.ndarray:
        """Fit to ``imgs``, then extract their cleaned signals.

        The same single read gives ``region_coverage_`` (for region maskers) by voxels with
        data: inside the mask, finite at every volume and not constant zero.

        Parameters
        ----------
        imgs : 3D/4D Niimg-like object or list of 3D Niimg-like objects
            Images to fit and process (may be given as ``X=``, as in scikit-learn).
        y : None
            Ignored; for scikit-learn compatibility.
        confounds : array, DataFrame, path or list of these, default=None
            Confounds regressed out of the signals (see :func:`bidsmask.signal.clean`).
        sample_mask : array or None, default=None
            Indices (or boolean mask) of the volumes to keep.

        Returns
        -------
        numpy.ndarray
            Shape (n_volumes, n_elements); 1D (n_elements,) for a 3D image. A DataFrame after
            ``set_output(transform="pandas")``.
        """
        del y
        with warnings.catch_warnings():  # the images are both the data and the mask's source
            warnings.filterwarnings("ignore", message=r".*Generation of a mask")
            self.fit(imgs)
        cleaned, coverage = self._transform(imgs, confounds, sample_mask)
        if hasattr(self, "region_coverage_"):
            self.region_coverage_ = coverage
        return to_output(cleaned, self)

    @images_as_x
    @verbose_method
    def transform(self, imgs, confounds=None, sample_mask=None) -> np.ndarray:
        """Extract cleaned signals: load → resample → smooth → extract → clean.

        The run is read once, a chunk of volumes at a time; only the extracted signals and one
        chunk are held in memory.

        Parameters
        ----------
        imgs : 3D/4D Niimg-like object or list of 3D Niimg-like objects
            Images to process (may be given as ``X=``). A 3D image gives a 1D output.
        confounds : array, DataFrame, path or list of these, default=None
            Confounds regressed out of the signals (see :func:`bidsmask.signal.clean`).
        sample_mask : array or None, default=None
            Indices (or boolean mask) of the volumes to keep.

        Returns
        -------
        numpy.ndarray
            Shape (n_volumes, n_elements); 1D (n_elements,) for a 3D image. A DataFrame after
            ``set_output(transform="pandas")``.
        """
        return to_output(self._transform(imgs, confounds, sample_mask)[0], self)

    @verbose_method
    def transform_single_imgs(self, imgs, confounds=None, sample_mask=None, copy=True):
        """Extract the cleaned signals of one image (nilearn's name for :meth:`transform`).

        Parameters
        ----------
        imgs, confounds, sample_mask
            As :meth:`transform`, for one image (or run).
        copy : bool, default=True
            Accepted for compatibility with nilearn (the output is always a new array).

        Returns
        -------
        numpy.ndarray
            As :meth:`transform`.
        """
        del copy
        return to_output(self._transform(imgs, confounds, sample_mask)[0], self)

    def set_output(self, *, transform: str | None = None) -> BaseMasker:
        """Choose the container of ``transform``'s output (scikit-learn's ``set_output``).

        Parameters
        ----------
        transform : {"default", "pandas"} or None, default=None
            "pandas": a DataFrame whose columns are ``get_feature_names_out()`` (region names
            for labels maskers); "default": numpy arrays; None: unchanged.

        Returns
        -------
        self
        """
        check_output(transform)
        if transform is not None:
            self._sklearn_output_config = {"transform": transform}
        return self

    def _transform(self, imgs, confounds, sample_mask) -> tuple[np.ndarray, np.ndarray]:
        """Return the cleaned signals and each element's coverage by voxels with data."""
        self._check_fitted()
        img = open_imgs(imgs)
        spec, target_affine, target_shape = self._plan(img)
        specs = [spec]
        # nilearn computes high-variance confounds on every voxel of the raw images: they come
        # from the same pass only when that pass is neither resampled nor smoothed
        raw_in_pass = (
            self.high_variance_confounds and target_affine is None and not self.smoothing_fwhm
        )
        if raw_in_pass:
            specs.append(VoxelSpec(np.ones(img.shape[:3], dtype=bool)))
        log_step(self, "extracting")
        extraction = extract_regions(
            img,
            specs,
            exclude_missing=False,
            smoothing_fwhm=self.smoothing_fwhm,
            target_affine=target_affine,
            target_shape=target_shape,
        )
        if extraction.non_finite_voxels.size:
            warnings.warn(
                "Non-finite values detected. These values will be replaced with zeros "
                f"({extraction.non_finite_voxels.size} voxel(s) have NaN or infinite values).",
                UserWarning,
                stacklevel=3,
            )
        outputs, coverage = extraction.signals, extraction.coverage[0]
        del extraction  # the raw voxels of high-variance confounds go with ``outputs``
        signals = outputs[0]
        all_confounds = []
        if self.high_variance_confounds:
            if raw_in_pass:
                raw = outputs[1]
            else:
                (raw,) = extract(img, [VoxelSpec(np.ones(img.shape[:3], dtype=bool))])
            del outputs
            all_confounds.append(signal.high_variance_confounds(raw))
            del raw
        log_step(self, "cleaning")
        cleaned = self._clean_signals(
            signals, all_confounds, confounds, sample_mask, np.dtype(img.get_data_dtype())
        )
        if len(img.shape) == 3:  # one volume: (n_elements,), a 0-d array for one element
            return cleaned[0].reshape(cleaned.shape[1:] if cleaned.shape[1] > 1 else ()), coverage
        return cleaned, coverage

    def _clean_signals(
        self, signals, own_confounds: list, confounds, sample_mask, source_dtype, t_r=None
    ) -> np.ndarray:
        """Clean extracted signals with the masker's parameters and cast to its ``dtype``.

        ``own_confounds`` (high-variance confounds) come before the user's ``confounds``;
        ``t_r`` replaces ``self.t_r`` when that is None (a CIFTI series knows its TR).
        """
        all_confounds = list(own_confounds)
        if confounds is not None:
            all_confounds.extend(confounds if isinstance(confounds, list) else [confounds])
        cleaned = signal.clean(
            signals,
            runs=getattr(self, "runs", None),
            detrend=self.detrend,
            standardize=self.standardize,
            standardize_confounds=self.standardize_confounds,
            t_r=self.t_r if self.t_r is not None else t_r,
            low_pass=self.low_pass,
            high_pass=self.high_pass,
            confounds=all_confounds or None,
            sample_mask=sample_mask,
            **self.clean_args_,
        )
        target = output_dtype(source_dtype, self.dtype)
        if target is not None:
            cleaned = cleaned.astype(target)
        return cleaned

    def _mask_on(self, img: SpatialImage) -> nib.Nifti1Image | None:
        """Return the fitted mask on ``img``'s grid (resampled, nearest, if on another one)."""
        mask = self.mask_img_
        if mask is None or same_grid(img.shape, img.affine, mask.shape, mask.affine):
            return mask
        return resample_nearest(mask, img.shape, img.affine)

    def _plan(self, img: SpatialImage):
        raise NotImplementedError  # pragma: no cover - every masker defines it

    def _check_inverse_input(self, signals) -> np.ndarray:
        self._check_fitted()
        if hasattr(signals, "to_numpy"):
            signals = signals.to_numpy().squeeze()
        signals = np.atleast_1d(np.asarray(signals))
        if signals.ndim > 2:
            raise ValueError(
                f"Input to 'inverse_transform' must be 1D or 2D; got shape {signals.shape}."
            )
        expected = (
            (self.n_elements_,) if signals.ndim == 1 else (signals.shape[0], self.n_elements_)
        )
        if signals.shape != expected:
            raise ValueError(
                f"Input to 'inverse_transform' has wrong shape. Expected {expected}. "
                f"Got {signals.shape}."
            )
        if signals.dtype == bool:
            warnings.warn("Casting boolean input to int32", UserWarning, stacklevel=3)
            signals = signals.astype(np.int32)
        return signals

    def _inverse_output(
        self, signals: np.ndarray, data: np.ndarray, ref_img: SpatialImage
    ) -> nib.Nifti1Image:
        """Return ``data`` as the image ``inverse_transform`` gives, on ``ref_img``'s grid.

        Its data type is the masker's ``dtype`` applied to the signals' type ("auto": int32
        for integers, float32 otherwise), or the signals' type when ``dtype`` is None (64-bit
        integers are stored as int32 with :func:`bidsmask.image.new_img_like`'s warning).
        """
        target = output_dtype(signals.dtype, self.dtype) or signals.dtype
        out = image.new_img_like(
            ref_img, np.asarray(data).astype(target, copy=False), copy_header=False
        )
        out.set_data_dtype(target)
        return out
