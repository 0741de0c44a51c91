"""The app's reports: figures of each run, drawn in the worker from what the run holds, and pages.

Per run (:class:`RunReport`, in the worker that processes the run):

- a voxel sample (at most :data:`SAMPLE_SIZE` voxels of the mask, ordered by the network — or
  region — of the first atlas that has regions) is added to the run's single read as a
  :class:`bidsmask.regions.VoxelSpec`; without an fMRIPrep boldref, so are the voxels of the
  slices shown, whose mean over time is the background; the carpet plot draws, and so
  cleans, at most 600 of the sampled voxels (:func:`bidsmask.reports.carpet_rows`);
- figures (SVG, rasters embedded as PNG), under ``OUTPUT_DIR/sub-<label>/figures/`` named with
  the run's entities: the mask's contour over the boldref, each atlas over it with regions below
  ``--min-coverage`` in red and its coverage histogram, per strategy a carpet plot before/after
  cleaning with FD and censored volumes, per atlas × strategy the connectivity matrix ordered by
  network and the histogram of its values (both from the matrix in memory, as written);
- the figures and per-strategy numbers go into the run's record (``"Report"``), so a page is
  assembled from records and existing figures, also by ``--reports-only`` and after a resumed
  run.

Pages (``OUTPUT_DIR/sub-<label>.html``, ``group.html``): :mod:`bidsmask.app.report_pages`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np
from threadpoolctl import threadpool_limits

from bidsmask import quality, regions, reports, signal
from bidsmask.app import atlas_cache
from bidsmask.app.config import strategy_label
from bidsmask.bids import naming, writer

logger = logging.getLogger(__name__)

#: Voxels sampled for the carpet plots.
SAMPLE_SIZE = 2000
#: Ranks of the sections of a run, in page order.
MASK, ATLAS, STRATEGY, PAIR = range(4)


def one_blas_thread():
    """Return a context in which BLAS runs on one thread (the report's small cleanings).

    Cleaning the carpet plot's sample is a few small products and a QR of the confounds;
    spread over threads on a busy machine they wait far longer than they compute (the
    confounds' QR: 0.4 ms on one thread, 30 ms on two, measured on a busy 2-core machine).
    """
    return threadpool_limits(limits=1, user_api="blas")


def figure_dir(subject: str) -> Path:
    """Return the folder of a participant's figures, relative to OUTPUT_DIR."""
    return Path(f"sub-{subject}") / "figures"


def save_figure(out: Path, rel: Path, fig: reports.Drawing) -> Path:
    """Write a figure atomically under ``out / rel``."""
    content = fig.to_bytes()
    with writer.atomic_path(out / rel) as tmp:
        tmp.write_bytes(content)
    return rel


class RunReport:
    """The figures of one run, drawn in the worker that processes it.

    Use: build it before the run's read, add :attr:`specs` after the other specs given to
    :func:`bidsmask.regions.extract_regions`, give the extraction to :meth:`take` (it removes
    its own signals), call :meth:`strategy` after each strategy's outputs are written and
    :meth:`finish` last; :meth:`finish` returns the record's ``"Report"`` entry.
    """

    #: What the carpet plot's rows are (in its caption).
    sampled = "voxels of the mask"

    def __init__(self, job, bold, mask: np.ndarray, atlases: list, built: list):
        self.job, self.mask, self.atlases, self.built = job, mask, atlases, built
        self.affine, self.shape = bold.affine, tuple(bold.shape[:3])
        self.figures: list[dict] = []
        self.numbers: dict[str, dict] = {}
        self.regions = [
            self._region_image(a, spec, pos) for a, (spec, pos) in zip(atlases, built, strict=True)
        ]
        self.sample, self.groups = self._sample()
        self.specs = [regions.VoxelSpec(self._flat_mask(self.sample))]
        self.background = None
        if job.run.boldref is not None:
            ref = nib.load(job.run.boldref)
            if tuple(ref.shape[:3]) == self.shape and np.allclose(
                ref.affine, self.affine, atol=1e-4
            ):
                self.background = np.asarray(ref.dataobj, dtype=np.float32).reshape(self.shape)
        self.slices = None
        if self.background is None:
            self.slices = self._slice_voxels()
            self.specs.append(regions.VoxelSpec(self._flat_mask(self.slices)))
        self.raw = self.before = None

    # -- preparation -------------------------------------------------------------------------
    def _flat_mask(self, flat: np.ndarray) -> np.ndarray:
        mask = np.zeros(int(np.prod(self.shape)), dtype=bool)
        mask[flat] = True
        return mask.reshape(self.shape)

    def _region_image(self, atlas, spec, positions) -> np.ndarray:
        """Return atlas position + 1 per voxel of the grid (0: no region)."""
        image = np.zeros(int(np.prod(self.shape)), dtype=np.int32)
        if atlas.kind == "spheres":
            membership = spec.membership.tocoo()
            image[spec.voxels[membership.col]] = positions[membership.row] + 1
            return image.reshape(self.shape)
        data = atlas_cache.on_grid(
            atlas.image, atlas.kind, self.shape, self.affine, self.job.atlas_cache
        )
        if atlas.kind == "maps":  # the strongest map of each voxel
            maps = (
                data if isinstance(data, regions.SparseMaps) else regions.SparseMaps.from_maps(data)
            )
            strongest = np.zeros(image.size, dtype=np.float64)
            for k in range(maps.n_maps):  # one pass over the entries; ties go to the last map
                part = slice(maps.indptr[k], maps.indptr[k + 1])
                voxels, values = maps.indices[part], np.abs(maps.values[part])
                wins = values >= strongest[voxels]
                strongest[voxels[wins]] = values[wins]
                image[voxels[wins]] = k + 1
            return image.reshape(self.shape)
        labels = np.asarray(data).astype(np.int64).ravel()
        ids = np.asarray(atlas.region_ids, dtype=np.int64)
        order = np.argsort(ids)
        where = np.clip(np.searchsorted(ids[order], labels), 0, ids.size - 1)
        found = (ids[order][where] == labels) & (labels != 0)
        image[found] = order[where][found] + 1
        return image.reshape(self.shape)

    def _sample(self) -> tuple[np.ndarray, list[tuple[str, int]]]:
        """Pick the carpet's voxels and order them by network (or region) of the first atlas."""
        voxels = np.flatnonzero(self.mask)
        step = max(1, int(np.ceil(voxels.size / SAMPLE_SIZE)))
        voxels = voxels[::step]
        image = next((img for img in self.regions if img.any()), None)
        if image is None:
            return voxels, [("mask", voxels.size)]
        atlas = self.atlases[[i for i, img in enumerate(self.regions) if img is image][0]]
        position = image.ravel()[voxels] - 1
        names = list(atlas.region_names)
        nets = list(atlas.networks) if atlas.networks else [reports.network_of(n) for n in names]
        if not any(nets):
            nets = ["regions"] * len(names)
        first: dict[str, int] = {}
        for net in nets:
            first.setdefault(str(net), len(first))
        labels = np.array([str(nets[p]) if p >= 0 else "outside regions" for p in position])
        rank = np.array([first.get(lab, len(first)) for lab in labels])
        order = np.lexsort((position, rank))
        voxels, labels = voxels[order], labels[order]
        groups = [(str(lab), int((labels == lab).sum())) for lab in dict.fromkeys(labels)]
        return voxels, groups

    def _slice_voxels(self) -> np.ndarray:
        """Flat indices of the voxels of the slices shown (no boldref: their mean is drawn)."""
        index = reports.to_ras(np.arange(int(np.prod(self.shape))).reshape(self.shape), self.affine)
        axial, sag, cor = reports.slice_positions(reports.to_ras(self.mask, self.affine))
        chosen = [index[:, :, axial].ravel(), index[sag].ravel(), index[:, cor].ravel()]
        return np.unique(np.concatenate(chosen))

    def take(self, extraction) -> None:
        """Remove this report's signals (the last ones) from a run's extraction and keep them.

        The atlases' coverage by voxels with data is kept too (for the coverage figures).
        """
        signals = extraction.signals
        self.coverage = extraction.coverage[: len(self.atlases)]
        if self.slices is not None:
            mean = signals.pop().mean(axis=0)
            background = np.zeros(int(np.prod(self.shape)), dtype=np.float32)
            background[self.slices] = mean
            self.background = background.reshape(self.shape)
        raw = signals.pop()
        # the sample spec returns voxels in grid order: put them in the sample's order
        raw = raw[:, np.searchsorted(np.sort(self.sample), self.sample)]
        raw[:, ~np.isfinite(raw).all(axis=0)] = 0  # voxels without data: drawn as flat
        self.keep_drawn(raw)

    def keep_drawn(self, raw: np.ndarray) -> None:
        """Keep the sample's voxels that the carpet plot draws: only those are cleaned.

        Sets :attr:`raw`, :attr:`before` (detrended and standardized) and :attr:`groups` to
        those voxels, and :attr:`n_sampled`.
        """
        self.n_sampled = raw.shape[1]
        rows, self.groups = reports.carpet_rows(self.n_sampled, self.groups)
        self.raw = np.ascontiguousarray(raw[:, rows])
        with one_blas_thread():
            self.before = signal.clean(self.raw, detrend=True, standardize="zscore_sample")

    # -- figures -----------------------------------------------------------------------------
    def _add(self, fig: reports.Drawing, name: tuple, section: tuple, caption: str) -> None:
        """Save a figure named ``(entities, suffix)`` and list it under ``(rank, title)``."""
        job = self.job
        entities, suffix = name
        filename = naming.build_filename({**job.source, **entities}, suffix, f".{fig.suffix}")
        rel = save_figure(job.config.output_dir, figure_dir(job.run.subject) / filename, fig)
        self.figures.append({"Path": rel.as_posix(), "Section": list(section), "Caption": caption})

    def strategy(self, ctx, fd: np.ndarray | None) -> None:
        """Draw a strategy's carpet plot and its matrices (``ctx.matrices``, as written)."""
        job, label = self.job, strategy_label(ctx.strategy)
        with one_blas_thread():
            after = ctx.clean(self.raw)
        fig = reports.plot_carpet(
            self.before, after, ctx.kept, fd, job.run.repetition_time, self.groups
        )
        self._add(
            fig,
            ({"desc": label}, "carpetplot"),
            (STRATEGY, f"Strategy {ctx.strategy}"),
            f"{self.raw.shape[1]} {self.sampled}{self._thinned()}, detrended and standardized, "
            f"before and after cleaning with strategy {ctx.strategy!r}; censored volumes in red.",
        )
        for i, atlas in enumerate(self.atlases):
            for measure, meas in job.outputs.measures[:1]:
                matrix = ctx.matrices[i, measure]
                self._matrix_figures(matrix, atlas, meas, label, ctx.strategy)
        n_regressors = int(ctx.confounds.shape[1])
        self.numbers[ctx.strategy] = {
            "Regressors": n_regressors,
            "TemporalDOFLost": quality.tdof_lost(
                n_regressors,
                self.raw.shape[0] - ctx.kept.size,
                ctx.kept.size,
                job.run.repetition_time,
                job.config.high_pass,
                job.config.low_pass,
            )["total"],
        }

    def _thinned(self) -> str:
        """Say which share of the sample the carpet plot draws, when not all of it."""
        if self.raw.shape[1] == self.n_sampled:
            return ""
        step = -(-self.n_sampled // self.raw.shape[1])
        return f" (one in {step} of the {self.n_sampled} sampled)"

    def _matrix_figures(self, matrix, atlas, meas: str, label: str, strategy: str) -> None:
        ents = {**atlas.entities, "meas": meas, "desc": label}
        networks = list(atlas.networks) if atlas.networks else None
        matrix = np.asarray(matrix, dtype=float)
        fig = reports.plot_matrix(matrix, list(atlas.region_names), networks, meas)
        section = (PAIR, f"{atlas.spec.text} × {strategy}")
        caption = f"{meas} matrix of {atlas.spec.text}, strategy {strategy!r}"
        self._add(fig, (ents, "relmat"), section, f"{caption}, ordered by network.")
        values = matrix[np.triu_indices(len(matrix), 1)]
        fig = reports.plot_histogram(values, meas)
        caption = f"Distribution of its {np.isfinite(values).sum()} off-diagonal values."
        self._add(fig, (ents, "histogram"), section, caption)

    def finish(self) -> dict:
        """Draw the mask and atlas figures; return the run record's ``"Report"`` entry."""
        job = self.job
        background = reports.to_ras(self.background, self.affine)
        mask = reports.to_ras(self.mask, self.affine)
        source = "fMRIPrep's boldref" if self.slices is None else "the mean BOLD"
        caption = (
            f"Contour of the run's mask ({int(self.mask.sum())} voxels, --mask {job.config.mask}) "
            f"over {source}."
        )
        fig = reports.plot_mask(background, mask)
        self._add(fig, ({"desc": "brain"}, "mask"), (MASK, "Mask"), caption)
        threshold = job.config.min_coverage
        for atlas, (_, positions), data_coverage, image in zip(
            self.atlases, self.built, self.coverage, self.regions, strict=True
        ):
            coverage = np.zeros(len(atlas.region_ids))
            known = positions >= 0
            coverage[positions[known]] = np.asarray(data_coverage)[known]
            low = (coverage < threshold) | (coverage == 0)
            fig = reports.plot_atlas(background, reports.to_ras(image, self.affine), low)
            section = (ATLAS, f"Atlas {atlas.spec.text}")
            caption = (
                f"Regions of {atlas.spec.text} over {source}; {int(low.sum())} of {low.size} "
                f"below --min-coverage {threshold:g} in red."
            )
            self._add(fig, (atlas.entities, "coverage"), section, caption)
            fig = reports.plot_histogram(
                coverage, "fraction of the region inside the mask", threshold, value_range=(0, 1)
            )
            ents = {**atlas.entities, "desc": "coverage"}
            caption = f"Coverage of the {coverage.size} regions of {atlas.spec.text}."
            self._add(fig, (ents, "histogram"), section, caption)
        return {"Figures": self.figures, "Strategies": self.numbers}


def has_figures(output_dir: Path, record: dict) -> bool:
    """Tell whether a run record lists its figures and every one is on disk.

    With reports on, a run without them (processed with ``--no-reports``, or figures deleted)
    is redone: its carpet plots need the BOLD.
    """
    figures = (record.get("Report") or {}).get("Figures")
    if figures is None:
        return False
    return all((Path(output_dir) / fig["Path"]).is_file() for fig in figures)
