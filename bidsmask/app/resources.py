"""How many CPUs the job may use, and how they are divided between worker processes.

:func:`available_cpus` counts the CPUs this process may really use — its affinity
(``os.sched_getaffinity``: ``taskset``, SLURM's binding), the cgroup CPU quota (``cpu.max``, or
``cpu.cfs_quota_us`` under cgroup v1: ``docker --cpus``, Kubernetes limits, SLURM) and SLURM's
``SLURM_CPUS_PER_TASK`` — not the machine's core count. :func:`split_cpus` gives each of the
``--nprocs`` workers ``max(1, cpus // workers)`` BLAS/OpenMP threads (``--omp-nthreads``
overrides), so N workers never run N × cores threads. :func:`worker_pool` starts the workers with
that limit in their environment (read when numpy loads its BLAS) and again through threadpoolctl;
:func:`limit_threads` applies it in the current process.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

#: Environment variables that BLAS and OpenMP runtimes read when they load.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def cgroup_cpu_limit(
    root: Path = Path("/sys/fs/cgroup"), membership: str | None = None
) -> float | None:
    r"""Return the CPU quota of this process's cgroup (CPUs, fractional), or None when unlimited.

    Parameters
    ----------
    root : pathlib.Path, default=/sys/fs/cgroup
        Where the cgroup file system is mounted.
    membership : str or None, default=None
        Content of ``/proc/self/cgroup`` (read when None). The quota of the process's cgroup and
        of each parent counts; the smallest wins.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> _ = (root / "cpu.max").write_text("150000 100000\\n")
    >>> cgroup_cpu_limit(root, "0::/\\n")
    1.5
    """
    if membership is None:
        try:
            membership = Path("/proc/self/cgroup").read_text()
        except OSError:
            membership = ""
    limits = []
    for line in membership.splitlines():
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "":  # cgroup v2: "0::/path"
            names, base = ("cpu.max",), root
        elif "cpu" in controllers.split(","):  # cgroup v1: "4:cpu,cpuacct:/path"
            names, base = ("cpu.cfs_quota_us", "cpu.cfs_period_us"), root / controllers
            if not base.is_dir():
                base = root / "cpu"
        else:
            continue
        folder = base / path.strip("/")
        while True:
            limit = _quota(folder, names)
            if limit is not None:
                limits.append(limit)
            if folder == base or base not in folder.parents:
                break
            folder = folder.parent
    return min(limits) if limits else None


def _quota(folder: Path, names: tuple[str, ...]) -> float | None:
    try:
        values = [(folder / name).read_text().split() for name in names]
    except OSError:
        return None
    if len(names) == 1:  # "max 100000" or "200000 100000"
        quota, period = (values[0] + ["100000"])[:2]
    else:
        quota, period = values[0][0], values[1][0]
    if quota == "max" or int(quota) <= 0 or int(period) <= 0:
        return None
    return int(quota) / int(period)


def available_cpus(
    environ: Mapping[str, str] | None = None, cgroup_root: Path = Path("/sys/fs/cgroup")
) -> tuple[int, str]:
    """Return the number of CPUs this process may use, and what limited it (for the log).

    The smallest of the affinity mask, the cgroup quota (rounded up) and
    ``SLURM_CPUS_PER_TASK``; at least 1.
    """
    environ = os.environ if environ is None else environ
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        affinity = os.cpu_count() or 1
    counts = {"affinity": affinity}
    quota = cgroup_cpu_limit(cgroup_root)
    if quota is not None:
        counts["cgroup quota"] = max(1, math.ceil(quota))
    slurm = environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        counts["SLURM_CPUS_PER_TASK"] = int(slurm)
    cpus = max(1, min(counts.values()))
    return cpus, ", ".join(f"{name} {n}" for name, n in counts.items())


@dataclass(frozen=True)
class CpuSplit:
    """CPUs available, worker processes, and BLAS/OpenMP threads per worker."""

    cpus: int
    workers: int
    threads: int
    source: str = ""

    def describe(self) -> str:
        """One line for the run log."""
        why = f" ({self.source})" if self.source else ""
        return (
            f"{self.cpus} CPU(s) available{why}: {self.workers} worker process(es) × "
            f"{self.threads} BLAS/OpenMP thread(s)"
        )


def split_cpus(nprocs: int, n_jobs: int, omp_nthreads: int | None = None) -> CpuSplit:
    """Divide the available CPUs between ``min(nprocs, n_jobs)`` workers.

    Each worker gets ``max(1, cpus // workers)`` threads, or ``omp_nthreads`` when given.
    """
    cpus, source = available_cpus()
    workers = max(1, min(nprocs, n_jobs))
    threads = omp_nthreads if omp_nthreads else max(1, cpus // workers)
    if omp_nthreads:
        source = f"{source}; --omp-nthreads {omp_nthreads}"
    return CpuSplit(cpus, workers, threads, source)


def limit_threads(threads: int):
    """Limit this process's BLAS and OpenMP thread pools (a threadpoolctl controller).

    Use as a context manager, or keep the returned object alive for a permanent limit.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads)


_worker_limit = None  # a worker's threadpoolctl controller, kept for the worker's life


def _init_worker(threads: int, initializer: Callable | None, initargs: tuple) -> None:
    """Worker start: limit the thread pools, then run the caller's initializer.

    Libraries loaded later read the environment set by :func:`worker_pool`; threadpoolctl
    limits those loaded now, so numpy's and scipy's BLAS are loaded first.
    """
    global _worker_limit
    import numpy  # noqa: F401
    import scipy.linalg  # noqa: F401

    _worker_limit = limit_threads(threads)
    if initializer is not None:
        initializer(*initargs)


@contextmanager
def worker_pool(
    split: CpuSplit, initializer: Callable | None = None, initargs: tuple = ()
) -> Iterator[ProcessPoolExecutor]:
    """Yield a ``spawn`` pool of ``split.workers`` workers, each limited to ``split.threads``.

    The thread variables are set in this process's environment while the pool starts workers
    (they inherit it and their BLAS reads it as it loads), then restored.
    """
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update({name: str(split.threads) for name in THREAD_VARIABLES})
    try:
        with ProcessPoolExecutor(
            max_workers=split.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(split.threads, initializer, initargs),
        ) as pool:
            yield pool
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
