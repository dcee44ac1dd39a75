"""A vectorised re-implementation of scikit-learn's ``GradientBoostingClassifier()`` with its
default settings, used by DCI (which fits one per factor).

It builds the same model as scikit-learn 1.x (``sklearn/ensemble/_gb.py``,
``sklearn/tree/_splitter.pyx``, ``_criterion.pyx``, ``_tree.pyx``):

- init: class priors p through the link (multiclass: log(p / gmean(p)); binary: logit(p));
- 100 stages; per stage and class k (one tree if binary) a depth-3 regression tree with the
  squared-error criterion is fitted to the negative gradient of the log loss (y_k - softmax_k,
  or y - expit for two classes) computed at the start of the stage, all features considered;
- split search as scikit-learn's best splitter: candidate positions between consecutive sorted
  values that differ by more than 1e-7 (in float32 arithmetic), proxy Σ_l²/n_l + Σ_r²/n_r,
  the first maximum wins, threshold = x_prev/2 + x_next/2; a node is a leaf at depth 3, with
  < 2 samples, with impurity <= float64 eps, or without a valid split;
- leaves get one Newton step, ((K-1)/K if K > 2) · mean(g) / mean(p (1 - p)) (0 when the
  denominator is < 1e-150), added to the raw predictions times the learning rate 0.1;
- feature importances: per tree Σ over its splits of n·imp - n_l·imp_l - n_r·imp_r, divided
  by N; averaged over the trees that split at least once; normalised to sum 1.

Only ties between features (two features whose best splits have the same proxy, up to
rounding: the same partition, or equal residuals early on) are broken differently: scikit-learn
keeps the first feature of a random visiting order (the reference passes ``random_state=None``,
so its choice is random too); here one of the tied features is drawn uniformly with a seeded
generator. Instead of sorting each node's samples for every feature at every node, one presort
per fit is partitioned stably level by level, and the K trees of a stage are fitted together.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import gmean

EPS = np.finfo(np.float64).eps
FEATURE_THRESHOLD = np.float32(1e-7)  # float32 in scikit-learn, added in float32
TREES_PER_BATCH = 16  # trees of one stage fitted together (memory ~ 10 x 8 B x L N per tree)
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
        # scikit-learn compares float32 values in float32: x[p] <= x[p-1] + 1e-7f is a tie
        self.X32T = np.ascontiguousarray(X32.T)
        vs = np.take_along_axis(self.X32T, self.order, axis=1)
        brk = np.zeros((L, N), dtype=bool)
        brk[:, 1:] = vs[:, 1:] > vs[:, :-1] + FEATURE_THRESHOLD
        gid_sorted = np.cumsum(brk, axis=1).astype(np.int32)
        self.group_sorted = gid_sorted                           # groups in sorted order
        first = np.maximum.accumulate(np.where(brk | (np.arange(N) == 0), np.arange(N), 0), axis=1)
        span = vs > np.take_along_axis(vs, first, axis=1) + FEATURE_THRESHOLD  # vs group's first
        self.chained = np.flatnonzero(span.any(axis=1))


def fit_trees(ps: Presorted, G: np.ndarray, rng: np.random.Generator, max_depth: int = 3):
    """Fit T squared-error regression trees (heap layout, 2^(d+1)-1 nodes), tree t to G[t] [N].

    All trees advance level by level together: every row of ``fidx`` holds, for one feature, the
    alive samples of every tree sorted by (tree, node, value), so each (tree, node) is one
    contiguous segment and one prefix sum per feature scores every candidate split.

    Returns feature [T, n_nodes] int (-1 at leaves/unused), threshold [T, n_nodes], leaf [T, N]
    (heap index of each sample's leaf), importance [T, L] (unnormalised, / N), n_splits [T]."""
    L, N = ps.n_features, ps.n_samples
    G = np.ascontiguousarray(G, dtype=np.float64)
    T = G.shape[0]
    n_nodes = 2 ** (max_depth + 1) - 1
    feature = np.full((T, n_nodes), -1, dtype=np.int64)
    threshold = np.zeros((T, n_nodes))
    importance = np.zeros((T, L))
    leaf = np.zeros((T, N), dtype=np.intp)      # heap id of each sample's current node
    n_splits = np.zeros(T, dtype=np.int64)
    Gf, G2f = G.ravel(), (G * G).ravel()
    XTf = ps.XT.ravel()

    imp_root = G2f.reshape(T, N).sum(axis=1) / N - (G.sum(axis=1) / N) ** 2
    trees = np.flatnonzero(imp_root > EPS) if (max_depth >= 1 and N >= 2) else np.array([], dtype=np.int64)
    if trees.size == 0:
        return feature, threshold, leaf, importance, n_splits
    # level state: segments (tree, heap id, size, impurity) in row order
    seg_tree, seg_heap = trees, np.zeros(trees.size, dtype=np.int64)
    counts, imps = np.full(trees.size, N), imp_root[trees]
    # [L, P]: flat (tree, sample) index t*N + i, its tie group and its target, row-sorted
    fidx = (ps.order[:, None, :] + (trees * N)[None, :, None]).reshape(L, -1)
    gid = np.tile(ps.group_sorted, (1, trees.size))
    gs = Gf.take(fidx)
    P0 = fidx.shape[1]
    buf_cs, buf_a, buf_b = np.zeros((L, P0 + 1)), np.empty((L, P0)), np.empty((L, P0))
    for depth in range(max_depth):
        P, S = fidx.shape[1], len(seg_heap)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        ends = starts + counts
        pos = np.arange(P)
        seg = np.repeat(np.arange(S), counts)
        tpos = seg_tree[seg]                                     # tree of each position
        nl = (pos - starts[seg]).astype(np.float64)              # samples left of position p
        nr = (ends[seg] - pos).astype(np.float64)

        # work buffers reused across levels (fresh multi-MB temporaries cost page faults)
        cs, left, right = buf_cs[:, :P + 1], buf_a[:, :P], buf_b[:, :P]
        np.cumsum(gs, axis=1, out=cs[:, 1:])
        before = cs[:, starts]                                   # [L, S]
        total = cs[:, ends] - before
        for j in range(S):                                       # sums over [segment start, p)
            sl = slice(starts[j], ends[j])
            np.subtract(cs[:, sl], before[:, j:j + 1], out=left[:, sl])
            np.subtract(total[:, j:j + 1], left[:, sl], out=right[:, sl])
        with np.errstate(divide="ignore", invalid="ignore"):
            left *= left
            left /= nl
            right *= right
            right /= nr
            left += right
        proxy = left                                             # -inf where no split is allowed:
        tie = np.equal(gid[:, 1:], gid[:, :-1])                  # between tied values,
        for l in ps.chained:                                     # (near-tie chains: by value)
            v = ps.X32T[l].take(fidx[l] % N)
            tie[l] = v[1:] <= v[:-1] + FEATURE_THRESHOLD
        np.putmask(proxy[:, 1:], tie, -np.inf)
        proxy[:, starts] = -np.inf                               # and before a node's first sample
        del tie

        segmax = np.maximum.reduceat(proxy, starts, axis=1)     # [L, S]
        top = segmax.max(axis=0)
        # features whose best split ties the overall best (the same partition reached through
        # different features, or equal residuals): pick one uniformly at random
        tied = segmax >= top - (TIE_ATOL + TIE_RTOL * np.abs(top))
        fbest = np.argmax(np.where(tied, rng.random((L, S)), -1.0), axis=0)
        vbest = segmax[fbest, np.arange(S)]
        cand = buf_a.ravel().take(fbest[seg] * P0 + pos)      # proxy of the chosen feature
        pbest = np.minimum.reduceat(np.where(cand == vbest[seg], pos, P), starts)
        sid = np.flatnonzero(np.isfinite(vbest))
        if sid.size == 0:
            break
        f_s, p_s, t_s, h_s = fbest[sid], pbest[sid], seg_tree[sid], seg_heap[sid]
        xprev = ps.XT[f_s, fidx[f_s, p_s - 1] % N]
        xnext = ps.XT[f_s, fidx[f_s, p_s] % N]
        feature[t_s, h_s] = f_s
        threshold[t_s, h_s] = xprev / 2.0 + xnext / 2.0
        np.add.at(n_splits, t_s, 1)

        # samples of the split nodes go to the children by value (as tree.apply does)
        talive, alive = tpos, fidx[0] % N
        hs = leaf.ravel().take(talive * N + alive)
        split_alive = feature.ravel().take(talive * n_nodes + hs) >= 0
        a_s, t_a, h_a = alive[split_alive], talive[split_alive], hs[split_alive]
        th_a = t_a * n_nodes + h_a
        child = 2 * h_a + 1 + (XTf.take(feature.ravel().take(th_a) * N + a_s) > threshold.ravel().take(th_a))
        leaf.ravel()[t_a * N + a_s] = child

        node = t_a * n_nodes + child                             # flat (tree, child) id
        n_c = np.bincount(node, minlength=T * n_nodes).astype(np.float64)
        s_c = np.bincount(node, weights=Gf.take(t_a * N + a_s), minlength=T * n_nodes)
        q_c = np.bincount(node, weights=G2f.take(t_a * N + a_s), minlength=T * n_nodes)
        with np.errstate(divide="ignore", invalid="ignore"):
            imp_c = q_c / n_c - (s_c / n_c) ** 2
        lc, rc = t_s * n_nodes + 2 * h_s + 1, t_s * n_nodes + 2 * h_s + 2
        np.add.at(importance, (t_s, f_s), counts[sid] * imps[sid] - n_c[lc] * imp_c[lc] - n_c[rc] * imp_c[rc])

        if depth + 1 >= max_depth:
            break
        kids = np.stack([lc, rc], axis=1).ravel()               # (tree, node) order of the next level
        kids = kids[(n_c[kids] >= 2) & (imp_c[kids] > EPS)]
        if kids.size == 0:
            break
        kdt = np.int8 if kids.size < 127 else np.int16 if kids.size < 2 ** 15 else np.int64
        key = np.full(T * n_nodes, kids.size, dtype=kdt)           # (small keys: radix sort)
        key[kids] = np.arange(kids.size)
        sample_key = key.take((leaf + (np.arange(T) * n_nodes)[:, None]).ravel())   # [T * N]
        perm = np.argsort(sample_key.take(fidx), axis=1, kind="stable")
        n_alive = int(n_c[kids].sum())
        perm = perm[:, :n_alive]
        perm += (np.arange(L) * P)[:, None]                      # flat takes beat take_along_axis
        fidx = fidx.ravel().take(perm)
        gid = gid.ravel().take(perm)
        gs = gs.ravel().take(perm)
        seg_tree, seg_heap = kids // n_nodes, kids % n_nodes
        counts, imps = n_c[kids].astype(np.int64), imp_c[kids]
    return feature, threshold, leaf, importance / N, n_splits


def fit_tree(ps: Presorted, g: np.ndarray, rng: np.random.Generator, max_depth: int = 3):
    """One tree: :func:`fit_trees` with T = 1 (same outputs without the leading axis)."""
    f, t, leaf, imp, n = fit_trees(ps, np.asarray(g)[None], rng, max_depth)
    return f[0], t[0], leaf[0], imp[0], int(n[0])


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
            for k0 in range(0, T, TREES_PER_BATCH):
                ks = np.arange(k0, min(T, k0 + TREES_PER_BATCH))
                G = np.ascontiguousarray(neg_g[:, ks].T)              # [t, N]
                feat, thr, leaf, imp, n_splits = fit_trees(ps, G, rng, self.max_depth)
                imp_sum += imp[n_splits > 0].sum(axis=0)
                n_relevant += int(np.count_nonzero(n_splits))
                flat = leaf + (np.arange(len(ks)) * n_nodes)[:, None]
                size = len(ks) * n_nodes
                cnt = np.bincount(flat.ravel(), minlength=size).astype(np.float64)
                num = np.bincount(flat.ravel(), weights=G.ravel(), minlength=size)
                prob = onehot[:, ks].T - G
                den = np.bincount(flat.ravel(), weights=(prob * (1 - prob)).ravel(), minlength=size)
                with np.errstate(divide="ignore", invalid="ignore"):
                    num, den = num / cnt * factor, den / cnt
                    value = np.where(np.abs(den) < 1e-150, 0.0, num / den)
                value[cnt == 0] = 0.0
                value = value.reshape(len(ks), n_nodes)
                self.features_[i, ks], self.thresholds_[i, ks], self.values_[i, ks] = feat, thr, value
                raw[:, ks] += self.learning_rate * np.take_along_axis(value, leaf, axis=1).T
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
