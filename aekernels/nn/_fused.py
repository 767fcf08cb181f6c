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

    # Batch norm over x viewed as (a, c, b): channel j of block i is x[(i*c + j)*b :][:b]
    # (NCHW: a = N, b = H*W; NHWC and (N, C): a = rows, b = 1, vectorised along the
    # channels).  Sums in float64 ("reassoc": LLVM may split them into vector partial
    # sums; serial, so the result does not depend on the thread count).  The float32
    # steps (x - mean, its square, x_hat, the output) are those of the NumPy path in
    # norm.py, so both agree up to the order of the float64 sums.
    _sum_opts = dict(_opts, fastmath={"reassoc"})

    @njit(**_sum_opts)
    def bn_sums(x, a, c, b, center, square):  # pragma: no cover - numba
        """Per channel: sum of x - center (square False) or of its square (True)."""
        out = np.zeros(c)
        for i in range(a):
            if b == 1:
                row = x[i * c:(i + 1) * c]
                for j in range(c):
                    d = row[j] - center[j]
                    out[j] += d * d if square else d
            else:
                for j in range(c):
                    seg = x[(i * c + j) * b:(i * c + j + 1) * b]
                    cj = center[j]
                    acc = 0.0
                    for k in range(b):
                        d = seg[k] - cj
                        acc += d * d if square else d
                    out[j] += acc
        return out

    @njit(**_sum_opts)
    def bn_backward_sums(g, x, a, c, b, mean, inv_std):  # pragma: no cover - numba
        """Per channel: sum of g and of g * x_hat."""
        sg = np.zeros(c)
        sgx = np.zeros(c)
        for i in range(a):
            if b == 1:
                gr, xr = g[i * c:(i + 1) * c], x[i * c:(i + 1) * c]
                for j in range(c):
                    sg[j] += gr[j]
                    sgx[j] += gr[j] * ((xr[j] - mean[j]) * inv_std[j])
            else:
                for j in range(c):
                    gs, xs = g[(i * c + j) * b:(i * c + j + 1) * b], x[(i * c + j) * b:(i * c + j + 1) * b]
                    mj, sj = mean[j], inv_std[j]
                    accg = 0.0
                    accgx = 0.0
                    for k in range(b):
                        accg += gs[k]
                        accgx += gs[k] * ((xs[k] - mj) * sj)
                    sg[j] += accg
                    sgx[j] += accgx
        return sg, sgx

    @njit(**_opts)
    def bn_normalize(x, y, a, c, b, mean, inv_std, w, bias):  # pragma: no cover - numba
        """y = x_hat * w + bias, x_hat = (x - mean) * inv_std."""
        for i in range(a):
            if b == 1:
                xr, yr = x[i * c:(i + 1) * c], y[i * c:(i + 1) * c]
                for j in range(c):
                    yr[j] = (xr[j] - mean[j]) * inv_std[j] * w[j] + bias[j]
            else:
                for j in range(c):
                    xs, ys = x[(i * c + j) * b:(i * c + j + 1) * b], y[(i * c + j) * b:(i * c + j + 1) * b]
                    mj, sj, wj, bj = mean[j], inv_std[j], w[j], bias[j]
                    for k in range(b):
                        ys[k] = (xs[k] - mj) * sj * wj + bj

    @njit(**_opts)
    def bn_backward_input(g, x, a, c, b, mean, inv_std, gb_m, gw_m, scale):  # pragma: no cover
        """g <- scale * (g - mean(g) - x_hat * mean(g * x_hat)), in place."""
        for i in range(a):
            if b == 1:
                gr, xr = g[i * c:(i + 1) * c], x[i * c:(i + 1) * c]
                for j in range(c):
                    gr[j] = ((gr[j] - gb_m[j]) - ((xr[j] - mean[j]) * inv_std[j]) * gw_m[j]) * scale[j]
            else:
                for j in range(c):
                    gs, xs = g[(i * c + j) * b:(i * c + j + 1) * b], x[(i * c + j) * b:(i * c + j + 1) * b]
                    mj, sj, gbj, gwj, scj = mean[j], inv_std[j], gb_m[j], gw_m[j], scale[j]
                    for k in range(b):
                        gs[k] = ((gs[k] - gbj) - ((xs[k] - mj) * sj) * gwj) * scj

    AVAILABLE = True
except Exception:  # pragma: no cover - numba missing or broken: NumPy paths are used
    AVAILABLE = False


def flat(a: np.ndarray) -> np.ndarray | None:
    """A 1-D view of ``a`` if it is C-contiguous, else None."""
    return a.reshape(-1) if a.flags.c_contiguous else None
