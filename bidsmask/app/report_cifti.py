"""The figures of a grayordinate (fsLR) run: carpet plot by structure group, matrices, coverage.

As :class:`bidsmask.app.reporting.RunReport` (same sections, names and record entry), for a
CIFTI dense time series: the carpet plot's rows are a sample of the grayordinates grouped as left
cortex, right cortex and subcortex, taken from the run's single read (a
:class:`bidsmask.regions.GrayordinateSpec` of one-grayordinate parcels); there is no mask
figure, and each atlas gets the histogram of its parcels' coverage.
"""

from __future__ import annotations

import numpy as np

from bidsmask import reports
from bidsmask.app.reporting import ATLAS, SAMPLE_SIZE, RunReport
from bidsmask.regions import GrayordinateSpec

_GROUPS = (
    ("left cortex", "CIFTI_STRUCTURE_CORTEX_LEFT"),
    ("right cortex", "CIFTI_STRUCTURE_CORTEX_RIGHT"),
)


class GrayordinateReport(RunReport):
    """Figures of one grayordinate run (see the module docstring).

    Use: build it with the run's brain models, add :attr:`specs` after the atlases' specs in
    the run's read, give the read's signals to :meth:`take` (it removes its own), then
    :meth:`strategy` per strategy and :meth:`finish`, as for volumes.
    """

    sampled = "grayordinates (left cortex, right cortex, subcortex)"

    def __init__(self, job, axis, atlases: list):
        self.job, self.atlases = job, atlases
        self.figures: list[dict] = []
        self.numbers: dict[str, dict] = {}
        names = np.asarray(axis.name)
        groups = [(label, names == name) for label, name in _GROUPS]
        groups.append(("subcortex", ~(groups[0][1] | groups[1][1])))
        step = max(1, int(np.ceil(len(axis) / SAMPLE_SIZE)))
        picked = [np.flatnonzero(member)[::step] for _, member in groups]
        self.groups = [
            (label, p.size) for (label, _), p in zip(groups, picked, strict=True) if p.size
        ]
        sample = np.concatenate(picked)
        labels = np.zeros(len(axis), dtype=np.int64)
        labels[sample] = np.arange(1, sample.size + 1)  # one-grayordinate parcels, in order
        self.specs = [GrayordinateSpec(labels)]
        self.raw = self.before = None

    def take(self, signals: list, coverages: list) -> None:
        """Remove this report's signals (the last) from the run's list; keep the coverages."""
        self.keep_drawn(signals.pop())
        self.coverage = coverages

    def finish(self) -> dict:
        """Draw each atlas's coverage histogram; return the run record's ``"Report"`` entry."""
        threshold = self.job.config.min_coverage
        for atlas, coverage in zip(self.atlases, self.coverage, strict=True):
            fig = reports.plot_histogram(
                coverage,
                "fraction of the parcel's grayordinates with data",
                threshold,
                value_range=(0, 1),
            )
            low = int(np.sum((coverage < threshold) | (coverage == 0)))
            caption = (
                f"Coverage of the {coverage.size} parcels of {atlas.spec.text}; {low} below "
                f"--min-coverage {threshold:g}."
            )
            section = (ATLAS, f"Atlas {atlas.spec.text}")
            self._add(fig, ({**atlas.entities, "desc": "coverage"}, "histogram"), section, caption)
        return {"Figures": self.figures, "Strategies": self.numbers}
