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
:func:`exit_code_for`. The errors of the libraries that read input files (nibabel, gzip/zlib,
pandas) are turned into a :class:`DataError` naming the file in one place, :func:`input_error`,
which the app uses through the :func:`reading` context manager wherever it reads an input.
"""

from __future__ import annotations

import ast
import contextlib
import errno
import gzip
import os
import re
import zlib
from collections.abc import Iterator

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
  73  OUTPUT_DIR (or a file in it), or a temporary folder, cannot be created or written
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


_GZIP_MAGIC = b"\x1f\x8b"
_NIFTI1_MAGICS = (b"n+1\x00", b"ni1\x00")  # at byte 344 of a NIfTI-1 header
_NIFTI2_MAGICS = (b"n+2\x00", b"ni2\x00")  # at byte 4 of a NIfTI-2 header


def input_error(
    error: BaseException, path: str | os.PathLike, strategy: str | None = None
) -> DataError | None:
    """Return the :class:`DataError` for a library's error on an input file, or None.

    The one place where errors of nibabel (``ImageFileError``, ``HeaderDataError``, data cut
    short), gzip/zlib (a
    file that is not gzip or is cut short), pandas (an empty or malformed table, a missing
    column) and text decoding become one-line messages naming the file. The file named is the
    one that nibabel's ``load`` or pandas' ``read_csv`` was reading when the error was raised
    (found in the traceback), else ``path``: a block reading an atlas may fail on its label
    table.

    Parameters
    ----------
    error : BaseException
        The error raised while reading ``path``.
    path : str or os.PathLike
        The input file being read (or what it belongs to, e.g. an ``--atlas`` value).
    strategy : str or None
        The denoising strategy that selected columns of ``path`` (a confounds file): a
        ``KeyError`` then means that the file lacks a column the strategy needs.

    Returns
    -------
    DataError or None
        The error to raise (exit code 65), or None for an error that is not about the file.

    Examples
    --------
    >>> error = input_error(KeyError("['csf'] not in index"), "confounds.tsv", "36P")
    >>> error.exit_code, str(error)[:62]
    (65, "Confounds file confounds.tsv lacks the column 'csf', needed by")
    """
    import pandas as pd
    from nibabel.filebasedimages import ImageFileError
    from nibabel.spatialimages import HeaderDataError

    if isinstance(error, AppError):
        return None
    found, reader = _file_being_read(error)
    path = found or path
    if isinstance(error, KeyError) and strategy is not None:
        columns = _missing_columns(error)
        return DataError(
            f"Confounds file {path} lacks the column{'s' if len(columns) > 1 else ''} "
            f"{', '.join(map(repr, columns))}, needed by strategy {strategy!r}; choose a "
            "strategy its columns support (see --strategy)."
        )
    if isinstance(error, pd.errors.EmptyDataError):
        return DataError(f"{path} is empty (no header row, no data); re-create it.")
    if isinstance(error, pd.errors.ParserError):
        return DataError(
            f"{path} is not a valid tab-separated table ({_one_line(error, path)}); re-create it."
        )
    if isinstance(error, UnicodeDecodeError):
        return DataError(f"{path} is not UTF-8 text ({error.reason}); re-create it.")
    cut_short = type(error) is OSError and error.errno is None  # nibabel: "file damaged?"
    image_error = isinstance(
        error, ImageFileError | HeaderDataError | gzip.BadGzipFile | zlib.error | EOFError
    )
    if (
        cut_short
        or image_error
        or (reader in ("load", "nibabel") and isinstance(error, ValueError))
    ):
        return DataError(_unreadable_image(path, _one_line(error, path)))
    if reader == "read_csv" and isinstance(error, ValueError):  # e.g. an undecodable cell
        return DataError(f"{path} cannot be read as a table ({_one_line(error, path)}).")
    return None


def unreadable_input(error: BaseException) -> DataError | None:
    """Return the :class:`DataError` for an error raised while reading a file, wherever it was.

    The safety net behind :func:`reading`: an error raised inside nibabel's ``load`` or pandas'
    ``read_csv`` (an output of the participant level read by the group level, for instance)
    is mapped by :func:`input_error`, naming the file found in the traceback.

    Parameters
    ----------
    error : BaseException
        An error that nothing else handled.

    Returns
    -------
    DataError or None
        None when the error was not raised while reading a file, or is not about the file.
    """
    path, _ = _file_being_read(error)
    return None if path is None else input_error(error, path)


# The functions that read an input file, and their argument naming it (public parameter names).
_READERS = {
    ("pandas.io.parsers.readers", "read_csv"): "filepath_or_buffer",
    ("nibabel.loadsave", "load"): "filename",
}


def _file_being_read(error: BaseException) -> tuple[str | None, str | None]:
    """Return the file that ``read_csv`` or ``nib.load`` was reading when ``error`` was raised.

    Returns ``(path, "read_csv" or "load")``; ``(None, "nibabel")`` for an error raised by
    nibabel elsewhere (reading an image's data: the file is the caller's); else ``(None, None)``.
    """
    found, reader, module, tb = None, None, "", error.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        module = frame.f_globals.get("__name__", "")
        argument = _READERS.get((module, frame.f_code.co_name))
        value = frame.f_locals.get(argument) if argument else None
        if isinstance(value, str | os.PathLike):
            found, reader = os.fspath(value), frame.f_code.co_name
        tb = tb.tb_next
    if reader is None and module.startswith("nibabel."):
        reader = "nibabel"
    return found, reader


@contextlib.contextmanager
def reading(path: str | os.PathLike, strategy: str | None = None) -> Iterator[None]:
    """Turn the errors of reading the input ``path`` into a :class:`DataError` naming it.

    Parameters
    ----------
    path : str or os.PathLike
        The input file the block reads.
    strategy : str or None
        The denoising strategy, when the block selects its confound columns from ``path``.

    Raises
    ------
    DataError
        For the library errors listed in :func:`input_error`; others propagate unchanged.

    Examples
    --------
    >>> import nibabel as nib
    >>> with reading("bold.nii.gz"):  # doctest: +SKIP
    ...     nib.load("bold.nii.gz")
    """
    try:
        yield
    except Exception as exc:
        mapped = input_error(exc, path, strategy)
        if mapped is None:
            raise
        raise mapped from exc


def _one_line(error: BaseException, path: str | os.PathLike | None = None) -> str:
    """Return the error's message on one line, the file (already named) left out."""
    text = " ".join(str(error).split()) or type(error).__name__
    if path is None:
        return text
    text = text.replace(f"File {path} ", "")
    for form in (f"'{path}'", f'"{path}"', str(path)):
        text = text.replace(form, "the file")
    return text.strip(" :") or type(error).__name__


