import socket

import nibabel as nib
import numpy as np
import pytest

from bidsmask.bids import templateflow as tf

TPL = "MNI152NLin6Asym"


@pytest.fixture
def home(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    folder = tmp_path / "tf" / f"tpl-{TPL}"
    folder.mkdir(parents=True)
    for res in (1, 2):
        nib.save(
            nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4) * res),
            folder / f"tpl-{TPL}_res-0{res}_label-GM_probseg.nii.gz",
        )
    (folder / f"tpl-{TPL}_res-02_desc-brain_mask.nii.gz").touch()  # skeleton placeholder
    return tmp_path / "tf"


def test_find_file_prefers_resolution(home):
    gm = {"label": "GM", "suffix": "probseg", "extension": ".nii.gz"}
    assert (
        tf.find_file(TPL, "1", home=home, **gm).name == f"tpl-{TPL}_res-01_label-GM_probseg.nii.gz"
    )
    assert tf.find_file(TPL, None, home=home, **gm).name.startswith(f"tpl-{TPL}_res-02_")
    assert tf.find_file(TPL, "3", home=home, **gm).name.startswith(f"tpl-{TPL}_res-02_")


def test_placeholders_and_missing(home, tmp_path, monkeypatch):
    mask = {"desc": "brain", "suffix": "mask", "extension": ".nii.gz"}
    [placeholder] = tf.list_files(TPL, home=home, **mask)
    assert tf.is_placeholder(placeholder)
    with pytest.raises(FileNotFoundError, match=r"t.get\('MNI152NLin6Asym', desc='brain'"):
        tf.find_file(TPL, "2", home=home, **mask)
    assert placeholder.stat().st_size == 0  # nothing was downloaded
    with pytest.raises(FileNotFoundError, match="missing or empty"):
        tf.find_file(TPL, home=tmp_path / "nowhere", label="GM")
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(home))
    assert tf.templateflow_home() == home


def test_pick_resolution_errors():
    with pytest.raises(ValueError, match="'files' is empty"):
        tf.pick_resolution([], "2")


def test_docstring_examples():
    import doctest

    result = doctest.testmod(tf, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
