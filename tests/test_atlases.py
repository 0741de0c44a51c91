import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bidsmask.atlases import (
    Atlas,
    freesurfer_names,
    load_atlas,
    load_coordinates,
    parse_atlas_spec,
    read_label_table,
    templateflow_queries,
)
from bidsmask.bids.writer import atlas_table_name, write_atlas

TPL = "MNI152NLin2009cAsym"


def _labels():
    lab = np.zeros((10, 12, 10), np.int16)
    lab[2:5, 2:6, 2:5] = 1
    lab[5:8, 2:6, 2:5] = 2
    lab[2:8, 6:10, 5:8] = 3
    return lab


@pytest.fixture
def tf_home(tmp_path):
    home = tmp_path / "templateflow"
    d = home / f"tpl-{TPL}"
    d.mkdir(parents=True)
    for r in (1, 2):
        nib.save(
            nib.Nifti1Image(_labels(), np.diag([3.0 - r, 3.0 - r, 3.0 - r, 1])),
            d / f"tpl-{TPL}_res-0{r}_atlas-Schaefer2018_desc-100Parcels17Networks_dseg.nii.gz",
        )
    pd.DataFrame(
        {"index": [1, 2, 3], "name": ["17N_LH_A", "17N_LH_B", "17N_RH_A"], "color": ["#1"] * 3}
    ).to_csv(
        d / f"tpl-{TPL}_atlas-Schaefer2018_desc-100Parcels17Networks_dseg.tsv",
        sep="\t",
        index=False,
    )
    maps = np.random.default_rng(0).random((6, 7, 6, 4)).astype(np.float32)
    nib.save(
        nib.Nifti1Image(maps, np.eye(4)),
        d / f"tpl-{TPL}_res-02_atlas-DiFuMo_desc-64dimensions_probseg.nii.gz",
    )
    pd.DataFrame(
        {
            "Component": [1, 2, 3, 4],
            "Difumo_names": ["Cuneus", "Insula", "Insula", "X"],
            "Yeo_networks7": ["Vis"] * 4,
        }
    ).to_csv(d / f"tpl-{TPL}_atlas-DiFuMo_desc-64dimensions_probseg.tsv", sep="\t", index=False)
    nib.save(
        nib.Nifti1Image(_labels(), np.eye(4)),
        d / f"tpl-{TPL}_res-02_atlas-HOSPA_desc-th25_dseg.nii.gz",
    )
    pd.DataFrame(
        {"index": [0, 1, 2, 3], "name": ["Background", "L Thal", "R Thal", "Stem"]}
    ).to_csv(d / f"tpl-{TPL}_atlas-HOSPA_dseg.tsv", sep="\t", index=False)
    # an empty placeholder, as in TemplateFlow's skeleton for files not downloaded
    (d / f"tpl-{TPL}_res-02_atlas-Schaefer2018_desc-400Parcels7Networks_dseg.nii.gz").touch()
    return home


def test_parse_specs(tmp_path):
    assert parse_atlas_spec("Schaefer2018:400Parcels7Networks").source == "templateflow"
    assert parse_atlas_spec("HOSPA:th25").desc == "th25"
    assert parse_atlas_spec("DOSENBACH2010").name == "Dosenbach2010"
    assert parse_atlas_spec("aparcaseg").source == "native"
    f = tmp_path / "tpl-MNI152NLin6Asym_atlas-Mine_desc-v1_dseg.nii.gz"
    nib.save(nib.Nifti1Image(_labels(), np.eye(4)), f)
    spec = parse_atlas_spec(str(f))
    assert (spec.source, spec.name, spec.desc) == ("file", "Mine", "v1")
    with pytest.raises(FileNotFoundError, match="Atlas file not found"):
        parse_atlas_spec(str(tmp_path / "nope.nii.gz"))
    with pytest.raises(ValueError, match="Unknown atlas 'bad name!'"):
        parse_atlas_spec("bad name!")


