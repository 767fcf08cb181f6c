"""Numba nearest-neighbour upsampling by integer factors (fh, fw), and its adjoint.

Both directions are gathers, parallel over output rows, so every prange iteration
owns its output and the backward sum has a fixed (a, b) order.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

# unsigned flat indices: no wraparound code, so LLVM vectorises (see pool.py)
U = np.uint64

_JIT = dict(cache=True, fastmath=False, nogil=True)


@njit(cache=True, nogil=True)
def _check(small, big, fh, fw, nhwc):
    if fh < 1 or fw < 1:
        raise ValueError("upsample_nearest2d kernel: factors must be >= 1")
    if nhwc:
        ok = (small.shape[0] == big.shape[0] and small.shape[3] == big.shape[3]
              and small.shape[1] * fh == big.shape[1] and small.shape[2] * fw == big.shape[2])
    else:
        ok = (small.shape[0] == big.shape[0] and small.shape[1] == big.shape[1]
              and small.shape[2] * fh == big.shape[2] and small.shape[3] * fw == big.shape[3])
    if not ok:
        raise ValueError("upsample_nearest2d kernel: shapes inconsistent with the factors")


@njit(parallel=True, **_JIT)
def upsample_nearest2d_forward_kernel(x, y, fh, fw, nhwc):
    # x (N,C,H,W) -> y (N,C,H*fh,W*fw); y[.., h, w] = x[.., h // fh, w // fw]
    _check(x, y, fh, fw, nhwc)
    if nhwc:
        N, OH, OW, C = y.shape
        W = x.shape[2]
        xf = x.reshape(-1)
        yf = y.reshape(-1)
        for t in prange(N * OH):
            n = t // OH
            h = t - n * OH
            src = (n * x.shape[1] + h // fh) * W * C
            for w in range(OW):
                s = src + (w // fw) * C
                d = (t * OW + w) * C
                for c in range(C):
                    yf[U(d + c)] = xf[U(s + c)]
    else:
        N, C, OH, OW = y.shape
        H = x.shape[2]
        W = x.shape[3]
        xf = x.reshape(-1)
        yf = y.reshape(-1)
        for t in prange(N * C * OH):
            nc = t // OH
            h = t - nc * OH
            src = (nc * H + h // fh) * W
            d = t * OW
            if fw == 2:
                for w in range(OW):
                    yf[U(d + w)] = xf[U(src + (w >> 1))]
            else:
                for ws in range(W):
                    v = xf[U(src + ws)]
                    for b in range(fw):
                        yf[U(d + ws * fw + b)] = v


@njit(parallel=True, **_JIT)
def upsample_nearest2d_backward_kernel(gy, gx, fh, fw, nhwc):
    # gx[.., h, w] = sum_{a < fh, b < fw} gy[.., h*fh + a, w*fw + b]
    _check(gx, gy, fh, fw, nhwc)
    if nhwc:
        N, H, W, C = gx.shape
        OW = gy.shape[2]
        gxf = gx.reshape(-1)
        gyf = gy.reshape(-1)
        for t in prange(N * H):
            for w in range(W):
                d = (t * W + w) * C
                for c in range(C):
                    gxf[U(d + c)] = 0.0
                for a in range(fh):
                    for b in range(fw):
                        s = ((t * fh + a) * OW + w * fw + b) * C
                        for c in range(C):
                            gxf[U(d + c)] += gyf[U(s + c)]
    else:
        N, C, H, W = gx.shape
        OW = gy.shape[3]
        gxf = gx.reshape(-1)
        gyf = gy.reshape(-1)
        for t in prange(N * C * H):
            d = t * W
            for w in range(W):
                gxf[U(d + w)] = 0.0
            for a in range(fh):
                s = (t * fh + a) * OW
                for b in range(fw):
                    for w in range(W):
                        gxf[U(d + w)] += gyf[U(s + w * fw + b)]
