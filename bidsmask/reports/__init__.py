"""Visual QC reports: figures drawn from arrays, and HTML pages — no analysis here.

- figures, each a :class:`Drawing` (an SVG document written by hand, rasters embedded as PNG;
  ``Drawing.to_bytes()`` gives the file): :func:`plot_mask` (a mask's contour over a
  background), :func:`plot_atlas` (regions, those below the minimum coverage in red),
  :func:`plot_fraction` (e.g. the group-mask overlap), :func:`plot_carpet` (a voxel sample
  before and after cleaning, with FD and censored volumes), :func:`plot_matrix` (ordered by
  network, :func:`order_by_network`), :func:`plot_histogram`, :func:`plot_distributions`,
  :func:`plot_scatter`, :func:`plot_stacked_bars`; :func:`carpet_rows` (the voxels a carpet
  plot draws); colour maps are lookup tables of their own (``_colours``), no plotting library;
- pages (jinja2, autoescaping): :class:`Page` of :class:`Section` holding :class:`Table` and
  :class:`Figure`, rendered by :func:`render`; :class:`HTMLReport` is the maskers'
  ``generate_report()`` result.

Used by the app (:mod:`bidsmask.app.reporting`) and by the maskers.
"""

from bidsmask.reports._brains import plot_atlas, plot_fraction, plot_mask, slice_positions, to_ras
from bidsmask.reports._charts import plot_distributions, plot_scatter, plot_stacked_bars
from bidsmask.reports._plots import (
    carpet_rows,
    network_of,
    order_by_network,
    plot_carpet,
    plot_histogram,
    plot_matrix,
)
from bidsmask.reports._svg import Drawing
from bidsmask.reports.pages import Figure, HTMLReport, Page, Section, Table, data_uri, render

__all__ = [
    "Drawing",
    "Figure",
    "HTMLReport",
    "Page",
    "Section",
    "Table",
    "data_uri",
    "carpet_rows",
    "network_of",
    "order_by_network",
    "plot_atlas",
    "plot_carpet",
    "plot_distributions",
    "plot_fraction",
    "plot_histogram",
    "plot_mask",
    "plot_matrix",
    "plot_scatter",
    "plot_stacked_bars",
    "render",
    "slice_positions",
    "to_ras",
]
