"""H2, consistency: MIG, active MIG and encoding inconsistency of β-VAE and Ada-GVAE when the
local variance order of the two toy_blobs factors is constant (``none``), changes with A without
ever flipping (``noflip``, the control) or flips across A's range (``flip``).

Data: the zoo's group ``toy_profiles`` (toy_blobs at one fixed amplitude of A; ``none`` and
``noflip`` at r = 2, ``flip`` at r = 1 with spread 2, so A's amplitude is the same everywhere;
≥ 5 seeds each), read with ``varstruct.collect``. Scores: ``mig``, ``active_mig`` (latents with
mean KL < 0.05 held constant); model measure: ``encoding_inconsistency_mean`` (the share of
anchors whose encoding latent differs from the factor's most frequent one, mean over the two
factors; docs/measures.md#encoding_inconsistency). Dots: seeds; diamonds: the mean with a 95%
bootstrap CI over seeds. H2 predicts lower (active) MIG and higher inconsistency for ``flip``
than for both ``none`` and ``noflip`` (for β-VAE; Ada-GVAE's pairs may rescue it).
"""
from __future__ import annotations

from . import _profiles
from ._common import save

METHODS = ("beta_vae", "ada_gvae")


def make(zoo, out) -> dict:
    study = _profiles.select(zoo, METHODS)
    fig = _profiles.plot(study, METHODS, baselines=_profiles.toy_baselines(zoo, study, "data_profile"), title=f"H2: local/global consistency on {_profiles.dataset_name(study)}, "
                                         f"{' vs '.join(_profiles.present(study, METHODS))} (mean and 95% bootstrap CI over seeds)")
    save(fig, out, "h2_consistency")
    return _profiles.numbers(study, METHODS, zoo)


if __name__ == "__main__":
    from ._common import script_main

    raise SystemExit(script_main(__spec__.name))