def _missing_columns(error: KeyError) -> list[str]:
    """Return the column names of a pandas ``KeyError`` (``"['csf'] not in index"``)."""
    key = error.args[0] if error.args else ""
    match = re.search(r"(\[.*\]) not in index", str(key))
    if match:
        try:
            return [str(c) for c in ast.literal_eval(match.group(1))]
        except (ValueError, SyntaxError):
            pass
    return [str(key)]


def _unreadable_image(path: str | os.PathLike, detail: str) -> str:
    """Describe an image file that nibabel or gzip cannot read, from its first bytes."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(348)
    except OSError:
        head = None
    if head == b"":
        return f"{path} is empty; re-create or re-download it."
    if head is not None and str(path).endswith(".gz") and not head.startswith(_GZIP_MAGIC):
        nifti = head[344:348] in _NIFTI1_MAGICS or head[4:8] in _NIFTI2_MAGICS
        what = (
            "an uncompressed NIfTI renamed .gz: compress it with gzip"
            if nifti
            else "not an image at all: re-create or re-download it"
        )
        return f"{path} is not gzip-compressed although its name ends in .gz; it is {what}."
    return (
        f"{path} cannot be read as an image ({detail}); it is not a NIfTI image, or it is "
        "truncated or corrupt: re-create or re-download it."
    )


@contextlib.contextmanager
def using_atlas(atlas: str, run: str) -> Iterator[None]:
    """Turn a ``ValueError`` of fitting ``atlas`` to ``run`` into a :class:`DataError` naming both.

    Parameters
    ----------
    atlas : str
        The ``--atlas`` value.
    run : str
        The run, e.g. ``sub-01_task-rest_space-MNI152NLin2009cAsym_res-2``.

    Raises
    ------
    DataError
        When the block raises a ``ValueError``, e.g. an atlas with no region inside the run's
        mask.
    """
    try:
        yield
    except ValueError as exc:
        raise DataError(
            f"--atlas {atlas} cannot be used for run {run}: {_one_line(exc)} Check that the "
            "atlas covers the brain in the run's space (an atlas file must be in that space)."
        ) from exc
