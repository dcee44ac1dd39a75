"""The one place where dataset images (numpy [B, H, W, C]) meet model tensors (torch [B, C, H, W])."""
from __future__ import annotations

import contextlib

import numpy as np
import torch


def to_torch(images: np.ndarray, device=None) -> torch.Tensor:
    """float32 numpy [B, H, W, C] -> torch float32 [B, C, H, W] (contiguous)."""
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    return x.permute(0, 3, 1, 2).contiguous().to(device) if device else x.permute(0, 3, 1, 2).contiguous()


def to_numpy(x: torch.Tensor) -> np.ndarray:
    """torch [B, C, H, W] -> float32 numpy [B, H, W, C]."""
    return x.detach().permute(0, 2, 3, 1).cpu().numpy().astype(np.float32, copy=False)


def mean_encoder(model, batch_size: int = 512):
    """Wrap ``model.encode`` as ``f(images np [B, H, W, C]) -> codes np float64 [B, L]`` (the
    encoder mean, batched, no grad): the representation function used by metrics."""
    def encode(images: np.ndarray) -> np.ndarray:
        outs = []
        with torch.no_grad():
            for s in range(0, len(images), batch_size):
                mean, _ = model.encode(to_torch(images[s:s + batch_size]))
                outs.append(mean.double().cpu().numpy())
        if not outs:
            return np.zeros((0, 0))
        return np.concatenate(outs)
    return encode


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run with ``n`` torch intra-op threads (None: leave as is), then restore the old count.

    Renderers and measures work on batches of small images, where on a busy 2-core machine a
    second thread mostly spins (dsprites traversals ran up to 12x slower with 2 threads)."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)
