"""Surface images (nilearn's ``SurfaceImage``), recognised by duck typing.

bidsmask never imports nilearn. An object with a ``mesh`` and a ``data`` whose ``parts`` is a dict
(hemisphere -> array of shape (n_vertices,) or (n_vertices, n_samples)) is a surface image: the
functions of :mod:`bidsmask.image` and :mod:`bidsmask.masking` that nilearn 0.14 extends to
surfaces work on its parts with numpy and return a new object of the input's own class, built as
``type(img)(mesh=img.mesh, data={hemisphere: array})`` (the mesh is shared, not copied). Each
mesh part has ``coordinates`` (n_vertices, 3), ``faces`` (n_faces, 3) and ``n_vertices``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

__all__ = [
    "all_surface_imgs",
    "check_compatible_mask",
    "check_ndims",
    "check_same_mesh",
    "concat_surface",
    "index_surface",
    "is_surface_img",
    "iter_surface",
    "load_surface_mask",
    "map_parts",
    "mask_surface",
    "mean_surface",
    "n_samples",
    "new_surface_like",
    "remove_small_surface_clusters",
    "smooth_surface",
    "surface_data",
]


def is_surface_img(obj: Any) -> bool:
    """Whether ``obj`` is a surface image (has ``mesh`` and ``data.parts``, a dict)."""
    return hasattr(obj, "mesh") and isinstance(
        getattr(getattr(obj, "data", None), "parts", None), dict
    )


def all_surface_imgs(imgs: Any) -> bool:
    """Whether ``imgs`` is a non-empty list or tuple of surface images."""
    return isinstance(imgs, (list, tuple)) and bool(imgs) and all(map(is_surface_img, imgs))


def check_compatible_mask(mask_img: Any, imgs: Any) -> None:
    """Raise ``TypeError`` when a surface mask meets volume images or the reverse.

    Parameters
    ----------
    mask_img : image or None
        The mask (None: nothing to check).
    imgs : image or list of images
        The images the mask is applied to.
    """
    if mask_img is None:
        return
    imgs = imgs if isinstance(imgs, (list, tuple)) else [imgs]
    if is_surface_img(mask_img):
        bad, expected = [img for img in imgs if not is_surface_img(img)], "SurfaceImage instances"
    else:
        bad, expected = [img for img in imgs if is_surface_img(img)], "NIfTI images (or paths)"
    if bad:
        raise TypeError(
            "Mask and input images must be of compatible types.\n"
            f"Got mask of type: {type(mask_img).__name__}, and images of type: "
            f"{[type(img).__name__ for img in imgs]}; {expected} were expected."
        )


def surface_data(img: Any, ensure_finite: bool = False) -> np.ndarray:
    """Return the data of all hemispheres stacked along the vertices (a new array).

    Parameters
    ----------
    img : surface image
        The image.
    ensure_finite : bool, default=False
        Replace non-finite values by 0.

    Returns
    -------
    numpy.ndarray
        (n_vertices,) or (n_vertices, n_samples).
    """
    data = np.concatenate([np.asarray(part) for part in img.data.parts.values()], axis=0)
    if ensure_finite and data.dtype.kind in "fc":
        data[~np.isfinite(data)] = 0
    return data


def new_surface_like(ref: Any, data: Any) -> Any:
    """Return a surface image of ``ref``'s class on ``ref``'s mesh with new data.

    Parameters
    ----------
    ref : surface image
        Reference image (its mesh is shared).
    data : dict, object with ``parts``, or numpy.ndarray
        Data per hemisphere; an array stacked along the vertices is split like ``ref``'s parts.

    Returns
    -------
    surface image
        Of ``type(ref)``.
    """
    if hasattr(data, "parts"):
        data = data.parts
    elif not isinstance(data, dict):
        data = np.asarray(data)
        sizes = [np.shape(part)[0] for part in ref.data.parts.values()]
        data = dict(zip(ref.data.parts, np.split(data, np.cumsum(sizes)[:-1]), strict=True))
    return type(ref)(mesh=ref.mesh, data=dict(data))


def map_parts(img: Any, func: Callable[[np.ndarray], np.ndarray]) -> Any:
    """Apply ``func`` to each hemisphere's data and return a new surface image."""
    return new_surface_like(img, {hemi: func(np.asarray(p)) for hemi, p in img.data.parts.items()})


def check_ndims(img: Any, ndim: int, var_name: str = "img") -> None:
    """Raise ``ValueError`` unless every part of ``img`` has ``ndim`` dimensions."""
    found = {hemi: np.ndim(part) for hemi, part in img.data.parts.items()}
    if any(n != ndim for n in found.values()):
        shown = ", ".join(f"{n}D for {hemi}" for hemi, n in found.items())
        raise ValueError(f"Data for each part of {var_name} should be {ndim}D. Found: {shown}.")


