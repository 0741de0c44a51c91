"""CPUs available to the job and their split between workers (bidsmask.app.resources)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import threadpoolctl

from bidsmask.app import resources


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_quota_smallest_of_the_hierarchy(tmp_path):
    _write(tmp_path / "cpu.max", "max 100000\n")
    _write(tmp_path / "slurm" / "job_1" / "cpu.max", "400000 100000\n")
    _write(tmp_path / "slurm" / "job_1" / "step_0" / "cpu.max", "max 100000\n")
    membership = "0::/slurm/job_1/step_0\n"
    assert resources.cgroup_cpu_limit(tmp_path, membership) == 4.0
    _write(tmp_path / "slurm" / "cpu.max", "250000 100000\n")
    assert resources.cgroup_cpu_limit(tmp_path, membership) == 2.5
    assert resources.cgroup_cpu_limit(tmp_path, "0::/elsewhere\n") is None


def test_cgroup_v1_quota(tmp_path):
    base = tmp_path / "cpu,cpuacct" / "docker" / "abc"
    _write(base / "cpu.cfs_quota_us", "300000\n")
    _write(base / "cpu.cfs_period_us", "100000\n")
    membership = "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n"
    assert resources.cgroup_cpu_limit(tmp_path, membership) == 3.0
    _write(base / "cpu.cfs_quota_us", "-1\n")
    assert resources.cgroup_cpu_limit(tmp_path, membership) is None


def test_available_cpus_respects_affinity_quota_and_slurm(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
    monkeypatch.setattr(resources, "cgroup_cpu_limit", lambda root: None)
    assert resources.available_cpus({}) == (16, "affinity 16")
    assert resources.available_cpus({"SLURM_CPUS_PER_TASK": "4"})[0] == 4
    monkeypatch.setattr(resources, "cgroup_cpu_limit", lambda root: 2.5)
    cpus, source = resources.available_cpus({"SLURM_CPUS_PER_TASK": "4"})
    assert cpus == 3 and source == "affinity 16, cgroup quota 3, SLURM_CPUS_PER_TASK 4"
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {5})
    assert resources.available_cpus({})[0] == 1


@pytest.mark.parametrize(
    ("cpus", "nprocs", "n_jobs", "omp", "expected"),
    [
        (16, 4, 32, None, (4, 4)),
        (16, 16, 32, None, (16, 1)),
        (16, 8, 3, None, (3, 5)),  # only 3 runs: 3 workers share the 16 CPUs
        (2, 4, 8, None, (4, 1)),
        (16, 1, 8, None, (1, 16)),
        (16, 4, 32, 2, (4, 2)),
    ],
)
def test_split_cpus(monkeypatch, cpus, nprocs, n_jobs, omp, expected):
    monkeypatch.setattr(resources, "available_cpus", lambda: (cpus, f"affinity {cpus}"))
    split = resources.split_cpus(nprocs, n_jobs, omp)
    assert (split.workers, split.threads) == expected
    line = split.describe()
    assert line.startswith(f"{cpus} CPU(s) available (affinity {cpus}")
    assert line.endswith(f"{expected[0]} worker process(es) × {expected[1]} BLAS/OpenMP thread(s)")
    assert ("--omp-nthreads" in line) == (omp is not None)


def _blas_threads(info: list[dict]) -> set[int]:
    return {pool["num_threads"] for pool in info if pool["user_api"] in ("blas", "openmp")}


def test_workers_report_their_thread_limit():
    split = resources.CpuSplit(cpus=4, workers=2, threads=3)
    before = os.environ.get("OPENBLAS_NUM_THREADS")
    with resources.worker_pool(split) as pool:
        infos = [pool.submit(threadpoolctl.threadpool_info) for _ in range(4)]
        variables = [pool.submit(os.getenv, "OPENBLAS_NUM_THREADS") for _ in range(2)]
        infos = [future.result() for future in infos]
        variables = [future.result() for future in variables]
    assert all(info and _blas_threads(info) == {3} for info in infos)
    assert variables == ["3", "3"]
    assert os.environ.get("OPENBLAS_NUM_THREADS") == before  # the parent's environment restored


def test_limit_threads_in_this_process():
    with resources.limit_threads(1):
        assert _blas_threads(threadpoolctl.threadpool_info()) == {1}
