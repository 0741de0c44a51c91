"""Every public name stays importable from the path it had before the package layout (issue 10).

The list was taken from the flat layout (one module per concern) just before the split into
packages. Names deliberately replaced are listed in ``REPLACED`` with what replaces them; the app
modules list only what they define (not what they import).
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap

import pytest

PUBLIC_NAMES = {
    "bidsmask.app.boutiques": (
        "CONTAINER_TYPES",
        "IMAGE",
        "SCHEMA_VERSION",
        "SOURCE_URL",
        "build_descriptor",
        "dumps",
        "main",
    ),
    "bidsmask.app.cli": (
        "DESCRIPTION",
        "EPILOG",
        "USAGE",
        "main",
        "parse_args",
    ),
    "bidsmask.app.config": (
        "CONNECTIVITY_CHOICES",
        "Config",
        "DEFAULT_ATLAS",
        "DEFAULT_CONNECTIVITY",
        "DEFAULT_GM_THRESHOLD",
        "DEFAULT_GROUP_MASK_THRESHOLD",
        "DEFAULT_MIN_COVERAGE",
        "DEFAULT_MIN_VOLUMES",
        "DEFAULT_RADIUS",
        "DEFAULT_SPACE",
        "DEFAULT_STANDARDIZE",
        "DEFAULT_STRATEGY",
        "FRACTION",
        "MASK_CHOICES",
        "POSITIVE_FLOAT",
        "STANDARDIZE_CHOICES",
        "Space",
        "check_atlas",
        "check_strategy",
        "in_range",
        "prepare_output_dir",
        "read_filter_file",
        "strategy_label",
        "strip_prefix",
    ),
    "bidsmask.app.demo": (
        "ATLASES",
        "CANNOT_CREATE",
        "DESCRIPTION",
        "OK",
        "STRATEGIES",
        "main",
        "make_demo_data",
    ),
    "bidsmask.app.exitcodes": (
        "AppError",
        "CANNOT_CREATE",
        "DATA_ERROR",
        "DataError",
        "EPILOG",
        "FAILURE",
        "MissingInputError",
        "NO_INPUT",
        "NO_MATCH",
        "NoMatchError",
        "OK",
        "OutputError",
        "USAGE",
        "UsageError",
        "exit_code_for",
    ),
    "bidsmask.app.fetch_templates": (
        "CANNOT_CREATE",
        "DEFAULT_ATLAS",
        "DEFAULT_TEMPLATES",
        "EPILOG",
        "FAILURE",
        "FetchError",
        "OK",
        "UNAVAILABLE",
        "USAGE",
        "fetch",
        "main",
        "templateflow_home",
    ),
    "bidsmask.app.group": (
        "DONE",
        "FAILED",
        "NATIVE_SPACES",
        "QC_COLUMNS",
        "SKIPPED",
        "group_connectivity",
        "group_masks",
        "qc_table",
        "read_run_records",
        "run_group_level",
    ),
    "bidsmask.app.participant": (
        "DONE",
        "FAILED",
        "SKIPPED",
        "UP_TO_DATE",
        "plan_jobs",
        "process_run",
        "run_participant_level",
    ),
    "bidsmask.app.progress": (
        "DONE",
        "FAILED",
        "Progress",
        "RunOutcome",
        "SKIPPED",
        "UP_TO_DATE",
        "log_file_path",
        "logging_to",
        "setup_worker_logging",
    ),
    "bidsmask.app.run": (
        "CONNECTIVITY_KINDS",
        "DONE",
        "NATIVE_SPACES",
        "RunJob",
        "SKIPPED",
        "atlas_spec",
        "build_mask",
        "process",
        "region_table",
        "run_parameters",
        "template_gm_probseg",
    ),
    "bidsmask.atlases": (
        "Atlas",
        "AtlasSpec",
        "COORDINATE_SETS",
        "DATA_DIR",
        "DEFAULT_TEMPLATES",
        "NATIVE_ATLASES",
        "NATIVE_SPACES",
        "REFERENCES",
        "freesurfer_names",
        "load_atlas",
        "load_coordinates",
        "parse_atlas_spec",
        "read_label_table",
        "sanitize_label",
        "templateflow_queries",
        "tf",
    ),
    "bidsmask.bids.layout": (
        "NoRunsFoundError",
        "ParticipantNotFoundError",
        "RunRecord",
        "collect_runs",
        "find_fmriprep_dir",
        "fmriprep_version",
        "list_participants",
        "parse_space",
        "read_dataset_description",
        "run_stem",
        "select_participants",
        "strip_sub",
    ),
    "bidsmask.bids.naming": (
        "ENTITY_ORDER",
        "LONG_TO_SHORT",
        "SOURCE_ENTITIES",
        "atlas_filename",
        "build_filename",
        "build_path",
        "normalize_entities",
        "pybids_config",
        "run_stem",
        "sanitize_label",
        "source_entities",
    ),
    "bidsmask.bids.templateflow": (
        "fetch_command",
        "find_file",
        "is_placeholder",
        "list_files",
        "pick_resolution",
        "templateflow_home",
    ),
    "bidsmask.bids.writer": (
        "BIDS_VERSION",
        "CODE_URL",
        "MARKER_DIR",
        "atlas_filename",
        "atlas_table_name",
        "atomic_path",
        "bids_uri",
        "container_info",
        "dataset_description",
        "dumps_json",
        "file_lock",
        "is_run_complete",
        "mark_run_complete",
        "remove_stale_temporaries",
        "run_marker_path",
        "to_jsonable",
        "write_atlas",
        "write_dataset_description",
        "write_json",
        "write_nifti",
        "write_text",
        "write_tsv",
    ),
    "bidsmask.cifti": (
        "CiftiAtlas",
        "align_labels",
        "atlas_spec",
        "dense_axis",
        "dscalar_image",
        "dtseries_image",
        "extract",
        "load_cifti",
        "load_dlabel",
        "parcels_axis",
        "pconn_image",
        "pscalar_image",
        "ptseries_image",
        "save",
    ),
    "bidsmask.confounds": (
        "COMPONENT_OPTIONS",
        "DEFAULTS",
        "PRESETS",
        "StrategySpec",
        "check_options",
        "comps",
        "files",
        "list_strategies",
        "load_confounds",
        "load_confounds_strategy",
        "load_strategy",
        "resolve",
    ),
    "bidsmask.connectivity": (
        "ConnectivityMeasure",
        "DEFAULT_ESTIMATOR",
        "ESTIMATORS",
        "KINDS",
        "MEASURES",
        "connectivity_matrix",
        "cov_to_corr",
        "covariance",
        "fisher_z",
        "fisher_z_average",
        "ledoit_wolf",
        "prec_to_partial",
        "relmat_sidecar",
        "sym_matrix_to_vec",
        "vec_to_sym_matrix",
    ),
    "bidsmask.datagen": (
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
    ),
    "bidsmask.image": (
        "BoundingBoxError",
        "DimensionError",
        "binarize_img",
        "check_niimg",
        "check_niimg_3d",
        "check_niimg_4d",
        "check_same_fov",
        "compute_mean",
        "concat_imgs",
        "concat_niimgs",
        "coord_transform",
        "copy_img",
        "crop_img",
        "fwhm_to_sigma",
        "get_bounds",
        "get_data",
        "img_data_dtype",
        "index_img",
        "iter_img",
        "largest_connected_component_img",
        "load_img",
        "math_img",
        "mean_img",
        "new_img_like",
        "reorder_img",
        "resample_img",
        "resample_to_img",
        "smooth_array",
        "smooth_img",
        "swap_img_hemispheres",
        "threshold_img",
    ),
    "bidsmask.maskers": (
        "BaseMasker",
        "CiftiLabelsMasker",
        "NiftiLabelsMasker",
        "NiftiMapsMasker",
        "NiftiMasker",
        "NiftiSpheresMasker",
        "NotFittedError",
        "labels",
        "maps",
        "nifti",
        "spheres",
    ),
    "bidsmask.maskers.labels": (
        "BaseMasker",
        "LABEL_STRATEGIES",
        "LabelsSpec",
        "NiftiLabelsMasker",
        "RESAMPLING_TARGETS",
        "check_same_grid",
        "image",
        "in_memory",
        "load_mask",
        "mask_data",
        "open_imgs",
        "resample_nearest",
        "same_grid",
    ),
    "bidsmask.maskers.maps": (
        "BaseMasker",
        "MapsSpec",
        "NiftiMapsMasker",
        "RESAMPLING_TARGETS",
        "check_same_grid",
        "image",
        "in_memory",
        "load_mask",
        "mask_data",
        "open_imgs",
        "resample_nearest",
        "same_grid",
    ),
    "bidsmask.maskers.nifti": (
        "BaseMasker",
        "MASK_STRATEGIES",
        "NiftiMasker",
        "VoxelSpec",
        "image",
        "in_memory",
        "load_mask",
        "mask_data",
        "masking",
        "same_grid",
    ),
    "bidsmask.maskers.spheres": (
        "BaseMasker",
        "NiftiSpheresMasker",
        "SpheresSpec",
        "load_mask",
        "mask_data",
        "open_imgs",
        "resample_nearest",
        "same_grid",
    ),
    "bidsmask.masking": (
        "MaskWarning",
        "apply_mask",
        "clean_img",
        "check_niimg",
        "check_niimg_3d",
        "compute_background_mask",
        "compute_brain_mask",
        "compute_epi_mask",
        "compute_mean",
        "compute_multi_background_mask",
        "compute_multi_brain_mask",
        "compute_multi_epi_mask",
        "intersect_masks",
        "largest_connected_component",
        "load_mask_img",
        "load_mni152_gm_template",
        "load_mni152_template",
        "load_mni152_wm_template",
        "new_img_like",
        "resample_to_img",
        "unmask",
    ),
    "bidsmask.regions": (
        "Extraction",
        "GrayordinateSpec",
        "LABEL_STRATEGIES",
        "LabelsSpec",
        "MapsSpec",
        "SparseMaps",
        "SpheresSpec",
        "VoxelSpec",
        "extract",
        "extract_regions",
        "extract_grayordinates",
        "qualifying",
        "reduce_grayordinates",
        "reduce_labels",
        "reduce_maps",
        "resample_img",
        "smooth_array",
    ),
    "bidsmask.signal": (
        "butterworth",
        "check_filter",
        "clean",
        "high_variance_confounds",
        "sanitize_confounds",
        "sanitize_runs_and_masks",
        "sanitize_standardize",
    ),
    "bidsmask.templates": (
        "TEMPLATE_DIR",
        "load_mni152_brain_mask",
        "load_mni152_gm_mask",
        "load_mni152_gm_template",
        "load_mni152_template",
        "load_mni152_wm_mask",
        "load_mni152_wm_template",
    ),
}

#: Old path -> what replaced it (the output plan, and the progress module's new name).
REPLACED = {
    "bidsmask.app.run.output_paths": "bidsmask.app.run.RunJob.outputs",
    "bidsmask.app.run.mask_path": "bidsmask.app.run.RunJob.outputs",
    "bidsmask.app.participant.expected_outputs": "bidsmask.bids.outputs.RunOutputs.files",
    "bidsmask.app.report": "bidsmask.app.progress",
}


@pytest.mark.parametrize("module", sorted(PUBLIC_NAMES))
def test_public_names_importable(module):
    mod = importlib.import_module(module)
    missing = [name for name in PUBLIC_NAMES[module] if not hasattr(mod, name)]
    assert missing == [], f"{module} lost {missing}"


@pytest.mark.parametrize("old", sorted(REPLACED))
def test_replacements_exist(old):
    path = REPLACED[old].split(".")
    for cut in range(len(path), 0, -1):
        try:
            obj = importlib.import_module(".".join(path[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in path[cut:]:
            obj = getattr(obj, attr)
        break
    assert obj is not None


def test_import_graph_is_one_directional():
    """Each engine package imports only the packages below it (app on top, image at the bottom)."""
    layers = [
        "app",
        "bids atlases maskers cifti",
        "regions reports",
        "signal confounds masking",
        "image",
    ]
    rank = {pkg: i for i, row in enumerate(layers) for pkg in row.split()}
    code = textwrap.dedent(
        f"""
        import importlib, json, sys
        out = {{}}
        for pkg in {sorted(rank)!r}:
            before = set(sys.modules)
            importlib.import_module("bidsmask." + pkg)
            new = set(sys.modules) - before
            out[pkg] = sorted({{m.split(".")[1] for m in new if m.startswith("bidsmask.")}})
            for m in [m for m in sys.modules if m.startswith("bidsmask")]:
                del sys.modules[m]
        print(json.dumps(out))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(done.stdout)
    for pkg, deps in loaded.items():
        above = [d for d in deps if d in rank and rank[d] < rank[pkg]]
        assert above == [], f"bidsmask.{pkg} imports {above}, which sit above it"
