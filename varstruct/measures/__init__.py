"""Dataset and model measures of MEASURES.md, returned as labelled xarray Datasets."""
from .dataset import measure_dataset  # noqa: F401
