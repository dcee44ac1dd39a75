"""CRC-32C (Castagnoli), as TensorFlow and leveldb check their files, in numpy.

CRC-32C: the reflected CRC with polynomial 0x82F63B78, initial register 0xFFFFFFFF and final
xor 0xFFFFFFFF (``crc32c(b"123456789") == 0xE3069283``). TensorFlow stores it *masked*:
``mask(c) = (rotate_right(c, 15) + 0xA282EAD8) mod 2**32``.

Speed without a C extension: the register update r -> T[(r ^ byte) & 0xFF] ^ (r >> 8) is linear
over GF(2), so the data (front-padded with zeros, which leave a zero register unchanged) is cut
into K equal chunks whose zero-start CRCs run side by side as one numpy array, and are then
chained: r <- Z_L(r) ^ c_k, Z_L the 32x32 GF(2) map of L zero bytes (applied through four
256-entry tables). The initial register enters as Z_n(0xFFFFFFFF) for the n data bytes.
About 20 ms for the 3 MB of a disentanglement_lib model.
"""
from __future__ import annotations

import numpy as np

POLY = 0x82F63B78
MASK_DELTA = 0xA282EAD8


def _table() -> np.ndarray:
    t = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        t = np.where(t & 1, (t >> np.uint32(1)) ^ np.uint32(POLY), t >> np.uint32(1)).astype(np.uint32)
    return t


TABLE = _table()
_TABLE_LIST = [int(v) for v in TABLE]


def _zeros_op(n: int) -> list[int]:
    """The GF(2) matrix (32 columns: images of the unit vectors) of feeding n zero bytes."""
    def apply(mat, v):
        out, i = 0, 0
        while v:
            if v & 1:
                out ^= mat[i]
            v >>= 1
            i += 1
        return out

    one = [0] * 32  # one zero *bit*: r -> (r >> 1) ^ (POLY if r & 1)
    one[0] = POLY
    for i in range(1, 32):
        one[i] = 1 << (i - 1)
    result = [1 << i for i in range(32)]  # identity
    power, bits = one, 8 * n
    while bits:
        if bits & 1:
            result = [apply(power, c) for c in result]
        bits >>= 1
        if bits:
            power = [apply(power, c) for c in power]
    return result


def _byte_tables(mat: list[int]) -> list[list[int]]:
    """Four 256-entry tables: mat applied to each byte of a 32-bit value."""
    tables = []
    for b in range(4):
        cols = mat[8 * b: 8 * b + 8]
        tab = [0] * 256
        for v in range(1, 256):
            low = v & -v
            tab[v] = tab[v ^ low] ^ cols[low.bit_length() - 1]
        tables.append(tab)
    return tables


def _crc_small(data: bytes, reg: int) -> int:
    t = _TABLE_LIST
    for b in data:
        reg = t[(reg ^ b) & 0xFF] ^ (reg >> 8)
    return reg


_CHUNK = 1024
_ZL = _byte_tables(_zeros_op(_CHUNK))


def crc32c(data) -> int:
    """CRC-32C of a bytes-like object (unmasked)."""
    buf = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    n = buf.size
    if n < 4 * _CHUNK:
        return _crc_small(buf.tobytes(), 0xFFFFFFFF) ^ 0xFFFFFFFF
    k = -(-n // _CHUNK)
    padded = np.zeros(k * _CHUNK, np.uint8)
    padded[k * _CHUNK - n:] = buf
    cols = padded.reshape(k, _CHUNK).T  # [L, K]: byte j of every chunk
    reg = np.zeros(k, np.uint32)
    mask = np.uint32(0xFF)
    for j in range(_CHUNK):
        reg = TABLE[(reg ^ cols[j]) & mask] ^ (reg >> np.uint32(8))
    t0, t1, t2, t3 = _ZL
    r = 0
    for c in reg.tolist():
        r = t0[r & 0xFF] ^ t1[(r >> 8) & 0xFF] ^ t2[(r >> 16) & 0xFF] ^ t3[r >> 24] ^ c
    init = _byte_tables(_zeros_op(n))
    r ^= init[0][0xFF] ^ init[1][0xFF] ^ init[2][0xFF] ^ init[3][0xFF]
    return r ^ 0xFFFFFFFF


def mask(crc: int) -> int:
    """TensorFlow's / leveldb's masked CRC."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + MASK_DELTA) & 0xFFFFFFFF


def masked_crc32c(data) -> int:
    return mask(crc32c(data))
