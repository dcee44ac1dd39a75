"""Dataset and model measures of MEASURES.md, returned as labelled xarray Datasets."""

from .model import measure_model  # noqa: E402,F401
