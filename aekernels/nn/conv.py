"""Conv2d and ConvTranspose2d layers on the public aekernels kernels.

Weights are stored in the layout's native format, so no kernel call transposes:
NCHW -> conv weight OIHW (K, C, kh, kw); NHWC -> HWIO (kh, kw, C, K).
ConvTranspose2d takes the weight of the forward conv it inverts (as the kernels do):
NCHW (C_in, C_out, kh, kw) like PyTorch, NHWC (kh, kw, C_out, C_in) like TensorFlow.
The bias is fused into the forward kernel call.
"""
from __future__ import annotations

import numpy as np

from .. import _api as K
from .init import default_rng, init_bias, init_weight
from .module import Layer, _as_tuple


# ---------------------------------------------------------------------------------
# Stride-1 adjoint convolutions as forward convolutions.  For stride 1 and dilation 1,
# conv2d_backward_input(g, w) == conv2d(g, flip(w)^T, padding=k-1-p): the same maths on
# the forward kernel, which for some shapes is the faster kernel.  "auto" times both
# once per shape (min of two runs each) and keeps the faster; "kernel" (the default)
# always uses conv2d_backward_input; "flip" always the forward conv.  Any other geometry
# uses the kernel.  "auto" is opt-in because the two formulations round differently and
# a timing-based pick is not reproducible from run to run (seeded runs must be).


def _flipped(w: np.ndarray, nhwc: bool) -> np.ndarray:
    """Weight of the forward conv equal to the adjoint (backward-input) of conv(., w)."""
    if nhwc:
        return np.ascontiguousarray(w[::-1, ::-1].transpose(0, 1, 3, 2))
    return np.ascontiguousarray(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])


def _flip_padding(pads, kh: int, kw: int):
    (pt, pb), (pl, pr) = pads
    out = ((kh - 1 - pt, kh - 1 - pb), (kw - 1 - pl, kw - 1 - pr))
    return out if min(out[0] + out[1]) >= 0 else None


class _AdjointChooser:
    """Per layer: which of the two equal formulations of the adjoint conv to run."""

    def __init__(self, impl: str) -> None:
        if impl not in ("auto", "kernel", "flip"):
            raise ValueError(f"impl must be 'auto', 'kernel' or 'flip', got {impl!r}")
        self.impl = impl
        self.choice: dict = {}

    def run(self, key, kernel_fn, make_flip):
        """``make_flip()`` gives the forward-conv formulation or None (geometry it does
        not cover); it is only called when ``impl`` may use it, so the default
        ("kernel") costs nothing beyond the kernel call."""
        if self.impl == "kernel":
            return kernel_fn()
        flip_fn = make_flip()
        if flip_fn is None:
            return kernel_fn()
        if self.impl == "flip":
            return flip_fn()
        pick = self.choice.get(key)
        if pick is None:
            import time
            best = {}
            for name, fn in (("kernel", kernel_fn), ("flip", flip_fn)):
                ts = []
                for _ in range(2):
                    t0 = time.perf_counter()
                    out = fn()
                    ts.append(time.perf_counter() - t0)
                best[name] = min(ts)
            pick = self.choice[key] = min(best, key=best.get)
            return out if pick == "flip" else kernel_fn()
        return flip_fn() if pick == "flip" else kernel_fn()


def _check_layout(layout: str) -> str:
    if layout not in ("NCHW", "NHWC"):
        raise ValueError(f"layout must be 'NCHW' or 'NHWC', got {layout!r}")
    return layout


class Conv2d(Layer):
    """2-D convolution: x (N,C,H,W) -> y (N,K,OH,OW) (or NHWC).

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, dilation : int or (int, int)
    padding : int, pair, ((t, b), (l, r)), "valid", "same"
    bias : bool
    layout : "NCHW" or "NHWC"
    init : "he_uniform" (default), "he_normal", "glorot_uniform", "glorot_normal", "torch"
    rng : numpy Generator or seed
    dtype : float32 (default) or float64
    """

    _param_names = ("weight", "bias")
    _grad_names = ("gweight", "gbias")

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, bias: bool = True, *, layout: str = "NCHW", init: str = "he_uniform",
                 rng=None, dtype=np.float32, impl: str = "kernel") -> None:
        self.in_channels, self.out_channels = in_channels, out_channels
        self._adjoint = _AdjointChooser(impl)
        self.kernel_size = _as_tuple(kernel_size)
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.layout = _check_layout(layout)
        kh, kw = self.kernel_size
        rng = default_rng(rng)
        fan_in, fan_out = in_channels * kh * kw, out_channels * kh * kw
        shape = (out_channels, in_channels, kh, kw) if layout == "NCHW" else (kh, kw, in_channels, out_channels)
        self.weight = init_weight(shape, fan_in, fan_out, init, rng, dtype)
        self.gweight = np.zeros_like(self.weight)
        if bias:
            self.bias = init_bias(out_channels, fan_in, init, rng, dtype)
            self.gbias = np.zeros_like(self.bias)
        else:
            self._param_names, self._grad_names = ("weight",), ("gweight",)
            self.bias = self.gbias = None
        self._x: np.ndarray | None = None

    def _geo(self) -> dict:
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation, layout=self.layout)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        return K.conv2d(x, self.weight, self.bias, **self._geo())

    def backward(self, grad: np.ndarray, *, bias_grad: np.ndarray | None = None) -> np.ndarray:
        """``bias_grad``: the bias gradient when the caller has it already (the channel
        sums of ``grad``, e.g. from the smaller tensor a max pooling scattered into it)."""
        x, geo = self._x, self._geo()
        K.conv2d_backward_filter(x, grad, self.weight.shape, out=self.gweight, **geo)
        if self.bias is not None:
            if bias_grad is None:
                bias_grad = K.conv2d_backward_bias(grad, layout=self.layout)
            self.gbias[...] = bias_grad
        if not self.need_input_grad:
            return None  # type: ignore[return-value]

        def make_flip():
            if self.stride != 1 or self.dilation != 1:
                return None
            nhwc = self.layout == "NHWC"
            h, w = (x.shape[1], x.shape[2]) if nhwc else (x.shape[2], x.shape[3])
            g = K._geometry(h, w, self.kernel_size, 1, self.padding, 1)
            pads = _flip_padding(((g.pt, g.pb), (g.pl, g.pr)), *self.kernel_size)
            if pads is None:
                return None
            return lambda: K.conv2d(grad, _flipped(self.weight, nhwc), padding=pads,
                                    layout=self.layout)
        return self._adjoint.run(grad.shape, lambda: K.conv2d_backward_input(grad, self.weight, x.shape, **geo),
                                 make_flip)

    def __repr__(self) -> str:
        return (f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding!r}, layout={self.layout!r})")


