"""Exact Shapley values of a LightGBM model with linear leaves, against one reference customer.

LightGBM computes no TreeSHAP for trees whose leaves hold linear models (``linear_tree``, the
``lgbm_linear`` estimator), and path-dependent TreeSHAP cannot be defined for them from the
model alone: it would need the average of each linear feature within each leaf. So these
models are explained by *baseline Shapley* values (Sundararajan & Najmi, 2020): the players
are the input fields, a coalition ``S`` scores the hybrid customer that takes the fields of
``S`` from the record and every other field from a reference customer ``r``, and

    base_value = f(r),   base_value + sum of the fields' values = f(x)

exactly, where ``f`` is the raw score. Shapley values add up over the model's leaves, and a
leaf's game has a closed form (:class:`BaselineShapley`), so the values are exact and computed
for every leaf of every tree at once, without enumerating coalitions. Paths are followed by
LightGBM's own rules (thresholds, missing values, the constant of a linear leaf when one of its
features is missing); the tests check the values against their definition, every coalition
scored by LightGBM itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MAX_PATH_FIELDS = 80
"""Most fields on one leaf's path (the closed form's factorials stay within float64)."""

CHUNK_CELLS = 1 << 20
"""Rows × leaves × fields computed at once (each work array is at most this many values)."""

_ZERO = 1e-35  # LightGBM's kZeroThreshold
_MISSING_ZERO, _MISSING_NAN = 1, 2  # LightGBM's missing types (bits 2-3 of decision_type)


@dataclass(frozen=True)
class Tree:
    """One LightGBM tree: internal nodes 0.., children ``~leaf`` for leaves."""

    split_feature: np.ndarray
    threshold: np.ndarray
    default_left: np.ndarray
    missing_type: np.ndarray
    left: np.ndarray
    right: np.ndarray
    leaf_value: np.ndarray
    leaf_const: np.ndarray | None  # None: constant leaves
    leaf_features: tuple[np.ndarray, ...]
    leaf_coeff: tuple[np.ndarray, ...]


def parse_trees(model_text: str) -> list[Tree]:
    """The trees of a LightGBM text model.

    Raises
    ------
    ValueError
        A categorical split (the encoded features are numeric: churnops never makes one).
    """
    body = model_text.split("\nend of trees", 1)[0]
    trees = []
    for block in body.split("\nTree=")[1:]:
        keys = dict(line.partition("=")[::2] for line in block.splitlines()[1:] if "=" in line)

        def numbers(key: str, kind: type = float, keys: dict[str, str] = keys) -> np.ndarray:
            return np.array(keys.get(key, "").split(), dtype=kind)

        leaves = int(keys["num_leaves"])
        decision = numbers("decision_type", int)
        if np.any(decision & 1):
            raise ValueError("the model has categorical splits")
        linear = keys.get("is_linear", "0").strip() == "1"
        features: list[np.ndarray] = []
        coeff: list[np.ndarray] = []
        if linear:
            counts = numbers("num_features", int)
            flat_features, flat_coeff = numbers("leaf_features", int), numbers("leaf_coeff")
            ends = np.cumsum(counts)
            features = list(np.split(flat_features, ends[:-1]))
            coeff = list(np.split(flat_coeff, ends[:-1]))
        trees.append(
            Tree(
                split_feature=numbers("split_feature", int),
                threshold=numbers("threshold"),
                default_left=(decision & 2) > 0,
                missing_type=(decision >> 2) & 3,
                left=numbers("left_child", int),
                right=numbers("right_child", int),
                leaf_value=numbers("leaf_value")[:leaves],
                leaf_const=numbers("leaf_const") if linear else None,
                leaf_features=tuple(features),
                leaf_coeff=tuple(coeff),
            )
        )
    return trees


def _goes_left(
    values: np.ndarray, threshold: np.ndarray, default_left: np.ndarray, missing: np.ndarray
) -> np.ndarray:
    """LightGBM's numerical decision at nodes, for ``values[..., node]``."""
    absent = np.isnan(values)
    values = np.where(absent & (missing != _MISSING_NAN), 0.0, values)
    default = ((missing == _MISSING_ZERO) & (np.abs(values) <= _ZERO)) | (
        (missing == _MISSING_NAN) & absent
    )
    return np.asarray(np.where(default, default_left, values <= threshold))


