"""H2, consistency: MIG, active MIG and encoding inconsistency of the β-VAE when the local
variance order of two factors is the same everywhere (``none``), changes along the manifold
without ever inverting (``noflip``, the control) or inverts (``flip``), at matched global
variance shares.

Data: the zoo's group ``toy_context`` (docs/toy-context.md: r = 1.5, A's amplitude 0.3 in every
profile; B's amplitude is set by a third, context factor C, so traversing A changes no pixel of B
or C, and the global variance shares of A, B and C are equal across the three profiles; 10 seeds
per cell, trained until converged); the older ``toy_profiles`` group (toy_blobs, whose ``flip``
was trained at another r) if ``toy_context`` is absent; read with ``varstruct.collect``. Scores:
``mig``, ``active_mig`` (latents with mean KL < 0.05 held constant); model measure:
``encoding_inconsistency_mean`` (the share of anchors whose encoding latent differs from the
factor's most frequent one, mean over factors; docs/measures.md#encoding_inconsistency). Dots:
seeds; diamonds: the mean with a 95% bootstrap CI over seeds; short lines: the oracle readout
(the ceiling), PCA, FastICA and the untrained network on each profile (group ``toy_baselines``).
H2 predicts lower (active) MIG and higher inconsistency for ``flip`` than for ``none`` and, the
test that isolates the flip, than for ``noflip``. Tests (numbers.json): every pair of profiles,
difference of mean active MIG with its exact permutation p and bootstrap CI, over all seeds and
over the seeds that learned every factor; each cell's learning stages (active latents).
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
