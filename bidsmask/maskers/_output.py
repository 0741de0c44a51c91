"""The maskers' output container (``set_output(transform="pandas")``, scikit-learn's API)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

OUTPUTS = (None, "default", "pandas")


def check_output(transform: Any) -> None:
    """Raise unless ``transform`` is an output container the maskers support."""
    if transform not in OUTPUTS:
        raise ValueError(
            f"'transform' must be one of {list(OUTPUTS)} ('polars' is not supported); "
            f"{transform!r} was provided."
        )


def to_output(signals: np.ndarray, masker: Any) -> np.ndarray | pd.DataFrame:
    """Return ``signals`` in the container chosen by ``masker.set_output``.

    Parameters
    ----------
    signals : numpy.ndarray
        (n_volumes, n_elements), or (n_elements,) for a 3D image.
    masker : fitted masker
        Its ``get_feature_names_out()`` names the columns (region names for labels maskers).

    Returns
    -------
    numpy.ndarray or pandas.DataFrame
        A DataFrame (one row for a 3D image) with ``transform="pandas"``; otherwise ``signals``.
    """
    config = getattr(masker, "_sklearn_output_config", None) or {}
    if config.get("transform") != "pandas":
        return signals
    return pd.DataFrame(np.atleast_2d(signals), columns=list(masker.get_feature_names_out()))
