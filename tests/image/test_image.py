import gzip
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nibabel.testing import data_path
from nilearn import image as nimage
from numpy.testing import assert_allclose, assert_array_equal

from bidsmask import image

EXAMPLE4D = Path(data_path) / "example4d.nii.gz"
REALDATA = Path(__file__).parents[3] / "shared" / "realdata"
BOLDREF = (
    REALDATA
    / "fmriprep_colornest/sub-colornest001/ses-1/func"
    / "sub-colornest001_ses-1_task-rest_run-1_space-MNI152NLin2009cAsym_boldref.nii.gz"
)
ANISO = np.array([[3.0, 0, 0, -90], [0, 3.0, 0, -120], [0, 0, 3.33, -60], [0, 0, 0, 1]])


def nilearn_quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


def synthetic(shape=(14, 16, 12), n_vols=5, dtype=np.float32, seed=0, nan=False):
    rng = np.random.default_rng(seed)
    grid = np.indices(shape).astype(float)
    centre = (np.array(shape) - 1)[:, None, None, None] / 2
    radius = np.array(shape)[:, None, None, None] / 3
    brain = (((grid - centre) / radius) ** 2).sum(0) < 1
    data = 100 + 900 * brain[..., None] + 50 * rng.normal(size=(*shape, n_vols))
    if np.dtype(dtype).kind == "i":
        data = np.round(data)
    data = data.astype(dtype)
    if nan:
        data[2, 3, 4] = np.nan
        data[5:7, 6, 5] = np.inf
    return nib.Nifti1Image(data if n_vols > 1 else data[..., 0], ANISO)


TARGETS = {
    "4x4-iso2": (np.array([[2.0, 0, 0, -91], [0, 2, 0, -121], [0, 0, 2, -61], [0, 0, 0, 1]]), None),
    "3x3-2.5": (np.eye(3) * 2.5, None),
    "oblique-shape": (
        np.array([[2.0, 0.3, 0, -85], [0, 2, 0, -115], [0, 0, 2.5, -55], [0, 0, 0, 1]]),
        (24, 26, 20),
    ),
}


