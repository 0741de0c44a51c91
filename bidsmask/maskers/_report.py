"""``generate_report()`` of the maskers: what the masker will extract, drawn and tabulated.

The report (a :class:`bidsmask.reports.HTMLReport`, figures embedded) holds the masker's
parameters, a figure of the mask's contour (:class:`NiftiMasker`) or of the regions over the
MNI152 template resampled to the masker's grid (labels, maps — the displayed ones, each voxel
coloured by its strongest map — and spheres), regions with no voxel inside the mask in red,
and a table of each region's voxels and coverage; for :class:`CiftiLabelsMasker`, the
grayordinates by structure group and the parcels' coverage. An unfitted masker gives a report
that says so.
"""

from __future__ import annotations

import warnings

import numpy as np

from bidsmask import image, reports
from bidsmask.masking import load_mni152_template
from bidsmask.regions import SpheresSpec


def _template_on(shape, affine) -> np.ndarray:
    template = image.resample_img(
        load_mni152_template(resolution=2),
        target_affine=np.asarray(affine),
        target_shape=tuple(shape[:3]),
        interpolation="continuous",
    )
    return np.asarray(template.dataobj, dtype=np.float32)


def _figure(fig: reports.Drawing) -> str:
    return reports.data_uri(fig.to_bytes(), fig.suffix)


def _parameters(masker) -> reports.Table:
    rows = []
    for name, value in sorted(masker.get_params(deep=False).items()):
        if hasattr(value, "shape") and hasattr(value, "affine"):
            value = f"{type(value).__name__} of shape {tuple(value.shape)}"
        rows.append([name, value if isinstance(value, str) else repr(value)])
    return reports.Table(["parameter", "value"], rows)


def masker_report(
    masker, title: str | None = None, displayed: object = "all"
) -> reports.HTMLReport:
    """Build a masker's report (see the module docstring).

    Parameters
    ----------
    masker : BaseMasker
        A Nifti masker, fitted or not.
    title : str or None
        The page's title; default the masker's class name.
    displayed : int, sequence of int or "all"
        The maps or spheres to draw (all, the first N, or these indices).

    Returns
    -------
    bidsmask.reports.HTMLReport
    """
    name = type(masker).__name__
    page = reports.Page(title or f"{name} report", [])
    params = reports.Section("Parameters", tables=[_parameters(masker)])
    if not hasattr(masker, "n_elements_"):
        warnings.warn(f"{name} is not fitted: the report has no figure.", stacklevel=3)
        params.notes.append(f"This {name} is not fitted yet: call fit() for figures.")
        page.sections.append(params)
        return reports.HTMLReport(page)
    section = reports.Section("What the masker extracts")
    drawers = {
        "NiftiMasker": _mask_section,
        "NiftiLabelsMasker": _labels_section,
        "NiftiMapsMasker": _maps_section,
        "NiftiSpheresMasker": _spheres_section,
        "CiftiLabelsMasker": _cifti_section,
    }
    # the Multi* maskers draw as the single-image masker they extend
    kind = next(cls.__name__ for cls in type(masker).__mro__ if cls.__name__ in drawers)
    drawers[kind](masker, section, displayed)
    page.sections += [section, params]
    return reports.HTMLReport(page)


def _mask_section(masker, section, displayed) -> None:
    mask = masker.mask_img_
    data = np.asarray(mask.dataobj).astype(bool)
    background = reports.to_ras(_template_on(mask.shape, mask.affine), mask.affine)
    fig = reports.plot_mask(background, reports.to_ras(data, mask.affine))
    caption = f"Contour of the mask ({int(data.sum())} voxels) over the MNI152 template."
    section.figures.append(reports.Figure(_figure(fig), caption))


def _regions(section, affine, regions, ids, names, counts, coverage, what: str) -> None:
    """Draw a region image and tabulate the regions (0 coverage: red)."""
    background = reports.to_ras(_template_on(regions.shape, affine), affine)
    low = np.asarray(coverage if coverage is not None else np.ones(len(ids))) == 0
    fig = reports.plot_atlas(background, reports.to_ras(regions, affine), low)
    caption = (
        f"{len(ids)} {what} over the MNI152 template; {int(low.sum())} with no voxel in the "
        "mask in red."
    )
    section.figures.append(reports.Figure(_figure(fig), caption))
    rows = [
        [
            i,
            n,
            None if counts is None else int(counts[k]),
            None if coverage is None else float(coverage[k]),
        ]
        for k, (i, n) in enumerate(zip(ids, names, strict=True))
    ]
    section.tables.append(reports.Table(["id", "name", "voxels", "coverage"], rows, sortable=True))


