"""Pooling, unpooling and upsampling layers on the public aekernels kernels."""
from __future__ import annotations

import numpy as np

from .. import _api as K
from .conv import _check_layout
from .module import Layer


class MaxPool2d(Layer):
    """Max pooling that records the argmax positions (``self.indices``, int64, ``h*W+w``
    per plane) for its own backward and for a paired :class:`MaxUnpool2d`."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
                 *, layout: str = "NCHW") -> None:
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.ceil_mode = dilation, ceil_mode
        self.layout = _check_layout(layout)
        self.indices: np.ndarray | None = None
        self.input_shape: tuple[int, ...] | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        y, self.indices = K.max_pool2d(x, self.kernel_size, self.stride, self.padding,
                                       self.dilation, self.ceil_mode, return_indices=True,
                                       layout=self.layout)
        self.input_shape = x.shape
        return y

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if not self.need_input_grad:
            return None  # type: ignore[return-value]
        return K.max_pool2d_backward(grad, self.indices, self.input_shape, layout=self.layout)

    def __repr__(self) -> str:
        return f"MaxPool2d({self.kernel_size}, stride={self.stride}, layout={self.layout!r})"


class MaxUnpool2d(Layer):
    """Max-unpooling paired with a :class:`MaxPool2d`: scatters its input to the positions
    that pool recorded in its latest forward, into the shape of the pool's input."""

    def __init__(self, pool: MaxPool2d) -> None:
        if not isinstance(pool, MaxPool2d):
            raise TypeError(f"MaxUnpool2d needs the MaxPool2d it inverts, got {type(pool).__name__}")
        self.pool = pool

    def forward(self, x: np.ndarray) -> np.ndarray:
        p = self.pool
        if p.indices is None:
            raise RuntimeError("MaxUnpool2d: its MaxPool2d has not run forward yet")
        if p.indices.shape != x.shape:
            raise ValueError(f"MaxUnpool2d: input shape {x.shape} differs from the paired "
                             f"pool's output {p.indices.shape}")
        s = p.input_shape
        hw = (s[1], s[2]) if p.layout == "NHWC" else (s[2], s[3])
        return K.max_unpool2d(x, p.indices, p.kernel_size, p.stride, p.padding,
                              output_size=hw, layout=p.layout)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return K.max_unpool2d_backward(grad, self.pool.indices, layout=self.pool.layout)

    def __repr__(self) -> str:
        return f"MaxUnpool2d(paired with {self.pool!r})"


class AvgPool2d(Layer):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, *, layout: str = "NCHW") -> None:
        self.kw = dict(kernel_size=kernel_size, stride=stride, padding=padding,
                       ceil_mode=ceil_mode, count_include_pad=count_include_pad)
        self.layout = _check_layout(layout)
        self.input_shape: tuple[int, ...] | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.input_shape = x.shape
        return K.avg_pool2d(x, layout=self.layout, **self.kw)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if not self.need_input_grad:
            return None  # type: ignore[return-value]
        return K.avg_pool2d_backward(grad, self.input_shape, layout=self.layout, **self.kw)

    def __repr__(self) -> str:
        return f"AvgPool2d({self.kw['kernel_size']}, stride={self.kw['stride']}, layout={self.layout!r})"


class Upsample(Layer):
    """Nearest-neighbour upsampling by integer factors."""

    def __init__(self, scale_factor, *, layout: str = "NCHW") -> None:
        self.scale_factor = scale_factor
        self.layout = _check_layout(layout)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return K.upsample_nearest2d(x, self.scale_factor, layout=self.layout)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return K.upsample_nearest2d_backward(grad, self.scale_factor, layout=self.layout)

    def __repr__(self) -> str:
        return f"Upsample({self.scale_factor}, layout={self.layout!r})"
