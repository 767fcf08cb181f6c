"""The numba backend: the kernels of ``aekernels._dispatch``'s backend contract.

These wrappers only adapt arguments (``None`` bias -> empty array + flag, bool/int
normalisation) and call the ``@njit(parallel=True, cache=True, nogil=True)`` kernels
of ``conv``, ``pool`` and ``upsample``; all arithmetic happens inside numba.  Every
kernel compiles once per dtype (float32, float64): layout is a runtime flag.

Nothing global is changed at import; numba's on-disk cache goes where numba's own
configuration (e.g. ``NUMBA_CACHE_DIR``) says.
"""
from __future__ import annotations

import numpy as np

from ._threads import get_num_threads, run, run_gemm, set_num_threads
from .conv import (conv2d_backward_bias_kernel, conv2d_backward_filter_kernel,
                   conv2d_backward_input_kernel, conv2d_forward_kernel)
from .pool import (_gather_kernel, _scatter_kernel, avg_pool2d_backward_kernel,
                   avg_pool2d_forward_kernel, max_pool2d_forward_kernel)
from .upsample import upsample_nearest2d_backward_kernel, upsample_nearest2d_forward_kernel

__all__ = [
    "conv2d_forward", "conv2d_backward_input", "conv2d_backward_filter",
    "conv2d_backward_bias", "max_pool2d_forward", "max_pool2d_backward",
    "avg_pool2d_forward", "avg_pool2d_backward", "max_unpool2d_forward",
    "max_unpool2d_backward", "upsample_nearest2d_forward", "upsample_nearest2d_backward",
    "set_num_threads", "get_num_threads",
]

_NO_INDICES = np.empty((0, 0, 0, 0), dtype=np.int64)


def _i(v) -> int:
    return int(v)


def _check_4d(*arrays) -> None:
    for a in arrays:
        if a.ndim != 4:
            raise ValueError(f"numba kernel: expected 4-D arrays, got shape {a.shape}")


def conv2d_forward(x, w, bias, y, sh, sw, pt, pl, dh, dw, groups, nhwc):
    """y = conv2d(x, w) + bias (see the backend contract in ``_dispatch``)."""
    _check_4d(x, w, y)
    if bias is None:
        b, has_bias = np.empty(0, dtype=x.dtype), False
    else:
        b, has_bias = bias, True
        if b.ndim != 1:
            raise ValueError(f"numba kernel: bias must be 1-D, got shape {b.shape}")
    run_gemm(conv2d_forward_kernel, x, w, b, has_bias, y, _i(sh), _i(sw), _i(pt), _i(pl),
        _i(dh), _i(dw), _i(groups), bool(nhwc))


def conv2d_backward_input(gy, w, gx, sh, sw, pt, pl, dh, dw, groups, nhwc):
    """gx = adjoint of conv2d_forward in x."""
    _check_4d(gy, w, gx)
    run_gemm(conv2d_backward_input_kernel, gy, w, gx, _i(sh), _i(sw), _i(pt), _i(pl),
        _i(dh), _i(dw), _i(groups), bool(nhwc))


def conv_transpose2d_forward(x, w, bias, y, sh, sw, pt, pl, dh, dw, groups, nhwc):
    """y = conv2d_backward_input(x, w) + bias."""
    conv2d_backward_input(x, w, y, sh, sw, pt, pl, dh, dw, groups, nhwc)
    if bias is not None:
        y += bias if nhwc else bias[:, None, None]


def conv2d_backward_filter(x, gy, gw, sh, sw, pt, pl, dh, dw, groups, nhwc):
    """gw = adjoint of conv2d_forward in w."""
    _check_4d(x, gy, gw)
    run_gemm(conv2d_backward_filter_kernel, x, gy, gw, _i(sh), _i(sw), _i(pt), _i(pl),
        _i(dh), _i(dw), _i(groups), bool(nhwc))


def conv2d_backward_bias(gy, gb, nhwc):
    """gb[k] = sum of gy over batch and space."""
    _check_4d(gy)
    if gb.ndim != 1:
        raise ValueError(f"numba kernel: gb must be 1-D, got shape {gb.shape}")
    run(conv2d_backward_bias_kernel, gy, gb, bool(nhwc))


def max_pool2d_forward(x, y, indices, kh, kw, sh, sw, pt, pl, dh, dw, nhwc):
    """Max pooling; argmax positions h * W + w into ``indices`` unless it is None."""
    _check_4d(x, y)
    if indices is None:
        ind, has_ind = _NO_INDICES, False
    else:
        _check_4d(indices)
        ind, has_ind = indices, True
    run(max_pool2d_forward_kernel, x, y, ind, has_ind, _i(kh), _i(kw), _i(sh), _i(sw),
        _i(pt), _i(pl), _i(dh), _i(dw), bool(nhwc))


def max_pool2d_backward(gy, indices, gx, nhwc):
    """gx = 0; gx[n, c].flat[indices] += gy in row-major order."""
    _check_4d(gy, indices, gx)
    run(_scatter_kernel, gy, indices, gx, True, bool(nhwc))


def avg_pool2d_forward(x, y, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw,
                       count_include_pad, divisor_override, nhwc):
    """Average pooling (divisor rule in the backend contract)."""
    _check_4d(x, y)
    run(avg_pool2d_forward_kernel, x, y, _i(kh), _i(kw), _i(sh), _i(sw), _i(pt), _i(pb),
        _i(pl), _i(pr), _i(dh), _i(dw), bool(count_include_pad),
        _i(divisor_override or 0), bool(nhwc))


def avg_pool2d_backward(gy, gx, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw,
                        count_include_pad, divisor_override, nhwc):
    """Adjoint of avg_pool2d_forward."""
    _check_4d(gy, gx)
    run(avg_pool2d_backward_kernel, gy, gx, _i(kh), _i(kw), _i(sh), _i(sw), _i(pt), _i(pb),
        _i(pl), _i(pr), _i(dh), _i(dw), bool(count_include_pad),
        _i(divisor_override or 0), bool(nhwc))


def max_unpool2d_forward(x, indices, y, nhwc):
    """y = 0; y[n, c].flat[indices] = x in row-major order (last write wins)."""
    _check_4d(x, indices, y)
    run(_scatter_kernel, x, indices, y, False, bool(nhwc))


def max_unpool2d_backward(gy, indices, gx, nhwc):
    """gx = gy[n, c].flat[indices]."""
    _check_4d(gy, indices, gx)
    run(_gather_kernel, gy, indices, gx, bool(nhwc))


def upsample_nearest2d_forward(x, y, fh, fw, nhwc):
    """y[.., h, w] = x[.., h // fh, w // fw]."""
    _check_4d(x, y)
    run(upsample_nearest2d_forward_kernel, x, y, _i(fh), _i(fw), bool(nhwc))


def upsample_nearest2d_backward(gy, gx, fh, fw, nhwc):
    """Adjoint of upsample_nearest2d_forward."""
    _check_4d(gy, gx)
    run(upsample_nearest2d_backward_kernel, gy, gx, _i(fh), _i(fw), bool(nhwc))
