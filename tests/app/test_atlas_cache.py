"""Atlases prepared once per grid (bidsmask.app.atlas_cache): values, disk cache, concurrency."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from bidsmask.app import atlas_cache
from bidsmask.image import resample_img
from bidsmask.regions import MapsSpec, SparseMaps

SOURCE_AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])
SOURCE_AFFINE[:3, 3] = [-20.0, -22.0, -18.0]
GRID_SHAPE = (13, 15, 11)
GRID_AFFINE = np.diag([3.0, 3.0, 3.33, 1.0])
GRID_AFFINE[:3, 3] = [-20.5, -22.5, -18.5]


@pytest.fixture(autouse=True)
def _fresh_memory():
    atlas_cache._memory.clear()
    yield
    atlas_cache._memory.clear()


def _maps(seed: int = 0, n_maps: int = 5) -> np.ndarray:
    """Gaussian blobs (zero far from their centres), float32, on a 20 × 22 × 18 grid."""
    rng = np.random.default_rng(seed)
    ijk = np.indices((20, 22, 18)).reshape(3, -1).T
    maps = np.zeros((20, 22, 18, n_maps), np.float32)
    for k in range(n_maps):
        centre = rng.uniform(4, 14, 3)
        blob = np.exp(-np.sum((ijk - centre) ** 2, axis=1) / 6.0).reshape(20, 22, 18)
        maps[..., k] = np.where(blob > 0.05, blob, 0)
    return maps


def _labels(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 9, (20, 22, 18)).astype(np.int16)
    labels[:3] = 0
    return labels


def _save(path: Path, data: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(data, SOURCE_AFFINE), path)
    return path


def test_values_equal_whole_volume_resampling(tmp_path):
    maps_file = _save(tmp_path / "maps.nii.gz", _maps())
    labels_file = _save(tmp_path / "labels.nii.gz", _labels())
    maps = atlas_cache.on_grid(maps_file, "maps", GRID_SHAPE, GRID_AFFINE, tmp_path / "cache")
    expected = np.asarray(
        resample_img(maps_file, GRID_AFFINE, GRID_SHAPE, "linear").dataobj, np.float32
    )
    assert isinstance(maps, SparseMaps) and maps.shape == GRID_SHAPE and maps.n_maps == 5
    dense = np.zeros((int(np.prod(GRID_SHAPE)), 5), np.float32)
    rows = np.repeat(np.arange(5), maps.sizes)
    dense[maps.indices, rows] = maps.values
    dense = dense.reshape(*GRID_SHAPE, 5)
    noise = 1e-12 * np.abs(expected).max()  # zero vs non-zero may differ in rounding noise only
    assert_allclose(dense, expected, rtol=2.5e-7, atol=noise)
    differ = (dense != 0) != (expected != 0)
    assert (np.abs(expected[differ]) <= noise).all() and (np.abs(dense[differ]) <= noise).all()
    assert maps.sizes.tolist() == np.count_nonzero(dense.reshape(-1, 5), axis=0).tolist()
    labels = atlas_cache.on_grid(labels_file, "labels", GRID_SHAPE, GRID_AFFINE, tmp_path / "cache")
    expected = np.asarray(resample_img(labels_file, GRID_AFFINE, GRID_SHAPE, "nearest").dataobj)
    assert_array_equal(labels, expected)
    assert labels.dtype == expected.dtype and not labels.flags.writeable


@pytest.mark.parametrize("kind", ["maps", "labels"])
def test_specs_from_the_cache_extract_what_nilearn_maskers_do(tmp_path, kind):
    """The app's atlases on the BOLD grid give nilearn 0.14's masker signals (its interpolation:
    trilinear for maps, nearest for labels), here on a flipped, shifted 3 × 3 × 3.33 mm grid."""
    from nilearn.maskers import NiftiLabelsMasker, NiftiMapsMasker

    from bidsmask.regions import LabelsSpec

    atlas = _save(tmp_path / "atlas.nii.gz", _maps(2, 6) if kind == "maps" else _labels(2))
    grid = GRID_AFFINE @ np.diag([-1.0, 1.0, 1.0, 1.0])
    grid[0, 3] = 19.5  # x flipped: the grid still covers the atlas
    rng = np.random.default_rng(4)
    data = rng.normal(100, 5, (*GRID_SHAPE, 12)).astype(np.float32)
    mask = np.zeros(GRID_SHAPE, bool)
    mask[2:11, 1:13, 1:10] = True
    bold = nib.Nifti1Image(data, grid)
    on_grid = atlas_cache.on_grid(atlas, kind, GRID_SHAPE, grid, tmp_path / "cache")
    if kind == "maps":
        spec = MapsSpec(on_grid, mask)
        reference = NiftiMapsMasker(atlas, mask_img=nib.Nifti1Image(mask.astype(np.uint8), grid))
    else:
        spec = LabelsSpec(on_grid, mask)
        reference = NiftiLabelsMasker(atlas, mask_img=nib.Nifti1Image(mask.astype(np.uint8), grid))
    expected = reference.fit_transform(bold)
    ours = spec.reduce(data.reshape(-1, 12)[spec.voxels].T)
    assert ours.shape == expected.shape
    assert_allclose(ours, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("keep_masked_maps", [True, False])
def test_maps_spec_from_sparse_maps_equals_spec_from_dense(keep_masked_maps):
    maps = _maps(1, 9)
    maps[..., [0, 4, 7, 8]] = 0  # empty maps first, between others and last
    maps[:4, ..., 5] = 0
    maps[1, 1, 1, 5] = 0.5  # a map only outside the mask
    mask = np.zeros(maps.shape[:3], bool)
    mask[4:15, 3:17, 2:12] = True
    dense = MapsSpec(maps, mask, keep_masked_maps=keep_masked_maps)
    sparse = MapsSpec(SparseMaps.from_maps(maps), mask, keep_masked_maps=keep_masked_maps)
    assert_array_equal(sparse.region_ids, dense.region_ids)
    assert_array_equal(sparse.voxel_counts, dense.voxel_counts)
    assert_array_equal(sparse.voxels, dense.voxels)
    assert_array_equal(sparse.coverage, dense.coverage)
    assert_array_equal(sparse.operator.toarray(), dense.operator.toarray())
    data = np.random.default_rng(2).normal(size=(7, dense.voxels.size)).astype(np.float32)
    assert_array_equal(sparse.reduce(data), dense.reduce(data))


def test_entry_on_disk_is_reused_and_a_changed_atlas_invalidates_it(tmp_path, monkeypatch):
    atlas = _save(tmp_path / "maps.nii.gz", _maps())
    cache = tmp_path / "cache"
    first = atlas_cache.on_grid(atlas, "maps", GRID_SHAPE, GRID_AFFINE, cache)
    entries = sorted(cache.glob("*.npz"))
    assert len(entries) == 1
    assert entries[0].stem == atlas_cache.cache_key(atlas, "linear", GRID_SHAPE, GRID_AFFINE)

    def no_resampling(*args):
        raise AssertionError("the atlas was resampled again")

    atlas_cache._memory.clear()  # as a new process: only the disk cache is left
    monkeypatch.setattr(atlas_cache, "_resample", no_resampling)
    again = atlas_cache.on_grid(atlas, "maps", GRID_SHAPE, GRID_AFFINE, cache)
    assert_array_equal(again.values, first.values) and assert_array_equal(
        again.indptr, first.indptr
    )
    # a renamed copy has the same content: same entry
    copy = tmp_path / "copy.nii.gz"
    copy.write_bytes(atlas.read_bytes())
    atlas_cache._memory.clear()
    atlas_cache.on_grid(copy, "maps", GRID_SHAPE, GRID_AFFINE, cache)
    # another grid or another atlas content: another entry
    with pytest.raises(AssertionError, match="resampled again"):
        atlas_cache.on_grid(atlas, "maps", (13, 15, 12), GRID_AFFINE, cache)
    monkeypatch.undo()
    time.sleep(0.01)
    _save(atlas, _maps(seed=5))
    changed = atlas_cache.on_grid(atlas, "maps", GRID_SHAPE, GRID_AFFINE, cache)
    assert len(list(cache.glob("*.npz"))) == 2
    assert changed.values.size != first.values.size or not np.array_equal(
        changed.values, first.values
    )
    expected = resample_img(atlas, GRID_AFFINE, GRID_SHAPE, interpolation="linear").dataobj
    assert changed.values.sum() == pytest.approx(expected.sum(), rel=1e-6)


def test_unreadable_entry_is_rebuilt(tmp_path, caplog):
    atlas = _save(tmp_path / "labels.nii.gz", _labels())
    cache = tmp_path / "cache"
    key = atlas_cache.cache_key(atlas, "nearest", GRID_SHAPE, GRID_AFFINE)
    cache.mkdir()
    (cache / f"{key}.npz").write_bytes(b"not a zip file")
    labels = atlas_cache.on_grid(atlas, "labels", GRID_SHAPE, GRID_AFFINE, cache)
    assert "unreadable" in caplog.text
    atlas_cache._memory.clear()
    assert_array_equal(atlas_cache.on_grid(atlas, "labels", GRID_SHAPE, GRID_AFFINE, cache), labels)


CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import numpy as np
    from bidsmask.app import atlas_cache

    atlas, cache, go, result = sys.argv[1:5]
    built = []
    resample = atlas_cache._resample

    def slow_resample(*args):
        built.append(1)
        time.sleep(1.0)  # both processes are inside on_grid while the first one builds
        return resample(*args)

    atlas_cache._resample = slow_resample
    while not Path(go).exists():
        time.sleep(0.01)
    affine = np.array(json.loads(sys.argv[5]))
    maps = atlas_cache.on_grid(atlas, "maps", (13, 15, 11), affine, cache)
    Path(result).write_text(json.dumps(
        {"built": len(built), "sum": float(maps.values.sum()), "n": int(maps.values.size)}
    ))
    """
)


