"""Numba pooling kernels: max pooling (+ argmax), average pooling, max unpooling.

Layouts: NCHW is parallel over (n, c, oh) rows and scalar inside a window; NHWC is
parallel over (n, oh) rows and vectorised over C (the contiguous axis).  Every prange
iteration owns disjoint output elements.  Scatters (max-pool backward, unpool) own
whole (n, c) planes (NCHW) or (n, channel block) slabs (NHWC) so that the row-major
order of the scatter -- and so the result with duplicate indices -- is fixed.

Indices are h * W + w inside the (n, c) input plane for both layouts.  Out-of-range
indices are counted while scattering (never written) and raise ValueError afterwards.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


# Hot loops index flat arrays with unsigned integers: numba then skips its
# negative-index wraparound, which otherwise blocks LLVM's loop vectoriser.  Every
# such index is non-negative by construction (and bounds-checked under
# NUMBA_BOUNDSCHECK=1 in the tests).
U = np.uint64

_JIT = dict(cache=True, fastmath=False, nogil=True)


@njit(cache=True, nogil=True)
def _valid_range(off, s, n_in, n_out):
    """[lo, hi): the outputs o in [0, n_out) with 0 <= o * s + off < n_in.

    (A copy of conv._valid_range: numba's cache does not notice edits to jitted
    functions imported from another file, so each module keeps its own.)"""
    if off >= 0:
        lo = 0
    else:
        lo = (-off + s - 1) // s
    if off >= n_in:
        hi = 0
    else:
        hi = (n_in - off + s - 1) // s
    if hi > n_out:
        hi = n_out
    if lo > hi:
        lo = hi
    return lo, hi

# channels per NHWC scatter slab: a multiple of the vector width, small enough to
# give every thread work when N is small
_CBLOCK = 16
# output elements per NCHW row-block task (a few rows of one plane)
_ROWBLOCK = 2048


@njit(cache=True, nogil=True)
def _check_windows(H, W, OH, OW, kh, kw, sh, sw, pt, pl, dh, dw):
    """Every window must hold at least one in-image position (guaranteed by _api)."""
    if kh < 1 or kw < 1 or sh < 1 or sw < 1 or dh < 1 or dw < 1 or pt < 0 or pl < 0:
        raise ValueError("pool kernel: bad kernel size, stride, dilation or padding")
    for oh in range(OH):
        lo, hi = _valid_range(oh * sh - pt, dh, H, kh)
        if hi <= lo:
            raise ValueError("pool kernel: a pooling window lies entirely in the padding")
    for ow in range(OW):
        lo, hi = _valid_range(ow * sw - pl, dw, W, kw)
        if hi <= lo:
            raise ValueError("pool kernel: a pooling window lies entirely in the padding")


@njit(cache=True, nogil=True)
def _dims(a, nhwc):
    """(N, C, H, W) of a 4-D array in either layout."""
    if nhwc:
        return a.shape[0], a.shape[3], a.shape[1], a.shape[2]
    return a.shape[0], a.shape[1], a.shape[2], a.shape[3]


@njit(cache=True, nogil=True)
def _col_tables(OW, sw, pl, dw, kw, W):
    """Per output column: first in-image tap column; per tap j: the valid output range."""
    first = np.empty(OW, dtype=np.int64)
    for ow in range(OW):
        lo, hi = _valid_range(ow * sw - pl, dw, W, kw)
        first[ow] = ow * sw - pl + lo * dw
    olo = np.empty(kw, dtype=np.int64)
    ohi = np.empty(kw, dtype=np.int64)
    for j in range(kw):
        olo[j], ohi[j] = _valid_range(j * dw - pl, sw, W, OW)
    return first, olo, ohi


@njit(cache=True, nogil=True)
def _row_blocks(OH, OW):
    rb = _ROWBLOCK // max(1, OW)
    if rb < 1:
        rb = 1
    if rb > OH:
        rb = OH
    return rb, (OH + rb - 1) // rb


# --------------------------------------------------------------------------- max pool

@njit(parallel=True, **_JIT)
def max_pool2d_forward_kernel(x, y, ind, has_ind, kh, kw, sh, sw, pt, pl, dh, dw, nhwc):
    # x (N,C,H,W) -> y, ind (N,C,OH,OW)   [NHWC: (N,H,W,C) -> (N,OH,OW,C)]
    # A running maximum that starts at -inf with the index of the first in-image
    # position and takes v when v > cur or (v is NaN and cur is not) is exactly the
    # contract's rule (first in-image element as the initial value).
    N, C, H, W = _dims(x, nhwc)
    N2, C2, OH, OW = _dims(y, nhwc)
    if N2 != N or C2 != C:
        raise ValueError("max_pool2d kernel: input and output shapes disagree")
    if has_ind and (ind.shape[0] != y.shape[0] or ind.shape[1] != y.shape[1]
                    or ind.shape[2] != y.shape[2] or ind.shape[3] != y.shape[3]):
        raise ValueError("max_pool2d kernel: indices shape differs from the output")
    _check_windows(H, W, OH, OW, kh, kw, sh, sw, pt, pl, dh, dw)
    first, olo, ohi = _col_tables(OW, sw, pl, dw, kw, W)
    xf = x.reshape(-1)
    yf = y.reshape(-1)
    indf = ind.reshape(-1)
    if nhwc:
        for t in prange(N * OH):
            n = t // OH
            oh = t - n * OH
            ilo, ihi = _valid_range(oh * sh - pt, dh, H, kh)
            ih0 = oh * sh - pt + ilo * dh
            cur = np.empty(C, dtype=x.dtype)
            idx = np.empty(C, dtype=np.int64)
            for ow in range(OW):
                jlo, jhi = _valid_range(ow * sw - pl, dw, W, kw)
                p0 = ih0 * W + first[ow]
                for c in range(C):
                    cur[U(c)] = -np.inf
                    idx[U(c)] = p0
                for i in range(ilo, ihi):
                    ih = oh * sh - pt + i * dh
                    for j in range(jlo, jhi):
                        iw = ow * sw - pl + j * dw
                        p = ih * W + iw
                        s = ((n * H + ih) * W + iw) * C
                        for c in range(C):
                            v = xf[U(s + c)]
                            m = cur[U(c)]
                            take = (v > m) | ((v != v) & (m == m))
                            cur[U(c)] = v if take else m
                            idx[U(c)] = p if take else idx[U(c)]
                d = ((n * OH + oh) * OW + ow) * C
                for c in range(C):
                    yf[U(d + c)] = cur[U(c)]
                if has_ind:
                    for c in range(C):
                        indf[U(d + c)] = idx[U(c)]
    else:
        rb, nb = _row_blocks(OH, OW)
        for t in prange(N * C * nb):
            nc = t // nb
            oh0 = (t - nc * nb) * rb
            oh1 = min(OH, oh0 + rb)
            cur = np.empty(OW, dtype=x.dtype)
            idx = np.empty(OW, dtype=np.int64)
            for oh in range(oh0, oh1):
                ilo, ihi = _valid_range(oh * sh - pt, dh, H, kh)
                ih0 = oh * sh - pt + ilo * dh
                for ow in range(OW):
                    cur[U(ow)] = -np.inf
                    idx[U(ow)] = ih0 * W + first[U(ow)]
                for i in range(ilo, ihi):
                    ih = oh * sh - pt + i * dh
                    base = (nc * H + ih) * W
                    for j in range(kw):
                        off = j * dw - pl
                        # unit / 2 strides as constants so LLVM vectorises the loads
                        if sw == 1:
                            for ow in range(olo[j], ohi[j]):
                                iw = ow + off
                                v = xf[U(base + iw)]
                                m = cur[U(ow)]
                                take = (v > m) | ((v != v) & (m == m))
                                cur[U(ow)] = v if take else m
                                idx[U(ow)] = ih * W + iw if take else idx[U(ow)]
                        elif sw == 2:
                            for ow in range(olo[j], ohi[j]):
                                iw = 2 * ow + off
                                v = xf[U(base + iw)]
                                m = cur[U(ow)]
                                take = (v > m) | ((v != v) & (m == m))
                                cur[U(ow)] = v if take else m
                                idx[U(ow)] = ih * W + iw if take else idx[U(ow)]
                        else:
                            for ow in range(olo[j], ohi[j]):
                                iw = ow * sw + off
                                v = xf[U(base + iw)]
                                m = cur[U(ow)]
                                take = (v > m) | ((v != v) & (m == m))
                                cur[U(ow)] = v if take else m
                                idx[U(ow)] = ih * W + iw if take else idx[U(ow)]
                d = (nc * OH + oh) * OW
                for ow in range(OW):
                    yf[U(d + ow)] = cur[U(ow)]
                if has_ind:
                    for ow in range(OW):
                        indf[U(d + ow)] = idx[U(ow)]


@njit(parallel=True, **_JIT)
def _scatter_kernel(src, indices, dst, accumulate, nhwc):
    # dst = 0; dst[n, c].flat[indices[n, c, h, w]] (+)= src[n, c, h, w], row-major (h, w)
    N, C, H, W = _dims(src, nhwc)
    N2, C2, OH, OW = _dims(dst, nhwc)
    if N2 != N or C2 != C:
        raise ValueError("scatter kernel: batch or channels of source and target differ")
    if (indices.shape[0] != src.shape[0] or indices.shape[1] != src.shape[1]
            or indices.shape[2] != src.shape[2] or indices.shape[3] != src.shape[3]):
        raise ValueError("scatter kernel: indices shape differs from the source")
    plane = OH * OW
    HW = H * W
    srcf = src.reshape(-1)
    indf = indices.reshape(-1)
    dstf = dst.reshape(-1)
    bad = 0
    if nhwc:
        # element (n, k, c) of the target plane sits at (n * plane + k) * C + c
        # tasks: (image, channel block); whole channel rows when the batch alone
        # gives enough tasks (contiguous zeroing and reads), else blocks of 16
        cb = C if N >= 8 else _CBLOCK
        nb = (C + cb - 1) // cb
        for t in prange(N * nb):
            n = t // nb
            c0 = (t - n * nb) * cb
            c1 = min(C, c0 + cb)
            for e in range(plane):
                d = (n * plane + e) * C
                for c in range(c0, c1):
                    dstf[U(d + c)] = 0.0
            for e in range(HW):
                s = (n * HW + e) * C
                for c in range(c0, c1):
                    k = indf[U(s + c)]
                    if k < 0 or k >= plane:
                        bad += 1
                    elif accumulate:
                        dstf[U((n * plane + k) * C + c)] += srcf[U(s + c)]
                    else:
                        dstf[U((n * plane + k) * C + c)] = srcf[U(s + c)]
    else:
        for nc in prange(N * C):
            d0 = nc * plane
            for e in range(plane):
                dstf[U(d0 + e)] = 0.0
            s0 = nc * HW
            for e in range(HW):
                k = indf[U(s0 + e)]
                if k < 0 or k >= plane:
                    bad += 1
                elif accumulate:
                    dstf[U(d0 + k)] += srcf[U(s0 + e)]
                else:
                    dstf[U(d0 + k)] = srcf[U(s0 + e)]
    if bad > 0:
        raise ValueError("pool kernel: index outside the (n, c) plane")


@njit(parallel=True, **_JIT)
def _gather_kernel(src, indices, dst, nhwc):
    # dst[n, c, h, w] = src[n, c].flat[indices[n, c, h, w]]
    N, C, H, W = _dims(dst, nhwc)
    N2, C2, SH, SW = _dims(src, nhwc)
    if N2 != N or C2 != C:
        raise ValueError("gather kernel: batch or channels of source and target differ")
    if (indices.shape[0] != dst.shape[0] or indices.shape[1] != dst.shape[1]
            or indices.shape[2] != dst.shape[2] or indices.shape[3] != dst.shape[3]):
        raise ValueError("gather kernel: indices shape differs from the target")
    plane = SH * SW
    srcf = src.reshape(-1)
    indf = indices.reshape(-1)
    dstf = dst.reshape(-1)
    bad = 0
    if nhwc:
        for t in prange(N * H):
            n = t // H
            d0 = t * W * C
            for e in range(W):
                d = d0 + e * C
                for c in range(C):
                    k = indf[U(d + c)]
                    if k < 0 or k >= plane:
                        bad += 1
                        dstf[U(d + c)] = 0.0
                    else:
                        dstf[U(d + c)] = srcf[U((n * plane + k) * C + c)]
    else:
        for t in prange(N * C * H):
            nc = t // H
            d0 = t * W
            s0 = nc * plane
            for e in range(W):
                k = indf[U(d0 + e)]
                if k < 0 or k >= plane:
                    bad += 1
                    dstf[U(d0 + e)] = 0.0
                else:
                    dstf[U(d0 + e)] = srcf[U(s0 + k)]
    if bad > 0:
        raise ValueError("pool kernel: index outside the (n, c) plane")


# --------------------------------------------------------------------------- avg pool

@njit(cache=True, nogil=True)
def _avg_counts(O, s, p_lo, p_hi, d, k, n_in, include_pad):
    """Per output position: the number of window taps counted by the divisor."""
    cnt = np.empty(O, dtype=np.int64)
    for o in range(O):
        if include_pad:
            lo, hi = _valid_range(o * s, d, n_in + p_lo + p_hi, k)
        else:
            lo, hi = _valid_range(o * s - p_lo, d, n_in, k)
        cnt[o] = hi - lo
    return cnt


@njit(parallel=True, **_JIT)
def avg_pool2d_forward_kernel(x, y, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw,
                              count_include_pad, divisor_override, nhwc):
    # y = (sum of the in-image window taps, in row-major tap order) / divisor
    N, C, H, W = _dims(x, nhwc)
    N2, C2, OH, OW = _dims(y, nhwc)
    if N2 != N or C2 != C:
        raise ValueError("avg_pool2d kernel: input and output shapes disagree")
    if pb < 0 or pr < 0:
        raise ValueError("avg_pool2d kernel: negative padding")
    _check_windows(H, W, OH, OW, kh, kw, sh, sw, pt, pl, dh, dw)
    rc = _avg_counts(OH, sh, pt, pb, dh, kh, H, count_include_pad)
    cc = _avg_counts(OW, sw, pl, pr, dw, kw, W, count_include_pad)
    first, olo, ohi = _col_tables(OW, sw, pl, dw, kw, W)
    xf = x.reshape(-1)
    yf = y.reshape(-1)
    if nhwc:
        for t in prange(N * OH):
            n = t // OH
            oh = t - n * OH
            ilo, ihi = _valid_range(oh * sh - pt, dh, H, kh)
            acc = np.empty(C, dtype=x.dtype)
            for ow in range(OW):
                jlo, jhi = _valid_range(ow * sw - pl, dw, W, kw)
                div = float(divisor_override if divisor_override > 0 else rc[oh] * cc[ow])
                for c in range(C):
                    acc[U(c)] = 0.0
                for i in range(ilo, ihi):
                    ih = oh * sh - pt + i * dh
                    for j in range(jlo, jhi):
                        s = ((n * H + ih) * W + ow * sw - pl + j * dw) * C
                        for c in range(C):
                            acc[U(c)] += xf[U(s + c)]
                d = ((n * OH + oh) * OW + ow) * C
                for c in range(C):
                    yf[U(d + c)] = acc[U(c)] / div
    else:
        rb, nb = _row_blocks(OH, OW)
        for t in prange(N * C * nb):
            nc = t // nb
            oh0 = (t - nc * nb) * rb
            oh1 = min(OH, oh0 + rb)
            acc = np.empty(OW, dtype=x.dtype)
            for oh in range(oh0, oh1):
                ilo, ihi = _valid_range(oh * sh - pt, dh, H, kh)
                for ow in range(OW):
                    acc[U(ow)] = 0.0
                for i in range(ilo, ihi):
                    base = (nc * H + oh * sh - pt + i * dh) * W
                    for j in range(kw):
                        off = base + j * dw - pl
                        if sw == 1:
                            for ow in range(olo[j], ohi[j]):
                                acc[U(ow)] += xf[U(off + ow)]
                        elif sw == 2:
                            for ow in range(olo[j], ohi[j]):
                                acc[U(ow)] += xf[U(off + 2 * ow)]
                        else:
                            for ow in range(olo[j], ohi[j]):
                                acc[U(ow)] += xf[U(off + ow * sw)]
                d = (nc * OH + oh) * OW
                if divisor_override > 0:
                    div = float(divisor_override)
                    for ow in range(OW):
                        yf[U(d + ow)] = acc[U(ow)] / div
                else:
                    r = rc[oh]
                    for ow in range(OW):
                        yf[U(d + ow)] = acc[U(ow)] / float(r * cc[U(ow)])


@njit(cache=True, nogil=True)
def _taps(n_in, O, s, p, d, k):
    """For each input position, the outputs o (and their count) whose window covers it."""
    lst = np.empty((n_in, k), dtype=np.int64)
    cnt = np.zeros(n_in, dtype=np.int64)
    for h in range(n_in):
        for i in range(k):
            t = h + p - i * d
            if t >= 0 and t % s == 0 and t // s < O:
                lst[h, cnt[h]] = t // s
                cnt[h] += 1
    return lst, cnt


@njit(parallel=True, **_JIT)
def avg_pool2d_backward_kernel(gy, gx, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw,
                               count_include_pad, divisor_override, nhwc):
    # Each task owns input rows h and adds gy[oh, ow] * (1 / divisor) of every window
    # covering them, in (window row i, window column j) order.
    N, C, H, W = _dims(gx, nhwc)
    N2, C2, OH, OW = _dims(gy, nhwc)
    if N2 != N or C2 != C:
        raise ValueError("avg_pool2d_backward kernel: shapes disagree")
    if pb < 0 or pr < 0:
        raise ValueError("avg_pool2d_backward kernel: negative padding")
    _check_windows(H, W, OH, OW, kh, kw, sh, sw, pt, pl, dh, dw)
    rc = _avg_counts(OH, sh, pt, pb, dh, kh, H, count_include_pad)
    cc = _avg_counts(OW, sw, pl, pr, dw, kw, W, count_include_pad)
    rl, rn = _taps(H, OH, sh, pt, dh, kh)
    first, olo, ohi = _col_tables(OW, sw, pl, dw, kw, W)
    inv = np.empty((OH, OW), dtype=gx.dtype)
    for oh in range(OH):
        for ow in range(OW):
            inv[oh, ow] = 1.0 / float(divisor_override if divisor_override > 0 else rc[oh] * cc[ow])
    gyf = gy.reshape(-1)
    gxf = gx.reshape(-1)
    if nhwc:
        for t in prange(N * H):
            n = t // H
            h = t - n * H
            d0 = t * W * C
            for e in range(W * C):
                gxf[U(d0 + e)] = 0.0
            for a in range(rn[h]):
                oh = rl[h, a]
                for j in range(kw):
                    off = j * dw - pl
                    for ow in range(olo[j], ohi[j]):
                        sc = inv[oh, ow]
                        s = ((n * OH + oh) * OW + ow) * C
                        d = d0 + (ow * sw + off) * C
                        for c in range(C):
                            gxf[U(d + c)] += gyf[U(s + c)] * sc
    else:
        rb, nb = _row_blocks(H, W)
        for t in prange(N * C * nb):
            nc = t // nb
            h0 = (t - nc * nb) * rb
            h1 = min(H, h0 + rb)
            scaled = np.empty(OW, dtype=gx.dtype)
            for h in range(h0, h1):
                d0 = (nc * H + h) * W
                for w in range(W):
                    gxf[U(d0 + w)] = 0.0
                for a in range(rn[h]):
                    oh = rl[h, a]
                    s = (nc * OH + oh) * OW
                    for ow in range(OW):
                        scaled[U(ow)] = gyf[U(s + ow)] * inv[oh, U(ow)]
                    for j in range(kw):
                        off = d0 + j * dw - pl
                        if sw == 1:
                            for ow in range(olo[j], ohi[j]):
                                gxf[U(off + ow)] += scaled[U(ow)]
                        elif sw == 2:
                            for ow in range(olo[j], ohi[j]):
                                gxf[U(off + 2 * ow)] += scaled[U(ow)]
                        else:
                            for ow in range(olo[j], ohi[j]):
                                gxf[U(off + ow * sw)] += scaled[U(ow)]
