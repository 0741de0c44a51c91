"""generate_report() of the four Nifti maskers: nilearn's report object, built from our figures."""

from __future__ import annotations

import base64
import io
import warnings
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from bidsmask.maskers import NiftiLabelsMasker, NiftiMapsMasker, NiftiMasker, NiftiSpheresMasker

AFFINE = np.diag([4.0, 4.0, 4.0, 1.0])
AFFINE[:3, 3] = [-60, -80, -50]
SHAPE = (30, 36, 30)


class Parsed(HTMLParser):
    def __init__(self, html):
        super().__init__()
        self.images, self.rows, self.headings, self._tag = [], 0, [], None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self._tag = tag
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        elif tag == "tr":
            self.rows += 1

    def handle_data(self, data):
        if self._tag == "h2" and data.strip():
            self.headings.append(data.strip())


@pytest.fixture(scope="module")
def images():
    mask = np.zeros(SHAPE, dtype=np.uint8)
    mask[5:25, 6:30, 5:25] = 1
    labels = np.zeros(SHAPE, dtype=np.int32)
    labels[5:15, 6:30, 5:25], labels[15:25, 6:30, 5:25] = 1, 2
    labels[0:3, 0:3, 0:3] = 3  # outside the mask
    maps = np.stack([labels == k for k in (1, 2, 3)], axis=-1).astype(np.float32)
    return (
        nib.Nifti1Image(mask, AFFINE),
        nib.Nifti1Image(labels, AFFINE),
        nib.Nifti1Image(maps, AFFINE),
    )


def maskers(images):
    mask, labels, maps = images
    return {
        "NiftiMasker": (NiftiMasker(mask_img=mask), 0),
        "NiftiLabelsMasker": (NiftiLabelsMasker(labels, mask_img=mask, keep_masked_labels=True), 3),
        "NiftiMapsMasker": (NiftiMapsMasker(maps, mask_img=mask, keep_masked_maps=True), 3),
        "NiftiSpheresMasker": (NiftiSpheresMasker([(0, -20, 10), (20, 0, 0)], 8, mask), 2),
    }


@pytest.mark.parametrize(
    "name", ["NiftiMasker", "NiftiLabelsMasker", "NiftiMapsMasker", "NiftiSpheresMasker"]
)
def test_report_of_a_fitted_masker(images, name, tmp_path, monkeypatch):
    masker, n_regions = maskers(images)[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # labels/maps removed by the mask: not this test's topic
        masker.fit()
    report = masker.generate_report()
    html = report._repr_html_()
    parsed = Parsed(html)
    assert parsed.headings == ["What the masker extracts", "Parameters"]
    assert f"{name} report" in html
    assert len(parsed.images) == 1 and parsed.images[0].startswith("data:image/svg+xml;base64,")
    svg = ET.fromstring(base64.b64decode(parsed.images[0].split(",", 1)[1]))
    slices = [e.get("href") for e in svg.iter("{http://www.w3.org/2000/svg}image")]
    assert len(slices) >= 3  # axial slices (up to 7), 1 sagittal, 1 coronal
    pixels = np.concatenate(
        [
            np.asarray(Image.open(io.BytesIO(base64.b64decode(s.split(",", 1)[1])))).ravel()
            for s in slices
        ]
    )
    assert pixels.std() / 255 > 0.05
    n_params = len(masker.get_params(deep=False))
    extra = 1 + n_regions if n_regions else 0  # region table: header + one row per region
    assert parsed.rows == 1 + n_params + extra
    if name == "NiftiLabelsMasker":  # the label outside the mask: coverage 0, drawn in red
        assert "1 with no voxel in the mask in red" in html
    report.save_as_html(tmp_path / "r.html")
    assert (tmp_path / "r.html").read_text(encoding="utf-8") == html
    opened = []
    monkeypatch.setattr("webbrowser.open", opened.append)
    path = report.open_in_browser()
    assert opened == [path.as_uri()] and path.read_text(encoding="utf-8") == html
    path.unlink()


def test_displayed_maps_and_spheres_select_what_is_drawn(images):
    mask, _, maps = images
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        masker = NiftiMapsMasker(maps, mask_img=mask, keep_masked_maps=True).fit()
    assert "2 of 3 maps" in masker.generate_report(2)._repr_html_()
    assert "1 of 3 maps" in masker.generate_report([1])._repr_html_()
    with pytest.raises(ValueError, match="displayed indices"):
        masker.generate_report([5])
    spheres = NiftiSpheresMasker([(0, -20, 10), (20, 0, 0)], 8).fit()
    assert "1 of 2 spheres" in spheres.generate_report(displayed_spheres=[0])._repr_html_()


def test_report_of_an_unfitted_masker_says_so(images):
    with pytest.warns(UserWarning, match="not fitted"):
        report = NiftiLabelsMasker(images[1]).generate_report(title="mine")
    html = report._repr_html_()
    assert "<h1>mine</h1>" in html and "is not fitted yet" in html and "<img" not in html


def test_multi_maskers_report_as_their_single_image_masker(images):
    from bidsmask.maskers import MultiNiftiLabelsMasker, MultiNiftiMapsMasker, MultiNiftiMasker

    mask, labels, maps = images
    for masker in (
        MultiNiftiMasker(mask_img=mask),
        MultiNiftiLabelsMasker(labels, mask_img=mask, keep_masked_labels=True),
        MultiNiftiMapsMasker(maps, mask_img=mask, keep_masked_maps=True),
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            html = masker.fit().generate_report()._repr_html_()
        parsed = Parsed(html)
        assert parsed.headings == ["What the masker extracts", "Parameters"]
        assert f"{type(masker).__name__} report" in html and len(parsed.images) == 1
