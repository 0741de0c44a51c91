"""Shared fixtures: a synthetic fMRIPrep dataset and a TemplateFlow home.

Both are built once per test session by :mod:`bidsmask.datagen` (a few seconds), with
nilearn's bundled MNI152 brain mask as the brain shape (no download).

Fixtures
--------
``fmriprep_dir`` (session)
    Root of the fMRIPrep ≥ 21 derivatives dataset (``sub-01``; ``sub-02`` with ``ses-1``
    and ``ses-2``; ``task-rest`` and ``task-nback`` ``run-1``/``run-2``; 80 volumes,
    TR 2 s, one non-steady-state volume). Read it, never write into it.
``bold_files`` (session)
    Sorted list of the 9 ``space-MNI152NLin2009cAsym_res-2_desc-preproc_bold.nii.gz``.
``one_run`` (session)
    Paths of ``sub-01_task-rest`` in MNI space: keys ``bold``, ``mask``, ``boldref``,
    ``confounds``, ``confounds_json``, ``bold_json``.
``templateflow_dir`` (session)
    Root of the TemplateFlow-layout folder (``tpl-MNI152NLin2009cAsym/…``).
``templateflow_home`` (function)
    Points templateflow at ``templateflow_dir`` for the test; returns it.
``realdata`` (session)
    ``../shared/realdata`` next to the repository, or skips the test.
``mni_brain_mask`` (session)
    nilearn's MNI152 brain mask image used as the brain shape of both builders.

All ``res-2``/``res-02`` images share the 8 mm grid of ``bidsmask.datagen.mni_grid()``
(25×29×25; see that module's docstring).

Pointing templateflow at the fixture
------------------------------------
templateflow (25.x) reads ``TEMPLATEFLOW_HOME`` ONCE, when ``templateflow.conf`` is first
imported, into a module-level cache that ``templateflow.api`` uses; importing it with an
empty or missing home also unpacks a skeleton there, and ``api.get`` downloads any file
that is empty on disk. So:

- In-process: request ``templateflow_home``. It sets ``TEMPLATEFLOW_HOME`` (and
  ``TEMPLATEFLOW_AUTOUPDATE=0``) with monkeypatch BEFORE importing templateflow, then
  swaps templateflow's global client and cache for ones rooted at the fixture, and
  restores them after the test, so ``templateflow.api.get(...)`` finds the fixture files
  whether or not templateflow was imported earlier. Library code that builds
  ``templateflow.client.TemplateFlowClient(root=...)`` from an explicit path or from
  ``os.environ["TEMPLATEFLOW_HOME"]`` at call time works too (preferred in bidsmask:
  no reliance on import-time state; import templateflow lazily, inside functions).
- Subprocess: pass the environment, e.g.
  ``subprocess.run(cmd, env={**os.environ, "TEMPLATEFLOW_HOME": str(templateflow_dir),
  "TEMPLATEFLOW_AUTOUPDATE": "0"})`` (inside a test using ``templateflow_home``,
  ``os.environ`` already holds both). The child reads them at import: no network.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bidsmask.datagen import make_fmriprep_dataset, make_templateflow_home

MNI = "space-MNI152NLin2009cAsym_res-2"
REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"


@pytest.fixture(scope="session")
def mni_brain_mask():
    """nilearn's bundled MNI152 brain mask (1 mm), the brain shape of every fixture."""
    from nilearn.datasets import load_mni152_brain_mask

    return load_mni152_brain_mask()


@pytest.fixture(scope="session")
def fmriprep_dir(tmp_path_factory, mni_brain_mask) -> Path:
    return make_fmriprep_dataset(tmp_path_factory.mktemp("data") / "fmriprep", mni_brain_mask)


@pytest.fixture(scope="session")
def bold_files(fmriprep_dir) -> list[Path]:
    return sorted(fmriprep_dir.glob(f"sub-*/**/func/*_{MNI}_desc-preproc_bold.nii.gz"))


@pytest.fixture(scope="session")
def one_run(fmriprep_dir) -> dict[str, Path]:
    func = fmriprep_dir / "sub-01" / "func"
    stem = "sub-01_task-rest"
    return {
        "bold": func / f"{stem}_{MNI}_desc-preproc_bold.nii.gz",
        "bold_json": func / f"{stem}_{MNI}_desc-preproc_bold.json",
        "mask": func / f"{stem}_{MNI}_desc-brain_mask.nii.gz",
        "boldref": func / f"{stem}_{MNI}_boldref.nii.gz",
        "confounds": func / f"{stem}_desc-confounds_timeseries.tsv",
        "confounds_json": func / f"{stem}_desc-confounds_timeseries.json",
    }


@pytest.fixture(scope="session")
def templateflow_dir(tmp_path_factory, mni_brain_mask) -> Path:
    return make_templateflow_home(tmp_path_factory.mktemp("templateflow"), mni_brain_mask)


@pytest.fixture
def templateflow_home(templateflow_dir, monkeypatch) -> Path:
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(templateflow_dir))
    monkeypatch.setenv("TEMPLATEFLOW_AUTOUPDATE", "0")
    monkeypatch.setenv("TEMPLATEFLOW_USE_DATALAD", "0")
    import templateflow.api as tf_api
    import templateflow.conf as tf_conf
    from templateflow.client import TemplateFlowClient

    client = TemplateFlowClient(root=templateflow_dir, autoupdate=False, use_datalad=False)
    monkeypatch.setattr(tf_conf, "_cache", client.cache)
    monkeypatch.setattr(tf_api, "_cache", client.cache)
    monkeypatch.setattr(tf_api, "_client", client)
    return templateflow_dir


@pytest.fixture(scope="session")
def realdata() -> Path:
    if not REALDATA.is_dir():
        pytest.skip(f"Real data not available at {REALDATA}.")
    return REALDATA
