"""check_niimg / iter_check_niimg options and errors, against nilearn's behaviour."""

import nibabel as nib
import numpy as np
import pytest
from nibabel.freesurfer.mghformat import MGHImage
from nilearn import image as nimage
from numpy.testing import assert_array_equal

from bidsmask import image


def vol(shape=(4, 5, 3), seed=0, affine=None):
    data = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    return nib.Nifti1Image(data, np.eye(4) if affine is None else affine)


def test_check_niimg_return_iterator_matches_nilearn():
    img4d = vol((4, 5, 3, 6))
    got = image.check_niimg(img4d, return_iterator=True)
    expected = nimage.check_niimg(img4d, return_iterator=True)
    for one, ref in zip(got, expected, strict=True):
        assert one.shape == (4, 5, 3)
        assert_array_equal(one.get_fdata(), ref.get_fdata())
    volumes = [vol(seed=i) for i in range(3)]
    got = list(image.check_niimg_4d(volumes, return_iterator=True))
    assert [one.shape for one in got] == [(4, 5, 3)] * 3
    assert_array_equal(got[2].get_fdata(), volumes[2].get_fdata())
    with pytest.raises(image.DimensionError, match="Expected dimension is 4D .* a 3D image"):
        image.check_niimg(vol(), return_iterator=True)
    assert len(list(image.check_niimg(vol(), atleast_4d=True, return_iterator=True))) == 1


def test_iter_check_niimg_checks_each_image_lazily(tmp_path):
    first, other = vol(), vol(affine=np.diag([2.0, 2.0, 2.0, 1.0]))
    images = image.iter_check_niimg([first, other])
    assert_array_equal(next(images).get_fdata(), first.get_fdata())
    with pytest.raises(ValueError, match="Field of view of image #1 is different"):
        next(images)
    with pytest.warns(UserWarning, match="Affine is different"):
        resampled = list(image.iter_check_niimg([first, other], target_fov="first"))
    assert resampled[1].shape == first.shape
    assert_array_equal(resampled[1].affine, first.affine)
    with pytest.raises(ValueError, match="Input niimgs list is empty"):
        list(image.iter_check_niimg([]))
    with pytest.raises(ValueError, match="No files matching path"):
        list(image.iter_check_niimg(str(tmp_path / "none*.nii")))
    path = tmp_path / "one.nii.gz"
    first.to_filename(path)
    (loaded,) = image.iter_check_niimg([path])
    assert_array_equal(loaded.get_fdata(), first.get_fdata())


def test_missing_files_are_file_not_found_and_value_errors(tmp_path):
    missing = tmp_path / "absent.nii.gz"
    for error in (FileNotFoundError, ValueError, image.ImageNotFoundError):
        with pytest.raises(error, match=f"File not found: '{missing}'"):
            image.check_niimg(missing)
    with pytest.raises(ValueError, match="You may have left wildcards usage activated"):
        image.load_img(str(tmp_path / "no*file"))
    vol().to_filename(tmp_path / "a[1].nii.gz")
    assert image.load_img(tmp_path / "a[1].nii.gz", wildcards=False).shape == (4, 5, 3)


def test_dimension_errors_count_the_lists():
    img3d, img4d = vol(), vol((4, 5, 3, 2))
    with pytest.raises(image.DimensionError, match=r"a list of 4D images \(5D\)"):
        image.concat_imgs([img4d], ensure_ndim=4)
    with pytest.raises(image.DimensionError, match=r"Expected dimension is 2D .* \(6D\)"):
        image.check_niimg([[[img3d, img3d]]], ensure_ndim=2)
    with pytest.raises(TypeError, match="input should be a NiftiLike object"):
        image.check_niimg_4d([img3d, np.zeros((4, 5, 3))], return_iterator=True)
    with pytest.raises(TypeError, match="Concatenated images must be 3D or 4D"):
        five = nib.Nifti1Image(np.ones((2, 2, 2, 2, 2)), np.eye(4))
        image.concat_imgs([five, five])
    with pytest.raises(ValueError, match="expects 3D or 4D images, but 2 dimensions"):
        image.check_niimg(nib.Nifti1Image(np.ones((3, 3)), np.eye(4)))


def test_concat_imgs_accepts_nilearn_keywords():
    imgs = [vol(seed=i) for i in range(3)]
    got = image.concat_imgs(imgs, verbose=1, memory=None, memory_level=0)
    assert_array_equal(got.get_fdata(), nimage.concat_imgs(imgs).get_fdata())


def test_new_img_like_mgh_float64_data():
    ref = MGHImage(np.zeros((3, 4, 5), dtype=np.uint8), np.eye(4))
    data = np.random.default_rng(0).normal(size=(3, 4, 5))
    out = image.new_img_like(ref, data, ref.affine)
    expected = nimage.new_img_like(ref, data, ref.affine)
    assert type(out) is MGHImage
    assert_array_equal(np.asarray(out.dataobj), np.asarray(expected.dataobj))


def test_get_data_accepts_paths_and_patterns(tmp_path):
    volumes = [vol(seed=i) for i in range(2)]
    for i, one in enumerate(volumes):
        one.to_filename(tmp_path / f"img_{i}.nii.gz")
    assert_array_equal(image.get_data(tmp_path / "img_0.nii.gz"), nimage.get_data(volumes[0]))
    both = image.get_data(str(tmp_path / "img_*.nii.gz"))
    assert_array_equal(both, nimage.get_data(str(tmp_path / "img_*.nii.gz")))
    assert both.shape == (4, 5, 3, 2)
    in_memory = vol()
    assert image.get_data(in_memory) is np.asarray(in_memory.dataobj)
    on_disk = nib.load(tmp_path / "img_0.nii.gz")
    image.get_data(on_disk)
    assert not on_disk.in_memory  # a file's data are not cached in the image
