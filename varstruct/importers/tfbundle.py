"""TensorFlow's checkpoint (tensor bundle) format, read with numpy alone.

A bundle ``PREFIX`` is ``PREFIX.index`` plus data shards ``PREFIX.data-SSSSS-of-NNNNN``.

**The index** is a leveldb-format table (an SSTable): data blocks, a metaindex block, an index
block and a 48-byte footer (metaindex handle, index handle as varint (offset, size) pairs,
zero padding to 40 bytes, the little-endian magic 0xdb4775248b80fb57). Every block is followed
by a 1-byte compression type (0: none; TF writes bundles uncompressed, snappy (1) is refused)
and the masked CRC-32C of block + type byte. A block is a run of entries (varint shared key
length, varint unshared length, varint value length, the unshared key bytes, the value) closed
by a uint32 restart array and its uint32 count. The index block maps each data block's last key
to the block's handle.

**Entries**: key "" holds a ``BundleHeaderProto`` (num_shards = 1, endianness = 2 (0: little),
version = 3); every other key is a tensor name with a ``BundleEntryProto`` (dtype = 1,
shape = 2 (a TensorShapeProto: repeated dim = 2, each with size = 1), shard_id = 3,
offset = 4, size = 5, crc32c = 6 (fixed32, masked), slices = 7). These protobufs are parsed
from their wire format here (varint, fixed64, length-delimited and fixed32 fields; unknown
fields skipped).

**Data**: ``size`` raw little-endian bytes at ``offset`` of shard ``shard_id``; checked against
dtype x shape and the masked CRC-32C. Partitioned (sliced) tensors and strings are refused.
Every problem raises :class:`varstruct.errors.VarstructError` (``BundleError``) with one line.
"""
from __future__ import annotations

import struct
from collections.abc import Callable

import numpy as np

from ..errors import VarstructError
from .crc32c import masked_crc32c

MAGIC = 0xDB4775248B80FB57
FOOTER = 48
# TensorFlow DataType enum -> numpy little-endian dtype
DTYPES = {1: "<f4", 2: "<f8", 3: "<i4", 4: "u1", 5: "<i2", 6: "i1", 9: "<i8", 10: "?", 17: "<u2",
          19: "<f2", 22: "<u4", 23: "<u8"}
DTYPE_NAMES = {7: "string", 14: "bfloat16", 8: "complex64", 18: "complex128", 20: "resource", 21: "variant"}


class BundleError(VarstructError):
    """A tensor bundle that is missing, truncated, corrupt or not supported."""


# ---------------------------------------------------------------- protobuf wire format
def _varint(buf: bytes, pos: int, what: str) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise BundleError(f"{what}: truncated or bad varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def parse_message(buf: bytes, what: str) -> dict[int, list]:
    """Field number -> list of values (ints for varint/fixed fields, bytes for length-delimited)."""
    out: dict[int, list] = {}
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos, what)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, pos = _varint(buf, pos, what)
        elif wire == 1:
            if pos + 8 > len(buf):
                raise BundleError(f"{what}: truncated protobuf")
            v, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos, what)
            if pos + n > len(buf):
                raise BundleError(f"{what}: truncated protobuf")
            v, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            if pos + 4 > len(buf):
                raise BundleError(f"{what}: truncated protobuf")
            v, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        else:
            raise BundleError(f"{what}: unsupported protobuf wire type {wire}")
        out.setdefault(field, []).append(v)
    return out


def _one(msg: dict, field: int, default=0):
    vals = msg.get(field)
    return vals[-1] if vals else default


# ---------------------------------------------------------------- leveldb table
def _block(data: bytes, handle: tuple[int, int], what: str) -> bytes:
    off, size = handle
    if off + size + 5 > len(data):
        raise BundleError(f"{what}: truncated (a block runs past the end of the file)")
    body, kind = data[off:off + size], data[off + size]
    (crc,) = struct.unpack_from("<I", data, off + size + 1)
    if masked_crc32c(data[off:off + size + 1]) != crc:
        raise BundleError(f"{what}: block checksum mismatch (corrupt file)")
    if kind == 1:
        raise BundleError(f"{what}: snappy-compressed blocks are not supported")
    if kind != 0:
        raise BundleError(f"{what}: unknown block compression {kind}")
    return body


