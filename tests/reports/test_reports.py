"""Figure functions on small arrays (read back from their SVG), pages, no plotting library."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from bidsmask import reports
from bidsmask.reports._colours import ALERT, LEVELS, to_indices

RED = np.array(ALERT) / 255


def parse(drawing: reports.Drawing) -> ET.Element:
    content = drawing.to_bytes()
    assert content.startswith(b"<?xml") and content == drawing.to_bytes()  # deterministic
    return ET.fromstring(content)


def of_class(root: ET.Element, cls: str) -> list[ET.Element]:
    return [e for e in root.iter() if e.get("class") == cls]


def texts(root: ET.Element, cls: str) -> list[str]:
    return [e.text for e in of_class(root, cls)]


def raster(element: ET.Element) -> Image.Image:
    """Decode the PNG of an ``<image>`` (Pillow: an independent decoder)."""
    head, data = element.get("href").split(",", 1)
    assert head == "data:image/png;base64"
    image = Image.open(io.BytesIO(base64.b64decode(data)))
    image.load()
    return image


def points(element: ET.Element) -> np.ndarray:
    return np.array([p.split(",") for p in element.get("points").split()], dtype=float)


def test_carpet_of_known_data_has_its_size_values_and_censored_marks():
    rng = np.random.default_rng(0)
    before = rng.standard_normal((30, 50))
    kept = np.setdiff1d(np.arange(30), [3, 10, 11])
    after = before[kept] * 0.5
    fd = np.linspace(0, 1, 30)
    root = parse(reports.plot_carpet(before, after, kept, fd, 2.0, [("Vis", 20), ("Default", 30)]))
    assert (root.get("width"), root.get("height")) == ("750", "500")
    marks = of_class(root, "censored")
    assert sorted(float(m.get("x1")) for m in marks) == [3, 10, 11]
    assert all(m.get("x1") == m.get("x2") and m.get("stroke") == "#d62728" for m in marks)
    # the FD trace is drawn as given, one point per volume
    (trace,) = of_class(root, "fd")
    np.testing.assert_allclose(points(trace), np.column_stack([np.arange(30), fd]), rtol=1e-5)
    first, second = (raster(e) for e in of_class(root, "carpet"))
    assert first.size == (30, 50) and first.mode == "P"  # one pixel per volume x voxel
    np.testing.assert_array_equal(np.asarray(first), to_indices(before.T, -2, 2))
    shown = np.asarray(second)
    assert (shown[:, [3, 10, 11]] == LEVELS).all()  # censored: the palette's last colour, red
    np.testing.assert_array_equal(shown[:, kept], to_indices(after.T, -2, 2))
    palette = np.array(second.getpalette()[: 3 * (LEVELS + 1)]).reshape(-1, 3)
    assert tuple(palette[LEVELS]) == ALERT and tuple(palette[0]) == (0, 0, 0)
    assert texts(root, "ytick")[-4:] == ["Vis", "Default", "Vis", "Default"]
    assert texts(root, "xtick") == ["0", "5", "10", "15", "20", "25"]  # at most 10
    assert "3 of 30 volumes censored (red)" in [t.text for t in root.iter() if t.text]


def test_network_order_keeps_names_and_values_paired():
    rng = np.random.default_rng(1)
    names = [
        "7Networks_LH_Default_1",
        "7Networks_LH_Vis_1",
        "Left-Thalamus",
        "7Networks_RH_Default_2",
        "7Networks_RH_Vis_2",
        "7Networks_LH_SomMot_1",
    ]
    a = rng.standard_normal((6, 6))
    matrix = a + a.T
    ordered, new_names, nets = reports.order_by_network(matrix, names)
    assert nets == ["Default", "Default", "Vis", "Vis", "SomMot", None]
    assert sorted(new_names) == sorted(names)
    for i, ni in enumerate(new_names):
        for j, nj in enumerate(new_names):
            assert ordered[i, j] == matrix[names.index(ni), names.index(nj)]
    # explicit networks win over names
    _, new_names, nets = reports.order_by_network(matrix, names, ["b", "a", "b", "a", "c", "c"])
    assert new_names[:2] == ["7Networks_LH_Default_1", "Left-Thalamus"] and nets[-1] == "c"


def test_plot_matrix_draws_the_ordered_matrix_with_network_ticks():
    names = ["7Networks_LH_Vis_1", "7Networks_LH_Default_1", "7Networks_RH_Vis_2"]
    matrix = np.array([[1.0, 0.1, 0.7], [0.1, 1.0, -0.2], [0.7, -0.2, 1.0]])
    root = parse(reports.plot_matrix(matrix, names))
    (cells,) = of_class(root, "cells")
    shown = np.asarray(raster(cells))
    nan = np.nan  # ordered: Vis_1, Vis_2, Default_1; the diagonal blank
    expected = np.array([[nan, 0.7, 0.1], [0.7, nan, -0.2], [0.1, -0.2, nan]])
    np.testing.assert_array_equal(shown, to_indices(expected, -0.7, 0.7))
    assert (shown.diagonal() == LEVELS).all() and shown[0, 1] == LEVELS - 1
    assert texts(root, "ytick") == ["Vis", "Default"] == texts(root, "xtick")
    boxes = [[float(r.get(k)) for k in ("x", "y", "width")] for r in of_class(root, "network")]
    assert boxes == [[0, 0, 2], [2, 2, 1]]  # in cells
    assert texts(root, "ctick")[0] == "-0.6" and texts(root, "ctick")[-1] == "0.6"


def test_plot_matrix_without_networks_names_few_regions_and_counts_many():
    root = parse(reports.plot_matrix(np.eye(3), ["a&b", "<c>", "d"]))
    assert texts(root, "ytick") == ["a&b", "<c>", "d"]  # escaped in the file, intact parsed
    root = parse(reports.plot_matrix(np.eye(64), [f"r{i}" for i in range(64)]))
    assert texts(root, "xtick")[:2] == ["0", "10"] and "64 regions" in [t.text for t in root]


def test_mask_and_atlas_figures_show_every_view():
    shape = (20, 24, 18)
    background = np.random.default_rng(2).random(shape)
    mask = np.zeros(shape, dtype=bool)
    mask[4:16, 4:20, 3:15] = True
    root = parse(reports.plot_mask(background, mask))
    titles = [t.text for t in root.iter() if t.tag.endswith("text")]
    assert len(titles) == 9 and titles[-2:] == ["x=10", "y=12"] and titles[0].startswith("z=")
    slices = [np.asarray(raster(e)) / 255 for e in of_class(root, "slice")]
    # axial: x wide, y high; sagittal: y wide, z high; coronal: x wide, z high
    assert [s.shape[:2] for s in slices] == [(24, 20)] * 7 + [(18, 24), (18, 20)]
    zoom = round(110 / 24)
    assert float(of_class(root, "slice")[0].get("height")) == 24 * zoom
    for tile in slices:  # a red contour in every view
        assert np.isclose(tile, RED, atol=1e-3).all(axis=2).any()
    edge = np.zeros((18, 20), dtype=bool)
    inside = mask[:, 12, :].T[::-1]
    edge[inside] = True
    edge[1:-1, 1:-1] &= ~(
        inside[:-2, 1:-1] & inside[2:, 1:-1] & inside[1:-1, :-2] & inside[1:-1, 2:]
    )
    np.testing.assert_array_equal(np.isclose(slices[-1], RED, atol=1e-3).all(axis=2), edge)
    regions = np.zeros(shape, dtype=int)
    regions[4:10, 4:20, 3:15], regions[10:16, 4:20, 3:15] = 1, 2
    root = parse(reports.plot_atlas(background, regions, [False, True]))
    coronal = np.asarray(raster(of_class(root, "slice")[-1])) / 255
    part = regions[:, 12, :].T[::-1]
    assert np.abs(coronal[part == 2] - RED).max() < 0.06  # low coverage: red
    assert np.abs(coronal[part == 1] - RED).max(axis=1).min() > 0.2  # others: not red
    grey = coronal[part == 0]
    np.testing.assert_allclose(grey, grey[:, :1].repeat(3, axis=1))  # no region: background
    assert coronal.std() > 0.05


def test_fraction_map_uses_viridis_and_a_colour_bar():
    fraction = np.zeros((10, 12, 10))
    fraction[2:8, 2:10, 2:8] = 0.5
    fraction[4:6, 4:8, 4:6] = 1.0
    root = parse(reports.plot_fraction(None, fraction))
    coronal = np.asarray(raster(of_class(root, "slice")[-1]))
    colours = {tuple(c) for c in coronal.reshape(-1, 3)}
    assert (0, 0, 0) in colours and len(colours) == 3  # outside, 0.5 and 1.0
    (bar,) = of_class(root, "colourbar")
    assert raster(bar).size == (1, LEVELS)
    assert texts(root, "ctick") == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]


def test_slice_positions_spread_over_the_extent():
    extent = np.zeros((10, 10, 40), dtype=bool)
    extent[2:8, 3:9, 10:30] = True
    axial, sag, cor = reports.slice_positions(extent, 4)
    assert axial == [14, 18, 21, 25] and (sag, cor) == (4, 6)


def test_distributions_and_histogram_drop_non_finite_values():
    drawing = reports.plot_histogram(np.array([0.1, np.nan, 0.2, np.inf]), "r", threshold=0.5)
    root = parse(drawing)
    (bars,) = of_class(root, "bars")  # one filled outline: bin edges and counts
    xy = points(bars)
    assert xy[:, 1].max() == 1 and xy[:, 1].sum() == 2 * 2
    assert xy[:, 0].min() == pytest.approx(0.1) and xy[:, 0].max() == pytest.approx(0.2)
    (line,) = of_class(root, "threshold")
    assert float(line.get("x1")) == 0.5 and "threshold 0.5" in [t.text for t in root]
    root = parse(reports.plot_distributions({"a": [1.0, 2.0, np.nan], "b <&>": [3.0]}, "x"))
    assert texts(root, "ytick") == ["a", "b <&>"]
    dots = [e.get("d") for e in of_class(root, "points")]
    assert dots == ["M1 0.85h0M2 1.15h0", "M3 2h0"]


def test_scatter_and_stacked_bars_draw_the_values_given():
    root = parse(
        reports.plot_scatter(np.array([1.0, 2.0, np.nan]), np.array([0.5, np.inf, 0.1]), "d", "r")
    )
    (dots,) = of_class(root, "points")
    assert dots.get("d") == "M1 0.5h0"
    root = parse(
        reports.plot_scatter(np.array([1.0, 2.0]), np.array([0.5, 0.2]), "d", "r", ["a", "b"])
    )
    assert [t.text for t in root if t.text in ("a", "b")] == ["a", "b"]
    drawing = reports.plot_stacked_bars(["a", "b"], {"x": [1.0, 2.0], "y": [3.0, np.nan]}, "tdof")
    bars = of_class(parse(drawing), "bar")
    assert [(float(b.get("x")), float(b.get("width"))) for b in bars] == [
        (0, 1),
        (0, 2),
        (1, 3),
        (2, 0),
    ]


def test_carpet_draws_at_most_max_rows_keeping_groups_in_place():
    before = np.repeat(np.arange(10.0)[None, :], 8, axis=0) - 5  # column value = voxel index - 5
    drawing = reports.plot_carpet(
        before, before, np.arange(8), groups=[("A", 4), ("B", 6)], max_rows=5
    )
    root = parse(drawing)
    shown = np.asarray(raster(of_class(root, "carpet")[0]))
    assert shown.shape == (5, 8)  # every second voxel
    np.testing.assert_array_equal(shown[:, 0], to_indices(np.array([-5, -3, -1, 1, 3]), -2, 2))
    assert texts(root, "ytick")[-2:] == ["A", "B"]
    (group_line, _) = [e for g in of_class(root, "groups") for e in g]
    assert float(group_line.get("y1")) == 2  # A: rows 0-1


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.text = [], []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.imgs.append(dict(attrs)["src"])

    def handle_data(self, data):
        self.text.append(data)


def test_pages_escape_text_and_embed_figures(tmp_path):
    svg = reports.plot_histogram(np.arange(5.0), "x").to_bytes()
    section = reports.Section(
        "run <b>1</b>",
        tables=[reports.Table(["a", "b"], [[1.23456, None], ["<i>", float("nan")]])],
        figures=[reports.Figure(reports.data_uri(svg, "svg"), "caption <script>")],
    )
    report = reports.HTMLReport(reports.Page("Title & more", [section]))
    html = report._repr_html_()
    assert "<b>1</b>" not in html and "run &lt;b&gt;1&lt;/b&gt;" in html
    assert "caption &lt;script&gt;" in html and "&lt;i&gt;" in html
    assert "<td>1.23</td><td>n/a</td>" in html
    assert "http://" not in html and "https://" not in html  # nothing from the network
    parser = _Collect()
    parser.feed(html)
    assert parser.imgs == [reports.data_uri(svg, "svg")]
    assert parser.imgs[0].startswith("data:image/svg+xml;base64,")
    report.save_as_html(tmp_path / "r.html")
    assert (tmp_path / "r.html").read_text(encoding="utf-8") == html


def test_figures_need_no_plotting_library_nor_a_writable_home(tmp_path):
    (tmp_path / "file").write_text("")
    home = tmp_path / "file" / "home"  # cannot be created, even by root (read-only container)
    code = textwrap.dedent(
        """
        import sys
        import numpy as np
        from bidsmask import reports
        mask = np.zeros((8, 9, 10), dtype=bool)
        mask[2:6, 2:7, 2:8] = True
        figures = [
            reports.plot_matrix(np.eye(3), list("abc")),
            reports.plot_carpet(np.ones((5, 4)), np.ones((4, 4)), np.arange(4), np.ones(5)),
            reports.plot_fraction(None, mask * 0.5),
            reports.plot_atlas(np.ones(mask.shape), mask.astype(int), [True]),
            reports.plot_stacked_bars(["a"], {"x": [1.0]}, "x"),
        ]
        assert all(f.to_bytes().startswith(b"<?xml") for f in figures)
        loaded = [m for m in ("matplotlib", "PIL") if m in sys.modules]
        assert not loaded, loaded
        """
    )
    env = {**os.environ, "HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
