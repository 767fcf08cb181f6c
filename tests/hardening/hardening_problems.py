"""Random kernel calls for the hardening tests and the fuzz harness (.ci/fuzz.py).

A *source* of choices (``Src``: hypothesis ``data.draw`` or a ``random.Random``) drives

* ``valid_call(kernel, src)``: a small call the contract accepts, with its expected
  output shape worked out here from the shape formulas and its float64 reference
  (tests/reference.py) computed lazily;
* ``invalid_call(kernel, src)``: a valid call with exactly one argument corrupted so
  that the contract *must* refuse it (0/negative/huge ints, bad padding, wrong dtypes,
  ranks, channels, indices outside the plane, inconsistent backward shapes, bad
  ``out=``...).  The expected outcome is ValueError or TypeError, and ``out`` untouched.

Everything is NCHW internally and converted to the drawn layout at the end.
Sizes stay tiny, so the reference is fast and nothing huge is ever allocated: every
"huge" value drawn is >= 2**31 (refused before any allocation by the contract).
"""
from __future__ import annotations

import dataclasses
import random
from typing import Any, Callable

import numpy as np

import helpers as H
import reference as R

KERNELS = (
    "conv2d", "conv2d_backward_input", "conv2d_backward_filter", "conv2d_backward_bias",
    "conv_transpose2d", "max_pool2d", "max_pool2d_backward", "avg_pool2d",
    "avg_pool2d_backward", "max_unpool2d", "max_unpool2d_backward", "upsample_nearest2d",
    "upsample_nearest2d_backward",
)
HAS_OUT = set(KERNELS) - {"conv2d_backward_bias", "upsample_nearest2d",
                          "upsample_nearest2d_backward"}
HUGE = (2**31, 2**31 + 1, 2**32 + 3, 2**55, 2**62, 2**63 - 1, 2**63, 2**64 + 5)
NEG = (-1, -2, -(2**31), -(2**31) - 1, -(2**63), -(2**64))


# Findings of the hardening work still open in the library (see the regression tests in
# test_cve_regressions.py, marked xfail(strict=True) with the same ids).  While a
# finding is open the generators steer around it, so the property tests and the fuzzer
# keep exploring everything else; delete the id here when its fix lands.
#   F1  numba conv refused windows lying entirely in the bottom/right padding (fixed 9bad0e4)
#   F2  output_size as a full NHWC shape was read as (W, C)                   (fixed 2d0c871)
#   F5  conv_transpose2d(padding="same") != H*stride when dilated kernel < stride (fixed 8c23d7c)
# (F3, huge pooling padding, is not generated here: see test_cve_regressions.py)
KNOWN_OPEN: set[str] = set()


class Reject(Exception):
    """The drawn parameters are not a valid call (the caller draws again)."""


# ----------------------------------------------------------------------------- sources


class Src:
    """Choices from a ``random.Random`` (fuzzer) or a hypothesis ``data`` object."""

    def __init__(self, rng: random.Random | None = None, data: Any = None):
        self.rng, self.data = rng, data

    def int(self, lo: int, hi: int) -> int:
        if self.data is not None:
            from hypothesis import strategies as st
            return self.data.draw(st.integers(lo, hi))
        return self.rng.randint(lo, hi)

    def choice(self, seq):
        seq = list(seq)
        return seq[self.int(0, len(seq) - 1)]

    def bool(self, p_true: float = 0.5) -> bool:
        # p_true is honoured by the RNG source; hypothesis explores both anyway
        if self.data is not None:
            return self.int(0, 1) == 1
        return self.rng.random() < p_true

    def seed(self) -> int:
        return self.int(0, 2**31 - 1)


# ----------------------------------------------------------------------------- calls


@dataclasses.dataclass
class Call:
    kernel: str
    args: list
    kwargs: dict
    layout: str
    dtype: Any
    shape: tuple | None = None               # expected result shape (value part)
    ref: Callable[[], Any] | None = None      # float64 reference result(s) in ``layout``
    bound: Callable[[], Any] | None = None    # float32 error bound helper, or None
    K: int = 1                                # reduction length for the float32 bound
    exact: bool = False                       # bitwise comparison (max pool, unpool...)
    what: str = ""                            # description of a corruption

    def run(self, module):
        return getattr(module, self.kernel)(*self.args, **self.kwargs)

    def describe(self) -> str:
        def fmt(v):
            if isinstance(v, np.ndarray):
                return f"ndarray(shape={v.shape}, dtype={v.dtype.str}, flags={_flags(v)})"
            return repr(v)
        args = ", ".join(fmt(a) for a in self.args)
        kwargs = ", ".join(f"{k}={fmt(v)}" for k, v in self.kwargs.items())
        return f"{self.kernel}({args}{', ' if kwargs else ''}{kwargs})" + (
            f"  # {self.what}" if self.what else "")

    def copy(self) -> "Call":
        return dataclasses.replace(self, args=list(self.args), kwargs=dict(self.kwargs))


def _flags(a: np.ndarray) -> str:
    f = a.flags
    return "".join(c for c, on in (("C", f.c_contiguous), ("F", f.f_contiguous),
                                   ("W", f.writeable), ("A", f.aligned)) if on)


def _pad_spec(src: Src, hi: int = 3):
    kind = src.int(0, 6)
    if kind == 0:
        return src.int(0, hi)
    if kind == 1:
        return (src.int(0, hi), src.int(0, hi))
    if kind == 2:
        return ((src.int(0, hi), src.int(0, hi)), (src.int(0, hi), src.int(0, hi)))
    if kind == 3:
        return src.choice(["valid", "VALID"])
    if kind == 4:
        return src.choice(["same", "SAME"])
    if kind == 5:
        return src.choice(["same_lower", "SAME_LOWER"])
    return 0


def _int_or_pair(src: Src, lo: int, hi: int):
    return src.int(lo, hi) if src.bool() else (src.int(lo, hi), src.int(lo, hi))


