"""What the user sees: logging set-up, one progress line per run, the final summary.

Library modules only log (``logging.getLogger(__name__)``); this module decides where records go:

- the console (standard error): the app's progress lines and summary, plus every warning and
  error; ``-v`` adds the library's INFO detail, ``-vv`` everything at DEBUG; ``-q`` keeps only
  warnings, errors and the summary;
- a log file ``OUTPUT_DIR/logs/bidsmask-<level>-<UTC timestamp>-<pid>.log`` with every record
  at DEBUG level and timestamps, whatever the console verbosity.

Worker processes (``--nprocs``) call :func:`setup_worker_logging` so that their records reach
the same console and log file.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

logger = logging.getLogger(__name__)

#: Records of these loggers are the user-facing messages shown at default verbosity.
_APP_LOGGER = "bidsmask.app"
_PACKAGE_LOGGER = "bidsmask"
_FILE_FORMAT = "%(asctime)s %(process)d %(levelname)-7s %(name)s: %(message)s"

#: Status of a run, as written in the QC table.
DONE = "done"
UP_TO_DATE = "up-to-date"
SKIPPED = "skipped"
FAILED = "failed"


class _ConsoleFilter(logging.Filter):
    """Let through what the console shows at a given verbosity."""

    def __init__(self, verbosity: int) -> None:
        super().__init__()
        self.verbosity = verbosity

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING or getattr(record, "summary", False):
            return True
        if self.verbosity < 0:
            return False
        if self.verbosity >= 2:
            return True
        if self.verbosity == 1:  # the app's own DEBUG lines are its -v detail
            return record.levelno >= logging.INFO or record.name.startswith(_APP_LOGGER)
        return record.levelno >= logging.INFO and record.name.startswith(_APP_LOGGER)


def _console_handler(verbosity: int) -> logging.Handler:
    handler = logging.StreamHandler()
    handler.addFilter(_ConsoleFilter(verbosity))
    fmt = "%(levelname)s %(name)s: %(message)s" if verbosity >= 2 else "%(message)s"
    handler.setFormatter(_LevelPrefixFormatter(fmt))
    return handler


class _LevelPrefixFormatter(logging.Formatter):
    """Prefix warnings and errors with their level; leave progress lines bare."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.levelno >= logging.WARNING and not text.startswith(record.levelname):
            text = f"{record.levelname}: {text}"
        return text


def _file_handler(log_file: Path) -> logging.Handler:
    handler = logging.FileHandler(log_file, mode="a", encoding="utf-8", delay=True)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter(_FILE_FORMAT))
    return handler


def log_file_path(logs_dir: Path, analysis_level: str) -> Path:
    """Return a new log file name in ``logs_dir`` for one invocation.

    Parameters
    ----------
    logs_dir : Path
        ``OUTPUT_DIR/logs``.
    analysis_level : str
        ``"participant"`` or ``"group"``.

    Returns
    -------
    Path
        ``bidsmask-<level>-<UTC timestamp>-<pid>.log``; the process id keeps concurrent jobs
        apart.
    """
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path(logs_dir) / f"bidsmask-{analysis_level}-{stamp}-{os.getpid()}.log"


@contextmanager
def logging_to(verbosity: int, log_file: Path | None = None) -> Iterator[None]:
    """Send bidsmask's log records to the console and, optionally, a log file.

    Parameters
    ----------
    verbosity : int
        0 default, 1 (``-v``) library detail, 2 (``-vv``) debugging, -1 (``-q``) quiet.
    log_file : Path or None
        The log file (its folder must exist); None for the console only.

    Yields
    ------
    None
        Handlers are removed, and Python warnings released, on exit.
    """
    handlers = [_console_handler(verbosity)]
    if log_file is not None:
        handlers.append(_file_handler(Path(log_file)))
    package = logging.getLogger(_PACKAGE_LOGGER)
    warnings_logger = logging.getLogger("py.warnings")
    previous_level = package.level
    package.setLevel(logging.DEBUG)
    for handler in handlers:
        package.addHandler(handler)
        warnings_logger.addHandler(handler)
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        for handler in handlers:
            package.removeHandler(handler)
            warnings_logger.removeHandler(handler)
            handler.close()
        package.setLevel(previous_level)


