"""scikit-learn's ``GradientBoostingClassifier(random_state=seed)`` with its default settings,
compiled with numba: the same trees, node for node and bit for bit, including ties.

It replays scikit-learn's own algorithm and arithmetic (``sklearn/ensemble/_gb.py``,
``tree/_splitter.pyx`` ``node_split_best``, ``_partitioner.pyx``, ``_criterion.pyx`` ``MSE``,
``_tree.pyx`` ``DepthFirstTreeBuilder``, ``utils/_sorting.pyx``):

- init raw predictions, the negative gradient of the log loss and the link are scikit-learn's own
  functions (``sklearn._loss``), called once per stage;
- per stage and class (one tree if binary) a depth-3 regression tree on the negative gradient:
  depth-first (left child first), at each node the features visited in the order scikit-learn's
  xorshift generator draws them (Fisher-Yates over the feature array, constant features skipped
  and remembered for the node's descendants; the generator is seeded per tree from
  ``np.random.RandomState(seed).randint(0, 2**31 - 1)``, as scikit-learn draws it), the node's
  samples in the order scikit-learn's introsort leaves them for each feature (ties included),
  candidate positions between sorted float32 values more than 1e-7 apart, the running sums
  updated forwards or backwards as ``RegressionCriterion.update`` does, proxy
  ``S_l²/n_l + S_r²/n_r``, strict ``>`` (the first maximum in visiting order wins), threshold
  ``x_prev/2 + x_next/2``; a node is a leaf at depth 3, with < 2 samples, impurity <= float64
  eps, or improvement + eps < 0;
- leaves get one Newton step ``((K-1)/K if K > 2) · mean(g) / mean(p (1 - p))`` (0 when the
  denominator is < 1e-150), with numpy's sums over the leaf's samples in index order, and the
  raw predictions move by 0.1 times it;
- feature importances: per tree Σ over its splits of ``n·imp - n_l·imp_l - n_r·imp_r`` / N,
  averaged over the trees with more than one node, normalised to sum 1.

The tree builder and how it does less work than scikit-learn are in :mod:`._gbt_tree`;
the sorting, the random draws and numpy's pairwise sums in :mod:`._gbt_kernels`.
``random_state=None`` (the reference's default) draws the seed from numpy's global generator,
as scikit-learn does. Nothing here touches process-wide state; the compiled functions release
the GIL, so several classifiers can be fitted on threads.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ._gbt_kernels import RAND_R_MAX, _pairwise_sum
from ._gbt_tree import MAX_DEPTH, MEMO_STATES, MEMO_TIES, RootMemo, Scratch, Sorted, Tree, _fit_tree

N_NODES = 2 ** (MAX_DEPTH + 1) - 1       # at most 15 nodes in a depth-3 tree
_JIT = dict(cache=True, nogil=True)


@njit(**_JIT)
def _stage(XT, sidx0, sval0, has_dup, G, Y, seeds, factor, lr, raw, left, right, feature, threshold,
           value, impurity, n_node, leaf_of, n_nodes, tp_off, tp_pos, trees, trans, st_feat, st_off,
           sig, st_count):
    """The trees ``trees`` of one boosting stage: tree t fitted to G[t] [N] (seed seeds[t]), its
    leaves set to the Newton step with targets Y[t], raw[:, t] += lr * leaf value (as
    _update_terminal_regions). Different trees of a stage may run on different threads."""
    L, N = XT.shape
    samples = np.empty(N, dtype=np.int64)
    fvals = np.empty(N, dtype=np.float32)
    yvals = np.empty(N)
    sidx = np.empty((L, N), dtype=np.int32)
    sval = np.empty((L, N), dtype=np.float32)
    sy = np.empty((L, N))
    mark = np.zeros(N, dtype=np.uint8)
    tied = np.zeros(N, dtype=np.uint8)
    tmp_i = np.empty(N, dtype=np.int32)
    tmp_f = np.empty(N, dtype=np.float32)
    tmp_y = np.empty(N)
    stack = np.empty((136, 3), dtype=np.int64)
    cnt = np.zeros(N_NODES + 1, dtype=np.int64)
    idx = np.empty(N, dtype=np.int64)
    a = np.empty(N)
    b = np.empty(N)
    srt = Sorted(sidx, sval, sy)
    w = Scratch(samples, fvals, yvals, mark, tied, tmp_i, tmp_f, tmp_y, stack)
    memo = RootMemo(tp_off, tp_pos, trans, st_feat, st_off, sig, st_count)
    for t in trees:
        g = G[t]
        tree = Tree(left[t], right[t], feature[t], threshold[t], impurity[t], n_node[t], leaf_of[t])
        n_nodes[t] = _fit_tree(XT, sidx0, sval0, has_dup, g, seeds[t], srt, w, memo, tree)
        # samples of each leaf in increasing index order (np.nonzero(terminal_regions == leaf))
        lf = leaf_of[t]
        cnt[:] = 0
        for i in range(N):
            cnt[lf[i] + 1] += 1
        for j in range(N_NODES):
            cnt[j + 1] += cnt[j]
        for i in range(N):
            idx[cnt[lf[i]]] = i
            cnt[lf[i]] += 1
        lo = 0
        for leaf in range(n_nodes[t]):
            if left[t, leaf] != -1:
                continue
            n = int(n_node[t, leaf])
            for q in range(n):
                i = idx[lo + q]
                a[q] = g[i]
                pr = Y[t, i] - g[i]
                b[q] = pr * (1 - pr)
            numerator = _pairwise_sum(a, 0, n) / float(n)
            numerator *= factor
            denominator = _pairwise_sum(b, 0, n) / float(n)
            value[t, leaf] = 0.0 if abs(denominator) < 1e-150 else numerator / denominator
            lo += n
        v = value[t]
        for i in range(N):
            raw[i, t] += lr * v[lf[i]]


@njit(**_JIT)
def _importances(left, right, feature, impurity, n_node, n_nodes, L):
    """Tree.compute_feature_importances(normalize=False) of each tree -> [T, L]."""
    T = left.shape[0]
    out = np.zeros((T, L))
    for t in range(T):
        for node in range(n_nodes[t]):
            lc = left[t, node]
            if lc != -1:
                rc = right[t, node]
                out[t, feature[t, node]] += (n_node[t, node] * impurity[t, node]
                                             - n_node[t, lc] * impurity[t, lc]
                                             - n_node[t, rc] * impurity[t, rc])
        for f in range(L):
            out[t, f] /= n_node[t, 0]
    return out


@njit(**_JIT)
def _predict_stages(XT, left, right, feature, threshold, value, lr, out):
    """predict_stages: out [n, K] += lr * value of each sample's leaf, stage after stage;
    trees [S, K, nodes], XT float32 [L, n]."""
    S, K = left.shape[0], left.shape[1]
    n = XT.shape[1]
    for i in range(n):
        for s in range(S):
            for k in range(K):
                node = 0
                while left[s, k, node] != -1:
                    if np.float64(XT[feature[s, k, node], i]) <= threshold[s, k, node]:
                        node = left[s, k, node]
                    else:
                        node = right[s, k, node]
                out[i, k] += lr * value[s, k, node]


def n_trees_per_stage(n_classes: int) -> int:
    """1 for two classes, else one tree per class."""
    return 1 if n_classes == 2 else n_classes


def tree_seeds(rng: np.random.RandomState, n_estimators: int, n_trees: int) -> np.ndarray:
    """The seed scikit-learn's splitter draws for each tree, ``rng.randint(0, 2**31 - 1)`` in
    fitting order (stage, then class) -> int64 [n_estimators, n_trees]; advances ``rng``."""
    return np.array([rng.randint(0, RAND_R_MAX) for _ in range(n_estimators * n_trees)],
                    dtype=np.int64).reshape(n_estimators, n_trees)


class GradientBoosting:
    """``GradientBoostingClassifier(random_state=...)`` (defaults otherwise, see the module
    docstring): ``fit(X, y)``, ``predict(X)``, ``decision(X)``, ``feature_importances_``,
    ``train_predictions_``."""

    def __init__(self, n_estimators: int = 100, learning_rate: float = 0.1, random_state=0):
        self.n_estimators, self.learning_rate = n_estimators, learning_rate
        self.random_state = random_state

    def fit(self, X, y, pool=None, n_chunks: int = 1, seeds=None):
        """Fit to X [N, L], labels y [N]. With a ``concurrent.futures`` pool, the trees of each
        stage are fitted in ``n_chunks`` tasks on it (same result: the trees are independent).
        ``seeds`` [n_estimators, T]: the trees' generator seeds (default: drawn from
        ``random_state`` as scikit-learn draws them, see :func:`tree_seeds`)."""
        from sklearn._loss.loss import HalfBinomialLoss, HalfMultinomialLoss
        from sklearn.dummy import DummyClassifier
        from sklearn.ensemble._gb import _init_raw_predictions
        from sklearn.utils import check_random_state

        X32 = np.ascontiguousarray(X, dtype=np.float32)
        XT = np.ascontiguousarray(X32.T)
        N, L = X32.shape
        self.classes_, yk = np.unique(np.asarray(y), return_inverse=True)
        yk = yk.ravel()
        C = len(self.classes_)
        if C < 2:
            raise ValueError("gradient boosting needs at least two classes")
        T = n_trees_per_stage(C)
        yf = yk.astype(np.float64)
        sw = np.ones(N)
        loss = HalfBinomialLoss(sample_weight=None) if C == 2 else \
            HalfMultinomialLoss(sample_weight=None, n_classes=C)
        init = DummyClassifier(strategy="prior").fit(X32, yk, sample_weight=sw)
        raw = np.ascontiguousarray(_init_raw_predictions(X32, init, loss, True))   # [N, T]
        self.init_ = raw[0].copy()
        if seeds is None:
            seeds = tree_seeds(check_random_state(self.random_state), self.n_estimators, T)
        seeds = np.asarray(seeds, dtype=np.int64).reshape(self.n_estimators, T)
        S = self.n_estimators
        shape = (S, T, N_NODES)
        self.left_ = np.full(shape, -1, dtype=np.int64)
        self.right_ = np.full(shape, -1, dtype=np.int64)
        self.feature_ = np.full(shape, -2, dtype=np.int64)
        self.threshold_ = np.full(shape, -2.0)
        self.value_ = np.zeros(shape)
        impurity = np.zeros((T, N_NODES))
        n_node = np.zeros((T, N_NODES))
        leaf_of = np.zeros((T, N), dtype=np.int64)
        n_nodes = np.zeros(T, dtype=np.int64)
        order0 = np.argsort(XT, axis=1, kind="stable").astype(np.int32)
        srt = np.take_along_axis(XT, order0, axis=1)
        has_dup = np.any(srt[:, 1:] == srt[:, :-1], axis=1)
        Y = (yk[None, :] == np.arange(T)[:, None]).astype(np.float64) if C > 2 else yf[None, :].copy()
        factor = (C - 1) / C if C > 2 else 1.0
        importances = []
        chunks = [c for c in np.array_split(np.arange(T), max(1, min(int(n_chunks), T)))]
        # the root's tied positions per code, and per chunk (one thread at a time) a memo of the
        # root's sorts: trans[f, state] = the state after sorting by f from that state
        tied_root = np.zeros_like(srt, dtype=bool)
        tied_root[:, 1:] |= srt[:, 1:] == srt[:, :-1]
        tied_root[:, :-1] |= srt[:, 1:] == srt[:, :-1]
        tp_off = np.concatenate([[0], np.cumsum(tied_root.sum(axis=1))]).astype(np.int64)
        tp_pos = np.nonzero(tied_root)[1].astype(np.int64)
        memo_states = MEMO_STATES if has_dup.any() else L + 1
        memos = [(np.full((L, memo_states), -1, dtype=np.int64), np.full(memo_states, -1, dtype=np.int64),
                  np.zeros(memo_states, dtype=np.int64),
                  np.empty(memo_states * MEMO_TIES, dtype=np.int64),
                  np.array([L + 1], dtype=np.int64)) for _ in chunks]
        for i in range(S):
            neg = -loss.gradient(y_true=yf, raw_prediction=raw if C > 2 else raw[:, 0])
            G = np.ascontiguousarray(neg.reshape(N, -1).T)                  # [T, N]
            args = (XT, order0, srt, has_dup, G, Y, seeds[i], factor, float(self.learning_rate), raw,
                    self.left_[i], self.right_[i], self.feature_[i], self.threshold_[i],
                    self.value_[i], impurity, n_node, leaf_of, n_nodes, tp_off, tp_pos)
            if pool is None or len(chunks) == 1:
                _stage(*args, chunks[0], *memos[0])
            else:
                for fut in [pool.submit(_stage, *args, c, *m) for c, m in zip(chunks, memos)]:
                    fut.result()
            imp = _importances(self.left_[i], self.right_[i], self.feature_[i], impurity, n_node,
                               n_nodes, L)
            importances.extend(imp[k] for k in range(T) if n_nodes[k] > 1)
        self.train_raw_ = raw
        if importances:
            avg = np.mean(importances, axis=0, dtype=np.float64)
            self.feature_importances_ = avg / np.sum(avg)
        else:
            self.feature_importances_ = np.zeros(L)
        return self

    def decision(self, X) -> np.ndarray:
        """Raw predictions [n, T] (T = 1 if binary), summed stage after stage as scikit-learn."""
        XT = np.ascontiguousarray(np.asarray(X, dtype=np.float32).T)
        out = np.tile(self.init_, (XT.shape[1], 1))
        _predict_stages(XT, self.left_, self.right_, self.feature_, self.threshold_, self.value_,
                        float(self.learning_rate), out)
        return out

    def _labels(self, raw):
        if raw.shape[1] == 1:
            return self.classes_[(raw[:, 0] >= 0).astype(int)]
        return self.classes_[np.argmax(raw, axis=1)]

    def predict(self, X) -> np.ndarray:
        return self._labels(self.decision(X))

    @property
    def train_predictions_(self) -> np.ndarray:
        return self._labels(self.train_raw_)
