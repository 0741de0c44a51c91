"""The reports of the app: page structure, every figure present and valid, rebuilds, a browser."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bidsmask.app import report_pages
from bidsmask.app.cli import main
from bidsmask.bids import naming
from bidsmask.bids.outputs import parse_output

ATLASES = ("Schaefer2018:100Parcels7Networks", "DiFuMo:64dimensions")
STRATEGIES = ("simple", "scrubbing")


@pytest.fixture(scope="module")
def out(fmriprep_dir, templateflow_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reports") / "out"
    common = [str(fmriprep_dir), str(out)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TEMPLATEFLOW_HOME", str(templateflow_dir))
        mp.setenv("TEMPLATEFLOW_AUTOUPDATE", "0")
        participant = [*common, "participant", "--participant-label", "01"]
        participant += ["--atlas", *ATLASES, "--strategy", *STRATEGIES]
        assert main([*participant, "--work-dir", str(out.parent / "work")]) == 0
        assert main([*common, "group"]) == 0
    return out


class Page(HTMLParser):
    """Sections (id, heading level and text, entities), figure links and ``<body>`` of a page."""

    def __init__(self, html: str):
        super().__init__()
        self.sections, self.images, self.body = [], [], {}
        self._heading = None
        self.feed(html)
        self.close()

    @classmethod
    def read(cls, path: Path) -> Page:
        return cls(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            entities = json.loads(attrs["data-entities"])
            self.sections.append({"id": attrs["id"], "entities": entities, "heading": ""})
        elif tag in ("h2", "h3") and self.sections:
            self._heading = tag
            self.sections[-1]["level"] = tag
        elif tag in ("img", "object"):
            self.images.append(attrs.get("src") or attrs.get("data"))
        elif tag == "body":
            self.body = attrs

    def handle_endtag(self, tag):
        if tag == self._heading:
            self._heading = None

    def handle_data(self, data):
        if self._heading:
            self.sections[-1]["heading"] += data


def check_figure(path: Path) -> None:
    """A valid, non-empty SVG whose embedded rasters (PNG) decode and are not flat."""
    content = path.read_bytes()
    assert content and path.suffix == ".svg", path
    root = ET.fromstring(content)
    assert root.tag.endswith("svg") and len(root) > 1, path
    assert float(root.get("width")) > 50 and float(root.get("height")) > 50, path
    for element in root.iter("{http://www.w3.org/2000/svg}image"):
        head, data = element.get("href").split(",", 1)
        assert head == "data:image/png;base64", path
        pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))
        assert pixels.size and (pixels.std() > 1 or pixels.shape[1] == 1), path


def records(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "logs" / "runs").glob("*.json"))]


def test_participant_page_has_a_section_per_run_and_atlas_x_strategy(out):
    page = Page.read(out / "sub-01.html")
    runs = [s for s in page.sections if s["level"] == "h2"]
    recs = records(out)
    assert len(runs) == len(recs) == 3
    for section, record in zip(runs, recs, strict=True):
        stem = naming.run_stem(record["Entities"])
        assert section["entities"] == record["Entities"]
        assert section["heading"] == stem.replace("_", " ")
        for name in record["Outputs"]:  # the heading's entities are those of the run's files
            assert parse_output(name)[0].items() >= record["Entities"].items()
    headings = [s["heading"] for s in page.sections if s["level"] == "h3"]
    for atlas in ATLASES:
        assert headings.count(f"Atlas {atlas}") == 3
        for strategy in STRATEGIES:
            assert headings.count(f"{atlas} × {strategy}") == 3
    for strategy in STRATEGIES:
        assert headings.count(f"Strategy {strategy}") == 3
    assert headings.count("Mask") == 3
    # 1 mask + 2 per atlas + 1 carpet per strategy + 2 per atlas x strategy, per run
    assert len(page.images) == 3 * (1 + 2 * 2 + 2 + 2 * 2 * 2)
    for src in page.images:
        assert not src.startswith(("/", "http", "file:")), src
        check_figure(out / src)
        assert src.startswith("sub-01/figures/")
        entities = parse_output(src)[0]
        assert sum(entities.items() >= r["Entities"].items() for r in recs) == 1


def test_group_page_has_the_qc_table_distributions_overlap_and_matrices(out):
    page = Page.read(out / "group.html")
    headings = [s["heading"] for s in page.sections]
    assert headings[0] == "QC table"
    assert "Mask overlap, space MNI152NLin2009cAsym res-2" in headings
    assert "Group-average connectivity" in headings
    html = (out / "group.html").read_text()
    qc_html = html.split('<section id="qc"')[1].split("</section>")[0]
    assert qc_html.count("<tr>") == 1 + 3 * 2  # header + runs x strategies
    # the denoising-quality table (QC-FC needs 3 participants: none here) is on the page
    assert (out / "desc-denoising_qc.tsv").is_file() and "Denoising quality" in headings
    assert 'href="sub-01.html"' in html
    # distributions (2), overlap, group matrices per task (rest, nback) x atlas x strategy, tDOF
    assert len(page.images) == 2 + 1 + 2 * len(ATLASES) * len(STRATEGIES) + 1
    assert "task-nback_space-MNI152NLin2009cAsym_" in html and "task-rest_space-" in html
    for src in page.images:
        check_figure(out / src)


def test_group_overlap_is_the_fraction_of_runs_per_voxel(out):
    masks = [nib.load(out / r["Mask"]).get_fdata() for r in records(out)]
    fraction = np.mean(masks, axis=0)
    assert 0 < (fraction == 1).sum() < (fraction > 0).sum()  # the runs' masks differ


def test_reports_only_rebuilds_pages_without_reading_bold(out, fmriprep_dir, monkeypatch):
    pages = {name: (out / name).read_text() for name in ("sub-01.html", "group.html")}
    for name in pages:
        (out / name).unlink()
    real_load = nib.load

    def no_bold(path, *args, **kwargs):
        assert "_bold.nii" not in str(path), f"--reports-only read {path}"
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(nib, "load", no_bold)
    monkeypatch.setattr("bidsmask.regions.extract", None)
    assert main([str(fmriprep_dir), str(out), "group", "--reports-only"]) == 0
    for name, text in pages.items():
        assert (out / name).read_text() == text


def test_resumed_run_keeps_a_complete_report(out, fmriprep_dir, templateflow_dir, monkeypatch):
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(templateflow_dir))
    before = (out / "sub-01.html").read_text()
    figure = next((out / "sub-01" / "figures").glob("*_task-rest_*carpetplot.svg"))
    figure.unlink()  # a lost figure: its run is redone, the others are up to date
    args = [str(fmriprep_dir), str(out), "participant", "--participant-label", "01"]
    args += ["--atlas", *ATLASES, "--strategy", *STRATEGIES]
    assert main(args) == 0
    assert figure.is_file()
    assert Page.read(out / "sub-01.html").images == Page(before).images
    log = sorted((out / "logs").glob("bidsmask-participant-*.log"))[-1].read_text()
    assert "2 already complete" in log


def test_no_reports_writes_no_figure(fmriprep_dir, templateflow_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(templateflow_dir))
    out = tmp_path / "out"
    args = [str(fmriprep_dir), str(out), "participant", "--participant-label", "01"]
    args += ["--task", "rest", "--atlas", ATLASES[0], "--no-reports"]
    assert main(args) == 0
    assert not (out / "sub-01.html").exists() and not (out / "sub-01" / "figures").exists()
    assert "Report" not in records(out)[0]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(*args: str) -> subprocess.CompletedProcess:
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    return subprocess.run(
        [*command, "--virtual-time-budget=10000", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
@pytest.mark.parametrize("name", ["sub-01.html", "group.html"])
def test_pages_open_in_a_real_browser_with_every_figure(out, tmp_path, name):
    copy = tmp_path / "copied"  # a copied folder works: links are relative
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("*.nii.gz", "*.tsv"))
    url = (copy / name).as_uri()
    shot = tmp_path / "shot.png"
    done = chromium(f"--screenshot={shot}", "--window-size=1280,2000", url)
    assert shot.is_file(), done.stderr
    pixels = np.asarray(Image.open(shot).convert("RGB")) / 255
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels[..., :3].std() > 0.05  # not blank
    assert (pixels[..., :3].std(axis=2) > 0.1).mean() > 0.001  # colour: figures are drawn
    done = chromium("--dump-dom", url)
    body = Page(done.stdout)
    n_images = len(Page.read(copy / name).images)
    assert n_images > 0
    assert body.body.get("data-images-total") == str(n_images), done.stdout[-500:]
    assert body.body.get("data-images-broken") == ""
    assert body.body.get("data-js-errors") == ""
    # a figure missing from the copy is reported by the page itself
    next((copy / "sub-01" / "figures").glob("*.svg")).unlink()
    done = chromium("--dump-dom", (copy / "sub-01.html").as_uri())
    assert "Figure not found: sub-01/figures/" in done.stdout


def test_group_page_draws_the_denoising_quality_outputs(tmp_path):
    """QC-FC distribution and QC-FC against distance per matrix, tDOF lost, the table."""
    out = tmp_path
    names = ["a", "b", "c", "d"]
    coords = np.array([[0, 0, 0], [10, 0, 0], [0, 20, 0], [0, 0, 40]], dtype=float)
    table = pd.DataFrame({"index": range(1, 5), "name": names})
    table[["x", "y", "z"]] = coords
    table.to_csv(out / "atlas-Spheres_dseg.tsv", sep="\t", index=False)
    qcfc = np.array(
        [[1, 0.1, 0.2, 0.3], [0.1, 1, 0.4, 0.5], [0.2, 0.4, 1, 0.6], [0.3, 0.5, 0.6, 1]]
    )
    name = "space-MNI152NLin2009cAsym_atlas-Spheres_meas-QCFC_desc-simple_relmat.tsv"
    pd.DataFrame(qcfc, index=pd.Index(names, name="node"), columns=names).to_csv(
        out / name, sep="\t"
    )
    quality = {"space": ["MNI152NLin2009cAsym"], "atlas": ["Spheres"], "strategy": ["simple"]}
    quality |= {"tdof_regressors_mean": [24.0], "tdof_censored_mean": [5.0]}
    quality |= {"tdof_filtered_mean": [0.0], "median_abs_qcfc": [0.35], "tdof_lost_mean": [29.0]}
    pd.DataFrame(quality).to_csv(out / "desc-denoising_qc.tsv", sep="\t", index=False)
    written = []
    [section] = report_pages._quality_sections(out, written)
    captions = [f.caption for f in section.figures]
    assert captions == [
        "QC-FC distribution over edges: atlas Spheres, strategy simple.",
        "QC-FC against distance: atlas Spheres, strategy simple.",
        "QC-FC distribution per strategy: space-MNI152NLin2009cAsym_atlas-Spheres.",
        "Median |QC-FC| against the mean tDOF lost, per strategy: MNI152NLin2009cAsym, Spheres.",
        "Mean temporal degrees of freedom lost per run, by cause.",
    ]
    assert section.tables[0].rows == [
        ["MNI152NLin2009cAsym", "Spheres", "simple", "24", "5", "0", "0.35", "29"]
    ]
    assert "simple" in (out / section.figures[3].src).read_text()  # the point's label
    scatter = ET.fromstring((out / section.figures[1].src).read_bytes())
    assert scatter.tag.endswith("svg")
    for figure in section.figures:
        check_figure(out / figure.src)
    assert sorted(p.name for p in written) == sorted(Path(f.src).name for f in section.figures)
