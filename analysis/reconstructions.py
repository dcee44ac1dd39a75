"""Originals beside reconstructions of a trained model (sigmoid of the decoded encoder mean).

    python analysis/reconstructions.py RUN_DIR [--n 8] [--seed 0] [--out reconstructions.png]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from varstruct.io import atomic_path  # noqa: E402
from varstruct.models.load import dataset_from_config, load_model  # noqa: E402
from varstruct.runs.layout import RunDir  # noqa: E402
from varstruct.tensors import to_numpy, to_torch  # noqa: E402


def plot_reconstructions(model, images):
    """Figure: row 1 the images [N, H, W, C], row 2 their reconstructions."""
    with torch.no_grad():
        rec = to_numpy(torch.sigmoid(model(to_torch(images))))
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(1.4 * n, 3.0), squeeze=False)
    for j in range(n):
        for row, imgs in enumerate((images, rec)):
            ax = axes[row, j]
            img = imgs[j]
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("original")
    axes[1, 0].set_ylabel("reconstruction")
    cfg = model.config
    hp = ", ".join(f"{k}={v}" for k, v in cfg["hparams"].items())
    fig.suptitle(f"{cfg['method']} ({hp}) on {cfg['dataset']}, {cfg['steps']} steps, seed {cfg['seed']}", fontsize=9)
    fig.tight_layout()
    return fig


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a model dir written by `varstruct train`")
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="reconstructions.png")
    a = p.parse_args()
    rd = RunDir(a.run)
    model = load_model(rd)
    ds = dataset_from_config(model.config)
    _, images = ds.sample(a.n, a.seed)
    fig = plot_reconstructions(model, images)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