class BaselineShapley:
    """Baseline Shapley values of a LightGBM text model (see the module's description).

    The model is taken apart into its leaves: leaf ``l`` adds ``g_l(z)`` when ``z`` follows
    its path, so ``f = sum_l 1_l * g_l`` and a field's value is the sum of its values in the
    leaves' games. On a leaf's path each field is, for the record ``x`` and the reference
    ``r``, of one of four kinds: both follow the path (neutral), only ``x`` (must come from the
    record: set A), only ``r`` (must come from the reference: set B), neither (the leaf is
    never reached). Its game is then a sum of games ``c * [A ⊆ S and S ∩ B = ∅]``, whose
    Shapley values are known in closed form: ``c (a-1)! b! / (a+b)!`` to each field of A and
    ``-c a! (b-1)! / (a+b)!`` to each of B (a, b their sizes). A linear term of a neutral
    field adds such a game with that field in A; a linear feature the record lacks (NaN) makes
    the leaf answer its constant when the field comes from the record, which moves the field
    to B in the games of the linear model. All of it is computed at once for every leaf of
    every tree, record and field.
    """

    def __init__(self, model_text: str, field_of_column: np.ndarray, fields: int) -> None:
        trees = parse_trees(model_text)
        self.fields = fields
        columns, thresholds, default_left, missing = [], [], [], []
        leaves: list[tuple[list[tuple[int, bool]], list[int], float, float, list[int],
                           list[float]]] = []  # fmt: skip
        offset = 0
        for tree in trees:
            columns.append(tree.split_feature)
            thresholds.append(tree.threshold)
            default_left.append(tree.default_left)
            missing.append(tree.missing_type)
            for leaf, path in enumerate(_paths(tree)):
                path_fields = [int(field_of_column[tree.split_feature[n]]) for n, _ in path]
                features = [int(f) for f in tree.leaf_features[leaf]] if tree.leaf_features else []
                coeff = [float(c) for c in tree.leaf_coeff[leaf]] if tree.leaf_coeff else []
                const = tree.leaf_value[leaf] if tree.leaf_const is None else tree.leaf_const[leaf]
                slots = list(
                    dict.fromkeys(path_fields + [int(field_of_column[f]) for f in features])
                )
                nodes = [(offset + n, go_left) for n, go_left in path]
                leaves.append((nodes, slots, float(const), float(tree.leaf_value[leaf]),
                               features, coeff))  # fmt: skip
            offset += len(tree.split_feature)
        self._column = np.concatenate(columns).astype(int)
        self._threshold = np.concatenate(thresholds)
        self._default_left = np.concatenate(default_left)
        self._missing = np.concatenate(missing)
        D = max((len(slots) for _, slots, *_ in leaves), default=0)
        if D > MAX_PATH_FIELDS:
            raise ValueError(f"a leaf's path uses {D} fields (at most {MAX_PATH_FIELDS})")
        K = max((len(nodes) for nodes, *_ in leaves), default=0)
        M = max((len(f) for *_, f, _ in leaves), default=0)
        L = len(leaves)
        self._node = np.zeros((L, K), dtype=int)
        self._left = np.zeros((L, K), dtype=bool)
        self._node_slot = np.full((L, K), -1)
        self._slot_field = np.full((L, D), -1)
        self._const = np.array([leaf[2] for leaf in leaves])
        self._leaf_value = np.array([leaf[3] for leaf in leaves])
        self._lin_column = np.zeros((L, M), dtype=int)
        self._lin_coeff = np.zeros((L, M))
        self._lin_slot = np.full((L, M), -1)
        for i, (nodes, slots, _, _, features, coeff) in enumerate(leaves):
            slot_of = {f: k for k, f in enumerate(slots)}
            self._slot_field[i, : len(slots)] = slots
            for k, (n, go_left) in enumerate(nodes):
                self._node[i, k], self._left[i, k] = n, go_left
                self._node_slot[i, k] = slot_of[int(field_of_column[self._column[n]])]
            for m, (f, c) in enumerate(zip(features, coeff, strict=True)):
                self._lin_column[i, m], self._lin_coeff[i, m] = f, c
                self._lin_slot[i, m] = slot_of[int(field_of_column[f])]
        # Each (leaf, slot) adds its value to its field: one matrix product.
        rows = np.flatnonzero(self._slot_field.ravel() >= 0)
        self._to_fields = np.zeros((L * D, fields))
        self._to_fields[rows, self._slot_field.ravel()[rows]] = 1.0
        top = 2 * D + 2
        self._factorial = np.array([math.factorial(k) for k in range(top)], dtype=np.float64)

    def __call__(self, X: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, float]:
        """Each field's exact baseline Shapley value of the raw score, and ``f(reference)``.

        ``X`` is rows × columns (the encoded feature matrix); ``reference`` one encoded row
        without missing values: the customer the values are measured from.
        """
        L, D = self._slot_field.shape
        # Rows in chunks: the work arrays are rows × leaves × fields.
        chunk = max(1, CHUNK_CELLS // max(1, L * D))
        parts = [self._values(X[i : i + chunk], reference) for i in range(0, len(X), chunk)]
        values = np.concatenate([v for v, _ in parts]) if parts else np.zeros((0, self.fields))
        base = parts[0][1] if parts else 0.0
        return values, base

    def _values(self, X: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, float]:
        rows, (L, D) = X.shape[0], self._slot_field.shape
        o = self._follows(X)  # (rows, L, D)
        q = self._follows(reference[None, :])[0]  # (L, D)
        padding = self._slot_field < 0
        o |= padding
        q = q | padding
        A, B = o & ~q, ~o & q
        alive = ~np.any(~o & ~q, axis=2)  # (rows, L)
        # The linear models: per slot, record minus reference; NaN in the record -> set G.
        x = X[:, self._lin_column]  # (rows, L, M)
        used = self._lin_slot >= 0
        r_term = np.where(used, self._lin_coeff * reference[self._lin_column], 0.0)
        absent = np.isnan(x) & used
        delta_m = np.where(used & ~absent, self._lin_coeff * np.nan_to_num(x), 0.0) - r_term
        delta = np.zeros((rows, L, D))
        G = np.zeros((rows, L, D), dtype=bool)
        for m in range(self._lin_slot.shape[1]):
            has = np.flatnonzero(used[:, m])
            slot = self._lin_slot[has, m]
            delta[:, has, slot] += delta_m[:, has, m]
            G[:, has, slot] |= absent[:, has, m]
        base_value = self._const + r_term.sum(axis=1)  # (L,): g_l(reference)
        lv = self._leaf_value
        a, b = A.sum(axis=2), B.sum(axis=2)
        N = o & q & ~G
        B2 = B | (G & o & q)
        b2 = B2.sum(axis=2)
        linear = alive & ~np.any(G & A, axis=2)
        c1 = np.where(alive, lv, 0.0)
        c2 = np.where(linear, base_value - lv + np.sum(np.where(A, delta, 0.0), axis=2), 0.0)
        d3 = np.where(linear[:, :, None] & N, delta, 0.0)  # (rows, L, D)
        d3_sum = d3.sum(axis=2)
        phi = (
            A
            * (c1 * self._w_in(a, b) + c2 * self._w_in(a, b2) + d3_sum * self._w_in(a + 1, b2))[
                :, :, None
            ]
            - B * (c1 * self._w_out(a, b))[:, :, None]
            - B2 * (c2 * self._w_out(a, b2) + d3_sum * self._w_out(a + 1, b2))[:, :, None]
            + d3 * self._w_in(a + 1, b2)[:, :, None]
        )
        out = phi.reshape(rows, L * D) @ self._to_fields
        base = float(np.sum(np.where(q.all(axis=1), base_value, 0.0)))
        return out, base

    def _follows(self, X: np.ndarray) -> np.ndarray:
        """Whether each row follows each leaf's path on each of its slots: (rows, L, D)."""
        left = _goes_left(X[:, self._column], self._threshold, self._default_left, self._missing)
        ok = left[:, self._node] == self._left  # (rows, L, K)
        ok |= self._node_slot < 0
        D = self._slot_field.shape[1]
        return (
            np.stack([np.all(ok | (self._node_slot != s), axis=2) for s in range(D)], axis=2)
            if D
            else np.ones((X.shape[0], ok.shape[1], 0), dtype=bool)
        )

    def _w_in(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(a-1)! b! / (a+b)!: a member of A's share (0 where a is 0)."""
        f = self._factorial
        return np.where(a > 0, f[np.maximum(a - 1, 0)] * f[b] / f[a + b], 0.0)

    def _w_out(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """a! (b-1)! / (a+b)!: a member of B's share, negated by the caller (0 where b is 0)."""
        f = self._factorial
        return np.where(b > 0, f[a] * f[np.maximum(b - 1, 0)] / f[a + b], 0.0)


def _paths(tree: Tree) -> list[list[tuple[int, bool]]]:
    """For each leaf, in order, the internal nodes on its path and whether it goes left."""
    paths: dict[int, list[tuple[int, bool]]] = {}
    if len(tree.split_feature) == 0:
        return [[]]
    stack: list[tuple[int, list[tuple[int, bool]]]] = [(0, [])]
    while stack:
        node, path = stack.pop()
        if node < 0:
            paths[~node] = path
            continue
        stack.append((int(tree.left[node]), [*path, (node, True)]))
        stack.append((int(tree.right[node]), [*path, (node, False)]))
    return [paths[leaf] for leaf in range(len(paths))]
