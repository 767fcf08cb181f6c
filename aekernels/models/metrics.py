"""Evaluation metrics (NumPy only): ROC-AUC, precision@k retrieval, PCA baseline,
confusion matrix."""
from __future__ import annotations

import numpy as np


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (1 = positive),
    by the rank-sum (Mann-Whitney U) formula with average ranks for ties."""
    scores = np.asarray(scores, np.float64)
    labels = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("roc_auc needs both positive and negative labels")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks over ties
    uniq, start, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = start + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def precision_at_k(query_codes: np.ndarray, query_labels: np.ndarray, db_codes: np.ndarray,
                   db_labels: np.ndarray, k: int = 10, exclude_self: bool = False) -> float:
    """Mean fraction of each query's ``k`` nearest database codes (Euclidean) that share
    its label.  ``exclude_self`` drops the zero-distance self match when the query set is
    the database."""
    q = np.asarray(query_codes, np.float64).reshape(len(query_codes), -1)
    d = np.asarray(db_codes, np.float64).reshape(len(db_codes), -1)
    dist = (q * q).sum(1)[:, None] - 2 * q @ d.T + (d * d).sum(1)[None, :]
    if exclude_self:
        np.fill_diagonal(dist, np.inf)
    nn_idx = np.argpartition(dist, k, axis=1)[:, :k]
    hits = np.asarray(db_labels)[nn_idx] == np.asarray(query_labels)[:, None]
    return float(hits.mean())


def pca_mse(x_train: np.ndarray, x_test: np.ndarray, n_components: int) -> float:
    """Test reconstruction MSE of PCA fitted on ``x_train`` with ``n_components``: the
    optimum any linear autoencoder with that code size can reach."""
    a = np.asarray(x_train, np.float64).reshape(len(x_train), -1)
    b = np.asarray(x_test, np.float64).reshape(len(x_test), -1)
    mean = a.mean(0)
    _, _, vt = np.linalg.svd(a - mean, full_matrices=False)
    p = vt[:n_components]
    bc = b - mean
    rec = bc @ p.T @ p
    return float(np.mean((bc - rec) ** 2))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int | None = None) -> np.ndarray:
    """counts[i, j] = number of samples of true class i predicted as j."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    n = n_classes or int(max(y_true.max(), y_pred.max()) + 1)
    return np.bincount(y_true * n + y_pred, minlength=n * n).reshape(n, n)
