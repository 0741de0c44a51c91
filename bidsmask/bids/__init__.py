"""BIDS input and output.

- :mod:`bidsmask.bids.layout`: find fMRIPrep derivatives and the runs to process (pybids).
- :mod:`bidsmask.bids.naming`: the one place derivative file names are built.
- :mod:`bidsmask.bids.writer`: atomic writes, ``dataset_description.json``, BIDS URIs, run
  completion markers, the atlases used.
- :mod:`bidsmask.bids.templateflow`: offline TemplateFlow lookups (never downloads).
"""
