"""Network territories and parcellations drawn on an :class:`~._anatomy.Anatomy`.

The same network maps drive the BOLD signals (:mod:`._bold`) and the atlases, so that
parcels of one network carry correlated signals, as they would in real data.
Parcellations are deterministic: seeds come from farthest-point sampling, parcels are the
seeds' Voronoi cells.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bidsmask.datagen import _tables
from bidsmask.datagen._anatomy import Anatomy

NETWORK_NAMES = tuple(_tables.NETWORKS)
NETWORK_SIGMA_MM = 18.0


def network_maps(anat: Anatomy) -> np.ndarray:
    """Return the loading of every voxel on each network, shape ``anat.shape + (7,)``.

    Each map is a sum of bilateral Gaussian blobs (σ = 18 mm) around the centres of
    ``_tables.NETWORKS``, scaled to a maximum of 1 inside the brain, 0 outside.
    """
    xyz = anat.mni_xyz.astype(np.float64)
    maps = np.zeros(anat.shape + (len(NETWORK_NAMES),), dtype=np.float32)
    for n, (_colour, centres) in enumerate(_tables.NETWORKS.values()):
        total = np.zeros(anat.shape)
        for cx, cy, cz in centres:
            for x in (cx, -cx):
                d2 = ((xyz - (x, cy, cz)) ** 2).sum(axis=-1)
                total += np.exp(-d2 / (2 * NETWORK_SIGMA_MM**2))
        peak = total[anat.brain].max()
        maps[..., n] = np.where(anat.brain, total / peak, 0)
    return maps


def farthest_points(coords: np.ndarray, k: int) -> np.ndarray:
    """Pick ``k`` spread-out rows of ``coords`` (n, 3), deterministically.

    Starts from the row nearest the centroid, then repeatedly adds the row farthest from
    those already picked. Returns their indices.
    """
    if k > len(coords):
        raise ValueError(f"Cannot pick {k} seeds among {len(coords)} voxels.")
    picked = [int(np.argmin(((coords - coords.mean(axis=0)) ** 2).sum(axis=1)))]
    nearest = ((coords - coords[picked[0]]) ** 2).sum(axis=1)
    for _ in range(k - 1):
        picked.append(int(np.argmax(nearest)))
        nearest = np.minimum(nearest, ((coords - coords[picked[-1]]) ** 2).sum(axis=1))
    return np.asarray(picked)


def voronoi(coords: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Index of the nearest seed (rows of ``seeds``) for every row of ``coords``."""
    d2 = ((coords[:, None, :] - seeds[None, :, :]) ** 2).sum(axis=-1)
    return np.argmin(d2, axis=1)


def _split(coords: np.ndarray, k: int) -> np.ndarray:
    """Split voxels into ``k`` parcels numbered from posterior to anterior."""
    seeds = coords[farthest_points(coords, k)]
    seeds = seeds[np.lexsort((seeds[:, 2], seeds[:, 1]))]
    return voronoi(coords, seeds)