def _common(src: Src):
    return src.choice(["NCHW", "NHWC"]), src.choice([np.float32, np.float64])


def _to(a, layout, dtype):
    return H.data(a, layout, dtype)


def _maybe3d(src: Src, n: int) -> bool:
    return n == 1 and src.int(0, 3) == 0


# ----------------------------------------------------------------------------- valid


def valid_call(kernel: str, src: Src) -> Call:
    """A small valid call of ``kernel``; raises Reject for an invalid draw."""
    try:
        return _BUILDERS[kernel](src)
    except ValueError as exc:   # the reference refused the geometry
        raise Reject(str(exc)) from None


def _conv_params(src: Src):
    groups = src.int(1, 3)
    cg, kg = src.int(1, 2), src.int(1, 2)
    p = dict(N=src.choice([1, 1, 2, 2, 0]), C=cg * groups, K=kg * groups,
             H=src.int(1, 7), W=src.int(1, 7), kh=src.int(1, 4), kw=src.int(1, 4))
    args = dict(stride=_int_or_pair(src, 1, 3), padding=_pad_spec(src),
                dilation=_int_or_pair(src, 1, 3), groups=groups)
    pads, (oh, ow), (sh, sw), (dh, dw) = R._conv_geometry(
        (p["N"], p["C"], p["H"], p["W"]), (p["K"], cg, p["kh"], p["kw"]),
        args["stride"], args["padding"], args["dilation"], groups)
    # the shape formula of API.md, written out again
    (pt, pb), (pl, pr) = pads
    if "F1" in KNOWN_OPEN and ((oh - 1) * sh - pt > p["H"] - 1 + dh * (p["kh"] - 1)
                               or (ow - 1) * sw - pl > p["W"] - 1 + dw * (p["kw"] - 1)):
        raise Reject("F1")
    assert oh == (p["H"] + pt + pb - dh * (p["kh"] - 1) - 1) // sh + 1
    assert ow == (p["W"] + pl + pr - dw * (p["kw"] - 1) - 1) // sw + 1
    return p, args, cg, (oh, ow)


def _build_conv2d(src: Src) -> Call:
    layout, dtype = _common(src)
    p, args, cg, (oh, ow) = _conv_params(src)
    s = src.seed()
    x = H.randn((p["N"], p["C"], p["H"], p["W"]), s)
    w = H.randn((p["K"], cg, p["kh"], p["kw"]), s + 1)
    b = H.randn((p["K"],), s + 2) if src.bool() else None
    three = _maybe3d(src, p["N"])
    xl, wl = _to(x, layout, dtype), H.weight(w, layout, dtype)
    if three:
        xl = xl[0]
    bl = None if b is None else b.astype(dtype)
    shape = H.shape((p["N"], p["K"], oh, ow), layout)[1 if three else 0:]

    def ref():
        y = R.from_nchw(R.conv2d(x, w, b, **args), layout)
        return y[0] if three else y

    def bound():
        y = R.from_nchw(R.conv2d(np.abs(x), np.abs(w), None if b is None else np.abs(b), **args),
                        layout)
        return y[0] if three else y
    return Call("conv2d", [xl, wl, bl], dict(args, layout=layout), layout, dtype, shape, ref,
                bound, K=cg * p["kh"] * p["kw"] + 1)


