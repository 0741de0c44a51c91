"""nilearn 0.14 API details of the maskers: tags, docstrings, ``X=``, ``filter_and_mask``.

nilearn (test-only oracle) gives the reference numbers of ``filter_and_mask``; the tag and
docstring tests check what nilearn's estimator checks (``check_tags``, ``check_doc_attributes``)
read: scikit-learn tags with ``niimg_like`` input and estimator type ``"masker"``, and every
parameter and fitted attribute documented one by one, in ``__init__`` order.
"""

import inspect
import warnings

import nibabel as nib
import numpy as np
import pytest
from numpy.testing import assert_allclose

from bidsmask.image import DimensionError
from bidsmask.maskers import (
    MultiNiftiLabelsMasker,
    MultiNiftiMapsMasker,
    MultiNiftiMasker,
    NiftiLabelsMasker,
    NiftiMapsMasker,
    NiftiMasker,
    NiftiSpheresMasker,
    filter_and_mask,
)

AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])


def _run(shape=(8, 9, 10, 12), seed=0):
    rng = np.random.default_rng(seed)
    return nib.Nifti1Image((rng.standard_normal(shape) + 10).astype(np.float32), AFFINE)


def _labels():
    data = np.zeros((8, 9, 10), dtype=np.int16)
    data[:4] = 1
    data[4:, :5] = 2
    return nib.Nifti1Image(data, AFFINE)


def _maps():
    labels = np.asarray(_labels().dataobj)
    return nib.Nifti1Image(np.stack([labels == 1, labels == 2], -1).astype(np.float32), AFFINE)


def _maskers():
    return [
        NiftiMasker(),
        NiftiLabelsMasker(labels_img=_labels()),
        NiftiMapsMasker(maps_img=_maps()),
        NiftiSpheresMasker(seeds=[(4.0, 4.0, 4.0)], radius=3.0),
        MultiNiftiMasker(),
        MultiNiftiLabelsMasker(labels_img=_labels()),
        MultiNiftiMapsMasker(maps_img=_maps()),
    ]


