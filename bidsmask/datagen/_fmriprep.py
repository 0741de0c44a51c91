"""Writer of the synthetic fMRIPrep derivatives dataset."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from bidsmask import __version__
from bidsmask.datagen._anatomy import (
    DECIMATION,
    Anatomy,
    build_anatomy,
    load_template,
    mni_grid,
    prepare_template,
    subject_grid,
    t1w_contrast,
    translation,
)
from bidsmask.datagen._bold import check_run_parameters, render_bold, simulate_timecourses
from bidsmask.datagen._cifti import grayordinates_91k, small_grayordinates, write_dtseries
from bidsmask.datagen._confounds import compute_confounds
from bidsmask.datagen._io import save_json, save_nifti
from bidsmask.datagen._parcels import aparcaseg

logger = logging.getLogger(__name__)

FMRIPREP_VERSION = "23.2.1"
MNI_SPACE = "space-MNI152NLin2009cAsym_res-2"
# (subject, session) pairs and (task, run) pairs of the dataset.
SESSIONS = (("01", None), ("02", "1"), ("02", "2"))
TASK_RUNS = (("rest", None), ("nback", 1), ("nback", 2))
# Where each participant's head sits in its own T1w space (mm from MNI).
SUBJECT_SHIFTS = {"01": (3.0, -12.0, 18.0), "02": (-4.0, 7.0, 11.0)}
# Participants whose runs are also written in T1w space (with aseg/aparcaseg).
NATIVE_SUBJECTS = ("01",)
ANAT_VOXEL_MM = 4.0
MASK_EDGE_DROP = 0.03


def compcor_masks(anat: Anatomy) -> tuple[np.ndarray, np.ndarray]:
    """Return the CSF and WM masks used for the mean signals and aCompCor.

    CSF: CSF probability above 0.5 (ventricles). WM: WM probability above 0.7 at least
    two voxels below the brain surface (fMRIPrep erodes its WM mask the same way).
    """
    csf = anat.brain & (anat.csf > 0.5)
    wm = anat.brain & (anat.wm > 0.7) & (anat.depth > 1.5 * anat.voxel_size)
    return csf, wm


def _run_mask(brain: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return the run's brain mask: the anatomy's minus a few random surface voxels."""
    edge = brain & ~ndimage.binary_erosion(brain)
    return brain & ~(edge & (rng.random(brain.shape) < MASK_EDGE_DROP))


def _write_anat(root: Path, subject: str, anat: Anatomy, space: str, rng, code: int) -> None:
    folder = root / f"sub-{subject}" / "anat"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"sub-{subject}_{space}_" if space else f"sub-{subject}_"
    save_nifti(
        folder / f"{stem}desc-preproc_T1w.nii.gz", t1w_contrast(anat, rng), anat.affine, code=code
    )
    save_json(folder / f"{stem}desc-preproc_T1w.json", {"SkullStripped": False})
    save_nifti(
        folder / f"{stem}desc-brain_mask.nii.gz",
        anat.brain.astype(np.uint8),
        anat.affine,
        code=code,
    )
    raw = (
        "tpl-MNI152NLin2009cAsym/tpl-MNI152NLin2009cAsym_res-01_desc-brain_mask.nii.gz"
        if space
        else f"sub-{subject}/anat/sub-{subject}_T1w.nii.gz"
    )
    save_json(folder / f"{stem}desc-brain_mask.json", {"RawSources": [raw], "Type": "Brain"})
    for label, prob in (("GM", anat.gm), ("WM", anat.wm), ("CSF", anat.csf)):
        save_nifti(folder / f"{stem}label-{label}_probseg.nii.gz", prob, anat.affine, code=code)
    if not space:
        save_nifti(folder / f"{stem}desc-aseg_dseg.nii.gz", anat.aseg, anat.affine, code=code)
        save_nifti(
            folder / f"{stem}desc-aparcaseg_dseg.nii.gz", aparcaseg(anat), anat.affine, code=code
        )


def _write_run(folder: Path, stem: str, space: str, anat: Anatomy, bold, mask, run, *, task, code):
    """Write a run's BOLD, brain mask and boldref in one space, with their sidecars."""
    save_nifti(
        folder / f"{stem}_{space}_desc-preproc_bold.nii.gz",
        bold,
        anat.affine,
        code=code,
        t_r=run.t_r,
    )
    save_json(
        folder / f"{stem}_{space}_desc-preproc_bold.json",
        {
            "RepetitionTime": run.t_r,
            "SkullStripped": False,
            "SliceTimingCorrected": True,
            "StartTime": run.t_r / 2,
            "TaskName": task,
        },
    )
    save_nifti(
        folder / f"{stem}_{space}_desc-brain_mask.nii.gz",
        mask.astype(np.uint8),
        anat.affine,
        code=code,
    )
    subject_folder = next(p for p in folder.parents if p.name.startswith("sub-"))
    raw = f"{folder.relative_to(subject_folder.parent).as_posix()}/{stem}_bold.nii.gz"
    save_json(
        folder / f"{stem}_{space}_desc-brain_mask.json", {"RawSources": [raw], "Type": "Brain"}
    )
    boldref = bold[..., run.n_non_steady :].mean(axis=-1, dtype=np.float64).astype(np.float32)
    save_nifti(folder / f"{stem}_{space}_boldref.nii.gz", boldref, anat.affine, code=code)


