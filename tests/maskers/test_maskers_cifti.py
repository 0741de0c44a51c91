"""CiftiLabelsMasker: Workbench parity without cleaning, cleaning as signal.clean, masker API."""

import pickle
import shutil
import subprocess

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nibabel import cifti2
from numpy.testing import assert_allclose, assert_array_equal

from bidsmask import signal
from bidsmask.datagen import (
    atlas_brain_models,
    block_parcellation,
    small_grayordinates,
    write_dlabel,
    write_dtseries,
)
from bidsmask.maskers import CiftiLabelsMasker, NotFittedError

WB = shutil.which("wb_command")


@pytest.fixture
def files(tmp_path):
    axis = small_grayordinates()
    dtseries = write_dtseries(tmp_path / "bold.dtseries.nii", axis, 40, t_r=2.0, nan_columns=[7])
    atlas_axis = atlas_brain_models(axis, "cortex")
    dlabel = write_dlabel(
        tmp_path / "atlas.dlabel.nii", atlas_axis, block_parcellation(atlas_axis, 3, 0), {1: "L1"}
    )
    return tmp_path, axis, dtseries, dlabel


def raw_means(dtseries, dlabel):
    """Parcel means by hand from the whole file in memory (the data's own layout here)."""
    img = nib.load(dtseries)
    data = np.asarray(img.dataobj)
    atlas = nib.load(dlabel)
    labels = np.zeros(data.shape[1], int)
    labels[: atlas.shape[1]] = np.asarray(atlas.dataobj)[0]  # the cortex comes first in both
    ok = np.isfinite(data).all(0) & (np.nan_to_num(data) != 0).any(0)
    return np.stack([data[:, (labels == r) & ok].mean(1) for r in range(1, 7)], axis=1)


def test_fit_transform_without_cleaning_is_the_parcel_mean(files):
    _, axis, dtseries, dlabel = files
    masker = CiftiLabelsMasker(dlabel)
    signals = masker.fit_transform(dtseries)
    assert signals.shape == (40, 6)
    assert_allclose(signals, raw_means(dtseries, dlabel), rtol=1e-5)
    assert masker.region_names_ == {0: "L1", 1: "parcel2", 2: "parcel3", 3: "parcel4",
                                    4: "parcel5", 5: "parcel6"}  # fmt: skip
    assert masker.region_ids_ == {"background": 0, **{i: i + 1 for i in range(6)}}
    # vertex 7 (NaN) is the 8th data vertex of the left mesh, in parcel 1 of 40 vertices
    assert_allclose(masker.region_coverage_[0], (masker.region_grayordinate_counts_[0] - 1) / 40)
    assert_array_equal(masker.get_feature_names_out(), list(masker.region_names_.values()))
    assert masker.n_elements_ == 6
    assert list(masker.lut_["name"])[:2] == ["Background", "L1"]


@pytest.mark.skipif(WB is None, reason="wb_command not installed")
def test_transform_matches_workbench(files):
    folder, _, dtseries, dlabel = files
    out = folder / "wb.ptseries.nii"
    subprocess.run(
        [WB, "-cifti-parcellate", dtseries, dlabel, "COLUMN", out, "-only-numeric"], check=True
    )
    signals = CiftiLabelsMasker(dlabel).fit().transform(dtseries)
    assert_allclose(signals, np.asarray(nib.load(out).dataobj), rtol=1e-4)


def test_cleaning_is_signal_clean_of_the_means(files):
    folder, _, dtseries, dlabel = files
    rng = np.random.default_rng(0)
    confounds = rng.standard_normal((40, 3))
    sample_mask = np.arange(2, 40)
    params = dict(detrend=True, standardize="zscore_sample", high_pass=0.01, low_pass=0.2)
    masker = CiftiLabelsMasker(dlabel, **params).fit(dtseries)
    cleaned = masker.transform(dtseries, confounds=confounds, sample_mask=sample_mask)
    expected = signal.clean(
        raw_means(dtseries, dlabel), confounds=confounds, sample_mask=sample_mask, t_r=2.0, **params
    )
    assert cleaned.shape == (38, 6)
    assert_allclose(cleaned, expected, rtol=1e-4, atol=1e-5)
    pd.DataFrame(confounds, columns=["a", "b", "c"]).to_csv(folder / "c.tsv", sep="\t", index=False)
    from_file = masker.transform(dtseries, confounds=str(folder / "c.tsv"), sample_mask=sample_mask)
    assert_allclose(from_file, cleaned, rtol=1e-5)


def test_high_variance_confounds_come_from_all_grayordinates(files):
    _, _, dtseries, dlabel = files
    data = np.nan_to_num(np.asarray(nib.load(dtseries).dataobj, dtype=np.float32))
    expected = signal.clean(
        raw_means(dtseries, dlabel),
        confounds=[signal.high_variance_confounds(data)],
        t_r=2.0,
        detrend=False,
        standardize=False,
    )
    masker = CiftiLabelsMasker(dlabel, high_variance_confounds=True)
    assert_allclose(masker.fit_transform(dtseries), expected, rtol=1e-4, atol=1e-3)


