"""The fast dense CIFTI-2 reader (bidsmask._cifti_file via bidsmask.cifti.open_dense).

Oracle: nibabel's own reading of the same file (``nib.load`` and ``header.get_axis``): the
brain models, the rows (series or label table) and the data must be the same values.
"""

import shutil

import nibabel as nib
import numpy as np
import pytest
from nibabel import cifti2
from numpy.testing import assert_array_equal

from bidsmask import cifti
from bidsmask._cifti_file import BrainModels, read_dense
from bidsmask.datagen import (
    atlas_brain_models,
    block_parcellation,
    grayordinates_91k,
    small_grayordinates,
    write_dlabel,
    write_dtseries,
)


def assert_same_brain_models(ours, theirs):
    assert isinstance(ours, cifti2.BrainModelAxis)
    assert ours == theirs
    assert_array_equal(ours.name, theirs.name)
    assert_array_equal(ours.vertex, theirs.vertex)
    assert_array_equal(ours.voxel, theirs.voxel)
    assert_array_equal(ours.surface_mask, theirs.surface_mask)
    assert_array_equal(ours.volume_mask, theirs.volume_mask)
    assert ours.nvertices == theirs.nvertices
    assert ours.volume_shape == theirs.volume_shape
    if theirs.affine is None:
        assert ours.affine is None
    else:
        assert_array_equal(ours.affine, theirs.affine)


def assert_reads_like_nibabel(path):
    dense = read_dense(path)
    assert dense is not None
    img = nib.load(path)
    assert_same_brain_models(dense.axis, img.header.get_axis(1))
    assert dense.shape == img.shape
    assert_array_equal(np.asarray(dense.dataobj), np.asarray(img.dataobj))
    rows = img.header.get_axis(0)
    if isinstance(rows, cifti2.SeriesAxis):
        assert dense.series == (rows.start, rows.step)
    else:
        assert dense.series is None
    if isinstance(rows, cifti2.LabelAxis):
        assert dense.label_names == {k: v[0] for k, v in rows.label[0].items()}
    else:
        assert dense.label_names == {}
    return dense


@pytest.mark.parametrize("coverage", ["full", "cortex", "subcortex"])
def test_small_files_read_like_nibabel(tmp_path, coverage):
    axis = small_grayordinates()
    dense = assert_reads_like_nibabel(
        write_dtseries(tmp_path / "bold.dtseries.nii", axis, 12, t_r=1.5, nan_columns=[3])
    )
    assert dense.series == (0.0, 1.5)
    atlas_axis = atlas_brain_models(axis, coverage)
    labels = block_parcellation(
        atlas_axis, 3 if coverage != "subcortex" else 0, 2 if coverage != "cortex" else 0
    )
    dlabel = write_dlabel(tmp_path / "atlas.dlabel.nii", atlas_axis, labels)
    assert len(assert_reads_like_nibabel(dlabel).label_names) == labels.max() + 1


def test_91k_file_reads_like_nibabel(tmp_path):
    axis = grayordinates_91k()
    dense = assert_reads_like_nibabel(write_dtseries(tmp_path / "bold.dtseries.nii", axis, 3))
    assert_same_brain_models(dense.axis, axis)
    parts = [(n, s, len(p)) for n, s, p in dense.axis.iter_structures()]
    assert parts == [(n, s, len(p)) for n, s, p in axis.iter_structures()]
    assert len(parts) == 21


def test_real_tian_dlabel_reads_like_nibabel(realdata):
    dense = assert_reads_like_nibabel(
        realdata / "cifti" / "atlas-Tian_space-fsLR_den-32k_dseg.dlabel.nii"
    )
    assert dense.label_names[1] == "HIP-head-m-rh"


def test_brain_models_keep_nibabel_semantics():
    theirs = grayordinates_91k()
    ours = BrainModels(
        theirs.name,
        theirs.voxel,
        theirs.vertex,
        theirs.affine,
        theirs.volume_shape,
        theirs.nvertices,
    )
    assert_same_brain_models(ours[100:60000], theirs[100:60000])
    assert_same_brain_models(ours[:10] + ours[-10:], theirs[:10] + theirs[-10:])
    short = BrainModels("CortexLeft", vertex=[4, 2], nvertices={"CortexLeft": 10})
    assert_array_equal(short.name, ["CIFTI_STRUCTURE_CORTEX_LEFT"] * 2)
    with pytest.raises(ValueError, match="not a valid CIFTI brain structure"):
        BrainModels("Nowhere", vertex=[0], nvertices={"Nowhere": 1})


def test_other_files_go_through_nibabel(tmp_path):
    axis = small_grayordinates()
    path = write_dtseries(tmp_path / "bold.dtseries.nii", axis, 8, t_r=2.5)
    scaled = tmp_path / "scaled.dtseries.nii"
    shutil.copy(path, scaled)
    with open(scaled, "r+b") as f:
        header = nib.Nifti2Header.from_fileobj(f)
        header["scl_slope"] = 2.0
        f.seek(0)
        f.write(header.binaryblock)
    assert read_dense(scaled) is None
    for source, factor in ((scaled, 2), (nib.load(path), 1)):
        dense = cifti.open_dense(source)
        assert dense.axis == axis
        assert dense.series == (0.0, 2.5)
        expected = factor * np.asarray(nib.load(path).dataobj)
        assert_array_equal(np.asarray(dense.dataobj), expected)
    volume = tmp_path / "volume.nii"
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4)), volume)
    assert read_dense(volume) is None
    with pytest.raises(ValueError, match=r"volume\.nii: not a CIFTI-2 file"):
        cifti.open_dense(volume)


def test_truncated_file_is_an_error_naming_it(tmp_path):
    path = write_dtseries(tmp_path / "bold.dtseries.nii", small_grayordinates(), 8)
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size - 100)
    with pytest.raises(ValueError, match=r"bold\.dtseries\.nii: cannot read it as CIFTI-2"):
        cifti.open_dense(path)
