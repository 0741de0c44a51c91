"""CIFTI-2 grayordinates: dense files in, atlases aligned, parcellated files out.

fMRIPrep's ``--cifti-output`` writes ``*_space-fsLR_den-91k_bold.dtseries.nii``: an
uncompressed NIfTI-2 whose axis 0 is a :class:`nibabel.cifti2.SeriesAxis` (one row per volume)
and axis 1 a :class:`nibabel.cifti2.BrainModelAxis` (cortical vertices, then subcortical
voxels). Its ``dataobj`` reads blocks of rows without loading the run, so
:func:`extract` streams it into every atlas at once, by chunks of grayordinates (all volumes of
a range of columns: one contiguous read, since NIfTI stores time fastest).

Atlases are ``.dlabel.nii`` files whose brain models need not be the data's: an atlas may cover
whole 32,492-vertex meshes, the cortex only or the subcortex only. :func:`align_labels` matches
atlas and data by (structure, vertex index) on surfaces and (structure, voxel index) in
volumes, never by position. Outputs are built from nibabel's axes with the intents Connectome
Workbench expects: ``ConnParcelSries`` (ptseries), ``ConnParcels`` (pconn),
``ConnParcelScalr`` (pscalar), ``ConnDenseScalar`` (dscalar), ``ConnDenseSeries`` (dtseries).
"""

from __future__ import annotations

import logging
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel import cifti2

from bidsmask._cifti_file import DenseFile, read_dense
from bidsmask.regions._grayordinates import GrayordinateSpec, extract_grayordinates

logger = logging.getLogger(__name__)

__all__ = [
    "CiftiAtlas",
    "DenseFile",
    "align_labels",
    "atlas_spec",
    "dense_axis",
    "dscalar_image",
    "dtseries_image",
    "extract",
    "load_cifti",
    "load_dlabel",
    "open_dense",
    "parcels_axis",
    "pconn_image",
    "pscalar_image",
    "ptseries_image",
    "save",
]


def _name(source) -> str:
    return str(source) if isinstance(source, (str, os.PathLike)) else type(source).__name__


def load_cifti(source: str | os.PathLike | cifti2.Cifti2Image) -> cifti2.Cifti2Image:
    """Open a CIFTI-2 file lazily (its data are read only when sliced).

    Raises
    ------
    ValueError
        When the file is not CIFTI-2 or its second axis is not brain models.
    """
    if isinstance(source, cifti2.Cifti2Image):
        img = source
    elif not isinstance(source, (str, os.PathLike)):
        raise ValueError(
            f"Expected a CIFTI-2 file or image; got a {type(source).__name__}, not a CIFTI-2 "
            "file. Pass a .dtseries.nii path or a nibabel Cifti2Image."
        )
    else:
        try:
            img = nib.load(os.fspath(source))
        except (OSError, ValueError, nib.filebasedimages.ImageFileError) as exc:
            raise ValueError(f"{_name(source)}: cannot read it as CIFTI-2 ({exc}).") from exc
        if not isinstance(img, cifti2.Cifti2Image):
            raise ValueError(
                f"{_name(source)}: not a CIFTI-2 file (a {type(img).__name__}); expected "
                "a .dtseries.nii, .dscalar.nii or .dlabel.nii."
            )
    # checked on the header's index map: building the axis costs ~0.3 s for 91k grayordinates
    kind = img.header.matrix.get_index_map(1).indices_map_to_data_type
    if kind != "CIFTI_INDEX_TYPE_BRAIN_MODELS":
        raise ValueError(
            f"{_name(source)}: axis 1 is {kind}, not brain models (expected a dense file, "
            "not a parcellated one)."
        )
    return img


