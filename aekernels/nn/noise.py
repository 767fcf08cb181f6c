"""Stochastic layers, active only in training mode: Dropout, GaussianNoise, MaskingNoise.

Each owns a seeded Generator, so a run is reproducible from the model seed.
"""
from __future__ import annotations

import numpy as np

from .init import default_rng
from .module import Layer


class Dropout(Layer):
    """Inverted dropout: zero with probability ``p`` and scale the rest by 1/(1-p)."""

    def __init__(self, p: float = 0.5, *, rng=None) -> None:
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p, self.rng = p, default_rng(rng)
        self._mask = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not self.training or self.p == 0:
            self._mask = None
            return x
        keep = self.rng.random(x.shape, dtype=np.float32) >= self.p
        self._mask = keep.astype(x.dtype)
        self._mask *= 1.0 / (1.0 - self.p)
        return x * self._mask

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if self._mask is not None:
            grad *= self._mask
        return grad

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"


class GaussianNoise(Layer):
    """x + N(0, std^2) in training (the denoising AE's corruption); identity in eval."""

    def __init__(self, std: float = 0.3, clip: tuple[float, float] | None = None, *, rng=None) -> None:
        self.std, self.clip, self.rng = std, clip, default_rng(rng)
        self._pass = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not self.training or self.std == 0:
            self._pass = None
            return x
        y = self.rng.standard_normal(x.shape, dtype=np.float32).astype(x.dtype, copy=False)
        y *= self.std
        y += x
        if self.clip is not None:
            self._pass = (y >= self.clip[0]) & (y <= self.clip[1])
            np.clip(y, *self.clip, out=y)
        return y

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if self._pass is not None:
            grad *= self._pass
        return grad

    def __repr__(self) -> str:
        return f"GaussianNoise(std={self.std})"


class MaskingNoise(Layer):
    """Set a fraction ``p`` of the inputs to 0 in training (no rescaling); identity in eval."""

    def __init__(self, p: float = 0.3, *, rng=None) -> None:
        if not 0 <= p <= 1:
            raise ValueError(f"MaskingNoise: p must be in [0, 1], got {p}")
        self.p, self.rng = p, default_rng(rng)
        self._keep = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not self.training or self.p == 0:
            self._keep = None
            return x
        self._keep = self.rng.random(x.shape, dtype=np.float32) >= self.p
        return x * self._keep

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if self._keep is not None:
            grad *= self._keep
        return grad

    def __repr__(self) -> str:
        return f"MaskingNoise(p={self.p})"
