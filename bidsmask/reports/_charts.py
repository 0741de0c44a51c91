"""Charts of the group page: distributions per group, scatter, stacked bars.

Every function takes arrays and returns a :class:`~bidsmask.reports._svg.Drawing`; the marks
are in data coordinates (:meth:`~bidsmask.reports._svg.Axes.data`), so the file holds the
values drawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from bidsmask.reports._colours import lookup_table, to_hex
from bidsmask.reports._plots import BLUE
from bidsmask.reports._svg import INK, Axes, Drawing, nice_ticks, padded, text_width

#: Colour of a box plot's median (as matplotlib's).
MEDIAN = "#ff7f0e"


def _limits(arrays: Sequence[np.ndarray], include_zero: bool = False) -> tuple[float, float]:
    values = np.concatenate([np.ravel(a) for a in arrays]) if arrays else np.zeros(0)
    if include_zero:
        values = np.append(values, 0.0)
    if values.size == 0:
        return 0.0, 1.0
    return padded(float(values.min()), float(values.max()))


def _points(drawing: Drawing, x: np.ndarray, y: np.ndarray, size: float, opacity: float) -> None:
    """Draw points as round dots (zero-length path pieces with round caps), class ``points``."""
    path = "".join(f"M{x_:.6g} {y_:.6g}h0" for x_, y_ in zip(x, y, strict=True))
    drawing.element(
        "path",
        d=path or "M0 0",
        fill="none",
        stroke=BLUE if path else "none",
        stroke_width=size,
        stroke_linecap="round",
        stroke_opacity=opacity,
        class_="points",
    )


def plot_distributions(values: Mapping[str, np.ndarray], xlabel: str) -> Drawing:
    """Draw one box plot with its points per group (e.g. mean FD per strategy), top down.

    Boxes span the quartiles, whiskers the furthest values within 1.5 interquartile ranges,
    the median is an orange line; non-finite values are left out.

    Returns
    -------
    Drawing
    """
    names = list(values)
    data = [np.asarray(values[n], dtype=float).ravel() for n in names]
    data = [d[np.isfinite(d)] for d in data]
    n = max(len(names), 1)
    left = 14 + max((text_width(name, 10) for name in names), default=0)
    drawing = Drawing(left + 300, 12 + 45 * n + 45)
    axes = Axes(drawing, (left, 12, 285, 45 * n), _limits(data), (n + 0.5, 0.5))
    for i, d in enumerate(data, start=1):
        with axes.data(class_="group"):
            if d.size:
                q1, median, q3 = np.percentile(d, [25, 50, 75])
                reach = 1.5 * (q3 - q1)
                low, high = d[d >= q1 - reach].min(), d[d <= q3 + reach].max()
                for a, b in ((low, q1), (q3, high)):
                    drawing.line(a, i, b, i, stroke=INK, stroke_width=0.8)
                for end in (low, high):
                    drawing.line(end, i - 0.12, end, i + 0.12, stroke=INK, stroke_width=0.8)
                drawing.rect(q1, i - 0.25, q3 - q1, 0.5, stroke=INK, stroke_width=0.8)
                drawing.line(median, i - 0.25, median, i + 0.25, stroke=MEDIAN, stroke_width=1.2)
            jitter = np.linspace(-0.15, 0.15, d.size) if d.size > 1 else np.zeros(d.size)
            _points(drawing, d, i + jitter, 5, 0.6)
    axes.spines()
    axes.yticks(range(1, len(names) + 1), names)
    axes.xlabel(xlabel, axes.xticks(nice_ticks(*axes.xlim, max_ticks=6)))
    return drawing


def plot_scatter(
    x: np.ndarray,
    y: np.ndarray,
    xlabel: str,
    ylabel: str,
    labels: Sequence[str] | None = None,
) -> Drawing:
    """Draw y against x (pairs with a non-finite value left out), e.g. QC-FC against distance.

    ``labels``: a name written beside each point (for a few points, e.g. one per strategy).

    Returns
    -------
    Drawing
        The points are one ``path`` (class ``points``) of ``M x y`` pieces.
    """
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    keep = np.isfinite(x) & np.isfinite(y)
    few = labels is not None
    drawing = Drawing(360, 260)
    xlim = _limits([x[keep]])
    if few:  # room on the right for the last point's name
        share = min(0.5, (10 + max((text_width(t, 9) for t in labels), default=0)) / 283)
        xlim = (xlim[0], xlim[1] + (xlim[1] - xlim[0]) * share / (1 - share))
    axes = Axes(drawing, (62, 12, 283, 195), xlim, _limits([y[keep]], True))
    with axes.data():
        drawing.line(axes.xlim[0], 0, axes.xlim[1], 0, stroke="#888888", stroke_width=0.6)
        _points(drawing, x[keep], y[keep], 8 if few else 3, 0.9 if few else 0.4)
    for i in np.flatnonzero(keep) if few else ():
        drawing.text(float(axes.px(x[i])) + 5, float(axes.py(y[i])) - 3, labels[i], 9)
    axes.spines()
    axes.xlabel(xlabel, axes.xticks(nice_ticks(*axes.xlim, max_ticks=6)))
    axes.ylabel(ylabel, axes.yticks(nice_ticks(*axes.ylim, max_ticks=6)))
    return drawing


def plot_stacked_bars(labels: Sequence[str], parts: Mapping[str, np.ndarray], xlabel: str):
    """Draw one horizontal bar per label, stacked from ``parts`` (e.g. the tDOF lost by cause).

    Returns
    -------
    Drawing
        One ``rect`` per part and label (class ``bar``, in data coordinates: ``x`` where it
        starts, ``width`` its value), the first label on top, a legend below.
    """
    n = max(len(labels), 1)
    left = 14 + max((text_width(label, 9) for label in labels), default=0)
    drawing = Drawing(left + 300, 12 + 30 * n + 62)
    values = {name: np.nan_to_num(np.asarray(v, dtype=float)) for name, v in parts.items()}
    total = sum(values.values()) if values else np.zeros(len(labels))
    right = float(np.max(total)) * 1.05 if np.size(total) and np.max(total) > 0 else 1.0
    axes = Axes(drawing, (left, 12, 285, 30 * n), (0, right), (n - 0.5, -0.5))
    colours = [to_hex(c) for c in lookup_table("tab20")[::2]]
    start = np.zeros(len(labels))
    with axes.data(class_="bars"):
        for k, part in enumerate(values.values()):
            for i, value in enumerate(part):
                colour = colours[k % len(colours)]
                drawing.rect(start[i], i - 0.4, value, 0.8, fill=colour, class_="bar")
            start += part
    axes.spines()
    axes.yticks(range(len(labels)), labels, size=9)
    depth = axes.xticks(nice_ticks(0, right, max_ticks=6))
    axes.xlabel(xlabel, depth)
    x = left
    for k, name in enumerate(values):
        y = 12 + 30 * n + depth + 26
        drawing.rect(x, y - 5, 10, 10, fill=colours[k % len(colours)])
        drawing.text(x + 14, y, name, 9, valign="middle")
        x += 24 + text_width(name, 9)
    return drawing
