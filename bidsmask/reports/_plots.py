"""Plots: carpet, connectivity matrix ordered by network, histograms, distributions per group.

Every function takes arrays and returns a :class:`matplotlib.figure.Figure`; nothing is computed
here beyond what drawing needs (ordering, finite values).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from bidsmask.reports import _mpl
from bidsmask.reports._brains import ALERT

_NETWORK = re.compile(r"\d+Networks_(?:LH|RH)_([A-Za-z]+)")


def network_of(name: str) -> str | None:
    """Return the network of a region named as Schaefer's (``7Networks_LH_Vis_1`` → ``Vis``).

    Examples
    --------
    >>> network_of("7Networks_LH_SomMot_4"), network_of("Left-Hippocampus")
    ('SomMot', None)
    """
    match = _NETWORK.search(str(name))
    return match.group(1) if match else None


def order_by_network(
    matrix: np.ndarray, names: Sequence[str], networks: Sequence[str | None] | None = None
) -> tuple[np.ndarray, list[str], list[str | None]]:
    """Reorder a square matrix so that regions of one network are adjacent.

    Networks come from ``networks`` or, when not given, from the names (:func:`network_of`);
    they keep the order in which they first appear, regions their order within a network, and
    regions without a network come last. Rows, columns and names move together.

    Returns
    -------
    matrix, names, networks
        The reordered matrix, the region names and each region's network.

    Examples
    --------
    >>> m = np.array([[1.0, 0.2, 0.3], [0.2, 1.0, 0.4], [0.3, 0.4, 1.0]])
    >>> names = ["N_LH_A_1", "7Networks_LH_Vis_1", "7Networks_RH_Vis_2"]
    >>> _, names, nets = order_by_network(m, names)
    >>> names, nets
    (['7Networks_LH_Vis_1', '7Networks_RH_Vis_2', 'N_LH_A_1'], ['Vis', 'Vis', None])
    """
    names = [str(n) for n in names]
    nets = list(networks) if networks is not None else [network_of(n) for n in names]
    first = {}
    for net in nets:
        if net is not None:
            first.setdefault(net, len(first))
    key = [(first.get(net, len(first)), i) for i, net in enumerate(nets)]
    order = [i for _, i in sorted(key)]
    matrix = np.asarray(matrix)[np.ix_(order, order)]
    return matrix, [names[i] for i in order], [nets[i] for i in order]


def plot_matrix(
    matrix: np.ndarray,
    names: Sequence[str],
    networks: Sequence[str | None] | None = None,
    label: str = "Pearson correlation",
):
    """Draw a connectivity matrix ordered by network, the networks outlined and named.

    Returns
    -------
    matplotlib.figure.Figure
    """
    ordered, names, nets = order_by_network(matrix, names, networks)
    ordered = np.array(ordered, dtype=float)
    np.fill_diagonal(ordered, np.nan)
    finite = ordered[np.isfinite(ordered)]
    limit = float(np.abs(finite).max()) if finite.size else 1.0
    fig = _mpl.figure(4.6, 4.0, margins=(0.85, 0.75, 0.1, 0.15))
    with _mpl.rc_context():
        ax = fig.subplots()
        image = ax.imshow(
            np.ma.masked_invalid(ordered),
            cmap="RdBu_r",
            vmin=-limit,
            vmax=limit,
            interpolation="nearest",
        )
        fig.colorbar(image, ax=ax, shrink=0.8, label=label)
        starts = [i for i, net in enumerate(nets) if i == 0 or net != nets[i - 1]]
        if any(net is not None for net in nets):
            edges = [*starts, len(nets)]
            for a, b in zip(edges[:-1], edges[1:], strict=False):
                ax.add_patch(
                    _mpl.matplotlib().patches.Rectangle(
                        (a - 0.5, a - 0.5), b - a, b - a, fill=False, lw=0.8, ec="black"
                    )
                )
            centres = [(a + b - 1) / 2 for a, b in zip(edges[:-1], edges[1:], strict=False)]
            labels = [str(nets[a] or "other") for a in starts]
            ax.set_xticks(centres, labels, rotation=90)
            ax.set_yticks(centres, labels)
        elif len(names) <= 40:
            ax.set_xticks(range(len(names)), names, rotation=90, fontsize=5)
            ax.set_yticks(range(len(names)), names, fontsize=5)
        else:
            ax.set_xlabel(f"{len(names)} regions")
    return fig


def plot_histogram(
    values: np.ndarray,
    xlabel: str,
    threshold: float | None = None,
    bins: int = 40,
    value_range: tuple[float, float] | None = None,
):
    """Draw the distribution of values (non-finite ones left out), a threshold as a red line.

    Returns
    -------
    matplotlib.figure.Figure
    """
    values = np.asarray(values, dtype=float).ravel()
    values = values[np.isfinite(values)]
    fig = _mpl.figure(3.4, 2.2)
    with _mpl.rc_context():
        ax = fig.subplots()
        ax.hist(values, bins=bins, range=value_range, color="#4c72b0", histtype="stepfilled")
        if threshold is not None:
            ax.axvline(threshold, color=ALERT, lw=1, label=f"threshold {threshold:g}")
            ax.legend(frameon=False)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("count")
    return fig


def plot_carpet(
    before: np.ndarray,
    after: np.ndarray,
    kept: np.ndarray,
    fd: np.ndarray | None = None,
    t_r: float | None = None,
    groups: Sequence[tuple[str, int]] = (),
    max_rows: int = 600,
):
    """Draw the carpet plot of a voxel sample before and after cleaning, with the FD trace.

    Parameters
    ----------
    before : numpy.ndarray
        (n_volumes, n_voxels) signals before cleaning (detrended, standardized).
    after : numpy.ndarray
        (n_kept, n_voxels) cleaned signals of the kept volumes.
    kept : numpy.ndarray
        Indices of the kept volumes; every other volume is censored and marked in red.
    fd : numpy.ndarray or None
        Framewise displacement per volume (mm).
    t_r : float or None
        Repetition time, for a time axis in seconds (volumes otherwise).
    groups : sequence of (str, int)
        Consecutive groups of voxels (name, number of voxels), e.g. networks, drawn as bands.
    max_rows : int
        At most this many voxels are drawn (every k-th one of the sample when it has more).

    Returns
    -------
    matplotlib.figure.Figure
        Its first axes hold the ``censored volumes`` marks (one line per censored volume).
    """
    before = np.asarray(before, dtype=float)
    n_volumes = before.shape[0]
    kept = np.asarray(kept, dtype=int)
    censored = np.setdiff1d(np.arange(n_volumes), kept)
    full = np.full(before.shape, np.nan)
    full[kept] = after
    # at most max_rows voxels are drawn (every k-th): a panel is a few hundred pixels high
    step = max(1, int(np.ceil(before.shape[1] / max_rows)))
    if step > 1:
        before, full = before[:, ::step], full[:, ::step]
        edges = np.cumsum([0] + [n for _, n in groups])
        drawn = -(-edges // step)  # rows drawn before each edge
        groups = [
            (name, int(b - a))
            for (name, _), a, b in zip(groups, drawn[:-1], drawn[1:], strict=True)
        ]
    fig = _mpl.figure(7.5, 5.0, margins=(0.95, 0.45, 0.15, 0.3))
    with _mpl.rc_context():
        axes = fig.subplots(3, 1, sharex=True, height_ratios=[1, 2.2, 2.2])
        ax = axes[0]
        if fd is not None:
            ax.plot(np.arange(n_volumes), np.asarray(fd, dtype=float), color="#333333", lw=0.8)
        ax.set_ylabel("FD (mm)")
        top = ax.get_ylim()[1]
        ax.vlines(censored, 0, top, colors=ALERT, lw=0.8, alpha=0.6, label="censored volumes")
        ax.set_ylim(0, top)
        ax.set_title(f"{censored.size} of {n_volumes} volumes censored (red)", loc="left")
        extent = (-0.5, n_volumes - 0.5, before.shape[1], 0)
        for ax, data, title in ((axes[1], before, "before cleaning"), (axes[2], full, "after")):
            cmap = _mpl.matplotlib().colormaps["gray"].with_extremes(bad=ALERT)
            ax.imshow(
                np.ma.masked_invalid(data.T),
                aspect="auto",
                cmap=cmap,
                vmin=-2,
                vmax=2,
                extent=extent,
                interpolation="nearest",
            )
            ax.set_ylabel(f"voxels, {title}")
            _group_ticks(ax, groups)
        axes[2].set_xlabel("volume" + (f" (TR {t_r:g} s)" if t_r else ""))
    return fig


def _group_ticks(ax, groups: Sequence[tuple[str, int]]) -> None:
    """Name voxel groups on the y axis and separate them with lines."""
    if not groups:
        ax.set_yticks([])
        return
    edges = np.cumsum([0] + [n for _, n in groups])
    # a name per group tall enough to hold it (2.5% of the rows at least); lines separate all
    big = np.diff(edges) >= 0.025 * edges[-1]
    centres = ((edges[:-1] + edges[1:]) / 2)[big]
    ax.set_yticks(
        centres, [name for (name, _), b in zip(groups, big, strict=True) if b], fontsize=6
    )
    for edge in edges[1:-1]:
        ax.axhline(edge, color="#1f77b4", lw=0.6)


def plot_distributions(values: Mapping[str, np.ndarray], xlabel: str):
    """Draw one box plot with its points per group (e.g. mean FD per strategy).

    Returns
    -------
    matplotlib.figure.Figure
    """
    names = list(values)
    data = [np.asarray(values[n], dtype=float) for n in names]
    data = [d[np.isfinite(d)] for d in data]
    fig = _mpl.figure(3.6, 0.6 + 0.45 * max(len(names), 1), margins=(0.8, 0.45, 0.15, 0.1))
    with _mpl.rc_context():
        ax = fig.subplots()
        ax.boxplot(data, orientation="horizontal", tick_labels=names, showfliers=False, widths=0.5)
        for i, d in enumerate(data, start=1):
            jitter = np.linspace(-0.15, 0.15, d.size) if d.size > 1 else np.zeros(d.size)
            ax.plot(d, i + jitter, "o", ms=3, alpha=0.6, color="#4c72b0")
        ax.set_xlabel(xlabel)
    return fig


def plot_scatter(
    x: np.ndarray,
    y: np.ndarray,
    xlabel: str,
    ylabel: str,
    labels: Sequence[str] | None = None,
):
    """Draw y against x (pairs with a non-finite value left out), e.g. QC-FC against distance.

    ``labels``: a name written beside each point (for a few points, e.g. one per strategy).

    Returns
    -------
    matplotlib.figure.Figure
    """
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    keep = np.isfinite(x) & np.isfinite(y)
    fig = _mpl.figure(3.6, 2.6)
    with _mpl.rc_context():
        ax = fig.subplots()
        few = labels is not None
        ax.plot(
            x[keep],
            y[keep],
            ".",
            ms=8 if few else 2,
            alpha=0.9 if few else 0.4,
            color="#4c72b0",
            rasterized=keep.sum() > 2000,
        )
        for i in np.flatnonzero(keep) if few else ():
            ax.annotate(labels[i], (x[i], y[i]), xytext=(4, 2), textcoords="offset points")
        ax.axhline(0, color="#888888", lw=0.6)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    return fig


def plot_stacked_bars(labels: Sequence[str], parts: Mapping[str, np.ndarray], xlabel: str):
    """Draw one horizontal bar per label, stacked from ``parts`` (e.g. the tDOF lost by cause).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = _mpl.figure(5.4, 0.8 + 0.3 * max(len(labels), 1), margins=(2.7, 0.45, 0.15, 0.1))
    with _mpl.rc_context():
        ax = fig.subplots()
        left = np.zeros(len(labels))
        for name, values in parts.items():
            values = np.nan_to_num(np.asarray(values, dtype=float))
            ax.barh(np.arange(len(labels)), values, left=left, label=name)
            left += values
        ax.set_yticks(np.arange(len(labels)), list(labels))
        ax.invert_yaxis()
        ax.set_xlabel(xlabel)
        ax.legend(frameon=False, fontsize=6, loc="lower right")
    return fig
