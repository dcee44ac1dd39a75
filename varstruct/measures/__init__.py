"""Dataset and model measures of MEASURES.md, returned as labelled xarray Datasets."""
