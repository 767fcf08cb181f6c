"""Optimisers that update parameters in place (PyTorch's update rules, so a step
matches ``torch.optim.SGD`` / ``torch.optim.Adam`` to rounding).

Give them the arrays of ``net.params()`` / ``net.grads()``, or the two flat buffers of
``nn.flatten_parameters`` (fastest: a step is then a handful of whole-buffer ops).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from . import _fused


class Optimizer:
    def __init__(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], lr: float) -> None:
        self.params, self.grads = list(params), list(grads)
        if len(self.params) != len(self.grads):
            raise ValueError("params and grads must have the same length")
        for p, g in zip(self.params, self.grads):
            if p.shape != g.shape or p.dtype != g.dtype:
                raise ValueError(f"parameter {p.shape}/{p.dtype} and gradient {g.shape}/{g.dtype} differ")
        self.lr = lr
        self.t = 0

    def zero_grad(self) -> None:
        for g in self.grads:
            g[...] = 0

    def step(self) -> None:
        raise NotImplementedError

    def state(self) -> dict[str, np.ndarray]:
        return {}


class SGD(Optimizer):
    """p -= lr * v, v = momentum * v + (g + weight_decay * p) (v = g at the first step)."""

    def __init__(self, params, grads, lr: float = 0.01, momentum: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(params, grads, lr)
        self.momentum, self.weight_decay, self.nesterov = momentum, weight_decay, nesterov
        self.velocity = [np.zeros_like(p) for p in self.params] if momentum else None

    def step(self) -> None:
        self.t += 1
        for i, (p, g) in enumerate(zip(self.params, self.grads)):
            if self.weight_decay:
                g += self.weight_decay * p
            d = g
            if self.momentum:
                v = self.velocity[i]
                if self.t == 1:
                    v[...] = g
                else:
                    v *= self.momentum
                    v += g
                if self.nesterov:
                    g += self.momentum * v
                    d = g
                else:
                    d = v
            p -= self.lr * d


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction, PyTorch's arithmetic:
    p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps); weight_decay adds wd*p to g (L2, not AdamW)."""

    def __init__(self, params, grads, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, grads, lr)
        self.b1, self.b2 = betas
        self.eps, self.weight_decay = eps, weight_decay
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self._tmp = [np.empty_like(p) if not _fused.AVAILABLE else None for p in self.params]

    def step(self) -> None:
        self.t += 1
        b1, b2 = self.b1, self.b2
        bc1 = 1 - b1 ** self.t
        bc2_sqrt = math.sqrt(1 - b2 ** self.t)
        step_size = self.lr / bc1
        for p, g, m, v, tmp in zip(self.params, self.grads, self.m, self.v, self._tmp):
            if _fused.AVAILABLE and p.flags.c_contiguous and g.flags.c_contiguous:
                # one fused pass over p, g, m, v (same arithmetic as below)
                t = p.dtype.type
                _fused.adam_step(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1),
                                 t(1), t(b1), t(b2), t(step_size), t(bc2_sqrt), t(self.eps),
                                 t(self.weight_decay))
                continue
            if self.weight_decay:
                g += self.weight_decay * p
            # m = b1 m + (1-b1) g ;  v = b2 v + (1-b2) g^2   (all in place)
            m *= b1
            np.multiply(g, 1 - b1, out=tmp)
            m += tmp
            v *= b2
            np.multiply(g, g, out=tmp)
            tmp *= 1 - b2
            v += tmp
            np.sqrt(v, out=tmp)
            tmp /= bc2_sqrt
            tmp += self.eps
            np.divide(m, tmp, out=tmp)
            tmp *= step_size
            p -= tmp
