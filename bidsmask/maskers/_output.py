"""The maskers' output container (``set_output(transform="pandas")``, scikit-learn's API).

``"polars"`` needs the optional ``polars`` package, imported only when that output is chosen.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

OUTPUTS = (None, "default", "pandas", "polars")


def check_output(transform: Any) -> None:
    """Raise unless ``transform`` is an output container the maskers support."""
    if transform not in OUTPUTS:
        raise ValueError(f"'transform' must be one of {list(OUTPUTS)}; {transform!r} was provided.")
    if transform == "polars":
        try:
            import polars  # noqa: F401
        except ImportError as exc:
            raise ImportError(
                "set_output(transform='polars') needs the 'polars' package; install it with "
                "'pip install polars' or use transform='pandas'."
            ) from exc


def to_output(signals: np.ndarray, masker: Any) -> Any:
    """Return ``signals`` in the container chosen by ``masker.set_output``.

    Parameters
    ----------
    signals : numpy.ndarray
        (n_volumes, n_elements), or (n_elements,) for a 3D image.
    masker : fitted masker
        Its ``get_feature_names_out()`` names the columns (region names for labels maskers).

    Returns
    -------
    numpy.ndarray, pandas.DataFrame or polars.DataFrame
        A DataFrame (one row for a 3D image) with ``transform="pandas"`` or ``"polars"``;
        otherwise ``signals``.
    """
    config = getattr(masker, "_sklearn_output_config", None) or {}
    container = config.get("transform")
    if container not in ("pandas", "polars"):
        return signals
    columns = [str(name) for name in masker.get_feature_names_out()]
    if container == "polars":
        import polars

        return polars.from_numpy(np.atleast_2d(signals), schema=columns, orient="row")
    return pd.DataFrame(np.atleast_2d(signals), columns=columns)
