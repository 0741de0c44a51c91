"""Region names follow label ids on every path (labels list, lut, TSV) when labels vanish.

Parity with nilearn 0.14: labels lost when the atlas is resampled to the data, or emptied by the
mask, never shift the names of the surviving regions, and ``lut_`` keeps their rows.
"""

import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from bidsmask.maskers import NiftiLabelsMasker

DATA_SHAPE = (8, 8, 6)
DATA_AFFINE = np.diag([3.0, 3.0, 3.0, 1.0])
ATLAS_SHAPE = (24, 24, 18)
ATLAS_AFFINE = np.eye(4)  # data voxel (i, j, k) is atlas voxel (3i, 3j, 3k)
IDS = (1, 2, 3, 5, 6, 40)  # 1, 2, 3 sit between data voxel centres: resampling drops them
NAMES = [f"region_{i}" for i in IDS]


def _atlas() -> np.ndarray:
    labels = np.zeros(ATLAS_SHAPE, dtype=np.int32)
    labels[3:12, 3:21, 3:15] = 5
    labels[12:18, 3:21, 3:15] = 40
    labels[18:22, 3:21, 3:15] = 6
    labels[1, 1, 1], labels[1, 2, 1], labels[2, 2, 2] = 1, 2, 3
    return labels


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    bold = 50 + rng.standard_normal((*DATA_SHAPE, 20))
    return {
        "img": nib.Nifti1Image(bold.astype(np.float32), DATA_AFFINE),
        "atlas": nib.Nifti1Image(_atlas(), ATLAS_AFFINE),
    }


def _fit_both(img, **kwargs):
    from nilearn.maskers import NiftiLabelsMasker as Reference

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = NiftiLabelsMasker(**kwargs)
        ref = Reference(**kwargs)
        out = ours.fit_transform(img)
        expected = ref.fit_transform(img)
    return ours, ref, out, expected


def _lut_frame():
    return pd.DataFrame({"index": [0, *IDS], "name": ["Background", *NAMES]})


@pytest.mark.parametrize("names_from", ["labels", "lut", "tsv"])
def test_vanishing_labels_keep_their_names(data, names_from, tmp_path):
    kwargs = {"labels_img": data["atlas"], "resampling_target": "data"}
    if names_from == "labels":
        kwargs["labels"] = list(NAMES)
    elif names_from == "lut":
        kwargs["lut"] = _lut_frame()
    else:
        path = tmp_path / "atlas_dseg.tsv"
        _lut_frame().to_csv(path, sep="\t", index=False)
        kwargs["lut"] = path
    with pytest.warns(UserWarning, match="labels were removed"):
        NiftiLabelsMasker(**kwargs).fit(data["img"])
    ours, ref, out, expected = _fit_both(data["img"], **kwargs)
    survivors = {0: 5, 1: 6, 2: 40}
    assert {i: ours.region_ids_[i] for i in survivors} == survivors
    assert ours.region_names_ == {0: "region_5", 1: "region_6", 2: "region_40"}
    assert ours.region_names_ == ref.region_names_
    assert {k: int(v) for k, v in ours.region_ids_.items()} == {
        k: int(v) for k, v in ref.region_ids_.items()
    }
    assert list(ours.get_feature_names_out()) == ["region_5", "region_6", "region_40"]
    # lut_ keeps the rows of the vanished labels, as nilearn's
    assert ours.lut_["index"].tolist() == [0, *IDS]
    assert ours.lut_["name"].tolist() == ["Background", *NAMES]
    assert ours.lut_["index"].tolist() == ref.lut_["index"].astype(int).tolist()
    assert ours.lut_["name"].tolist() == ref.lut_["name"].tolist()
    assert_allclose(out, expected, rtol=1e-5)


def test_labels_emptied_by_mask_keep_names(data):
    mask = np.ones(DATA_SHAPE, dtype=np.uint8)
    mask[4:6] = 0  # atlas voxels 12..17 on the first axis: label 40
    kwargs = {
        "labels_img": data["atlas"],
        "labels": list(NAMES),
        "mask_img": nib.Nifti1Image(mask, DATA_AFFINE),
    }
    ours, ref, out, expected = _fit_both(data["img"], **kwargs)
    assert ours.region_names_ == {0: "region_5", 1: "region_6"}
    assert ours.region_names_ == ref.region_names_
    assert_allclose(out, expected, rtol=1e-5)


def test_non_contiguous_ids_on_the_data_grid(data):
    atlas = np.zeros(DATA_SHAPE, dtype=np.int32)
    atlas[1:3], atlas[3:5], atlas[5:7] = 7, 3, 12
    img = nib.Nifti1Image(atlas, DATA_AFFINE)
    names = ["three", "seven", "twelve"]
    ours, ref, out, expected = _fit_both(data["img"], labels_img=img, labels=names)
    assert ours.region_names_ == {0: "three", 1: "seven", 2: "twelve"}
    assert ours.region_names_ == ref.region_names_
    assert_allclose(out, expected, rtol=1e-5)


def test_keep_masked_labels_is_deprecated_like_nilearn(data):
    masker = NiftiLabelsMasker(data["atlas"], labels=list(NAMES), keep_masked_labels=True)
    with pytest.warns(FutureWarning, match='"keep_masked_labels" parameter will be removed'):
        masker.fit_transform(data["img"])
    assert masker.region_names_ == {0: "region_5", 1: "region_6", 2: "region_40"}


@pytest.mark.parametrize("names_from", ["labels", "lut"])
def test_set_output_pandas_columns_are_region_names_like_nilearn(data, names_from):
    kwargs = {"labels_img": data["atlas"]}
    kwargs["labels" if names_from == "labels" else "lut"] = (
        list(NAMES) if names_from == "labels" else _lut_frame()
    )
    ours, ref, _, _ = _fit_both(data["img"], **kwargs)
    ours.set_output(transform="pandas")
    ref.set_output(transform="pandas")
    got = ours.transform(data["img"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = ref.transform(data["img"])
    assert isinstance(got, pd.DataFrame)
    assert list(got.columns) == list(expected.columns) == ["region_5", "region_6", "region_40"]
    assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-5)
    back = ours.inverse_transform(got)
    assert back.shape == (*DATA_SHAPE, 20)
    with pytest.raises(ValueError, match="'transform' must be one of"):
        ours.set_output(transform="arrow")
    polars = pytest.importorskip("polars")
    ref.set_output(transform="polars")
    got = ours.set_output(transform="polars").transform(data["img"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = ref.transform(data["img"])
    assert isinstance(got, polars.DataFrame)
    assert got.columns == expected.columns == ["region_5", "region_6", "region_40"]
    assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-5)
    assert ours.inverse_transform(got).shape == (*DATA_SHAPE, 20)
    assert isinstance(ours.set_output(transform="default").transform(data["img"]), np.ndarray)