def test_transform_realigns_to_another_layout_without_changing_the_masker(files):
    folder, axis, dtseries, dlabel = files
    masker = CiftiLabelsMasker(dlabel).fit(dtseries)
    before = dict(masker.__dict__)
    # the same data written with the right cortex first: matched by structure, not position
    img = nib.load(dtseries)
    data = np.asarray(img.dataobj)
    parts = {n: (s, p) for n, s, p in axis.iter_structures()}
    order = ["CIFTI_STRUCTURE_CORTEX_RIGHT", "CIFTI_STRUCTURE_CORTEX_LEFT"]
    new_axis = parts[order[0]][1] + parts[order[1]][1]
    columns = np.concatenate([np.arange(len(axis))[parts[n][0]] for n in order])
    other = cifti2.Cifti2Image(data[:, columns], header=(img.header.get_axis(0), new_axis))
    assert_allclose(masker.transform(other), masker.transform(dtseries), rtol=1e-6)
    assert masker.__dict__.keys() == before.keys()
    assert masker.brain_models_ is before["brain_models_"]


def test_inverse_transform_paints_parcels(files):
    _, axis, dtseries, dlabel = files
    masker = CiftiLabelsMasker(dlabel).fit(dtseries)
    values = np.arange(1, 7, dtype=np.float32)
    dscalar = masker.inverse_transform(values)
    assert dscalar.nifti_header.get_intent()[0] == "ConnDenseScalar"
    dense = np.asarray(dscalar.dataobj)[0]
    labels = np.zeros(len(axis))
    labels[:204] = block_parcellation(atlas_brain_models(axis, "cortex"), 3, 0)
    assert_array_equal(dense, labels)  # label r gets r, the subcortex 0
    series = masker.inverse_transform(np.tile(values, (5, 1)))
    assert series.shape == (5, len(axis))
    assert series.header.get_axis(0).step == 2.0
    assert series.nifti_header.get_intent()[0] == "ConnDenseSeries"
    with pytest.raises(ValueError, match="wrong shape"):
        masker.inverse_transform(np.ones(5))


def test_names_from_labels_or_lut(files):
    folder, _, dtseries, dlabel = files
    names = [f"n{i}" for i in range(6)]
    assert list(CiftiLabelsMasker(dlabel, labels=names).fit().region_names_.values()) == names
    lut = pd.DataFrame({"index": range(1, 7), "name": names})
    lut.to_csv(folder / "lut.tsv", sep="\t", index=False)
    fitted = CiftiLabelsMasker(dlabel, lut=str(folder / "lut.tsv")).fit()
    assert list(fitted.region_names_.values()) == names
    with pytest.raises(ValueError, match="'labels' has 2 names for 6 regions"):
        CiftiLabelsMasker(dlabel, labels=["a", "b"]).fit()
    with pytest.raises(ValueError, match="not both"):
        CiftiLabelsMasker(dlabel, labels=names, lut=lut).fit()


def test_parameter_errors_and_unfitted(files):
    _, _, dtseries, dlabel = files
    with pytest.raises(NotFittedError):
        CiftiLabelsMasker(dlabel).transform(dtseries)
    with pytest.raises(TypeError, match="needs 'labels_img'"):
        CiftiLabelsMasker().fit()
    with pytest.raises(ValueError, match="'strategy' must be one of"):
        CiftiLabelsMasker(dlabel, strategy="median").fit()
    with pytest.raises(ValueError, match="'standardize' must be one of"):
        CiftiLabelsMasker(dlabel, standardize="nope").fit()
    with pytest.raises(ValueError, match="not a CIFTI-2 file"):
        CiftiLabelsMasker(dlabel).fit().transform(
            nib.Nifti1Image(np.zeros((2, 2, 2, 2)), np.eye(4))
        )


def test_sklearn_clone_and_pickle(files):
    sklearn_base = pytest.importorskip("sklearn.base")
    _, _, dtseries, dlabel = files
    masker = CiftiLabelsMasker(dlabel, detrend=True)
    clone = sklearn_base.clone(masker)
    assert clone.get_params() == masker.get_params()
    masker.fit(dtseries)
    restored = pickle.loads(pickle.dumps(masker))
    assert_allclose(restored.transform(dtseries), masker.transform(dtseries))
    assert "detrend=True" in repr(masker)


def test_generate_report(files, tmp_path):
    _, _, dtseries, dlabel = files
    masker = CiftiLabelsMasker(dlabel).fit(dtseries)
    report = masker.generate_report()
    html = report._repr_html_()
    assert "left cortex" in html and "right cortex" in html and "subcortex" in html
    assert "L1" in html and "data:image/svg+xml;base64," in html
    report.save_as_html(tmp_path / "report.html")
    assert (tmp_path / "report.html").stat().st_size > 1000
