"""Batch normalisation (PyTorch semantics: biased batch variance to normalise, unbiased
for the running estimate, momentum 0.1, eps 1e-5)."""
from __future__ import annotations

import numpy as np

from .module import Layer


class _BatchNorm(Layer):
    _param_names = ("weight", "bias")
    _grad_names = ("gweight", "gbias")
    _buffer_names = ("running_mean", "running_var")

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, *,
                 dtype=np.float32) -> None:
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = np.ones(num_features, dtype)
        self.bias = np.zeros(num_features, dtype)
        self.gweight = np.zeros_like(self.weight)
        self.gbias = np.zeros_like(self.bias)
        self.running_mean = np.zeros(num_features, dtype)
        self.running_var = np.ones(num_features, dtype)

    # subclasses: _rows(x) -> 2-D view (rows, C) or None, _axes, _bshape
    def _stats_axes(self, x):
        raise NotImplementedError

    def forward(self, x: np.ndarray) -> np.ndarray:
        axes, shape = self._stats_axes(x)
        if self.training:
            mean = x.mean(axis=axes, dtype=np.float64)
            xc = x - mean.astype(x.dtype).reshape(shape)
            var = np.mean(np.square(xc), axis=axes, dtype=np.float64)
            m = x.size // self.num_features
            mom = self.momentum
            self.running_mean *= 1 - mom
            self.running_mean += (mom * mean).astype(self.running_mean.dtype)
            self.running_var *= 1 - mom
            self.running_var += (mom * var * m / max(m - 1, 1)).astype(self.running_var.dtype)
        else:
            mean, var = self.running_mean, self.running_var
            xc = x - mean.astype(x.dtype).reshape(shape)
        inv_std = (1.0 / np.sqrt(np.asarray(var, np.float64) + self.eps)).astype(x.dtype)
        xc *= inv_std.reshape(shape)          # xc is now x_hat
        self._xhat, self._inv_std = xc, inv_std
        y = xc * self.weight.reshape(shape)
        y += self.bias.reshape(shape)
        return y

    def backward(self, grad: np.ndarray) -> np.ndarray:
        axes, shape = self._stats_axes(grad)
        xhat = self._xhat
        np.sum(grad, axis=axes, out=self.gbias)
        np.sum(grad * xhat, axis=axes, out=self.gweight)
        if not self.need_input_grad:
            return None  # type: ignore[return-value]
        scale = (self.weight * self._inv_std).reshape(shape)
        if not self.training:
            grad *= scale
            return grad
        m = grad.size // self.num_features
        # dx = gamma/std * (g - mean(g) - xhat * mean(g * xhat))
        grad -= (self.gbias / m).reshape(shape)
        xhat *= (self.gweight / m).reshape(shape)
        grad -= xhat
        grad *= scale
        return grad


class BatchNorm1d(_BatchNorm):
    """Over the features of (N, C) input."""

    def _stats_axes(self, x):
        return 0, (1, self.num_features)

    def __repr__(self) -> str:
        return f"BatchNorm1d({self.num_features})"


class BatchNorm2d(_BatchNorm):
    """Per channel of (N, C, H, W) (``layout="NCHW"``) or (N, H, W, C) input."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, *,
                 layout: str = "NCHW", dtype=np.float32) -> None:
        super().__init__(num_features, eps, momentum, dtype=dtype)
        if layout not in ("NCHW", "NHWC"):
            raise ValueError(f"layout must be 'NCHW' or 'NHWC', got {layout!r}")
        self.layout = layout

    def _stats_axes(self, x):
        if self.layout == "NHWC":
            return (0, 1, 2), (1, 1, 1, self.num_features)
        return (0, 2, 3), (1, self.num_features, 1, 1)

    def __repr__(self) -> str:
        return f"BatchNorm2d({self.num_features}, layout={self.layout!r})"
