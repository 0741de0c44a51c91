"""SVG figures written by hand: a :class:`Drawing` of shapes and text, and :class:`Axes` in it.

A figure is a small SVG document: axes with "nice" ticks (:func:`nice_ticks`), text, lines,
polygons and rectangles, and rasters (matrix cells, carpet panels, brain slices) embedded as PNG
(``data:`` URIs) drawn with ``image-rendering: pixelated``. What is plotted in data coordinates
(histogram bars, traces, marks, boxes) sits in an :meth:`Axes.data` group whose ``transform``
maps data to pixels, so the numbers in the file are the data's own. Text is escaped; there is no
date or random id: the same arrays give the same bytes.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from html import escape

import numpy as np

#: Font of every text (the page's sans-serif).
FONT = "DejaVu Sans, Arial, Helvetica, sans-serif"
#: Estimated width of a character, in font sizes (for margins; text is never measured).
CHAR_WIDTH = 0.6
#: Colour of axes, ticks and labels.
INK = "#222222"


def px(value: float) -> str:
    """Format a pixel coordinate (two decimals at most)."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def num(value: float, digits: int = 6) -> str:
    """Format a data value (six significant digits unless told)."""
    text = f"{float(value):.{digits}g}"
    return "0" if text == "-0" else text


def text_width(text: str, size: float) -> float:
    """Return the estimated width in pixels of ``text`` at font ``size``."""
    return len(str(text)) * size * CHAR_WIDTH


def nice_ticks(lo: float, hi: float, max_ticks: int = 7) -> np.ndarray:
    """Return round tick values in ``[lo, hi]``: steps of 1, 2, 2.5 or 5 times a power of ten.

    The smallest such step giving at most ``max_ticks`` ticks is used.

    Examples
    --------
    >>> nice_ticks(0, 1).tolist(), nice_ticks(-0.8, 0.8).tolist()
    ([0.0, 0.2, 0.4, 0.6, 0.8, 1.0], [-0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75])
    >>> nice_ticks(0, 79).tolist()
    [0.0, 20.0, 40.0, 60.0]
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return np.zeros(0)
    lo, hi = float(min(lo, hi)), float(max(lo, hi))
    if hi - lo <= 1e-12 * max(abs(lo), abs(hi), 1e-300):
        return np.array([lo])
    magnitude = 10.0 ** math.floor(math.log10((hi - lo) / max_ticks))
    for factor in (1, 2, 2.5, 5, 10, 20, 25, 50):
        step = factor * magnitude
        first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
        if last - first + 1 <= max_ticks:
            break
    ticks = np.arange(first, last + 1) * step
    return np.round(ticks, max(0, 12 - math.floor(math.log10(step)))) + 0.0


def tick_labels(ticks: Sequence[float]) -> list[str]:
    """Format ticks with the decimals their step needs.

    Examples
    --------
    >>> tick_labels([-0.5, 0.0, 0.5]), tick_labels([0, 25, 50]), tick_labels([0.25, 0.5])
    (['-0.5', '0.0', '0.5'], ['0', '25', '50'], ['0.25', '0.50'])
    """
    ticks = np.asarray(ticks, dtype=float)
    if ticks.size < 2:
        return [num(t) for t in ticks]
    step = float(np.min(np.diff(ticks)))
    decimals = 0
    while decimals < 12 and abs(round(step, decimals) - step) > 1e-9 * abs(step):
        decimals += 1
    labels = [f"{t:.{decimals}f}" for t in ticks]
    return [label[1:] if label.startswith("-") and float(label) == 0 else label for label in labels]


def padded(lo: float, hi: float, margin: float = 0.05) -> tuple[float, float]:
    """Return limits with a margin on both sides (a unit span when ``lo == hi``)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return 0.0, 1.0
    if hi <= lo:
        return lo - 0.5, lo + 0.5
    pad = (hi - lo) * margin
    return lo - pad, hi + pad


def _attributes(attrs: dict) -> str:
    parts = []
    for key, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, float):
            value = px(value)
        parts.append(f'{key.rstrip("_").replace("_", "-")}="{escape(str(value))}"')
    return " ".join(parts)


