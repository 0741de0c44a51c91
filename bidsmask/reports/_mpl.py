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


def _user_dirs_ready() -> bool:
    """Tell whether matplotlib's default config and cache folders exist and are writable.

    They are never created here: bidsmask leaves nothing in a home folder it did not find set up.
    """
    home = os.path.expanduser("~")
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    folders = [Path(config) / "matplotlib", Path(cache) / "matplotlib"]
    return all(f.is_dir() and os.access(f, os.W_OK) for f in folders)


def _private_config_dir() -> str:
    """Return a folder of this user's in the temporary folder (kept: the font cache is reused)."""
    folder = Path(tempfile.gettempdir()) / f"bidsmask-matplotlib-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        if folder.stat().st_uid == os.getuid() and os.access(folder, os.W_OK):
            return str(folder)
    except OSError:
        pass
    return tempfile.mkdtemp(prefix="bidsmask-matplotlib-")


def matplotlib():
    """Return the matplotlib module, set up for files only (Agg) in a writable config folder.

    Unless ``MPLCONFIGDIR`` is set or matplotlib's own folders are already there and writable,
    ``MPLCONFIGDIR`` is pointed, before the import, at a private folder in the temporary folder:
    a read-only container or a home folder that must stay untouched works, without warnings.
    """
    if "MPLCONFIGDIR" not in os.environ and not _user_dirs_ready():
        os.environ["MPLCONFIGDIR"] = _private_config_dir()
    import matplotlib as mpl

    mpl.use("Agg")
    return mpl


def figure(
    width: float, height: float, margins: tuple | None = (0.6, 0.45, 0.15, 0.3), layout=None
):
    """Return a new :class:`matplotlib.figure.Figure` of ``width`` × ``height`` inches.

    ``margins`` (left, bottom, right, top, in inches) place the subplots; fixed margins are
    several times cheaper to save than a constrained layout.
    """
    mpl = matplotlib()
    from matplotlib.figure import Figure

    with mpl.rc_context(_RC):
        fig = Figure(figsize=(width, height), layout=layout)
    if margins is not None and layout is None:
        left, bottom, right, top = margins
        fig.subplots_adjust(
            left=left / width, bottom=bottom / height, right=1 - right / width, top=1 - top / height
        )
    return fig


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
