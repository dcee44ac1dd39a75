"""Memory estimates of requests, checked before any work (torch-free).

Each ``*_bytes`` function is a deliberately generous upper estimate of the peak memory a
request needs, from its sizes only; :func:`require` refuses a request whose estimate exceeds
the memory available now with one line naming the option and the estimate. The estimates
guard against requests that cannot possibly fit (a typo's extra zeros), not tight fits.
"""
from __future__ import annotations

import os

from . import catalog
from .errors import ResourceError

F32, F64 = 4, 8


def available_memory() -> int:
    """Bytes of memory available to a new allocation now (psutil's ``available``)."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # pragma: no cover - no psutil: read /proc/meminfo
        try:
            with open("/proc/meminfo") as f:
                info = dict(line.split(":", 1) for line in f)
            return int(info["MemAvailable"].split()[0]) * 1024
        except (OSError, KeyError, ValueError):
            return 2 ** 62


def cpu_count() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def fmt_bytes(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n / 1e3:.3g} kB"


def require(option: str, nbytes: float, what: str = "", param: str | None = None) -> None:
    """ResourceError (with ``param``) unless ``nbytes`` fit in the available memory; the message
    starts with ``option``, the input that sets the size."""
    avail = available_memory()
    if nbytes > avail:
        what = f" ({what})" if what else ""
        raise ResourceError(f"{option}: the request needs about {fmt_bytes(nbytes)} of memory{what}, "
                            f"{fmt_bytes(avail)} available; use a smaller value", param=param)


def n_pixels(image_shape) -> int:
    h, w, c = (int(v) for v in image_shape)
    return h * w * c


def model_params(config: dict) -> int:
    """Number of parameters of the network a (resolved) config describes (see models/nets.py)."""
    shape = config.get("image_shape") or [64, 64, 1]
    D, C = n_pixels(shape), int(shape[2])
    L = int(config.get("latent_dim") or 1)
    if config.get("arch", "conv") == "conv":
        enc = 32 * C * 16 + 32 * 32 * 16 + 64 * 32 * 4 + 64 * 64 * 4 + 1024 * 256 + 2 * 256 * L
        dec = L * 256 + 256 * 1024 + 64 * 64 * 16 + 64 * 32 * 16 + 32 * 32 * 16 + 32 * C * 16
        return enc + dec + 4 * 1024 + 2 * L
    hidden = [int(h) for h in (config.get("hidden") or catalog.DEFAULT_HIDDEN)]
    sizes = [D, *hidden]
    body = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return 2 * body + 3 * hidden[-1] * L + 2 * sum(hidden) + D + 3 * L


def _activations(config: dict) -> int:
    """Floats of activations per image in one forward pass."""
    D = n_pixels(config.get("image_shape") or [64, 64, 1])
    if config.get("arch", "conv") == "conv":
        return 2 * (32 * 32 * 32 + 32 * 16 * 16 + 64 * 8 * 8 + 64 * 4 * 4 + 1024 + 256) + 2 * D
    return 2 * sum(int(h) for h in (config.get("hidden") or catalog.DEFAULT_HIDDEN)) + 2 * D


def model_bytes(config: dict) -> int:
    """Weights of a model in memory (float32)."""
    return F32 * model_params(config)


def train_bytes(config: dict, pairs: bool = False) -> int:
    """Training: weights, gradients and two Adam moments (4 copies), plus per image of the batch
    its float64 rendering, float32 input and activations with their gradients (x 3), twice
    (the prefetched next batch)."""
    D = n_pixels(config.get("image_shape") or [64, 64, 1])
    B = int(config.get("batch_size") or 64) * (2 if pairs else 1)
    per_image = 2 * (F64 * D + F32 * D) + 3 * F32 * _activations(config)
    return 4 * model_bytes(config) + B * per_image


def encode_bytes(config: dict, n_points: int, chunk: int = 1024) -> int:
    """Encoding ``n_points`` images in chunks: the model, one chunk of images and activations,
    and float64 codes and factors of every point, with room for the metrics' work (x 8)."""
    D = n_pixels(config.get("image_shape") or [64, 64, 1])
    L = int(config.get("latent_dim") or 1)
    K = int(config.get("n_factors") or 8)
    per_chunk = min(chunk, n_points) * (F64 * D + F32 * D + F32 * _activations(config))
    return model_bytes(config) + per_chunk + 8 * F64 * n_points * (L + K)


def measure_dataset_bytes(n_anchors: int, n_factors: int, max_size: int, n_pixels_: int, n_pca_anchors: int,
                          n_ordered: int) -> int:
    """measure_dataset: per-anchor arrays [A, K] and [A, K, K] (float64), one anchor's traversal
    images (4 x max factor size x D, float64) and one local-PCA neighbourhood (3^K_o x D, x 3)."""
    A, K, D = int(n_anchors), int(n_factors), int(n_pixels_)
    per_anchor = F64 * (16 * K + 2 * K * K)
    work = F64 * 4 * int(max_size) * D
    if n_pca_anchors and n_ordered:
        work = max(work, 3 * F64 * (3 ** min(int(n_ordered), 40)) * D)
    return A * per_anchor + work


def measure_model_bytes(config: dict, n_anchors: int, n_factors: int, max_size: int) -> int:
    """measure_model: per-anchor responses [A, K, L] (several, float64) plus one anchor's
    traversal images through the model."""
    L = int(config.get("latent_dim") or 1)
    D = n_pixels(config.get("image_shape") or [64, 64, 1])
    per_anchor = 16 * F64 * int(n_factors) * (L + 4)
    work = max(1024, int(max_size)) * (F64 * D + 2 * F32 * (D + _activations(config)))
    return model_bytes(config) + int(n_anchors) * per_anchor + work


def check_train_memory(record: dict, pairs: bool | None = None) -> None:
    """ResourceError naming the option if the model (with a method's own discriminator, as
    FactorVAE's) or a batch cannot fit; ``record`` needs image_shape, arch, hidden, latent_dim,
    batch_size, method. ``pairs`` (a batch holds pairs): None takes it from the catalog."""
    L = int(record["latent_dim"])
    m = catalog.METHODS.get(record.get("method"))
    if pairs is None:
        pairs = bool(m and m.pairs)
    extra = 16 * F32 * (5_000_000 + 1000 * L) if m and m.discriminator else 0
    require("latent_dim", 4 * model_bytes(record) + extra, "weights, gradients, Adam state of a network "
            f"with {record['latent_dim']} latents and hidden {record.get('hidden')}", param="latent_dim")
    require("batch_size", train_bytes(record, pairs) + extra, f"batches of {record['batch_size']}",
            param="batch_size")