def test_templateflow_labels_resolution(tf_home):
    spec = "Schaefer2018:100Parcels17Networks"
    atlas = load_atlas(spec, TPL, "2", templateflow_home=tf_home)
    assert atlas.kind == "labels" and atlas.res == "2" and atlas.template == TPL
    assert atlas.image.name.startswith(f"tpl-{TPL}_res-02_")
    assert atlas.region_ids == (1, 2, 3)
    assert atlas.region_names == ("17N_LH_A", "17N_LH_B", "17N_RH_A")
    assert atlas.entities == {"atlas": "Schaefer2018", "seg": "100Parcels17Networks"}
    assert load_atlas(spec, TPL, "1", templateflow_home=tf_home).res == "1"
    assert load_atlas(spec, TPL, None, templateflow_home=tf_home).res == "2"
    # a resolution TemplateFlow lacks falls back to res-2
    assert load_atlas(spec, TPL, "3", templateflow_home=tf_home).res == "2"


def test_templateflow_maps_and_ho(tf_home):
    difumo = load_atlas("DiFuMo:64dimensions", TPL, "2", templateflow_home=tf_home)
    assert difumo.kind == "maps"
    assert difumo.region_ids == (1, 2, 3, 4)
    assert difumo.region_names == ("Cuneus", "Insula", "Insula_2", "X")
    ho = load_atlas("HOSPA:th25", TPL, "2", templateflow_home=tf_home)
    assert ho.kind == "labels" and ho.region_names == ("L Thal", "R Thal", "Stem")
    assert ho.entities == {"atlas": "HOSPA", "seg": "th25"}


def test_templateflow_errors(tf_home, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"empty placeholder.*bidsmask-fetch-templates"):
        load_atlas("Schaefer2018:400Parcels7Networks", TPL, "2", templateflow_home=tf_home)
    with pytest.raises(
        FileNotFoundError,
        match=r"'HOCPA:th25' was not found for template "
        r"'MNI152NLin2009cAsym'.*present there.*'DiFuMo', 'HOSPA', 'Schaefer2018'",
    ):
        load_atlas("HOCPA:th25", TPL, "2", templateflow_home=tf_home)
    with pytest.raises(FileNotFoundError, match="atlas='HOCPA', desc='th25'"):
        load_atlas("HOCPA:th25", "MNI152NLin6Asym", templateflow_home=tf_home)
    with pytest.raises(ValueError, match="exists in template spaces only, not in space 'T1w'"):
        load_atlas("DiFuMo:64dimensions", "T1w", templateflow_home=tf_home)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="missing or empty"):
        load_atlas("DiFuMo:64dimensions", TPL, templateflow_home=tmp_path / "empty")


