"""Losses (``forward(pred, target) -> float``, ``backward() -> dL/dpred``) and activity
penalties (identity layers that add a term to the loss and its gradient).

Means are over all elements for MSE/BCE (PyTorch's ``reduction="mean"``) and over the
batch for cross-entropy and the penalties.
"""
from __future__ import annotations

import numpy as np

from .module import Layer


class Loss:
    def __call__(self, pred: np.ndarray, target: np.ndarray) -> float:
        return self.forward(pred, target)

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        raise NotImplementedError

    def backward(self) -> np.ndarray:
        raise NotImplementedError


class MSELoss(Loss):
    """mean((pred - target)^2)."""

    def forward(self, pred, target):
        diff = np.subtract(pred, target, dtype=pred.dtype)
        self._diff = diff
        flat = diff.reshape(-1)
        return float(np.dot(flat, flat)) / diff.size

    def backward(self):
        diff = self._diff
        diff *= 2.0 / diff.size
        return diff


class BCELoss(Loss):
    """Binary cross-entropy on probabilities (logs clamped at -100, as PyTorch)."""

    def forward(self, pred, target):
        self._p, self._t = pred, target
        with np.errstate(divide="ignore"):
            lp = np.maximum(np.log(pred), -100)
            lq = np.maximum(np.log1p(-pred), -100)
        return float(-np.mean(target * lp + (1 - target) * lq))

    def backward(self):
        p, t = self._p, self._t
        eps = 1e-12
        return ((p - t) / np.maximum(p * (1 - p), eps) / p.size).astype(p.dtype, copy=False)


class BCEWithLogitsLoss(Loss):
    """Binary cross-entropy on logits z: mean(softplus(z) - t*z), numerically stable."""

    def forward(self, logits, target):
        z = logits
        self._z, self._t = z, target
        loss = np.maximum(z, 0) - z * target + np.log1p(np.exp(-np.abs(z)))
        return float(np.mean(loss))

    def backward(self):
        z, t = self._z, self._t
        with np.errstate(over="ignore"):
            g = 1.0 / (1.0 + np.exp(-z))
        g -= t
        g /= z.size
        return g.astype(z.dtype, copy=False)


class CrossEntropyLoss(Loss):
    """Softmax cross-entropy on logits (N, K) with int labels (N,), mean over N."""

    def forward(self, logits, labels):
        z = logits - logits.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z).sum(axis=1, keepdims=True))
        logp = z - lse
        n = logits.shape[0]
        self._logp, self._labels = logp, np.asarray(labels)
        return float(-logp[np.arange(n), self._labels].mean())

    def backward(self):
        p = np.exp(self._logp)
        n = p.shape[0]
        p[np.arange(n), self._labels] -= 1
        p /= n
        return p


class L1ActivityPenalty(Layer):
    """Identity layer adding ``weight * sum|h| / N`` to the loss (an L1 sparsity term on
    the activations it sees, e.g. an autoencoder's code)."""

    def __init__(self, weight: float = 1e-4) -> None:
        self.weight = weight
        self.penalty = 0.0

    def forward(self, x):
        self._x = x
        if self.training:
            self.penalty = self.weight * float(np.abs(x).sum()) / x.shape[0]
        return x

    def backward(self, grad):
        if self.training:
            grad += (self.weight / self._x.shape[0]) * np.sign(self._x)
        return grad

    def __repr__(self) -> str:
        return f"L1ActivityPenalty({self.weight})"


class KLSparsityPenalty(Layer):
    """Identity layer adding ``beta * sum_j KL(rho || rho_hat_j)`` to the loss, where
    ``rho_hat_j`` is unit j's mean activation over the batch (activations in (0, 1),
    e.g. after a Sigmoid).  The classic sparse-autoencoder penalty."""

    def __init__(self, rho: float = 0.05, beta: float = 1.0, eps: float = 1e-6) -> None:
        self.rho, self.beta, self.eps = rho, beta, eps
        self.penalty = 0.0

    def forward(self, x):
        self._x = x
        if self.training:
            rho, r = self.rho, np.clip(x.mean(axis=0, dtype=np.float64), self.eps, 1 - self.eps)
            self._rho_hat = r
            kl = rho * np.log(rho / r) + (1 - rho) * np.log((1 - rho) / (1 - r))
            self.penalty = self.beta * float(kl.sum())
        return x

    def backward(self, grad):
        if self.training:
            r, rho = self._rho_hat, self.rho
            d = self.beta * (-rho / r + (1 - rho) / (1 - r)) / self._x.shape[0]
            grad += d.astype(grad.dtype)
        return grad

    def __repr__(self) -> str:
        return f"KLSparsityPenalty(rho={self.rho}, beta={self.beta})"


def penalty_layers(net: Layer) -> list[Layer]:
    return [l for l in net.layers() if hasattr(l, "penalty")]
