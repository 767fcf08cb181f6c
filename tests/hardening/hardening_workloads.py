"""Fixed, deterministic calls of every kernel at a chosen size (threads, memory, determinism).

``workload(kernel, size, dtype, layout)`` returns (args, kwargs) for aekernels.<kernel>;
``size`` scales the batch so the same shapes serve tiny loops (size=1) and long calls.
"""
from __future__ import annotations

import numpy as np

import aekernels

KERNELS = (
    "conv2d", "conv2d_backward_input", "conv2d_backward_filter", "conv2d_backward_bias",
    "conv_transpose2d", "max_pool2d", "max_pool2d_backward", "avg_pool2d",
    "avg_pool2d_backward", "max_unpool2d", "max_unpool2d_backward", "upsample_nearest2d",
    "upsample_nearest2d_backward",
)


def _rand(shape, seed, dtype):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _t(a, layout):
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)) if layout == "NHWC" else a


def _tw(w, layout):
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0)) if layout == "NHWC" else w


def _sh(shape, layout):
    n, c, h, w = shape
    return (n, h, w, c) if layout == "NHWC" else shape


def workload(kernel: str, n: int = 1, dtype=np.float32, layout: str = "NCHW",
             c: int = 4, hw: int = 12, k: int = 3):
    """(args, kwargs) of a valid call of ``kernel`` with batch ``n``."""
    L = dict(layout=layout)
    x = _rand((n, c, hw, hw), 1, dtype)
    if kernel in ("conv2d", "conv2d_backward_input", "conv2d_backward_filter",
                  "conv_transpose2d", "conv2d_backward_bias"):
        kk = 2 * c
        w = _rand((kk, c, k, k), 2, dtype)
        conv = dict(stride=1, padding=k // 2)   # odd k: output hw x hw
        gy = _rand((n, kk, hw, hw), 3, dtype)
        if kernel == "conv2d":
            return [_t(x, layout), _tw(w, layout), _rand((kk,), 4, dtype)], dict(conv, **L)
        if kernel == "conv2d_backward_input":
            return [_t(gy, layout), _tw(w, layout), _sh(x.shape, layout)], dict(conv, **L)
        if kernel == "conv2d_backward_filter":
            return [_t(x, layout), _t(gy, layout), _tw(w, layout).shape], dict(conv, **L)
        if kernel == "conv2d_backward_bias":
            return [_t(gy, layout)], L
        # conv_transpose2d: x has kk channels, weight (kk, c, k, k) (NCHW) / (k, k, c, kk)
        wt = _rand((kk, c, k, k), 5, dtype)
        return [_t(gy, layout), _tw(wt, layout), None], dict(stride=2, padding=k // 2,
                                                            output_padding=1, **L)
    pool = dict(kernel_size=k, stride=2, padding=1)
    oh = (hw + 2 - k) // 2 + 1
    if kernel == "max_pool2d":
        return [_t(x, layout)], dict(pool, return_indices=True, **L)
    if kernel == "avg_pool2d":
        return [_t(x, layout)], dict(pool, count_include_pad=False, **L)
    gy = _rand((n, c, oh, oh), 6, dtype)
    if kernel == "max_pool2d_backward":
        _, idx = aekernels.max_pool2d(_t(x, layout), **pool, return_indices=True, **L)
        return [_t(gy, layout), idx, _sh(x.shape, layout)], L
    if kernel == "avg_pool2d_backward":
        return [_t(gy, layout), _sh(x.shape, layout)], dict(pool, count_include_pad=False, **L)
    if kernel in ("max_unpool2d", "max_unpool2d_backward"):
        y, idx = aekernels.max_pool2d(_t(x, layout), 2, return_indices=True, **L)
        if kernel == "max_unpool2d":
            return [y, idx, 2], dict(output_size=(hw, hw), **L)
        return [_t(x, layout), idx], L
    if kernel == "upsample_nearest2d":
        return [_t(x, layout), 2], L
    if kernel == "upsample_nearest2d_backward":
        return [_t(x, layout), 2], L
    raise KeyError(kernel)


def call(kernel, args, kwargs):
    return getattr(aekernels, kernel)(*args, **kwargs)


def as_tuple(result):
    return result if isinstance(result, tuple) else (result,)
