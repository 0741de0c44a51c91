"""``bidsmask-demo``: the README's first command, offline, in a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd

from bidsmask.app import demo


def test_demo_runs_offline_end_to_end(tmp_path, capfd):
    out = tmp_path / "bidsmask-demo-output"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPLATEFLOW")}
    # Any network access would fail at once: proxies point at a closed local port.
    env.update(
        http_proxy="http://127.0.0.1:9",
        https_proxy="http://127.0.0.1:9",
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        HOME=str(tmp_path / "home"),
    )
    result = subprocess.run(
        [sys.executable, "-m", "bidsmask.app.demo", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done. Outputs (BIDS-Derivatives) are in" in result.stdout
    assert "9 done, 0 already complete, 0 skipped, 0 failed" in result.stderr
    outputs = out / "bidsmask"
    qc = pd.read_csv(outputs / "qc.tsv", sep="\t")
    assert len(qc) == 9 * 2 and set(qc["status"]) == {"done"}
    assert len(list(outputs.glob("sub-*/**/func/*_timeseries.tsv"))) == 9 * 2 * 2
    assert (outputs / "space-MNI152NLin2009cAsym_res-2_desc-group_mask.nii.gz").is_file()
    assert not (tmp_path / "home").exists()  # nothing cached in the user's home

    # A second run reuses the data and finds every run complete (in-process: faster).
    assert demo.main([str(out)]) == 0
    assert "0 done, 9 already complete" in capfd.readouterr().err


def test_demo_refuses_a_folder_that_is_not_a_demo(tmp_path, capsys):
    clash = tmp_path / "not-a-demo"
    clash.mkdir()
    (clash / "thesis.tex").write_text("keep me")
    assert demo.main([str(clash)]) == 73
    assert "is not an earlier demo folder" in capsys.readouterr().err
    assert [p.name for p in clash.iterdir()] == ["thesis.tex"]
