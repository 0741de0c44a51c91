"""scikit-learn compatible maskers with nilearn 0.14's names, parameters and numbers.

Every masker reads a run once, chunk by chunk, through :func:`bidsmask.regions.extract`, then
cleans the extracted signals with :func:`bidsmask.signal.clean`. scikit-learn is not needed at
runtime; ``sklearn.base.clone``, pipelines and pickling work when it is installed.
"""

from bidsmask.maskers._base import BaseMasker, NotFittedError
from bidsmask.maskers._verbose import mask_logger
from bidsmask.maskers.cifti import CiftiLabelsMasker
from bidsmask.maskers.labels import NiftiLabelsMasker
from bidsmask.maskers.maps import NiftiMapsMasker
from bidsmask.maskers.multi import MultiNiftiLabelsMasker, MultiNiftiMapsMasker, MultiNiftiMasker
from bidsmask.maskers.nifti import NiftiMasker, filter_and_mask
from bidsmask.maskers.spheres import NiftiSpheresMasker

__all__ = [
    "BaseMasker",
    "CiftiLabelsMasker",
    "MultiNiftiLabelsMasker",
    "MultiNiftiMapsMasker",
    "MultiNiftiMasker",
    "NiftiLabelsMasker",
    "NiftiMapsMasker",
    "NiftiMasker",
    "NiftiSpheresMasker",
    "NotFittedError",
    "filter_and_mask",
    "mask_logger",
]
