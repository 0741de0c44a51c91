"""Synthetic fMRIPrep derivatives and TemplateFlow folders, for tests and demos.

:func:`make_fmriprep_dataset` writes a small dataset shaped like fMRIPrep ≥ 21 outputs
(two participants, sessions, a resting and a task with two runs, MNI and T1w spaces,
confounds); :func:`make_templateflow_home` writes a ``TEMPLATEFLOW_HOME``-like folder
with Schaefer-2018-like and DiFuMo-like atlases; :func:`write_dtseries` and
:func:`write_dlabel` write CIFTI-2 files on the fsLR 91k layout (:func:`grayordinates_91k`) or a
small one (:func:`small_grayordinates`). Only numpy, scipy, nibabel and pandas
are used, so the package's demo command can call them.

Grid
----
Files named ``res-2`` (fMRIPrep) or ``res-02`` (TemplateFlow) do NOT use the real
MNI152NLin2009cAsym res-02 grid (97×115×97, 2 mm, origin −96/−132/−78 mm). They use that
grid decimated by an integer factor, ``decimation`` (default 4): same origin, voxel size
``2 * decimation`` mm, shape ``ceil(n / decimation)``, i.e. 25×29×25 voxels of 8 mm with
about 3,700 brain voxels. The names stay those fMRIPrep and TemplateFlow write so that
file lookups behave as on real data, while tests stay fast. :func:`mni_grid` returns the
grid. T1w-space files use another grid per participant: x axis flipped (LAS), head
translated, voxel centres offset by half a voxel (the ``anat`` folder uses 4 mm voxels,
``space-T1w`` runs the BOLD voxel size).

Signal model
------------
Each run mixes seven band-limited (0.01–0.1 Hz) network signals loading on bilateral
territories (a 30 s block design is added for ``task-nback``), a physiological signal
(mostly CSF), a slow drift, a motion artefact at the brain's edge and 1.2 % Gaussian
noise on a baseline of 700–1400 inside the brain and 300 in the scalp (0 elsewhere).
The first volume(s) are brighter (non-steady state) and 2–4 "spike" volumes are 5 %
brighter while the head jerks by 0.6–1 mm, so framewise displacement exceeds 0.5 mm at
exactly those volumes; std_dvars exceeds 1.5 at those volumes, at the volume after each
one (the intensity returns) and at the volume after the non-steady-state volume(s).
Confounds (global signal, DVARS, CompCor …) are computed from the MNI-space data as
written.
"""

from bidsmask.datagen._anatomy import DECIMATION, mni_grid
from bidsmask.datagen._cifti import (
    atlas_brain_models,
    block_parcellation,
    grayordinates_91k,
    small_grayordinates,
    write_dlabel,
    write_dtseries,
)
from bidsmask.datagen._fmriprep import make_fmriprep_dataset
from bidsmask.datagen._templateflow import make_templateflow_home

__all__ = [
    "DECIMATION",
    "atlas_brain_models",
    "block_parcellation",
    "grayordinates_91k",
    "make_fmriprep_dataset",
    "make_templateflow_home",
    "mni_grid",
    "small_grayordinates",
    "write_dlabel",
    "write_dtseries",
]
