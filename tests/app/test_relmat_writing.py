"""Connectivity matrices are written at float32 precision (bidsmask.app.run_files.write_relmat)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.testing import assert_allclose, assert_array_equal

from bidsmask.app.run_files import write_relmat


def test_relmat_is_written_at_float32_precision(tmp_path):
    rng = np.random.default_rng(3)
    values = rng.normal(size=(40, 5))
    values[:, 4] = np.nan  # a region without signal: its row and column are n/a
    names = [f"r{i}" for i in range(5)]
    rel = Path("m_relmat.tsv")
    files, matrix = write_relmat(
        tmp_path, rel, "correlation", values, names, ["atlas.tsv"], rel.with_name("t.tsv")
    )
    assert [str(f) for f in files] == ["m_relmat.tsv", "m_relmat.json"]
    text = (tmp_path / rel).read_text().splitlines()
    assert text[0] == "node\t" + "\t".join(names)
    assert text[1].split("\t")[0] == "r0" and text[1].split("\t")[5] == "n/a"
    back = pd.read_csv(tmp_path / rel, sep="\t", index_col=0, na_values="n/a")
    assert list(back.index) == names and list(back.columns) == names
    # the text holds the float32 value of each entry exactly, and nothing more
    assert_array_equal(back.to_numpy().astype(np.float32), matrix.astype(np.float32))
    assert max(len(v) for line in text[1:] for v in line.split("\t")[1:]) <= 15
    expected = np.corrcoef(values[:, :4], rowvar=False)
    assert_allclose(back.to_numpy()[:4, :4], expected, rtol=0, atol=1e-7)
    assert np.isnan(back.to_numpy()[4]).all() and np.isnan(back.to_numpy()[:, 4]).all()
    sidecar = json.loads((tmp_path / "m_relmat.json").read_text())
    assert sidecar["NodeFiles"] == ["atlas.tsv"]
