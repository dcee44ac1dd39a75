"""H3, ordered baselines: a nested-dropout ordered autoencoder (a globally ordered code) against
the β-VAE under the same three profiles (none / noflip / flip).

Data: the zoo's group ``toy_context`` (as fig_h2: matched global variance shares, no A→B cross
term, 10 seeds per cell, trained until converged; ``toy_profiles`` if absent), methods
``beta_vae`` and ``ordered_ae`` (p = 0.1), read with ``varstruct.collect``. Same panels as fig_h2:
MIG, active MIG and encoding inconsistency, seeds as dots, means with 95% bootstrap CIs, the
baselines as short lines. For the deterministic ordered AE "active" means a mean KL of
½·E[μ²] >= 0.05, a scale rather than an information criterion (docs/toy-blobs.md). H3 predicts
that the ordered AE cannot follow the flip either. Test (numbers.json): the method × profile
interaction, the difference of the two methods' drops from ``none`` to ``flip`` (and from
``noflip`` to ``flip``) with a bootstrap CI over seeds (``varstruct.study.contrasts``).
"""
from __future__ import annotations

from . import _profiles
from ._common import save

METHODS = ("beta_vae", "ordered_ae")


def make(zoo, out) -> dict:
    study = _profiles.select(zoo, METHODS)
    fig = _profiles.plot(study, METHODS, baselines=_profiles.toy_baselines(zoo, study, "data_profile"), title=f"H3: ordered AE (nested dropout) vs β-VAE on {_profiles.dataset_name(study)} "
                                         "(mean and 95% bootstrap CI over seeds)")
    save(fig, out, "h3_ordered")
    from varstruct.study.contrasts import with_holm

    return {**_profiles.numbers(study, METHODS, zoo),  # H3's own family: the four interactions
            **with_holm({"interaction_active_mig": _profiles.interaction(study, METHODS),
                         "interaction_mig": _profiles.interaction(study, METHODS, score="mig"),
                         "interaction_active_mig_noflip": _profiles.interaction(study, METHODS, control="noflip"),
                         "interaction_active_mig_A": _profiles.interaction(study, METHODS, score="active_mig_A")})}


if __name__ == "__main__":
    from ._common import script_main

    raise SystemExit(script_main(__spec__.name))
