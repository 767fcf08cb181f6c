"""Numba conv2d kernels: forward, backward-input, backward-filter, backward-bias.

Every kernel is an im2col/col2im + GEMM formulation, the GEMMs done by the BLAS that
numba's ``np.dot`` calls:

* Work is cut into *tasks* of whole output rows (q = n * OH + oh; for backward-input,
  input rows u = n * H + h) whose patch panel holds about ``_TASK_PANEL`` elements
  (it stays in L2 between packing and the GEMM).  The task list depends on the
  shapes only.
* Each call opens ONE parallel region: ``prange`` over ``nw`` workers (``nthreads``,
  the thread count, passed in: reading it inside would defeat numba's cache), worker w runs tasks [w*T//nw, (w+1)*T//nw) with its own buffers.  Each GEMM
  inside is single-threaded (``_threads`` pins the BLAS to one thread for the call),
  so there is no BLAS/numba thread oversubscription and no barrier per chunk.
* NHWC: panel (P, kh*kw*Cg), row p = output pixel of the task, column (i, j, c):
  the row order of an HWIO weight viewed as (kh*kw*Cg, K), so y_rows (P, K) =
  panel @ w2d.  NCHW: a task is split into *units* (its rows inside one image);
  unit panel (Cg*kh*kw, rows*OW), row (c, i, j) as an OIHW weight viewed as
  (K, Cg*kh*kw), y[n, group] (Kg, rows*OW) = w2d @ panel, written straight into y
  when the unit is a whole image.
* Forward and backward-input tasks write disjoint outputs.  Backward-filter sums
  per worker (fixed task order) and adds the worker partials in worker order, so a
  result is bitwise reproducible for a given thread count.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

# Elements of one task's patch panel: 2**18 = 1 MiB fp32, well inside a 2 MiB L2.
_TASK_PANEL = 1 << 18
# Aim for at least this many tasks (load balance), when there are enough rows.
_MIN_TASKS = 16

_JIT = dict(cache=True, fastmath=False, nogil=True)

# Hot loops index flat arrays with unsigned integers: numba then emits no
# negative-index wraparound, which would otherwise stop LLVM's loop vectoriser.
# Every such index is non-negative by construction (bounds-checked in the tests).
U = np.uint64


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
def _rows_per_task(panel_row, rows, per_image):
    """Rows per task: the panel fits _TASK_PANEL, >= _MIN_TASKS tasks if possible,
    and whole images per task whenever a task holds at least one image."""
    rpt = _TASK_PANEL // max(1, panel_row)
    want = (rows + _MIN_TASKS - 1) // _MIN_TASKS
    if want < rpt:
        rpt = want
    if rpt < 1:
        rpt = 1
    if rpt >= per_image:
        rpt = (rpt // per_image) * per_image
    return rpt


@njit(cache=True, nogil=True)
def _check_conv(xs, ws, ys, groups):
    """Defence in depth: the shapes _api validated must agree with each other."""
    # xs, ws, ys: logical (N, C, H, W), (K, Cg, kh, kw), (N, K, OH, OW)
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
def _conv_dims(xs, ws, ys, groups, nhwc):
    """Logical (N, C, H, W, K, Cg, kh, kw, OH, OW) of a conv from the array shapes of
    its input side (x or gx), weight and output side (y or gy) in either layout, checked."""
    if nhwc:
        N, H, W, C = xs
        kh, kw, Cg, K = ws
        yN, OH, OW, yK = ys
    else:
        N, C, H, W = xs
        K, Cg, kh, kw = ws
        yN, yK, OH, OW = ys
    _check_conv((N, C, H, W), (K, Cg, kh, kw), (yN, yK, OH, OW), groups)
    return N, C, H, W, K, Cg, kh, kw, OH, OW


@njit(cache=True, nogil=True)
def _check_geometry(H, W, OH, OW, kh, kw, sh, sw, pt, pl, dh, dw):
    # The output size is not re-derived: the bottom/right padding it implies is free
    # (windows lying wholly in the padding just see zeros), and every loop clips to
    # in-image positions, so only the parameters the index arithmetic relies on
    # need checking.
    if sh < 1 or sw < 1 or dh < 1 or dw < 1 or pt < 0 or pl < 0:
        raise ValueError("conv2d kernel: bad stride, dilation or padding")


# --------------------------------------------------------------------------- packing

@njit(cache=True, nogil=True)
def _im2col_nhwc(x, col, n, oa, ob, c0, Cg, kh, kw, sh, sw, pt, pl, dh, dw, OW):
    # x (N, H, W, C), output rows oa..ob of image n -> col[(oh - oa) * OW + ow, (i*kw + j)*Cg + c]
    # Per (oh, i, j) the in-image columns form one range [lo, hi): no per-tap checks.
    H = x.shape[1]
    W = x.shape[2]
    C = x.shape[3]
    R = kh * kw * Cg
    xf = x.reshape(-1)
    colf = col.reshape(-1)
    # windows whose kw taps all lie inside the row read one contiguous block of
    # kw*C inputs when dw == 1 and the group spans all channels
    block = dw == 1 and Cg == C
    if block:
        blo, bhi = _valid_range(-pl, sw, W - kw + 1, OW)
    else:
        blo, bhi = 0, 0
    for oh in range(oa, ob):
        p0 = (oh - oa) * OW
        for i in range(kh):
            ih = oh * sh - pt + i * dh
            row_in = ih >= 0 and ih < H
            if row_in and bhi > blo:
                L = kw * C
                src = ((n * H + ih) * W - pl) * C
                for ow in range(blo, bhi):
                    d = (p0 + ow) * R + i * L
                    s = src + ow * sw * C
                    for e in range(L):
                        colf[U(d + e)] = xf[U(s + e)]
            for j in range(kw):
                off = j * dw - pl
                if row_in:
                    lo, hi = _valid_range(off, sw, W, OW)
                else:
                    lo, hi = 0, 0
                cb = (i * kw + j) * Cg
                for ow in range(lo):
                    d = (p0 + ow) * R + cb
                    for c in range(Cg):
                        colf[U(d + c)] = 0.0
                if hi > lo:
                    # in-image columns not already copied as blocks: [a1, b1) + [a2, hi)
                    a1, b1, a2 = lo, hi, hi
                    if bhi > blo:
                        b1 = min(hi, blo)
                        a2 = max(lo, bhi)
                    src = ((n * H + ih) * W + off) * C + c0
                    for ow in range(a1, b1):
                        d = (p0 + ow) * R + cb
                        s = src + ow * sw * C
                        for c in range(Cg):
                            colf[U(d + c)] = xf[U(s + c)]
                    for ow in range(a2, hi):
                        d = (p0 + ow) * R + cb
                        s = src + ow * sw * C
                        for c in range(Cg):
                            colf[U(d + c)] = xf[U(s + c)]
                for ow in range(hi, OW):
                    d = (p0 + ow) * R + cb
                    for c in range(Cg):
                        colf[U(d + c)] = 0.0


@njit(cache=True, nogil=True)
def _im2col_nchw(x, colf, ld, col0, n, oa, ob, c0, Cg, kh, kw, sh, sw, pt, pl, dh, dw, OW):
    # x (N, C, H, W), output rows oa..ob of image n ->
    #   colf[r * ld + col0 + (oh - oa) * OW + ow],  r = (c*kh + i)*kw + j
    C = x.shape[1]
    H = x.shape[2]
    W = x.shape[3]
    xf = x.reshape(-1)
    for c in range(Cg):
        for i in range(kh):
            for j in range(kw):
                r = (c * kh + i) * kw + j
                off = j * dw - pl
                lo, hi = _valid_range(off, sw, W, OW)
                for oh in range(oa, ob):
                    d = r * ld + col0 + (oh - oa) * OW
                    ih = oh * sh - pt + i * dh
                    if ih < 0 or ih >= H:
                        for ow in range(OW):
                            colf[U(d + ow)] = 0.0
                        continue
                    src = ((n * C + c0 + c) * H + ih) * W + off
                    for ow in range(lo):
                        colf[U(d + ow)] = 0.0
                    if sw == 1:
                        for ow in range(lo, hi):
                            colf[U(d + ow)] = xf[U(src + ow)]
                    elif sw == 2:
                        for ow in range(lo, hi):
                            colf[U(d + ow)] = xf[U(src + 2 * ow)]
                    else:
                        for ow in range(lo, hi):
                            colf[U(d + ow)] = xf[U(src + ow * sw)]
                    for ow in range(hi, OW):
                        colf[U(d + ow)] = 0.0


@njit(cache=True, nogil=True)
def _col2im_nchw(gxf, colf, ld, col0, n, h0, h1, olo, C, H, W, c0, Cg,
                 kh, kw, sh, sw, pt, pl, dh, dw, OH, OW):
    # gx rows h0..h1 of image n, channels c0..c0+Cg (already zeroed) +=
    #   patch gradients colf[r * ld + col0 + (oh - olo) * OW + ow], in (i, j) order
    KK = kh * kw
    for c in range(Cg):
        for h in range(h0, h1):
            dst = ((n * C + c0 + c) * H + h) * W
            for i in range(kh):
                tt = h + pt - i * dh
                if tt < 0 or tt % sh != 0:
                    continue
                oh = tt // sh
                if oh >= OH:
                    continue
                for j in range(kw):
                    off = j * dw - pl
                    lo, hi = _valid_range(off, sw, W, OW)
                    src = (c * KK + i * kw + j) * ld + col0 + (oh - olo) * OW
                    d = dst + off
                    if sw == 1:
                        for ow in range(lo, hi):
                            gxf[U(d + ow)] += colf[U(src + ow)]
                    elif sw == 2:
                        for ow in range(lo, hi):
                            gxf[U(d + 2 * ow)] += colf[U(src + ow)]
                    else:
                        for ow in range(lo, hi):
                            gxf[U(d + ow * sw)] += colf[U(src + ow)]


# --------------------------------------------------------------------------- forward

@njit(parallel=True, **_JIT)
def conv2d_forward_kernel(x, w, bias, has_bias, y, sh, sw, pt, pl, dh, dw, groups, nhwc,
                          nthreads):
    # NCHW: x (N,C,H,W) * w (K,Cg,kh,kw) -> y (N,K,OH,OW)
    # NHWC: x (N,H,W,C) * w (kh,kw,Cg,K) -> y (N,OH,OW,K)
    N, C, H, W, K, Cg, kh, kw, OH, OW = _conv_dims(x.shape, w.shape, y.shape, groups, nhwc)
    _check_geometry(H, W, OH, OW, kh, kw, sh, sw, pt, pl, dh, dw)
    if has_bias and bias.shape[0] != K:
        raise ValueError("conv2d kernel: bias length does not match the output channels")
    Kg = K // groups
    R = Cg * kh * kw
    OHOW = OH * OW
    rows = N * OH
    rpt = _rows_per_task(R * OW, rows, OH)
    T = (rows + rpt - 1) // rpt
    nw = max(1, min(nthreads, T))
    pointwise = (kh == 1 and kw == 1 and sh == 1 and sw == 1 and pt == 0 and pl == 0
                 and OH == H and OW == W)
    col = np.empty((nw, R * rpt * OW), dtype=x.dtype)
    tmp = np.empty((nw, Kg * rpt * OW), dtype=x.dtype)
    yf = y.reshape(-1)
    xf = x.reshape(-1)
    wf = w.reshape(-1)
    if nhwc:
        # per-group weight panels (kh*kw*Cg, Kg): HWIO columns of the group
        w2 = w.reshape(R, K)
        wg = np.empty((groups, R, Kg), dtype=x.dtype)
        for g in range(groups):
            for r in range(R):
                for k in range(Kg):
                    wg[g, r, k] = w2[r, g * Kg + k]
        y2 = y.reshape(N * OHOW, K)
        x2 = x.reshape(N * H * W, C)
        x1 = x.reshape(N, 1, H, W * C)  # only used when C == 1
        for wk in prange(nw):
            colw = col[wk]
            tmpw = tmp[wk]
            for t in range(wk * T // nw, (wk + 1) * T // nw):
                q0 = t * rpt
                q1 = min(q0 + rpt, rows)
                P = (q1 - q0) * OW
                if C == 1 and not pointwise:
                    # one input channel: NHWC memory is NCHW memory, so pack the fast
                    # channel-planar panel (R, P) and multiply its transpose
                    panT = colw[:R * P].reshape(R, P)
                    q = q0
                    while q < q1:
                        n = q // OH
                        qb = min(q1, (n + 1) * OH)
                        _im2col_nchw(x1, colw, P, (q - q0) * OW, n, q - n * OH, qb - n * OH, 0, 1,
                                     kh, kw, sh, sw, pt, pl, dh, dw, OW)
                        q = qb
                    out = y2[q0 * OW:q1 * OW]
                    np.dot(panT.T, wg[0], out)
                    if has_bias:
                        of = yf[q0 * OW * K:q1 * OW * K]
                        for p in range(P):
                            for k in range(K):
                                of[U(p * K + k)] += bias[U(k)]
                    continue
                for g in range(groups):
                    panel = colw[:P * R].reshape(P, R)
                    if pointwise:
                        if groups == 1:
                            panel = x2[q0 * OW:q1 * OW]
                        else:
                            for p in range(P):
                                for c in range(Cg):
                                    panel[p, c] = x2[q0 * OW + p, g * Cg + c]
                    else:
                        q = q0
                        while q < q1:  # rows of one image at a time
                            n = q // OH
                            qb = min(q1, (n + 1) * OH)
                            sub = colw[(q - q0) * OW * R:(qb - q0) * OW * R].reshape((qb - q) * OW, R)
                            _im2col_nhwc(x, sub, n, q - n * OH, qb - n * OH, g * Cg, Cg,
                                         kh, kw, sh, sw, pt, pl, dh, dw, OW)
                            q = qb
                    if groups == 1:
                        out = y2[q0 * OW:q1 * OW]
                        np.dot(panel, wg[0], out)
                        if has_bias:
                            of = yf[q0 * OW * K:q1 * OW * K]
                            for p in range(P):
                                for k in range(K):
                                    of[U(p * K + k)] += bias[U(k)]
                    else:
                        out = tmpw[:P * Kg].reshape(P, Kg)
                        np.dot(panel, wg[g], out)
                        for p in range(P):
                            for k in range(Kg):
                                v = out[p, k]
                                if has_bias:
                                    v += bias[g * Kg + k]
                                y2[q0 * OW + p, g * Kg + k] = v
    else:
        for wk in prange(nw):
            colw = col[wk]
            tmpw = tmp[wk]
            for t in range(wk * T // nw, (wk + 1) * T // nw):
                q0 = t * rpt
                q1 = min(q0 + rpt, rows)
                q = q0
                while q < q1:  # one unit = the task's rows inside image n
                    n = q // OH
                    qb = min(q1, (n + 1) * OH)
                    oa = q - n * OH
                    ob = qb - n * OH
                    P = (ob - oa) * OW
                    whole = P == OHOW
                    for g in range(groups):
                        wgm = wf[g * Kg * R:(g + 1) * Kg * R].reshape(Kg, R)
                        if pointwise and whole:
                            s0 = (n * C + g * Cg) * OHOW
                            panel = xf[s0:s0 + R * OHOW].reshape(R, OHOW)
                        else:
                            panel = colw[:R * P].reshape(R, P)
                            _im2col_nchw(x, colw, P, 0, n, oa, ob, g * Cg, Cg,
                                         kh, kw, sh, sw, pt, pl, dh, dw, OW)
                        if whole:
                            s = (n * K + g * Kg) * OHOW
                            out = yf[s:s + Kg * OHOW].reshape(Kg, OHOW)
                            np.dot(wgm, panel, out)
                            if has_bias:
                                for k in range(Kg):
                                    b = bias[g * Kg + k]
                                    for e in range(OHOW):
                                        yf[U(s + k * OHOW + e)] += b
                        else:
                            out = tmpw[:Kg * P].reshape(Kg, P)
                            np.dot(wgm, panel, out)
                            for k in range(Kg):
                                b = bias[g * Kg + k] if has_bias else 0.0
                                s = (n * K + g * Kg + k) * OHOW + oa * OW
                                for e in range(P):
                                    yf[U(s + e)] = tmpw[U(k * P + e)] + b
                    q = qb


# --------------------------------------------------------------------------- backward input

@njit(cache=True, nogil=True)
def _gy_rows_for(h0, h1, OH, sh, pt, kh, dh):
    """[olo, ohi): the output rows whose windows touch input rows [h0, h1)."""
    a = h0 + pt - (kh - 1) * dh
    if a <= 0:
        olo = 0
    else:
        olo = (a + sh - 1) // sh
    ohi = (h1 - 1 + pt) // sh + 1
    if ohi > OH:
        ohi = OH
    if olo > ohi:
        olo = ohi
    return olo, ohi


@njit(parallel=True, **_JIT)
def conv2d_backward_input_kernel(gy, w, gx, sh, sw, pt, pl, dh, dw, groups, nhwc, nthreads):
    # NCHW: gy (N,K,OH,OW), w (K,Cg,kh,kw) -> gx (N,C,H,W);  NHWC: gy (N,OH,OW,K),
    # w (kh,kw,Cg,K) -> gx (N,H,W,C).  Tasks own input rows: each computes the patch
    # gradients of the output rows touching them (a few rows are recomputed by the
    # neighbouring task) and gathers them in a fixed (i, j) order.
    N, C, H, W, K, Cg, kh, kw, OH, OW = _conv_dims(gx.shape, w.shape, gy.shape, groups, nhwc)
    _check_geometry(H, W, OH, OW, kh, kw, sh, sw, pt, pl, dh, dw)
    Kg = K // groups
    R = Cg * kh * kw
    KK = kh * kw
    OHOW = OH * OW
    rows = N * H
    # input rows per task; its panel covers ~rows/sh + kh output rows
    rpt = _rows_per_task(R * OW * max(1, (OH + H - 1) // H), rows, H)
    T = (rows + rpt - 1) // rpt
    nw = max(1, min(nthreads, T))
    # output rows a task may need: at most (rpt - 1) // sh + 1 + (kh - 1) * dh // sh + 1
    maxo = min(OH, (min(rpt, H) - 1) // sh + 2 + ((kh - 1) * dh) // sh)
    gcol = np.empty((nw, R * maxo * OW), dtype=gy.dtype)
    gyc = np.empty((nw, Kg * maxo * OW), dtype=gy.dtype)
    gyf = gy.reshape(-1)
    gxf = gx.reshape(-1)
    if nhwc:
        w2 = w.reshape(R, K)
        wgt = np.empty((groups, Kg, R), dtype=gy.dtype)
        for g in range(groups):
            for k in range(Kg):
                for r in range(R):
                    wgt[g, k, r] = w2[r, g * Kg + k]
        gy2 = gy.reshape(N * OHOW, K)
    else:
        wf = w.reshape(-1)
        wgt = np.empty((groups, R, Kg), dtype=gy.dtype)
        for g in range(groups):
            for k in range(Kg):
                for r in range(R):
                    wgt[g, r, k] = wf[(g * Kg + k) * R + r]
        gy2 = gy.reshape(N * K, OHOW)  # unused in NCHW (keeps one type for both branches)
        w2 = wf.reshape(K, R)  # unused in NCHW
    for wk in prange(nw):
        gcw = gcol[wk]
        gyw = gyc[wk]
        for t in range(wk * T // nw, (wk + 1) * T // nw):
            u0 = t * rpt
            u1 = min(u0 + rpt, rows)
            u = u0
            while u < u1:
                n = u // H
                ub = min(u1, (n + 1) * H)
                h0 = u - n * H
                h1 = ub - n * H
                u = ub
                olo, ohi = _gy_rows_for(h0, h1, OH, sh, pt, kh, dh)
                P = (ohi - olo) * OW
                if nhwc:
                    s = (n * H + h0) * W * C
                    for e in range((h1 - h0) * W * C):
                        gxf[U(s + e)] = 0.0
                else:
                    for c in range(C):
                        s = ((n * C + c) * H + h0) * W
                        for e in range((h1 - h0) * W):
                            gxf[U(s + e)] = 0.0
                if P == 0:
                    continue
                if nhwc and C == 1:
                    # one input channel: NHWC memory is NCHW memory; gcol^T (R, P) =
                    # w2 (R, K) @ gy rows^T (K, P), then the channel-planar gather
                    p0 = (n * OH + olo) * OW
                    pan = gcw[:R * P].reshape(R, P)
                    np.dot(w2, gy2[p0:p0 + P].T, pan)
                    _col2im_nchw(gxf, gcw, P, 0, n, h0, h1, olo, 1, H, W, 0, 1,
                                 kh, kw, sh, sw, pt, pl, dh, dw, OH, OW)
                    continue
                for g in range(groups):
                    c0 = g * Cg
                    if nhwc:
                        # gcol (P, R) = gy rows (P, Kg) @ wgt[g] (Kg, R)
                        p0 = (n * OH + olo) * OW
                        pan = gcw[:P * R].reshape(P, R)
                        if groups == 1:
                            np.dot(gy2[p0:p0 + P], wgt[0], pan)
                        else:
                            gyu = gyw[:P * Kg].reshape(P, Kg)
                            for p in range(P):
                                for k in range(Kg):
                                    gyu[p, k] = gy2[p0 + p, g * Kg + k]
                            np.dot(gyu, wgt[g], pan)
                        for h in range(h0, h1):
                            for i in range(kh):
                                tt = h + pt - i * dh
                                if tt < 0 or tt % sh != 0:
                                    continue
                                oh = tt // sh
                                if oh >= OH:
                                    continue
                                for j in range(kw):
                                    off = j * dw - pl
                                    lo, hi = _valid_range(off, sw, W, OW)
                                    cb = (i * kw + j) * Cg
                                    for ow in range(lo, hi):
                                        dst = ((n * H + h) * W + ow * sw + off) * C + c0
                                        src = ((oh - olo) * OW + ow) * R + cb
                                        for c in range(Cg):
                                            gxf[U(dst + c)] += gcw[U(src + c)]
                    else:
                        # gcol (R, P) = wgt[g] (R, Kg) @ gy unit (Kg, P)
                        pan = gcw[:R * P].reshape(R, P)
                        if P == OHOW:
                            s = (n * K + g * Kg) * OHOW
                            np.dot(wgt[g], gyf[s:s + Kg * OHOW].reshape(Kg, OHOW), pan)
                        else:
                            gyu = gyw[:Kg * P].reshape(Kg, P)
                            for k in range(Kg):
                                s = (n * K + g * Kg + k) * OHOW + olo * OW
                                for e in range(P):
                                    gyw[U(k * P + e)] = gyf[U(s + e)]
                            np.dot(wgt[g], gyu, pan)
                        _col2im_nchw(gxf, gcw, P, 0, n, h0, h1, olo, C, H, W, c0, Cg,
                                     kh, kw, sh, sw, pt, pl, dh, dw, OH, OW)


# --------------------------------------------------------------------------- backward filter

@njit(parallel=True, **_JIT)
def conv2d_backward_filter_kernel(x, gy, gw, sh, sw, pt, pl, dh, dw, groups, nhwc, nthreads):
    # NCHW: x (N,C,H,W), gy (N,K,OH,OW) -> gw (K,Cg,kh,kw);  NHWC: gw (kh,kw,Cg,K)
    N, C, H, W, K, Cg, kh, kw, OH, OW = _conv_dims(x.shape, gw.shape, gy.shape, groups, nhwc)
    _check_geometry(H, W, OH, OW, kh, kw, sh, sw, pt, pl, dh, dw)
    Kg = K // groups
    R = Cg * kh * kw
    OHOW = OH * OW
    rows = N * OH
    rpt = _rows_per_task(R * OW, rows, OH)
    T = (rows + rpt - 1) // rpt
    nw = max(1, min(nthreads, T))
    col = np.empty((nw, R * rpt * OW), dtype=x.dtype)
    gyc = np.empty((nw, Kg * rpt * OW), dtype=x.dtype)
    part = np.empty((nw, Kg * R), dtype=x.dtype)
    # acc[w, g] is worker w's sum for group g: (R, Kg) for NHWC, (Kg, R) for NCHW
    acc = np.zeros((nw, groups, Kg * R), dtype=x.dtype)
    gyf = gy.reshape(-1)
    if nhwc:
        gy2 = gy.reshape(N * OHOW, K)
        x1 = x.reshape(N, 1, H, W * C)  # only used when C == 1
        for wk in prange(nw):
            colw = col[wk]
            gyw = gyc[wk]
            pw = part[wk].reshape(R, Kg)
            for t in range(wk * T // nw, (wk + 1) * T // nw):
                q0 = t * rpt
                q1 = min(q0 + rpt, rows)
                P = (q1 - q0) * OW
                if C == 1:
                    # one input channel: NHWC memory is NCHW memory; channel-planar
                    # panel (R, P) @ gy rows (P, K)
                    q = q0
                    while q < q1:
                        n = q // OH
                        qb = min(q1, (n + 1) * OH)
                        _im2col_nchw(x1, colw, P, (q - q0) * OW, n, q - n * OH, qb - n * OH, 0, 1,
                                     kh, kw, sh, sw, pt, pl, dh, dw, OW)
                        q = qb
                    np.dot(colw[:R * P].reshape(R, P), gy2[q0 * OW:q1 * OW], pw)
                    a = acc[wk, 0]
                    pf = part[wk]
                    for e in range(Kg * R):
                        a[U(e)] += pf[U(e)]
                    continue
                for g in range(groups):
                    panel = colw[:P * R].reshape(P, R)
                    q = q0
                    while q < q1:
                        n = q // OH
                        qb = min(q1, (n + 1) * OH)
                        sub = colw[(q - q0) * OW * R:(qb - q0) * OW * R].reshape((qb - q) * OW, R)
                        _im2col_nhwc(x, sub, n, q - n * OH, qb - n * OH, g * Cg, Cg,
                                     kh, kw, sh, sw, pt, pl, dh, dw, OW)
                        q = qb
                    if groups == 1:
                        gyp = gy2[q0 * OW:q1 * OW]
                    else:
                        gyp = gyw[:P * Kg].reshape(P, Kg)
                        for p in range(P):
                            for k in range(Kg):
                                gyp[p, k] = gy2[q0 * OW + p, g * Kg + k]
                    np.dot(panel.T, gyp, pw)
                    a = acc[wk, g]
                    pf = part[wk]
                    for e in range(Kg * R):
                        a[U(e)] += pf[U(e)]
    else:
        for wk in prange(nw):
            colw = col[wk]
            gyw = gyc[wk]
            pw = part[wk].reshape(Kg, R)
            for t in range(wk * T // nw, (wk + 1) * T // nw):
                # one GEMM per task and group: panel (R, P) and gy (Kg, P) over all
                # the task's pixels (several images side by side)
                q0 = t * rpt
                q1 = min(q0 + rpt, rows)
                P = (q1 - q0) * OW
                for g in range(groups):
                    q = q0
                    while q < q1:
                        n = q // OH
                        qb = min(q1, (n + 1) * OH)
                        oa = q - n * OH
                        col0 = (q - q0) * OW
                        _im2col_nchw(x, colw, P, col0, n, oa, qb - n * OH, g * Cg, Cg,
                                     kh, kw, sh, sw, pt, pl, dh, dw, OW)
                        L = (qb - q) * OW
                        for k in range(Kg):
                            s = (n * K + g * Kg + k) * OHOW + oa * OW
                            d = k * P + col0
                            for e in range(L):
                                gyw[U(d + e)] = gyf[U(s + e)]
                        q = qb
                    np.dot(gyw[:Kg * P].reshape(Kg, P), colw[:R * P].reshape(R, P).T, pw)
                    a = acc[wk, g]
                    pf = part[wk]
                    for e in range(Kg * R):
                        a[U(e)] += pf[U(e)]
    # combine the worker partials in worker order
    if nhwc:
        gw2 = gw.reshape(R, K)
        for g in range(groups):
            for r in range(R):
                for k in range(Kg):
                    s = acc[0, g, r * Kg + k]
                    for wk in range(1, nw):
                        s += acc[wk, g, r * Kg + k]
                    gw2[r, g * Kg + k] = s
    else:
        gwf = gw.reshape(-1)
        for g in range(groups):
            for e in range(Kg * R):
                s = acc[0, g, e]
                for wk in range(1, nw):
                    s += acc[wk, g, e]
                gwf[g * Kg * R + e] = s


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
