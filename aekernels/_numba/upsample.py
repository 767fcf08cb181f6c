"""Numba nearest-neighbour upsampling by integer factors (fh, fw), and its adjoint.

Both directions are gathers, parallel over output rows, so every prange iteration
owns its output and the backward sum has a fixed (a, b) order.
"""
from __future__ import annotations

from numba import njit, prange

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
        for t in prange(N * OH):
            n = t // OH
            h = t - n * OH
            hs = h // fh
            for w in range(OW):
                ws = w // fw
                for c in range(C):
                    y[n, h, w, c] = x[n, hs, ws, c]
    else:
        N, C, OH, OW = y.shape
        for t in prange(N * C * OH):
            nc = t // OH
            h = t - nc * OH
            n = nc // C
            c = nc - n * C
            hs = h // fh
            for w in range(OW):
                y[n, c, h, w] = x[n, c, hs, w // fw]


@njit(parallel=True, **_JIT)
def upsample_nearest2d_backward_kernel(gy, gx, fh, fw, nhwc):
    # gx[.., h, w] = sum_{a < fh, b < fw} gy[.., h*fh + a, w*fw + b]
    _check(gx, gy, fh, fw, nhwc)
    if nhwc:
        N, H, W, C = gx.shape
        for t in prange(N * H):
            n = t // H
            h = t - n * H
            for w in range(W):
                for c in range(C):
                    gx[n, h, w, c] = 0.0
                for a in range(fh):
                    for b in range(fw):
                        for c in range(C):
                            gx[n, h, w, c] += gy[n, h * fh + a, w * fw + b, c]
    else:
        N, C, H, W = gx.shape
        for t in prange(N * C * H):
            nc = t // H
            h = t - nc * H
            n = nc // C
            c = nc - n * C
            for w in range(W):
                s = 0.0
                for a in range(fh):
                    for b in range(fw):
                        s += gy[n, c, h * fh + a, w * fw + b]
                gx[n, c, h, w] = s