def _labels_section(masker, section, displayed) -> None:
    atlas = masker.region_atlas_
    labels = np.asarray(atlas.dataobj).astype(np.int64)
    keys = sorted(k for k in masker.region_ids_ if k != "background")
    ids = np.array([masker.region_ids_[k] for k in keys], dtype=np.int64)
    order = np.argsort(ids)
    where = np.clip(np.searchsorted(ids[order], labels), 0, max(ids.size - 1, 0))
    found = ids[order][where] == labels
    regions = np.where(found, order[where] + 1, 0).astype(np.int32)
    names = [masker.region_names_[k] for k in keys]
    counts, coverage = masker.region_voxel_counts_, masker.region_coverage_
    _regions(section, atlas.affine, regions, ids.tolist(), names, counts, coverage, "regions")


def _cifti_section(masker, section, displayed) -> None:
    """Grayordinates by structure group, the parcels' coverage (histogram and table)."""
    names = np.asarray(masker.brain_models_.name)
    left = int(np.sum(names == "CIFTI_STRUCTURE_CORTEX_LEFT"))
    right = int(np.sum(names == "CIFTI_STRUCTURE_CORTEX_RIGHT"))
    groups = [
        ["left cortex", left],
        ["right cortex", right],
        ["subcortex", names.size - left - right],
    ]
    section.tables.append(reports.Table(["grayordinates", "count"], groups))
    coverage = np.asarray(masker.region_coverage_)
    fig = reports.plot_histogram(
        coverage, "fraction of the parcel's grayordinates with data", value_range=(0, 1)
    )
    caption = f"Coverage of the {coverage.size} parcels; {int(np.sum(coverage == 0))} with none."
    section.figures.append(reports.Figure(_figure(fig), caption))
    keys = sorted(k for k in masker.region_ids_ if k != "background")
    rows = [
        [
            masker.region_ids_[k],
            masker.region_names_[k],
            int(masker.region_grayordinate_counts_[k]),
            float(coverage[k]),
        ]
        for k in keys
    ]
    columns = ["id", "name", "grayordinates", "coverage"]
    section.tables.append(reports.Table(columns, rows, sortable=True))


def _chosen(displayed, n: int) -> np.ndarray:
    """Return the maps or spheres to draw: ``"all"``, the first ``displayed``, or a list."""
    if isinstance(displayed, str):
        if displayed != "all":
            raise ValueError(f"displayed must be 'all', a number or a list; got {displayed!r}.")
        return np.arange(n)
    if np.isscalar(displayed):
        return np.arange(min(int(displayed), n))
    chosen = np.asarray(displayed, dtype=int)
    if chosen.size and (chosen.min() < 0 or chosen.max() >= n):
        raise ValueError(f"displayed indices must be in [0, {n - 1}]; got {chosen.tolist()}.")
    return chosen


def _maps_section(masker, section, displayed) -> None:
    maps_img = masker.maps_img_
    maps = np.asarray(maps_img.dataobj, dtype=np.float32)
    chosen = _chosen(displayed, maps.shape[3])
    part = np.abs(maps[..., chosen])
    regions = (
        np.where(part.max(axis=-1) > 0, part.argmax(axis=-1) + 1, 0)
        if chosen.size
        else (np.zeros(maps.shape[:3], dtype=np.int32))
    )
    coverage = masker.region_coverage_
    counts = masker.region_voxel_counts_
    names = [f"map {i}" for i in chosen]
    _regions(
        section,
        maps_img.affine,
        regions,
        chosen.tolist(),
        names,
        None if counts is None else np.asarray(counts)[chosen],
        None if coverage is None else np.asarray(coverage)[chosen],
        f"of {maps.shape[3]} maps (strongest map per voxel)",
    )


def _spheres_section(masker, section, displayed) -> None:
    grid = masker.mask_img_
    if grid is None and masker._fitted_spec is not None:
        shape, affine, _ = masker._fitted_spec
    elif grid is not None:
        shape, affine = grid.shape[:3], grid.affine
    else:
        template = load_mni152_template(resolution=2)
        shape, affine = template.shape[:3], template.affine
    seeds = np.asarray(masker.seeds_, dtype=float)
    chosen = _chosen(displayed, len(seeds))
    spec = SpheresSpec(seeds[chosen], affine, shape, masker.radius, allow_overlap=True)
    regions = np.zeros(int(np.prod(shape)), dtype=np.int32)
    membership = spec.membership.tocoo()
    regions[spec.voxels[membership.col]] = membership.row + 1
    coverage = masker.region_coverage_
    counts = masker.region_voxel_counts_
    names = [f"({x:g}, {y:g}, {z:g})" for x, y, z in seeds[chosen]]
    _regions(
        section,
        affine,
        regions.reshape(shape),
        chosen.tolist(),
        names,
        None if counts is None else np.asarray(counts)[chosen],
        None if coverage is None else np.asarray(coverage)[chosen],
        f"of {len(seeds)} spheres",
    )
