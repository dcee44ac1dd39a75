"""Dataset and model measures (defined in docs/measures.md), returned as labelled xarray Datasets."""
from .dataset import measure_dataset  # noqa: F401
from .model import measure_model  # noqa: F401
