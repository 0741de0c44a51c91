"""``--combine-runs``: join the runs of each participant × session × task × space.

After the participant level has processed its runs, the runs that share every source entity but
``run`` (participant, session, task, acquisition …, space, resolution) form a group. For each
group × atlas × strategy, the cleaned time series of the runs that finished that strategy — each
already cleaned and standardised on its own (``--standardize``), with its censored volumes
removed — are read back from their files and concatenated in run order, then the connectivity
matrices are computed from the concatenation. Outputs carry the run's names without the ``run``
entity (:class:`bidsmask.bids.outputs.RunOutputs` with the group's entities)::

    sub-01_task-rest_space-…_atlas-…_stat-mean_desc-simple_timeseries.tsv (+ .json)
    sub-01_task-rest_space-…_atlas-…_meas-PearsonCorrelation_desc-simple_relmat.tsv (+ .json)

Runs skipped for that strategy (too few volumes) or failed are left out and listed, with the
reason, in the sidecars (``RunsLeftOut``). A region ``n/a`` in any joined run (below
``--min-coverage``) is ``n/a`` in the combined series. Only runs that carry a ``run`` entity are
joined (a task with a single, unnumbered run has nothing to join).

A record per group, ``OUTPUT_DIR/logs/combined/<group>.json`` (entities, runs joined and left out
per strategy, files, and each run's parameters), tells the group level
(:mod:`bidsmask.app.denoising`) to use the combined matrices instead of the runs' own; a run redone
since with other options makes the record stale, and the group level then uses the runs. The
combination is redone at every participant-level call with ``--combine-runs`` (it only reads
small tables).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from bidsmask._version import __version__
from bidsmask.app.exitcodes import DataError
from bidsmask.app.progress import DONE, SKIPPED
from bidsmask.app.run import RunJob
from bidsmask.app.run_files import write_relmat, write_table
from bidsmask.bids import naming, writer
from bidsmask.bids.outputs import RunOutputs, sidecar_path

logger = logging.getLogger(__name__)

#: Folder (under OUTPUT_DIR) of the records of combined runs.
COMBINED_DIR = Path("logs") / "combined"


def combined_record_path(output_dir: Path, entities: dict[str, str]) -> Path:
    """Return the record of a group of combined runs (``logs/combined/<group>.json``)."""
    return Path(output_dir) / COMBINED_DIR / f"{naming.run_stem(entities)}.json"


def group_runs(jobs: list[RunJob]) -> dict[tuple, list[RunJob]]:
    """Group the runs that differ only by their ``run`` entity (runs without one are left out).

    Returns
    -------
    dict
        ``(entity, value)`` pairs of the group (without ``run``) -> its runs, in run order.
    """
    groups: dict[tuple, list[RunJob]] = defaultdict(list)
    for job in jobs:
        source = job.source
        if "run" in source:
            groups[tuple((k, v) for k, v in source.items() if k != "run")].append(job)
    return {
        key: sorted(members, key=lambda j: (len(j.source["run"]), j.source["run"]))
        for key, members in groups.items()
    }


def combine_runs(jobs: list[RunJob]) -> list[Path]:
    """Write the combined time series and matrices of every group of runs; return the files.

    Parameters
    ----------
    jobs : list of RunJob
        The participant level's runs (processed already).

    Returns
    -------
    list of Path
        Files written, relative to OUTPUT_DIR, sidecars and records included.

    Raises
    ------
    DataError
        A group could not be combined (its runs' tables are unreadable or disagree); the other
        groups are combined first.
    """
    written: list[Path] = []
    failed = []
    for key, members in sorted(group_runs(jobs).items()):
        try:
            written += _combine_group(dict(key), members)
        except (OSError, ValueError, KeyError) as exc:
            failed.append(f"{naming.run_stem(dict(key))}: {exc}")
            logger.debug("Combining %s failed", key, exc_info=True)
    if failed:
        raise DataError("--combine-runs: cannot combine " + "; ".join(failed))
    return written


def _run_record(job: RunJob) -> dict:
    path = writer.run_marker_path(job.config.output_dir, job.stem)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"Status": "missing", "Reason": f"no completion record ({path.name})"}


def _combine_group(entities: dict[str, str], members: list[RunJob]) -> list[Path]:
    out = members[0].config.output_dir
    plan: RunOutputs = dataclasses.replace(members[0].outputs, source=entities, denoised_bold=False)
    records = {job.stem: _run_record(job) for job in members}
    group_stem = naming.run_stem(entities)
    summary = {
        "Entities": entities,
        "Runs": list(records),
        "RunParameters": {stem: rec.get("Parameters") for stem, rec in records.items()},
        "Strategies": {},
    }
    written: list[Path] = []
    for strategy, _ in plan.strategies:
        joined, left_out = [], {}
        for job in members:
            info = (records[job.stem].get("Strategies") or {}).get(strategy) or {}
            if info.get("Status") == DONE:
                joined.append(job)
            else:
                reason = info.get("Reason") or records[job.stem].get("Reason") or "not processed"
                left_out[job.stem] = reason
        entry = {"Runs": [j.stem for j in joined], "RunsLeftOut": left_out}
        if not joined:
            summary["Strategies"][strategy] = {**entry, "Status": SKIPPED, "Reason": "no run left"}
            logger.info("%s %s: no run to combine (%s).", group_stem, strategy, left_out)
            continue
        files = []
        for i in range(len(plan.atlases)):
            files += _combine_atlas(plan, i, strategy, joined, left_out)
        summary["Strategies"][strategy] = {**entry, "Status": DONE, "Outputs": files}
        written += files
        logger.info(
            "%s %s: %d run(s) combined%s.",
            group_stem,
            strategy,
            len(joined),
            f", {len(left_out)} left out" if left_out else "",
        )
    record = combined_record_path(out, entities)
    writer.write_json(record, summary)
    return [*written, record.relative_to(out)]


def _combine_atlas(
    plan: RunOutputs, atlas: int, strategy: str, joined: list[RunJob], left_out: dict
) -> list[Path]:
    """Concatenate one atlas's time series of the joined runs; write them and their matrices."""
    config = joined[0].config
    out = config.output_dir
    paths = [job.outputs.timeseries(atlas, strategy).path for job in joined]
    frames = [pd.read_csv(out / p, sep="\t", na_values="n/a", dtype=np.float32) for p in paths]
    names = list(frames[0].columns)
    if any(list(f.columns) != names for f in frames):
        raise ValueError(f"Regions differ between the runs {[str(p) for p in paths]}.")
    table = pd.concat(frames, ignore_index=True)
    missing: dict[str, list[str]] = {}
    for job, frame in zip(joined, frames, strict=True):
        for name in frame.columns[frame.isna().all()]:
            missing.setdefault(name, []).append(job.source["run"])
    unavailable = {n: f"n/a in run(s) {', '.join(missing[n])}" for n in names if n in missing}
    table[list(unavailable)] = np.nan
    first = json.loads((out / sidecar_path(paths[0])).read_text(encoding="utf-8"))
    sources = [writer.bids_uri(out / p, out) for p in paths]
    volumes = {job.stem: len(f) for job, f in zip(joined, frames, strict=True)}
    combined = {
        "Description": f"Concatenation of the cleaned time series of {len(joined)} run(s), each "
        f"cleaned and standardised ({config.standardize}) on its own, censored volumes removed.",
        "Runs": [job.source["run"] for job in joined],
        "VolumesPerRun": volumes,
        "VolumesKept": int(sum(volumes.values())),
        "RunsLeftOut": left_out,
        "RegionsNotAvailable": unavailable,
    }
    keep = ("SamplingFrequency", "RepetitionTime", "Strategy", "Atlas", "NodeFiles")
    sidecar = {
        **{k: first[k] for k in keep if k in first},
        **combined,
        "Sources": sources,
        "SoftwareVersion": f"bidsmask {__version__}",
    }
    timeseries = plan.timeseries(atlas, strategy).path
    files = write_table(out, timeseries, table, sidecar)
    runs = {k: combined[k] for k in ("Runs", "VolumesPerRun", "RunsLeftOut")}
    values = table.to_numpy(dtype=np.float64)
    nodes = first.get("NodeFiles", [])
    for option in config.connectivity:
        relmat = plan.relmat(atlas, strategy, option).path
        files += write_relmat(out, relmat, option, values, names, nodes, timeseries, runs)[0]
    return files