class Drawing:
    """An SVG document of ``width`` × ``height`` pixels on a white background.

    Elements are appended in drawing order (later ones on top); :meth:`to_bytes` returns the
    file. Every method takes pixel coordinates, except inside :meth:`Axes.data`.
    """

    #: File name extension (and :func:`bidsmask.reports.data_uri` format) of the figure.
    suffix = "svg"

    def __init__(self, width: float, height: float):
        self.width, self.height = float(width), float(height)
        self._parts: list[str] = []
        #: Formats coordinates: pixels, or data values inside :meth:`Axes.data`.
        self.fmt = px
        self.rect(0, 0, width, height, fill="white")

    def element(self, tag: str, content: str | None = None, **attrs) -> None:
        """Append an element; ``content`` (already escaped) goes between its tags.

        In data coordinates (:meth:`Axes.data`), outlines keep their width in pixels.
        """
        if self.fmt is num and attrs.get("stroke") not in (None, "none"):
            attrs["vector_effect"] = "non-scaling-stroke"
        head = f"<{tag} {_attributes(attrs)}".rstrip()
        self._parts.append(f"{head}/>" if content is None else f"{head}>{content}</{tag}>")

    @contextmanager
    def group(self, **attrs) -> Iterator[None]:
        """Wrap the elements appended in the ``with`` block in a ``<g>`` with ``attrs``."""
        self._parts.append(f"<g {_attributes(attrs)}>")
        yield
        self._parts.append("</g>")

    def rect(self, x, y, width, height, fill="none", stroke=None, stroke_width=None, **attrs):
        """Append a rectangle (``stroke_width`` None: no outline)."""
        self.element(
            "rect",
            x=self.fmt(x),
            y=self.fmt(y),
            width=self.fmt(width),
            height=self.fmt(height),
            fill=fill,
            stroke=stroke,
            stroke_width=stroke_width,
            **attrs,
        )

    def line(self, x1, y1, x2, y2, stroke=INK, stroke_width=1.0, **attrs) -> None:
        """Append a line segment."""
        self.element(
            "line",
            x1=self.fmt(x1),
            y1=self.fmt(y1),
            x2=self.fmt(x2),
            y2=self.fmt(y2),
            stroke=stroke,
            stroke_width=stroke_width,
            **attrs,
        )

    def text(
        self,
        x: float,
        y: float,
        text: str,
        size: float = 10,
        anchor: str = "start",
        valign: str = "baseline",
        rotate: float | None = None,
        **attrs,
    ) -> None:
        """Append a line of text at ``(x, y)``.

        ``anchor``: ``start``, ``middle`` or ``end`` (horizontal); ``valign``: ``baseline``,
        ``middle`` or ``top`` (vertical); ``rotate``: degrees about ``(x, y)``.
        """
        dy = {"baseline": None, "middle": "0.35em", "top": "0.8em"}[valign]
        transform = f"rotate({px(rotate)} {px(x)} {px(y)})" if rotate else None
        self.element(
            "text",
            escape(str(text), quote=False),
            x=px(x),
            y=px(y),
            dy=dy,
            font_size=px(size),
            text_anchor=None if anchor == "start" else anchor,
            transform=transform,
            **attrs,
        )

    def image(self, x, y, width, height, png: bytes, **attrs) -> None:
        """Append a PNG stretched over a box, its pixels drawn as blocks (no smoothing)."""
        self.element(
            "image",
            x=px(x),
            y=px(y),
            width=px(width),
            height=px(height),
            preserveAspectRatio="none",
            style="image-rendering:pixelated",
            href="data:image/png;base64," + base64.b64encode(png).decode("ascii"),
            **attrs,
        )

    def to_bytes(self) -> bytes:
        """Return the SVG file."""
        head = (
            '<?xml version="1.0" encoding="utf-8"?>\n'
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{px(self.width)}" '
            f'height="{px(self.height)}" viewBox="0 0 {px(self.width)} {px(self.height)}" '
            f'font-family="{FONT}" fill="{INK}">\n'
        )
        return (head + "\n".join(self._parts) + "\n</svg>\n").encode("utf-8")


