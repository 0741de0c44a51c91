"""scikit-learn compatibility of the maskers (scikit-learn is a test-only dependency).

Checks from ``sklearn.utils.estimator_checks`` that run as they are (they never feed data, or
they only need ``transform`` to refuse to run before ``fit``): ``check_estimator_cloneable``,
``check_estimator_repr``, ``check_no_attributes_set_in_init``,
``check_parameters_default_constructible``, ``check_get_params_invariance``,
``check_set_params``, ``check_do_not_raise_errors_in_init_or_set_params``,
``check_valid_tag_types``, ``check_estimator_tags_renamed``, ``check_mixin_order``,
``check_transformers_unfitted``.

Checks re-implemented here with images instead of numeric arrays: fit returns self, fit is
idempotent, transform leaves the masker unchanged (``check_dict_unchanged``,
``check_dont_overwrite_parameters``), pickling gives the same output (``check_estimators_pickle``),
``check_is_fitted`` before/after fit (``check_fit_check_is_fitted``), ``clone``,
``get_feature_names_out``, a masker first in a ``Pipeline`` under ``cross_val_score``.

Checks that cannot apply, and why:

- every check that fits on random 2D numeric ``X`` (``check_transformer_general``,
  ``check_fit2d_*``, ``check_fit1d``, ``check_estimators_dtypes``, ``check_estimators_nan_inf``,
  ``check_estimators_empty_data_messages``, ``check_n_features_in*``, ``check_fit_idempotent``,
  ``check_methods_*_invariance``, ``check_readonly_memmap_input``, ``check_pipeline_consistency``,
  ``check_transformer_data_not_an_array``, ``check_estimators_pickle``, ``check_dict_unchanged``,
  ``check_dont_overwrite_parameters``, ``check_f_contiguous_array_estimator``,
  ``check_dtype_object``, ``check_complex_data``, ``check_positive_only_tag_during_fit``,
  ``check_requires_y_none``, ``check_inplace_ensure_writeable``,
  ``check_transformer_preserve_dtypes``): maskers take images (3D/4D NIfTI), not feature
  matrices — a 2D array has no affine and no voxel grid;
- sparse input, sample weights, array API and pandas/polars input checks: images only;
- ``check_set_output_*`` and ``check_*_feature_names_out_pandas``: they feed numeric arrays;
  the maskers' own ``set_output(transform="pandas")`` is tested against nilearn in
  ``test_maskers_region_names.py``;
- ``check_param_validation``: uses scikit-learn's private ``_parameter_constraints`` machinery;
  bidsmask validates parameters in ``fit`` with its own messages (tested in each masker's tests);
- classifier / regressor / clusterer / outlier checks: maskers are transformers.
"""

import pickle
import warnings

import nibabel as nib
import numpy as np
import pytest
from numpy.testing import assert_array_equal

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import cross_val_score  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils import estimator_checks  # noqa: E402
from sklearn.utils.validation import check_is_fitted  # noqa: E402

from bidsmask.maskers import (  # noqa: E402
    NiftiLabelsMasker,
    NiftiMapsMasker,
    NiftiMasker,
    NiftiSpheresMasker,
)

SHAPE = (9, 10, 8)
AFFINE = np.diag([3.0, 3.0, 3.0, 1.0])
AFFINE[:3, 3] = [-12, -14, -10]


def _images():
    rng = np.random.default_rng(11)
    mask = np.zeros(SHAPE, dtype=np.uint8)
    mask[2:7, 2:8, 2:6] = 1
    labels = np.zeros(SHAPE, dtype=np.int16)
    labels[2:5, 2:8, 2:6] = 1
    labels[5:7, 2:8, 2:6] = 2
    maps = np.zeros((*SHAPE, 2), dtype=np.float32)
    maps[2:6, 2:8, 2:6, 0] = 1
    maps[4:7, 3:8, 2:6, 1] = 0.5
    return {
        "run": nib.Nifti1Image(rng.standard_normal((*SHAPE, 12)).astype(np.float32), AFFINE),
        "mask": nib.Nifti1Image(mask, AFFINE),
        "labels": nib.Nifti1Image(labels, AFFINE),
        "maps": nib.Nifti1Image(maps, AFFINE),
    }


IMAGES = _images()


def _maskers():
    return [
        NiftiMasker(mask_img=IMAGES["mask"]),
        NiftiLabelsMasker(labels_img=IMAGES["labels"]),
        NiftiMapsMasker(maps_img=IMAGES["maps"]),
        NiftiSpheresMasker(seeds=[(0.0, 0.0, 0.0), (6.0, 3.0, -3.0)], radius=3.0),
    ]