def test_no_network_and_no_writes(tf_home, monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    before = sorted(p.name for p in tf_home.rglob("*"))
    with pytest.raises(FileNotFoundError):
        load_atlas("Schaefer2018:400Parcels7Networks", TPL, templateflow_home=tf_home)
    load_atlas("DiFuMo:64dimensions", TPL, templateflow_home=tf_home)
    assert sorted(p.name for p in tf_home.rglob("*")) == before


def test_local_file_with_and_without_table(tmp_path):
    f = tmp_path / "myatlas.nii.gz"
    nib.save(nib.Nifti1Image(_labels(), np.eye(4)), f)
    atlas = load_atlas(str(f), "MNI152NLin6Asym")
    assert atlas.kind == "labels" and atlas.region_ids == (1, 2, 3)
    assert atlas.region_names == ("region1", "region2", "region3")
    assert atlas.entities == {"atlas": "myatlas"}
    pd.DataFrame({"index": [1, 2, 3], "name": ["a", "b", "c"]}).to_csv(
        tmp_path / "myatlas.tsv", sep="\t", index=False
    )
    assert load_atlas(str(f), "T1w").region_names == ("a", "b", "c")
    maps = tmp_path / "space-MNI152NLin6Asym_maps.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4, 3), np.float32), np.eye(4)), maps)
    m = load_atlas(str(maps), "MNI152NLin6Asym")
    assert m.kind == "maps" and m.region_names == ("component001", "component002", "component003")
    with pytest.raises(ValueError, match="is in space 'MNI152NLin6Asym'.*not the requested"):
        load_atlas(str(maps), TPL)
    pd.DataFrame({"index": [1, 2], "name": ["a", "b"]}).to_csv(
        tmp_path / "space-MNI152NLin6Asym_maps.tsv", sep="\t", index=False
    )
    with pytest.raises(ValueError, match="has 2 regions but .* has 3 maps"):
        load_atlas(str(maps), "MNI152NLin6Asym")


def test_coordinate_sets():
    power = load_atlas("Power2011", TPL)
    assert power.kind == "spheres" and power.coords.shape == (264, 3)
    np.testing.assert_array_equal(power.coords[0], [-25, -98, -12])
    np.testing.assert_array_equal(power.coords[263], [29, -5, 54])
    assert power.region_names[0] == "roi001" and len(set(power.region_names)) == 264
    dos = load_atlas("Dosenbach2010", "MNI152NLin6Asym")
    assert dos.coords.shape == (160, 3) and len(set(dos.region_names)) == 160
    np.testing.assert_array_equal(dos.coords[0], [6, 64, 3])
    assert dos.region_names[0] == "roi001_vmPFC" and dos.networks[0] == "default"
    assert set(dos.networks) == {
        "default",
        "fronto-parietal",
        "cingulo-opercular",
        "sensorimotor",
        "occipital",
        "cerebellum",
    }
    with pytest.raises(ValueError, match="MNI coordinates and cannot be used in space 'T1w'"):
        load_atlas("Power2011", "T1w")


def test_user_coordinates(tmp_path):
    f = tmp_path / "seeds.csv"
    f.write_text("x,y,z,name\n0,-52,26,PCC\n-44,-60,24,lAG\n")
    coords, names, networks = load_coordinates(f)
    assert names == ("PCC", "lAG") and networks is None
    np.testing.assert_array_equal(coords, [[0, -52, 26], [-44, -60, 24]])
    g = tmp_path / "bare.csv"
    g.write_text("1,2,3\n4,5,6\n")
    atlas = load_atlas(str(g), TPL)
    assert atlas.region_names == ("roi001", "roi002") and atlas.entities == {"atlas": "bare"}
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y,z\na,b,c\n")
    with pytest.raises(ValueError, match="numeric x, y, z"):
        load_coordinates(bad)


def test_native_aparcaseg(tmp_path):
    seg = np.zeros((6, 6, 6), np.int16)
    seg[1, 1, 1], seg[2, 2, 2], seg[3, 3, 3], seg[4, 4, 4] = 17, 1028, 2035, 9999
    f = tmp_path / "sub-01_task-rest_space-T1w_desc-aparcaseg_dseg.nii.gz"
    nib.save(nib.Nifti1Image(seg, np.eye(4)), f)
    atlas = load_atlas("aparcaseg", "T1w", native_dseg=f)
    assert atlas.region_ids == (17, 1028, 2035, 9999)
    assert atlas.region_names == (
        "Left-Hippocampus",
        "ctx-lh-superiorfrontal",
        "ctx-rh-insula",
        "label9999",
    )
    with pytest.raises(ValueError, match="only in space 'T1w'"):
        load_atlas("aseg", TPL, native_dseg=f)
    with pytest.raises(FileNotFoundError, match="desc-aseg_dseg"):
        load_atlas("aseg", "T1w")
    assert freesurfer_names([1000, 2001]) == ("ctx-lh-unknown", "ctx-rh-bankssts")


def test_read_label_table(tmp_path):
    f = tmp_path / "t.tsv"
    f.write_text("index\tname\n0\tBackground\n1\tA\n2\tB\n")
    assert read_label_table(f) == ((1, 2), ("A", "B"))
    f.write_text("onlyone\nA\n")
    with pytest.raises(ValueError, match="needs 'index' and 'name'"):
        read_label_table(f)


def test_templateflow_queries():
    qs = templateflow_queries(
        ["Schaefer2018:400Parcels7Networks", "DiFuMo:64dimensions", "HOSPA:th25", "Power2011"],
        ["MNI152NLin2009cAsym", "MNI152NLin6Asym"],
    )
    keys = {frozenset(q.items()) for q in qs}
    assert len(keys) == len(qs) == 2 * (2 * 2 + 3 * (2 + 1))
    assert {
        "template": "MNI152NLin6Asym",
        "resolution": 2,
        "atlas": "DiFuMo",
        "desc": "64dimensions",
        "suffix": "probseg",
        "extension": ".nii.gz",
    } in qs
    assert {
        "template": TPL,
        "atlas": "Schaefer2018",
        "desc": "400Parcels7Networks",
        "suffix": "dseg",
        "extension": ".tsv",
    } in qs
    assert {
        "template": TPL,
        "resolution": 1,
        "label": "GM",
        "suffix": "probseg",
        "extension": ".nii.gz",
    } in qs
    assert not any(q.get("atlas") == "Power2011" for q in qs)


def test_write_atlas(tf_home, tmp_path):
    out = tmp_path / "out"
    atlas = load_atlas("Schaefer2018:100Parcels17Networks", TPL, "2", templateflow_home=tf_home)
    paths = write_atlas(out, atlas)
    names = sorted(p.name for p in paths)
    assert names == [
        "atlas-Schaefer2018_seg-100Parcels17Networks_description.json",
        "atlas-Schaefer2018_seg-100Parcels17Networks_dseg.tsv",
        f"atlas-Schaefer2018_seg-100Parcels17Networks_space-{TPL}_res-2_dseg.nii.gz",
    ]
    assert atlas_table_name(atlas) == "atlas-Schaefer2018_seg-100Parcels17Networks_dseg.tsv"
    table = pd.read_csv(out / atlas_table_name(atlas), sep="\t")
    assert table.to_dict("list") == {"index": [1, 2, 3], "name": list(atlas.region_names)}
    desc = json.loads((out / names[0]).read_text())
    assert desc["SpatialReference"] == TPL and desc["NumberOfRegions"] == 3
    assert (out / names[2]).read_bytes() == atlas.image.read_bytes()
    mtimes = [p.stat().st_mtime_ns for p in paths]
    write_atlas(out, atlas)
    assert [p.stat().st_mtime_ns for p in paths] == mtimes
    power = load_atlas("Power2011", TPL)
    [tsv, js] = write_atlas(out, power)
    frame = pd.read_csv(tsv, sep="\t")
    assert list(frame.columns) == ["index", "name", "x", "y", "z"] and len(frame) == 264
    assert isinstance(power, Atlas) and tsv.name == "atlas-Power2011_dseg.tsv"


def test_fixture_templateflow_from_environment(request):
    """The shared TemplateFlow fixture, found through TEMPLATEFLOW_HOME (tests/conftest.py)."""
    try:
        request.getfixturevalue("templateflow_home")
    except pytest.FixtureLookupError:
        pytest.skip("conftest fixture templateflow_home not available")
    schaefer = load_atlas("Schaefer2018:100Parcels7Networks", TPL, "2")
    assert schaefer.kind == "labels" and len(schaefer.region_ids) == 100
    assert schaefer.region_names[0].startswith("7Networks_LH_")
    difumo = load_atlas("DiFuMo:64dimensions", TPL)
    assert difumo.kind == "maps" and len(difumo.region_names) == 64 and difumo.res == "2"
    assert nib.load(difumo.image).shape[3] == 64


REAL_ATLASES = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "atlases"


def test_real_difumo_segmented_table():
    """A real DiFuMo (segmented) probseg whose table has Region, Difumo_Component, Difumo_names."""
    path = REAL_ATLASES / f"tpl-{TPL}_res-02_atlas-DiFuMo_desc-64dimensionsSegmented_probseg.nii.gz"
    if not path.is_file():
        pytest.skip(f"Real data not available at {path}.")
    atlas = load_atlas(str(path), TPL)
    table = pd.read_csv(path.with_name(path.name.replace(".nii.gz", ".tsv")), sep="\t")
    assert atlas.kind == "maps" and len(atlas.region_ids) == len(table) == 114
    assert atlas.region_names[:3] == (
        "Superior frontal sulcus",
        "Superior frontal sulcus_2",
        "Fusiform gyrus",
    )
    assert len(set(atlas.region_names)) == 114
    assert atlas.entities == {"atlas": "DiFuMo", "seg": "64dimensionsSegmented"}
    assert atlas.res == "2"
    with pytest.raises(ValueError, match="is in space 'MNI152NLin2009cAsym'"):
        load_atlas(str(path), "MNI152NLin6Asym")


def test_docstring_examples():
    import doctest

    import bidsmask.atlases as module

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0
