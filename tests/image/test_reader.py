import gzip

import nibabel as nib
import numpy as np
import pytest

from bidsmask.image import _reader


@pytest.fixture
def img4d(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.normal(size=(6, 7, 5, 11)).astype(np.float32)
    img = nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.5, 1.0]))
    path = tmp_path / "bold.nii.gz"
    img.to_filename(path)
    return path, data


@pytest.mark.parametrize("chunk_volumes", [1, 3, 4, 11, 50, None])
def test_iter_chunks_covers_run_in_order(img4d, chunk_volumes):
    path, data = img4d
    pieces = list(_reader.iter_chunks(path, chunk_volumes=chunk_volumes))
    starts = [sl.start for sl, _ in pieces]
    assert starts == sorted(starts) and starts[0] == 0
    assert pieces[-1][0].stop == 11
    out = np.concatenate([chunk for _, chunk in pieces], axis=-1)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, data)
    for sl, chunk in pieces:
        assert chunk.shape == (6, 7, 5, sl.stop - sl.start)


def test_iter_chunks_3d_and_scaling(tmp_path):
    data = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    img = nib.Nifti1Image(data, np.eye(4))
    img.header.set_slope_inter(2.0, 1.0)
    path = tmp_path / "vol.nii"
    img.to_filename(path)
    ((sl, chunk),) = list(_reader.iter_chunks(path, dtype=np.float64))
    assert sl == slice(0, 1)
    assert chunk.shape == (3, 4, 5, 1) and chunk.dtype == np.float64
    np.testing.assert_array_equal(chunk[..., 0], data * 2.0 + 1.0)


def test_chunks_are_fresh_arrays():
    data = np.ones((3, 3, 3, 4), dtype=np.float32)
    img = nib.Nifti1Image(data, np.eye(4))
    for _, chunk in _reader.iter_chunks(img, chunk_volumes=2):
        chunk[:] = 5
    assert np.all(data == 1)


def test_iter_masked_chunks_matches_boolean_indexing(img4d):
    path, data = img4d
    mask = np.zeros(data.shape[:3], dtype=bool)
    mask[1:5, 2:6, 1:4] = True
    out = np.concatenate([c for _, c in _reader.iter_masked_chunks(path, mask, chunk_volumes=4)])
    np.testing.assert_array_equal(out, data[mask].T)
    assert out.shape == (11, mask.sum())


def test_iter_masked_chunks_errors(img4d):
    path, data = img4d
    with pytest.raises(ValueError, match=r"mask shape \(2, 2, 2\)"):
        list(_reader.iter_masked_chunks(path, np.ones((2, 2, 2), bool)))
    with pytest.raises(TypeError, match="boolean"):
        list(_reader.iter_masked_chunks(path, np.ones(data.shape[:3], int)))


def test_open_img_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.nii.gz"):
        _reader.open_img(tmp_path / "missing.nii.gz")
    with pytest.raises(TypeError, match="nibabel"):
        _reader.open_img(3)
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(gzip.compress(b"not a nifti"))
    with pytest.raises(ValueError, match="bad.nii.gz"):
        _reader.open_img(bad)
    with pytest.raises(ValueError, match="chunk_volumes"):
        list(_reader.iter_chunks(nib.Nifti1Image(np.zeros((2, 2, 2, 2)), np.eye(4)), 0))


def test_open_img_keeps_gzip_file_open(img4d):
    path, _ = img4d
    img = _reader.open_img(path)
    assert img.dataobj._keep_file_open


def test_default_chunk_volumes():
    # 32 MiB / (97 * 115 * 97 * 4 bytes) = 7.75: chunks stay below glibc's 32 MiB mmap threshold
    assert _reader.default_chunk_volumes((97, 115, 97), 4) == 7
    assert _reader.default_chunk_volumes((512, 512, 512), 8, budget_bytes=1) == 1


def _write_gz(path, img, members=1):
    """Write img as a gzip file made of `members` concatenated gzip members."""
    raw = img.to_bytes() if hasattr(img, "to_bytes") else None
    cut = np.linspace(0, len(raw), members + 1).astype(int)
    path.write_bytes(
        b"".join(gzip.compress(raw[a:b]) for a, b in zip(cut[:-1], cut[1:], strict=True))
    )


@pytest.mark.parametrize("members", [1, 3])
@pytest.mark.parametrize("disk_dtype", ["<f4", ">f4", "<i2", ">f8"])
def test_gzip_stream_matches_nibabel(tmp_path, members, disk_dtype):
    rng = np.random.default_rng(1)
    data = (rng.normal(size=(5, 6, 4, 9)) * 100).astype(disk_dtype)
    img = nib.Nifti1Image(data, np.eye(4))
    if np.dtype(disk_dtype).kind == "i":
        img.header.set_slope_inter(0.5, -3.0)
    path = tmp_path / "bold.nii.gz"
    _write_gz(path, img, members)
    loaded = _reader.open_img(path)
    assert _reader._can_stream_gzip(loaded)
    expected = np.asarray(nib.load(path).dataobj, dtype=np.float64)
    for dtype in (np.float32, np.float64):
        out = np.concatenate([c for _, c in _reader.iter_chunks(path, 4, dtype=dtype)], axis=-1)
        assert out.dtype == dtype and out.flags.writeable
        np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_gzip_stream_truncated_and_early_close(tmp_path):
    img = nib.Nifti1Image(np.ones((8, 8, 8, 12), np.float32), np.eye(4))
    path = tmp_path / "short.nii.gz"
    path.write_bytes(gzip.compress(img.to_bytes()[: 352 + 8**3 * 4 * 5]))
    chunks = _reader.iter_chunks(path, chunk_volumes=2)
    assert next(chunks)[1].shape == (8, 8, 8, 2)
    with pytest.raises(ValueError, match="short.nii.gz.* truncated"):
        list(chunks)
    full = tmp_path / "full.nii.gz"
    img.to_filename(full)
    chunks = _reader.iter_chunks(full, chunk_volumes=3)
    next(chunks)
    chunks.close()
    corrupt = tmp_path / "corrupt.nii.gz"
    raw = bytearray(full.read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 64] = b"\xff" * 64
    corrupt.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="corrupt.nii.gz"):
        list(_reader.iter_chunks(corrupt, chunk_volumes=3))


def test_gzip_stream_with_standard_zlib(img4d, monkeypatch):
    import zlib

    path, data = img4d
    monkeypatch.setattr(_reader, "_zlib", zlib)
    monkeypatch.setattr(_reader._GzipStream, "_BLOCK", 64)
    monkeypatch.setattr(_reader._GzipStream, "_PIECE", 100)
    out = np.concatenate([c for _, c in _reader.iter_chunks(path, chunk_volumes=3)], axis=-1)
    np.testing.assert_array_equal(out, data)
