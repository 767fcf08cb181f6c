"""Pooling, unpooling and upsampling layers on the public aekernels kernels."""
from __future__ import annotations

import numpy as np

from .. import _api as K
from . import _fused
from .activations import ReLU
from .conv import Conv2d, _check_layout
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
        self._first_taps: dict = {}       # (H, W) -> first_taps()

    def forward(self, x: np.ndarray) -> np.ndarray:
        y, self.indices = K.max_pool2d(x, self.kernel_size, self.stride, self.padding,
                                       self.dilation, self.ceil_mode, return_indices=True,
                                       layout=self.layout)
        self.input_shape = x.shape
        return y

    def first_taps(self) -> np.ndarray:
        """Per output position (oh, ow) of the latest forward, flattened, the index
        (``h*W+w``) of its window's first in-image position."""
        s = self.input_shape
        nhwc = self.layout == "NHWC"
        h, w = (s[1], s[2]) if nhwc else (s[2], s[3])
        taps = self._first_taps.get((h, w))
        if taps is None:
            g = K._pool_geometry(h, w, self.kernel_size, self.stride, self.padding,
                                 self.dilation, self.ceil_mode)
            rows = _first_tap(g.oh, g.sh, g.dh, g.pt)
            cols = _first_tap(g.ow, g.sw, g.dw, g.pl)
            taps = self._first_taps[(h, w)] = (rows[:, None] * w + cols[None, :]).reshape(-1)
        return taps

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if not self.need_input_grad:
            return None  # type: ignore[return-value]
        return K.max_pool2d_backward(grad, self.indices, self.input_shape, layout=self.layout)

    def __repr__(self) -> str:
        return f"MaxPool2d({self.kernel_size}, stride={self.stride}, layout={self.layout!r})"


def _first_tap(n_out: int, stride: int, dilation: int, pad_lo: int) -> np.ndarray:
    """Per output position along one axis, the first window position inside the image."""
    start = np.arange(n_out, dtype=np.int64) * stride - pad_lo
    return start + np.maximum(0, -(start // dilation)) * dilation


class PoolThenReLU(Layer):
    """``MaxPool2d(ReLU(x))`` computed as ``ReLU(MaxPool2d(x))``: the ReLU (forward and
    backward) then runs on the pooled output, a kernel-area fraction of the input.

    Same values, gradients and pool indices as the two layers in their own order:
    ReLU is monotone, so max(relu(x)) == relu(max(x)), and where the window's max is
    > 0 both orders record the same argmax (ties keep their order).  Where it is <= 0
    the ReLU'd window is all zeros, whose first maximum is the window's first in-image
    position: the indices are set to that, because a paired MaxUnpool2d may scatter
    other values there.  (A pooled -0.0 may come out as +0.0 or back: equal values.)
    Sequential builds these steps; the layers themselves stay as they are.
    """

    def __init__(self, relu: ReLU, pool: "MaxPool2d") -> None:
        self.relu, self.pool = relu, pool

    def forward(self, x: np.ndarray) -> np.ndarray:
        pool, relu = self.pool, self.relu
        y = pool.forward(x)                      # fresh arrays: safe to overwrite
        taps = pool.first_taps()
        if _fused.AVAILABLE:
            yf, idxf = y.reshape(-1), pool.indices.reshape(-1)
            if pool.layout == "NHWC":
                _fused.relu_pooled_nhwc(yf, idxf, taps, y.shape[3])
            else:
                _fused.relu_pooled_nchw(yf, idxf, taps)
            relu._y = y                          # what ReLU.forward keeps for its backward
            return y
        hw = pool.indices.shape[1:3] if pool.layout == "NHWC" else pool.indices.shape[2:]
        bcast = taps.reshape(hw + (1,) if pool.layout == "NHWC" else hw)
        np.copyto(pool.indices, bcast, where=y <= 0)   # NaN stays: it wins in both orders
        return relu.forward(y)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return self.pool.backward(self.relu.backward(grad))

    def __repr__(self) -> str:
        return f"PoolThenReLU({self.pool!r}, {self.relu!r})"


class ConvThenPoolReLU(Layer):
    """``Conv2d`` followed by a :class:`PoolThenReLU`, with the conv's bias gradient
    taken from the pooled gradient: max-pool backward moves every pooled gradient
    entry to one position of the same (n, c) plane, so the channel sums (the bias
    gradient) are those of the pooled gradient, a kernel-area fraction of the size.
    Equal to the separate layers' result up to the order of the float additions."""

    def __init__(self, conv: Conv2d, pool_relu: PoolThenReLU) -> None:
        self.conv, self.pool_relu = conv, pool_relu

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.pool_relu.forward(self.conv.forward(x))

    def backward(self, grad: np.ndarray) -> np.ndarray:
        conv, pool, relu = self.conv, self.pool_relu.pool, self.pool_relu.relu
        grad = relu.backward(grad)
        bias_grad = None
        if conv.bias is not None:
            bias_grad = K.conv2d_backward_bias(grad, layout=pool.layout)
        grad = pool.backward(grad)
        if grad is None:                 # the pool needs no input gradient: nor the conv
            return None  # type: ignore[return-value]
        return conv.backward(grad, bias_grad=bias_grad)

    def __repr__(self) -> str:
        return f"ConvThenPoolReLU({self.conv!r}, {self.pool_relu!r})"


def fuse_relu_max_pool(layers: list[Layer]) -> list[Layer]:
    """``layers`` with every ReLU directly followed by a MaxPool2d replaced by one
    :class:`PoolThenReLU` step, joined with a directly preceding Conv2d of the same
    layout into a :class:`ConvThenPoolReLU` (the execution plan of a Sequential)."""
    steps: list[Layer] = []
    i = 0
    while i < len(layers):
        layer = layers[i]
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        if type(layer) is ReLU and type(nxt) is MaxPool2d:
            step: Layer = PoolThenReLU(layer, nxt)
            prev = steps[-1] if steps else None
            if type(prev) is Conv2d and prev.layout == nxt.layout:
                steps[-1] = ConvThenPoolReLU(prev, step)
            else:
                steps.append(step)
            i += 2
        else:
            steps.append(layer)
            i += 1
    return steps


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