@pytest.mark.parametrize("interpolation", ["continuous", "linear", "nearest"])
@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize(
    "dtype,n_vols,nan",
    [(np.float32, 1, False), (np.float32, 4, True), (np.int16, 3, False), (np.float64, 1, True)],
)
def test_resample_img_parity(interpolation, target, dtype, n_vols, nan):
    img = synthetic(dtype=dtype, n_vols=n_vols, nan=nan)
    target_affine, target_shape = TARGETS[target]
    expected = nilearn_quiet(
        nimage.resample_img,
        img,
        target_affine=target_affine,
        target_shape=target_shape,
        interpolation=interpolation,
        force_resample=True,
        copy_header=True,
    )
    got = image.resample_img(
        img, target_affine=target_affine, target_shape=target_shape, interpolation=interpolation
    )
    assert got.shape == expected.shape
    assert_allclose(got.affine, expected.affine)
    assert np.asarray(got.dataobj).dtype == np.asarray(expected.dataobj).dtype
    assert_allclose(np.asarray(got.dataobj), np.asarray(expected.dataobj), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("clip,fill_value", [(False, 0.0), (True, 7.0), (False, -3.0)])
def test_resample_img_clip_fill_parity(clip, fill_value):
    img = synthetic(n_vols=1)
    target_affine = np.array([[2.0, 0, 0, -100], [0, 2, 0, -130], [0, 0, 2, -70], [0, 0, 0, 1]])
    kwargs = dict(target_affine=target_affine, target_shape=(40, 40, 40), clip=clip)
    expected = nilearn_quiet(nimage.resample_img, img, fill_value=fill_value, **kwargs)
    got = image.resample_img(img, fill_value=fill_value, **kwargs)
    assert_allclose(got.get_fdata(), expected.get_fdata(), rtol=1e-4)
    assert got.get_fdata()[0, 0, 0] == (min(fill_value, 1000) if clip else fill_value)


def test_resample_to_img_parity_and_4d_target():
    source = synthetic(n_vols=3)
    target = synthetic(shape=(9, 10, 8), n_vols=2)
    target = nib.Nifti1Image(np.asarray(target.dataobj), np.diag([4.0, 4.5, 5.0, 1]))
    target.set_sform(target.affine @ nib.affines.from_matvec(np.eye(3), [-22, -25, -20]))
    expected = nilearn_quiet(nimage.resample_to_img, source, target)
    got = image.resample_to_img(source, target)
    assert got.shape == (9, 10, 8, 3)
    assert_allclose(got.get_fdata(), expected.get_fdata(), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("force_resample", [True, False])
@pytest.mark.parametrize("interpolation", ["continuous", "nearest"])
def test_resample_whole_voxel_shift_force_resample(force_resample, interpolation):
    """force_resample is accepted; bidsmask always interpolates (= nilearn's True, the default).

    nilearn's False takes a padding shortcut that, for this shift, does not return the shifted
    data (a documented deliberate difference); the interpolated result does.
    """
    img = synthetic(n_vols=2)
    target_affine = img.affine.copy()
    target_affine[:3, 3] -= img.affine[:3, :3] @ [2, -3, 1]  # whole-voxel translation
    kwargs = dict(
        target_affine=target_affine, target_shape=img.shape[:3], interpolation=interpolation
    )
    expected = nilearn_quiet(nimage.resample_img, img, force_resample=True, **kwargs)
    got = image.resample_img(img, force_resample=force_resample, copy_header=True, **kwargs)
    assert_allclose(got.get_fdata(), expected.get_fdata(), rtol=1e-4, atol=1e-3)
    data = img.get_fdata()
    assert_allclose(got.get_fdata()[2:, : 16 - 3, 1:], data[: 14 - 2, 3:, : 12 - 1], rtol=1e-4)
    to_img = image.resample_to_img(img, expected, force_resample=force_resample)
    assert_allclose(to_img.get_fdata(), got.get_fdata(), rtol=1e-6)


def test_resample_img_no_target_and_same_grid_copies():
    img = synthetic(n_vols=1)
    for kwargs in ({}, dict(target_affine=img.affine, target_shape=img.shape)):
        out = image.resample_img(img, **kwargs)
        assert out is not img
        assert_array_equal(out.get_fdata(), img.get_fdata())
        assert not np.shares_memory(np.asarray(out.dataobj), np.asarray(img.dataobj))


def test_resample_img_errors():
    img = synthetic(n_vols=1)
    with pytest.raises(ValueError, match="'interpolation' must be one of"):
        image.resample_img(img, np.eye(4), interpolation="cubic")
    with pytest.raises(ValueError, match="target_affine should be specified too"):
        image.resample_img(img, target_shape=(2, 2, 2))
    with pytest.raises(ValueError, match="anchor vector"):
        image.resample_img(img, np.eye(3), target_shape=(2, 2, 2))
    with pytest.raises(ValueError, match="length 3"):
        image.resample_img(img, np.eye(4), target_shape=(2, 2))
    far = np.eye(4)
    far[:3, 3] = 1000
    with pytest.raises(image.BoundingBoxError, match="does not contain any of the data"):
        image.resample_img(img, far)


@pytest.mark.parametrize("fwhm", [6.0, [4.0, 6.0, 9.0], "fast", None, [None, 5.0, 3.0], 0])
@pytest.mark.parametrize("dtype,n_vols", [(np.float32, 1), (np.float32, 3), (np.int16, 2)])
def test_smooth_img_parity(fwhm, dtype, n_vols):
    img = synthetic(dtype=dtype, n_vols=n_vols, nan=dtype == np.float32)
    expected = nilearn_quiet(nimage.smooth_img, img, fwhm)
    got = image.smooth_img(img, fwhm)
    assert np.asarray(got.dataobj).dtype == np.asarray(expected.dataobj).dtype
    assert_allclose(np.asarray(got.dataobj), np.asarray(expected.dataobj), rtol=1e-4, atol=1e-3)
    assert np.all(np.isfinite(np.asarray(got.dataobj)))


def test_smooth_img_list_and_array_chunks():
    img = synthetic(n_vols=6)
    out = image.smooth_img([img, img], 5.0)
    assert isinstance(out, list) and len(out) == 2
    data = np.asarray(img.dataobj)
    whole = image.smooth_array(data, img.affine, fwhm=5.0)
    parts = [image.smooth_array(data[..., i : i + 2], img.affine, fwhm=5.0) for i in (0, 2, 4)]
    assert_array_equal(np.concatenate(parts, axis=-1), whole)
    assert_array_equal(np.asarray(out[0].dataobj), whole)


def test_smooth_array_anisotropic_sigma():
    sigma = image.fwhm_to_sigma(6.0, ANISO)
    assert_allclose(sigma, 6.0 / np.sqrt(8 * np.log(2)) / np.array([3.0, 3.0, 3.33]))
    with pytest.raises(ValueError, match="fwhm must be"):
        image.smooth_array(np.zeros((3, 3, 3)), np.eye(4), fwhm="slow")
    with pytest.raises(ValueError, match="non-negative"):
        image.fwhm_to_sigma(-1.0, np.eye(4))


@pytest.mark.parametrize("dtype", [np.float32, np.int16, np.float64])
@pytest.mark.parametrize("target", [None, "3x3-2.5"])
def test_mean_img_parity(dtype, target):
    img = synthetic(dtype=dtype, n_vols=7)
    target_affine = TARGETS[target][0] if target else None
    expected = nilearn_quiet(nimage.mean_img, img, target_affine=target_affine)
    got = image.mean_img(img, target_affine=target_affine)
    assert got.shape == expected.shape
    assert np.asarray(got.dataobj).dtype == np.asarray(expected.dataobj).dtype
    assert_allclose(np.asarray(got.dataobj), np.asarray(expected.dataobj), rtol=1e-5, atol=1e-3)


def test_mean_img_streams_file_and_lists(tmp_path):
    img = synthetic(n_vols=9)
    path = tmp_path / "bold.nii.gz"
    img.to_filename(path)
    expected = nilearn_quiet(nimage.mean_img, [img, synthetic(n_vols=9, seed=1)])
    got = image.mean_img([path, synthetic(n_vols=9, seed=1)])
    assert_allclose(got.get_fdata(), expected.get_fdata(), rtol=1e-5)
    mean, _ = image.compute_mean(path)
    assert_allclose(mean, np.asarray(img.dataobj, dtype=np.float64).mean(-1), rtol=1e-6)


def test_example4d_parity():
    img = nib.load(EXAMPLE4D)
    assert img.get_data_dtype() == np.int16
    for func, kwargs in [
        ("mean_img", {}),
        ("smooth_img", {"fwhm": 6.0}),
        ("resample_img", {"target_affine": np.eye(3) * 3, "interpolation": "linear"}),
    ]:
        expected = nilearn_quiet(getattr(nimage, func), img, **kwargs)
        got = getattr(image, func)(EXAMPLE4D, **kwargs)
        assert_allclose(got.get_fdata(), expected.get_fdata(), rtol=1e-4, atol=1e-3)


@pytest.mark.skipif(not BOLDREF.exists(), reason="shared real data absent")
@pytest.mark.parametrize(
    "func,kwargs",
    [
        ("smooth_img", {"fwhm": 6.0}),
        ("smooth_img", {"fwhm": [4.0, 5.0, 8.0]}),
        (
            "resample_img",
            {
                "target_affine": np.array(
                    [[2.0, 0, 0, -96.5], [0, 2, 0, -132.5], [0, 0, 2, -78.5], [0, 0, 0, 1]]
                ),
                "target_shape": (97, 115, 97),
            },
        ),
        ("resample_img", {"target_affine": np.eye(3) * 4, "interpolation": "nearest"}),
    ],
)
def test_real_boldref_parity(func, kwargs):
    img = nib.load(BOLDREF)
    expected = nilearn_quiet(getattr(nimage, func), img, **kwargs)
    got = getattr(image, func)(BOLDREF, **kwargs)
    assert got.shape == expected.shape
    assert_allclose(got.get_fdata(), expected.get_fdata(), rtol=1e-4, atol=1e-2)


def test_check_niimg_dimensionality_errors():
    img4d = synthetic(n_vols=3)
    with pytest.raises(
        image.DimensionError,
        match="Expected dimension is 3D and you provided a 4D image",
    ):
        image.check_niimg_3d(img4d)
    with pytest.raises(TypeError, match="Expected dimension is 4D and you provided a 3D image"):
        image.check_niimg_4d(synthetic(n_vols=1))
    squeezed = image.check_niimg_3d(nib.Nifti1Image(np.ones((2, 2, 2, 1)), np.eye(4)))
    assert squeezed.shape == (2, 2, 2)
    assert image.check_niimg(synthetic(n_vols=1), atleast_4d=True).shape == (14, 16, 12, 1)
    with pytest.raises(ValueError, match="expects 3D or 4D images, but 2 dimensions"):
        image.check_niimg(nib.Nifti1Image(np.ones((2, 2)), np.eye(4)))


def test_check_niimg_paths_lists_and_dtype(tmp_path):
    paths = []
    for i in range(3):
        vol = synthetic(n_vols=1, seed=i, dtype=np.int16)
        paths.append(tmp_path / f"vol{i}.nii.gz")
        vol.to_filename(paths[-1])
    img = image.check_niimg(paths)
    assert img.shape == (14, 16, 12, 3)
    assert img.get_data_dtype() == np.int16
    assert_array_equal(np.asarray(img.dataobj)[..., 2], np.asarray(nib.load(paths[2]).dataobj))
    assert image.check_niimg_4d(str(tmp_path / "vol*.nii.gz")).shape == (14, 16, 12, 3)
    loaded = image.load_img(paths[0], dtype="auto")
    assert np.asarray(loaded.dataobj).dtype == np.int32
    lazy = image.load_img(paths[0])
    assert nib.is_proxy(lazy.dataobj)
    with pytest.raises(image.DimensionError, match="Expected dimension is 4D"):
        image.check_niimg([synthetic(n_vols=2)] * 2, ensure_ndim=4)
    with pytest.raises(ValueError, match="differs from image #0"):
        image.concat_imgs([paths[0], synthetic(shape=(5, 5, 5), n_vols=1)])


def test_check_niimg_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.nii.gz"):
        image.check_niimg(tmp_path / "nothere.nii.gz")
    with pytest.raises(FileNotFoundError, match=r"No files matching"):
        image.check_niimg(str(tmp_path / "*.nii"))
    with pytest.raises(TypeError, match="not compatible with nibabel"):
        image.check_niimg(3.5)
    bad_affine = nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4))
    bad_affine._affine[0, 0] = np.nan
    with pytest.raises(ValueError, match="affine .* is not finite"):
        image.check_niimg(bad_affine)
    garbage = tmp_path / "garbage.nii.gz"
    garbage.write_bytes(gzip.compress(b"\0" * 100))
    with pytest.raises(ValueError, match="garbage.nii.gz"):
        image.check_niimg(garbage)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_truncated_file_names_the_file(tmp_path, suffix):
    path = tmp_path / f"bold{suffix}"
    synthetic(n_vols=4).to_filename(path)
    raw = gzip.decompress(path.read_bytes()) if suffix == ".nii.gz" else path.read_bytes()
    raw = raw[: len(raw) // 2]
    path.write_bytes(gzip.compress(raw) if suffix == ".nii.gz" else raw)
    with pytest.raises(ValueError, match=f"bold{suffix.replace('.', '[.]')}"):
        image.get_data(image.check_niimg(path))


def test_new_img_like_matches_nilearn(tmp_path):
    from nilearn.image import new_img_like as reference

    ref = synthetic(dtype=np.float32, n_vols=1)
    ref.header["descrip"] = b"kept"
    data = np.arange(np.prod(ref.shape)).reshape(ref.shape).astype(np.int64)
    with pytest.warns(UserWarning, match="converted to int32"):
        ours = image.new_img_like(ref, data)  # copy_header=True by default, as nilearn 0.14
    expected = reference(ref, data)
    assert ours.header["descrip"] == expected.header["descrip"] == b"kept"
    assert np.asarray(ours.dataobj).dtype == np.asarray(expected.dataobj).dtype == np.int32
    assert (
        image.new_img_like(ref, data.astype(np.int32), copy_header=False).header["descrip"]
        == reference(ref, data.astype(np.int32), copy_header=False).header["descrip"]
    )
    big = np.full(ref.shape, 2**40, dtype=np.int64)
    with pytest.warns(UserWarning, match="too large"):
        kept = image.new_img_like(ref, big)
    assert np.asarray(kept.dataobj).dtype == np.asarray(reference(ref, big).dataobj).dtype
    assert np.asarray(kept.dataobj).dtype == np.int64
    # a bare SpatialImage header has no NIfTI fields to reset
    bare = nib.spatialimages.SpatialImage(np.zeros((2, 2, 2)), np.eye(4))
    assert image.new_img_like(bare, np.ones((2, 2, 2))).shape == (2, 2, 2)
    # MGH images keep their class
    mgh = nib.MGHImage(np.zeros((3, 3, 3), np.float32), np.eye(4))
    out = image.new_img_like(mgh, np.ones((3, 3, 3), np.float32))
    assert type(out) is type(reference(mgh, np.ones((3, 3, 3), np.float32))) is nib.MGHImage


def test_new_img_like_rules():
    ref = synthetic(dtype=np.int16, n_vols=1)
    ref.header.set_slope_inter(2.0, 1.0)
    mask = image.new_img_like(ref, np.ones(ref.shape, bool))
    assert mask.get_data_dtype() == np.uint8
    assert_array_equal(mask.affine, ref.affine)
    with pytest.warns(UserWarning, match="64-bit ints"):
        ints = image.new_img_like(ref, np.ones(ref.shape, np.int64), copy_header=True)
    assert np.asarray(ints.dataobj).dtype == np.int32
    assert ints.header["scl_slope"] in (0, 1) or np.isnan(ints.header["scl_slope"])
    floats = image.new_img_like(ref, np.full(ref.shape, 0.5, np.float32), copy_header=True)
    assert floats.get_data_dtype() == np.float32
    pair = nib.Nifti1Pair(np.zeros((2, 2, 2)), np.eye(4))
    assert type(image.new_img_like(pair, np.zeros((2, 2, 2)))) is nib.Nifti1Image
    with pytest.raises(TypeError, match="reference image should be a niimg"):
        image.new_img_like(3, np.zeros((2, 2, 2)))


@pytest.mark.parametrize(
    "index", [0, -1, slice(1, 4), [0, 3, 2], np.array([True, False, True, False, True]), []]
)
def test_index_img_parity(tmp_path, index):
    img = synthetic(n_vols=5)
    path = tmp_path / "bold.nii.gz"
    img.to_filename(path)
    expected = nimage.index_img(img, index)
    got = image.index_img(path, index)
    assert got.shape == expected.shape
    assert_array_equal(np.asarray(got.dataobj), np.asarray(expected.dataobj))
    with pytest.raises(IndexError, match="out of range"):
        image.index_img(img, 5)


def test_iter_img_and_concat_imgs_parity(tmp_path):
    img = synthetic(n_vols=4, dtype=np.int16)
    vols = list(image.iter_img(img))
    assert len(vols) == 4 and vols[0].shape == (14, 16, 12)
    for got, expected in zip(vols, nimage.iter_img(img), strict=True):
        assert_array_equal(np.asarray(got.dataobj), np.asarray(expected.dataobj))
    got = image.concat_imgs(vols)
    assert_array_equal(np.asarray(got.dataobj), np.asarray(img.dataobj, dtype=np.float32))
    assert np.asarray(got.dataobj).dtype == np.float32
    other = synthetic(shape=(10, 10, 10), n_vols=1)
    expected = nilearn_quiet(nimage.concat_imgs, [vols[0], other], auto_resample=True)
    got = image.concat_imgs([vols[0], other], auto_resample=True)
    assert_allclose(got.get_fdata(), expected.get_fdata(), rtol=1e-4, atol=1e-3)
    with pytest.raises(TypeError, match="empty"):
        image.concat_imgs([])


def test_fixture_run_parity(one_run):
    for key, func, kwargs in [
        ("bold", "mean_img", {}),
        ("bold", "smooth_img", {"fwhm": 6.0}),
        ("boldref", "resample_img", {"target_affine": np.eye(3) * 5.0}),
        ("boldref", "resample_img", {"target_affine": np.eye(3) * 3.0, "interpolation": "linear"}),
    ]:
        expected = nilearn_quiet(getattr(nimage, func), nib.load(one_run[key]), **kwargs)
        got = getattr(image, func)(one_run[key], **kwargs)
        assert got.shape == expected.shape
        assert_allclose(got.get_fdata(), expected.get_fdata(), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("target_affine", [[1, 2, 3], [[1, 2, 3]], np.eye(4).ravel(), np.ones(9)])
def test_malformed_target_affine_raises_linalgerror_like_nilearn(target_affine):
    img = synthetic(n_vols=1)
    for func in (image.resample_img, nimage.resample_img):
        with pytest.raises(np.linalg.LinAlgError):
            func(img, target_affine=target_affine, interpolation="nearest")