def _entries(block: bytes, what: str):
    """(key, value) pairs of one block."""
    if len(block) < 4:
        raise BundleError(f"{what}: block too short")
    (n_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    end = len(block) - 4 - 4 * n_restarts
    if end < 0:
        raise BundleError(f"{what}: bad block restart count")
    pos, key = 0, b""
    while pos < end:
        shared, pos = _varint(block, pos, what)
        unshared, pos = _varint(block, pos, what)
        vlen, pos = _varint(block, pos, what)
        if shared > len(key) or pos + unshared + vlen > end:
            raise BundleError(f"{what}: corrupt block entry")
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        yield key, block[pos:pos + vlen]
        pos += vlen


def _handle(buf: bytes, pos: int, what: str) -> tuple[tuple[int, int], int]:
    off, pos = _varint(buf, pos, what)
    size, pos = _varint(buf, pos, what)
    return (off, size), pos


def read_table(data: bytes, what: str = "index") -> dict[bytes, bytes]:
    """Every key -> value of a leveldb-format table (the bytes of the whole file)."""
    if len(data) < FOOTER:
        raise BundleError(f"{what}: truncated (shorter than a table footer)")
    footer = data[-FOOTER:]
    (magic,) = struct.unpack_from("<Q", footer, 40)
    if magic != MAGIC:
        raise BundleError(f"{what}: not a TensorFlow checkpoint index (bad magic number)")
    _, pos = _handle(footer, 0, what)  # metaindex: unused by bundles
    index_handle, _ = _handle(footer, pos, what)
    out: dict[bytes, bytes] = {}
    for _, value in _entries(_block(data, index_handle, what), what):
        handle, _ = _handle(value, 0, what)
        for k, v in _entries(_block(data, handle, what), what):
            out[k] = v
    return out


# ---------------------------------------------------------------- bundle
def shard_name(prefix: str, shard: int, num_shards: int) -> str:
    return f"{prefix}.data-{shard:05d}-of-{num_shards:05d}"


def read_index(data: bytes, what: str = "index") -> tuple[dict, dict[str, dict]]:
    """(header {num_shards, endianness}, {name: {dtype, shape, shard_id, offset, size, crc32c}})."""
    table = read_table(data, what)
    if b"" not in table:
        raise BundleError(f"{what}: no bundle header entry")
    h = parse_message(table.pop(b""), what)
    header = {"num_shards": _one(h, 1, 1), "endianness": _one(h, 2, 0)}
    if header["endianness"] != 0:
        raise BundleError(f"{what}: big-endian bundles are not supported")
    entries = {}
    for key, value in table.items():
        name = key.decode("utf-8", "replace")
        m = parse_message(value, f"{what} entry {name}")
        if m.get(7):
            raise BundleError(f"{what}: tensor {name} is partitioned (sliced); not supported")
        shape_msg = parse_message(_one(m, 2, b""), f"{what} entry {name}")
        shape = tuple(_signed(_one(parse_message(d, what), 1, 0)) for d in shape_msg.get(2, []))
        entries[name] = {"dtype": _one(m, 1), "shape": shape, "shard_id": _one(m, 3),
                         "offset": _signed(_one(m, 4)), "size": _signed(_one(m, 5)),
                         "crc32c": m.get(6, [None])[-1]}
    return header, entries


def read_bundle(index: bytes, read_shard: Callable[[int, int], bytes], what: str = "checkpoint",
                names=None) -> dict[str, np.ndarray]:
    """The tensors of a bundle as numpy arrays (native byte order, owning their memory).

    index: the bytes of ``PREFIX.index``; read_shard(shard_id, num_shards) -> the bytes of that
    data shard (raising BundleError if it is missing). names: only these tensors (default all).
    """
    header, entries = read_index(index, f"{what} index")
    shards: dict[int, bytes] = {}
    out = {}
    for name, e in sorted(entries.items()):
        if names is not None and name not in names:
            continue
        dt = DTYPES.get(e["dtype"])
        if dt is None:
            kind = DTYPE_NAMES.get(e["dtype"], f"dtype {e['dtype']}")
            raise BundleError(f"{what}: tensor {name} has unsupported type {kind}")
        if any(d < 0 for d in e["shape"]):
            raise BundleError(f"{what}: tensor {name} has an unknown shape")
        count = int(np.prod(e["shape"], dtype=np.int64))
        nbytes = count * np.dtype(dt).itemsize
        if e["size"] != nbytes:
            raise BundleError(f"{what}: tensor {name} has {e['size']} bytes, its shape {list(e['shape'])} "
                              f"needs {nbytes}")
        sid = e["shard_id"]
        if not 0 <= sid < header["num_shards"]:
            raise BundleError(f"{what}: tensor {name} names shard {sid} of {header['num_shards']}")
        if sid not in shards:
            shards[sid] = read_shard(sid, header["num_shards"])
        data = shards[sid]
        off = e["offset"]
        if off < 0 or off + nbytes > len(data):
            raise BundleError(f"{what}: data shard {sid} is truncated (tensor {name} runs past its end)")
        raw = data[off:off + nbytes]
        if e["crc32c"] is None or masked_crc32c(raw) != e["crc32c"]:
            raise BundleError(f"{what}: tensor {name} fails its CRC check (corrupt data shard)")
        out[name] = np.frombuffer(raw, dtype=dt).reshape(e["shape"]).astype(np.dtype(dt).newbyteorder("="))
    if names is not None:
        missing = sorted(set(names) - set(out))
        if missing:
            raise BundleError(f"{what}: no tensor {missing[0]}")
    return out