def n_samples(img: Any) -> int:
    """Return the number of samples (time points) of a surface image; 1 for 1D data."""
    shape = np.shape(next(iter(img.data.parts.values())))
    return 1 if len(shape) == 1 else shape[1]


def check_same_mesh(img: Any, other: Any, what: str = "mask_img") -> None:
    """Raise ``ValueError`` unless two surface images have hemispheres with equal vertex counts."""
    parts, other_parts = img.mesh.parts, other.mesh.parts
    if set(parts) != set(other_parts) or any(
        parts[hemi].n_vertices != other_parts[hemi].n_vertices for hemi in parts
    ):
        raise ValueError(
            f"The meshes of {what} and the image differ: "
            f"{ {h: m.n_vertices for h, m in other_parts.items()} } vertices vs "
            f"{ {h: m.n_vertices for h, m in parts.items()} }. Use images on the same mesh."
        )


def load_surface_mask(mask_img: Any, allow_empty: bool = False) -> Any:
    """Check that a 1D surface mask is binary and return it with boolean parts (a new image).

    Parameters
    ----------
    mask_img : surface image
        1D mask (non-finite values count as 0).
    allow_empty : bool, default=False
        Accept a mask of zeros only.

    Returns
    -------
    surface image
        The mask with boolean data.
    """
    check_ndims(mask_img, 1, "mask_img")
    values = np.unique(surface_data(mask_img, ensure_finite=True))
    if len(values) == 1 and values[0] == 0 and not allow_empty:
        raise ValueError("The surface mask is invalid as it is empty: it masks all data.")
    if len(values) == 2 and 0 not in values:
        raise ValueError(
            f"Background of the surface mask must be represented with 0. Given mask contains: "
            f"{values}."
        )
    if len(values) > 2:
        raise ValueError(
            f"The surface mask is not made of 2 values: {values}. Cannot interpret as true or "
            "false; binarize it first."
        )
    return map_parts(mask_img, lambda part: np.nan_to_num(part) != 0)


def _adjacency(mesh: Any) -> sparse.csr_matrix:
    """Symmetric vertex adjacency (ones on the edges of the mesh's faces)."""
    faces = np.asarray(mesh.faces, dtype=np.int64)
    n = int(mesh.n_vertices)
    rows = np.concatenate([faces[:, 0], faces[:, 0], faces[:, 1]])
    cols = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 2]])
    adjacency = sparse.coo_matrix(
        (np.ones(2 * rows.size), (np.r_[rows, cols], np.r_[cols, rows])), shape=(n, n)
    ).tocsr()
    adjacency.data[:] = 1.0  # duplicated edges (shared by two faces) count once
    return adjacency


def _mesh_area(mesh: Any) -> float:
    coords = np.asarray(mesh.coordinates, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    a, b, c = coords[faces[:, 0]], coords[faces[:, 1]], coords[faces[:, 2]]
    return float(0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1).sum())


def _n_iterations(fwhm: float, mesh: Any) -> int:
    """Return the neighbour-averaging steps giving a Gaussian of this FWHM (FreeSurfer rule)."""
    sigma = fwhm / math.sqrt(math.log(256.0))
    mean_vertex_area = _mesh_area(mesh) / mesh.n_vertices
    return math.floor(1.14 * 4 * math.pi * sigma**2 / (7 * mean_vertex_area) + 0.5)


def smooth_surface(img: Any, fwhm: float | None) -> Any:
    """Smooth a surface image along its mesh, as ``nilearn.image.smooth_img`` does.

    Each step replaces a vertex's value by half itself plus half the mean of its neighbours;
    the number of steps per hemisphere follows FreeSurfer's rule from ``fwhm`` (mm) and the
    mean vertex area. Non-finite values become 0 first. Each sample of 2D data is smoothed
    on its own.

    Parameters
    ----------
    img : surface image
        The image (left unchanged).
    fwhm : float or None
        Full width at half maximum in mm; None or 0: no smoothing.

    Returns
    -------
    surface image
        The smoothed image.
    """
    if fwhm is not None and (np.ndim(fwhm) != 0 or isinstance(fwhm, str)):
        raise TypeError(
            f"For surface data, 'fwhm' must be a scalar (a number or None); got {fwhm!r}."
        )
    smoothed = {}
    for hemi, part in img.data.parts.items():
        data = np.array(part, copy=True)
        if data.dtype.kind in "fc":
            data[~np.isfinite(data)] = 0
        mesh = img.mesh.parts[hemi]
        n_iter = _n_iterations(float(fwhm), mesh) if fwhm else 0
        if n_iter > 0:
            adjacency = _adjacency(mesh)
            degree = np.asarray(adjacency.sum(axis=1)).ravel()
            scale = np.divide(0.5, degree, out=np.zeros_like(degree), where=degree > 0)
            center = np.where(degree > 0, 0.5, 1.0)
            operator = (sparse.diags(scale) @ adjacency + sparse.diags(center)).tocsr()
            for _ in range(n_iter):
                data = operator @ data
        smoothed[hemi] = data
    return new_surface_like(img, smoothed)


