"""CIFTI-2 grayordinates (bidsmask.cifti): layout, atlas alignment, outputs, Workbench parity.

The oracle is Connectome Workbench: ``wb_command -cifti-parcellate <dtseries> <dlabel> COLUMN
<out> -only-numeric`` must agree with our parcel means (the data have NaN grayordinates but no
all-zero ones, which Workbench would average in). Workbench refuses an atlas that labels
vertices missing from the data, so the full-mesh atlases given to it are unlabelled there.
"""

import importlib.util
import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nibabel import cifti2
from numpy.testing import assert_allclose, assert_array_equal

from bidsmask import cifti
from bidsmask.datagen import (
    atlas_brain_models,
    block_parcellation,
    grayordinates_91k,
    small_grayordinates,
    write_dlabel,
    write_dtseries,
)

WB = shutil.which("wb_command")
needs_wb = pytest.mark.skipif(WB is None, reason="wb_command (connectome-workbench) not installed")
COVERAGES = ("full", "cortex", "subcortex")


def unlabel_missing_vertices(atlas_axis, labels, data_axis):
    """Set to 0 the atlas labels of vertices the data do not list (as real atlases do)."""
    labels = labels.copy()
    data_parts = {n: p for n, _, p in data_axis.iter_structures()}
    for name, slc, part in atlas_axis.iter_structures():
        if part.surface_mask.any():
            present = np.isin(part.vertex, data_parts[name].vertex)
            labels[slc] = np.where(present, labels[slc], 0)
    return labels


def make_atlas(folder, data_axis, coverage, per_hemi, per_structure, for_wb=True):
    axis = atlas_brain_models(data_axis, coverage)
    labels = block_parcellation(
        axis,
        per_hemi if coverage != "subcortex" else 0,
        per_structure if coverage != "cortex" else 0,
    )
    if for_wb:
        labels = unlabel_missing_vertices(axis, labels, data_axis)
    return write_dlabel(Path(folder) / f"atlas-{coverage}.dlabel.nii", axis, labels)


def wb_parcellate(dtseries, dlabel, out):
    subprocess.run(
        [WB, "-cifti-parcellate", str(dtseries), str(dlabel), "COLUMN", str(out), "-only-numeric"],
        check=True,
        capture_output=True,
    )
    return nib.load(out)


