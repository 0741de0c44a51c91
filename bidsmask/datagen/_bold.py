"""Synthetic BOLD runs: shared time courses, then images rendered on any grid.

A run is first drawn as a few time courses (:class:`RunTimecourses`): seven band-limited
network signals (with a block design added for task runs), a physiological signal,
a slow drift, head motion with a few sudden jerks ("spikes") and the number of
non-steady-state volumes. :func:`render_bold` then turns them into a 4D float32 image on
an :class:`~._anatomy.Anatomy`, so the same run can be written in MNI and in T1w space.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import factorial

import numpy as np

from bidsmask.datagen._anatomy import Anatomy
from bidsmask.datagen._parcels import NETWORK_NAMES, network_maps

MIN_VOLUMES = 30
SPIKE_SPACING = 10
SPIKE_INTENSITY = 0.05
NON_STEADY_GAIN = 0.6
TASK_NETWORKS = ("Vis", "DorsAttn", "Cont")


@dataclass(frozen=True)
class RunTimecourses:
    """Time courses shared by every rendering of one run.

    Attributes
    ----------
    t_r : float
        Repetition time (s).
    networks : numpy.ndarray
        (T, 7) unit-variance network signals, in the order of ``NETWORK_NAMES``.
    physio : numpy.ndarray
        (T,) unit-variance physiological signal (mostly in CSF).
    drift : numpy.ndarray
        (T,) slow drift, as a fraction of the baseline intensity.
    motion : numpy.ndarray
        (T, 6) ``trans_x, trans_y, trans_z`` (mm) and ``rot_x, rot_y, rot_z`` (rad).
    spikes : tuple of int
        Volumes where the head jerks: motion steps and the whole head is
        ``SPIKE_INTENSITY`` brighter for that volume only.
    n_non_steady : int
        Leading volumes not yet at steady state (brighter).
    """

    t_r: float
    networks: np.ndarray
    physio: np.ndarray
    drift: np.ndarray
    motion: np.ndarray
    spikes: tuple[int, ...]
    n_non_steady: int

    @property
    def n_volumes(self) -> int:
        """Number of volumes of the run."""
        return self.networks.shape[0]


def _band_limited(rng, n_volumes, t_r, low, high, n_signals=1) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal((n_volumes, n_signals)), axis=0)
    freqs = np.fft.rfftfreq(n_volumes, d=t_r)
    spectrum[(freqs < low) | (freqs > high)] = 0
    out = np.fft.irfft(spectrum, n=n_volumes, axis=0)
    out -= out.mean(axis=0)
    return out / out.std(axis=0)


def _block_design(n_volumes, t_r, block_s=30.0) -> np.ndarray:
    times = np.arange(n_volumes) * t_r
    boxcar = ((times // block_s) % 2 == 1).astype(float)
    hrf_t = np.arange(0, 30, t_r)
    # Canonical double-gamma HRF (peak ~5 s, undershoot ~15 s).
    hrf = np.exp(-hrf_t) * (hrf_t**5 / factorial(5) - hrf_t**15 / (6 * factorial(15)))
    response = np.convolve(boxcar, hrf)[:n_volumes]
    return (response - response.mean()) / response.std()


def _spike_volumes(rng, n_volumes, n_non_steady, n_spikes) -> tuple[int, ...]:
    first = max(8, n_non_steady + 7)
    last = n_volumes - 9
    room = (last - first) // SPIKE_SPACING + 1
    count = min(int(rng.integers(2, 5)), room) if n_spikes is None else int(n_spikes)
    if not 0 <= count <= room:
        raise ValueError(
            f"n_spikes={count} does not fit in {n_volumes} volumes (at most {room} spikes "
            f"{SPIKE_SPACING} volumes apart): lower n_spikes or raise n_volumes."
        )
    slack = last - first - SPIKE_SPACING * (count - 1)
    offsets = np.sort(rng.integers(0, slack + 1, size=count))
    return tuple(int(first + o + SPIKE_SPACING * i) for i, o in enumerate(offsets))


def _motion(rng, n_volumes, spikes, scale=1.0) -> np.ndarray:
    steps = np.concatenate(
        [rng.normal(0, 0.012, (n_volumes, 3)), rng.normal(0, 1.5e-4, (n_volumes, 3))], axis=1
    )
    steps[0] = 0
    for s in spikes:
        direction = rng.standard_normal(3)
        steps[s, :3] += rng.uniform(0.6, 1.0) * direction / np.linalg.norm(direction)
        steps[s, 3:] += rng.choice([-1, 1], 3) * 2e-3
    motion = np.cumsum(steps, axis=0)
    motion[:, 2] += np.linspace(0, rng.uniform(-0.3, 0.3), n_volumes)
    return motion * scale


def check_run_parameters(n_volumes: int, t_r: float, n_non_steady: int) -> None:
    """Raise ValueError when run parameters are out of the supported range."""
    if n_volumes < MIN_VOLUMES:
        raise ValueError(f"n_volumes must be at least {MIN_VOLUMES}, got {n_volumes}.")
    if t_r <= 0:
        raise ValueError(f"t_r must be positive (seconds), got {t_r}.")
    if not 0 <= n_non_steady <= 3:
        raise ValueError(f"n_non_steady must be between 0 and 3, got {n_non_steady}.")


def simulate_timecourses(
    n_volumes: int,
    t_r: float,
    rng: np.random.Generator,
    *,
    task: bool = False,
    n_non_steady: int = 1,
    n_spikes: int | None = None,
    motion_scale: float = 1.0,
) -> RunTimecourses:
    """Draw the time courses of one run.

    Parameters
    ----------
    n_volumes : int
        Number of volumes (at least 30).
    t_r : float
        Repetition time (s).
    rng : numpy.random.Generator
        Source of randomness.
    task : bool, default=False
        Add a 30 s on / 30 s off block design to the visual, dorsal-attention and control
        networks (and its opposite to the default network).
    n_non_steady : int, default=1
        Leading non-steady-state volumes.
    n_spikes : int or None, default=None
        Number of motion spikes; None draws 2 to 4 (fewer if the run is too short).
    motion_scale : float, default=1.0
        Factor applied to the whole head motion (drift and jerks).

    Returns
    -------
    RunTimecourses
    """
    check_run_parameters(n_volumes, t_r, n_non_steady)
    networks = _band_limited(rng, n_volumes, t_r, 0.01, 0.1, len(NETWORK_NAMES))
    if task:
        design = _block_design(n_volumes, t_r)
        for name in TASK_NETWORKS:
            n = NETWORK_NAMES.index(name)
            networks[:, n] = 0.6 * networks[:, n] + 0.8 * design
        n = NETWORK_NAMES.index("Default")
        networks[:, n] = 0.8 * networks[:, n] - 0.6 * design
    physio = _band_limited(rng, n_volumes, t_r, 0.08, 0.5 / t_r)[:, 0]
    time = np.linspace(-0.5, 0.5, n_volumes)
    drift = rng.uniform(-0.02, 0.02) * time + rng.uniform(-0.01, 0.01) * np.cos(np.pi * time)
    spikes = _spike_volumes(rng, n_volumes, n_non_steady, n_spikes)
    return RunTimecourses(
        t_r=float(t_r),
        networks=networks,
        physio=physio,
        drift=drift,
        motion=_motion(rng, n_volumes, spikes, motion_scale),
        spikes=spikes,
        n_non_steady=int(n_non_steady),
    )


def baseline_intensity(anat: Anatomy) -> np.ndarray:
    """Mean BOLD intensity of every voxel: CSF > GM > WM inside the brain, 300 in the scalp."""
    base = 900.0 * anat.gm + 700.0 * anat.wm + 1400.0 * anat.csf
    bias = 1.0 + 0.1 * anat.mni_xyz[..., 0] / 100.0
    return np.where(anat.brain, base * bias, np.where(anat.head, 300.0, 0.0)).astype(np.float32)


def render_bold(anat: Anatomy, run: RunTimecourses, rng: np.random.Generator) -> np.ndarray:
    """Render a run on a grid as a float32 (X, Y, Z, T) array, zero outside the head.

    Every head voxel is ``baseline * (1 + networks + physio + drift + motion artefact)``
    plus Gaussian noise (1.2 % of baseline); non-steady-state volumes are
    ``1 + 0.6 * 0.5**i`` times brighter and spike volumes ``1 + SPIKE_INTENSITY``.

    Parameters
    ----------
    anat : Anatomy
        The grid and its anatomy.
    run : RunTimecourses
        The run's time courses.
    rng : numpy.random.Generator
        Source of the noise.

    Returns
    -------
    numpy.ndarray
    """
    head = np.flatnonzero(anat.head)
    base = baseline_intensity(anat).ravel()[head].astype(np.float64)
    gm = anat.gm.ravel()[head]
    csf = anat.csf.ravel()[head]
    loadings = network_maps(anat).reshape(-1, len(NETWORK_NAMES))[head]
    weights = 0.015 * loadings * (0.4 + gm)[:, None]
    fraction = weights @ run.networks.T
    fraction += (0.02 * csf + 0.001)[:, None] * run.physio[None, :]
    fraction += rng.uniform(0.5, 1.5, head.size)[:, None] * run.drift[None, :]
    xyz = anat.mni_xyz.reshape(-1, 3)[head].astype(np.float64)
    edge = (anat.depth.ravel()[head] <= anat.voxel_size) | ~anat.brain.ravel()[head]
    direction = xyz / np.maximum(np.linalg.norm(xyz, axis=1, keepdims=True), 1.0)
    shift = run.motion[:, :3] - run.motion[:, :3].mean(axis=0)
    fraction += 0.008 * edge[:, None] * (direction @ shift.T)
    series = base[:, None] * (1.0 + fraction)
    series += rng.standard_normal(series.shape) * (0.012 * base)[:, None]
    gain = np.ones(run.n_volumes)
    gain[: run.n_non_steady] += NON_STEADY_GAIN * 0.5 ** np.arange(run.n_non_steady)
    gain[list(run.spikes)] += SPIKE_INTENSITY
    series *= gain[None, :]
    out = np.zeros((int(np.prod(anat.shape)), run.n_volumes), dtype=np.float32)
    out[head] = series
    return out.reshape(anat.shape + (run.n_volumes,))