def _dataset_description() -> dict:
    return {
        "Name": "fMRIPrep - fMRI PREProcessing workflow",
        "BIDSVersion": "1.8.0",
        "DatasetType": "derivative",
        "GeneratedBy": [
            {
                "Name": "fMRIPrep",
                "Version": FMRIPREP_VERSION,
                "CodeURL": f"https://github.com/nipreps/fmriprep/archive/{FMRIPREP_VERSION}.tar.gz",
            },
            {
                "Name": "bidsmask.datagen",
                "Version": __version__,
                "Description": "Synthetic data shaped like fMRIPrep outputs, for tests and demos.",
            },
        ],
        "HowToAcknowledge": "Synthetic dataset: nothing to acknowledge.",
    }


def _write_participants(root: Path, subjects: list[str]) -> None:
    """Write ``participants.tsv``: ages spread from 22 to 71, sexes alternating."""
    ages = np.linspace(22, 71, len(subjects)).round().astype(int)
    table = pd.DataFrame(
        {
            "participant_id": [f"sub-{s}" for s in subjects],
            "age": ages,
            "sex": ["F" if i % 2 == 0 else "M" for i in range(len(subjects))],
        }
    )
    table.to_csv(root / "participants.tsv", sep="\t", index=False)
    save_json(
        root / "participants.json",
        {
            "age": {"Description": "Age of the participant", "Units": "year"},
            "sex": {
                "Description": "Sex of the participant",
                "Levels": {"F": "female", "M": "male"},
            },
        },
    )


def _check_root(root) -> Path:
    root = Path(root)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"root must be an empty or new folder, got {root}: pick another.")
    root.mkdir(parents=True, exist_ok=True)
    return root


