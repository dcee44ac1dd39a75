"""Safetensors weights files: header parsing, reading, atomic writing, and their sha256.

The run-dir layout (which file is which) lives in :mod:`varstruct.runs.layout`; loading a model
from the weights in :mod:`varstruct.models.load`. Only safetensors is ever read: nothing is
unpickled or executed.

A weights file's sha256 is *recorded* in one of two places (:func:`expected_sha256`): a
``<name>.sha256`` sidecar beside it (``sha256sum`` format), or the ``weights_sha256`` column of
its run's row in the nearest ``manifest.csv`` above the run dir (written by
:mod:`varstruct.study.manifest`; :data:`MANIFEST` and :data:`MANIFEST_COLUMNS` are its contract).

Importing this module does not import torch: :func:`header` and the hashes are torch-free, and
:func:`read_weights` / :func:`write_weights` import torch's safetensors binding on first use.
"""
from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from ..errors import RunDirError, first_line

MANIFEST = "manifest.csv"
#: the manifest columns a run's weights are checked with (the manifest has more)
MANIFEST_COLUMNS = ("path", "weights_sha256")
SHA_SUFFIX = ".sha256"
#: safetensors dtype codes of the float tensors -> their names
FLOAT_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64"}
_MAX_HEADER = 100_000_000


def header(path: str | os.PathLike) -> dict:
    """The JSON header of a safetensors file: ``{name: {"dtype", "shape", "data_offsets"}, ...}``
    plus an optional ``"__metadata__"``, after checking that the file is long enough for it and
    for every tensor it lists. RunDirError ("corrupt weights file") for a file shorter than the
    8-byte length prefix, a header length beyond the file (or over 100 MB), a header that is not
    JSON, or tensor data past the end of the file. Reads the header only."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ValueError("shorter than a safetensors header")
            (n,) = struct.unpack("<Q", head)
            if n > min(size - 8, _MAX_HEADER):
                raise ValueError("header length beyond the file")
            hdr = json.loads(f.read(n))
        ends = [v["data_offsets"][1] for k, v in hdr.items() if k != "__metadata__"]
        if 8 + n + max(ends, default=0) > size:
            raise ValueError("truncated")
        return hdr
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError, UnicodeDecodeError) as e:
        raise RunDirError(f"{path}: corrupt weights file ({first_line(e)})") from None


def header_ok(path: str | os.PathLike) -> bool:
    """True iff :func:`header` reads the file without an error."""
    try:
        header(path)
        return True
    except RunDirError:
        return False


def float_dtypes(path: str | os.PathLike) -> str:
    """The float dtype(s) of a safetensors file from its header, sorted and joined with "+"
    (e.g. "float16", "float16+float32"); "" without float tensors."""
    hdr = header(path)
    found = {FLOAT_DTYPES[v["dtype"]] for k, v in hdr.items() if k != "__metadata__" and v["dtype"] in FLOAT_DTYPES}
    return "+".join(sorted(found))


def read_weights(path: str | os.PathLike) -> dict:
    """A safetensors file as a dict of torch tensors; RunDirError if missing or corrupt."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"{path.parent}: no {path.name} (training unfinished? finish it with "
                          f"`varstruct train --resume --out {path.parent}`)")
    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise RunDirError(f"{path}: corrupt weights file ({first_line(e)})") from None