def _build_conv2d_backward_input(src: Src) -> Call:
    layout, dtype = _common(src)
    p, args, cg, (oh, ow) = _conv_params(src)
    s = src.seed()
    w = H.randn((p["K"], cg, p["kh"], p["kw"]), s + 1)
    gy = H.randn((p["N"], p["K"], oh, ow), s + 3)
    xshape = (p["N"], p["C"], p["H"], p["W"])
    three = _maybe3d(src, p["N"])
    gyl = _to(gy, layout, dtype)
    in_shape = H.shape(xshape, layout)
    if three:
        gyl, in_shape = gyl[0], in_shape[1:]

    def ref():
        g = R.from_nchw(R.conv2d_backward_input(gy, w, xshape, **args), layout)
        return g[0] if three else g

    def bound():
        g = R.from_nchw(R.conv2d_backward_input(np.abs(gy), np.abs(w), xshape, **args), layout)
        return g[0] if three else g
    return Call("conv2d_backward_input", [gyl, H.weight(w, layout, dtype), in_shape],
                dict(args, layout=layout), layout, dtype, tuple(in_shape), ref, bound,
                K=p["K"] // args["groups"] * p["kh"] * p["kw"])


def _build_conv2d_backward_filter(src: Src) -> Call:
    layout, dtype = _common(src)
    p, args, cg, (oh, ow) = _conv_params(src)
    s = src.seed()
    x = H.randn((p["N"], p["C"], p["H"], p["W"]), s)
    gy = H.randn((p["N"], p["K"], oh, ow), s + 3)
    wshape = (p["K"], cg, p["kh"], p["kw"])
    wl_shape = R.weight_from_oihw(np.empty(wshape), layout).shape
    three = _maybe3d(src, p["N"])
    xl, gyl = _to(x, layout, dtype), _to(gy, layout, dtype)
    if three:
        xl, gyl = xl[0], gyl[0]

    def ref():
        return R.weight_from_oihw(R.conv2d_backward_filter(x, gy, wshape, **args), layout)

    def bound():
        return R.weight_from_oihw(R.conv2d_backward_filter(np.abs(x), np.abs(gy), wshape, **args),
                                  layout)
    return Call("conv2d_backward_filter", [xl, gyl, wl_shape], dict(args, layout=layout),
                layout, dtype, wl_shape, ref, bound, K=max(1, p["N"] * oh * ow))


def _build_conv2d_backward_bias(src: Src) -> Call:
    layout, dtype = _common(src)
    shape = (src.choice([0, 1, 2, 3]), src.int(1, 5), src.int(1, 5), src.int(1, 5))
    gy = H.randn(shape, src.seed())
    three = _maybe3d(src, shape[0])
    gyl = _to(gy, layout, dtype)
    if three:
        gyl = gyl[0]
    return Call("conv2d_backward_bias", [gyl], dict(layout=layout), layout, dtype,
                (shape[1],), lambda: R.conv2d_backward_bias(gy),
                lambda: R.conv2d_backward_bias(np.abs(gy)), K=max(1, shape[0] * shape[2] * shape[3]))


def _build_conv_transpose2d(src: Src) -> Call:
    layout, dtype = _common(src)
    groups = src.int(1, 3)
    cig, cog = src.int(1, 2), src.int(1, 2)
    cin, cout = cig * groups, cog * groups
    n, h, wd = src.choice([1, 2, 0]), src.int(1, 5), src.int(1, 5)
    kh, kw = src.int(1, 4), src.int(1, 4)
    stride, dilation = _int_or_pair(src, 1, 3), _int_or_pair(src, 1, 3)
    padding = _pad_spec(src, 2)
    (sh, sw), (dh, dw) = R.pair(stride), R.pair(dilation)
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    how = src.int(0, 2)
    osz_hw = None
    if how == 1 and not isinstance(padding, str):
        kwargs["output_padding"] = (src.int(0, max(sh, dh) - 1), src.int(0, max(sw, dw) - 1))
    elif how == 2:
        if isinstance(padding, str) and padding.lower() != "valid":
            osz_hw = (h * sh + src.int(-1, 1), wd * sw + src.int(-1, 1))
        else:
            pads = R.resolve_padding(padding, (h, wd), (kh, kw), (sh, sw), (dh, dw))
            base = [(m - 1) * s_ - p0 - p1 + d_ * (k - 1) + 1
                    for m, s_, (p0, p1), d_, k in zip((h, wd), (sh, sw), pads, (dh, dw), (kh, kw))]
            osz_hw = tuple(b + src.int(0, max(s_, d_) - 1)
                           for b, s_, d_ in zip(base, (sh, sw), (dh, dw)))
        full = src.bool() and not ("F2" in KNOWN_OPEN and layout == "NHWC")
        kwargs["output_size"] = H.shape((n, cout) + osz_hw, layout) if full else osz_hw
    if ("F5" in KNOWN_OPEN and osz_hw is None and isinstance(padding, str)
            and padding.lower() != "valid"
            and (dh * (kh - 1) + 1 < sh or dw * (kw - 1) + 1 < sw)):
        raise Reject("F5")
    out_hw, tpads = R.conv_transpose2d_output_hw(
        (h, wd), (cin, cog, kh, kw), stride, padding, kwargs.get("output_padding", 0),
        dilation, osz_hw)
    # conv_transpose2d runs the backward-input kernel of the forward conv out_hw -> fo
    # (fo > (h, wd) when output_padding >= stride: _api pads grad_out with zeros)
    fo = [(o + p0 + p1 - d_ * (k_ - 1) - 1) // s_ + 1
          for o, (p0, p1), d_, k_, s_ in zip(out_hw, tpads, (dh, dw), (kh, kw), (sh, sw))]
    if "F1" in KNOWN_OPEN and ((fo[0] - 1) * sh - tpads[0][0] > out_hw[0] - 1 + dh * (kh - 1)
                               or (fo[1] - 1) * sw - tpads[1][0] > out_hw[1] - 1 + dw * (kw - 1)):
        raise Reject("F1")
    s = src.seed()
    x = H.randn((n, cin, h, wd), s)
    w = H.randn((cin, cog, kh, kw), s + 1)
    b = H.randn((cout,), s + 2) if src.bool() else None
    xl, wl = _to(x, layout, dtype), H.weight(w, layout, dtype)
    three = _maybe3d(src, n)
    if three:
        xl = xl[0]
        if "output_size" in kwargs and len(kwargs["output_size"]) == 4:
            kwargs["output_size"] = kwargs["output_size"][1:]
    shape = H.shape((n, cout) + tuple(out_hw), layout)[1 if three else 0:]
    rk = {k: v for k, v in kwargs.items() if k != "output_size"}
    osz = None if osz_hw is None else tuple(out_hw)

    def ref():
        y = R.from_nchw(R.conv_transpose2d(x, w, b, **rk, output_size=osz), layout)
        return y[0] if three else y

    def bound():
        y = R.from_nchw(R.conv_transpose2d(np.abs(x), np.abs(w), None if b is None else np.abs(b),
                                           **rk, output_size=osz), layout)
        return y[0] if three else y
    return Call("conv_transpose2d", [xl, wl, None if b is None else b.astype(dtype)],
                dict(kwargs, layout=layout), layout, dtype, shape, ref, bound,
                K=cig * kh * kw + 1)


def _pool_params(src: Src, hw_hi: int = 7):
    k = _int_or_pair(src, 1, 4)
    stride = None if src.int(0, 2) == 0 else _int_or_pair(src, 1, 3)
    dilation = 1 if src.bool() else _int_or_pair(src, 1, 2)
    padding = _pad_spec(src, 2)
    ceil_mode = src.bool()
    n, c, h, w = src.choice([1, 2, 0]), src.int(1, 3), src.int(1, hw_hi), src.int(1, hw_hi)
    kk, ss, dd, pads, out = R.pool_geometry((h, w), k, stride, padding, dilation, ceil_mode)
    return (n, c, h, w), dict(kernel_size=k, stride=stride, padding=padding, dilation=dilation,
                              ceil_mode=ceil_mode), out


def _pool_data(src: Src, shape):
    kind = src.int(0, 3)
    s = src.seed()
    if kind == 0:
        return H.distinct(shape, s)
    if kind == 1:   # many ties
        return np.random.default_rng(s).integers(-2, 3, size=shape).astype(np.float64)
    x = H.randn(shape, s)
    if kind == 3 and x.size:
        x.flat[np.random.default_rng(s).integers(0, x.size)] = np.nan
    return x


def _build_max_pool2d(src: Src) -> Call:
    layout, dtype = _common(src)
    shape, kw, out = _pool_params(src)
    x = _pool_data(src, shape)
    three = _maybe3d(src, shape[0])
    xl = _to(x, layout, dtype)
    if three:
        xl = xl[0]
    oshape = H.shape(shape[:2] + tuple(out), layout)[1 if three else 0:]

    def ref():
        y, i = R.max_pool2d(x, **kw)
        y, i = R.from_nchw(y, layout), R.from_nchw(i, layout)
        return (y[0], i[0]) if three else (y, i)
    return Call("max_pool2d", [xl], dict(kw, return_indices=True, layout=layout), layout, dtype,
                oshape, ref, None, exact=True)


def _build_max_pool2d_backward(src: Src) -> Call:
    layout, dtype = _common(src)
    shape, kw, out = _pool_params(src)
    x = _pool_data(src, shape)
    _, idx = R.max_pool2d(x, **kw)
    gy = H.randn(idx.shape, src.seed())
    three = _maybe3d(src, shape[0])
    gyl, il, ishape = _to(gy, layout, dtype), R.from_nchw(idx, layout), H.shape(shape, layout)
    if three:
        gyl, il, ishape = gyl[0], il[0], ishape[1:]

    def ref():
        g = R.from_nchw(R.max_pool2d_backward(gy, idx, shape), layout)
        return g[0] if three else g
    # sums of up to k*k float32-exact values: float32 within tolerance, float64 ~exact
    return Call("max_pool2d_backward", [gyl, il, ishape], dict(layout=layout), layout, dtype,
                tuple(ishape), ref, lambda: np.abs(ref()) + 1, K=16)


def _avg_opts(src: Src):
    return dict(count_include_pad=src.bool(),
                divisor_override=None if src.int(0, 2) else src.int(1, 6))


def _build_avg_pool2d(src: Src) -> Call:
    layout, dtype = _common(src)
    shape, kw, out = _pool_params(src)
    kw.update(_avg_opts(src))
    x = H.randn(shape, src.seed())
    three = _maybe3d(src, shape[0])
    xl = _to(x, layout, dtype)
    if three:
        xl = xl[0]
    oshape = H.shape(shape[:2] + tuple(out), layout)[1 if three else 0:]

    def ref():
        y = R.from_nchw(R.avg_pool2d(x, **kw), layout)
        return y[0] if three else y

    def bound():
        y = R.from_nchw(R.avg_pool2d(np.abs(x), **kw), layout)
        return y[0] if three else y
    return Call("avg_pool2d", [xl], dict(kw, layout=layout), layout, dtype, oshape, ref, bound,
                K=16)


def _build_avg_pool2d_backward(src: Src) -> Call:
    layout, dtype = _common(src)
    shape, kw, out = _pool_params(src)
    kw.update(_avg_opts(src))
    gy = H.randn(shape[:2] + tuple(out), src.seed())
    three = _maybe3d(src, shape[0])
    gyl, ishape = _to(gy, layout, dtype), H.shape(shape, layout)
    if three:
        gyl, ishape = gyl[0], ishape[1:]

    def ref():
        g = R.from_nchw(R.avg_pool2d_backward(gy, shape, **kw), layout)
        return g[0] if three else g

    def bound():
        g = R.from_nchw(R.avg_pool2d_backward(np.abs(gy), shape, **kw), layout)
        return g[0] if three else g
    return Call("avg_pool2d_backward", [gyl, ishape], dict(kw, layout=layout), layout, dtype,
                tuple(ishape), ref, bound, K=16)


def _build_max_unpool2d(src: Src) -> Call:
    layout, dtype = _common(src)
    k = _int_or_pair(src, 1, 3)
    stride = None if src.bool() else _int_or_pair(src, 1, 3)
    kind = src.int(0, 3)
    padding = (src.int(0, 1) if kind == 0 else (src.int(0, 1), src.int(0, 1)) if kind == 1
               else "valid" if kind == 2 else 0)
    n, c, h, w = src.choice([1, 2, 0]), src.int(1, 3), src.int(1, 4), src.int(1, 4)
    kk = R.pair(k)
    ss = kk if stride is None else R.pair(stride)
    pads = R.resolve_padding(padding, (h, w), kk, ss, (1, 1))
    default = [(m - 1) * s_ - p0 - p1 + k_ for m, s_, (p0, p1), k_ in zip((h, w), ss, pads, kk)]
    output_size = None
    if src.bool():
        output_size = tuple(d + src.int(-s_ + 1, s_ - 1) for d, s_ in zip(default, ss))
        if src.bool() and not ("F2" in KNOWN_OPEN and layout == "NHWC"):
            output_size = H.shape((n, c) + output_size, layout)
    out = R.unpool_output_hw((h, w), k, stride, padding,
                             None if output_size is None else output_size[-2:]
                             if layout == "NCHW" or len(output_size) == 2
                             else R.shape_to_nchw(output_size, layout)[-2:])
    rng = np.random.default_rng(src.seed())
    idx = rng.integers(0, out[0] * out[1], size=(n, c, h, w)).astype(np.int64)
    if src.bool() and out[0] * out[1] >= h * w:   # distinct (a real argmax pattern)
        for a in range(n):
            for b in range(c):
                idx[a, b] = rng.permutation(out[0] * out[1])[:h * w].reshape(h, w)
    x = H.randn((n, c, h, w), src.seed())
    three = _maybe3d(src, n)
    xl, il = _to(x, layout, dtype), R.from_nchw(idx, layout)
    if three:
        xl, il = xl[0], il[0]
        if output_size is not None and len(output_size) == 4:
            output_size = output_size[1:]
    oshape = H.shape((n, c) + tuple(out), layout)[1 if three else 0:]

    def ref():
        y = R.from_nchw(R.max_unpool2d(x, idx, k, stride, padding, tuple(out)), layout)
        return y[0] if three else y
    return Call("max_unpool2d", [xl, il, k],
                dict(stride=stride, padding=padding, output_size=output_size, layout=layout),
                layout, dtype, oshape, ref, None, exact=True)


def _build_max_unpool2d_backward(src: Src) -> Call:
    layout, dtype = _common(src)
    n, c = src.choice([1, 2, 0]), src.int(1, 3)
    oh, ow, h, w = src.int(1, 6), src.int(1, 6), src.int(1, 4), src.int(1, 4)
    gy = H.randn((n, c, oh, ow), src.seed())
    idx = np.random.default_rng(src.seed()).integers(0, oh * ow, size=(n, c, h, w))
    three = _maybe3d(src, n)
    gyl, il = _to(gy, layout, dtype), R.from_nchw(idx.astype(np.int64), layout)
    if three:
        gyl, il = gyl[0], il[0]
    shape = H.shape((n, c, h, w), layout)[1 if three else 0:]

    def ref():
        g = R.from_nchw(R.max_unpool2d_backward(gy, idx), layout)
        return g[0] if three else g
    return Call("max_unpool2d_backward", [gyl, il], dict(layout=layout), layout, dtype, shape,
                ref, None, exact=True)


def _build_upsample(src: Src) -> Call:
    layout, dtype = _common(src)
    f = _int_or_pair(src, 1, 3)
    fh, fw = R.pair(f)
    n, c, h, w = src.choice([1, 2, 0]), src.int(1, 3), src.int(1, 5), src.int(1, 5)
    x = H.randn((n, c, h, w), src.seed())
    three = _maybe3d(src, n)
    xl = _to(x, layout, dtype)
    if three:
        xl = xl[0]
    shape = H.shape((n, c, h * fh, w * fw), layout)[1 if three else 0:]

    def ref():
        y = R.from_nchw(R.upsample_nearest2d(x, f), layout)
        return y[0] if three else y
    return Call("upsample_nearest2d", [xl, f], dict(layout=layout), layout, dtype, shape, ref,
                None, exact=True)


def _build_upsample_backward(src: Src) -> Call:
    layout, dtype = _common(src)
    f = _int_or_pair(src, 1, 3)
    fh, fw = R.pair(f)
    n, c, h, w = src.choice([1, 2, 0]), src.int(1, 3), src.int(1, 4), src.int(1, 4)
    gy = H.randn((n, c, h * fh, w * fw), src.seed())
    three = _maybe3d(src, n)
    gyl = _to(gy, layout, dtype)
    if three:
        gyl = gyl[0]
    shape = H.shape((n, c, h, w), layout)[1 if three else 0:]

    def ref():
        g = R.from_nchw(R.upsample_nearest2d_backward(gy, f), layout)
        return g[0] if three else g

    def bound():
        g = R.from_nchw(R.upsample_nearest2d_backward(np.abs(gy), f), layout)
        return g[0] if three else g
    return Call("upsample_nearest2d_backward", [gyl, f], dict(layout=layout), layout, dtype,
                shape, ref, bound, K=fh * fw)


_BUILDERS = {
    "conv2d": _build_conv2d,
    "conv2d_backward_input": _build_conv2d_backward_input,
    "conv2d_backward_filter": _build_conv2d_backward_filter,
    "conv2d_backward_bias": _build_conv2d_backward_bias,
    "conv_transpose2d": _build_conv_transpose2d,
    "max_pool2d": _build_max_pool2d,
    "max_pool2d_backward": _build_max_pool2d_backward,
    "avg_pool2d": _build_avg_pool2d,
    "avg_pool2d_backward": _build_avg_pool2d_backward,
    "max_unpool2d": _build_max_unpool2d,
    "max_unpool2d_backward": _build_max_unpool2d_backward,
    "upsample_nearest2d": _build_upsample,
    "upsample_nearest2d_backward": _build_upsample_backward,
}


def check_result(call: Call, result) -> None:
    """Shape formula and values against tests/reference.py (TESTING.md tolerances)."""
    if call.kernel == "max_pool2d":
        y, idx = result
        assert y.shape == call.shape, f"shape {y.shape} != formula {call.shape}"
        ry, ri = call.ref()
        H.assert_bitwise(y, ry, call.dtype, what="max_pool2d values")
        np.testing.assert_array_equal(idx, ri, err_msg="max_pool2d indices", strict=True)
        return
    assert isinstance(result, np.ndarray), type(result)
    assert result.shape == tuple(call.shape), f"shape {result.shape} != formula {call.shape}"
    ref = call.ref()
    if call.exact:
        H.assert_bitwise(result, ref, call.dtype, what=call.kernel)
    else:
        H.assert_close(result, ref, call.dtype, bound=call.bound() if call.bound else None,
                       K=call.K, what=call.kernel)


# ----------------------------------------------------------------------------- invalid

_INT_PARAMS = {   # kernel -> keyword int-or-pair params (minimum 1 unless noted)
    "conv2d": ("stride", "dilation"),
    "conv2d_backward_input": ("stride", "dilation"),
    "conv2d_backward_filter": ("stride", "dilation"),
    "conv_transpose2d": ("stride", "dilation"),
    "max_pool2d": ("kernel_size", "stride", "dilation"),
    "avg_pool2d": ("kernel_size", "stride", "dilation"),
    "avg_pool2d_backward": ("kernel_size", "stride", "dilation"),
    "max_unpool2d": ("kernel_size", "stride"),
}
_BAD_INT = (0, *NEG, *HUGE)
_BAD_INT_TYPE = (True, False, 1.0, 2.5, "2", b"2", object(), np.float32(2.0), complex(1, 0),
                 [1.0, 1], (1, "1"), (None, 1))
_BAD_PAIR_VALUE = ((0, 1), (1, 0), (1, -1), (-1, 1), (1, 2**31), (2**63, 1), (1, 2, 3), (1,), ())
_BAD_PADDING_VALUE = (-1, (-1, 0), (0, -1), ((0, -1), (0, 0)), ((0, 0), (-(2**63), 0)),
                      2**31, (0, 2**31), ((0, 0), (0, 2**32 + 3)), 2**63, ((0, 0), (0,)),
                      (1, 2, 3), "bogus", "", "same ", "VALID_", "full")
_BAD_PADDING_TYPE = (1.5, True, None, object(), (1.0, 1), ((0, 0), (0, 0.5)), b"same")
_BAD_LAYOUT = ("nchw", "NCWH", "", "NHWC ", None, 0, b"NCHW")
_BAD_DTYPES = (np.float16, np.int32, np.int64, np.bool_, np.complex64, np.complex128,
               np.uint8, object, np.longdouble)
_BAD_INDEX_DTYPES = (np.int32, np.uint64, np.float64, np.int16, np.uint32, object)


def _kw_name(call: Call, name: str) -> bool:
    return name in call.kwargs


def _array_slots(call: Call):
    """(position, role) of the float array arguments."""
    roles = {
        "conv2d": ((0, "x"), (1, "weight"), (2, "bias")),
        "conv2d_backward_input": ((0, "grad"), (1, "weight")),
        "conv2d_backward_filter": ((0, "x"), (1, "grad")),
        "conv2d_backward_bias": ((0, "grad"),),
        "conv_transpose2d": ((0, "x"), (1, "weight"), (2, "bias")),
        "max_pool2d": ((0, "x"),),
        "max_pool2d_backward": ((0, "grad"),),
        "avg_pool2d": ((0, "x"),),
        "avg_pool2d_backward": ((0, "grad"),),
        "max_unpool2d": ((0, "x"),),
        "max_unpool2d_backward": ((0, "grad"),),
        "upsample_nearest2d": ((0, "x"),),
        "upsample_nearest2d_backward": ((0, "grad"),),
    }[call.kernel]
    return [(i, r) for i, r in roles if call.args[i] is not None]


def _bad_dtype_array(a: np.ndarray, dt) -> np.ndarray:
    if dt is object:
        return a.astype(object)
    return a.astype(dt)


def _corruptions(call: Call, src: Src) -> list[tuple[str, Callable[[Call], None]]]:
    """Every corruption that applies to ``call``: (description, mutate-in-place)."""
    out: list[tuple[str, Callable[[Call], None]]] = []
    k = call.kernel

    def set_kw(name, value, what):
        def f(c):
            c.kwargs[name] = value
        out.append((what, f))

    def set_arg(i, value, what):
        def f(c):
            c.args[i] = value
        out.append((what, f))

    for name in _INT_PARAMS.get(k, ()):
        v = src.choice(_BAD_INT + _BAD_INT_TYPE + _BAD_PAIR_VALUE)
        if k == "max_unpool2d" and name == "kernel_size":
            set_arg(2, v, f"{name}={v!r}")
        else:
            set_kw(name, v, f"{name}={v!r}")
    if k in ("upsample_nearest2d", "upsample_nearest2d_backward"):
        v = src.choice(_BAD_INT + _BAD_INT_TYPE + _BAD_PAIR_VALUE + (None,))
        set_arg(1, v, f"scale_factor={v!r}")
    if "groups" in call.kwargs:
        v = src.choice((0, -1, -(2**63), 2**63, 1.0, True, None, "1", (1, 1)))
        set_kw("groups", v, f"groups={v!r}")
        set_kw("groups", 1000003, "groups=1000003 does not divide the channels")
    if "padding" in call.kwargs:
        v = src.choice(_BAD_PADDING_VALUE + _BAD_PADDING_TYPE)
        set_kw("padding", v, f"padding={v!r}")
    if k in ("max_pool2d", "avg_pool2d", "avg_pool2d_backward"):
        kh, kw_ = R.pair(call.kwargs["kernel_size"])
        dh, dw = R.pair(call.kwargs["dilation"])
        eh, ew = dh * (kh - 1) + 1, dw * (kw_ - 1) + 1
        # top/left padding >= the dilated kernel: the first window is all padding
        # (bottom/right padding alone need not be: ceil_mode drops such windows)
        set_kw("padding", ((eh, 0), (0, 0)) if src.bool() else ((0, 0), (ew, 0)) if src.bool()
               else (eh, ew), "padding so large that a window lies entirely in the padding")
        for flag in ("ceil_mode", "count_include_pad"):
            if flag in call.kwargs:
                set_kw(flag, src.choice((1, 0, "yes", None, 1.0)), f"{flag} not a bool")
        if "divisor_override" in call.kwargs:
            set_kw("divisor_override", src.choice((0, -1, 2**31, 2**63, 1.5, True, "2")),
                   "bad divisor_override")
    if k == "conv_transpose2d":
        sh, sw = R.pair(call.kwargs["stride"])
        dh, dw = R.pair(call.kwargs["dilation"])
        if "output_size" not in call.kwargs and not isinstance(call.kwargs["padding"], str):
            v = src.choice([(max(sh, dh), 0), (0, max(sw, dw)), -1, (0, -1), 2**31, 2**63, 1.5])
            set_kw("output_padding", v, f"output_padding={v!r}")
    set_kw("layout", src.choice(_BAD_LAYOUT), "bad layout")

    # float arrays: dtype, rank, byte order, mismatched dtypes, non-arrays
    for i, role in _array_slots(call):
        a = call.args[i]
        dt = src.choice(_BAD_DTYPES)
        set_arg(i, _bad_dtype_array(a, dt), f"{role} dtype {np.dtype(dt)}")
        set_arg(i, a.astype(a.dtype.newbyteorder(">")), f"{role} big-endian")
        other = np.float64 if a.dtype == np.float32 else np.float32
        if len(_array_slots(call)) > 1:
            set_arg(i, a.astype(other), f"{role} dtype differs from the other arrays")
        nd = src.choice([0, 1, 2, 5, 6] if role != "bias" else [0, 2, 3])
        set_arg(i, np.zeros((1,) * nd, a.dtype), f"{role} has rank {nd}")
        set_arg(i, src.choice([None, "abc", [["a"]], {1: 2}, object()]) if role != "bias"
                else src.choice(["abc", [["a"]], object()]), f"{role} is not an array")

    # zero extents other than the batch (data) / any (weight)
    nhwc = call.layout == "NHWC"
    for i, role in _array_slots(call):
        a = call.args[i]
        if role == "bias":
            continue
        if role == "weight":
            ax = src.int(0, 3)
        else:
            ax4 = src.choice(["C", "H", "W"])
            base = {"C": 3 if nhwc else 1, "H": 1 if nhwc else 2, "W": 2 if nhwc else 3}[ax4]
            ax = base - (1 if a.ndim == 3 else 0)
        shp = list(a.shape)
        shp[ax] = 0
        if k == "conv2d_backward_bias" or role in ("x", "grad", "weight"):
            set_arg(i, np.zeros(shp, a.dtype), f"{role} has a zero extent (axis {ax})")

    # channel / shape consistency
    if k in ("conv2d", "conv_transpose2d"):
        w = call.args[1]
        shp = list(w.shape)
        ax = (2 if nhwc else 1) if k == "conv2d" else (3 if nhwc else 0)
        shp[ax] += 1
        set_arg(1, np.ones(shp, w.dtype), "weight channels do not match x")
        if call.args[2] is not None:
            b = call.args[2]
            set_arg(2, np.ones((b.shape[0] + src.choice([1, -1 if b.shape[0] > 1 else 2]),),
                               b.dtype), "bias length != output channels")
    if k == "conv2d_backward_input":
        w = call.args[1]
        shp = list(w.shape)
        shp[2 if nhwc else 1] += 1
        set_arg(1, np.ones(shp, w.dtype), "weight channels do not match input_shape")
        ishape = list(call.args[2])
        cax = len(ishape) - 1 if nhwc else len(ishape) - 3
        ishape[cax] += 1
        set_arg(2, tuple(ishape), "input_shape channels do not match the weight")
        set_arg(2, tuple(ishape[:-1]), "input_shape of the wrong length")
        set_arg(2, tuple(-v for v in call.args[2]), "negative input_shape")
        set_arg(2, tuple(src.choice(HUGE) for _ in call.args[2]), "huge input_shape")
        set_arg(2, src.choice([None, 3, "abc", (1.5, 2, 3, 4)]), "input_shape is not a shape")
        _grad_shape_corruption(call, src, out, 0)
    if k == "conv2d_backward_filter":
        ws = list(call.args[2])
        kax = 3 if nhwc else 0
        ws[kax] += 1
        set_arg(2, tuple(ws), "weight_shape output channels do not match grad_out")
        ws = list(call.args[2])
        ws[src.int(0, 3)] = src.choice([0, -1] + list(HUGE[:3]))
        set_arg(2, tuple(ws), "weight_shape with a zero/negative/huge entry")
        set_arg(2, tuple(call.args[2])[:3], "weight_shape of the wrong length")
        set_arg(2, src.choice([None, 3, "abc"]), "weight_shape is not a shape")
        _grad_shape_corruption(call, src, out, 1)
        x = call.args[0]
        if x.ndim == 4:
            xs = list(x.shape)
            xs[0] += 1
            set_arg(0, np.ones(xs, x.dtype), "x batch differs from grad_out's")
    if k == "avg_pool2d_backward":
        _grad_shape_corruption(call, src, out, 0)
        ishape = list(call.args[1])
        ishape[0] += 1
        set_arg(1, tuple(ishape), "input_shape inconsistent with grad_out")
        set_arg(1, tuple(src.choice(HUGE) for _ in ishape), "huge input_shape")
        set_arg(1, tuple(-v - 1 for v in ishape), "negative input_shape")
    if k == "max_pool2d_backward":
        _grad_shape_corruption(call, src, out, 0, also_indices=1, axes=("C",))
        ishape = list(call.args[2])
        ishape[0] += 1
        set_arg(2, tuple(ishape), "input_shape batch inconsistent with grad_out")
        set_arg(2, tuple(src.choice(NEG) for _ in ishape), "negative input_shape")
        set_arg(2, tuple(src.choice(HUGE) for _ in ishape), "huge input_shape")
        _index_corruptions(call, src, out, 1, plane=_plane(call.args[2], nhwc))
    if k == "max_unpool2d":
        osz = call.kwargs.get("output_size")
        _index_corruptions(call, src, out, 1, plane=_plane(call.shape, nhwc))
        set_kw("output_size", src.choice([(0, 0), (-1, 5), (2**31, 1), (2**63, 2**63), (1,),
                                          "abc", (1.5, 2)]), "bad output_size")
        if osz is None:
            hw = call.shape[-3:-1] if nhwc else call.shape[-2:]
            sh, sw = R.pair(call.kwargs["stride"] if call.kwargs["stride"] is not None
                            else call.args[2])
            set_kw("output_size", (hw[0] + sh, hw[1]), "output_size beyond default + stride")
        set_kw("padding", src.choice(["same", "same_lower", -1, "bogus"]),
               "padding not allowed for max_unpool2d")
    if k == "max_unpool2d_backward":
        # indices give the result's shape: only their batch/channels must match grad_out
        _index_corruptions(call, src, out, 1, plane=_plane(call.args[0].shape, nhwc),
                           shape_axis=-1 if nhwc else -3)
        gy = call.args[0]
        if gy.ndim == 4:
            s = list(gy.shape)
            s[0] += 1
            set_arg(0, np.ones(s, gy.dtype), "grad_out batch differs from indices'")
    if k == "upsample_nearest2d_backward":
        gy = call.args[0]
        fh, fw = R.pair(call.args[1])
        if fh > 1 or fw > 1:
            s = list(gy.shape)
            hax = (s.__len__() - 3) if nhwc else (len(s) - 2)
            if fh > 1:
                s[hax] += 1
            else:
                s[hax + 1] += 1
            set_arg(0, np.ones(s, gy.dtype), "grad_out size not a multiple of scale_factor")

    # out=
    if k in HAS_OUT and call.shape is not None:
        shape, dt = tuple(call.shape), call.dtype
        other = np.float64 if dt == np.float32 else np.float32
        n = int(np.prod(shape))
        unaligned = np.zeros(n * np.dtype(dt).itemsize + 1, np.uint8)[1:].view(dt).reshape(shape)
        ro = np.full(shape, 7, dt)
        ro.flags.writeable = False
        choices = [
            (np.full(shape[:-1] + (shape[-1] + 1,), 7, dt), "out of the wrong shape"),
            (np.full(shape[1:] if len(shape) == 4 else (1,) + shape, 7, dt), "out of the wrong rank"),
            (np.full(shape, 7, other), "out of the wrong dtype"),
            (np.full(shape, 7, np.int64 if call.kernel != "max_pool2d" else np.int32),
             "out of an integer dtype"),
            (np.full(shape + (2,), 7, dt)[..., 0], "non-contiguous out"),
            (np.full(tuple(reversed(shape)), 7, dt).T, "Fortran-order out"),
            (unaligned, "unaligned out"),
            (ro, "read-only out"),
            ("not an array", "out is not an ndarray"),
            ([[7.0]], "out is a list"),
        ]
        choices = [(a, w) for a, w in choices
                   if not isinstance(a, np.ndarray) or w == "read-only out" or a.shape != shape
                   or a.dtype != dt or not a.flags.c_contiguous or not a.flags.aligned]
        arr, what = src.choice(choices)
        set_kw("out", arr, what)
        # out aliasing an input of the same shape/dtype
        for i, role in _array_slots(call):
            a = call.args[i]
            if a.shape == shape and a.dtype == dt and a.size:   # empty arrays share nothing
                set_kw("out", a, f"out aliases {role}")
    return out


def _plane(shape, nhwc):
    shape = tuple(shape)
    h, w = (shape[-3], shape[-2]) if nhwc else (shape[-2], shape[-1])
    return h * w


def _grad_shape_corruption(call, src, out, pos, also_indices=None, axes=("C", "H", "W")):
    gy = call.args[pos]
    nhwc = call.layout == "NHWC"
    s = list(gy.shape)
    ax = src.choice(axes)
    nd = len(s)
    i = {"C": nd - 1 if nhwc else nd - 3, "H": nd - 3 if nhwc else nd - 2,
         "W": nd - 2 if nhwc else nd - 1}[ax]
    s[i] += src.choice([1, 2, 7])

    def f(c):
        c.args[pos] = np.ones(s, gy.dtype)
        if also_indices is not None:
            c.args[also_indices] = np.zeros(s, np.int64)
    out.append((f"grad_out {ax} inconsistent with the forward parameters", f))


def _index_corruptions(call, src, out, pos, plane, shape_axis=-1):
    idx = call.args[pos]

    def plant(value):
        def f(c):
            a = c.args[pos].copy()
            if a.size:
                a.flat[src.int(0, a.size - 1)] = value
            c.args[pos] = a
        return f
    if idx.size:
        v = src.choice([-1, plane, plane + 1, 2**31, 2**32 + 3, 2**63 - 1, -(2**63), -(2**31)])
        out.append((f"an index = {v} outside [0, {plane})", plant(v)))
    dt = src.choice(_BAD_INDEX_DTYPES)
    out.append((f"indices dtype {np.dtype(dt)}",
                lambda c: c.args.__setitem__(pos, c.args[pos].astype(dt))))
    out.append(("indices big-endian",
                lambda c: c.args.__setitem__(pos, c.args[pos].astype(">i8"))))
    s = list(idx.shape)
    s[shape_axis] += 1
    out.append(("indices of the wrong shape",
                lambda c: c.args.__setitem__(pos, np.zeros(s, np.int64))))
    out.append(("indices is not an array",
                lambda c: c.args.__setitem__(pos, src.choice([None, "abc", object()]))))


def invalid_call(kernel: str, src: Src) -> Call:
    """A valid call of ``kernel`` with one argument corrupted (must raise ValueError/TypeError)."""
    base = valid_call(kernel, src)
    options = _corruptions(base, src)
    what, mutate = src.choice(options)
    call = base.copy()
    mutate(call)
    call.what = what
    return call


def sentinel_out(call: Call):
    """The ``out`` array the call will be given (to check nothing was written), or None."""
    o = call.kwargs.get("out")
    return o.copy() if isinstance(o, np.ndarray) else None


def assert_refused(call: Call, module, sentinel=None) -> BaseException:
    """The call must raise ValueError or TypeError (and leave ``out`` as it was)."""
    snap = sentinel_out(call) if sentinel is None else sentinel
    try:
        result = call.run(module)
    except (ValueError, TypeError) as exc:
        if snap is not None:
            np.testing.assert_array_equal(call.kwargs["out"], snap,
                                          err_msg=f"out written on error: {call.describe()}")
        assert str(exc), f"empty error message: {call.describe()}"
        return exc
    raise AssertionError(f"accepted an invalid call ({call.what}): {call.describe()} -> "
                         f"{type(result).__name__} "
                         f"{getattr(result, 'shape', '')}")