def remove_small_surface_clusters(img: Any, min_size: int) -> None:
    """Zero, in place, the clusters of non-zero vertices (edge-connected) below ``min_size``."""
    for hemi, part in img.data.parts.items():
        adjacency = _adjacency(img.mesh.parts[hemi])
        columns = part[:, None] if part.ndim == 1 else part
        for column in columns.T:
            nonzero = np.flatnonzero(column)
            if nonzero.size == 0:
                continue
            _, labels = connected_components(adjacency[nonzero][:, nonzero], directed=False)
            sizes = np.bincount(labels)
            column[nonzero[sizes[labels] < min_size]] = 0


def mask_surface(imgs: Any, mask_img: Any, dtype: Any = "f", smoothing_fwhm: Any = None) -> Any:
    """Return the in-mask vertices of a surface image: (n_samples, n_vertices) or (n_vertices,).

    Parameters
    ----------
    imgs : surface image
        1D or 2D data on the mask's mesh.
    mask_img : surface image
        1D binary mask.
    dtype : numpy dtype or "f", default="f"
        Output dtype; "f" keeps float data's dtype and turns other data into float32.
    smoothing_fwhm : float or None, default=None
        Smooth along the mesh first (see :func:`smooth_surface`).

    Returns
    -------
    numpy.ndarray
    """
    if smoothing_fwhm is not None and (
        np.ndim(smoothing_fwhm) != 0 or isinstance(smoothing_fwhm, str)
    ):
        raise TypeError(
            "For surface data, 'smoothing_fwhm' must be of type float, int or None; got "
            f"{type(smoothing_fwhm).__name__} {smoothing_fwhm!r}."
        )
    check_same_mesh(imgs, mask_img)
    mask = surface_data(load_surface_mask(mask_img))
    if smoothing_fwhm:
        imgs = smooth_surface(imgs, smoothing_fwhm)
    series = surface_data(imgs)
    if dtype == "f":
        dtype = series.dtype if series.dtype.kind == "f" else np.float32
    return np.ascontiguousarray(series[mask].astype(dtype, copy=False).T)


def iter_surface(img: Any) -> Iterator[Any]:
    """Yield one surface image per sample (a 1D image yields itself, as a new object)."""
    if np.ndim(next(iter(img.data.parts.values()))) == 1:
        yield map_parts(img, np.copy)
        return
    for index in range(n_samples(img)):
        yield map_parts(img, lambda part, i=index: part[:, i : i + 1].copy())


def index_surface(img: Any, index: Any) -> Any:
    """Select samples of a 2D surface image (the result stays 2D)."""
    check_ndims(img, 2, "imgs")
    if hasattr(index, "iloc") and hasattr(index, "to_numpy"):
        index = index.to_numpy().ravel()
    if isinstance(index, (int, np.integer)):
        return map_parts(img, lambda part: part[:, index][:, None].copy())
    return map_parts(img, lambda part: part[:, index].copy())


def _as_2d(part: np.ndarray) -> np.ndarray:
    part = np.asarray(part)
    return part[:, None] if part.ndim == 1 else part


def concat_surface(imgs: list[Any], dtype: Any = np.float32) -> Any:
    """Concatenate 1D or 2D surface images on one mesh along the samples (2D result)."""
    first = imgs[0]
    for img in imgs[1:]:
        check_same_mesh(first, img, what="each image")
    if dtype is None:
        dtype = next(iter(first.data.parts.values())).dtype
    return new_surface_like(
        first,
        {
            hemi: np.concatenate([_as_2d(img.data.parts[hemi]) for img in imgs], axis=1).astype(
                dtype
            )
            for hemi in first.data.parts
        },
    )


def mean_surface(imgs: Any) -> Any:
    """Mean over samples of a surface image, or the mean of the means of several (1D result).

    A 1D image, or a 2D image with one sample, is its own mean (its data are kept as they are).
    """
    imgs = list(imgs) if isinstance(imgs, (list, tuple)) else [imgs]

    def one(img: Any) -> Any:
        if n_samples(img) < 2:
            return map_parts(img, np.copy)
        return map_parts(img, lambda part: np.mean(part, axis=1, dtype=np.float64))

    if len(imgs) == 1:
        return one(imgs[0])
    stacked = concat_surface([one(img) for img in imgs], dtype=np.float64)
    return map_parts(stacked, lambda part: part.mean(axis=1))
