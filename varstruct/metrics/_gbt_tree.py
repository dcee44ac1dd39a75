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

import numpy as np
from numba import njit

from ._gbt_kernels import _rand_int, _sort_ties

EPSILON = np.finfo(np.float64).eps
FEATURE_THRESHOLD = np.float32(1e-7)
MAX_DEPTH = 3
MEMO_STATES = 4096                       # root orders remembered per thread ...
MEMO_TIES = 64                           # ... for codes with at most 64 tied values
_JIT = dict(cache=True, nogil=True)


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
def _fit_tree(XT, sidx0, sval0, has_dup, y, seed, samples, fvals, yvals, sidx, sval, sy, mark,
              tmp_i, tmp_f, tmp_y, stack, tied, tp_off, tp_pos, trans, st_feat, st_off, sig,
              st_count, node_left, node_right, node_feature, node_threshold, node_impurity, node_n, leaf_of):
    """Fit one tree to y [N] on XT float32 [L, N]; fills the node arrays (node ids in
    scikit-learn's order) and leaf_of [N]; returns the node count.

    Every feature's samples are kept sorted (``sidx`` from the presort ``sidx0``, with their
    values ``sval`` and targets ``sy``), partitioned stably at each split, so that a node's
    sort by a feature with no equal values in the node is a copy (there is one sorted order);
    with equal values the node's samples are sorted by scikit-learn's introsort from their
    current order, as scikit-learn does. ``samples`` holds scikit-learn's sample order where it
    matters (the input of such a sort, the final partition and the children's sums)."""
    L, N = XT.shape
    state = np.empty(1, dtype=np.int64)
    state[0] = seed
    features = np.arange(L)
    constant_features = np.zeros(L, dtype=np.int64)
    for i in range(N):
        samples[i] = i
    sidx[:, :] = sidx0
    sval[:, :] = sval0
    for f in range(L):
        for p in range(N):
            sy[f, p] = y[sidx0[f, p]]
    # stack of records: start, end, depth, parent, is_left, n_constant_features | impurity
    rec_i = np.empty((2 * MAX_DEPTH + 4, 6), dtype=np.int64)
    rec_f = np.empty(2 * MAX_DEPTH + 4)
    rec_i[0, 0], rec_i[0, 1], rec_i[0, 2], rec_i[0, 3], rec_i[0, 4], rec_i[0, 5] = 0, N, 0, -1, 0, 0
    rec_f[0] = np.inf
    top = 1
    first = True
    n_nodes = 0
    while top > 0:
        top -= 1
        start, end, depth = rec_i[top, 0], rec_i[top, 1], rec_i[top, 2]
        parent, is_left, n_known_constants = rec_i[top, 3], rec_i[top, 4], rec_i[top, 5]
        impurity = rec_f[top]
        n_node = end - start
        # criterion.init
        sum_total = 0.0
        sq_sum_total = 0.0
        wn = 0.0
        for p in range(start, end):
            yi = y[samples[p]]
            sum_total += yi
            sq_sum_total += yi * yi
            wn += 1.0
        is_leaf = depth >= MAX_DEPTH or n_node < 2
        if first:
            impurity = sq_sum_total / wn - (sum_total / wn) ** 2.0
            first = False
        is_leaf = is_leaf or impurity <= EPSILON

        best_pos = end
        best_feature = 0
        best_threshold = 0.0
        imp_left = np.inf
        imp_right = np.inf
        n_total_constants = n_known_constants
        cur = -1          # -1: samples[start:end] holds the order; f: it is sidx[f, start:end]
        rs = 0            # the root's order: 0 identity, 1 + f presort of f, > L a remembered state
        if not is_leaf:
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
                sv = sval[feat]
                equal = False
                if has_dup[feat]:
                    for p in range(start + 1, end):
                        if sv[p] == sv[p - 1]:
                            equal = True
                            break
                if equal:          # scikit-learn's introsort from the current order
                    si = sidx[feat]
                    syf = sy[feat]
                    nxt = -1
                    if depth == 0 and rs >= 0:
                        nxt = trans[feat, rs]
                    if nxt >= 0:   # the root's sort from this input order is remembered
                        for p in range(start, end):
                            samples[p] = si[p]
                            yvals[p] = syf[p]
                        o = st_off[nxt]
                        for q in range(tp_off[feat], tp_off[feat + 1]):
                            s = sig[o + q - tp_off[feat]]
                            samples[tp_pos[q]] = s
                            yvals[tp_pos[q]] = y[s]
                        rs = nxt
                    else:
                        if cur >= 0:
                            for p in range(start, end):
                                samples[p] = sidx[cur, p]
                        for p in range(start + 1, end):
                            if sv[p] == sv[p - 1]:
                                tied[si[p]] = 1
                                tied[si[p - 1]] = 1
                        xf = XT[feat]
                        for p in range(start, end):
                            fvals[p] = xf[samples[p]]
                        _sort_ties(fvals, samples, start, n_node, stack, tied)
                        for p in range(start, end):   # the parts without ties: their one order
                            s = si[p]
                            if tied[s]:
                                tied[s] = 0
                                yvals[p] = y[samples[p]]
                            else:
                                samples[p] = s
                                yvals[p] = syf[p]
                        if depth == 0:      # remember the root's result (few ties only)
                            m = tp_off[feat + 1] - tp_off[feat]
                            if rs >= 0 and m <= MEMO_TIES:
                                nxt = _intern(feat, samples, tp_pos[tp_off[feat]:tp_off[feat + 1]],
                                              st_feat, st_off, sig, st_count)
                                if nxt >= 0:
                                    trans[feat, rs] = nxt
                            rs = nxt
                    cur = -1
                    fv = sv       # the same values in the same (sorted) order
                else:
                    cur = feat
                    fv = sv
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
                yv = yvals if equal else sy[feat]
                proxy, pos, thr = _scan(fv, yv, start, end, sum_total, wn, best_proxy)
                if pos >= 0:
                    best_proxy = proxy
                    best_pos = pos
                    best_feature = feat
                    best_threshold = thr
            if cur >= 0:
                for p in range(start, end):
                    samples[p] = sidx[cur, p]
            if best_pos < end:
                # partition_samples_final
                xb = XT[best_feature]
                ps, pe = start, end
                while ps < pe:
                    if np.float64(xb[samples[ps]]) <= best_threshold:
                        ps += 1
                    else:
                        pe -= 1
                        tmp_s = samples[ps]
                        samples[ps] = samples[pe]
                        samples[pe] = tmp_s
                sum_left, wl = _update(y, samples, start, end, start, best_pos, sum_total, wn, 0.0, 0.0)
                wr = wn - wl
                sum_right = sum_total - sum_left
                sq_left = 0.0
                for p in range(start, best_pos):
                    yi = y[samples[p]]
                    sq_left += yi * yi
                sq_right = sq_sum_total - sq_left
                imp_left = sq_left / wl - (sum_left / wl) ** 2.0
                imp_right = sq_right / wr - (sum_right / wr) ** 2.0
                improvement = (wn / N) * (impurity - (wr / wn * imp_right) - (wl / wn * imp_left))
            else:
                improvement = -np.inf
            for c in range(n_known_constants):
                features[c] = constant_features[c]
            for c in range(n_known_constants, n_total_constants):
                constant_features[c] = features[c]
            is_leaf = best_pos >= end or improvement + EPSILON < 0.0
        node_id = n_nodes
        n_nodes += 1
        if parent >= 0:
            if is_left:
                node_left[parent] = node_id
            else:
                node_right[parent] = node_id
        node_impurity[node_id] = impurity
        node_n[node_id] = n_node
        node_left[node_id] = -1
        node_right[node_id] = -1
        if is_leaf:
            node_feature[node_id] = -2
            node_threshold[node_id] = -2.0
            for p in range(start, end):
                leaf_of[samples[p]] = node_id
        else:
            node_feature[node_id] = best_feature
            node_threshold[node_id] = best_threshold
            if depth + 1 < MAX_DEPTH:      # the children will search splits: partition the sorts
                for p in range(start, best_pos):
                    mark[samples[p]] = 1
                for p in range(best_pos, end):
                    mark[samples[p]] = 0
                for f in range(L):
                    si = sidx[f]
                    sv = sval[f]
                    syf = sy[f]
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
                            tmp_i[b] = s
                            tmp_f[b] = sv[p]
                            tmp_y[b] = syf[p]
                            b += 1
                    for q in range(b):
                        si[a + q] = tmp_i[q]
                        sv[a + q] = tmp_f[q]
                        syf[a + q] = tmp_y[q]
            # push right, then left (popped first)
            rec_i[top, 0], rec_i[top, 1], rec_i[top, 2] = best_pos, end, depth + 1
            rec_i[top, 3], rec_i[top, 4], rec_i[top, 5] = node_id, 0, n_total_constants
            rec_f[top] = imp_right
            top += 1
            rec_i[top, 0], rec_i[top, 1], rec_i[top, 2] = start, best_pos, depth + 1
            rec_i[top, 3], rec_i[top, 4], rec_i[top, 5] = node_id, 1, n_total_constants
            rec_f[top] = imp_left
            top += 1
    return n_nodes
