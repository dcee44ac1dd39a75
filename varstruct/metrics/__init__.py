"""Disentanglement metrics as plain functions over arrays (``codes`` float [N, L], ``factors``
int [N, K]), equal to disentanglement_lib's reference definitions (Locatello et al. 2019),
plus the sampling-based scores that take a dataset and an encode function, and
:func:`evaluate`, which computes them for a model."""
from .dci import completeness, dci, disentanglement, importance_gbt
from .irs import irs, irs_details
from .mig import active_mig, active_mig_per_factor, latent_kl, mig, mig_per_factor
from .modularity import modularity_explicitness
from .sampling import beta_vae_score, factor_vae_score
from .sap import sap, sap_per_factor, sap_score_matrix
from .unsupervised import gaussian_total_correlation, gaussian_wasserstein_correlation, unsupervised_scores
from .utils import discrete_entropy, discrete_mutual_info, histogram_discretize
from .evaluate import METRICS, evaluate  # noqa: E402

__all__ = ["METRICS", "active_mig", "active_mig_per_factor", "beta_vae_score", "completeness", "dci", "discrete_entropy", "discrete_mutual_info",
           "disentanglement", "evaluate", "factor_vae_score", "gaussian_total_correlation",
           "gaussian_wasserstein_correlation", "histogram_discretize", "importance_gbt", "irs",
           "irs_details", "latent_kl", "mig", "mig_per_factor", "modularity_explicitness", "sap", "sap_per_factor",
           "sap_score_matrix", "unsupervised_scores"]
