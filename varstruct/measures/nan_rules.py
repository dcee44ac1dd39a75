"""When each measure and score is NaN, in one line, as docs/measures.md defines it.

Used to say *why* models drop out of an analysis (``varstruct.correlate``'s selection report).
Torch-free. A result variable's own ``nan_when`` attribute, where present, takes precedence.
"""
from __future__ import annotations

NAN_WHEN = {
    # dataset measures
    "step_variance": "categorical factor (no grid step direction)",
    "variance_share": "no factor varies (total global variance 0)",
    "variance_cv": "the factor does not vary (G = 0)",
    "variance_dependence": "diagonal, a factor value with < 2 anchors, or constant local variance",
    "order_inversion": "diagonal, or two factors of exactly equal global variance (no order to invert)",
    "local_global_discrepancy": "no factor order exists (every pair of factors has equal global variance)",
    "local_global_discrepancy_tau": "no anchor with a defined local order",
    "factor_discrepancy": "the factor has no pair with a global order",
    "near_degeneracy": "fewer than 2 factors",
    "factor_near_degeneracy": "fewer than 2 factors",
    "direction_consistency": "categorical factor (no direction)",
    "local_nonorthogonality": "fewer than 2 ordinal/circular factors",
    "local_pca_alignment": "no ordinal/circular factor with a non-zero direction",
    # model measures
    "jacobian_response": "categorical factor (no direction)",
    "encoding_purity": "no latent responds to the factor",
    "encoding_purity_mean": "no latent responds to any factor",
    "encoding_inconsistency": "no anchor where a latent encodes the factor",
    "encoding_inconsistency_mean": "no anchor where a latent encodes a factor",
    "encoding_entropy": "no active latent, or no anchor where a latent encodes the factor",
    "encoding_entropy_mean": "no active latent",
    "encoding_collision": "no anchor with an encoded factor",
    "discordance_effect": "needs both concordant and discordant anchors (a factor order that flips locally)",
    "discordance_effect_mean": "needs anchors where the local factor order departs from the global one",
    "discordant_fraction": "no global factor order",
    "decoder_orthogonality": "needs >= 2 active latents",
    "decoder_angles": "needs >= 2 active latents",
    # scores
    "active_mig": "no active latent",
    "active_mig_per_factor": "no active latent",
    "irs": "no active latent",
}


def nan_reason(name: str, attrs: dict | None = None) -> str:
    """Why variable ``name`` is NaN: its ``nan_when`` attr, else :data:`NAN_WHEN`, else a pointer
    to its definition."""
    attrs = attrs or {}
    if attrs.get("nan_when"):
        return str(attrs["nan_when"])
    if name in NAN_WHEN:
        return NAN_WHEN[name]
    return f"undefined for these models (see {attrs.get('definition') or 'docs/measures.md'})"
