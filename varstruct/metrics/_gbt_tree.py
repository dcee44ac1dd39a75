"""One depth-3 regression tree of scikit-learn's gradient boosting (``tree/_tree.pyx``
``DepthFirstTreeBuilder``, ``_splitter.pyx`` ``node_split_best``, ``_partitioner.pyx``,
``_criterion.pyx`` ``MSE``), compiled with numba: the same nodes bit for bit, ties included.
What it replays is listed in :mod:`varstruct.metrics._gbt`.

How it gets there with less work than scikit-learn (none of this changes a bit of the result):

- every code's samples are presorted once per fit and kept sorted in every node (partitioned
  stably at each split, with their values and targets), so a node's sort by a code whose values
  in the node are all different is a copy (there is one sorted order) and the split scan reads
  contiguous arrays;
- where a node holds equal values of a code (scikit-learn's order among them depends on its
  introsort), the introsort runs from scikit-learn's current sample order but is followed only
  into the parts that hold equal values (the other parts have one sorted order, taken from the
  presort): ~n times a few levels instead of n log n;
- at the root every tree starts from the same samples, so the root's sort by a code from a given
  order (the identity, or the order the previously visited code left) is remembered, as "state
  after code f from state s", where a state is a code plus the order of its equal values.

The introsort, the random draws and numpy's pairwise sums are in :mod:`._gbt_kernels`.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

from ._gbt_kernels import _rand_int, _sort_ties

EPSILON = np.finfo(np.float64).eps
FEATURE_THRESHOLD = np.float32(1e-7)
MAX_DEPTH = 3
MEMO_STATES = 4096                       # root orders remembered per thread ...
MEMO_TIES = 64                           # ... for codes with at most 64 tied values
_JIT = dict(cache=True, nogil=True)

# The arrays one tree works on, grouped (numba passes a namedtuple of arrays like its arrays).
# Sorted: per code f, the node's samples in sorted order (rows of [L, N]): their indices ``idx``
# (int32), values ``val`` (float32) and targets ``y`` (float64); each node owns [start, end).
Sorted = namedtuple("Sorted", "idx val y")
# Scratch [N]: ``samples`` (int64: scikit-learn's sample order where it matters), ``fvals``
# (float32) / ``yvals`` (float64) the values and targets in that order, ``mark`` / ``tied``
# (uint8 flags, zero between uses), ``tmp_i`` / ``tmp_f`` / ``tmp_y`` a partition's right part,
# ``stack`` int64 [136, 3] for the introsort.
Scratch = namedtuple("Scratch", "samples fvals yvals mark tied tmp_i tmp_f tmp_y stack")
# The remembered root sorts, shared by the trees of a thread: ``tp_off`` [L + 1] / ``tp_pos``
# the root positions of each code's tied values, ``trans`` int64 [L, L + 1 + MEMO_STATES] the
# state after code f from state s (-1: not known), ``st_feat`` / ``st_off`` / ``sig`` the
# states (a code and the samples at its tied positions), ``st_count`` [1] the states in use.
RootMemo = namedtuple("RootMemo", "tp_off tp_pos trans st_feat st_off sig st_count")
# One fitted tree: per node (scikit-learn's node ids) ``left`` / ``right`` (-1: leaf),
# ``feature`` (-2: leaf), ``threshold`` (-2.0: leaf), ``impurity``, ``n_node``; ``leaf_of`` [N].
Tree = namedtuple("Tree", "left right feature threshold impurity n_node leaf_of")


# ---- one regression tree (tree/_tree.pyx DepthFirstTreeBuilder + node_split_best) ---------------
@njit(**_JIT)
def _update(y, samples, start, end, pos, new_pos, sum_total, wn, sum_left, wl):
    """RegressionCriterion.update: returns (sum_left, weighted_n_left) at new_pos."""
    if (new_pos - pos) <= (end - new_pos):
        for p in range(pos, new_pos):
            sum_left += y[samples[p]]
            wl += 1.0
    else:
        sum_left = sum_total
        wl = wn
        for p in range(end - 1, new_pos - 1, -1):
            sum_left -= y[samples[p]]
            wl -= 1.0
    return sum_left, wl


@njit(**_JIT)
def _scan(fv, yv, start, end, sum_total, wn, best_proxy):
    """Every candidate split of one feature, as node_split_best's loop: fv float32 and yv the
    node's feature values and targets in sorted order over [start, end); positions between
    values more than 1e-7 (float32) apart; the running sum moved forwards or backwards as
    ``RegressionCriterion.update``; proxy ``S_l²/n_l + S_r²/n_r``; strict ``>``.
    Returns (best proxy, its position or -1, its threshold)."""
    sum_left = 0.0
    pos = start
    p = start
    best_pos = -1
    thr = 0.0
    while p < end:
        p += 1
        while p < end and fv[p] <= fv[p - 1] + FEATURE_THRESHOLD:
            p += 1
        if p == end:
            break
        if (p - pos) <= (end - p):
            for q in range(pos, p):
                sum_left += yv[q]
        else:
            sum_left = sum_total
            for q in range(end - 1, p - 1, -1):
                sum_left -= yv[q]
        pos = p
        wl = np.float64(p - start)       # Σ of unit weights: exact
        sum_right = sum_total - sum_left
        proxy = (sum_left * sum_left) / wl + (sum_right * sum_right) / (wn - wl)
        if proxy > best_proxy:
            best_proxy = proxy
            best_pos = p
    if best_pos >= 0:
        thr = np.float64(fv[best_pos - 1]) / 2.0 + np.float64(fv[best_pos]) / 2.0
    return best_proxy, best_pos, thr


@njit(**_JIT)
def _intern(feat, samples, pos, st_feat, st_off, sig, st_count):
    """The state id of the root's order "presort of feat with its tied positions ``pos`` holding
    samples[pos]": an existing one, or a new one while there is room (else -1)."""
    m = len(pos)
    for st in range(st_count[0]):
        if st_feat[st] == feat:
            o = st_off[st]
            same = True
            for q in range(m):
                if sig[o + q] != samples[pos[q]]:
                    same = False
                    break
            if same:
                return st
    st = st_count[0]
    if st >= st_feat.shape[0]:
        return -1
    st_count[0] += 1
    st_feat[st] = feat
    o = st * MEMO_TIES
    st_off[st] = o
    for q in range(m):
        sig[o + q] = samples[pos[q]]
    return st


