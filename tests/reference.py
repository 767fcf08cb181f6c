"""Slow, obviously-correct float64 reference kernels: the oracle for the test suite.

Written from the contract (/work/shared/API.md and the docstrings of aekernels._api and
aekernels._dispatch), never from the package code: nothing here imports aekernels.
Every function computes in float64 on NCHW arrays, one output element at a time;
NHWC arguments are transposed in and the result transposed back.  Padding, output
sizes, "same"/"same_lower"/"valid" and the pooling/unpooling size rules are all worked
out here independently.  Invalid parameters raise ValueError, so property tests can
ask the reference whether a parameter set is valid.

Shapes (NCHW names; NHWC reads x[n, c, h, w] as x[n, h, w, c]):
  conv2d            x (N,C,H,W), w (K,C/g,kh,kw) [HWIO (kh,kw,C/g,K) for NHWC] -> (N,K,OH,OW)
  conv_transpose2d  x (N,Cin,H,W), w (Cin,Cout/g,kh,kw) [(kh,kw,Cout/g,Cin)] -> (N,Cout,OH,OW)
  pooling           x (N,C,H,W) -> (N,C,OH,OW); indices int64, flat h*W+w in the plane
"""
from __future__ import annotations

import math
from numbers import Integral

import numpy as np

# ----------------------------------------------------------------------------- helpers


def pair(v, name="value"):
    """int or (a, b) -> (a, b) of Python ints."""
    if isinstance(v, Integral) and not isinstance(v, bool):
        return (int(v), int(v))
    a, b = v
    return (int(a), int(b))


def to_nchw(a, layout):
    """Data in ``layout`` (4-D) -> float64 NCHW."""
    a = np.asarray(a, dtype=np.float64)
    return a if layout == "NCHW" else a.transpose(0, 3, 1, 2)


def from_nchw(a, layout):
    """NCHW -> ``layout`` (a contiguous copy)."""
    return np.ascontiguousarray(a if layout == "NCHW" else a.transpose(0, 2, 3, 1))


def weight_to_oihw(w, layout):
    """Forward-conv weight in ``layout``'s convention (OIHW / HWIO) -> float64 OIHW."""
    w = np.asarray(w, dtype=np.float64)
    return w if layout == "NCHW" else w.transpose(3, 2, 0, 1)


def weight_from_oihw(w, layout):
    return np.ascontiguousarray(w if layout == "NCHW" else w.transpose(2, 3, 1, 0))


def shape_to_nchw(shape, layout):
    shape = tuple(int(s) for s in shape)
    if layout == "NCHW":
        return shape
    if len(shape) == 4:
        n, h, w, c = shape
        return (n, c, h, w)
    h, w, c = shape
    return (c, h, w)


def shape_from_nchw(shape, layout):
    shape = tuple(int(s) for s in shape)
    if layout == "NCHW":
        return shape
    if len(shape) == 4:
        n, c, h, w = shape
        return (n, h, w, c)
    c, h, w = shape
    return (h, w, c)


def _batched(a):
    """3-D (a batch of one) -> 4-D, and whether to squeeze the result again."""
    a = np.asarray(a)
    if a.ndim == 3:
        return a[None], True
    if a.ndim != 4:
        raise ValueError(f"expected a 3-D or 4-D array, got {a.ndim}-D")
    return a, False


def _unbatch(y, squeeze):
    return y[0] if squeeze else y


