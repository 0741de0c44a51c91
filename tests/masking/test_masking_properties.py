"""Property tests (hypothesis) for apply_mask / unmask and intersect_masks."""

import nibabel as nib
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from nilearn import masking as nmasking
from numpy.testing import assert_array_equal

from bidsmask import masking

shapes = st.tuples(*[st.integers(1, 6)] * 3)


@st.composite
def image_and_mask(draw):
    shape = draw(shapes)
    n_vols = draw(st.integers(1, 4))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int16, np.uint8]))
    elements = (
        st.integers(0, 100) if np.dtype(dtype).kind in "iu" else st.floats(-1e3, 1e3, width=32)
    )
    data = draw(arrays(dtype, (*shape, n_vols), elements=elements))
    mask = draw(arrays(np.bool_, shape))
    mask.flat[draw(st.integers(0, mask.size - 1))] = True
    affine = np.diag([*draw(st.tuples(*[st.sampled_from([1.0, 2.0, 3.33])] * 3)), 1.0])
    return nib.Nifti1Image(data, affine), nib.Nifti1Image(mask.astype(np.uint8), affine)


@settings(max_examples=40, deadline=None)
@given(image_and_mask())
def test_apply_mask_matches_boolean_indexing_and_nilearn(pair):
    img, mask_img = pair
    data = np.asarray(img.dataobj)
    mask = np.asarray(mask_img.dataobj).astype(bool)
    series = masking.apply_mask(img, mask_img)
    expected_dtype = data.dtype if data.dtype.kind == "f" else np.float32
    assert series.dtype == expected_dtype
    assert series.shape == (data.shape[3], mask.sum())
    assert_array_equal(series, data[mask].T.astype(expected_dtype))
    assert_array_equal(series, nmasking.apply_mask(img, mask_img))


@settings(max_examples=40, deadline=None)
@given(image_and_mask())
def test_unmask_apply_mask_roundtrip(pair):
    img, mask_img = pair
    mask = np.asarray(mask_img.dataobj).astype(bool)
    series = masking.apply_mask(img, mask_img)
    back = masking.unmask(series, mask_img)
    back_data = np.asarray(back.dataobj)
    assert back_data.dtype == series.dtype
    assert_array_equal(back_data[~mask], 0)
    assert_array_equal(masking.apply_mask(back, mask_img), series)
    one = masking.unmask(series[0], mask_img)
    assert one.shape == mask.shape
    assert_array_equal(np.asarray(one.dataobj)[mask], series[0])


@settings(max_examples=40, deadline=None)
@given(
    shape=shapes,
    n_masks=st.integers(1, 5),
    threshold=st.floats(0, 1),
    connected=st.booleans(),
    data=st.data(),
)
def test_intersect_masks_matches_nilearn_and_bounds(shape, n_masks, threshold, connected, data):
    masks = [data.draw(arrays(np.bool_, shape)) for _ in range(n_masks)]
    imgs = [nib.Nifti1Image(m.astype(np.uint8), np.eye(4)) for m in masks]
    got = np.asarray(masking.intersect_masks(imgs, threshold, connected).dataobj)
    expected = np.asarray(nmasking.intersect_masks(imgs, threshold, connected).dataobj)
    assert_array_equal(got, expected)
    stack = np.stack(masks)
    assert not np.any(got & ~stack.any(0))
    if not connected:
        if threshold == 1:
            assert_array_equal(got, stack.all(0))
        if threshold == 0:
            assert_array_equal(got, stack.any(0))
