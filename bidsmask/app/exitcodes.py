"""Exit codes of the ``bidsmask`` command and the errors that carry them.

The codes follow the BIDS Apps execution draft (which borrows BSD ``sysexits.h``):

====  ===================  ==========================================================
code  name                 meaning
====  ===================  ==========================================================
0     ``OK``               every selected run was processed (or skipped by design)
1     ``FAILURE``          an unexpected error (a bug: please report it with the log)
18    ``NO_MATCH``         the filters matched nothing, or a participant was not found
64    ``USAGE``            wrong command line: bad option value, contradictory options
65    ``DATA_ERROR``       an input exists but is not usable (missing RepetitionTime,
                           BOLD and mask on different grids, malformed confounds …)
66    ``NO_INPUT``         an input is missing (BIDS_DIR, confounds file, atlas files)
73    ``CANNOT_CREATE``    OUTPUT_DIR (or a file inside it) cannot be created or written
====  ===================  ==========================================================

Code raises the :class:`AppError` subclass that names the situation; ``bidsmask.app.cli.main``
turns it into the exit code. Errors raised by the library while processing a run are mapped by
:func:`exit_code_for`.
"""

from __future__ import annotations

import errno

OK = 0
FAILURE = 1
NO_MATCH = 18
USAGE = 64
DATA_ERROR = 65
NO_INPUT = 66
CANNOT_CREATE = 73

EPILOG = """\
exit codes:
  0   success (runs skipped by design, e.g. too few volumes after censoring, are not failures)
  1   unexpected error (please report it, with the log file from OUTPUT_DIR/logs)
  18  the filters matched nothing, or a --participant-label was not found
  64  usage error: a bad option value or contradictory options
  65  bad input data (e.g. missing RepetitionTime, BOLD and mask on different grids)
  66  missing input (BIDS_DIR, a confounds file, atlas files not in TEMPLATEFLOW_HOME)
  73  OUTPUT_DIR (or a file in it) cannot be created or written
"""


class AppError(Exception):
    """An error the app reports in one line and turns into an exit code.

    Parameters
    ----------
    message : str
        What went wrong, naming the file or option, the offending value and the fix.
    """

    exit_code = FAILURE


class NoMatchError(AppError):
    """The participant, session or task filters selected no run (exit code 18)."""

    exit_code = NO_MATCH


class UsageError(AppError):
    """Options that are wrong or contradict each other (exit code 64)."""

    exit_code = USAGE


class DataError(AppError):
    """An input that exists but cannot be used (exit code 65)."""

    exit_code = DATA_ERROR


class MissingInputError(AppError):
    """An input file or folder that does not exist (exit code 66)."""

    exit_code = NO_INPUT


class OutputError(AppError):
    """An output that cannot be created or written (exit code 73)."""

    exit_code = CANNOT_CREATE


def exit_code_for(error: BaseException) -> int:
    """Return the exit code for an error raised while processing.

    Parameters
    ----------
    error : BaseException
        The error.

    Returns
    -------
    int
        ``error.exit_code`` for an :class:`AppError`; 73 for a permission error or a full disk;
        66 for a missing file; 65 for a value error (bad data); 1 otherwise.

    Examples
    --------
    >>> exit_code_for(FileNotFoundError("sub-01_desc-confounds_timeseries.tsv"))
    66
    """
    if isinstance(error, AppError):
        return error.exit_code
    if isinstance(error, FileNotFoundError):
        return NO_INPUT
    if isinstance(error, PermissionError):
        return CANNOT_CREATE
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT):
        return CANNOT_CREATE
    if isinstance(error, ValueError):
        return DATA_ERROR
    return FAILURE