@pytest.mark.parametrize("masker", _maskers(), ids=lambda m: type(m).__name__)
def test_docstring_documents_every_parameter_and_attribute(masker):
    docscrape = pytest.importorskip("numpydoc.docscrape")
    doc = docscrape.NumpyDocString(type(masker).__doc__)
    parameters = {p.name: p.type for p in doc["Parameters"]}
    assert list(parameters) == list(inspect.signature(type(masker).__init__).parameters)[1:]
    assert "default=0" in parameters["verbose"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        masker.fit(_run())
    fitted = sorted(k for k in vars(masker) if k.endswith("_") and not k.startswith("_"))
    assert [a.name for a in doc["Attributes"]] == fitted


@pytest.mark.parametrize("masker", _maskers()[:4], ids=lambda m: type(m).__name__)
def test_tags_say_masker_with_image_input(masker):
    pytest.importorskip("sklearn")
    import sklearn.utils  # noqa: F401  (loads the tag classes __sklearn_tags__ uses)

    tags = masker.__sklearn_tags__()
    assert tags.estimator_type == "masker"
    assert tags.input_tags.niimg_like is True
    assert tags.input_tags.surf_img is False
    assert tags.target_tags.required is False
    assert masker._more_tags() == tags


def test_images_given_as_x():
    img = _run()
    expected = NiftiMasker().fit_transform(img)
    assert_allclose(NiftiMasker().fit_transform(X=img), expected)
    assert_allclose(NiftiMasker().fit(img).transform(X=img), expected)
    labels = MultiNiftiLabelsMasker(labels_img=_labels())
    assert_allclose(labels.fit_transform(X=[img, img])[1], labels.transform(img), rtol=1e-6)
    with pytest.raises(TypeError):
        NiftiMasker().fit(img).transform(img, X=img)


@pytest.mark.parametrize(
    "parameters",
    [
        {"standardize": "zscore_sample", "detrend": True},
        {"smoothing_fwhm": 4.0, "standardize": None},
    ],
)
def test_filter_and_mask_matches_nilearn(parameters):
    ref = pytest.importorskip("nilearn.maskers.nifti_masker")
    parameters = {**ref.NiftiMasker().get_params(), **parameters, "clean_kwargs": {}}
    img = _run()
    mask = np.zeros((8, 9, 10), dtype=np.uint8)
    mask[2:6, 2:7, 3:8] = 1
    mask_img = nib.Nifti1Image(mask, AFFINE)
    got = filter_and_mask(img, mask_img, dict(parameters))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = ref.filter_and_mask(img, mask_img, dict(parameters))
    assert got.shape == expected.shape == (12, int(mask.sum()))
    assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # a 3D image gives one row, as nilearn
    one = filter_and_mask(img.slicer[..., 0], mask_img, dict(parameters))
    assert one.shape == (1, int(mask.sum()))


def test_filter_and_mask_resamples_with_nilearns_warning_and_needs_3d_mask():
    img = _run()
    mask = np.zeros((12, 12, 12), dtype=np.uint8)
    mask[3:-3, 3:-3, 3:-3] = 1
    bigger = nib.Nifti1Image(mask, AFFINE)
    with pytest.warns(UserWarning, match="imgs are being resampled to the mask_img resolution"):
        out = filter_and_mask(img, bigger, {})
    assert out.shape == (12, int(mask.sum()))
    mask_4d = nib.Nifti1Image(np.ones((8, 9, 10, 2), dtype=np.uint8), AFFINE)
    with pytest.raises(DimensionError, match="Expected dimension is 3D"):
        filter_and_mask(img, mask_4d, {})


def _single_maskers():
    return _maskers()[:4]


@pytest.mark.parametrize("masker", _single_maskers(), ids=lambda m: type(m).__name__)
def test_single_image_maskers_refuse_a_list_of_runs(masker):
    img = _run()
    masker.fit(img)
    with pytest.raises(DimensionError, match="Input data has incompatible dimensionality"):
        masker.transform([img, img])
    with pytest.raises(DimensionError, match="Input data has incompatible dimensionality"):
        masker.fit_transform([img, img])


@pytest.mark.parametrize("masker", _single_maskers(), ids=lambda m: type(m).__name__)
def test_empty_image_and_empty_mask_messages(masker):
    empty = nib.Nifti1Image(np.zeros((8, 9, 0)), AFFINE)
    with pytest.raises(ValueError, match="The image is empty"):
        masker.fit(empty)
    masker.mask_img = nib.Nifti1Image(np.ones((8, 9, 10)), AFFINE)
    with pytest.raises(ValueError, match="The image is empty"):
        masker.fit().transform(empty)
    masker.mask_img = nib.Nifti1Image(np.zeros((8, 9, 10)), AFFINE)
    with pytest.raises(ValueError, match="The mask is invalid as it is empty: it masks all data"):
        masker.fit(_run())


@pytest.mark.parametrize("masker", _single_maskers(), ids=lambda m: type(m).__name__)
def test_non_finite_mask_values_count_as_zero_with_nilearns_warning(masker):
    mask = np.ones((8, 9, 10))
    mask[:, :, 7] = np.nan
    mask[:, :, 4] = np.inf
    masker.mask_img = nib.Nifti1Image(mask, AFFINE)
    with pytest.warns(UserWarning, match="Non-finite values detected"):
        masker.fit()
    assert not np.asarray(masker.mask_img_.dataobj)[:, :, [4, 7]].any()
    assert np.isfinite(masker.transform(_run())).all()


def test_non_finite_data_warns_and_counts_as_zero_as_nilearn():
    from nilearn.maskers import NiftiLabelsMasker as Reference

    data = np.asarray(_run().dataobj).copy()
    data[:, :, 7] = np.nan
    data[:, :, 4, 0] = np.inf
    img = nib.Nifti1Image(data, AFFINE)
    with pytest.warns(UserWarning, match="Non-finite values detected"):
        ours = NiftiLabelsMasker(_labels()).fit_transform(img)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = Reference(_labels(), standardize=None).fit_transform(img)
    assert_allclose(ours, expected, rtol=1e-5)
    labels = np.asarray(_labels().dataobj).astype(np.float32)
    labels[:, :, 9] = np.nan
    with pytest.warns(UserWarning, match="Non-finite values detected"):
        out = NiftiLabelsMasker(nib.Nifti1Image(labels, AFFINE)).fit_transform(_run())
    assert np.isfinite(out).all() and out.shape == (12, 2)


@pytest.mark.parametrize("masker", _single_maskers(), ids=lambda m: type(m).__name__)
def test_transform_single_imgs_and_one_volume_output_as_nilearn(masker):
    img = _run()
    masker.fit(img)
    assert_allclose(masker.transform_single_imgs(img), masker.transform(img))
    one = masker.transform(img.slicer[..., 0])
    assert one.shape == (() if masker.n_elements_ == 1 else (masker.n_elements_,))
    one_label = (np.asarray(_labels().dataobj) == 1).astype(np.int16)
    single = NiftiLabelsMasker(nib.Nifti1Image(one_label, AFFINE))
    assert single.fit_transform(img.slicer[..., 0]).shape == ()


@pytest.mark.parametrize("index", range(4))
@pytest.mark.parametrize("dtype", [None, "auto", np.float64, np.int32])
@pytest.mark.parametrize("signal_dtype", [np.float32, np.float64, np.int32])
def test_inverse_transform_dtype_matches_nilearn(index, dtype, signal_dtype):
    from nilearn import maskers as reference

    ours = _single_maskers()[index]
    params = {k: v for k, v in ours.get_params(deep=False).items() if k != "standardize"}
    if isinstance(ours, NiftiSpheresMasker):
        params["mask_img"] = nib.Nifti1Image(np.ones((8, 9, 10)), AFFINE)
    ref = getattr(reference, type(ours).__name__)(**params, standardize=None)
    ours.set_params(**params)
    ours.dtype = ref.dtype = dtype
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours.fit(_run())
        ref.fit(_run())
        signals = (np.arange(3 * ours.n_elements_).reshape(3, -1) % 5).astype(signal_dtype)
        got = ours.inverse_transform(signals)
        expected = ref.inverse_transform(signals)
    assert got.get_data_dtype() == expected.get_data_dtype()
    assert np.asarray(got.dataobj).dtype == np.asarray(expected.dataobj).dtype
    assert_allclose(np.asarray(got.dataobj), np.asarray(expected.dataobj), atol=1e-5)


@pytest.mark.parametrize("kind", ["labels", "maps"])
def test_mask_without_regions_raises_at_fit_or_transform_as_nilearn(kind):
    mask = np.zeros((9, 10, 11), dtype=np.uint8)
    mask[-1, -1, -1] = 1
    mask_img = nib.Nifti1Image(mask, AFFINE)  # another grid: resampled at transform
    if kind == "labels":
        masker, match = NiftiLabelsMasker(_labels(), mask_img=mask_img), "No label left"
        none = NiftiLabelsMasker(standardize=None)
    else:
        masker, match = NiftiMapsMasker(_maps(), mask_img=mask_img), "No map left"
        none = NiftiMapsMasker(standardize=None)
    masker.fit()  # the images' grid is not known yet
    with pytest.raises(ValueError, match=f"{match} after applying mask"):
        masker.transform(_run())
    with pytest.raises(ValueError, match=f"{match} after applying mask"):
        masker.fit(_run())
    with pytest.raises(TypeError, match="input should be a NiftiLike object"):
        none.fit()


def test_maps_removed_by_the_mask_warn_at_transform_as_nilearn():
    mask = np.zeros((8, 9, 10), dtype=np.uint8)
    mask[:4] = 1  # only map 0
    masker = NiftiMapsMasker(_maps(), mask_img=nib.Nifti1Image(mask, AFFINE))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        masker.fit(_run())
    with pytest.warns(UserWarning, match=r"maps with the following indices were removed: \{1\}"):
        assert masker.transform(_run()).shape == (12, 1)


@pytest.mark.parametrize("masker", _single_maskers(), ids=lambda m: type(m).__name__)
def test_verbose_shows_nilearns_step_messages_on_stdout(masker, capsys):
    img = _run()
    masker.fit_transform(img)
    assert capsys.readouterr().out == ""  # verbose=0: quiet (the steps are only logged)
    masker.verbose = 1
    signals = masker.fit_transform(img)
    first = capsys.readouterr().out
    for step in ("Finished fit", "Extracting region signals", "Cleaning extracted signals"):
        assert first.count(step) == 1, first
    assert first.count("Loading data from") == 1
    masker.verbose = 2
    masker.fit(img)
    assert len(capsys.readouterr().out) > len(first.split("Extracting")[0])
    masker.verbose = 1
    if isinstance(masker, NiftiSpheresMasker):
        masker.set_params(mask_img=nib.Nifti1Image(np.ones((8, 9, 10)), AFFINE)).fit()
        capsys.readouterr()
    masker.inverse_transform(signals)
    assert capsys.readouterr().out.count("Computing image from signals") == 1


@pytest.mark.parametrize("kind", ["labels", "maps"])
def test_mask_stays_on_its_grid_until_the_data_grid_is_known(kind):
    from nilearn import maskers as reference

    mask = np.zeros((9, 10, 11), dtype=np.uint8)
    mask[1:7, 1:8, 2:9] = 1
    mask_img = nib.Nifti1Image(mask, AFFINE)
    regions = {"labels_img": _labels()} if kind == "labels" else {"maps_img": _maps()}
    name = "NiftiLabelsMasker" if kind == "labels" else "NiftiMapsMasker"
    ours = globals()[name](**regions, mask_img=mask_img).fit()
    ref = getattr(reference, name)(**regions, mask_img=mask_img, standardize=None).fit()
    assert ours.mask_img_.shape == ref.mask_img_.shape == (9, 10, 11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got, expected = ours.transform(_run()), ref.transform(_run())
    assert_allclose(got, expected, rtol=1e-5)
    # nilearn's inverse_transform fails in this state (mask and regions on two grids)
    back = ours.inverse_transform(np.arange(1.0, 3.0)).get_fdata()
    assert back.shape == (8, 9, 10) and back.any()
    assert not back[~np.asarray(ours._mask_on(_labels()).dataobj).astype(bool)].any()


def test_grid_errors_at_transform_use_nilearns_words():
    masker = NiftiLabelsMasker(_labels(), resampling_target=None).fit()
    moved = nib.Nifti1Image(np.asarray(_run().dataobj), np.diag([2.0, 2.0, 3.0, 1.0]))
    with pytest.raises(ValueError, match="Images have different affine matrices."):
        masker.transform(moved)
    with pytest.raises(ValueError, match="Images have incompatible shapes."):
        masker.transform(_run(shape=(8, 9, 11, 3)))
    with pytest.raises(ValueError, match="Following field of view errors were detected"):
        NiftiLabelsMasker(_labels(), mask_img=moved.slicer[..., 0], resampling_target=None).fit()


def test_fitted_images_keep_their_joblib_hash_when_read():
    joblib = pytest.importorskip("joblib")
    from bidsmask.image import get_data

    masker = NiftiMasker(mask_img=nib.Nifti1Image(np.ones((8, 9, 10)), AFFINE)).fit(_run())
    before = joblib.hash(masker.mask_img_)
    get_data(masker.mask_img_)
    assert joblib.hash(masker.mask_img_) == before


def test_multi_computed_mask_may_be_empty_as_nilearn():
    from nilearn.maskers import MultiNiftiMasker as Reference

    rng = np.random.default_rng(5)  # a 7 mm field of view at the origin: no grey matter there
    imgs = [nib.Nifti1Image(rng.random((7, 8, 9, 5)), np.eye(4)) for _ in range(2)]
    ours = MultiNiftiMasker(mask_strategy="gm-template").fit(imgs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = Reference(mask_strategy="gm-template").fit(imgs)
    assert ours.n_elements_ == int(ref.mask_img_.get_fdata().sum())
    assert_allclose(ours.mask_img_.get_fdata(), ref.mask_img_.get_fdata())
    assert ours.n_elements_ == 0
    with pytest.raises(ValueError, match="The mask is empty"):
        ours.transform(imgs)
    with pytest.raises(ValueError, match="The mask is invalid as it is empty"):
        NiftiMasker(mask_img=nib.Nifti1Image(np.zeros((8, 9, 10)), AFFINE)).fit()
    with pytest.raises(ValueError, match="masks all data"):  # NiftiMasker refuses it, as nilearn
        NiftiMasker(mask_strategy="gm-template").fit(imgs[0])


def test_mask_logger_shows_steps_from_verbose_1(capsys, tmp_path):
    from bidsmask.maskers import mask_logger

    path = tmp_path / "bold.nii.gz"
    nib.save(_run(), path)
    mask_logger("load_data", img=path, verbose=0)
    mask_logger("fit_done", verbose=0)
    assert capsys.readouterr().out == ""
    out = {}
    for verbose in (1, 2, 3):
        mask_logger("load_data", img=[_run()] * 4, verbose=verbose)
        out[verbose] = capsys.readouterr().out
    assert out[1].startswith("Loading data from") and len(out[1]) < len(out[2]) < len(out[3])
    mask_logger("load_data", img=path, verbose=1)
    short = capsys.readouterr().out
    mask_logger("load_data", img=path, verbose=2)
    assert short == "Loading data from bold.nii.gz\n"
    assert capsys.readouterr().out == f"Loading data from {path}\n"
    with pytest.raises(ValueError, match="'step' must be one of"):
        mask_logger("unknown")


def test_multi_masker_deprecated_template_strategy_warns_as_nilearn():
    rng = np.random.default_rng(6)
    imgs = [nib.Nifti1Image(rng.random((7, 8, 9, 5)), np.eye(4)) for _ in range(2)]
    with pytest.warns(UserWarning, match="Masking strategy 'template' is deprecated"):
        old = MultiNiftiMasker(mask_strategy="template").fit(imgs)
    new = MultiNiftiMasker(mask_strategy="whole-brain-template").fit(imgs)
    assert_allclose(old.mask_img_.get_fdata(), new.mask_img_.get_fdata())
    with pytest.raises(ValueError, match="Unknown value of mask_strategy 'template'"):
        NiftiMasker(mask_strategy="template").fit(imgs[0])
