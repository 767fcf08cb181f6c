"""Element-wise activations and Softmax.

With ``inplace=True`` the forward overwrites its input (safe after Conv2d, Linear,
ConvTranspose2d, pooling: none of them needs its own output for backward).  Backward
overwrites the incoming gradient (see ``module`` for the ownership rule).
"""
from __future__ import annotations

import numpy as np

from . import _fused
from .module import Layer


class ReLU(Layer):
    def __init__(self, inplace: bool = False) -> None:
        self.inplace = inplace

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = np.maximum(x, 0, out=x if self.inplace else None)
        self._y = y
        return y

    def backward(self, grad: np.ndarray) -> np.ndarray:
        # grad where y > 0, else 0 (y == 0 exactly where x <= 0)
        y = self._y
        if _fused.AVAILABLE and grad.flags.c_contiguous and y.flags.c_contiguous and grad.shape == y.shape:
            _fused.relu_backward(grad.reshape(-1), y.reshape(-1))
        else:
            np.multiply(grad, (y > 0).view(np.uint8), out=grad, casting="unsafe")
        return grad

    def __repr__(self) -> str:
        return f"ReLU(inplace={self.inplace})"


class LeakyReLU(Layer):
    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._neg = x < 0
        y = x if self.inplace else x.copy()
        np.multiply(y, self.negative_slope, out=y, where=self._neg)
        return y

    def backward(self, grad: np.ndarray) -> np.ndarray:
        np.multiply(grad, self.negative_slope, out=grad, where=self._neg)
        return grad


class Sigmoid(Layer):
    def __init__(self, inplace: bool = False) -> None:
        self.inplace = inplace

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = np.negative(x, out=x if self.inplace else None)
        with np.errstate(over="ignore"):
            np.exp(y, out=y)          # exp(-x) may overflow to inf: 1/(1+inf) = 0, correct
        y += 1
        np.reciprocal(y, out=y)
        self._y = y
        return y

    def backward(self, grad: np.ndarray) -> np.ndarray:
        y = self._y
        if _fused.AVAILABLE and grad.flags.c_contiguous and y.flags.c_contiguous and grad.shape == y.shape:
            _fused.sigmoid_backward(grad.reshape(-1), y.reshape(-1))
            return grad
        grad *= y
        grad *= 1 - y                  # dy/dx = y (1 - y)
        return grad


class Tanh(Layer):
    def __init__(self, inplace: bool = False) -> None:
        self.inplace = inplace

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._y = np.tanh(x, out=x if self.inplace else None)
        return self._y

    def backward(self, grad: np.ndarray) -> np.ndarray:
        y2 = np.square(self._y)
        np.subtract(1, y2, out=y2)
        grad *= y2
        return grad


class Softmax(Layer):
    """Softmax over ``axis`` (default the last)."""

    def __init__(self, axis: int = -1) -> None:
        self.axis = axis

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = x - x.max(axis=self.axis, keepdims=True)
        np.exp(y, out=y)
        y /= y.sum(axis=self.axis, keepdims=True)
        self._y = y
        return y

    def backward(self, grad: np.ndarray) -> np.ndarray:
        y = self._y
        dot = np.sum(grad * y, axis=self.axis, keepdims=True)
        grad -= dot
        grad *= y
        return grad
