"""bidsmask: masks, cleaned time series and connectivity from fMRIPrep derivatives.

The engine (``bidsmask.image``, ``bidsmask.masking``, ``bidsmask.signal``,
``bidsmask.confounds``, ``bidsmask.regions``, ``bidsmask.maskers``) follows nilearn's
public names, parameters and numbers; ``bidsmask.app`` is the BIDS App.
"""

from bidsmask._version import __version__

__all__ = ["__version__"]