@njit(**_JIT)
def _node_sums(y, samples, start, end):
    """criterion.init: (Σ y, Σ y², n) over the node's samples in ``samples`` order."""
    sum_total = 0.0
    sq_sum_total = 0.0
    wn = 0.0
    for p in range(start, end):
        yi = y[samples[p]]
        sum_total += yi
        sq_sum_total += yi * yi
        wn += 1.0
    return sum_total, sq_sum_total, wn


@njit(**_JIT)
def _has_equal(sv, start, end):
    """Whether sorted values sv[start:end] hold two equal neighbours."""
    for p in range(start + 1, end):
        if sv[p] == sv[p - 1]:
            return True
    return False


@njit(**_JIT)
def _sort_with_ties(XT, y, feat, start, end, depth, cur, rs, srt, w, memo):
    """The node's sort by code ``feat`` (which has equal values in the node) as scikit-learn's
    introsort leaves it from the current order (``samples``, or ``srt.idx[cur]`` if cur >= 0):
    fills ``w.samples`` / ``w.yvals`` over [start, end). The introsort runs only into the
    parts with tied values (``_sort_ties``); the rest has one sorted order, taken from ``srt``.
    At the root, the result for input state ``rs`` is looked up in / stored to ``memo``.
    Returns the root state after this sort (-1: unknown; unchanged below the root)."""
    samples, yvals, tied = w.samples, w.yvals, w.tied
    si = srt.idx[feat]
    syf = srt.y[feat]
    sv = srt.val[feat]
    lo, hi = memo.tp_off[feat], memo.tp_off[feat + 1]
    nxt = -1
    if depth == 0 and rs >= 0:
        nxt = memo.trans[feat, rs]
    if nxt >= 0:   # the root's sort from this input order is remembered
        for p in range(start, end):
            samples[p] = si[p]
            yvals[p] = syf[p]
        o = memo.st_off[nxt]
        for q in range(lo, hi):
            s = memo.sig[o + q - lo]
            samples[memo.tp_pos[q]] = s
            yvals[memo.tp_pos[q]] = y[s]
        return nxt
    if cur >= 0:
        for p in range(start, end):
            samples[p] = srt.idx[cur, p]
    for p in range(start + 1, end):
        if sv[p] == sv[p - 1]:
            tied[si[p]] = 1
            tied[si[p - 1]] = 1
    xf = XT[feat]
    for p in range(start, end):
        w.fvals[p] = xf[samples[p]]
    _sort_ties(w.fvals, samples, start, end - start, w.stack, tied)
    for p in range(start, end):   # the parts without ties: their one order
        s = si[p]
        if tied[s]:
            tied[s] = 0
            yvals[p] = y[samples[p]]
        else:
            samples[p] = s
            yvals[p] = syf[p]
    if depth == 0:      # remember the root's result (few ties only)
        if rs >= 0 and hi - lo <= MEMO_TIES:
            nxt = _intern(feat, samples, memo.tp_pos[lo:hi], memo.st_feat, memo.st_off, memo.sig,
                          memo.st_count)
            if nxt >= 0:
                memo.trans[feat, rs] = nxt
        rs = nxt
    return rs


