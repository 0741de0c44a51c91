"""Docstring entries shared by the maskers, and the decorator that fills them in.

A masker's docstring names a shared entry as ``%(name)s`` on a line of its own; every
parameter and fitted attribute is then documented one by one, in ``__init__`` order, as
numpydoc and nilearn's estimator checks expect.
"""

from __future__ import annotations

import re
from typing import TypeVar

T = TypeVar("T")

_ENTRIES = {
    "smoothing_fwhm": """\
smoothing_fwhm : float or None, default=None
    Full width at half maximum (mm) of the Gaussian smoothing applied to each volume.""",
    "standardize": """\
standardize : {"zscore_sample", "zscore", "psc", True, False, None}, default=False
    Standardization of the cleaned signals (see :func:`bidsmask.signal.clean`).""",
    "standardize_confounds": """\
standardize_confounds : bool, default=True
    Z-score the confounds before regressing them out.""",
    "high_variance_confounds": """\
high_variance_confounds : bool, default=False
    Also regress out the 5 high-variance confounds of the raw images (this one option holds
    every voxel of the run in memory, as nilearn does).""",
    "detrend": """\
detrend : bool, default=False
    Remove linear trends.""",
    "low_pass": """\
low_pass : float or None, default=None
    Low cut-off frequency of the Butterworth filter in Hz (needs ``t_r``).""",
    "high_pass": """\
high_pass : float or None, default=None
    High cut-off frequency of the Butterworth filter in Hz (needs ``t_r``).""",
    "t_r": """\
t_r : float or None, default=None
    Repetition time in seconds.""",
    "target_affine": """\
target_affine : 3x3 or 4x4 array or None, default=None
    Affine of the grid the mask and the images are resampled to.""",
    "target_shape": """\
target_shape : 3-tuple of int or None, default=None
    Shape of the grid the mask and the images are resampled to (needs ``target_affine``).""",
    "dtype": """\
dtype : numpy dtype, "auto" or None, default=None
    Output data type ("auto": float32, or int32 for integer images).""",
    "memory": """\
memory : None, str or joblib.Memory, default=None
    Accepted for compatibility with nilearn; nothing is cached, since a single streamed pass
    is cheaper than a cache look-up.""",
    "memory_level": """\
memory_level : int, default=1
    Accepted for compatibility with nilearn (nothing is cached).""",
    "verbose": """\
verbose : int, default=0
    Verbosity (messages go to the ``bidsmask`` logger).""",
    "clean_args": """\
clean_args : dict or None, default=None
    Extra arguments of :func:`bidsmask.signal.clean`.""",
    "n_jobs": """\
n_jobs : int, default=1
    Number of subjects processed at once (threads).""",
    "clean_args_": """\
clean_args_ : dict
    Arguments passed to :func:`bidsmask.signal.clean`.""",
}
# the cleaning parameters of the region maskers, in their ``__init__`` order
_ENTRIES["region_cleaning"] = "\n".join(
    _ENTRIES[name]
    for name in (
        "smoothing_fwhm",
        "standardize",
        "standardize_confounds",
        "high_variance_confounds",
        "detrend",
        "low_pass",
        "high_pass",
        "t_r",
        "dtype",
    )
)
_PLACEHOLDER = re.compile(r"^( *)%\((\w+)\)s$", flags=re.MULTILINE)


def fill_doc(obj: T) -> T:
    """Replace each ``%(name)s`` line of ``obj.__doc__`` by the shared entry ``name``.

    Parameters
    ----------
    obj : class or function
        Its docstring is rewritten in place; the entry keeps the placeholder's indentation.

    Returns
    -------
    obj
    """

    def entry(match: re.Match) -> str:
        indent, name = match.groups()
        return "\n".join(indent + line if line else line for line in _ENTRIES[name].splitlines())

    obj.__doc__ = _PLACEHOLDER.sub(entry, obj.__doc__)
    return obj
