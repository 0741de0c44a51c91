"""The app's region tables pair names with label ids, also when labels vanish on the BOLD grid.

An atlas file with a label table of non-contiguous ids (1, 2, 3, 5, 6, 40), some of which
disappear when resampled to the BOLD grid: every column keeps the name of its own label, vanished
regions are n/a, and the values match nilearn's ``NiftiLabelsMasker`` with the same look-up table.
"""

import warnings

import nibabel as nib
import numpy as np
import pandas as pd
from numpy.testing import assert_allclose

from bidsmask.app.coverage import region_table
from bidsmask.app.run_inputs import atlas_spec
from bidsmask.atlases import load_atlas

IDS = (1, 2, 3, 5, 6, 40)
NAMES = ("region_1", "region_2", "region_3", "region_5", "region_6", "region_40")
BOLD_AFFINE = np.diag([3.0, 3.0, 3.0, 1.0])


def _atlas(tmp_path):
    labels = np.zeros((24, 24, 18), dtype=np.int32)
    labels[3:12, 3:21, 3:15] = 5
    labels[12:18, 3:21, 3:15] = 40
    labels[18:22, 3:21, 3:15] = 6
    labels[1, 1, 1], labels[1, 2, 1], labels[2, 2, 2] = 1, 2, 3  # between BOLD voxel centres
    path = tmp_path / "atlas-Test_dseg.nii.gz"
    nib.save(nib.Nifti1Image(labels, np.eye(4)), path)
    table = pd.DataFrame({"index": [0, *IDS], "name": ["Background", *NAMES]})
    table.to_csv(tmp_path / "atlas-Test_dseg.tsv", sep="\t", index=False)
    return path, table


def test_region_table_names_follow_ids_when_labels_vanish(tmp_path):
    path, table = _atlas(tmp_path)
    atlas = load_atlas(str(path), "MNI152NLin2009cAsym")
    assert atlas.region_ids == IDS and atlas.region_names == NAMES
    rng = np.random.default_rng(1)
    bold = nib.Nifti1Image(
        (50 + rng.standard_normal((8, 8, 6, 15))).astype(np.float32), BOLD_AFFINE
    )
    mask = np.ones((8, 8, 6), dtype=bool)
    spec, positions = atlas_spec(atlas, bold, mask, radius=5.0)
    assert [IDS[p] for p in positions] == [int(r) for r in spec.region_ids] == [5, 6, 40]
    raw = spec.reduce(np.asarray(bold.dataobj).reshape(-1, 15)[spec.voxels].T)
    frame, coverage = region_table(atlas, spec, positions, raw, min_coverage=0.5)
    assert list(frame.columns) == list(NAMES)
    assert frame[["region_1", "region_2", "region_3"]].isna().all().all()
    assert_allclose(coverage, [0, 0, 0, 1, 1, 1])

    from nilearn.maskers import NiftiLabelsMasker as Reference

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = Reference(str(path), lut=table, resampling_target="data")
        expected = ref.fit_transform(bold)
    assert list(ref.region_names_.values()) == ["region_5", "region_6", "region_40"]
    assert_allclose(frame[["region_5", "region_6", "region_40"]].to_numpy(), expected, rtol=1e-5)
