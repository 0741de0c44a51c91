"""matplotlib, imported only when a figure is drawn: Agg backend, a writable config folder.

``import bidsmask`` never imports matplotlib; the first figure does, through :func:`figure`.
Figures are built with :class:`matplotlib.figure.Figure` directly (no ``pyplot`` state), so
drawing is safe in worker processes and threads.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

_RC = {
    "font.size": 8,
    "svg.fonttype": "none",  # text stays text: smaller SVGs
    "svg.hashsalt": "bidsmask",  # stable ids: the same figure gives the same bytes
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _config_dir_writable() -> bool:
    """Tell whether matplotlib's default config folder can be created and written."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    folder = Path(base) / "matplotlib"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def matplotlib():
    """Return the matplotlib module, set up for files only (Agg) in a writable config folder.

    When neither ``MPLCONFIGDIR`` is set nor the default config folder is writable (a read-only
    container), ``MPLCONFIGDIR`` is pointed at a new temporary folder before the import, so
    matplotlib neither warns nor fails.
    """
    if "MPLCONFIGDIR" not in os.environ and not _config_dir_writable():
        os.environ["MPLCONFIGDIR"] = tempfile.mkdtemp(prefix="bidsmask-matplotlib-")
    import matplotlib as mpl

    mpl.use("Agg")
    return mpl


def figure(width: float, height: float):
    """Return a new :class:`matplotlib.figure.Figure` of ``width`` × ``height`` inches."""
    mpl = matplotlib()
    from matplotlib.figure import Figure

    with mpl.rc_context(_RC):
        return Figure(figsize=(width, height), layout="constrained")


def rc_context():
    """Return the context of the report's style (wrap the drawing calls in it)."""
    return matplotlib().rc_context(_RC)


def to_bytes(fig, fmt: str, dpi: int = 100) -> bytes:
    """Render a figure as ``svg`` or ``png`` bytes (no date or software metadata in SVGs)."""
    buffer = io.BytesIO()
    metadata = {"Date": None, "Creator": None} if fmt == "svg" else {"Software": None}
    with rc_context():
        fig.savefig(buffer, format=fmt, dpi=dpi, metadata=metadata, facecolor="white")
    return buffer.getvalue()