def test_two_processes_building_one_entry_at_once(tmp_path):
    atlas = _save(tmp_path / "maps.nii.gz", _maps())
    cache, go = tmp_path / "shared-work" / "atlases", tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(atlas), str(cache), str(go)]
            + [str(tmp_path / f"result{i}.json"), json.dumps(GRID_AFFINE.tolist())],
            env=env,
        )
        for i in range(2)
    ]
    time.sleep(2.0)  # let both start (imports) and wait for the signal
    go.touch()
    assert [child.wait(timeout=120) for child in children] == [0, 0]
    results = [json.loads((tmp_path / f"result{i}.json").read_text()) for i in range(2)]
    assert sorted(r["built"] for r in results) == [0, 1]  # the second waited for the first
    assert results[0]["sum"] == results[1]["sum"] and results[0]["n"] == results[1]["n"]
    assert len(list(cache.glob("*.npz"))) == 1
    assert not list(cache.glob(".*tmp*"))  # no temporary file left behind
    expected = resample_img(atlas, GRID_AFFINE, GRID_SHAPE, interpolation="linear").dataobj
    assert results[0]["sum"] == pytest.approx(expected.sum(), rel=1e-6)


def test_prepare_counts_each_atlas_and_grid_once(tmp_path, monkeypatch):
    atlas = _save(tmp_path / "labels.nii.gz", _labels())
    calls = []
    resample = atlas_cache._resample
    monkeypatch.setattr(atlas_cache, "_resample", lambda *a: calls.append(a) or resample(*a))
    other = GRID_AFFINE.copy()
    other[0, 3] += 1.0
    items = [(atlas, "labels", GRID_SHAPE, GRID_AFFINE)] * 3 + [
        (atlas, "labels", GRID_SHAPE, other)
    ]
    assert atlas_cache.prepare(items, tmp_path / "cache") == 2
    assert len(calls) == 2
    atlas_cache.on_grid(atlas, "labels", GRID_SHAPE, GRID_AFFINE, tmp_path / "cache")
    assert len(calls) == 2
