"""Numba conv2d kernels: forward, backward-input, backward-filter, backward-bias.

Every kernel is an im2col/col2im + GEMM formulation (BLAS through ``np.dot``):

* the output rows q = n * OH + oh are processed in fixed chunks of ``rows_per_chunk``
  rows, so the patch panel of one chunk holds at most ~``_PANEL_LIMIT`` elements;
  the chunking depends on the shapes only (never on the thread count), which keeps
  the reductions of backward-filter deterministic;
* NHWC: panel (P, kh*kw*Cg), row p = pixel (n, oh, ow) of the chunk, column
  (i, j, c): exactly the row order of an HWIO weight viewed as (kh*kw*Cg, K), so
  y_chunk (P, K) = panel @ w2d (one GEMM per chunk and group);
* NCHW: the chunk is split into *units* (the rows of one image inside the chunk);
  unit panel (Cg*kh*kw, rows*OW), row (c, i, j) as an OIHW weight viewed as
  (K, Cg*kh*kw), so y[n, group] (Kg, rows*OW) = w2d @ panel (one GEMM per unit,
  written straight into y when the unit is a whole image).

The packing loops run in ``prange`` (each iteration owns disjoint output); the GEMMs
run serially and use the BLAS's own threads.  col2im (backward-input) is a gather:
each prange iteration owns one gx row and adds the contributions of the current
chunk in a fixed (i, j) order.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

# Elements of one patch panel; 2**21 = 8 MiB fp32: big enough for efficient GEMMs,
# small enough that allocation/page faults stay cheap and the panel stays in L3.
_PANEL_LIMIT = 1 << 21

_JIT = dict(cache=True, fastmath=False, nogil=True)


@njit(cache=True, nogil=True)
def _valid_range(off, s, n_in, n_out):
    """[lo, hi): the outputs o in [0, n_out) with 0 <= o * s + off < n_in."""
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


@njit(cache=True, nogil=True)
def _rows_per_chunk(R, OH, OW):
    """Output rows per chunk: whole images when they fit, else a band of rows."""
    cr = _PANEL_LIMIT // max(1, R * OW)
    if cr < 1:
        cr = 1
    if cr >= OH:
        cr = (cr // OH) * OH
    return cr


@njit(cache=True, nogil=True)
def _check_conv(xs, ws, ys, groups, nhwc):
    """Defence in depth: the shapes _api validated must agree with each other."""
    # xs, ws, ys: shapes in the logical order (N, C, H, W), (K, Cg, kh, kw), (N, K, OH, OW)
    if groups < 1:
        raise ValueError("conv2d kernel: groups must be >= 1")
    if xs[0] != ys[0]:
        raise ValueError("conv2d kernel: batch sizes of input and output differ")
    if xs[1] % groups != 0 or ws[0] % groups != 0:
        raise ValueError("conv2d kernel: channels not divisible by groups")
    if ws[1] * groups != xs[1]:
        raise ValueError("conv2d kernel: weight input channels do not match the input")
    if ws[0] != ys[1]:
        raise ValueError("conv2d kernel: weight output channels do not match the output")
    for v in (xs[2], xs[3], ys[2], ys[3], ws[2], ws[3]):
        if v < 1:
            raise ValueError("conv2d kernel: empty spatial extent")


@njit(cache=True, nogil=True)
def _check_geometry(H, W, OH, OW, kh, kw, sh, sw, pt, pl, dh, dw):
    if sh < 1 or sw < 1 or dh < 1 or dw < 1 or pt < 0 or pl < 0:
        raise ValueError("conv2d kernel: bad stride, dilation or padding")
    # the last window must start inside the padded input (its in-image positions
    # are clipped by the loops, so this only guards against inconsistent shapes)
    if (OH - 1) * sh - pt > H - 1 + dh * (kh - 1) or (OW - 1) * sw - pl > W - 1 + dw * (kw - 1):
        raise ValueError("conv2d kernel: output size inconsistent with the input size")


# --------------------------------------------------------------------------- packing

@njit(parallel=True, **_JIT)
def _im2col_nhwc(x, col, q0, q1, c0, Cg, kh, kw, sh, sw, pt, pl, dh, dw, OH, OW):
    # x (N, H, W, C) -> col[(q - q0) * OW + ow, (i * kw + j) * Cg + c]
    H = x.shape[1]
    W = x.shape[2]
    for t in prange(q1 - q0):
        q = q0 + t
        n = q // OH
        oh = q - n * OH
        for ow in range(OW):
            p = t * OW + ow
            for i in range(kh):
                ih = oh * sh - pt + i * dh
                for j in range(kw):
                    iw = ow * sw - pl + j * dw
                    base = (i * kw + j) * Cg
                    if ih >= 0 and ih < H and iw >= 0 and iw < W:
                        for c in range(Cg):
                            col[p, base + c] = x[n, ih, iw, c0 + c]
                    else:
                        for c in range(Cg):
                            col[p, base + c] = 0.0


@njit(cache=True, nogil=True)
def _unit_of(q, q0, q1, OH, OW, R):
    """NCHW unit (rows of image n inside chunk [q0, q1)) holding output row q.

    Returns (n, q_a, unitP, base): first row of the unit, its panel width and the
    offset of its (R, unitP) panel in the flat chunk buffer."""
    n = q // OH
    qa = n * OH
    if qa < q0:
        qa = q0
    qb = (n + 1) * OH
    if qb > q1:
        qb = q1
    return n, qa, (qb - qa) * OW, R * (qa - q0) * OW


@njit(parallel=True, **_JIT)
def _im2col_nchw(x, colf, q0, q1, c0, Cg, kh, kw, sh, sw, pt, pl, dh, dw, OH, OW):
    # x (N, C, H, W) -> unit panels colf[base + r * unitP + (q - qa) * OW + ow],
    # r = (c * kh + i) * kw + j
    H = x.shape[2]
    W = x.shape[3]
    KK = kh * kw
    R = Cg * KK
    nrows = q1 - q0
    for t in prange(nrows * R):
        r = t // nrows
        q = q0 + (t - r * nrows)
        n, qa, unitP, base = _unit_of(q, q0, q1, OH, OW, R)
        oh = q - n * OH
        c = r // KK
        ij = r - c * KK
        i = ij // kw
        j = ij - i * kw
        d = base + r * unitP + (q - qa) * OW
        ih = oh * sh - pt + i * dh
        if ih < 0 or ih >= H:
            for ow in range(OW):
                colf[d + ow] = 0.0
            continue
        off = j * dw - pl
        lo, hi = _valid_range(off, sw, W, OW)
        for ow in range(lo):
            colf[d + ow] = 0.0
        cc = c0 + c
        if sw == 1:
            for ow in range(lo, hi):
                colf[d + ow] = x[n, cc, ih, ow + off]
        else:
            for ow in range(lo, hi):
                colf[d + ow] = x[n, cc, ih, ow * sw + off]
        for ow in range(hi, OW):
            colf[d + ow] = 0.0


# --------------------------------------------------------------------------- forward

@njit(parallel=True, **_JIT)
def conv2d_forward_kernel(x, w, bias, has_bias, y, sh, sw, pt, pl, dh, dw, groups, nhwc):
    # NCHW: x (N,C,H,W) * w (K,Cg,kh,kw) -> y (N,K,OH,OW)
    # NHWC: x (N,H,W,C) * w (kh,kw,Cg,K) -> y (N,OH,OW,K)
    if nhwc:
        N, H, W, C = x.shape
        kh, kw, Cg, K = w.shape
        OH, OW = y.shape[1], y.shape[2]
        _check_conv((N, C, H, W), (K, Cg, kh, kw), (y.shape[0], y.shape[3], OH, OW), groups, nhwc)
    else:
        N, C, H, W = x.shape
        K, Cg, kh, kw = w.shape
        OH, OW = y.shape[2], y.shape[3]
        _check_conv((N, C, H, W), (K, Cg, kh, kw), (y.shape[0], y.shape[1], OH, OW), groups, nhwc)
    _check_geometry(H, W, OH, OW, kh, kw, sh, sw, pt, pl, dh, dw)
    if has_bias and bias.shape[0] != K:
        raise ValueError("conv2d kernel: bias length does not match the output channels")
    Kg = K // groups
    R = Cg * kh * kw
    rows = N * OH
    cr = _rows_per_chunk(R, OH, OW)
    yf = y.reshape(-1)
    wf = w.reshape(-1)
    if nhwc:
        y2 = y.reshape(N * OH * OW, K)
        w2 = w.reshape(R, K)
        pointwise = kh == 1 and kw == 1 and sh == 1 and sw == 1 and pt == 0 and pl == 0 and groups == 1
        if pointwise:
            if OH != H or OW != W:
                raise ValueError("conv2d kernel: output size inconsistent with the input size")
            np.dot(x.reshape(N * H * W, C), w2, y2)
        else:
            col = np.empty((cr * OW, R), dtype=x.dtype)
            wg = np.empty((R, Kg), dtype=x.dtype)
            tmp = np.empty((cr * OW, Kg), dtype=x.dtype)
            for g in range(groups):
                if groups > 1:
                    for r in prange(R):
                        for k in range(Kg):
                            wg[r, k] = w2[r, g * Kg + k]
                for q0 in range(0, rows, cr):
                    q1 = min(q0 + cr, rows)
                    P = (q1 - q0) * OW
                    _im2col_nhwc(x, col, q0, q1, g * Cg, Cg, kh, kw, sh, sw, pt, pl, dh, dw, OH, OW)
                    if groups == 1:
                        np.dot(col[:P], w2, y2[q0 * OW:q1 * OW])
                    else:
                        t = tmp[:P]
                        np.dot(col[:P], wg, t)
                        for p in prange(P):
                            for k in range(Kg):
                                y2[q0 * OW + p, g * Kg + k] = t[p, k]
        if has_bias:
            for p in prange(N * OH * OW):
                for k in range(K):
                    y2[p, k] += bias[k]
    else:
        OHOW = OH * OW
        # a pointwise conv of whole images multiplies by x[n, group] directly
        direct = (kh == 1 and kw == 1 and sh == 1 and sw == 1 and pt == 0 and pl == 0
                  and cr >= OH and OH == H and OW == W)
        colf = np.empty(R * cr * OW, dtype=x.dtype)
        tmp = np.empty(Kg * min(cr, OH) * OW, dtype=x.dtype)
        xf = x.reshape(-1)
        for g in range(groups):
            wg = wf[g * Kg * R:(g + 1) * Kg * R].reshape(Kg, R)
            for q0 in range(0, rows, cr):
                q1 = min(q0 + cr, rows)
                if not direct:
                    _im2col_nchw(x, colf, q0, q1, g * Cg, Cg, kh, kw, sh, sw, pt, pl, dh, dw, OH, OW)
                q = q0
                while q < q1:
                    n, qa, unitP, base = _unit_of(q, q0, q1, OH, OW, R)
                    oa = qa - n * OH
                    if direct:
                        s0 = (n * C + g * Cg) * OHOW
                        panel = xf[s0:s0 + R * OHOW].reshape(R, OHOW)
                    else:
                        panel = colf[base:base + R * unitP].reshape(R, unitP)
                    if unitP == OHOW:
                        s = (n * K + g * Kg) * OHOW
                        np.dot(wg, panel, yf[s:s + Kg * OHOW].reshape(Kg, OHOW))
                    else:
                        t = tmp[:Kg * unitP].reshape(Kg, unitP)
                        np.dot(wg, panel, t)
                        for k in prange(Kg):
                            s = (n * K + g * Kg + k) * OHOW + oa * OW
                            for e in range(unitP):
                                yf[s + e] = t[k, e]
                    q = qa + unitP // OW
        if has_bias:
            for nk in prange(N * K):
                b = bias[nk % K]
                for e in range(OHOW):
                    yf[nk * OHOW + e] += b


# --------------------------------------------------------------------------- backward input

@njit(parallel=True, **_JIT)
def conv2d_backward_input_kernel(gy, w, gx, sh, sw, pt, pl, dh, dw, groups, nhwc):
    # NCHW: gy (N,K,OH,OW), w (K,Cg,kh,kw) -> gx (N,C,H,W);  NHWC likewise transposed
    if nhwc:
        N, H, W, C = gx.shape
        kh, kw, Cg, K = w.shape
        OH, OW = gy.shape[1], gy.shape[2]
        _check_conv((N, C, H, W), (K, Cg, kh, kw), (gy.shape[0], gy.shape[3], OH, OW), groups, nhwc)
    else:
        N, C, H, W = gx.shape
        K, Cg, kh, kw = w.shape
        OH, OW = gy.shape[2], gy.shape[3]
        _check_conv((N, C, H, W), (K, Cg, kh, kw), (gy.shape[0], gy.shape[1], OH, OW), groups, nhwc)
    _check_geometry(H, W, OH, OW, kh, kw, sh, sw, pt, pl, dh, dw)
    Kg = K // groups
    R = Cg * kh * kw
    KK = kh * kw
    rows = N * OH
    cr = _rows_per_chunk(R, OH, OW)
    gxf = gx.reshape(-1)
    for e in prange(gxf.shape[0]):
        gxf[e] = 0.0
    if nhwc:
        gy2 = gy.reshape(N * OH * OW, K)
        w2 = w.reshape(R, K)
        gcol = np.empty((cr * OW, R), dtype=gy.dtype)
        wgt = np.empty((Kg, R), dtype=gy.dtype)
        gyc = np.empty((cr * OW, Kg), dtype=gy.dtype)
        for g in range(groups):
            for k in prange(Kg):
                for r in range(R):
                    wgt[k, r] = w2[r, g * Kg + k]
            c0 = g * Cg
            for q0 in range(0, rows, cr):
                q1 = min(q0 + cr, rows)
                P = (q1 - q0) * OW
                if groups == 1:
                    np.dot(gy2[q0 * OW:q1 * OW], wgt, gcol[:P])
                else:
                    for p in prange(P):
                        for k in range(Kg):
                            gyc[p, k] = gy2[q0 * OW + p, g * Kg + k]
                    np.dot(gyc[:P], wgt, gcol[:P])
                n0 = q0 // OH
                n1 = (q1 - 1) // OH + 1
                for t in prange((n1 - n0) * H):
                    n = n0 + t // H
                    ih = t - (t // H) * H
                    for i in range(kh):
                        tt = ih + pt - i * dh
                        if tt < 0 or tt % sh != 0:
                            continue
                        oh = tt // sh
                        if oh >= OH:
                            continue
                        q = n * OH + oh
                        if q < q0 or q >= q1:
                            continue
                        for j in range(kw):
                            off = j * dw - pl
                            lo, hi = _valid_range(off, sw, W, OW)
                            cb = (i * kw + j) * Cg
                            for ow in range(lo, hi):
                                iw = ow * sw + off
                                p = (q - q0) * OW + ow
                                for c in range(Cg):
                                    gx[n, ih, iw, c0 + c] += gcol[p, cb + c]
    else:
        OHOW = OH * OW
        gyf = gy.reshape(-1)
        wf = w.reshape(-1)
        gcolf = np.empty(R * cr * OW, dtype=gy.dtype)
        wgt = np.empty((R, Kg), dtype=gy.dtype)
        gyc = np.empty(Kg * min(cr, OH) * OW, dtype=gy.dtype)
        for g in range(groups):
            wg = wf[g * Kg * R:(g + 1) * Kg * R].reshape(Kg, R)
            for r in prange(R):
                for k in range(Kg):
                    wgt[r, k] = wg[k, r]
            c0 = g * Cg
            for q0 in range(0, rows, cr):
                q1 = min(q0 + cr, rows)
                q = q0
                while q < q1:
                    n, qa, unitP, base = _unit_of(q, q0, q1, OH, OW, R)
                    oa = qa - n * OH
                    if unitP == OHOW:
                        s = (n * K + g * Kg) * OHOW
                        gyu = gyf[s:s + Kg * OHOW].reshape(Kg, OHOW)
                    else:
                        gyu = gyc[:Kg * unitP].reshape(Kg, unitP)
                        for k in prange(Kg):
                            s = (n * K + g * Kg + k) * OHOW + oa * OW
                            for e in range(unitP):
                                gyu[k, e] = gyf[s + e]
                    np.dot(wgt, gyu, gcolf[base:base + R * unitP].reshape(R, unitP))
                    q = qa + unitP // OW
                n0 = q0 // OH
                n1 = (q1 - 1) // OH + 1
                nt = (n1 - n0) * Cg * H
                for t in prange(nt):
                    n = n0 + t // (Cg * H)
                    rem = t - (t // (Cg * H)) * (Cg * H)
                    c = rem // H
                    ih = rem - c * H
                    for i in range(kh):
                        tt = ih + pt - i * dh
                        if tt < 0 or tt % sh != 0:
                            continue
                        oh = tt // sh
                        if oh >= OH:
                            continue
                        q = n * OH + oh
                        if q < q0 or q >= q1:
                            continue
                        nn, qa, unitP, base = _unit_of(q, q0, q1, OH, OW, R)
                        for j in range(kw):
                            off = j * dw - pl
                            lo, hi = _valid_range(off, sw, W, OW)
                            r = c * KK + i * kw + j
                            src = base + r * unitP + (q - qa) * OW
                            dst = ((n * C + c0 + c) * H + ih) * W
                            for ow in range(lo, hi):
                                gxf[dst + ow * sw + off] += gcolf[src + ow]


# --------------------------------------------------------------------------- backward filter

@njit(parallel=True, **_JIT)
def conv2d_backward_filter_kernel(x, gy, gw, sh, sw, pt, pl, dh, dw, groups, nhwc):
    # NCHW: x (N,C,H,W), gy (N,K,OH,OW) -> gw (K,Cg,kh,kw);  NHWC: gw (kh,kw,Cg,K)
    if nhwc:
        N, H, W, C = x.shape
        kh, kw, Cg, K = gw.shape
        OH, OW = gy.shape[1], gy.shape[2]
        _check_conv((N, C, H, W), (K, Cg, kh, kw), (gy.shape[0], gy.shape[3], OH, OW), groups, nhwc)
    else:
        N, C, H, W = x.shape
        K, Cg, kh, kw = gw.shape
        OH, OW = gy.shape[2], gy.shape[3]
        _check_conv((N, C, H, W), (K, Cg, kh, kw), (gy.shape[0], gy.shape[1], OH, OW), groups, nhwc)
    _check_geometry(H, W, OH, OW, kh, kw, sh, sw, pt, pl, dh, dw)
    Kg = K // groups
    R = Cg * kh * kw
    rows = N * OH
    cr = _rows_per_chunk(R, OH, OW)
    if nhwc:
        gy2 = gy.reshape(N * OH * OW, K)
        gw2 = gw.reshape(R, K)
        col = np.empty((cr * OW, R), dtype=x.dtype)
        gyc = np.empty((cr * OW, Kg), dtype=x.dtype)
        acc = np.empty((R, Kg), dtype=x.dtype)
        part = np.empty((R, Kg), dtype=x.dtype)
        for g in range(groups):
            first = True
            for q0 in range(0, rows, cr):
                q1 = min(q0 + cr, rows)
                P = (q1 - q0) * OW
                _im2col_nhwc(x, col, q0, q1, g * Cg, Cg, kh, kw, sh, sw, pt, pl, dh, dw, OH, OW)
                if groups == 1:
                    gyp = gy2[q0 * OW:q1 * OW]
                else:
                    for p in prange(P):
                        for k in range(Kg):
                            gyc[p, k] = gy2[q0 * OW + p, g * Kg + k]
                    gyp = gyc[:P]
                if first:
                    np.dot(col[:P].T, gyp, acc)
                    first = False
                else:
                    np.dot(col[:P].T, gyp, part)
                    for r in prange(R):
                        for k in range(Kg):
                            acc[r, k] += part[r, k]
            for r in prange(R):
                for k in range(Kg):
                    gw2[r, k + g * Kg] = acc[r, k]
    else:
        OHOW = OH * OW
        x_f = x.reshape(-1)
        gyf = gy.reshape(-1)
        gwf = gw.reshape(-1)
        colf = np.empty(R * cr * OW, dtype=x.dtype)
        gyc = np.empty(Kg * min(cr, OH) * OW, dtype=x.dtype)
        part = np.empty((Kg, R), dtype=x.dtype)
        for g in range(groups):
            acc = gwf[g * Kg * R:(g + 1) * Kg * R].reshape(Kg, R)
            first = True
            for q0 in range(0, rows, cr):
                q1 = min(q0 + cr, rows)
                _im2col_nchw(x, colf, q0, q1, g * Cg, Cg, kh, kw, sh, sw, pt, pl, dh, dw, OH, OW)
                q = q0
                while q < q1:
                    n, qa, unitP, base = _unit_of(q, q0, q1, OH, OW, R)
                    oa = qa - n * OH
                    if unitP == OHOW:
                        s = (n * K + g * Kg) * OHOW
                        gyu = gyf[s:s + Kg * OHOW].reshape(Kg, OHOW)
                    else:
                        gyu = gyc[:Kg * unitP].reshape(Kg, unitP)
                        for k in prange(Kg):
                            s = (n * K + g * Kg + k) * OHOW + oa * OW
                            for e in range(unitP):
                                gyu[k, e] = gyf[s + e]
                    panel = colf[base:base + R * unitP].reshape(R, unitP)
                    if first:
                        np.dot(gyu, panel.T, acc)
                        first = False
                    else:
                        np.dot(gyu, panel.T, part)
                        for k in prange(Kg):
                            for r in range(R):
                                acc[k, r] += part[k, r]
                    q = qa + unitP // OW


# --------------------------------------------------------------------------- backward bias

@njit(parallel=True, **_JIT)
def conv2d_backward_bias_kernel(gy, gb, nhwc):
    # gb[k] = sum_{n, oh, ow} gy[n, k, oh, ow], accumulated in float64 over a fixed
    # partition (independent of the thread count), partials combined in order.
    if nhwc:
        N, OH, OW, K = gy.shape
    else:
        N, K, OH, OW = gy.shape
    if gb.shape[0] != K:
        raise ValueError("conv2d_backward_bias kernel: gb length does not match channels")
    gyf = gy.reshape(-1)
    if nhwc:
        rows = N * OH * OW
        block = 1024
        nparts = (rows + block - 1) // block
        part = np.zeros((max(nparts, 1), K), dtype=np.float64)
        for b in prange(nparts):
            e = min(rows, (b + 1) * block)
            for p in range(b * block, e):
                for k in range(K):
                    part[b, k] += gyf[p * K + k]
        for k in range(K):
            s = 0.0
            for b in range(nparts):
                s += part[b, k]
            gb[k] = s
    else:
        OHOW = OH * OW
        for k in prange(K):
            s = 0.0
            for n in range(N):
                base = (n * K + k) * OHOW
                for e in range(OHOW):
                    s += gyf[base + e]
            gb[k] = s