class Axes:
    """A plotting box of a :class:`Drawing`: data limits mapped to a pixel rectangle.

    ``xlim`` and ``ylim`` are (value at the left, value at the right) and (value at the bottom,
    value at the top): a reversed pair flips the axis (e.g. rows of a carpet plot, top down).
    """

    def __init__(self, drawing: Drawing, box: tuple, xlim: tuple, ylim: tuple):
        self.drawing = drawing
        self.x, self.y, self.width, self.height = (float(v) for v in box)
        self.xlim = tuple(float(v) for v in xlim)
        self.ylim = tuple(float(v) for v in ylim)
        self.sx = self.width / ((self.xlim[1] - self.xlim[0]) or 1.0)
        self.sy = self.height / ((self.ylim[1] - self.ylim[0]) or 1.0)

    def px(self, value):
        """Pixel column of x values."""
        return self.x + (np.asarray(value, dtype=float) - self.xlim[0]) * self.sx

    def py(self, value):
        """Pixel row of y values."""
        return self.y + self.height - (np.asarray(value, dtype=float) - self.ylim[0]) * self.sy

    @contextmanager
    def data(self, **attrs) -> Iterator[None]:
        """Group whose elements take data coordinates (their outlines stay in pixels)."""
        a, d = self.sx, -self.sy
        e = self.x - self.xlim[0] * self.sx
        f = self.y + self.height + self.ylim[0] * self.sy
        # 12 digits: the offsets are about (data origin / data span) × pixels, far larger
        # than the pixels when the data sit far from 0 (e.g. 1000 ± 0.1)
        transform = " ".join(num(v, 12) for v in (a, 0, 0, d, e, f))
        transform = f"matrix({transform})"
        with self.drawing.group(transform=transform, **attrs):
            self.drawing.fmt = num
            try:
                yield
            finally:
                self.drawing.fmt = px

    def spines(self) -> None:
        """Draw the left and bottom axis lines."""
        x0, y0, x1, y1 = self.x, self.y, self.x + self.width, self.y + self.height
        self.drawing.line(x0, y0, x0, y1, stroke_width=0.8)
        self.drawing.line(x0, y1, x1, y1, stroke_width=0.8)

    def xticks(
        self,
        ticks: Sequence[float],
        labels: Sequence[str] | None = None,
        size: float = 10,
        rotate: bool = False,
    ) -> float:
        """Draw ticks and labels below the box; return the labels' depth in pixels."""
        labels = tick_labels(ticks) if labels is None else [str(t) for t in labels]
        bottom = self.y + self.height
        depth = 0.0
        for value, label in zip(ticks, labels, strict=True):
            x = float(self.px(value))
            self.drawing.line(x, bottom, x, bottom + 3.5, stroke_width=0.8)
            if rotate:
                self.drawing.text(x, bottom + 6, label, size, "end", "middle", -90, class_="xtick")
                depth = max(depth, 6 + text_width(label, size))
            else:
                self.drawing.text(x, bottom + 5, label, size, "middle", "top", class_="xtick")
                depth = max(depth, 6 + 1.2 * size)
        return depth

    def yticks(
        self,
        ticks: Sequence[float],
        labels: Sequence[str] | None = None,
        size: float = 10,
        right: bool = False,
        cls: str = "ytick",
    ) -> float:
        """Draw ticks and labels left (or right) of the box; return the labels' width.

        The labels' texts get the class ``cls``.
        """
        labels = tick_labels(ticks) if labels is None else [str(t) for t in labels]
        edge = self.x + self.width if right else self.x
        sign = 1 if right else -1
        width = 0.0
        for value, label in zip(ticks, labels, strict=True):
            y = float(self.py(value))
            self.drawing.line(edge, y, edge + sign * 3.5, y, stroke_width=0.8)
            anchor = "start" if right else "end"
            self.drawing.text(edge + sign * 5, y, label, size, anchor, "middle", class_=cls)
            width = max(width, 5 + text_width(label, size))
        return width

    def xlabel(self, text: str, depth: float, size: float = 11) -> None:
        """Name the x axis, ``depth`` pixels below the box (under the tick labels)."""
        self.drawing.text(
            self.x + self.width / 2, self.y + self.height + depth + 2, text, size, "middle", "top"
        )

    def ylabel(self, text: str, width: float, size: float = 11, right: bool = False) -> None:
        """Name the y axis, ``width`` pixels beside the box (past the tick labels), rotated."""
        x = self.x + self.width + width + 4 + size if right else self.x - width - 4 - 0.2 * size
        self.drawing.text(x, self.y + self.height / 2, text, size, "middle", rotate=-90)
