"""Every optimiser of a training run, and one optimisation step.

The model: Adam(lr, betas (0.9, 0.999), eps 1e-8), Locatello et al.'s setting. Each auxiliary
parameter group of the objective (``objective.aux_groups()``: FactorVAE's discriminator) gets
its own Adam with the run's ``lr`` and the group's betas. The Adams use the fused CPU/CUDA
kernel (one pass over all parameters; bit-reproducible for a given thread count).

One step: ``losses = objective.compute(model, batch, t)``; :meth:`Optimisers.step` zeroes the
gradients, backpropagates ``losses.loss`` into the model, then each ``losses.aux[name]`` into
its group only (gradients of the model's loss that reached the group are dropped first), and
steps every optimiser. No clipping (none in the reference setting).
"""
from __future__ import annotations

import torch

BETAS, EPS = (0.9, 0.999), 1e-8
MAIN = "opt"  # checkpoint prefix of the model's optimiser; groups: "aux.<name>"


def adam(params, lr: float, betas=BETAS, eps: float = EPS, impl: str = "fused") -> torch.optim.Adam:
    """Adam with the ``impl`` kernel: fused (default), foreach or single (per-tensor loop)."""
    kw = {"fused": {"fused": True}, "foreach": {"foreach": True}, "single": {"foreach": False}}[impl]
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas), eps=eps, **kw)


class Optimisers:
    """The model's Adam and one Adam per auxiliary group of ``objective``."""

    def __init__(self, model, objective, lr: float, impl: str = "fused"):
        self.main = adam(model.parameters(), lr, impl=impl)
        self.aux = {name: adam(g["params"], lr, betas=g.get("betas", BETAS), impl=impl)
                    for name, g in objective.aux_groups().items()}

    def by_prefix(self) -> dict[str, torch.optim.Optimizer]:
        """Checkpoint prefix -> optimiser."""
        return {MAIN: self.main, **{f"aux.{k}": o for k, o in self.aux.items()}}

    def step(self, losses) -> None:
        for o in self.by_prefix().values():
            o.zero_grad(set_to_none=True)
        losses.loss.backward()
        for name, o in self.aux.items():
            o.zero_grad(set_to_none=True)  # the group learns from its own loss only
            losses.aux[name].backward()
        self.main.step()
        for o in self.aux.values():
            o.step()
