"""Plots of a run: connectivity matrix ordered by network, histogram, carpet plot.

Every function takes arrays and returns a :class:`~bidsmask.reports._svg.Drawing` (an SVG
figure); nothing is computed here beyond what drawing needs (ordering, finite values, bins).
The group's charts (distributions, scatter, stacked bars) are in :mod:`._charts`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from bidsmask.reports._colours import ALERT, palette, to_hex, to_indices
from bidsmask.reports._png import encode_png
from bidsmask.reports._svg import Axes, Drawing, nice_ticks, padded, text_width

_NETWORK = re.compile(r"\d+Networks_(?:LH|RH)_([A-Za-z]+)")
#: Fill of histogram bars and points.
BLUE = "#4c72b0"


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


def colour_bar(
    drawing: Drawing, box: tuple, cmap: str, limits: tuple[float, float], label: str
) -> None:
    """Draw a vertical colour bar of ``cmap`` over ``limits`` in ``box``, ticks on its right."""
    column = np.arange(254, -1, -1, dtype=np.uint8)[:, None]  # high values on top
    drawing.image(*box, encode_png(column, palette(cmap)), class_="colourbar")
    axes = Axes(drawing, box, (0, 1), limits)
    drawing.rect(*box, stroke="#222222", stroke_width=0.6)
    width = axes.yticks(nice_ticks(*limits, max_ticks=9), size=9, right=True, cls="ctick")
    axes.ylabel(label, width, size=10, right=True)


def plot_matrix(
    matrix: np.ndarray,
    names: Sequence[str],
    networks: Sequence[str | None] | None = None,
    label: str = "Pearson correlation",
) -> Drawing:
    """Draw a connectivity matrix ordered by network, the networks outlined and named.

    The cells are one raster (``RdBu_r``, symmetric limits, the diagonal left blank); network
    boxes are ``rect`` elements in cell units (class ``network``).

    Returns
    -------
    Drawing
    """
    ordered, names, nets = order_by_network(matrix, names, networks)
    ordered = np.array(ordered, dtype=float)
    np.fill_diagonal(ordered, np.nan)
    finite = ordered[np.isfinite(ordered)]
    limit = float(np.abs(finite).max()) if finite.size else 1.0
    limit = limit or 1.0
    n = len(names)
    side = float(np.clip(n, 300, 480))
    starts = [i for i, net in enumerate(nets) if i == 0 or net != nets[i - 1]]
    grouped = any(net is not None for net in nets)
    if grouped:
        edges = [*starts, n]
        ticks = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:], strict=False)]
        labels, size = [str(nets[a] or "other") for a in starts], 10
    elif n <= 40:
        ticks, labels, size = [i + 0.5 for i in range(n)], names, 6
    else:
        values = nice_ticks(0, n - 1)
        ticks, labels, size = list(values + 0.5), [str(int(v)) for v in values], 10
    widest = max((text_width(t, size) for t in labels), default=0)
    left = 12 + 6 + widest
    bottom = 12 + 6 + (widest if grouped or n <= 40 else 1.2 * size) + (0 if grouped else 18)
    drawing = Drawing(left + side + 105, 12 + side + bottom)
    axes = Axes(drawing, (left, 12, side, side), (0, n), (n, 0))
    cells = to_indices(ordered, -limit, limit)
    drawing.image(left, 12, side, side, encode_png(cells, palette("RdBu_r")), class_="cells")
    drawing.rect(left, 12, side, side, stroke="#222222", stroke_width=0.8)
    if grouped:
        with axes.data(class_="networks"):
            for a, b in zip(edges[:-1], edges[1:], strict=False):
                drawing.rect(a, a, b - a, b - a, stroke="black", stroke_width=0.8, class_="network")
    axes.yticks(ticks, labels, size)
    depth = axes.xticks(ticks, labels, size, rotate=grouped or n <= 40)
    if not grouped:
        axes.xlabel(f"{n} regions", depth)
    bar = (left + side + 18, 12 + 0.1 * side, 12, 0.8 * side)
    colour_bar(drawing, bar, "RdBu_r", (-limit, limit), label)
    return drawing


def histogram_bars(axes: Axes, counts: np.ndarray, edges: np.ndarray) -> None:
    """Draw bins as one filled outline (class ``bars``) in data coordinates."""
    xs = np.repeat(edges, 2)
    ys = np.concatenate([[0.0], np.repeat(counts, 2), [0.0]])
    points = " ".join(f"{x:.6g},{y:.6g}" for x, y in zip(xs, ys, strict=True))
    with axes.data():
        axes.drawing.element("polygon", points=points, fill=BLUE, class_="bars")


def plot_histogram(
    values: np.ndarray,
    xlabel: str,
    threshold: float | None = None,
    bins: int = 40,
    value_range: tuple[float, float] | None = None,
) -> Drawing:
    """Draw the distribution of values (non-finite ones left out), a threshold as a red line.

    Returns
    -------
    Drawing
        The bars are one ``polygon`` (class ``bars``) whose points are bin edges and counts.
    """
    values = np.asarray(values, dtype=float).ravel()
    values = values[np.isfinite(values)]
    if value_range is None and values.size == 0:
        value_range = (0.0, 1.0)
    counts, edges = np.histogram(values, bins=bins, range=value_range)
    lo, hi = float(edges[0]), float(edges[-1])
    if threshold is not None:
        lo, hi = min(lo, threshold), max(hi, threshold)
    top = float(counts.max()) * 1.05 if counts.max() > 0 else 1.0
    drawing = Drawing(340, 220)
    axes = Axes(drawing, (60, 12, 265, 160), padded(lo, hi), (0, top))
    histogram_bars(axes, counts, edges)
    if threshold is not None:
        with axes.data():
            drawing.line(
                threshold,
                0,
                threshold,
                top,
                stroke=to_hex(ALERT),
                stroke_width=1,
                class_="threshold",
            )
        drawing.line(72, 22, 92, 22, stroke=to_hex(ALERT), stroke_width=1)
        drawing.text(97, 22, f"threshold {threshold:g}", 9, valign="middle")
    axes.spines()
    depth = axes.xticks(nice_ticks(*axes.xlim, max_ticks=6))
    width = axes.yticks(nice_ticks(0, top, max_ticks=6))
    axes.xlabel(xlabel, depth)
    axes.ylabel("count", width)
    return drawing


def carpet_rows(
    n_voxels: int, groups: Sequence[tuple[str, int]] = (), max_rows: int = 600
) -> tuple[slice, list[tuple[str, int]]]:
    """Return the voxels a carpet plot draws (every k-th, at most ``max_rows``) and their groups.

    A panel is a few hundred pixels high: more rows would not show. Callers can thin their
    sample with this before cleaning it (:func:`plot_carpet` does the same thinning).

    Returns
    -------
    rows : slice
        ``slice(None, None, k)``.
    groups : list of (str, int)
        Each group's name and number of rows drawn.

    Examples
    --------
    >>> carpet_rows(10, [("A", 4), ("B", 6)], max_rows=5)
    (slice(None, None, 2), [('A', 2), ('B', 3)])
    """
    step = max(1, int(np.ceil(n_voxels / max_rows)))
    edges = np.cumsum([0] + [n for _, n in groups])
    drawn = -(-edges // step)  # rows drawn before each edge
    groups = [
        (name, int(b - a)) for (name, _), a, b in zip(groups, drawn[:-1], drawn[1:], strict=True)
    ]
    return slice(None, None, step), groups


def plot_carpet(
    before: np.ndarray,
    after: np.ndarray,
    kept: np.ndarray,
    fd: np.ndarray | None = None,
    t_r: float | None = None,
    groups: Sequence[tuple[str, int]] = (),
    max_rows: int = 600,
) -> Drawing:
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
        Repetition time, for the time axis's label.
    groups : sequence of (str, int)
        Consecutive groups of voxels (name, number of voxels), e.g. networks, named on the
        y axis and separated by lines.
    max_rows : int
        At most this many voxels are drawn (every k-th one of the sample when it has more).

    Returns
    -------
    Drawing
        750 × 500 pixels: the FD trace (``polyline``, class ``fd``) with one red ``line`` per
        censored volume (class ``censored``), then the two panels (``image``, class
        ``carpet``: one pixel per volume × voxel, grey from -2 to 2, censored volumes red).
    """
    before = np.asarray(before, dtype=float)
    n_volumes = before.shape[0]
    kept = np.asarray(kept, dtype=int)
    censored = np.setdiff1d(np.arange(n_volumes), kept)
    full = np.full(before.shape, np.nan)
    full[kept] = after
    rows, groups = carpet_rows(before.shape[1], groups, max_rows)
    before, full = before[:, rows], full[:, rows]
    drawing = Drawing(750, 500)
    left, width = 95.0, 640.0
    xlim = (-0.5, n_volumes - 0.5)
    fd = None if fd is None else np.asarray(fd, dtype=float)
    finite_fd = fd[np.isfinite(fd)] if fd is not None else np.zeros(0)
    top = float(finite_fd.max()) * 1.05 if finite_fd.size and finite_fd.max() > 0 else 1.0
    trace = Axes(drawing, (left, 30, width, 70), xlim, (0, top))
    with trace.data():
        for volume in censored:
            drawing.line(
                volume,
                0,
                volume,
                top,
                stroke=to_hex(ALERT),
                stroke_width=0.8,
                stroke_opacity=0.6,
                class_="censored",
            )
        if fd is not None:
            keep = np.isfinite(fd)
            points = " ".join(
                f"{x},{y:.6g}" for x, y in zip(np.flatnonzero(keep), fd[keep], strict=True)
            )
            drawing.element(
                "polyline",
                points=points,
                fill="none",
                stroke="#333333",
                stroke_width=0.8,
                class_="fd",
            )
    trace.spines()
    trace.ylabel("FD (mm)", trace.yticks(nice_ticks(0, top, max_ticks=4)))
    drawing.text(left, 22, f"{censored.size} of {n_volumes} volumes censored (red)", 11)
    gray = palette("gray", bad=ALERT)
    n_rows = before.shape[1]
    panels = ((before, "before cleaning", 112.0), (full, "after", 278.0))
    for data, title, y in panels:
        panel = Axes(drawing, (left, y, width, 155), xlim, (n_rows, 0))
        raster = encode_png(to_indices(data.T, -2.0, 2.0), gray)
        drawing.image(left, y, width, 155, raster, class_="carpet")
        panel.spines()
        width_ = _group_ticks(panel, groups)
        panel.ylabel(f"voxels, {title}", width_)
    depth = panel.xticks(nice_ticks(0, n_volumes - 1, max_ticks=10))
    panel.xlabel("volume" + (f" (TR {t_r:g} s)" if t_r else ""), depth)
    return drawing


def _group_ticks(axes: Axes, groups: Sequence[tuple[str, int]]) -> float:
    """Name voxel groups on the y axis and separate them with lines; return the labels' width."""
    if not groups:
        return 0.0
    edges = np.cumsum([0] + [n for _, n in groups])
    # a name per group tall enough to hold it (2.5% of the rows at least); lines separate all
    big = np.diff(edges) >= 0.025 * edges[-1]
    centres = ((edges[:-1] + edges[1:]) / 2)[big]
    width = axes.yticks(centres, [name for (name, _), b in zip(groups, big, strict=True) if b], 7)
    with axes.data(class_="groups"):
        for edge in edges[1:-1]:
            axes.drawing.line(
                axes.xlim[0],
                edge,
                axes.xlim[1],
                edge,
                stroke="#1f77b4",
                stroke_width=0.8,
            )
    return width
