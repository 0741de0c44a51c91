"""Figure functions on small arrays, pages (escaping, the report object), matplotlib setup."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from html.parser import HTMLParser

import numpy as np
from matplotlib import image as mpimg

from bidsmask import reports


def png_pixels(content: bytes) -> np.ndarray:
    assert content[:8] == b"\x89PNG\r\n\x1a\n"
    return mpimg.imread(io.BytesIO(content), format="png")


def test_carpet_of_known_data_has_its_size_values_and_censored_marks():
    rng = np.random.default_rng(0)
    before = rng.standard_normal((30, 50))
    kept = np.setdiff1d(np.arange(30), [3, 10, 11])
    after = before[kept] * 0.5
    fd = np.linspace(0, 1, 30)
    fig = reports.plot_carpet(before, after, kept, fd, 2.0, [("Vis", 20), ("Default", 30)])
    marks = [c for c in fig.axes[0].collections if c.get_label() == "censored volumes"]
    assert len(marks) == 1
    xs = sorted(seg[0][0] for seg in marks[0].get_segments())
    assert xs == [3, 10, 11]
    # the FD trace is drawn as given
    np.testing.assert_array_equal(fig.axes[0].lines[0].get_ydata(), fd)
    shown_before = fig.axes[1].images[0].get_array()
    np.testing.assert_array_equal(shown_before, before.T)
    shown_after = fig.axes[2].images[0].get_array()
    assert shown_after.mask[:, [3, 10, 11]].all() and not shown_after.mask[:, kept].any()
    np.testing.assert_array_equal(shown_after[:, kept], after.T)
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == ["Vis", "Default"]
    pixels = png_pixels(reports.to_bytes(fig, "png", dpi=100))
    assert pixels.shape[:2] == (500, 750)
    # censored volumes are red in the rendered "after" carpet
    red = (pixels[..., 0] > 0.7) & (pixels[..., 1] < 0.3) & (pixels[..., 2] < 0.3)
    assert red.sum() > 500


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
    fig = reports.plot_matrix(matrix, names)
    shown = fig.axes[0].images[0].get_array()
    assert shown.mask.diagonal().all()
    assert shown[0, 1] == 0.7 and shown[0, 2] == 0.1 and shown[1, 2] == -0.2
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["Vis", "Default"]
    svg = reports.to_bytes(fig, "svg")
    assert svg.lstrip().startswith(b"<?xml") and b"<svg" in svg and b"Default" in svg


def tiles(fig, widths, height):
    """Cut a brain mosaic (one image, slices side by side, 2-pixel gaps) into its slices."""
    mosaic = fig.axes[0].images[0].get_array()
    zoom = mosaic.shape[0] // height
    out, left = [], 0
    for width in widths:
        out.append(mosaic[::zoom, left : left + width * zoom : zoom])
        left += (width + 2) * zoom
    assert left - 2 * zoom == mosaic.shape[1]
    return out


def test_mask_and_atlas_figures_show_every_view():
    shape = (20, 24, 18)
    background = np.random.default_rng(2).random(shape)
    mask = np.zeros(shape, dtype=bool)
    mask[4:16, 4:20, 3:15] = True
    fig = reports.plot_mask(background, mask)
    titles = [t.get_text() for t in fig.axes[0].texts]
    assert len(titles) == 9 and titles[-2:] == ["x=10", "y=12"] and titles[0].startswith("z=")
    widths = [20] * 7 + [24, 20]  # axial: x wide; sagittal: y wide; coronal: x wide
    red = np.array([0.839, 0.153, 0.157])
    for tile in tiles(fig, widths, 24):  # a red contour in every view, nothing else red
        is_red = np.isclose(tile, red, atol=1e-3).all(axis=2)
        assert is_red.any()
    coronal = tiles(fig, widths, 24)[-1][3:21]  # 18 rows of z, centred in 24
    edge = np.zeros((18, 20), dtype=bool)
    inside = mask[:, 12, :].T[::-1]
    edge[inside] = True
    edge[1:-1, 1:-1] &= ~(
        inside[:-2, 1:-1] & inside[2:, 1:-1] & inside[1:-1, :-2] & inside[1:-1, 2:]
    )
    np.testing.assert_array_equal(np.isclose(coronal, red, atol=1e-3).all(axis=2), edge)
    regions = np.zeros(shape, dtype=int)
    regions[4:10, 4:20, 3:15], regions[10:16, 4:20, 3:15] = 1, 2
    fig = reports.plot_atlas(background, regions, [False, True])
    coronal = tiles(fig, widths, 24)[-1][3:21]
    part = regions[:, 12, :].T[::-1]
    assert np.abs(coronal[part == 2] - red).max() < 0.06  # low coverage: red
    assert np.abs(coronal[part == 1] - red).max(axis=1).min() > 0.2  # others: not red
    grey = coronal[part == 0]
    np.testing.assert_allclose(grey, grey[:, :1].repeat(3, axis=1))  # no region: background
    assert png_pixels(reports.to_bytes(fig, "png")).std() > 0.05


def test_slice_positions_spread_over_the_extent():
    extent = np.zeros((10, 10, 40), dtype=bool)
    extent[2:8, 3:9, 10:30] = True
    axial, sag, cor = reports.slice_positions(extent, 4)
    assert axial == [14, 18, 21, 25] and (sag, cor) == (4, 6)


def test_distributions_and_histogram_drop_non_finite_values():
    fig = reports.plot_histogram(np.array([0.1, np.nan, 0.2, np.inf]), "r", threshold=0.5)
    (outline,) = fig.axes[0].patches  # one filled outline (cheaper than a bar per bin)
    xy = outline.get_path().vertices
    assert xy[:, 1].max() == 1 and xy[xy[:, 1] > 0, 0].min() >= 0.1
    assert xy[xy[:, 1] > 0, 0].max() <= 0.2
    fig = reports.plot_distributions({"a": np.array([1.0, 2.0, np.nan]), "b": np.array([3.0])}, "x")
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b"]


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
    png = reports.to_bytes(reports.plot_histogram(np.arange(5.0), "x"), "png")
    section = reports.Section(
        "run <b>1</b>",
        tables=[reports.Table(["a", "b"], [[1.23456, None], ["<i>", float("nan")]])],
        figures=[reports.Figure(reports.data_uri(png, "png"), "caption <script>")],
    )
    report = reports.HTMLReport(reports.Page("Title & more", [section]))
    html = report._repr_html_()
    assert "<b>1</b>" not in html and "run &lt;b&gt;1&lt;/b&gt;" in html
    assert "caption &lt;script&gt;" in html and "&lt;i&gt;" in html
    assert "<td>1.23</td><td>n/a</td>" in html
    assert "http://" not in html and "https://" not in html  # nothing from the network
    parser = _Collect()
    parser.feed(html)
    assert parser.imgs == [reports.data_uri(png, "png")]
    report.save_as_html(tmp_path / "r.html")
    assert (tmp_path / "r.html").read_text(encoding="utf-8") == html


def test_import_stays_light_and_matplotlib_works_in_a_read_only_home(tmp_path):
    (tmp_path / "file").write_text("")
    home = tmp_path / "file" / "home"  # cannot be created, even by root (read-only container)
    code = textwrap.dedent(
        """
        import os, sys
        import bidsmask, bidsmask.reports, bidsmask.app.run, bidsmask.maskers
        assert "matplotlib" not in sys.modules, "matplotlib imported too early"
        import numpy as np
        from bidsmask import reports
        fig = reports.plot_histogram(np.arange(4.0), "x")
        assert reports.to_bytes(fig, "png")[:4] == b"\\x89PNG"
        import matplotlib
        print(matplotlib.get_backend(), os.environ.get("MPLCONFIGDIR"))
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("MPLCONFIGDIR", "XDG_CONFIG_HOME")}
    env["HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    backend, config_dir = done.stdout.split()
    assert backend.lower() == "agg" and "bidsmask-matplotlib-" in config_dir
    assert "writable" not in done.stderr


def test_scatter_and_stacked_bars_draw_the_values_given():
    fig = reports.plot_scatter(np.array([1.0, 2.0, np.nan]), np.array([0.5, np.inf, 0.1]), "d", "r")
    line = fig.axes[0].lines[0]
    assert line.get_xdata().tolist() == [1.0] and line.get_ydata().tolist() == [0.5]
    fig = reports.plot_stacked_bars(["a", "b"], {"x": [1.0, 2.0], "y": [3.0, np.nan]}, "tdof")
    bars = fig.axes[0].patches
    assert [(b.get_x(), b.get_width()) for b in bars] == [(0, 1), (0, 2), (1, 3), (2, 0)]


def test_carpet_draws_at_most_max_rows_keeping_groups_in_place():
    before = np.repeat(np.arange(10.0)[None, :], 8, axis=0)  # column value = voxel index
    fig = reports.plot_carpet(before, before, np.arange(8), groups=[("A", 4), ("B", 6)], max_rows=5)
    shown = fig.axes[1].images[0].get_array()
    assert shown[:, 0].tolist() == [0, 2, 4, 6, 8]  # every second voxel
    ticks = [t.get_text() for t in fig.axes[1].get_yticklabels()]
    assert ticks == ["A", "B"] and fig.axes[1].lines[0].get_ydata()[0] == 2  # A: rows 0-1
