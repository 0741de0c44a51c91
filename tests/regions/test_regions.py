"""Tests of bidsmask.regions: reductions, specs and the single-pass extract, against nilearn."""

import warnings

import nibabel as nib
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from bidsmask.regions import (
    LABEL_STRATEGIES,
    LabelsSpec,
    MapsSpec,
    SpheresSpec,
    VoxelSpec,
    extract,
    reduce_labels,
    reduce_maps,
)

SHAPE = (12, 13, 11)
AFFINE = np.array([[3.0, 0, 0, -18], [0, 3, 0, -20], [0, 0, 3, -15], [0, 0, 0, 1]])


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="module")
def bold(rng):
    data = 100 + 10 * rng.standard_normal((*SHAPE, 17)).astype(np.float32)
    return nib.Nifti1Image(data, AFFINE)


@pytest.fixture(scope="module")
def labels(rng):
    lab = rng.integers(0, 7, size=SHAPE).astype(np.int32)
    lab[lab == 5] = 9  # non-contiguous ids; region 5 absent
    return lab


@pytest.fixture(scope="module")
def mask():
    m = np.zeros(SHAPE, dtype=bool)
    m[2:10, 1:11, 2:9] = True
    return m


@pytest.fixture(scope="module")
def maps(rng):
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in SHAPE], indexing="ij"), axis=-1)
    centres = rng.uniform(2, 9, size=(5, 3))
    out = np.stack([np.exp(-np.sum((grid - c) ** 2, axis=-1) / 8.0) for c in centres], axis=-1)
    out[out < 0.05] = 0
    return out.astype(np.float32)


@pytest.mark.parametrize("strategy", LABEL_STRATEGIES)
@pytest.mark.parametrize("with_mask", [False, True])
def test_labels_match_nilearn(bold, labels, mask, strategy, with_mask):
    from nilearn.regions import img_to_signals_labels

    labels_img = nib.Nifti1Image(labels, AFFINE)
    mask_img = nib.Nifti1Image(mask.astype(np.int8), AFFINE) if with_mask else None
    expected, ids, _ = img_to_signals_labels(bold, labels_img, mask_img=mask_img, strategy=strategy)
    spec = LabelsSpec(labels, mask if with_mask else None, strategy=strategy)
    (got,) = extract(bold, [spec], chunk_volumes=5)
    assert_array_equal(spec.region_ids, ids)
    assert got.dtype == np.float32
    assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_labels_coverage_and_counts(labels, mask):
    spec = LabelsSpec(labels, mask)
    for i, rid in enumerate(spec.region_ids):
        assert spec.voxel_counts[i] == np.sum((labels == rid) & mask)
        assert spec.coverage[i] == pytest.approx(
            np.sum((labels == rid) & mask) / np.sum(labels == rid)
        )
    full = LabelsSpec(labels)
    assert_allclose(full.coverage, 1.0)


def test_labels_masked_region_dropped_or_kept(bold, labels):
    mask = labels != 3
    with pytest.warns(UserWarning, match="removed"):
        spec = LabelsSpec(labels, mask)
    assert 3 not in spec.region_ids
    kept = LabelsSpec(labels, mask, keep_masked_labels=True)
    col = list(kept.region_ids).index(3)
    assert kept.coverage[col] == 0
    out = extract(bold, [kept])[0]
    assert_array_equal(out[:, col], 0)


def test_labels_errors(labels):
    with pytest.raises(ValueError, match="'strategy' must be one of"):
        LabelsSpec(labels, strategy="mode")
    with pytest.raises(ValueError, match="no label"):
        LabelsSpec(np.zeros(SHAPE))
    with pytest.raises(ValueError, match="No label left"):
        LabelsSpec(labels, np.zeros(SHAPE, dtype=bool))


@pytest.mark.parametrize("with_mask", [False, True])
def test_maps_match_nilearn_lstsq(bold, maps, mask, with_mask):
    from nilearn.regions import img_to_signals_maps

    maps_img = nib.Nifti1Image(maps, AFFINE)
    mask_img = nib.Nifti1Image(mask.astype(np.int8), AFFINE) if with_mask else None
    expected, ids = img_to_signals_maps(bold, maps_img, mask_img=mask_img)
    spec = MapsSpec(maps, mask if with_mask else None)
    (got,) = extract(bold, [spec], chunk_volumes=4)
    assert_array_equal(spec.region_ids, ids)
    assert_allclose(got, expected, rtol=1e-3, atol=1e-3)