def open_dense(source: str | os.PathLike | cifti2.Cifti2Image) -> DenseFile:
    """Open a dense CIFTI-2 file for reading: its grayordinates, rows and lazy data.

    An uncompressed, unscaled NIfTI-2 (as fMRIPrep writes) is read from its XML and
    memory-mapped (:mod:`bidsmask._cifti_file`: ~10x faster than ``nibabel.load`` for 91k
    grayordinates); anything else goes through nibabel. The same values either way.

    Raises
    ------
    ValueError
        When the file is not CIFTI-2 or its second axis is not brain models.
    """
    if isinstance(source, (str, os.PathLike)):
        try:
            dense = read_dense(source)
        except (ET.ParseError, ValueError, TypeError, AttributeError) as exc:
            raise ValueError(f"{_name(source)}: cannot read it as CIFTI-2 ({exc}).") from exc
        if dense is not None:
            return dense
    img = load_cifti(source)
    rows = img.header.get_axis(0)
    series = (rows.start, rows.step) if isinstance(rows, cifti2.SeriesAxis) else None
    names = (
        {int(k): v[0] for k, v in rows.label[0].items()}
        if isinstance(rows, cifti2.LabelAxis)
        else {}
    )
    return DenseFile(_name(source), dense_axis(img, source), img.dataobj, series, names)


def dense_axis(img: cifti2.Cifti2Image | DenseFile, source=None) -> cifti2.BrainModelAxis:
    """Return the brain models (grayordinates) along axis 1 of a dense CIFTI file."""
    if isinstance(img, DenseFile):
        return img.axis
    axis = img.header.get_axis(1)
    if not isinstance(axis, cifti2.BrainModelAxis):
        raise ValueError(
            f"{_name(source if source is not None else img)}: axis 1 is "
            f"{type(axis).__name__}, not brain models (expected a dense file, not a "
            "parcellated one)."
        )
    return axis


@dataclass(frozen=True)
class CiftiAtlas:
    """A grayordinate atlas: one label per grayordinate of its own brain models.

    Attributes
    ----------
    labels : numpy.ndarray
        int64 label of each grayordinate of ``axis`` (``0`` outside every parcel).
    axis : nibabel.cifti2.BrainModelAxis
        The atlas's own brain models.
    names : dict
        Name of each label.
    source : str
        Where the atlas came from (for messages).
    """

    labels: np.ndarray
    axis: cifti2.BrainModelAxis
    names: dict
    source: str = "atlas"

    @property
    def region_ids(self) -> np.ndarray:
        """Labels used by at least one grayordinate, in increasing order."""
        return np.unique(self.labels[self.labels != 0])

    @property
    def sizes(self) -> np.ndarray:
        """Grayordinates of each region of ``region_ids`` in the whole atlas."""
        _, counts = np.unique(self.labels[self.labels != 0], return_counts=True)
        return counts.astype(np.int64)


def load_dlabel(
    source: str | os.PathLike | cifti2.Cifti2Image, names: Mapping[int, str] | None = None
) -> CiftiAtlas:
    """Read the first map of a ``.dlabel.nii`` (or an integer-valued ``.dscalar.nii``).

    Parameters
    ----------
    source : str, os.PathLike or nibabel.cifti2.Cifti2Image
        The atlas.
    names : mapping or None, default=None
        Region names by label (a look-up table); ``None`` uses the file's label table.

    Returns
    -------
    CiftiAtlas
    """
    dense = open_dense(source)
    values = np.asarray(dense.dataobj[0:1, :])[0]
    if not np.all(np.isfinite(values)) or not np.array_equal(values, np.round(values)):
        raise ValueError(
            f"{_name(source)}: the atlas has non-integer values; expected a label file."
        )
    labels = values.astype(np.int64)
    if np.all(labels == 0):
        raise ValueError(f"{_name(source)}: the atlas labels no grayordinate.")
    table = dict(dense.label_names)
    if names is not None:
        table = {int(k): str(v) for k, v in names.items()}
    ids = np.unique(labels[labels != 0])
    missing = [int(i) for i in ids if int(i) not in table]
    if names is not None and missing:
        raise ValueError(
            f"{_name(source)}: labels {missing[:10]} are missing from the look-up table."
        )
    region_names = {int(i): table.get(int(i), str(int(i))) for i in ids}
    return CiftiAtlas(labels, dense.axis, region_names, _name(source))


@dataclass(frozen=True)
class _Structure:
    """One structure of a brain-model axis: where it sits and its vertices or voxels."""

    slice: slice
    vertices: np.ndarray | None  # surface: vertex indices
    n_vertices: int | None
    voxels: np.ndarray | None  # volume: (n, 3) voxel indices