def balanced_territories(loadings: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Assign voxels to networks, near their blobs, with sizes close to ``targets``.

    Each voxel goes to the network of largest ``loading * bias``; the biases are
    adjusted until every territory size is close to its target, so that a network with
    many parcels gets room for them.

    Parameters
    ----------
    loadings : numpy.ndarray
        (n_voxels, n_networks) loadings.
    targets : numpy.ndarray
        (n_networks,) wanted number of voxels of each network.

    Returns
    -------
    numpy.ndarray
        (n_voxels,) network index of every voxel.
    """
    bias = np.ones(loadings.shape[1])
    for _ in range(100):
        network = np.argmax(loadings * bias, axis=1)
        sizes = np.bincount(network, minlength=loadings.shape[1])
        bias *= ((targets + 1.0) / (sizes + 1.0)) ** 0.25
    return network


def schaefer_atlas(anat: Anatomy) -> tuple[np.ndarray, pd.DataFrame]:
    """Draw a Schaefer-2018-like 100-parcel, 7-network atlas on the cortical ribbon.

    Each hemisphere's ribbon is split into network territories around the network blobs
    (:func:`balanced_territories`, sized in proportion to the network's parcel count),
    and each territory into as many parcels as the real atlas gives that network, so
    names and counts match Schaefer 2018 (LH labels 1-50, RH 51-100).

    Returns
    -------
    labels : numpy.ndarray
        int16 label image.
    table : pandas.DataFrame
        Columns ``index``, ``name``, ``color`` as in TemplateFlow's ``dseg.tsv``.
    """
    loadings = network_maps(anat).reshape(-1, len(NETWORK_NAMES))
    xyz = anat.mni_xyz.reshape(-1, 3)
    cortex = anat.cortex().ravel()
    labels = np.zeros(anat.shape, dtype=np.int16)
    rows = []
    for hemi, entries in _tables.SCHAEFER_100_7.items():
        side = anat.left.ravel() if hemi == "LH" else ~anat.left.ravel()
        ribbon = np.flatnonzero(cortex & side)
        counts = np.zeros(len(NETWORK_NAMES))
        for network, _sub, count in entries:
            counts[NETWORK_NAMES.index(network)] += count
        network_of = balanced_territories(loadings[ribbon], counts / counts.sum() * ribbon.size)
        for network in dict.fromkeys(entry[0] for entry in entries):
            subregions = [entry for entry in entries if entry[0] == network]
            territory = ribbon[network_of == NETWORK_NAMES.index(network)]
            k = sum(entry[2] for entry in subregions)
            if territory.size < k:
                raise ValueError(
                    f"The {hemi} {network} territory has {territory.size} voxels for {k} "
                    "parcels: use a finer grid (smaller decimation)."
                )
            first = len(rows) + 1
            labels.flat[territory] = first + _split(xyz[territory], k)
            colour = _tables.NETWORKS[network][0]
            for _net, sub, count in subregions:
                stem = f"7Networks_{hemi}_{network}_{sub}" if sub else f"7Networks_{hemi}_{network}"
                for i in range(1, count + 1):
                    rows.append({"index": len(rows) + 1, "name": f"{stem}_{i}", "color": colour})
    return labels, pd.DataFrame(rows, columns=["index", "name", "color"])


def aparcaseg(anat: Anatomy) -> np.ndarray:
    """Return ``aparc+aseg``: ``anat.aseg`` with the ribbon split into the DK parcels.

    Left cortex (3) becomes labels 1001-1035 and right cortex (42) 2001-2035 (no 1004 /
    2004, as in FreeSurfer's Desikan-Killiany protocol).
    """
    out = anat.aseg.copy()
    offsets = np.asarray([offset for offset, _name in _tables.DK_CORTICAL])
    for hemi, base in (("L", 1000), ("R", 2000)):
        ribbon = np.flatnonzero(anat.aseg == _tables.ASEG_CORTEX[hemi])
        parcel = _split(anat.mni_xyz.reshape(-1, 3)[ribbon], len(offsets))
        out.flat[ribbon] = base + offsets[parcel]
    return out


def difumo_atlas(anat: Anatomy, n_components: int = 64) -> tuple[np.ndarray, pd.DataFrame]:
    """Draw DiFuMo-like probabilistic maps: smooth, overlapping, non-negative.

    Seeds are spread over grey-matter voxels, half per hemisphere; each map is a Gaussian
    (σ = 10 mm) around its seed weighted by grey-matter probability, with values below
    5 % of its peak set to 0.

    Returns
    -------
    maps : numpy.ndarray
        float32, shape ``anat.shape + (n_components,)``.
    table : pandas.DataFrame
        Columns of TemplateFlow's DiFuMo tables: ``Component``, ``Difumo_names``,
        ``Yeo_networks7``, ``Yeo_networks17``, ``GM``, ``WM``, ``CSF``.
    """
    xyz = anat.mni_xyz.reshape(-1, 3).astype(np.float64)
    network_of = np.argmax(network_maps(anat), axis=-1).ravel()
    grey = anat.brain & (anat.gm > 0.3)
    seeds = []
    left = anat.left
    for side, count in ((left, n_components // 2), (~left, n_components - n_components // 2)):
        candidates = np.flatnonzero(grey & side)
        seeds.extend(candidates[farthest_points(xyz[candidates], count)])
    maps = np.zeros((xyz.shape[0], n_components), dtype=np.float32)
    gm = anat.gm.ravel()
    rows = []
    for c, seed in enumerate(seeds):
        weight = np.exp(-((xyz - xyz[seed]) ** 2).sum(axis=1) / (2 * 10.0**2)) * gm
        weight[weight < 0.05 * weight.max()] = 0
        maps[:, c] = weight
        tissue = [float((weight * t.ravel()).sum()) for t in (anat.gm, anat.wm, anat.csf)]
        network = NETWORK_NAMES[network_of[seed]]
        hemi = "LH" if xyz[seed, 0] < 0 else "RH"
        rows.append(
            {
                "Component": c + 1,
                "Difumo_names": f"{network} component {c + 1} {hemi}",
                "Yeo_networks7": network,
                "Yeo_networks17": f"{network}A",
                "GM": tissue[0] / sum(tissue),
                "WM": tissue[1] / sum(tissue),
                "CSF": tissue[2] / sum(tissue),
            }
        )
    return maps.reshape(anat.shape + (n_components,)), pd.DataFrame(rows)