class ConvTranspose2d(Layer):
    """Transposed convolution ("deconvolution"): the adjoint of a Conv2d from
    ``out_channels`` to ``in_channels`` with the same geometry.

    ``output_padding`` (or ``output_size`` at call time through ``self.output_size``)
    resolves the ambiguity of the output size when stride > 1.
    """

    _param_names = ("weight", "bias")
    _grad_names = ("gweight", "gbias")

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, dilation=1, bias: bool = True, *, layout: str = "NCHW",
                 init: str = "he_uniform", rng=None, dtype=np.float32, output_size=None,
                 impl: str = "kernel") -> None:
        self.in_channels, self.out_channels = in_channels, out_channels
        self._adjoint = _AdjointChooser(impl)
        self.kernel_size = _as_tuple(kernel_size)
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.output_padding, self.output_size = output_padding, output_size
        self.layout = _check_layout(layout)
        kh, kw = self.kernel_size
        rng = default_rng(rng)
        # He/Glorot for the map this layer computes: each output sees in_channels*k*k/stride^2
        # inputs on average; PyTorch's default uses weight.size(1)*k*k = out_channels*k*k.
        fan_in = (out_channels if init == "torch" else in_channels) * kh * kw
        fan_out = (in_channels if init == "torch" else out_channels) * kh * kw
        shape = (in_channels, out_channels, kh, kw) if layout == "NCHW" else (kh, kw, out_channels, in_channels)
        self.weight = init_weight(shape, fan_in, fan_out, init, rng, dtype)
        self.gweight = np.zeros_like(self.weight)
        if bias:
            self.bias = init_bias(out_channels, fan_in, init, rng, dtype)
            self.gbias = np.zeros_like(self.bias)
        else:
            self._param_names, self._grad_names = ("weight",), ("gweight",)
            self.bias = self.gbias = None
        self._x: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x

        def kernel():
            return K.conv_transpose2d(x, self.weight, self.bias, stride=self.stride,
                                      padding=self.padding, output_padding=self.output_padding,
                                      dilation=self.dilation, layout=self.layout,
                                      output_size=self.output_size)

        def make_flip():
            pad = self.padding
            if (self.stride != 1 or self.dilation != 1 or self.output_size is not None
                    or isinstance(pad, str)):
                return None
            pads = _flip_padding(K._padding(pad), *self.kernel_size)
            if pads is None:
                return None
            return lambda: K.conv2d(x, _flipped(self.weight, self.layout == "NHWC"), self.bias,
                                    padding=pads, layout=self.layout)
        return self._adjoint.run(x.shape, kernel, make_flip)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        # y = conv2d_backward_input(x, w)  =>  dL/dx = conv2d(g, w), dL/dw = filter-grad
        # of that forward conv with input g and output-gradient x.
        # "same" resolves to the same pads for the forward conv over the output size.
        x = self._x
        geo = dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                   layout=self.layout)
        K.conv2d_backward_filter(grad, x, self.weight.shape, out=self.gweight, **geo)
        if self.bias is not None:
            self.gbias[...] = K.conv2d_backward_bias(grad, layout=self.layout)
        if not self.need_input_grad:
            return None  # type: ignore[return-value]
        gx = K.conv2d(grad, self.weight, **geo)
        if gx.shape != x.shape:  # output_padding >= stride (dilation > stride): crop
            gx = np.ascontiguousarray(gx[:, :, :x.shape[2], :x.shape[3]] if self.layout == "NCHW"
                                      else gx[:, :x.shape[1], :x.shape[2], :])
        return gx

    def __repr__(self) -> str:
        return (f"ConvTranspose2d({self.in_channels}, {self.out_channels}, "
                f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding!r}, "
                f"layout={self.layout!r})")

