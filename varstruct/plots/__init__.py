"""Plots of varstruct results: each function takes xarray objects, draws on the given Axes (or a
new Figure's Axes, created without pyplot), returns the Axes and changes no global state."""
from .correlations import plot_correlation_heatmap, plot_scatter  # noqa: F401
from .variance import plot_factor_bars, plot_variance_structure  # noqa: F401
from .traversals import latent_traversals, plot_traversals  # noqa: F401
from .groups import plot_groups  # noqa: F401
from .encoding import plot_encoding_map  # noqa: F401

__all__ = ["plot_correlation_heatmap", "plot_scatter", "plot_variance_structure", "plot_factor_bars", "latent_traversals",
           "plot_traversals", "plot_groups", "plot_encoding_map"]
