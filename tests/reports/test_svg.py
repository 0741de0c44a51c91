"""The figures' renderer: PNG encoder, nice ticks, SVG elements, escaping, data coordinates."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from bidsmask.reports._colours import LEVELS, lookup_table, palette, to_hex, to_indices
from bidsmask.reports._png import encode_png
from bidsmask.reports._svg import Axes, Drawing, nice_ticks, padded, tick_labels


def decode(content: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(content))
    image.load()
    return image


@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (64, 3)])
def test_png_round_trips_rgb_grey_and_indexed_images(shape):
    rng = np.random.default_rng(sum(shape))
    rgb = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    image = decode(encode_png(rgb))
    assert image.mode == "RGB" and image.size == shape[::-1]
    np.testing.assert_array_equal(np.asarray(image), rgb)
    grey = rng.integers(0, 256, shape, dtype=np.uint8)
    image = decode(encode_png(grey))
    assert image.mode == "L"
    np.testing.assert_array_equal(np.asarray(image), grey)
    colours = rng.integers(0, 256, (5, 4), dtype=np.uint8)
    indices = rng.integers(0, 5, shape, dtype=np.uint8)
    image = decode(encode_png(indices, colours))
    assert image.mode == "P"
    np.testing.assert_array_equal(np.asarray(image), indices)
    np.testing.assert_array_equal(np.asarray(image.convert("RGBA")), colours[indices])


def test_png_bytes_are_deterministic():
    pixels = np.arange(60, dtype=np.uint8).reshape(6, 10)
    assert encode_png(pixels) == encode_png(pixels.copy())
    assert encode_png(pixels) != encode_png(pixels + 1)


@pytest.mark.parametrize(
    ("lo", "hi", "expected"),
    [
        (0, 1, [0, 0.2, 0.4, 0.6, 0.8, 1]),
        (-0.8, 0.8, [-0.75, -0.5, -0.25, 0, 0.25, 0.5, 0.75]),
        (0, 79, [0, 20, 40, 60]),
        (0.0131, 0.0173, [0.014, 0.015, 0.016, 0.017]),
        (-3.2, 450, [0, 100, 200, 300, 400]),
        (5, 5, [5]),
        (2, 1, [1, 1.2, 1.4, 1.6, 1.8, 2]),
    ],
)
def test_nice_ticks_are_round_and_inside_the_range(lo, hi, expected):
    ticks = nice_ticks(lo, hi)
    np.testing.assert_allclose(ticks, expected, atol=1e-12)
    assert len(ticks) <= 7
    assert nice_ticks(0, np.nan).size == 0


def test_tick_labels_use_the_decimals_of_their_step():
    assert tick_labels(nice_ticks(-0.8, 0.8)) == [
        "-0.75",
        "-0.50",
        "-0.25",
        "0.00",
        "0.25",
        "0.50",
        "0.75",
    ]
    assert tick_labels([-1.0, -0.0, 1.0]) == ["-1", "0", "1"]
    assert tick_labels(nice_ticks(0.0131, 0.0173)) == ["0.014", "0.015", "0.016", "0.017"]
    assert padded(0, 10) == (-0.5, 10.5) and padded(3, 3) == (2.5, 3.5)


def test_colour_indices_and_palettes():
    values = np.array([[-2.0, 0.0], [2.0, np.nan]])
    np.testing.assert_array_equal(to_indices(values, -2, 2), [[0, 127], [254, LEVELS]])
    gray = palette("gray", bad=(214, 39, 40))
    assert gray.shape == (LEVELS + 1, 3)
    assert tuple(gray[0]) == (0, 0, 0) and tuple(gray[LEVELS - 1]) == (255, 255, 255)
    assert to_hex(gray[LEVELS]) == "#d62728"
    rdbu = palette("RdBu_r")
    assert rdbu[0, 2] > rdbu[0, 0] and rdbu[LEVELS - 1, 0] > rdbu[LEVELS - 1, 2]  # blue to red


# out of 255: matplotlib samples its 256-colour table; viridis from 16 anchors misses the
# small dip of blue at its yellow end by 7
@pytest.mark.parametrize(("name", "tolerance"), [("RdBu_r", 2), ("gray", 0.5), ("viridis", 7)])
def test_colour_maps_match_matplotlibs(name, tolerance):
    colormaps = pytest.importorskip("matplotlib").colormaps
    expected = colormaps[name](np.linspace(0, 1, LEVELS))[:, :3] * 255
    assert np.abs(lookup_table(name) - expected).max() <= tolerance
    tab20 = np.asarray(colormaps["tab20"].colors) * 255
    np.testing.assert_array_equal(lookup_table("tab20"), np.round(tab20))


def test_text_and_attributes_are_escaped():
    drawing = Drawing(100, 50)
    drawing.text(10, 20, 'Left & <Right> "x"', class_='a"b')
    drawing.text(10, 40, "rotated", anchor="middle", valign="middle", rotate=-90)
    content = drawing.to_bytes()
    assert b"<Right>" not in content and b"&amp;" in content
    root = ET.fromstring(content)
    first, second = root.findall("{http://www.w3.org/2000/svg}text")
    assert first.text == 'Left & <Right> "x"' and first.get("class") == 'a"b'
    assert second.get("transform") == "rotate(-90 10 40)" and second.get("text-anchor") == "middle"
    assert root.get("width") == "100" and root.get("viewBox") == "0 0 100 50"


def test_axes_map_data_to_pixels_and_data_groups_keep_the_values():
    drawing = Drawing(200, 100)
    axes = Axes(drawing, (20, 10, 160, 80), (0, 4), (-1, 1))
    assert float(axes.px(0)) == 20 and float(axes.px(4)) == 180
    assert float(axes.py(-1)) == 90 and float(axes.py(1)) == 10
    flipped = Axes(drawing, (20, 10, 160, 80), (0, 4), (8, 0))  # rows, top down
    assert float(flipped.py(0)) == 10 and float(flipped.py(8)) == 90
    with axes.data(class_="data"):
        drawing.line(0.123456789, -1, 0.123456789, 1, class_="mark")
    drawing.line(0.123456789, 0, 10, 0, class_="pixel")
    root = ET.fromstring(drawing.to_bytes())
    (group,) = [e for e in root if e.get("class") == "data"]
    assert group.get("transform") == "matrix(40 0 0 -40 20 50)"
    mark = group[0]
    assert mark.get("x1") == "0.123457" and mark.get("vector-effect") == "non-scaling-stroke"
    pixel = [e for e in root if e.get("class") == "pixel"][0]
    assert pixel.get("x1") == "0.12" and pixel.get("vector-effect") is None


def test_images_are_embedded_pixelated():
    drawing = Drawing(30, 30)
    png = encode_png(np.zeros((2, 2), dtype=np.uint8))
    drawing.image(0, 0, 30, 30, png, class_="r")
    (image,) = [e for e in ET.fromstring(drawing.to_bytes()) if e.get("class") == "r"]
    assert image.get("style") == "image-rendering:pixelated"
    assert image.get("preserveAspectRatio") == "none"
    assert image.get("href").startswith("data:image/png;base64,")


def test_data_far_from_zero_land_in_the_axes():
    # x = 1000 ± 0.01: the transform's offset (-8149898.5 pixels) needs more than six digits
    drawing = Drawing(200, 100)
    axes = Axes(drawing, (20, 10, 163, 80), (999.99, 1000.01), (0, 1))
    with axes.data(class_="data"):
        drawing.line(1000.01, 0, 1000.01, 1, class_="mark")
    root = ET.fromstring(drawing.to_bytes())
    (group,) = [e for e in root if e.get("class") == "data"]
    a, _, _, d, e, f = (float(v) for v in group.get("transform")[7:-1].split())
    x = a * float(group[0].get("x1")) + e
    assert abs(x - float(axes.px(1000.01))) < 0.01
    assert abs(d * 1 + f - float(axes.py(1))) < 0.01
