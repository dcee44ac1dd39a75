"""The figure scripts of varstruct: ``python -m analysis [--zoo pretrained/] [--out figures/]``
regenerates every figure from the pretrained zoo (or by direct computation where that is cheap),
without training. One module ``fig_*.py`` per figure, each with ``make(zoo, out) -> dict`` (the
numbers behind the figure) and runnable alone: ``python -m analysis.fig_h1 --zoo ... --out ...``."""

FIGURES = ("fig_pca_finite_sample", "fig_colour_size", "fig_variance_structure", "fig_h1", "fig_h2",
           "fig_h3", "fig_longitudinal", "fig_sparsity", "fig_encoding_maps", "fig_correlations", "fig_learning_curve",
           "fig_dsprites_scores", "fig_training_length")