@njit(**_JIT)
def _best_split(XT, y, has_dup, start, end, depth, n_known_constants, sum_total, wn,
                features, constant_features, state, srt, w, memo):
    """node_split_best: the codes visited in the order scikit-learn's generator ``state``
    draws them (Fisher-Yates over ``features``; known constants skipped, new ones moved to the
    front), each scanned by :func:`_scan` in its sorted order. Leaves ``w.samples[start:end]``
    in scikit-learn's order after the search and records the constant codes for the children.
    Returns (best_pos, best_feature, best_threshold, n_total_constants); best_pos = end: none."""
    L = XT.shape[0]
    samples = w.samples
    best_pos = end
    best_feature = 0
    best_threshold = 0.0
    n_total_constants = n_known_constants
    cur = -1          # -1: samples[start:end] holds the order; f: it is srt.idx[f, start:end]
    rs = 0            # the root's order: 0 identity, 1 + f presort of f, > L a remembered state
    best_proxy = -np.inf
    f_i = L
    n_visited = 0
    n_found_constants = 0
    n_drawn_constants = 0
    while f_i > n_total_constants and (n_visited < L or
                                       n_visited <= n_found_constants + n_drawn_constants):
        n_visited += 1
        f_j = _rand_int(n_drawn_constants, f_i - n_found_constants, state)
        if f_j < n_known_constants:
            tmp_c = features[n_drawn_constants]
            features[n_drawn_constants] = features[f_j]
            features[f_j] = tmp_c
            n_drawn_constants += 1
            continue
        f_j += n_found_constants
        feat = features[f_j]
        fv = srt.val[feat]   # the node's values in sorted order (whatever order their samples take)
        equal = False
        if has_dup[feat]:
            equal = _has_equal(fv, start, end)
        if equal:            # scikit-learn's introsort from the current order
            rs = _sort_with_ties(XT, y, feat, start, end, depth, cur, rs, srt, w, memo)
            cur = -1
        else:
            cur = feat
            if depth == 0:
                rs = 1 + feat
        if fv[end - 1] <= fv[start] + FEATURE_THRESHOLD:
            features[f_j] = features[n_total_constants]
            features[n_total_constants] = feat
            n_found_constants += 1
            n_total_constants += 1
            continue
        f_i -= 1
        tmp_c = features[f_i]
        features[f_i] = features[f_j]
        features[f_j] = tmp_c
        yv = w.yvals if equal else srt.y[feat]
        proxy, pos, thr = _scan(fv, yv, start, end, sum_total, wn, best_proxy)
        if pos >= 0:
            best_proxy = proxy
            best_pos = pos
            best_feature = feat
            best_threshold = thr
    if cur >= 0:
        for p in range(start, end):
            samples[p] = srt.idx[cur, p]
    for c in range(n_known_constants):
        features[c] = constant_features[c]
    for c in range(n_known_constants, n_total_constants):
        constant_features[c] = features[c]
    return best_pos, best_feature, best_threshold, n_total_constants


