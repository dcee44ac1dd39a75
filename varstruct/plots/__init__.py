"""Plots of varstruct results: each function takes xarray objects, draws on the given Axes (or a
new Figure's Axes, created without pyplot), returns the Axes and changes no global state."""
from .correlations import plot_correlation_heatmap, plot_scatter  # noqa: F401
from .variance import plot_variance_structure  # noqa: F401
from .traversals import latent_traversals, plot_traversals  # noqa: F401

__all__ = ["plot_correlation_heatmap", "plot_scatter", "plot_variance_structure", "latent_traversals",
           "plot_traversals"]
