"""Parcel means over grayordinates (bidsmask.regions._grayordinates), against numpy by hand."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from bidsmask.regions import (
    GrayordinateSpec,
    extract_grayordinates,
    qualifying,
    reduce_grayordinates,
)


def _reference(data, labels, region_ids):
    """Mean of each region's columns that are finite throughout and not all zero."""
    ok = np.isfinite(data).all(0) & (np.nan_to_num(data) != 0).any(0)
    out = np.zeros((data.shape[0], len(region_ids)))
    for i, rid in enumerate(region_ids):
        cols = (labels == rid) & ok
        if cols.any():
            out[:, i] = data[:, cols].mean(1)
    return out


@pytest.fixture
def data_and_labels():
    rng = np.random.default_rng(3)
    data = rng.normal(100, 10, (23, 60)).astype(np.float32)
    labels = rng.integers(0, 6, 60)
    data[:, 4] = np.nan  # non-finite throughout
    data[:, 7] = 0.0  # all zero
    data[[2, 11, 20], 9] = np.inf  # non-finite at some volumes only
    data[5, 13] = np.nan
    return data, labels


@pytest.mark.parametrize("chunk", [1, 4, 23, None])
def test_means_exclude_nonfinite_and_zero_columns(data_and_labels, chunk):
    data, labels = data_and_labels
    spec = GrayordinateSpec(labels)
    (signals,), qualified = extract_grayordinates(data, [spec], chunk_grayordinates=chunk)
    assert_array_equal(spec.region_ids, [1, 2, 3, 4, 5])
    assert_allclose(signals, _reference(data, labels, [1, 2, 3, 4, 5]), rtol=1e-6)
    assert signals.dtype == np.float32
    expected = np.ones(60, bool)
    expected[[4, 7, 9, 13]] = False
    expected[labels == 0] = False  # never read
    assert_array_equal(qualified, expected)


def test_coverage_counts_atlas_grayordinates_missing_from_data(data_and_labels):
    data, labels = data_and_labels
    # region 1 has 3 more grayordinates in the atlas than in the data; region 9 none in the data
    sizes = [np.sum(labels == r) + (3 if r == 1 else 0) for r in (1, 2, 3, 4, 5)] + [7]
    spec = GrayordinateSpec(labels, region_ids=[1, 2, 3, 4, 5, 9], atlas_sizes=sizes)
    (signals,), qualified = extract_grayordinates(data, [spec])
    ok = qualifying(data)
    counts = [np.sum(ok & (labels == r)) for r in (1, 2, 3, 4, 5)] + [0]
    assert_array_equal(spec.counts(qualified), counts)
    assert_allclose(spec.coverage(qualified), np.array(counts) / sizes)
    assert_array_equal(signals[:, 5], 0.0)


def test_several_specs_one_pass_match_each_alone(data_and_labels):
    data, labels = data_and_labels
    other = np.where(np.arange(60) < 30, 0, np.arange(60) % 4 + 1)  # uses the second half only
    specs = [GrayordinateSpec(labels), GrayordinateSpec(other)]
    together, _ = extract_grayordinates(data, specs, chunk_grayordinates=5)
    for spec, signals in zip(specs, together, strict=True):
        (alone,), _ = extract_grayordinates(data, [spec])
        assert_allclose(signals, alone, rtol=1e-6)
    assert_allclose(together[1], _reference(data, other, [1, 2, 3, 4]), rtol=1e-6)


def test_reduce_grayordinates_by_hand():
    data = np.array([[1.0, 3.0, np.nan, 4.0, 0.0], [2.0, 4.0, 1.0, 6.0, 0.0]])
    assert_allclose(reduce_grayordinates(data, np.array([1, 1, 2, 2, 2])), [[2, 4], [3, 6]])


def test_spec_errors():
    with pytest.raises(ValueError, match="no region"):
        GrayordinateSpec(np.zeros(5, int))
    with pytest.raises(ValueError, match="1D"):
        GrayordinateSpec(np.ones((2, 5), int))
    with pytest.raises(ValueError, match="atlas_sizes"):
        GrayordinateSpec(np.array([1, 2]), atlas_sizes=[1])
    spec = GrayordinateSpec(np.array([1, 2, 0]))
    with pytest.raises(ValueError, match="built for 3 grayordinates"):
        extract_grayordinates(np.ones((4, 5)), [spec])
    with pytest.raises(ValueError, match="at least one spec"):
        extract_grayordinates(np.ones((4, 5)), [])
