"""The low-level pieces of :mod:`varstruct.metrics._gbt` that copy another library's arithmetic
exactly, compiled with numba: scikit-learn's xorshift draws (``utils/_random.pxd``) and its
introsort with 3-way partition (``utils/_sorting.pyx``), so that ties keep scikit-learn's order,
and numpy's pairwise summation (``pairwise_sum``), so that leaf sums round as numpy's do.
"""
from __future__ import annotations

import numpy as np
from numba import njit

RAND_R_MAX = 2147483647
_JIT = dict(cache=True, nogil=True)


# ---- scikit-learn's random draws (utils/_random.pxd) --------------------------------------------
@njit(**_JIT)
def _rand_int(low, high, state):
    """low + our_rand_r(state) % (high - low); state: int64 [1] holding a uint32."""
    s = state[0]
    if s == 0:
        s = 1
    s ^= (s << 13) & 0xFFFFFFFF
    s ^= s >> 17
    s ^= (s << 5) & 0xFFFFFFFF
    state[0] = s
    return low + (s % (RAND_R_MAX + 1)) % (high - low)


# ---- scikit-learn's introsort with 3-way partition (utils/_sorting.pyx) -------------------------
@njit(**_JIT)
def _swap(v, ix, i, j):
    v[i], v[j] = v[j], v[i]
    ix[i], ix[j] = ix[j], ix[i]


@njit(**_JIT)
def _median3(v, o, n):
    a, b, c = v[o], v[o + n // 2], v[o + n - 1]
    if a < b:
        if b < c:
            return b
        elif a < c:
            return c
        return a
    elif b < c:
        if a < c:
            return a
        return c
    return b


@njit(**_JIT)
def _insertion_sort(v, ix, o, n):
    for i in range(1, n):
        tv, ti = v[o + i], ix[o + i]
        j = i
        while j > 0 and v[o + j - 1] > tv:
            v[o + j] = v[o + j - 1]
            ix[o + j] = ix[o + j - 1]
            j -= 1
        v[o + j] = tv
        ix[o + j] = ti


@njit(**_JIT)
def _sift_down(v, ix, o, start, end):
    root = start
    while True:
        child = root * 2 + 1
        maxind = root
        if child < end and v[o + maxind] < v[o + child]:
            maxind = child
        if child + 1 < end and v[o + maxind] < v[o + child + 1]:
            maxind = child + 1
        if maxind == root:
            break
        _swap(v, ix, o + root, o + maxind)
        root = maxind


@njit(**_JIT)
def _heapsort(v, ix, o, n):
    start = (n - 2) // 2
    end = n
    while True:
        _sift_down(v, ix, o, start, end)
        if start == 0:
            break
        start -= 1
    end = n - 1
    while end > 0:
        _swap(v, ix, o, o + end)
        _sift_down(v, ix, o, 0, end)
        end -= 1


@njit(**_JIT)
def _sort_ties(v, ix, o0, n0, stack, tied):
    """scikit-learn's ``simultaneous_sort(v[o0:o0+n0], ix[...], use_three_way_partition=True)``
    (the recursion on disjoint parts runs from an explicit stack: same result), followed only
    into the parts that hold tied samples (``tied[ix[p]]`` = 1: samples whose value equals
    another one's), the same steps in the same order there. With every sample tied it is the
    whole introsort.

    The introsort sorts disjoint parts independently, and a part without equal values has one
    sorted order; so on return, the parts that held tied samples are exactly as the whole
    introsort leaves them and the others are partitioned but unsorted: the caller fills them in
    from a presort.
    Equal values always land in the same part, so a part holds either all of a tie group or
    none of it. Cost ~ n times the number of levels that still hold ties, not n log n."""
    if n0 == 0:
        return
    top = 0
    stack[0, 0], stack[0, 1], stack[0, 2] = o0, n0, 2 * int(np.log2(n0))
    top = 1
    while top > 0:
        top -= 1
        o, n, maxd = stack[top, 0], stack[top, 1], stack[top, 2]
        done = False
        while n > 15:
            if maxd <= 0:
                _heapsort(v, ix, o, n)
                done = True
                break
            maxd -= 1
            pivot = _median3(v, o, n)
            i = 0
            lo = 0
            r = n
            lt_tied = 0
            gt_tied = 0
            while i < r:
                if v[o + i] < pivot:
                    lt_tied += tied[ix[o + i]]
                    _swap(v, ix, o + i, o + lo)
                    i += 1
                    lo += 1
                elif v[o + i] > pivot:
                    r -= 1
                    _swap(v, ix, o + i, o + r)
                    gt_tied += tied[ix[o + r]]
                else:
                    i += 1
            if lt_tied > 0:
                stack[top, 0], stack[top, 1], stack[top, 2] = o, lo, maxd
                top += 1
            if gt_tied == 0:
                done = True
                break
            o += r
            n -= r
        if not done:
            _insertion_sort(v, ix, o, n)


@njit(**_JIT)
def _block_sum(a, lo, n):
    """numpy's pairwise_sum for n <= 128 (8 accumulators, then the rest in order)."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - (n % 8):
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(**_JIT)
def _pairwise_sum(a, lo, n):
    """numpy's pairwise summation of a[lo:lo+n] (what ``ndarray.sum`` computes, bit for bit):
    blocks of <= 128, halves split at a multiple of 8, left + right; the recursion runs on an
    explicit stack (numba cannot cache recursive functions)."""
    if n <= 128:
        return _block_sum(a, lo, n)
    f_lo = np.empty(64, dtype=np.int64)
    f_n = np.empty(64, dtype=np.int64)
    f_ph = np.zeros(64, dtype=np.int64)      # 0: new, 1: left pending, 2: right pending
    f_left = np.empty(64)
    f_lo[0], f_n[0], f_ph[0] = lo, n, 0
    sp = 1
    ret = 0.0
    while sp > 0:
        t = sp - 1
        if f_ph[t] == 0:
            if f_n[t] <= 128:
                ret = _block_sum(a, f_lo[t], f_n[t])
                sp -= 1
                # hand ret to the waiting parents
                while sp > 0:
                    q = sp - 1
                    if f_ph[q] == 1:
                        f_left[q] = ret
                        f_ph[q] = 2
                        n2 = f_n[q] // 2
                        n2 -= n2 % 8
                        f_lo[sp], f_n[sp], f_ph[sp] = f_lo[q] + n2, f_n[q] - n2, 0
                        sp += 1
                        break
                    ret = f_left[q] + ret
                    sp -= 1
            else:
                f_ph[t] = 1
                n2 = f_n[t] // 2
                n2 -= n2 % 8
                f_lo[sp], f_n[sp], f_ph[sp] = f_lo[t], n2, 0
                sp += 1
    return ret