def test_reduce_maps_is_lstsq(rng):
    maps = rng.random((50, 4))
    data = rng.standard_normal((6, 50)).astype(np.float32)
    expected = np.linalg.lstsq(maps, data.T.astype(np.float64), rcond=None)[0].T
    assert_allclose(reduce_maps(data, maps), expected, rtol=1e-5, atol=1e-6)


def test_maps_masked_map_dropped(maps):
    mask = np.zeros(SHAPE, dtype=bool)
    first = maps[..., 0] > 0
    mask[first & (maps[..., 1:].sum(axis=-1) == 0)] = True
    with pytest.warns(UserWarning, match="removed"):
        spec = MapsSpec(maps, mask)
    assert_array_equal(spec.region_ids, [0])
    assert spec.voxel_counts[0] == mask.sum()
    weight = np.abs(maps[..., 0].astype(np.float64))
    assert spec.coverage[0] == pytest.approx(weight[mask].sum() / weight.sum())
    kept = MapsSpec(maps, mask, keep_masked_maps=True)
    assert kept.n_elements == 5


def _nilearn_spheres(img, seeds, radius, mask_img=None, allow_overlap=False):
    from nilearn.maskers import NiftiSpheresMasker

    masker = NiftiSpheresMasker(
        seeds, radius=radius, mask_img=mask_img, allow_overlap=allow_overlap
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return masker.fit_transform(img)


SEEDS = [(-3.2, -2.0, 1.1), (6.0, 4.5, -3.0), (0.4, 9.9, 6.2)]


@pytest.mark.parametrize("radius", [None, 3.0, 4.5, 7.0])
@pytest.mark.parametrize("with_mask", [False, True])
def test_spheres_match_nilearn(bold, mask, radius, with_mask):
    mask_img = nib.Nifti1Image(mask.astype(np.int8), AFFINE) if with_mask else None
    overlap = radius is not None and radius > 5
    expected = _nilearn_spheres(bold, SEEDS, radius, mask_img, allow_overlap=overlap)
    spec = SpheresSpec(
        SEEDS, AFFINE, SHAPE, radius, mask if with_mask else None, allow_overlap=overlap
    )
    (got,) = extract(bold, [spec], chunk_volumes=6)
    assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_spheres_overlap_and_empty_errors():
    with pytest.raises(ValueError, match="Overlap detected"):
        SpheresSpec([(0, 0, 0), (3, 0, 0)], AFFINE, SHAPE, radius=6)
    with pytest.raises(ValueError, match="empty"):
        SpheresSpec([(500, 0, 0)], AFFINE, SHAPE, radius=3)


def test_spheres_integer_image_not_truncated(rng):
    """nilearn 0.14 truncates sphere means of integer images; bidsmask does not."""
    data = rng.integers(0, 5, size=(*SHAPE, 4)).astype(np.int16)
    img = nib.Nifti1Image(data, AFFINE)
    seeds = [(0.0, 1.0, 0.0)]
    spec = SpheresSpec(seeds, AFFINE, SHAPE, radius=6.0)
    (got,) = extract(img, [spec])
    flat = data.reshape(-1, 4)[spec.voxels].astype(np.float64)
    assert_allclose(got[:, 0], flat.mean(axis=0), rtol=1e-6)
    nilearn_means = _nilearn_spheres(img, seeds, 6.0)
    assert_array_equal(nilearn_means[:, 0], np.trunc(got[:, 0]))
    assert np.any(got[:, 0] != nilearn_means[:, 0])


def test_spheres_coverage(mask):
    spec = SpheresSpec([SEEDS[0]], AFFINE, SHAPE, radius=7.0, mask=mask)
    full = SpheresSpec([SEEDS[0]], AFFINE, SHAPE, radius=7.0)
    assert spec.coverage[0] == pytest.approx(spec.voxel_counts[0] / full.voxel_counts[0])


def test_voxel_spec_is_apply_mask_order(bold, mask):
    (got,) = extract(bold, [VoxelSpec(mask)], chunk_volumes=7)
    assert_array_equal(got, np.asarray(bold.dataobj)[mask].T)


def test_single_pass_feeds_every_spec(bold, labels, maps, mask):
    specs = [
        LabelsSpec(labels, strategy="median"),
        MapsSpec(maps),
        SpheresSpec(SEEDS, AFFINE, SHAPE, radius=3.0),
        VoxelSpec(mask),
        LabelsSpec(labels, mask),
    ]
    together = extract(bold, specs, chunk_volumes=3)
    for spec, got in zip(specs, together, strict=True):
        (alone,) = extract(bold, [spec])
        assert got.shape == (17, spec.n_elements)
        assert_allclose(got, alone, rtol=1e-6)


def test_extract_3d_image_and_nan(bold, labels):
    data = np.asarray(bold.dataobj)[..., 0].copy()
    data[0, 0, 0] = np.nan
    img = nib.Nifti1Image(data, AFFINE)
    (got,) = extract(img, [LabelsSpec(labels, strategy="sum")])
    assert got.shape == (1, 6)
    clean = np.nan_to_num(data)
    expected = [clean[labels == i].sum() for i in (1, 2, 3, 4, 6, 9)]
    assert_allclose(got[0], expected, rtol=1e-5)


def test_extract_rejects_spec_on_other_grid(bold):
    spec = VoxelSpec(np.ones((4, 4, 4), dtype=bool))
    with pytest.raises(ValueError, match="grid of shape"):
        extract(bold, [spec])
    with pytest.raises(ValueError, match="at least one spec"):
        extract(bold, [])


def test_reduce_labels_strategies():
    data = np.array([[1.0, 3.0, 10.0, 4.0], [2.0, 2.0, 0.0, 8.0]])
    labels = np.array([2, 2, 5, 5])
    assert_allclose(reduce_labels(data, labels, "mean"), [[2, 7], [2, 4]])
    assert_allclose(reduce_labels(data, labels, "median"), [[2, 7], [2, 4]])
    assert_allclose(reduce_labels(data, labels, "minimum"), [[1, 4], [2, 0]])
    assert_allclose(reduce_labels(data, labels, "maximum"), [[3, 10], [2, 8]])
    assert_allclose(reduce_labels(data, labels, "variance"), [[1, 9], [0, 16]])
    assert_allclose(reduce_labels(data, labels, "standard_deviation"), [[1, 3], [0, 4]])


def test_extract_from_file_matches_in_memory(bold, labels, mask, tmp_path):
    """Files give Fortran-ordered chunks (gathered volume by volume); arrays may not."""
    path = tmp_path / "bold.nii.gz"
    nib.save(bold, path)
    specs = [VoxelSpec(mask), LabelsSpec(labels, strategy="maximum")]
    from_file = extract(path, specs, chunk_volumes=4)
    in_memory = extract(bold, specs, chunk_volumes=5)
    for a, b in zip(from_file, in_memory, strict=True):
        assert_array_equal(a, b)
    assert_array_equal(from_file[0], np.asarray(bold.dataobj)[mask].T)


def test_read_ahead_order_errors_and_early_stop():
    from bidsmask.regions._pass import _read_ahead

    assert list(_read_ahead(iter(range(7)))) == list(range(7))

    def failing():
        yield 1
        raise OSError("truncated file")

    with pytest.raises(OSError, match="truncated"):
        list(_read_ahead(failing()))
    reader = _read_ahead(iter(range(100)))
    assert next(reader) == 0
    reader.close()  # the producer thread stops instead of blocking on a full queue


def test_extract_error_in_a_chunk_stops_the_reader(bold, labels):
    import threading

    class Broken(LabelsSpec):
        def reduce(self, data):
            raise RuntimeError("reduction failed")

    with pytest.raises(RuntimeError, match="reduction failed"):
        extract(bold, [Broken(labels, strategy="median")], chunk_volumes=2)
    assert not any(t.name == "bidsmask-read-ahead" for t in threading.enumerate())


@pytest.mark.parametrize("reduce_bytes", [1, 4 * 1800 * 5, 2**26])
def test_buffered_reductions_match(bold, labels, maps, monkeypatch, reduce_bytes):
    """Gathered chunks are reduced in batches; any batch size gives the same signals."""
    import bidsmask.regions._pass

    specs = [LabelsSpec(labels, strategy="median"), MapsSpec(maps), VoxelSpec(labels > 0)]
    expected = extract(bold, specs, chunk_volumes=17)
    monkeypatch.setattr(bidsmask.regions._pass, "_REDUCE_BYTES", reduce_bytes)
    for got, ref in zip(extract(bold, specs, chunk_volumes=2), expected, strict=True):
        assert_allclose(got, ref, rtol=1e-6, atol=1e-5)


def test_maps_spec_memory_order_and_non_finite(bold, maps):
    """Fortran-ordered maps (NIfTI slices) and C-ordered ones give the same sparse operator."""
    with_nan = maps.copy()
    with_nan[0, 0, 0, 1] = np.nan
    with_nan[1, 0, 0, 2] = np.inf
    zeroed = np.nan_to_num(with_nan, nan=0.0, posinf=0.0)
    ref = MapsSpec(zeroed)
    for arr in (with_nan, np.asfortranarray(with_nan)):
        spec = MapsSpec(arr)
        assert_array_equal(spec.voxels, ref.voxels)
        assert_array_equal(spec.voxel_counts, np.count_nonzero(zeroed, axis=(0, 1, 2)))
        assert_allclose(spec.operator.toarray(), zeroed.reshape(-1, 5)[ref.voxels].T)
        assert_allclose(extract(bold, [spec])[0], extract(bold, [ref])[0], rtol=1e-6)


def test_single_pass_sums_of_squares_with_other_operators(bold, labels, maps, mask):
    """Variance/std labels share the stacked sparse product with maps and spheres."""
    specs = [
        MapsSpec(maps, mask),
        LabelsSpec(labels, strategy="variance"),
        SpheresSpec(SEEDS, AFFINE, SHAPE, radius=3.0),
        LabelsSpec(labels, mask, strategy="standard_deviation"),
        LabelsSpec(labels, strategy="minimum"),
    ]
    together = extract(bold, specs, chunk_volumes=4)
    data = np.asarray(bold.dataobj).reshape(-1, 17)
    for spec, got in zip(specs, together, strict=True):
        assert_allclose(got, spec.reduce(data[spec.voxels].T), rtol=1e-5, atol=1e-5)
    flat = labels.ravel()
    expected = [data[flat == i].var(axis=0) for i in specs[1].region_ids]
    assert_allclose(together[1], np.stack(expected, axis=1), rtol=1e-4)


def test_maps_spec_from_image_file(maps, mask, tmp_path):
    """A maps image is streamed (one read); the spec equals the one built from the array."""
    path = tmp_path / "maps.nii.gz"
    nib.save(nib.Nifti1Image(maps, AFFINE), path)
    ref = MapsSpec(maps, mask)
    for source in (nib.load(path), nib.load(path).dataobj):
        spec = MapsSpec(source, mask)
        assert spec.shape == SHAPE
        assert_array_equal(spec.voxels, ref.voxels)
        assert_allclose(spec.operator.toarray(), ref.operator.toarray())
    nib.save(nib.Nifti1Image(maps[..., 2], AFFINE), tmp_path / "one.nii.gz")
    one = MapsSpec(nib.load(tmp_path / "one.nii.gz"))
    assert one.n_elements == 1
    assert_array_equal(one.voxels, np.flatnonzero(maps[..., 2]))


def test_reduce_maps_rank_deficient_is_minimum_norm_lstsq(rng):
    """Duplicated and all-zero maps: the minimum-norm solution, as lstsq (and nilearn) give."""
    maps = rng.random((60, 3))
    maps = np.column_stack([maps, maps[:, 0], np.zeros(60)])
    data = rng.standard_normal((5, 60)).astype(np.float32)
    expected = np.linalg.lstsq(maps, data.T.astype(np.float64), rcond=None)[0].T
    got = reduce_maps(data, maps)
    assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert_array_equal(got[:, 4], 0)
    assert_allclose(got[:, 0], got[:, 3], rtol=1e-5)


def test_maps_coverage_is_a_share_of_weight_not_of_voxels():
    """Resampled maps ring: tiny values far from the blob must not make coverage small."""
    shape = (12, 12, 12)
    maps = np.full((*shape, 2), 1e-6, dtype=np.float32)  # interpolation residue everywhere
    maps[2:5, 2:5, 2:5, 0] = 1.0  # blob 0: 27 voxels, inside the mask
    maps[8:11, 8:11, 8:11, 1] = 1.0  # blob 1: outside the mask
    mask = np.zeros(shape, dtype=bool)
    mask[1:6, 1:6, 1:6] = True
    spec = MapsSpec(maps, mask, keep_masked_maps=True)
    weight = np.abs(maps.astype(np.float64))
    expected = (weight * mask[..., None]).sum(axis=(0, 1, 2)) / weight.sum(axis=(0, 1, 2))
    np.testing.assert_allclose(spec.coverage, expected)
    assert spec.coverage[0] > 0.99 and spec.coverage[1] < 0.01
    # a voxel count would say 125 / 1728 for both maps
    np.testing.assert_array_equal(spec.voxel_counts, [125, 125])