def resolve_padding(padding, size, kernel, stride, dilation):
    """Padding spec -> ((top, bottom), (left, right)).

    "same" is TF/ONNX SAME_UPPER: output = ceil(size / stride), total padding
    max(0, (out - 1) * stride + dilation * (k - 1) + 1 - size), the odd extra
    row/column at the bottom/right; "same_lower" puts it at the top/left.
    """
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return ((0, 0), (0, 0))
        if mode not in ("same", "same_lower"):
            raise ValueError(f"bad padding string {padding!r}")
        result = []
        for n, k, s, d in zip(size, kernel, stride, dilation):
            out = -(-n // s)
            total = max(0, (out - 1) * s + d * (k - 1) + 1 - n)
            small, big = total // 2, total - total // 2
            result.append((small, big) if mode == "same" else (big, small))
        return tuple(result)
    if isinstance(padding, Integral):
        p = int(padding)
        pads = ((p, p), (p, p))
    else:
        a, b = padding
        if isinstance(a, Integral):
            pads = ((int(a), int(a)), (int(b), int(b)))
        else:
            pads = ((int(a[0]), int(a[1])), (int(b[0]), int(b[1])))
    if min(min(p) for p in pads) < 0:
        raise ValueError("negative padding")
    _check_extents(*pads[0], *pads[1])
    return pads


def conv_out_size(n, k, s, d, p0, p1):
    """floor((n + p0 + p1 - d*(k-1) - 1) / s) + 1."""
    return (n + p0 + p1 - d * (k - 1) - 1) // s + 1


def pool_out_size(n, k, s, d, p0, p1, ceil_mode):
    span = n + p0 + p1 - d * (k - 1) - 1     # may be negative: window wider than input
    if not ceil_mode:
        return span // s + 1                 # floor division: <= 0 when span < 0
    out = -(-span // s) + 1                  # ceil, as PyTorch (a too-wide window may fit)
    # PyTorch rule: the last window must start inside the input or the left padding.
    if out > 0 and (out - 1) * s >= n + p0:
        out -= 1
    return out


MAX_EXTENT = 2**31 - 1   # the documented limit on every size/stride/padding (_api docstring)


def _check_positive(**kw):
    for name, v in kw.items():
        if min(v) < 1:
            raise ValueError(f"{name} must be >= 1")
        if max(v) > MAX_EXTENT:
            raise ValueError(f"{name} must be < 2**31")


def _check_extents(*sizes):
    """Every padding and output extent must be < 2**31 as well."""
    if max(sizes) > MAX_EXTENT:
        raise ValueError("extent >= 2**31")


# ----------------------------------------------------------------------------- conv


def _conv_geometry(x_shape, w_shape, stride, padding, dilation, groups):
    """NCHW input shape, OIHW weight shape -> (pads, (OH, OW))."""
    N, C, H, W = x_shape
    K, Cg, kh, kw = w_shape
    s, d = pair(stride), pair(dilation)
    _check_positive(stride=s, dilation=d, kernel=(kh, kw))
    if groups < 1 or C % groups or K % groups or C // groups != Cg:
        raise ValueError("groups / channel mismatch")
    if min(C, H, W, K) < 1:
        raise ValueError("zero extent")
    pads = resolve_padding(padding, (H, W), (kh, kw), s, d)
    oh = conv_out_size(H, kh, s[0], d[0], *pads[0])
    ow = conv_out_size(W, kw, s[1], d[1], *pads[1])
    if oh < 1 or ow < 1:
        raise ValueError("output size <= 0")
    _check_extents(oh, ow)
    return pads, (oh, ow), s, d


def conv2d(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1, layout="NCHW"):
    """y[n,k,oh,ow] = bias[k] + sum_{c,i,j} xpad[n, g*Cg+c, oh*sh+i*dh, ow*sw+j*dw] * w[k,c,i,j]."""
    x, squeeze = _batched(x)
    x = to_nchw(x, layout)
    w = weight_to_oihw(w, layout)
    N, C, H, W = x.shape
    K, Cg, kh, kw = w.shape
    ((pt, pb), (pl, pr)), (OH, OW), (sh, sw), (dh, dw) = _conv_geometry(
        x.shape, w.shape, stride, padding, dilation, groups)
    xp = np.zeros((N, C, H + pt + pb, W + pl + pr))
    xp[:, :, pt:pt + H, pl:pl + W] = x
    Kg = K // groups
    y = np.zeros((N, K, OH, OW))
    for n in range(N):
        for k in range(K):
            g = k // Kg
            for oh in range(OH):
                for ow in range(OW):
                    h0, w0 = oh * sh, ow * sw
                    window = xp[n, g * Cg:(g + 1) * Cg,
                                h0:h0 + dh * (kh - 1) + 1:dh,
                                w0:w0 + dw * (kw - 1) + 1:dw]
                    y[n, k, oh, ow] = np.sum(window * w[k])
            if bias is not None:
                y[n, k] += float(np.asarray(bias, dtype=np.float64)[k])
    return _unbatch(from_nchw(y, layout), squeeze)


def conv2d_backward_input(gy, w, input_shape, stride=1, padding=0, dilation=1, groups=1,
                          layout="NCHW"):
    """Adjoint of conv2d in x: scatter gy[n,k,oh,ow] * w[k] back over each window."""
    gy, squeeze = _batched(gy)
    gy = to_nchw(gy, layout)
    w = weight_to_oihw(w, layout)
    shape = shape_to_nchw(input_shape, layout)
    if len(shape) == 3:
        shape = (1,) + shape
    N, C, H, W = shape
    K, Cg, kh, kw = w.shape
    ((pt, pb), (pl, pr)), (OH, OW), (sh, sw), (dh, dw) = _conv_geometry(
        shape, w.shape, stride, padding, dilation, groups)
    if gy.shape != (N, K, OH, OW):
        raise ValueError(f"grad_out shape {gy.shape} != forward output {(N, K, OH, OW)}")
    gxp = np.zeros((N, C, H + pt + pb, W + pl + pr))
    Kg = K // groups
    for n in range(N):
        for k in range(K):
            g = k // Kg
            for oh in range(OH):
                for ow in range(OW):
                    h0, w0 = oh * sh, ow * sw
                    gxp[n, g * Cg:(g + 1) * Cg,
                        h0:h0 + dh * (kh - 1) + 1:dh,
                        w0:w0 + dw * (kw - 1) + 1:dw] += gy[n, k, oh, ow] * w[k]
    gx = gxp[:, :, pt:pt + H, pl:pl + W]
    return _unbatch(from_nchw(gx, layout), squeeze)


def conv2d_backward_filter(x, gy, weight_shape, stride=1, padding=0, dilation=1, groups=1,
                           layout="NCHW"):
    """gw[k,c,i,j] = sum_{n,oh,ow} gy[n,k,oh,ow] * xpad[n, g*Cg+c, oh*sh+i*dh, ow*sw+j*dw]."""
    x, squeeze = _batched(x)
    gy, _ = _batched(gy)
    x = to_nchw(x, layout)
    gy = to_nchw(gy, layout)
    wshape = tuple(int(v) for v in weight_shape)
    if layout == "NHWC":
        kh_, kw_, cg_, k_ = wshape
        wshape = (k_, cg_, kh_, kw_)
    N, C, H, W = x.shape
    K, Cg, kh, kw = wshape
    ((pt, pb), (pl, pr)), (OH, OW), (sh, sw), (dh, dw) = _conv_geometry(
        x.shape, wshape, stride, padding, dilation, groups)
    if gy.shape != (N, K, OH, OW):
        raise ValueError(f"grad_out shape {gy.shape} != forward output {(N, K, OH, OW)}")
    xp = np.zeros((N, C, H + pt + pb, W + pl + pr))
    xp[:, :, pt:pt + H, pl:pl + W] = x
    gw = np.zeros((K, Cg, kh, kw))
    Kg = K // groups
    for n in range(N):
        for k in range(K):
            g = k // Kg
            for oh in range(OH):
                for ow in range(OW):
                    h0, w0 = oh * sh, ow * sw
                    gw[k] += gy[n, k, oh, ow] * xp[n, g * Cg:(g + 1) * Cg,
                                                   h0:h0 + dh * (kh - 1) + 1:dh,
                                                   w0:w0 + dw * (kw - 1) + 1:dw]
    return weight_from_oihw(gw, layout)


def conv2d_backward_bias(gy, layout="NCHW"):
    gy, _ = _batched(gy)
    gy = to_nchw(gy, layout)
    gb = np.zeros(gy.shape[1])
    for k in range(gy.shape[1]):
        gb[k] = np.sum(gy[:, k])
    return gb


def conv_transpose2d_output_hw(in_hw, w_oihw_shape, stride=1, padding=0, output_padding=0,
                               dilation=1, output_size=None):
    """Output (H, W) and resolved pads of conv_transpose2d (NCHW-ordered arguments)."""
    H, W = in_hw
    _, _, kh, kw = w_oihw_shape
    s, d = pair(stride), pair(dilation)
    _check_positive(stride=s, dilation=d, kernel=(kh, kw))
    if output_size is not None:
        output_size = tuple(int(v) for v in output_size)[-2:]
    if isinstance(padding, str) and padding.lower() in ("same", "same_lower"):
        target = output_size if output_size is not None else (H * s[0], W * s[1])
        pads = resolve_padding(padding, target, (kh, kw), s, d)
        out = target
        for n_in, n_out, (p0, p1), k, si, di in zip((H, W), out, pads, (kh, kw), s, d):
            if conv_out_size(n_out, k, si, di, p0, p1) != n_in:
                raise ValueError("output_size inconsistent with 'same' padding")
        return out, pads
    pads = resolve_padding(padding, (H, W), (kh, kw), s, d)
    default = tuple((n - 1) * si - p0 - p1 + di * (k - 1) + 1
                    for n, si, (p0, p1), di, k in zip((H, W), s, pads, d, (kh, kw)))
    if output_size is not None:
        op = tuple(o - dft for o, dft in zip(output_size, default))
    else:
        op = pair(output_padding)
    for o, si, di in zip(op, s, d):
        if not 0 <= o < max(si, di):
            raise ValueError("output_padding must be in [0, max(stride, dilation))")
    out = tuple(dft + o for dft, o in zip(default, op))
    if min(out) < 1:
        raise ValueError("output size <= 0")
    _check_extents(*out)
    return out, pads


def conv_transpose2d(x, w, bias=None, stride=1, padding=0, output_padding=0, dilation=1,
                     groups=1, layout="NCHW", output_size=None):
    """Scatter: y[n, g*Cog+o, ih*sh-pt+i*dh, iw*sw-pl+j*dw] += x[n,cin,ih,iw] * w[cin,o,i,j]."""
    x, squeeze = _batched(x)
    x = to_nchw(x, layout)
    w = weight_to_oihw(w, layout)   # (Cin, Cout/g, kh, kw): OIHW of the forward conv
    N, Cin, H, W = x.shape
    Cw, Cog, kh, kw = w.shape
    if Cw != Cin or groups < 1 or Cin % groups:
        raise ValueError("channel mismatch")
    if output_size is not None and layout == "NHWC" and len(output_size) == 4:
        output_size = shape_to_nchw(output_size, layout)
    (OH, OW), ((pt, pb), (pl, pr)) = conv_transpose2d_output_hw(
        (H, W), w.shape, stride, padding, output_padding, dilation, output_size)
    (sh, sw), (dh, dw) = pair(stride), pair(dilation)
    Cout = Cog * groups
    Cig = Cin // groups
    BH = max((H - 1) * sh + dh * (kh - 1) + 1, pt + OH)
    BW = max((W - 1) * sw + dw * (kw - 1) + 1, pl + OW)
    buf = np.zeros((N, Cout, BH, BW))
    for n in range(N):
        for c in range(Cin):
            g = c // Cig
            for ih in range(H):
                for iw in range(W):
                    h0, w0 = ih * sh, iw * sw
                    buf[n, g * Cog:(g + 1) * Cog,
                        h0:h0 + dh * (kh - 1) + 1:dh,
                        w0:w0 + dw * (kw - 1) + 1:dw] += x[n, c, ih, iw] * w[c]
    y = buf[:, :, pt:pt + OH, pl:pl + OW].copy()
    if bias is not None:
        y += np.asarray(bias, dtype=np.float64)[None, :, None, None]
    return _unbatch(from_nchw(y, layout), squeeze)


# ----------------------------------------------------------------------------- pooling


def pool_geometry(hw, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """-> (k, s, d, pads, (OH, OW)); ValueError if some window has no in-image position."""
    H, W = hw
    k = pair(kernel_size)
    s = k if stride is None else pair(stride)
    d = pair(dilation)
    _check_positive(kernel_size=k, stride=s, dilation=d)
    pads = resolve_padding(padding, (H, W), k, s, d)
    out = tuple(pool_out_size(n, ki, si, di, p0, p1, ceil_mode)
                for n, ki, si, di, (p0, p1) in zip((H, W), k, s, d, pads))
    if min(out) < 1:
        raise ValueError("output size <= 0")
    _check_extents(*out)
    for n, ki, si, di, (p0, _), o in zip((H, W), k, s, d, pads, out):
        for t in range(o):
            if not any(0 <= t * si - p0 + i * di < n for i in range(ki)):
                raise ValueError("padding leaves a pooling window entirely outside the image")
    return k, s, d, pads, out


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               layout="NCHW"):
    """-> (y, indices).  Row-major window scan over in-image positions; a strictly greater
    value or the first NaN replaces the current one (ties keep the first maximum)."""
    x, squeeze = _batched(x)
    x = to_nchw(x, layout)
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (dh, dw), ((pt, _), (pl, _)), (OH, OW) = pool_geometry(
        (H, W), kernel_size, stride, padding, dilation, ceil_mode)
    y = np.zeros((N, C, OH, OW))
    idx = np.zeros((N, C, OH, OW), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                for ow in range(OW):
                    best, best_i = None, -1
                    for i in range(kh):
                        h = oh * sh - pt + i * dh
                        if not 0 <= h < H:
                            continue
                        for j in range(kw):
                            w = ow * sw - pl + j * dw
                            if not 0 <= w < W:
                                continue
                            v = x[n, c, h, w]
                            if best is None or v > best or (math.isnan(v) and not math.isnan(best)):
                                best, best_i = v, h * W + w
                    y[n, c, oh, ow] = best
                    idx[n, c, oh, ow] = best_i
    return (_unbatch(from_nchw(y, layout), squeeze),
            _unbatch(from_nchw(idx, layout), squeeze))


def max_pool2d_backward(gy, indices, input_shape, layout="NCHW"):
    """gx = 0; gx[n, c].flat[indices[n,c,oh,ow]] += gy[n,c,oh,ow]."""
    gy, squeeze = _batched(gy)
    indices, _ = _batched(indices)
    gy = to_nchw(gy, layout)
    indices = np.asarray(indices)
    indices = indices if layout == "NCHW" else indices.transpose(0, 3, 1, 2)
    shape = shape_to_nchw(input_shape, layout)
    if len(shape) == 3:
        shape = (1,) + shape
    N, C, H, W = shape
    if indices.shape != gy.shape or gy.shape[:2] != (N, C):
        raise ValueError("shape mismatch")
    gx = np.zeros((N, C, H * W))
    for n in range(N):
        for c in range(C):
            for oh in range(gy.shape[2]):
                for ow in range(gy.shape[3]):
                    i = int(indices[n, c, oh, ow])
                    if not 0 <= i < H * W:
                        raise ValueError("index outside the plane")
                    gx[n, c, i] += gy[n, c, oh, ow]
    return _unbatch(from_nchw(gx.reshape(N, C, H, W), layout), squeeze)


def _avg_divisors(H, W, k, s, d, pads, out, count_include_pad, divisor_override):
    """divisor[oh, ow] per the contract: override, else taps inside the padded image
    [-pt, H+pb) x [-pl, W+pr) (count_include_pad) or inside the image."""
    (kh, kw), (sh, sw), (dh, dw) = k, s, d
    (pt, pb), (pl, pr) = pads
    OH, OW = out
    div = np.zeros((OH, OW))
    for oh in range(OH):
        for ow in range(OW):
            if divisor_override is not None and divisor_override > 0:
                div[oh, ow] = divisor_override
                continue
            lo_h, hi_h = (-pt, H + pb) if count_include_pad else (0, H)
            lo_w, hi_w = (-pl, W + pr) if count_include_pad else (0, W)
            rows = sum(1 for i in range(kh) if lo_h <= oh * sh - pt + i * dh < hi_h)
            cols = sum(1 for j in range(kw) if lo_w <= ow * sw - pl + j * dw < hi_w)
            div[oh, ow] = rows * cols
    return div


def avg_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               count_include_pad=True, divisor_override=None, layout="NCHW"):
    x, squeeze = _batched(x)
    x = to_nchw(x, layout)
    N, C, H, W = x.shape
    k, s, d, pads, out = pool_geometry((H, W), kernel_size, stride, padding, dilation, ceil_mode)
    (kh, kw), (sh, sw), (dh, dw), ((pt, _), (pl, _)) = k, s, d, pads
    div = _avg_divisors(H, W, k, s, d, pads, out, count_include_pad, divisor_override)
    y = np.zeros((N, C) + out)
    for n in range(N):
        for c in range(C):
            for oh in range(out[0]):
                for ow in range(out[1]):
                    acc = 0.0
                    for i in range(kh):
                        h = oh * sh - pt + i * dh
                        for j in range(kw):
                            w = ow * sw - pl + j * dw
                            if 0 <= h < H and 0 <= w < W:
                                acc += x[n, c, h, w]
                    y[n, c, oh, ow] = acc / div[oh, ow]
    return _unbatch(from_nchw(y, layout), squeeze)


def avg_pool2d_backward(gy, input_shape, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False, count_include_pad=True, divisor_override=None,
                        layout="NCHW"):
    gy, squeeze = _batched(gy)
    gy = to_nchw(gy, layout)
    shape = shape_to_nchw(input_shape, layout)
    if len(shape) == 3:
        shape = (1,) + shape
    N, C, H, W = shape
    k, s, d, pads, out = pool_geometry((H, W), kernel_size, stride, padding, dilation, ceil_mode)
    if gy.shape != (N, C) + out:
        raise ValueError("grad_out shape inconsistent with the forward parameters")
    (kh, kw), (sh, sw), (dh, dw), ((pt, _), (pl, _)) = k, s, d, pads
    div = _avg_divisors(H, W, k, s, d, pads, out, count_include_pad, divisor_override)
    gx = np.zeros((N, C, H, W))
    for n in range(N):
        for c in range(C):
            for oh in range(out[0]):
                for ow in range(out[1]):
                    for i in range(kh):
                        h = oh * sh - pt + i * dh
                        for j in range(kw):
                            w = ow * sw - pl + j * dw
                            if 0 <= h < H and 0 <= w < W:
                                gx[n, c, h, w] += gy[n, c, oh, ow] / div[oh, ow]
    return _unbatch(from_nchw(gx, layout), squeeze)


# ----------------------------------------------------------------------------- unpooling


def unpool_output_hw(in_hw, kernel_size, stride=None, padding=0, output_size=None):
    """Default (H-1)*s - pt - pb + k; output_size must lie strictly within default +- stride."""
    k = pair(kernel_size)
    s = k if stride is None else pair(stride)
    _check_positive(kernel_size=k, stride=s)
    pads = resolve_padding(padding, in_hw, k, s, (1, 1))
    default = tuple((n - 1) * si - p0 - p1 + ki
                    for n, si, (p0, p1), ki in zip(in_hw, s, pads, k))
    if output_size is None:
        out = default
    else:
        out = tuple(int(v) for v in output_size)[-2:]
        for o, dft, si in zip(out, default, s):
            if not dft - si < o < dft + si:
                raise ValueError("output_size out of range")
    if min(out) < 1:
        raise ValueError("output size <= 0")
    _check_extents(*out)
    return out


def max_unpool2d(x, indices, kernel_size, stride=None, padding=0, output_size=None,
                 layout="NCHW"):
    """y = 0; y[n, c].flat[indices[n,c,h,w]] = x[n,c,h,w] in row-major order (last wins)."""
    x, squeeze = _batched(x)
    indices, _ = _batched(indices)
    x = to_nchw(x, layout)
    indices = np.asarray(indices)
    indices = indices if layout == "NCHW" else indices.transpose(0, 3, 1, 2)
    if indices.shape != x.shape:
        raise ValueError("indices shape != x shape")
    N, C, H, W = x.shape
    if output_size is not None and layout == "NHWC" and len(output_size) == 4:
        output_size = shape_to_nchw(output_size, layout)
    OH, OW = unpool_output_hw((H, W), kernel_size, stride, padding, output_size)
    y = np.zeros((N, C, OH * OW))
    for n in range(N):
        for c in range(C):
            for h in range(H):
                for w in range(W):
                    i = int(indices[n, c, h, w])
                    if not 0 <= i < OH * OW:
                        raise ValueError("index outside the output plane")
                    y[n, c, i] = x[n, c, h, w]
    return _unbatch(from_nchw(y.reshape(N, C, OH, OW), layout), squeeze)


def max_unpool2d_backward(gy, indices, layout="NCHW"):
    """gx[n,c,h,w] = gy[n, c].flat[indices[n,c,h,w]]."""
    gy, squeeze = _batched(gy)
    indices, _ = _batched(indices)
    gy = to_nchw(gy, layout)
    indices = np.asarray(indices)
    indices = indices if layout == "NCHW" else indices.transpose(0, 3, 1, 2)
    N, C, OH, OW = gy.shape
    if indices.shape[:2] != (N, C):
        raise ValueError("shape mismatch")
    gx = np.zeros(indices.shape)
    for n in range(N):
        for c in range(C):
            for h in range(indices.shape[2]):
                for w in range(indices.shape[3]):
                    i = int(indices[n, c, h, w])
                    if not 0 <= i < OH * OW:
                        raise ValueError("index outside the plane")
                    gx[n, c, h, w] = gy[n, c, i // OW, i % OW]
    return _unbatch(from_nchw(gx, layout), squeeze)


# ----------------------------------------------------------------------------- upsampling


def upsample_nearest2d(x, scale_factor, layout="NCHW"):
    """y[.., h, w] = x[.., h // fh, w // fw]."""
    x, squeeze = _batched(x)
    x = to_nchw(x, layout)
    fh, fw = pair(scale_factor)
    _check_positive(scale_factor=(fh, fw))
    N, C, H, W = x.shape
    _check_extents(H * fh, W * fw)
    y = np.zeros((N, C, H * fh, W * fw))
    for h in range(H * fh):
        for w in range(W * fw):
            y[:, :, h, w] = x[:, :, h // fh, w // fw]
    return _unbatch(from_nchw(y, layout), squeeze)


def upsample_nearest2d_backward(gy, scale_factor, layout="NCHW"):
    """gx[.., h, w] = sum of gy over the fh x fw block it was copied to."""
    gy, squeeze = _batched(gy)
    gy = to_nchw(gy, layout)
    fh, fw = pair(scale_factor)
    _check_positive(scale_factor=(fh, fw))
    N, C, OH, OW = gy.shape
    if OH % fh or OW % fw:
        raise ValueError("grad_out size not a multiple of scale_factor")
    gx = np.zeros((N, C, OH // fh, OW // fw))
    for h in range(OH):
        for w in range(OW):
            gx[:, :, h // fh, w // fw] += gy[:, :, h, w]
    return _unbatch(from_nchw(gx, layout), squeeze)
