"""25 random images of the procedural shapes3d scene in a 5x5 grid -> figures/shapes3d_samples.png.

    python analysis/shapes3d_samples.py [--seed 0] [--out figures/shapes3d_samples.png]

Compare with the published 3dshapes samples: sky band on top, two walls meeting in a corner,
floor from about the middle down, an object with its shadow.
"""
import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from varstruct import data  # noqa: E402
from varstruct.io import atomic_path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "figures" / "shapes3d_samples.png"))
    a = p.parse_args()
    ds = data.get("shapes3d")
    idx, x = ds.sample(25, a.seed)
    fig, axes = plt.subplots(5, 5, figsize=(7.5, 8.2))
    for ax, img, f in zip(axes.ravel(), x, idx):
        ax.imshow(img, interpolation="nearest")
        ax.set_title(f"{ds.shape_names[f[4]]} s{f[3]} o{f[5]}", fontsize=7)
        ax.axis("off")
    fig.suptitle(f"procedural shapes3d, 25 random images (seed {a.seed})", fontsize=9)
    fig.tight_layout()
    with atomic_path(a.out) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    print(a.out)


if __name__ == "__main__":
    main()