MASKERS = _maskers()
IDS = [type(m).__name__ for m in MASKERS]

SKLEARN_CHECKS = [
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_no_attributes_set_in_init",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_valid_tag_types",
    "check_estimator_tags_renamed",
    "check_mixin_order",
    "check_transformers_unfitted",
]


@pytest.mark.parametrize("check", SKLEARN_CHECKS)
@pytest.mark.parametrize("masker", MASKERS, ids=IDS)
def test_sklearn_estimator_checks(masker, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        getattr(estimator_checks, check)(type(masker).__name__, clone(masker))


@pytest.mark.parametrize("masker", MASKERS, ids=IDS)
def test_clone_get_set_params(masker):
    copy = clone(masker)
    assert copy is not masker
    assert copy.get_params().keys() == masker.get_params().keys()
    for key, value in masker.get_params(deep=False).items():
        if isinstance(value, (str, int, float, bool, type(None))):
            assert copy.get_params()[key] == value
    copy.set_params(detrend=True, t_r=2.0)
    assert copy.detrend is True and masker.detrend is False
    with pytest.raises(ValueError, match="Invalid parameter 'nope'"):
        copy.set_params(nope=1)
    assert "t_r=2.0" in repr(copy)


@pytest.mark.parametrize("masker", MASKERS, ids=IDS)
def test_fit_contract_and_pickle(masker):
    masker = clone(masker)
    with pytest.raises(sklearn.exceptions.NotFittedError):
        check_is_fitted(masker)
    assert masker.fit(IMAGES["run"]) is masker
    check_is_fitted(masker)
    first = masker.transform(IMAGES["run"])
    state = {k: v for k, v in vars(masker).items()}
    again = masker.fit(IMAGES["run"]).transform(IMAGES["run"])
    assert_array_equal(first, again)
    # transform sets and changes nothing
    masker.transform(IMAGES["run"])
    assert vars(masker).keys() == state.keys()
    restored = pickle.loads(pickle.dumps(masker))
    assert_array_equal(restored.transform(IMAGES["run"]), first)
    assert restored.get_params().keys() == masker.get_params().keys()
    names = masker.get_feature_names_out()
    assert len(names) == first.shape[1] == masker.n_elements_
    assert first.dtype == np.float32


def _dataset(n=24):
    """3D images of two classes differing in the first label's region."""
    rng = np.random.default_rng(2)
    labels = np.asarray(IMAGES["labels"].dataobj)
    y = np.tile([0, 1], n // 2)
    imgs = []
    for target in y:
        vol = rng.standard_normal(SHAPE).astype(np.float32)
        vol[labels == 1] += 1.5 * target
        imgs.append(nib.Nifti1Image(vol, AFFINE))
    return imgs, y


def test_pipeline_cross_val_score_nifti_masker():
    imgs, y = _dataset()
    pipe = Pipeline(
        [("masker", NiftiMasker(mask_img=IMAGES["mask"])), ("clf", LogisticRegression())]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        scores = cross_val_score(pipe, imgs, y, cv=3)
    assert scores.shape == (3,)
    assert scores.mean() > 0.8


def test_pipeline_labels_masker_and_clone_of_fitted_pipeline():
    imgs, y = _dataset()
    pipe = make_pipeline(
        NiftiLabelsMasker(IMAGES["labels"]), StandardScaler(), LogisticRegression()
    )
    scores = cross_val_score(pipe, imgs, y, cv=3)
    assert scores.mean() > 0.8
    fitted = pipe.fit(imgs, y)
    assert fitted.predict(imgs[:2]).shape == (2,)
    unfitted = clone(fitted)
    with pytest.raises(sklearn.exceptions.NotFittedError):
        check_is_fitted(unfitted.steps[0][1])


def test_sklearn_not_imported_by_bidsmask():
    import subprocess
    import sys

    code = (
        "import sys, bidsmask.maskers, bidsmask.regions; "
        "print('sklearn' in sys.modules, 'nilearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_pickle_masker_fitted_from_files(tmp_path):
    """A maps file stays lazy after fit; pickling stores it in memory."""
    maps_path = tmp_path / "maps.nii.gz"
    nib.save(IMAGES["maps"], maps_path)
    masker = NiftiMapsMasker(maps_path).fit(IMAGES["run"])
    assert nib.is_proxy(masker.maps_img_.dataobj)
    restored = pickle.loads(pickle.dumps(masker))
    assert not nib.is_proxy(restored.maps_img_.dataobj)
    assert_array_equal(restored.transform(IMAGES["run"]), masker.transform(IMAGES["run"]))
