"""Batch normalisation (PyTorch semantics: biased batch variance to normalise, unbiased
for the running estimate, momentum 0.1, eps 1e-5)."""
from __future__ import annotations

import numpy as np

from . import _fused
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

    def _blocks(self, x) -> tuple[int, int]:
        """(a, b) with x viewed as (a, C, b) (see _fused.bn_sums)."""
        raise NotImplementedError

    def _fused_view(self, x: np.ndarray) -> np.ndarray | None:
        """x as a flat view for the numba kernels, or None (NumPy path)."""
        if not _fused.AVAILABLE or x.dtype != self.weight.dtype:
            return None
        return _fused.flat(x)

    def _batch_stats(self, x: np.ndarray, xf: np.ndarray | None):
        """float64 per-channel mean and biased variance of the batch (two passes), and
        on the NumPy path x - mean (for the normalisation to reuse)."""
        axes, shape = self._stats_axes(x)
        if xf is not None:
            a, b = self._blocks(x)
            c = self.num_features
            mean = _fused.bn_sums(xf, a, c, b, np.zeros(c, x.dtype), False) / (a * b)
            var = _fused.bn_sums(xf, a, c, b, mean.astype(x.dtype), True) / (a * b)
            return mean, var, None
        mean = x.mean(axis=axes, dtype=np.float64)
        xc = x - mean.astype(x.dtype).reshape(shape)
        return mean, np.mean(np.square(xc), axis=axes, dtype=np.float64), xc

    def forward(self, x: np.ndarray) -> np.ndarray:
        axes, shape = self._stats_axes(x)
        xf = self._fused_view(x)
        xc = None
        if self.training:
            mean, var, xc = self._batch_stats(x, xf)
            m = x.size // self.num_features
            mom = self.momentum
            self.running_mean *= 1 - mom
            self.running_mean += (mom * mean).astype(self.running_mean.dtype)
            self.running_var *= 1 - mom
            self.running_var += (mom * var * m / max(m - 1, 1)).astype(self.running_var.dtype)
        else:
            mean, var = self.running_mean, self.running_var
        mean = np.asarray(mean).astype(x.dtype)
        inv_std = (1.0 / np.sqrt(np.asarray(var, np.float64) + self.eps)).astype(x.dtype)
        self._mean, self._inv_std = mean, inv_std
        if xf is not None:
            # one pass; backward recomputes x_hat from x (kept, not copied: layers
            # never write into their input) instead of storing it
            y = np.empty_like(x)
            a, b = self._blocks(x)
            _fused.bn_normalize(xf, y.reshape(-1), a, self.num_features, b, mean, inv_std,
                                self.weight, self.bias)
            self._x, self._xhat = x, None
            return y
        if xc is None:
            xc = x - mean.reshape(shape)
        xc *= inv_std.reshape(shape)          # xc is now x_hat
        self._x, self._xhat = None, xc
        y = xc * self.weight.reshape(shape)
        y += self.bias.reshape(shape)
        return y

    def backward(self, grad: np.ndarray) -> np.ndarray:
        axes, shape = self._stats_axes(grad)
        x = self._x
        gf = _fused.flat(grad) if x is not None else None
        m = grad.size // self.num_features
        if gf is not None:
            a, b = self._blocks(grad)
            sg, sgx = _fused.bn_backward_sums(gf, x.reshape(-1), a, self.num_features, b,
                                              self._mean, self._inv_std)
            self.gbias[...] = sg
            self.gweight[...] = sgx
        else:
            xhat = self._xhat if x is None else (x - self._mean.reshape(shape)) * self._inv_std.reshape(shape)
            np.sum(grad, axis=axes, out=self.gbias)
            np.sum(grad * xhat, axis=axes, out=self.gweight)
        if not self.need_input_grad:
            return None  # type: ignore[return-value]
        scale = self.weight * self._inv_std
        if not self.training:
            grad *= scale.reshape(shape)
            return grad
        # dx = gamma/std * (g - mean(g) - xhat * mean(g * xhat))
        gb_m, gw_m = self.gbias / m, self.gweight / m
        if gf is not None:
            _fused.bn_backward_input(gf, x.reshape(-1), a, self.num_features, b, self._mean,
                                     self._inv_std, gb_m, gw_m, scale)
            return grad
        grad -= gb_m.reshape(shape)
        xhat *= gw_m.reshape(shape)
        grad -= xhat
        grad *= scale.reshape(shape)
        return grad


class BatchNorm1d(_BatchNorm):
    """Over the features of (N, C) input."""

    def _stats_axes(self, x):
        return 0, (1, self.num_features)

    def _blocks(self, x):
        return x.shape[0], 1

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

    def _blocks(self, x):
        n, d1, d2, d3 = x.shape
        return (n * d1 * d2, 1) if self.layout == "NHWC" else (n, d2 * d3)

    def __repr__(self) -> str:
        return f"BatchNorm2d({self.num_features}, layout={self.layout!r})"
