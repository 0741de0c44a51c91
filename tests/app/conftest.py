"""Fixtures of the app tests (the shared synthetic dataset is built in tests/conftest.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bidsmask.datagen import make_fmriprep_dataset

#: Head-motion factor of each participant of ``motion_group_dir`` (sub-01 … sub-06).
MOTION_SCALES = (0.3, 0.6, 1.0, 1.5, 2.2, 3.0)


@pytest.fixture
def dataset(fmriprep_dir, tmp_path) -> Path:
    """A writable copy of sub-01 (three runs in MNI and T1w space, anatomy)."""
    root = tmp_path / "fmriprep"
    root.mkdir()
    shutil.copy(fmriprep_dir / "dataset_description.json", root)
    shutil.copytree(fmriprep_dir / "sub-01", root / "sub-01")
    return root


@pytest.fixture(scope="session")
def motion_group_dir(tmp_path_factory, mni_brain_mask) -> Path:
    """fMRIPrep dataset of 6 participants with increasing motion, 2 rest runs each, in MNI space.

    ``participants.tsv`` gives ``age`` and ``sex``; see
    :func:`bidsmask.datagen.make_fmriprep_dataset` (``motion_scales``).
    """
    root = tmp_path_factory.mktemp("motion") / "fmriprep"
    return make_fmriprep_dataset(root, mni_brain_mask, motion_scales=MOTION_SCALES)
