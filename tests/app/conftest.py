"""Fixtures of the app tests (the shared synthetic dataset is built in tests/conftest.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture
def dataset(fmriprep_dir, tmp_path) -> Path:
    """A writable copy of sub-01 (three runs in MNI and T1w space, anatomy)."""
    root = tmp_path / "fmriprep"
    root.mkdir()
    shutil.copy(fmriprep_dir / "dataset_description.json", root)
    shutil.copytree(fmriprep_dir / "sub-01", root / "sub-01")
    return root