def _structures(axis: cifti2.BrainModelAxis) -> dict[str, _Structure]:
    """Split an axis into its structures, from its arrays.

    nibabel's ``iter_structures`` rebuilds each part through the slow axis constructor (~0.3 s
    for 91k grayordinates).
    """
    names = np.asarray(axis.name)
    starts = np.flatnonzero(np.r_[True, names[1:] != names[:-1]])
    stops = np.r_[starts[1:], names.size]
    vertex, voxel = axis.vertex, axis.voxel
    out = {}
    for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
        name, slc = str(names[a]), slice(a, b)
        if vertex[a] >= 0:
            out[name] = _Structure(slc, vertex[slc], int(axis.nvertices[name]), None)
        else:
            out[name] = _Structure(slc, None, None, voxel[slc])
    return out


def align_labels(atlas: CiftiAtlas, data_axis: cifti2.BrainModelAxis) -> np.ndarray:
    """Give each data grayordinate its atlas label, matched by structure and index.

    Surface grayordinates match by (structure, vertex), voxels by (structure, voxel index);
    data grayordinates the atlas does not list get 0.

    Raises
    ------
    ValueError
        When a structure's mesh sizes differ (another density) or the volume grids differ.
    """
    out = np.zeros(len(data_axis), dtype=np.int64)
    atlas_parts = _structures(atlas.axis)
    for name, data in _structures(data_axis).items():
        if name not in atlas_parts:
            continue
        part = atlas_parts[name]
        atlas_labels = atlas.labels[part.slice]
        if (data.vertices is None) != (part.vertices is None):
            kinds = (
                ("a surface", "a volume")
                if part.vertices is not None
                else ("a volume", "a surface")
            )
            raise ValueError(
                f"{atlas.source}: {name} is {kinds[0]} in the atlas, {kinds[1]} in the data."
            )
        if data.vertices is not None:
            if data.n_vertices != part.n_vertices:
                raise ValueError(
                    f"{atlas.source}: {name} has {part.n_vertices} vertices in the atlas but "
                    f"{data.n_vertices} in the data. Use the atlas at the data's density."
                )
            lookup = np.zeros(part.n_vertices, dtype=np.int64)
            lookup[part.vertices] = atlas_labels
            out[data.slice] = lookup[data.vertices]
            continue
        shape = tuple(data_axis.volume_shape)
        if tuple(atlas.axis.volume_shape) != shape or not np.allclose(
            atlas.axis.affine, data_axis.affine
        ):
            raise ValueError(
                f"{atlas.source}: the atlas's volume grid ({atlas.axis.volume_shape}) differs "
                f"from the data's ({shape}) or their affines differ. Use an atlas of the "
                "data's grayordinate space."
            )
        atlas_index = np.ravel_multi_index(tuple(part.voxels.T), shape)
        order = np.argsort(atlas_index)
        data_index = np.ravel_multi_index(tuple(data.voxels.T), shape)
        pos = np.minimum(np.searchsorted(atlas_index[order], data_index), order.size - 1)
        found = atlas_index[order][pos] == data_index
        out[data.slice] = np.where(found, atlas_labels[order][pos], 0)
    return out


def atlas_spec(atlas: CiftiAtlas, data_axis: cifti2.BrainModelAxis) -> GrayordinateSpec:
    """Build the extraction spec of an atlas on a data's grayordinates (all regions kept)."""
    return GrayordinateSpec(
        align_labels(atlas, data_axis), region_ids=atlas.region_ids, atlas_sizes=atlas.sizes
    )