@njit(**_JIT)
def _partition_final(xb, samples, start, end, threshold):
    """partition_samples_final: samples with xb <= threshold (as float64) to the left, by
    scikit-learn's swaps."""
    ps, pe = start, end
    while ps < pe:
        if np.float64(xb[samples[ps]]) <= threshold:
            ps += 1
        else:
            pe -= 1
            tmp_s = samples[ps]
            samples[ps] = samples[pe]
            samples[pe] = tmp_s


@njit(**_JIT)
def _children_impurity(y, samples, start, end, pos, sum_total, sq_sum_total, wn, impurity, N):
    """(impurity left, impurity right, weighted impurity improvement) of the split at ``pos``:
    the left sum by ``RegressionCriterion.update`` from start, the children's variances
    Σy²/n − (Σy/n)², improvement (n/N)(imp − n_r/n imp_r − n_l/n imp_l)."""
    sum_left, wl = _update(y, samples, start, end, start, pos, sum_total, wn, 0.0, 0.0)
    wr = wn - wl
    sum_right = sum_total - sum_left
    sq_left = 0.0
    for p in range(start, pos):
        yi = y[samples[p]]
        sq_left += yi * yi
    sq_right = sq_sum_total - sq_left
    imp_left = sq_left / wl - (sum_left / wl) ** 2.0
    imp_right = sq_right / wr - (sum_right / wr) ** 2.0
    improvement = (wn / N) * (impurity - (wr / wn * imp_right) - (wl / wn * imp_left))
    return imp_left, imp_right, improvement


@njit(**_JIT)
def _partition_sorted(srt, w, start, pos, end):
    """Split every code's sorted run [start, end) stably into the left child's samples
    (``w.samples[start:pos]``) then the right child's, values and targets along."""
    samples, mark = w.samples, w.mark
    for p in range(start, pos):
        mark[samples[p]] = 1
    for p in range(pos, end):
        mark[samples[p]] = 0
    for f in range(srt.idx.shape[0]):
        si = srt.idx[f]
        sv = srt.val[f]
        syf = srt.y[f]
        a = start
        b = 0
        for p in range(start, end):
            s = si[p]
            if mark[s]:
                si[a] = s
                sv[a] = sv[p]
                syf[a] = syf[p]
                a += 1
            else:
                w.tmp_i[b] = s
                w.tmp_f[b] = sv[p]
                w.tmp_y[b] = syf[p]
                b += 1
        for q in range(b):
            si[a + q] = w.tmp_i[q]
            sv[a + q] = w.tmp_f[q]
            syf[a + q] = w.tmp_y[q]


@njit(**_JIT)
def _add_node(tree, node_id, parent, is_left, impurity, n_node):
    """Node ``node_id`` (a leaf until a split is set) under ``parent`` (-1: the root)."""
    if parent >= 0:
        if is_left:
            tree.left[parent] = node_id
        else:
            tree.right[parent] = node_id
    tree.impurity[node_id] = impurity
    tree.n_node[node_id] = n_node
    tree.left[node_id] = -1
    tree.right[node_id] = -1
    tree.feature[node_id] = -2
    tree.threshold[node_id] = -2.0