def setup_worker_logging(verbosity: int, log_file: str | None) -> None:
    """Configure logging in a worker process (``ProcessPoolExecutor`` initializer).

    Parameters
    ----------
    verbosity : int
        As for :func:`logging_to`.
    log_file : str or None
        The parent's log file; records are appended to it.
    """
    package = logging.getLogger(_PACKAGE_LOGGER)
    package.setLevel(logging.DEBUG)
    package.addHandler(_console_handler(verbosity))
    if log_file is not None:
        package.addHandler(_file_handler(Path(log_file)))
    logging.captureWarnings(True)


@dataclass
class RunOutcome:
    """What happened to one run (one preprocessed BOLD file).

    Parameters
    ----------
    label : str
        Human-readable run name, e.g. ``"sub-02 ses-1 task-rest run-1 space-MNI152NLin2009cAsym"``.
    status : str
        ``"done"``, ``"up-to-date"`` (complete outputs from an earlier invocation), ``"skipped"``
        (too few volumes for every strategy) or ``"failed"``.
    seconds : float
        Wall time spent on the run.
    outputs : list of str
        Files written (paths relative to OUTPUT_DIR).
    reason : str
        Why the run was skipped or failed (empty otherwise).
    exit_code : int
        0, or the exit code of the error that failed the run.
    notes : list of str
        Details worth a line with ``-v`` (e.g. a strategy skipped for too few volumes).
    """

    label: str
    status: str
    seconds: float = 0.0
    outputs: list[str] = field(default_factory=list)
    reason: str = ""
    exit_code: int = 0
    notes: list[str] = field(default_factory=list)


class Progress:
    """Log one line per finished run and, at the end, the summary.

    Parameters
    ----------
    total : int
        Number of runs to go through.
    output_dir : Path
        Where outputs go (named in the summary).

    Examples
    --------
    >>> progress = Progress(2, Path("out"))
    >>> progress.line(RunOutcome("sub-01 task-rest", "done", 1.25))
    '[1/2] sub-01 task-rest … done (1.2 s)'
    """

    def __init__(self, total: int, output_dir: Path) -> None:
        self.total = total
        self.output_dir = Path(output_dir)
        self.outcomes: list[RunOutcome] = []
        self.start = time.perf_counter()

    def line(self, outcome: RunOutcome) -> str:
        """Record ``outcome`` and return its progress line."""
        self.outcomes.append(outcome)
        width = len(str(self.total))
        text = f"[{len(self.outcomes):>{width}}/{self.total}] {outcome.label} … {outcome.status}"
        if outcome.status in (DONE, FAILED, SKIPPED):
            text += f" ({outcome.seconds:.1f} s)"
        if outcome.reason:
            text += f": {outcome.reason}"
        return text

    def report(self, outcome: RunOutcome) -> None:
        """Log the progress line of a finished run (and its notes at ``-v``)."""
        level = logging.ERROR if outcome.status == FAILED else logging.INFO
        logger.log(level, self.line(outcome))
        for note in outcome.notes:
            logger.debug("    %s", note)

    def count(self, status: str) -> int:
        """Return how many runs ended with ``status``."""
        return sum(o.status == status for o in self.outcomes)

    def summary(self) -> str:
        """Return the final summary line."""
        n_files = sum(len(o.outputs) for o in self.outcomes)
        elapsed = time.perf_counter() - self.start
        return (
            f"Finished {len(self.outcomes)} run(s) in {elapsed:.1f} s: {self.count(DONE)} done, "
            f"{self.count(UP_TO_DATE)} already complete, {self.count(SKIPPED)} skipped, "
            f"{self.count(FAILED)} failed; {n_files} file(s) written under {self.output_dir}."
        )

    def log_summary(self, log_file: Path | None = None) -> None:
        """Log the summary (shown even with ``-q``) and where the log file is."""
        level = logging.WARNING if self.count(FAILED) else logging.INFO
        logger.log(level, self.summary(), extra={"summary": True})
        if log_file is not None:
            logger.log(level, "Log file: %s", log_file, extra={"summary": True})