def extract(
    img: str | os.PathLike | cifti2.Cifti2Image | DenseFile,
    specs: Sequence[GrayordinateSpec],
    *,
    chunk_grayordinates: int | None = None,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Read a dense file once, by chunks of grayordinates, into every spec.

    Returns
    -------
    signals : list of numpy.ndarray
        float32 (n_volumes, n_regions) per spec: means of the qualifying grayordinates.
    qualified : numpy.ndarray
        Boolean (n_grayordinates,): grayordinates finite and not all zero (see
        :mod:`bidsmask.regions._grayordinates`).
    """
    if isinstance(img, cifti2.Cifti2Image):
        data = load_cifti(img).dataobj
    else:
        data = (img if isinstance(img, DenseFile) else open_dense(img)).dataobj
    return extract_grayordinates(data, specs, chunk_grayordinates=chunk_grayordinates)


def parcels_axis(
    labels: np.ndarray,
    data_axis: cifti2.BrainModelAxis,
    region_ids: Sequence[int],
    names: Sequence[str],
) -> cifti2.ParcelsAxis:
    """Build a parcels axis: each region's vertices and voxels among the data's."""
    labels = np.asarray(labels)
    region_ids = np.asarray(region_ids)
    # grayordinates grouped by region: one sort, then a slice per region
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.stack([region_ids, region_ids + 1]))
    surfaces = [
        (name, np.arange(len(data_axis))[part.slice])
        for name, part in _structures(data_axis).items()
        if part.vertices is not None
    ]
    structure = np.full(len(data_axis), -1)
    for i, (_, where) in enumerate(surfaces):
        structure[where] = i
    all_voxels = data_axis.voxel.astype(np.int64)  # nibabel computes these properties anew
    all_vertices = data_axis.vertex.astype(np.int64)
    in_volume = data_axis.volume_mask
    voxels, vertices = [], []
    for start, stop in bounds.T:
        members = order[start:stop]
        voxels.append(all_voxels[members[in_volume[members]]])
        on_surface = {
            name: all_vertices[members[structure[members] == i]]
            for i, (name, _) in enumerate(surfaces)
        }
        # Workbench rejects empty <Vertices> elements: list only the structures used
        vertices.append({name: v for name, v in on_surface.items() if v.size})
    has_volume = bool(data_axis.volume_mask.any())
    return cifti2.ParcelsAxis(
        list(names),
        voxels,
        vertices,
        affine=data_axis.affine if has_volume else None,
        volume_shape=data_axis.volume_shape if has_volume else None,
        nvertices=dict(data_axis.nvertices),
    )


def _image(data: np.ndarray, axes: tuple, intent: str) -> cifti2.Cifti2Image:
    img = cifti2.Cifti2Image(np.asarray(data, dtype=np.float32), header=axes)
    img.nifti_header.set_intent(intent)
    return img


def ptseries_image(
    signals: np.ndarray, parcels: cifti2.ParcelsAxis, t_r: float, start: float = 0.0
) -> cifti2.Cifti2Image:
    """Parcellated time series (n_volumes, n_parcels), intent ConnParcelSries."""
    series = cifti2.SeriesAxis(start=start, step=float(t_r), size=signals.shape[0], unit="SECOND")
    return _image(signals, (series, parcels), "ConnParcelSries")


def pconn_image(matrix: np.ndarray, parcels: cifti2.ParcelsAxis) -> cifti2.Cifti2Image:
    """Parcel-by-parcel matrix, intent ConnParcels."""
    return _image(matrix, (parcels, parcels), "ConnParcels")


def pscalar_image(
    values: np.ndarray, parcels: cifti2.ParcelsAxis, map_names: Sequence[str]
) -> cifti2.Cifti2Image:
    """Parcel maps (n_maps, n_parcels), intent ConnParcelScalr."""
    values = np.atleast_2d(values)
    return _image(values, (cifti2.ScalarAxis(list(map_names)), parcels), "ConnParcelScalr")


def dscalar_image(
    values: np.ndarray, axis: cifti2.BrainModelAxis, map_names: Sequence[str]
) -> cifti2.Cifti2Image:
    """Dense maps (n_maps, n_grayordinates), intent ConnDenseScalar."""
    values = np.atleast_2d(values)
    return _image(values, (cifti2.ScalarAxis(list(map_names)), axis), "ConnDenseScalar")


def dtseries_image(
    signals: np.ndarray, axis: cifti2.BrainModelAxis, t_r: float, start: float = 0.0
) -> cifti2.Cifti2Image:
    """Dense time series (n_volumes, n_grayordinates), intent ConnDenseSeries."""
    series = cifti2.SeriesAxis(start=start, step=float(t_r), size=signals.shape[0], unit="SECOND")
    return _image(signals, (series, axis), "ConnDenseSeries")


def save(img: cifti2.Cifti2Image, path: str | os.PathLike) -> Path:
    """Save a CIFTI image (uncompressed NIfTI-2)."""
    path = Path(path)
    nib.save(img, path)
    return path
