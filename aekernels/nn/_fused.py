"""Fused element-wise steps of the layers and optimisers, one pass over memory each.

NumPy needs several passes (and temporaries) for e.g. an Adam update or a ReLU gradient;
these numba kernels do one.  numba is a hard dependency of aekernels; if these kernels
cannot compile (or ``AEKERNELS_NN_FUSED=0``), the callers fall back to NumPy.
Kernels take flat (1-D) contiguous views.
"""
from __future__ import annotations

import os

import numpy as np

ENABLED = os.environ.get("AEKERNELS_NN_FUSED", "1") != "0"

try:
    if not ENABLED:
        raise ImportError("disabled by AEKERNELS_NN_FUSED=0")
    from numba import njit

    # serial on purpose: these are memory-bound single passes, and a second thread pool
    # (beside the kernels' OpenMP and the BLAS) only adds barrier waits on a busy machine
    # error_model="numpy": no ZeroDivisionError checks, so the loops vectorise
    _opts = dict(cache=True, nogil=True, error_model="numpy")

    @njit(**_opts)
    def adam_step(p, g, m, v, one, b1, b2, step_size, bc2_sqrt, eps, wd):  # pragma: no cover - numba
        # PyTorch's arithmetic: p -= step_size * m / (sqrt(v) / sqrt(bc2) + eps)
        # scalars arrive in the arrays' dtype, so float32 runs in float32 like PyTorch
        n = p.shape[0]
        c1 = one - b1
        c2 = one - b2
        for i in range(n):
            gi = g[i] + wd * p[i]
            mi = b1 * m[i] + c1 * gi
            vi = b2 * v[i] + c2 * gi * gi
            m[i] = mi
            v[i] = vi
            p[i] -= step_size * (mi / (np.sqrt(vi) / bc2_sqrt + eps))

    @njit(**_opts)
    def relu_backward(g, y):  # pragma: no cover - numba
        zero = g.dtype.type(0)
        for i in range(g.shape[0]):
            g[i] = g[i] if y[i] > zero else zero     # a select, so it vectorises

    # ReLU on a max pooling's output y, and where y <= 0 the index becomes the window's
    # first in-image position taps[p] (what the pool of the ReLU'd all-zero window
    # records).  NaN is not <= 0: it stays, as in a ReLU.  Flat C-order arrays; the
    # slices make the inner loops simple enough for LLVM (a 3-D index loop ran 10x slower).
    @njit(**_opts)
    def relu_pooled_nchw(y, idx, taps):  # pragma: no cover - numba
        zero = y.dtype.type(0)
        npos = taps.shape[0]
        for plane in range(y.shape[0] // npos):
            ys = y[plane * npos:(plane + 1) * npos]
            ids = idx[plane * npos:(plane + 1) * npos]
            for p in range(npos):
                if ys[p] <= zero:
                    ys[p] = zero
                    ids[p] = taps[p]

    @njit(**_opts)
    def relu_pooled_nhwc(y, idx, taps, channels):  # pragma: no cover - numba
        zero = y.dtype.type(0)
        for pixel in range(y.shape[0] // channels):
            tap = taps[pixel % taps.shape[0]]
            ys = y[pixel * channels:(pixel + 1) * channels]
            ids = idx[pixel * channels:(pixel + 1) * channels]
            for c in range(channels):
                if ys[c] <= zero:
                    ys[c] = zero
                    ids[c] = tap

    # (no fused sigmoid forward: NumPy's vectorised exp in 4 passes beats a scalar-exp loop)

    @njit(**_opts)
    def sigmoid_backward(g, y):  # pragma: no cover - numba
        for i in range(g.shape[0]):
            yi = y[i]
            g[i] = g[i] * (yi - yi * yi)

    AVAILABLE = True
except Exception:  # pragma: no cover - numba missing or broken: NumPy paths are used
    AVAILABLE = False


def flat(a: np.ndarray) -> np.ndarray | None:
    """A 1-D view of ``a`` if it is C-contiguous, else None."""
    return a.reshape(-1) if a.flags.c_contiguous else None