def wb_info(path):
    done = subprocess.run([WB, "-file-information", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def small(tmp_path):
    axis = small_grayordinates()
    dtseries = write_dtseries(
        tmp_path / "bold.dtseries.nii", axis, 30, t_r=1.5, nan_columns=[3, 210]
    )
    return axis, dtseries


@pytest.fixture(scope="module")
def full_size(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cifti91k")
    axis = grayordinates_91k()
    dtseries = write_dtseries(
        folder / "bold.dtseries.nii", axis, 40, nan_columns=[10, 40000, 70000]
    )
    return folder, axis, dtseries


def test_91k_layout_counts():
    axis = grayordinates_91k()
    assert len(axis) == 91282
    parts = {n: p for n, _, p in axis.iter_structures()}
    assert len(parts) == 21
    assert len(parts["CIFTI_STRUCTURE_CORTEX_LEFT"]) == 29696
    assert len(parts["CIFTI_STRUCTURE_CORTEX_RIGHT"]) == 29716
    assert parts["CIFTI_STRUCTURE_CORTEX_LEFT"].nvertices["CIFTI_STRUCTURE_CORTEX_LEFT"] == 32492
    assert int(axis.volume_mask.sum()) == 31870
    assert axis.volume_shape == (91, 109, 91)
    assert len(parts["CIFTI_STRUCTURE_CEREBELLUM_RIGHT"]) == 9144
    voxels = axis.voxel[axis.volume_mask]
    assert np.unique(np.ravel_multi_index(voxels.T, axis.volume_shape)).size == 31870


def test_91k_layout_matches_real_file(realdata):
    real = nib.load(realdata / "cifti" / "atlas-Tian_space-fsLR_den-32k_dseg.dlabel.nii")
    ours = grayordinates_91k()
    theirs = real.header.get_axis(1)
    assert [(n, len(p)) for n, _, p in ours.iter_structures()] == [
        (n, len(p)) for n, _, p in theirs.iter_structures()
    ]
    assert_allclose(ours.affine, theirs.affine)


@needs_wb
@pytest.mark.parametrize("coverage", COVERAGES)
def test_small_matches_workbench(small, tmp_path, coverage):
    axis, dtseries = small
    dlabel = make_atlas(tmp_path, axis, coverage, 4, 2)
    ref = wb_parcellate(dtseries, dlabel, tmp_path / "wb.ptseries.nii")
    spec = cifti.atlas_spec(cifti.load_dlabel(dlabel), axis)
    (signals,), _ = cifti.extract(dtseries, [spec], chunk_grayordinates=7)
    assert_allclose(signals, np.asarray(ref.dataobj), rtol=1e-4)
    assert list(ref.header.get_axis(1).name) == [f"parcel{i}" for i in spec.region_ids]


@needs_wb
@pytest.mark.parametrize("coverage", COVERAGES)
def test_91k_matches_workbench(full_size, coverage):
    folder, axis, dtseries = full_size
    dlabel = make_atlas(folder, axis, coverage, 100, 3)
    ref = wb_parcellate(dtseries, dlabel, folder / f"wb-{coverage}.ptseries.nii")
    spec = cifti.atlas_spec(cifti.load_dlabel(dlabel), axis)
    (signals,), qualified = cifti.extract(dtseries, [spec])
    expected = np.asarray(ref.dataobj)
    assert signals.shape == expected.shape
    assert_allclose(signals, expected, rtol=1e-4)
    nan_read = np.isin([10, 40000, 70000], spec.columns).sum()
    assert qualified.sum() == spec.columns.size - nan_read


def test_alignment_by_structure_and_index_not_position(small):
    axis, _ = small
    atlas_axis = atlas_brain_models(axis, "full")  # whole meshes, structures reordered
    labels = block_parcellation(atlas_axis, 4, 2)
    aligned = cifti.align_labels(cifti.CiftiAtlas(labels, atlas_axis, {}), axis)
    # the same parcellation written on the data's own layout
    assert_array_equal(aligned, block_parcellation(axis, 4, 2))
    # reversing the atlas's order of grayordinates within each structure changes nothing
    parts = []
    rev_labels = []
    for _, slc, part in atlas_axis.iter_structures():
        parts.append(part[::-1])
        rev_labels.append(labels[slc][::-1])
    reversed_axis = parts[0]
    for part in parts[1:]:
        reversed_axis = reversed_axis + part
    atlas = cifti.CiftiAtlas(np.concatenate(rev_labels), reversed_axis, {})
    assert_array_equal(cifti.align_labels(atlas, axis), aligned)


def test_coverage_counts_atlas_vertices_outside_the_data(small, tmp_path):
    axis, dtseries = small
    dlabel = make_atlas(tmp_path, axis, "full", 4, 0, for_wb=False)  # labels the medial wall
    atlas = cifti.load_dlabel(dlabel)
    spec = cifti.atlas_spec(atlas, axis)
    _, qualified = cifti.extract(dtseries, [spec])
    coverage = spec.coverage(qualified)
    # each cortical parcel spans 30 vertices of a 120-vertex mesh; data lack 20 and 16 of them
    assert_array_equal(atlas.sizes, [30] * 8)
    assert coverage.min() < 1.0
    expected = spec.counts(qualified) / 30
    assert_allclose(coverage, expected)
    assert_allclose(spec.data_sizes.sum(), 204)


def test_alignment_errors(small, tmp_path):
    axis, _ = small
    other_mesh = cifti2.BrainModelAxis.from_surface(
        np.arange(50), 64, "CIFTI_STRUCTURE_CORTEX_LEFT"
    )
    with pytest.raises(ValueError, match="64 vertices in the atlas but 120"):
        cifti.align_labels(cifti.CiftiAtlas(np.ones(50, int), other_mesh, {}, "x.dlabel.nii"), axis)
    mask = np.zeros((10, 12, 9), bool)
    mask[5, 4, 3] = True
    shifted = cifti2.BrainModelAxis.from_mask(mask, "CIFTI_STRUCTURE_BRAIN_STEM", np.eye(4))
    with pytest.raises(ValueError, match="volume grid"):
        cifti.align_labels(cifti.CiftiAtlas(np.ones(1, int), shifted, {}), axis)


def test_load_errors_name_the_file(tmp_path, small):
    axis, dtseries = small
    nifti = tmp_path / "vol.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4)), nifti)
    with pytest.raises(ValueError, match=r"vol\.nii\.gz: not a CIFTI-2 file"):
        cifti.load_cifti(nifti)
    with pytest.raises(ValueError, match=r"bold\.dtseries\.nii: the atlas has non-integer"):
        cifti.load_dlabel(dtseries)
    broken = tmp_path / "broken.dlabel.nii"
    broken.write_bytes(b"not a file")
    with pytest.raises(ValueError, match="broken.dlabel.nii: cannot read"):
        cifti.load_dlabel(broken)
    parcels = cifti.parcels_axis(np.array([1] * len(axis)), axis, [1], ["a"])
    ptseries = cifti.save(
        cifti.ptseries_image(np.ones((3, 1)), parcels, 2.0), tmp_path / "p.ptseries.nii"
    )
    with pytest.raises(ValueError, match="not brain models"):
        cifti.load_cifti(ptseries)


def test_label_table_names_and_lookup_table(small, tmp_path):
    axis, _ = small
    labels = block_parcellation(axis, 2, 1)
    dlabel = write_dlabel(tmp_path / "a.dlabel.nii", axis, labels, {1: "left-a", 3: "right-a"})
    atlas = cifti.load_dlabel(dlabel)
    assert atlas.names[1] == "left-a" and atlas.names[2] == "parcel2"
    renamed = cifti.load_dlabel(dlabel, names={i: f"r{i}" for i in range(1, 8)})
    assert renamed.names == {i: f"r{i}" for i in range(1, 8)}
    with pytest.raises(ValueError, match=r"labels \[7\] are missing from the look-up table"):
        cifti.load_dlabel(dlabel, names={i: "x" for i in range(1, 7)})


@needs_wb
def test_outputs_have_intents_and_workbench_reads_them(small, tmp_path):
    axis, dtseries = small
    atlas = cifti.load_dlabel(make_atlas(tmp_path, axis, "full", 4, 2))
    spec = cifti.atlas_spec(atlas, axis)
    (signals,), qualified = cifti.extract(dtseries, [spec])
    aligned = cifti.align_labels(atlas, axis)
    names = [atlas.names[int(r)] for r in spec.region_ids]
    parcels = cifti.parcels_axis(aligned, axis, spec.region_ids, names)
    files = {
        "ptseries": cifti.ptseries_image(signals, parcels, 1.5),
        "pconn": cifti.pconn_image(np.corrcoef(signals.T), parcels),
        "pscalar": cifti.pscalar_image(spec.coverage(qualified), parcels, ["coverage"]),
        "dscalar": cifti.dscalar_image(np.arange(len(axis)), axis, ["index"]),
        "dtseries": cifti.dtseries_image(np.ones((2, len(axis))), axis, 1.5),
    }
    kinds = {
        "ptseries": ("ConnParcelSries", "Parcel Series"),
        "pconn": ("ConnParcels", "Parcel"),
        "pscalar": ("ConnParcelScalr", "Parcel Scalar"),
        "dscalar": ("ConnDenseScalar", "Dense Scalar"),
        "dtseries": ("ConnDenseSeries", "Dense Data Series"),
    }
    for kind, img in files.items():
        path = cifti.save(img, tmp_path / f"out.{kind}.nii")
        loaded = nib.load(path)
        assert loaded.nifti_header.get_intent()[0] == kinds[kind][0]
        info = wb_info(path)
        assert f"Type:                     CIFTI - {kinds[kind][1]}\n" in info
    ptseries = nib.load(tmp_path / "out.ptseries.nii")
    assert_allclose(np.asarray(ptseries.dataobj), signals)
    assert list(ptseries.header.get_axis(1).name) == names
    assert ptseries.header.get_axis(0).step == 1.5
    # Workbench's own parcellation of the same data has the same parcels, vertex for vertex
    ref = wb_parcellate(dtseries, tmp_path / "atlas-full.dlabel.nii", tmp_path / "wb.ptseries.nii")
    ours, theirs = ptseries.header.get_axis(1), ref.header.get_axis(1)
    for i in range(len(names)):
        assert_array_equal(ours.voxels[i], theirs.voxels[i])
        assert ours.vertices[i].keys() == theirs.vertices[i].keys()
        for name in ours.vertices[i]:
            assert_array_equal(ours.vertices[i][name], theirs.vertices[i][name])


def _real_axis(realdata):
    return nib.load(
        realdata / "cifti" / "atlas-Tian_space-fsLR_den-32k_dseg.dlabel.nii"
    ).header.get_axis(1)


@needs_wb
def test_real_tian_subcortical_atlas_matches_workbench(realdata, tmp_path):
    dlabel = realdata / "cifti" / "atlas-Tian_space-fsLR_den-32k_dseg.dlabel.nii"
    axis = _real_axis(realdata)
    dtseries = write_dtseries(tmp_path / "bold.dtseries.nii", axis, 25, nan_columns=[70000])
    ref = wb_parcellate(dtseries, dlabel, tmp_path / "wb.ptseries.nii")
    atlas = cifti.load_dlabel(dlabel)
    assert atlas.region_ids.size == 50
    assert atlas.names[1] == "HIP-head-m-rh"
    spec = cifti.atlas_spec(atlas, axis)
    (signals,), qualified = cifti.extract(dtseries, [spec])
    assert_allclose(signals, np.asarray(ref.dataobj), rtol=1e-4)
    assert np.all(spec.coverage(qualified) > 0.9)


def _brainspace_parcellation(name):
    found = importlib.util.find_spec("brainspace")  # located, never imported (it needs vtk)
    if found is None:
        pytest.skip("brainspace (test data: Schaefer 2018 parcellations on fsLR 32k) not installed")
    path = Path(found.submodule_search_locations[0]) / "datasets" / "parcellations" / name
    return np.loadtxt(path, dtype=np.int64)


@needs_wb
def test_real_schaefer_400_on_fslr_matches_workbench(realdata, tmp_path):
    """Schaefer 2018 400 parcels on the fsLR 32k meshes (BrainSpace's conte69 copy, BSD/MIT)."""
    values = _brainspace_parcellation("schaefer_400_conte69.csv")
    mesh = 32492
    atlas_axis = cifti2.BrainModelAxis.from_surface(
        np.arange(mesh), mesh, "CIFTI_STRUCTURE_CORTEX_LEFT"
    ) + cifti2.BrainModelAxis.from_surface(np.arange(mesh), mesh, "CIFTI_STRUCTURE_CORTEX_RIGHT")
    axis = _real_axis(realdata)
    dtseries = write_dtseries(tmp_path / "bold.dtseries.nii", axis, 20)
    # as shipped, 624 labelled vertices lie in the 91k medial wall: coverage says so
    spec = cifti.atlas_spec(cifti.CiftiAtlas(values, atlas_axis, {}), axis)
    _, qualified = cifti.extract(dtseries, [spec])
    coverage = spec.coverage(qualified)
    assert spec.n_elements == 400
    assert np.sum(coverage < 1) > 0 and coverage.min() > 0.4 and np.median(coverage) == 1
    assert spec.atlas_sizes.sum() - spec.counts(qualified).sum() == 293 + 331
    # Workbench needs the medial wall unlabelled
    dlabel = write_dlabel(
        tmp_path / "schaefer.dlabel.nii",
        atlas_axis,
        unlabel_missing_vertices(atlas_axis, values, axis),
    )
    ref = wb_parcellate(dtseries, dlabel, tmp_path / "wb.ptseries.nii")
    spec = cifti.atlas_spec(cifti.load_dlabel(dlabel), axis)
    (signals,), _ = cifti.extract(dtseries, [spec])
    assert_allclose(signals, np.asarray(ref.dataobj), rtol=1e-4)
