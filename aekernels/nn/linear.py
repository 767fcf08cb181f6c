"""Linear (fully connected), Flatten and Reshape layers."""
from __future__ import annotations

import numpy as np

from .init import default_rng, init_bias, init_weight
from .module import Layer


class Linear(Layer):
    """y = x @ W.T + b, with W of shape (out_features, in_features) as in PyTorch."""

    _param_names = ("weight", "bias")
    _grad_names = ("gweight", "gbias")

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 init: str = "he_uniform", rng=None, dtype=np.float32) -> None:
        self.in_features, self.out_features = in_features, out_features
        rng = default_rng(rng)
        self.weight = init_weight((out_features, in_features), in_features, out_features, init,
                                  rng, dtype)
        self.gweight = np.zeros_like(self.weight)
        if bias:
            self.bias = init_bias(out_features, in_features, init, rng, dtype)
            self.gbias = np.zeros_like(self.bias)
        else:
            self._param_names, self._grad_names = ("weight",), ("gweight",)
            self.bias = self.gbias = None
        self._x: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        y = x @ self.weight.T
        if self.bias is not None:
            y += self.bias
        return y

    def backward(self, grad: np.ndarray) -> np.ndarray:
        np.matmul(grad.T, self._x, out=self.gweight)
        if self.bias is not None:
            np.sum(grad, axis=0, out=self.gbias)
        if not self.need_input_grad:
            return None  # type: ignore[return-value]
        return grad @ self.weight

    def __repr__(self) -> str:
        return f"Linear({self.in_features}, {self.out_features})"


class Flatten(Layer):
    """(N, ...) -> (N, prod(...)), a view when the input is contiguous."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad.reshape(self._shape)


class Reshape(Layer):
    """(N, ...) -> (N, *shape), a view when the input is contiguous."""

    def __init__(self, *shape: int) -> None:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        self.shape = tuple(shape)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._shape = x.shape
        return x.reshape((x.shape[0],) + self.shape)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad.reshape(self._shape)

    def __repr__(self) -> str:
        return f"Reshape{self.shape}"
