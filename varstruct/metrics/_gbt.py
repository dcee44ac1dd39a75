"""A vectorised re-implementation of scikit-learn's ``GradientBoostingClassifier()`` with its
default settings, used by DCI (which fits one per factor).

It builds the same model as scikit-learn 1.x (``sklearn/ensemble/_gb.py``,
``sklearn/tree/_splitter.pyx``, ``_criterion.pyx``, ``_tree.pyx``):

- init: class priors p through the link (multiclass: log(p / gmean(p)); binary: logit(p));
- 100 stages; per stage and class k (one tree if binary) a depth-3 regression tree with the
  squared-error criterion is fitted to the negative gradient of the log loss (y_k - softmax_k,
  or y - expit for two classes) computed at the start of the stage, all features considered;
- split search as scikit-learn's best splitter: candidate positions between consecutive sorted
  values that differ by more than 1e-7 (float32 inputs), proxy Σ_l²/n_l + Σ_r²/n_r, the first
  maximum wins, threshold = x_prev/2 + x_next/2; a node is a leaf at depth 3, with < 2 samples,
  with impurity <= float64 eps, or without a valid split;
- leaves get one Newton step, ((K-1)/K if K > 2) · mean(g) / mean(p (1 - p)) (0 when the
  denominator is < 1e-150), added to the raw predictions times the learning rate 0.1;
- feature importances: per tree Σ over its splits of n·imp - n_l·imp_l - n_r·imp_r, divided
  by N; averaged over the trees that split at least once; normalised to sum 1.

Only exact ties between two features' candidate splits are broken differently (scikit-learn
visits features in a random order, here the lowest index wins) - the reference itself
(``random_state=None``) breaks them at random. Instead of sorting the node's samples for every
feature at every node, one presort per fit is partitioned stably level by level.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import gmean

EPS = np.finfo(np.float64).eps
FEATURE_THRESHOLD = 1e-7
TIE_ATOL, TIE_RTOL = 1e-9, 1e-12  # proxy rounding of sums over <= 1e5 residuals in [-1, 1]


class Presorted:
    """X (cast to float32 like scikit-learn, then float64) with one stable argsort per feature.

    ``group[l, i]``: tie group of sample i in feature l (consecutive sorted values more than
    1e-7 apart start a new group), so two node-consecutive samples are separable iff their
    groups differ - except inside a chain of near-ties spanning more than 1e-7 (features in
    ``chained`` are then compared by value)."""

    def __init__(self, X):
        X32 = np.asarray(X, dtype=np.float32)
        self.XT = np.ascontiguousarray(X32.T, dtype=np.float64)  # [L, N]
        self.n_features, self.n_samples = L, N = self.XT.shape
        self.order = np.argsort(self.XT, axis=1, kind="stable").astype(np.intp)  # [L, N]
        vs = np.take_along_axis(self.XT, self.order, axis=1)
        brk = np.zeros((L, N), dtype=bool)
        brk[:, 1:] = vs[:, 1:] > vs[:, :-1] + FEATURE_THRESHOLD
        gid_sorted = np.cumsum(brk, axis=1).astype(np.int32)
        self.group_sorted = gid_sorted                           # groups in sorted order
        first = np.maximum.accumulate(np.where(brk | (np.arange(N) == 0), np.arange(N), 0), axis=1)
        span = vs - np.take_along_axis(vs, first, axis=1)        # distance to the group's first value
        self.chained = np.flatnonzero((span > FEATURE_THRESHOLD).any(axis=1))


def fit_tree(ps: Presorted, g: np.ndarray, rng: np.random.Generator, max_depth: int = 3):
    """Fit one squared-error regression tree (heap layout, 2^(d+1)-1 nodes) to g [N].

    Returns (feature [n_nodes] int (-1 at leaves/unused), threshold [n_nodes], leaf [N] heap
    index of each sample's leaf, importance [L] (unnormalised, / N), n_splits)."""
    L, N = ps.n_features, ps.n_samples
    n_nodes = 2 ** (max_depth + 1) - 1
    feature = np.full(n_nodes, -1, dtype=np.int64)
    threshold = np.zeros(n_nodes)
    importance = np.zeros(L)
    leaf = np.zeros(N, dtype=np.intp)  # heap id of each sample's current node
    n_splits = 0

    g2 = g * g
    s_root, q_root = g.sum(), g2.sum()
    imp_root = q_root / N - (s_root / N) ** 2
    if max_depth < 1 or N < 2 or imp_root <= EPS:
        return feature, threshold, leaf, importance, n_splits

    idx, gid = ps.order, ps.group_sorted        # [L, M]: alive samples sorted by (node, value)
    heap = np.array([0])                        # heap ids of the open nodes, in segment order
    counts = np.array([N])
    imps = np.array([imp_root])
    cs = None
    for depth in range(max_depth):
        M, S = idx.shape[1], len(heap)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        ends = starts + counts
        pos = np.arange(M)
        seg = np.repeat(np.arange(S), counts)
        nl = (pos - starts[seg]).astype(np.float64)             # samples left of position p
        nr = (ends[seg] - pos).astype(np.float64)

        if cs is None or cs.shape[1] != M + 1:
            cs = np.zeros((L, M + 1))
        np.cumsum(np.take(g, idx), axis=1, out=cs[:, 1:])
        before = cs[:, starts]                                   # [L, S]
        left = cs[:, :-1] - np.repeat(before, counts, axis=1)    # sum over [start, p)
        right = np.repeat(cs[:, ends] - before, counts, axis=1)
        right -= left
        valid = np.empty((L, M), dtype=bool)
        valid[:, 0] = False
        np.not_equal(gid[:, 1:], gid[:, :-1], out=valid[:, 1:])
        for l in ps.chained:
            v = ps.XT[l].take(idx[l])
            valid[l, 1:] = v[1:] > v[:-1] + FEATURE_THRESHOLD
        valid &= nl > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            left *= left
            left /= nl
            right *= right
            right /= nr
            left += right
        proxy = np.where(valid, left, -np.inf)

        segmax = np.maximum.reduceat(proxy, starts, axis=1)     # [L, S]
        top = segmax.max(axis=0)
        # features whose best split ties the overall best (the same partition reached through
        # different features, or equal residuals): pick one uniformly at random
        tied = segmax >= top - (TIE_ATOL + TIE_RTOL * np.abs(top))
        fbest = np.argmax(np.where(tied, rng.random((L, S)), -1.0), axis=0)
        vbest = segmax[fbest, np.arange(S)]
        cand = proxy[fbest[seg], pos]
        pbest = np.minimum.reduceat(np.where(cand == vbest[seg], pos, M), starts)
        sid = np.flatnonzero(np.isfinite(vbest))
        if sid.size == 0:
            break
        f_s, p_s = fbest[sid], pbest[sid]
        xprev = ps.XT[f_s, idx[f_s, p_s - 1]]
        xnext = ps.XT[f_s, idx[f_s, p_s]]
        h_s = heap[sid]
        feature[h_s] = f_s
        threshold[h_s] = xprev / 2.0 + xnext / 2.0
        n_splits += sid.size

        # samples of the split nodes go to the children by value (as tree.apply does)
        alive = idx[0]
        hs = leaf[alive]
        split_alive = feature[hs] >= 0
        a_s, h_a = alive[split_alive], hs[split_alive]
        child = 2 * h_a + 1 + (ps.XT[feature[h_a], a_s] > threshold[h_a])
        leaf[a_s] = child

        n_c = np.bincount(child, minlength=n_nodes).astype(np.float64)
        s_c = np.bincount(child, weights=g[a_s], minlength=n_nodes)
        q_c = np.bincount(child, weights=g2[a_s], minlength=n_nodes)
        with np.errstate(divide="ignore", invalid="ignore"):
            imp_c = q_c / n_c - (s_c / n_c) ** 2
        lc, rc = 2 * h_s + 1, 2 * h_s + 2
        np.add.at(importance, f_s, counts[sid] * imps[sid] - n_c[lc] * imp_c[lc] - n_c[rc] * imp_c[rc])

        if depth + 1 >= max_depth:
            break
        kids = np.stack([lc, rc], axis=1).ravel()               # segment order of the next level
        kids = kids[(n_c[kids] >= 2) & (imp_c[kids] > EPS)]
        if kids.size == 0:
            break
        key = np.full(n_nodes, kids.size, dtype=np.int8)
        key[kids] = np.arange(kids.size, dtype=np.int8)
        perm = np.argsort(key.take(leaf).take(idx), axis=1, kind="stable")
        n_alive = int(n_c[kids].sum())
        perm = perm[:, :n_alive]
        idx = np.take_along_axis(idx, perm, axis=1)
        gid = np.take_along_axis(gid, perm, axis=1)
        heap, counts, imps = kids, n_c[kids].astype(np.int64), imp_c[kids]
    return feature, threshold, leaf, importance / N, n_splits


def apply_trees(features, thresholds, XT, max_depth: int = 3) -> np.ndarray:
    """Leaf heap index of each sample for T trees: features/thresholds [T, n_nodes], XT [L, n]
    -> [T, n]."""
    T, n = features.shape[0], XT.shape[1]
    node = np.zeros((T, n), dtype=np.int64)
    t = np.arange(T)[:, None]
    cols = np.arange(n)[None, :]
    for _ in range(max_depth):
        f = features[t, node]
        split = f >= 0
        x = XT[np.where(split, f, 0), cols]
        node = np.where(split, 2 * node + 1 + (x > thresholds[t, node]), node)
    return node


class GradientBoosting:
    """``GradientBoostingClassifier()`` defaults (see the module docstring): ``fit(X, y)``,
    ``predict(X)``, ``feature_importances_``, ``train_predictions_``."""

    def __init__(self, n_estimators: int = 100, learning_rate: float = 0.1, max_depth: int = 3,
                 random_state=0):
        self.n_estimators, self.learning_rate, self.max_depth = n_estimators, learning_rate, max_depth
        self.random_state = random_state

    def fit(self, X, y):
        ps = Presorted(X)
        rng = np.random.default_rng(self.random_state)
        self.classes_, yk = np.unique(np.asarray(y), return_inverse=True)
        C = len(self.classes_)
        if C < 2:
            raise ValueError("gradient boosting needs at least two classes")
        N = ps.n_samples
        T = 1 if C == 2 else C
        eps = np.finfo(np.float64).eps
        prior = np.clip(np.bincount(yk, minlength=C) / N, eps, 1 - eps)
        if C == 2:
            init = np.array([np.log(prior[1] / (1 - prior[1]))])
        else:
            init = np.log(prior / gmean(prior))
        self.init_ = init
        raw = np.tile(init, (N, 1))                                   # [N, T]
        onehot = (yk[:, None] == np.arange(C)[None, :]).astype(np.float64) if C > 2 else \
            yk[:, None].astype(np.float64)
        n_nodes = 2 ** (self.max_depth + 1) - 1
        self.features_ = np.full((self.n_estimators, T, n_nodes), -1, dtype=np.int64)
        self.thresholds_ = np.zeros((self.n_estimators, T, n_nodes))
        self.values_ = np.zeros((self.n_estimators, T, n_nodes))
        imp_sum = np.zeros(ps.n_features)
        n_relevant = 0
        factor = (C - 1) / C if C > 2 else 1.0
        for i in range(self.n_estimators):
            neg_g = onehot - _probabilities(raw, C)                   # [N, T] at the stage start
            for k in range(T):
                g = np.ascontiguousarray(neg_g[:, k])
                feat, thr, leaf, imp, n_splits = fit_tree(ps, g, rng, self.max_depth)
                if n_splits:
                    imp_sum += imp
                    n_relevant += 1
                cnt = np.bincount(leaf, minlength=n_nodes).astype(np.float64)
                num = np.bincount(leaf, weights=g, minlength=n_nodes)
                prob = onehot[:, k] - g
                den = np.bincount(leaf, weights=prob * (1 - prob), minlength=n_nodes)
                with np.errstate(divide="ignore", invalid="ignore"):
                    num, den = num / cnt * factor, den / cnt
                    value = np.where(np.abs(den) < 1e-150, 0.0, num / den)
                value[cnt == 0] = 0.0
                self.features_[i, k], self.thresholds_[i, k], self.values_[i, k] = feat, thr, value
                raw[:, k] += self.learning_rate * value[leaf]
        self.train_raw_ = raw
        self.feature_importances_ = (imp_sum / n_relevant) / np.sum(imp_sum / n_relevant) \
            if n_relevant else np.zeros(ps.n_features)
        return self

    def decision(self, X) -> np.ndarray:
        XT = np.ascontiguousarray(np.asarray(X, dtype=np.float32).T, dtype=np.float64)
        raw = np.tile(self.init_, (XT.shape[1], 1))
        for i in range(self.n_estimators):
            leaves = apply_trees(self.features_[i], self.thresholds_[i], XT, self.max_depth)
            for k in range(raw.shape[1]):
                raw[:, k] += self.learning_rate * self.values_[i, k][leaves[k]]
        return raw

    def _labels(self, raw):
        if raw.shape[1] == 1:
            return self.classes_[(raw[:, 0] >= 0).astype(int)]
        return self.classes_[np.argmax(raw, axis=1)]

    def predict(self, X) -> np.ndarray:
        return self._labels(self.decision(X))

    @property
    def train_predictions_(self) -> np.ndarray:
        return self._labels(self.train_raw_)


def _probabilities(raw: np.ndarray, C: int) -> np.ndarray:
    """softmax (C > 2) or expit (binary, scikit-learn's stable form) of raw [N, T]."""
    if C > 2:
        z = np.exp(raw - raw.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)
    r = raw[:, 0]
    with np.errstate(over="ignore"):
        p = np.where(r > -37, 1.0 / (1.0 + np.exp(-r)), np.exp(r))
    return p[:, None]