@njit(**_JIT)
def _fit_tree(XT, sidx0, sval0, has_dup, y, seed, srt, w, memo, tree):
    """Fit one tree to y [N] on XT float32 [L, N] (DepthFirstTreeBuilder, left child first);
    fills ``tree`` (node ids in scikit-learn's order) and returns the node count.

    Every code's samples are kept sorted (``srt``: from the presort ``sidx0`` / ``sval0``),
    partitioned stably at each split, so that a node's sort by a code with no equal values in
    the node is a copy (there is one sorted order); with equal values (possible only where
    ``has_dup``) the node's samples are sorted by scikit-learn's introsort from their current
    order, as scikit-learn does. ``w.samples`` holds scikit-learn's sample order where it
    matters (the input of such a sort, the final partition and the children's sums)."""
    L, N = XT.shape
    state = np.empty(1, dtype=np.int64)
    state[0] = seed
    features = np.arange(L)
    constant_features = np.zeros(L, dtype=np.int64)
    samples = w.samples
    for i in range(N):
        samples[i] = i
    srt.idx[:, :] = sidx0
    srt.val[:, :] = sval0
    for f in range(L):
        for p in range(N):
            srt.y[f, p] = y[sidx0[f, p]]
    n_nodes = 0
    # stack of records: start, end, depth, parent, is_left, n_constant_features | impurity
    rec_i = np.empty((2 * MAX_DEPTH + 4, 6), dtype=np.int64)
    rec_f = np.empty(2 * MAX_DEPTH + 4)
    rec_i[0, 0], rec_i[0, 1], rec_i[0, 2], rec_i[0, 3], rec_i[0, 4], rec_i[0, 5] = 0, N, 0, -1, 0, 0
    rec_f[0] = np.inf
    top = 1
    while top > 0:
        top -= 1
        start, end, depth = rec_i[top, 0], rec_i[top, 1], rec_i[top, 2]
        parent, is_left, n_known_constants = rec_i[top, 3], rec_i[top, 4], rec_i[top, 5]
        impurity = rec_f[top]
        sum_total, sq_sum_total, wn = _node_sums(y, samples, start, end)
        if parent < 0:
            impurity = sq_sum_total / wn - (sum_total / wn) ** 2.0
        is_leaf = depth >= MAX_DEPTH or end - start < 2 or impurity <= EPSILON
        pos, feat, thr, n_constants = end, 0, 0.0, n_known_constants
        imp_left = imp_right = np.inf
        if not is_leaf:
            pos, feat, thr, n_constants = _best_split(
                XT, y, has_dup, start, end, depth, n_known_constants, sum_total, wn,
                features, constant_features, state, srt, w, memo)
            if pos < end:
                _partition_final(XT[feat], samples, start, end, thr)
                imp_left, imp_right, improvement = _children_impurity(
                    y, samples, start, end, pos, sum_total, sq_sum_total, wn, impurity, N)
                is_leaf = improvement + EPSILON < 0.0
            else:
                is_leaf = True
        node_id = n_nodes
        n_nodes += 1
        _add_node(tree, node_id, parent, is_left, impurity, end - start)
        if is_leaf:
            for p in range(start, end):
                tree.leaf_of[samples[p]] = node_id
            continue
        tree.feature[node_id] = feat
        tree.threshold[node_id] = thr
        if depth + 1 < MAX_DEPTH:      # the children will search splits: partition the sorts
            _partition_sorted(srt, w, start, pos, end)
        # push right, then left (popped first)
        rec_i[top, 0], rec_i[top, 1], rec_i[top, 2] = pos, end, depth + 1
        rec_i[top, 3], rec_i[top, 4], rec_i[top, 5] = node_id, 0, n_constants
        rec_f[top] = imp_right
        top += 1
        rec_i[top, 0], rec_i[top, 1], rec_i[top, 2] = start, pos, depth + 1
        rec_i[top, 3], rec_i[top, 4], rec_i[top, 5] = node_id, 1, n_constants
        rec_f[top] = imp_left
        top += 1
    return n_nodes