def file_sha256(path) -> str:
    """The sha256 hex digest of a file's bytes."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_sha256(path) -> Path:
    """Write ``<path>.sha256`` beside a weights file (``sha256sum`` format: digest, two spaces, name)."""
    from ..io import write_text

    path = Path(path)
    return write_text(path.with_name(path.name + SHA_SUFFIX), f"{file_sha256(path)}  {path.name}\n")


def expected_sha256(path) -> tuple[str, str] | None:
    """(digest, where it is recorded) for a weights file: its ``<name>.sha256`` sidecar, else the
    ``weights_sha256`` column of the row of the nearest ``manifest.csv`` above it whose ``path``
    is the run dir (relative to the manifest's folder); None when neither exists.

    A record that exists but cannot be trusted is a RunDirError (one line), never "unchecked":
    a sidecar or manifest that is a link, a folder or another non-regular file, unreadable, or
    malformed (no ``path`` / ``weights_sha256`` columns, a digest that is not 64 hex digits); a
    manifest that does not list the run, lists it twice, or lists it without a digest."""
    path = Path(path)
    side = path.with_name(path.name + SHA_SUFFIX)
    if side.exists() or side.is_symlink():
        _regular(side, "sha256 file")
        try:
            digest = side.read_text().split()[0].lower()
        except (OSError, UnicodeDecodeError, IndexError):
            raise RunDirError(f"{side}: unreadable sha256 file (expected '<hex digest>  {path.name}')") from None
        return _digest(digest, side), str(side)
    run = path.parent.resolve()
    for folder in run.parents:
        manifest = folder / MANIFEST
        if manifest.exists() or manifest.is_symlink():
            return _manifest_digest(manifest, run.relative_to(folder).as_posix()), str(manifest)
    return None


def _regular(p: Path, what: str) -> None:
    if p.is_symlink():
        raise RunDirError(f"{p}: the {what} is a symbolic link; it must be a regular file")
    if not p.is_file():
        raise RunDirError(f"{p}: the {what} is not a regular file")


def _digest(text: str, where) -> str:
    d = text.strip().lower()
    if len(d) != 64 or any(ch not in "0123456789abcdef" for ch in d):
        raise RunDirError(f"{where}: malformed sha256 {text[:70]!r} (expected 64 hex digits)")
    return d


def _manifest_digest(manifest: Path, rel: str) -> str:
    """The weights_sha256 that ``manifest`` records for the run dir ``rel`` (see expected_sha256)."""
    import csv

    _regular(manifest, "manifest")
    try:
        with open(manifest, newline="") as f:
            reader = csv.DictReader(f)
            if not set(MANIFEST_COLUMNS) <= set(reader.fieldnames or ()):
                raise RunDirError(f"{manifest}: not a varstruct manifest (no path and weights_sha256 columns)")
            rows = [row for row in reader if row.get("path") == rel]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise RunDirError(f"{manifest}: unreadable manifest ({first_line(e)})") from None
    if not rows:
        raise RunDirError(f"{manifest}: does not list {rel}, so its weights cannot be checked (a run under a "
                          f"manifest must be listed: rebuild it with `python -m varstruct.study.manifest "
                          f"{manifest.parent}`)")
    if len(rows) > 1:
        raise RunDirError(f"{manifest}: lists {rel} {len(rows)} times")
    digest = rows[0].get("weights_sha256") or ""
    if not digest.strip():
        raise RunDirError(f"{manifest}: lists {rel} without a weights_sha256")
    return _digest(digest, f"{manifest} (row {rel})")


def verify_sha256(path) -> None:
    """RunDirError (one line) if the weights file's sha256 differs from the one recorded for it."""
    rec = expected_sha256(path)
    if rec is not None and file_sha256(path) != rec[0]:
        raise RunDirError(f"{path}: sha256 mismatch with {rec[1]} (the weights file was changed or replaced; "
                          f"restore it or re-run the manifest)")


def write_weights(path, tensors: dict, metadata: dict | None = None) -> Path:
    """Atomically write a dict of torch tensors (detached, made contiguous, moved to the CPU) to a
    safetensors file; ``metadata``: str -> str pairs stored in its header, in sorted key order
    (safetensors writes them in a hash map's order, which varies between processes: the same
    weights would give files that differ in bytes and in sha256)."""
    from safetensors.torch import save

    from ..io import write_bytes

    data = save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=metadata)
    return write_bytes(path, _canonical_metadata(data) if metadata else data)


def _canonical_metadata(data: bytes) -> bytes:
    """The safetensors bytes with the header's ``__metadata__`` keys sorted; the header keeps its
    length (the same JSON, reordered, space-padded as before), so the data offsets stand."""
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n].rstrip(b" "))
    meta = header.pop("__metadata__", None)
    if meta is None:
        return data
    text = json.dumps({"__metadata__": dict(sorted(meta.items())), **header}, separators=(",", ":")).encode()
    if len(text) > n:  # not the compact form safetensors writes: leave the file as it is
        return data
    return data[:8] + text + b" " * (n - len(text)) + data[8 + n:]

