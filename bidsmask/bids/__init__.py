"""BIDS input and output: fMRIPrep layouts, derivative names, atomic writers."""