def make_fmriprep_dataset(
    root,
    template_img,
    *,
    n_volumes: int = 80,
    t_r: float = 2.0,
    seed: int = 0,
    decimation: int = DECIMATION,
    n_non_steady: int = 1,
    motion_scales: Sequence[float] | None = None,
    grayordinates: str | None = None,
) -> Path:
    """Write a small synthetic fMRIPrep (≥ 21) derivatives dataset.

    Participants ``sub-01`` (no session) and ``sub-02`` (``ses-1``, ``ses-2``), each with
    ``task-rest`` (one run, no run entity) and ``task-nback`` (``run-1``, ``run-2``).
    Every run has, in ``space-MNI152NLin2009cAsym_res-2``, the preprocessed BOLD, its
    brain mask and boldref (with JSON sidecars) and the confounds TSV + JSON; ``sub-01``'s
    runs are also written in ``space-T1w`` with per-run ``desc-aseg_dseg`` and
    ``desc-aparcaseg_dseg``. Each participant has an ``anat`` folder (T1w, brain mask,
    GM/WM/CSF probabilistic segmentations, aseg/aparcaseg, and their MNI versions).
    See :mod:`bidsmask.datagen` for the grids and the signal model.

    Parameters
    ----------
    root : str or pathlib.Path
        Folder to create (it must be absent or empty).
    template_img : str, pathlib.Path or nibabel image
        3D MNI-space brain image (a brain mask or a skull-stripped T1 template) that
        gives the brain its shape.
    n_volumes : int, default=80
        Volumes per run (at least 30; 60 to 120 is the intended range).
    t_r : float, default=2.0
        Repetition time in seconds.
    seed : int, default=0
        Seed of every random draw: the same seed gives the same data arrays.
    decimation : int, default=4
        Decimation of the MNI res-02 grid (4 gives 8 mm voxels, 25×29×25).
    n_non_steady : int, default=1
        Leading non-steady-state volumes of each run (0 to 3).
    motion_scales : sequence of float or None, default=None
        None: the dataset described above. Otherwise a group dataset for denoising quality:
        one participant per value (``sub-01``, ``sub-02`` …, no session), each with
        ``task-rest`` ``run-1`` and ``run-2`` in MNI space only, whose head motion (drift and
        jerks, hence framewise displacement and the motion artefact) is multiplied by the
        value; ``participants.tsv`` (+ ``.json``) gives each participant's ``age`` and ``sex``.
    grayordinates : {None, "small", "91k"}, default=None
        Also write each run as fMRIPrep's ``--cifti-output`` does,
        ``<run>_space-fsLR_den-91k_bold.dtseries.nii`` (+ ``.dtseries.json``), on the real
        91k layout or on :func:`bidsmask.datagen.small_grayordinates` (272 grayordinates, for
        fast tests; same name).

    Returns
    -------
    pathlib.Path
        ``root``. ``dataset_description.json`` is written last, so a dataset without it
        is incomplete.
    """
    check_run_parameters(n_volumes, t_r, n_non_steady)
    if grayordinates not in (None, "small", "91k"):
        raise ValueError(f"grayordinates must be None, 'small' or '91k'; got {grayordinates!r}.")
    cifti_axis = None
    if grayordinates is not None:
        cifti_axis = small_grayordinates() if grayordinates == "small" else grayordinates_91k()
    template = prepare_template(load_template(template_img))
    shape, affine = mni_grid(decimation)
    mni = build_anatomy(template, shape, affine)
    root = _check_root(root)
    csf_mask, wm_mask = compcor_masks(mni)
    native = {}
    sessions, task_runs, shifts, scales = SESSIONS, TASK_RUNS, SUBJECT_SHIFTS, {}
    if motion_scales is not None:
        scales = {f"{i:02d}": float(v) for i, v in enumerate(motion_scales, start=1)}
        sessions = tuple((subject, None) for subject in scales)
        task_runs = (("rest", 1), ("rest", 2))
        shifts = {subject: SUBJECT_SHIFTS.get(subject, (0.0, 0.0, 0.0)) for subject in scales}
        _write_participants(root, list(scales))
    for s, subject in enumerate(shifts):
        rng = np.random.default_rng([seed, 1000 + s])
        to_mni = translation(tuple(-v for v in shifts[subject]))
        anat = build_anatomy(template, *subject_grid(shifts[subject], ANAT_VOXEL_MM), to_mni=to_mni)
        _write_anat(root, subject, anat, "", rng, code=1)
        _write_anat(root, subject, mni, MNI_SPACE, rng, code=4)
        if subject in NATIVE_SUBJECTS and not scales:
            grid = subject_grid(SUBJECT_SHIFTS[subject], 2.0 * decimation)
            t1w = build_anatomy(template, *grid, to_mni=to_mni)
            native[subject] = (t1w, aparcaseg(t1w))
    index = 0
    for subject, session in sessions:
        folder = root / f"sub-{subject}" / (f"ses-{session}" if session else "") / "func"
        folder.mkdir(parents=True, exist_ok=True)
        for task, run_number in task_runs:
            rng = np.random.default_rng([seed, index])
            index += 1
            stem = "_".join(
                part
                for part in (
                    f"sub-{subject}",
                    f"ses-{session}" if session else "",
                    f"task-{task}",
                    f"run-{run_number}" if run_number else "",
                )
                if part
            )
            run = simulate_timecourses(
                n_volumes,
                t_r,
                rng,
                task=task != "rest",
                n_non_steady=n_non_steady,
                motion_scale=scales.get(subject, 1.0),
            )
            bold = render_bold(mni, run, rng)
            mask = _run_mask(mni.brain, rng)
            _write_run(folder, stem, MNI_SPACE, mni, bold, mask, run, task=task, code=4)
            table, metadata = compute_confounds(bold, mask, csf_mask, wm_mask, run)
            table.to_csv(
                folder / f"{stem}_desc-confounds_timeseries.tsv",
                sep="\t",
                index=False,
                na_rep="n/a",
            )
            save_json(folder / f"{stem}_desc-confounds_timeseries.json", metadata)
            if cifti_axis is not None:
                name = f"{stem}_space-fsLR_den-91k_bold.dtseries"
                write_dtseries(
                    folder / f"{name}.nii", cifti_axis, n_volumes, t_r=t_r, seed=seed * 100 + index
                )
                save_json(folder / f"{name}.json", {"RepetitionTime": t_r, "TaskName": task})
            if subject in native:
                t1w, t1w_aparcaseg = native[subject]
                t1w_bold = render_bold(t1w, run, rng)
                t1w_mask = _run_mask(t1w.brain, rng)
                _write_run(
                    folder, stem, "space-T1w", t1w, t1w_bold, t1w_mask, run, task=task, code=1
                )
                for desc, labels in (("aseg", t1w.aseg), ("aparcaseg", t1w_aparcaseg)):
                    path = folder / f"{stem}_space-T1w_desc-{desc}_dseg.nii.gz"
                    save_nifti(path, labels, t1w.affine, code=1)
            logger.info("Wrote %s (%d volumes, spikes at %s)", stem, n_volumes, run.spikes)
    # Written last: its presence tells that the dataset is complete.
    save_json(root / "dataset_description.json", _dataset_description())
    return root
