"""Hypothesis property tests: random parameters (valid or not) on both backends.

For every draw the float64 reference decides validity: valid -> the result has the
reference's shape (the output-size formula) and values; invalid -> ValueError or
TypeError, never anything else (and never a crash).
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import aekernels
import helpers as H
import reference as R

SETTINGS = settings(max_examples=30, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

small = st.integers(1, 4)
maybe_bad = st.one_of(st.integers(-1, 4), st.sampled_from([2**31, 2**63, -2**63]))


@st.composite
def paddings(draw, allow_bad=False):
    kind = draw(st.sampled_from(["int", "pair", "sides", "same", "same_lower", "valid"]))
    lo = -1 if allow_bad else 0
    v = st.integers(lo, 3)
    if kind == "int":
        return draw(v)
    if kind == "pair":
        return (draw(v), draw(v))
    if kind == "sides":
        return ((draw(v), draw(v)), (draw(v), draw(v)))
    return kind


def _ref_or_error(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs), None
    except ValueError as exc:
        return None, exc


def _expect_same_outcome(ref, call, what):
    """ref is None (reference refused) -> call must raise ValueError/TypeError."""
    if ref is None:
        with pytest.raises((ValueError, TypeError)):
            call()
        return None
    return call()


@st.composite
def conv_problems(draw, allow_bad=False):
    groups = draw(st.integers(1, 3))
    p = dict(N=draw(st.integers(0, 2)), C=groups * draw(small), K=groups * draw(small),
             H=draw(st.integers(1, 9)), W=draw(st.integers(1, 9)),
             kh=draw(st.integers(1, 5)), kw=draw(st.integers(1, 5)),
             stride=(draw(maybe_bad if allow_bad else small),
                     draw(maybe_bad if allow_bad else small)),
             dilation=(draw(maybe_bad if allow_bad else st.integers(1, 3)),
                       draw(st.integers(1, 3))),
             padding=draw(paddings(allow_bad)), groups=groups,
             layout=draw(st.sampled_from(["NCHW", "NHWC"])),
             bias=draw(st.booleans()))
    return p


def _check_conv(p):
    x = H.randn((p["N"], p["C"], p["H"], p["W"]), 1)
    w = H.randn((p["K"], p["C"] // p["groups"], p["kh"], p["kw"]), 2)
    b = H.randn((p["K"],), 3) if p["bias"] else None
    args = dict(stride=p["stride"], padding=p["padding"], dilation=p["dilation"],
                groups=p["groups"])
    lay = p["layout"]
    xl, wl = H.data(x, lay, np.float64), H.weight(w, lay, np.float64)
    ref, _ = _ref_or_error(R.conv2d, x, w, b, **args)
    y = _expect_same_outcome(ref, lambda: aekernels.conv2d(xl, wl, b, **args, layout=lay),
                             "conv2d")
    if ref is None:
        return
    H.assert_close(y, R.from_nchw(ref, lay), np.float64, what=f"conv2d {p}")
    gy = H.randn(ref.shape, 4)
    gx = aekernels.conv2d_backward_input(H.data(gy, lay, np.float64), wl, xl.shape, **args,
                                         layout=lay)
    H.assert_close(gx, R.from_nchw(R.conv2d_backward_input(gy, w, x.shape, **args), lay),
                   np.float64, what=f"conv2d_backward_input {p}")
    gw = aekernels.conv2d_backward_filter(xl, H.data(gy, lay, np.float64), wl.shape, **args,
                                          layout=lay)
    H.assert_close(gw, R.weight_from_oihw(R.conv2d_backward_filter(x, gy, w.shape, **args), lay),
                   np.float64, what=f"conv2d_backward_filter {p}")


@SETTINGS
@given(p=conv_problems())
def test_conv2d_random_valid_parameters(backend, p):
    _check_conv(p)


@SETTINGS
@given(p=conv_problems(allow_bad=True))
def test_conv2d_random_parameters_valid_or_clean_error(backend, p):
    _check_conv(p)


@st.composite
def transpose_problems(draw):
    groups = draw(st.integers(1, 2))
    return dict(N=draw(st.integers(0, 2)), Cin=groups * draw(small), Cout=groups * draw(small),
                H=draw(st.integers(1, 6)), W=draw(st.integers(1, 6)),
                kh=draw(st.integers(1, 4)), kw=draw(st.integers(1, 4)),
                stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
                dilation=(draw(st.integers(1, 3)), draw(st.integers(1, 2))),
                padding=draw(st.one_of(st.integers(0, 2), st.sampled_from(["valid", "same"]),
                                       st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)),
                                                 st.tuples(st.integers(0, 2), st.integers(0, 2))))),
                output_padding=(draw(st.integers(0, 3)), draw(st.integers(0, 3))),
                groups=groups, layout=draw(st.sampled_from(["NCHW", "NHWC"])))


@SETTINGS
@given(p=transpose_problems())
def test_conv_transpose2d_random_parameters(backend, p):
    x = H.randn((p["N"], p["Cin"], p["H"], p["W"]), 5)
    w = H.randn((p["Cin"], p["Cout"] // p["groups"], p["kh"], p["kw"]), 6)
    args = dict(stride=p["stride"], padding=p["padding"], dilation=p["dilation"],
                groups=p["groups"])
    op = 0 if isinstance(p["padding"], str) and p["padding"] == "same" else p["output_padding"]
    lay = p["layout"]
    ref, _ = _ref_or_error(R.conv_transpose2d, x, w, None, output_padding=op, **args)
    y = _expect_same_outcome(
        ref, lambda: aekernels.conv_transpose2d(H.data(x, lay, np.float64),
                                                H.weight(w, lay, np.float64),
                                                output_padding=op, **args, layout=lay),
        "conv_transpose2d")
    if ref is not None:
        H.assert_close(y, R.from_nchw(ref, lay), np.float64, what=f"conv_transpose2d {p}")


@st.composite
def pool_problems(draw, allow_bad=False):
    k = (draw(st.integers(-1, 5) if allow_bad else st.integers(1, 5)), draw(st.integers(1, 5)))
    stride = draw(st.one_of(st.none(), st.tuples(maybe_bad if allow_bad else small, small)))
    return dict(N=draw(st.integers(0, 2)), C=draw(st.integers(1, 3)),
                H=draw(st.integers(1, 9)), W=draw(st.integers(1, 9)), kernel_size=k,
                stride=stride, padding=draw(paddings(allow_bad)),
                dilation=(draw(st.integers(1, 3)), draw(st.integers(1, 2))),
                ceil_mode=draw(st.booleans()), count_include_pad=draw(st.booleans()),
                divisor_override=draw(st.one_of(st.none(), st.integers(1, 5))),
                layout=draw(st.sampled_from(["NCHW", "NHWC"])))


def _check_pool(p):
    x = H.distinct((p["N"], p["C"], p["H"], p["W"]), 7)
    geom = dict(kernel_size=p["kernel_size"], stride=p["stride"], padding=p["padding"],
                dilation=p["dilation"], ceil_mode=p["ceil_mode"])
    avg = dict(count_include_pad=p["count_include_pad"], divisor_override=p["divisor_override"])
    lay = p["layout"]
    xl = H.data(x, lay, np.float64)
    ref, _ = _ref_or_error(R.max_pool2d, x, **geom)
    got = _expect_same_outcome(
        ref, lambda: aekernels.max_pool2d(xl, **geom, return_indices=True, layout=lay),
        "max_pool2d")
    aref, _ = _ref_or_error(R.avg_pool2d, x, **geom, **avg)
    agot = _expect_same_outcome(aref, lambda: aekernels.avg_pool2d(xl, **geom, **avg,
                                                                   layout=lay), "avg_pool2d")
    if ref is None:
        return
    y_ref, i_ref = ref
    H.assert_bitwise(got[0], R.from_nchw(y_ref, lay), np.float64, what=f"max_pool2d {p}")
    H.assert_bitwise(got[1], R.from_nchw(i_ref, lay), np.int64, what=f"indices {p}")
    H.assert_close(agot, R.from_nchw(aref, lay), np.float64, what=f"avg_pool2d {p}")
    gy = H.randn(y_ref.shape, 8)
    gyl = H.data(gy, lay, np.float64)
    gx = aekernels.max_pool2d_backward(gyl, got[1], xl.shape, layout=lay)
    H.assert_close(gx, R.from_nchw(R.max_pool2d_backward(gy, i_ref, x.shape), lay), np.float64,
                   what=f"max_pool2d_backward {p}")
    ga = aekernels.avg_pool2d_backward(gyl, xl.shape, **geom, **avg, layout=lay)
    H.assert_close(ga, R.from_nchw(R.avg_pool2d_backward(gy, x.shape, **geom, **avg), lay),
                   np.float64, what=f"avg_pool2d_backward {p}")


@SETTINGS
@given(p=pool_problems())
def test_pool_random_valid_parameters(backend, p):
    _check_pool(p)


@SETTINGS
@given(p=pool_problems(allow_bad=True))
def test_pool_random_parameters_valid_or_clean_error(backend, p):
    _check_pool(p)


@SETTINGS
@given(H_=st.integers(1, 6), W_=st.integers(1, 6), k=st.tuples(small, small),
       s=st.one_of(st.none(), st.tuples(small, small)), dh=st.integers(-2, 2),
       dw=st.integers(-2, 2), layout=st.sampled_from(["NCHW", "NHWC"]))
def test_unpool_random_output_sizes(backend, H_, W_, k, s, dh, dw, layout):
    """Unpool of a random pooled map at default + (dh, dw): valid iff within +-stride."""
    y = H.distinct((2, 2, H_, W_), 9)
    s_ = k if s is None else s
    default = ((H_ - 1) * s_[0] + k[0], (W_ - 1) * s_[1] + k[1])
    size = (default[0] + dh, default[1] + dw)
    rng = np.random.default_rng(H_ * 7 + W_)
    plane = max(1, min(size[0] * size[1], default[0] * default[1]))
    idx = rng.integers(0, plane, y.shape).astype(np.int64)
    ref, _ = _ref_or_error(R.max_unpool2d, y, idx, k, s, 0, size)
    u = _expect_same_outcome(
        ref, lambda: aekernels.max_unpool2d(H.data(y, layout, np.float64),
                                            R.from_nchw(idx, layout), k, s, output_size=size,
                                            layout=layout), "max_unpool2d")
    if ref is not None:
        H.assert_bitwise(u, R.from_nchw(ref, layout), np.float64, what="max_unpool2d")


@SETTINGS
@given(shape=st.tuples(st.integers(0, 2), st.integers(1, 3), st.integers(1, 5),
                       st.integers(1, 5)),
       scale=st.one_of(st.integers(-1, 4), st.tuples(st.integers(0, 3), st.integers(1, 3))),
       layout=st.sampled_from(["NCHW", "NHWC"]))
def test_upsample_random(backend, shape, scale, layout):
    x = H.randn(shape, 10)
    ref, _ = _ref_or_error(R.upsample_nearest2d, x, scale)
    y = _expect_same_outcome(ref, lambda: aekernels.upsample_nearest2d(
        H.data(x, layout, np.float64), scale, layout=layout), "upsample")
    if ref is None:
        return
    H.assert_bitwise(y, R.from_nchw(ref, layout), np.float64, what="upsample_nearest2d")
    g = aekernels.upsample_nearest2d_backward(y, scale, layout=layout)
    H.assert_close(g, R.from_nchw(R.upsample_nearest2d_backward(ref, scale), layout),
                   np.float64, what="upsample_nearest2d_backward")


@SETTINGS
# Mid-sized values (say 5,000..100,000) are left out on purpose: they are valid and make
# multi-GB outputs, which would test the machine's memory rather than the checks.
@given(v=st.one_of(st.integers(-3, 64), st.integers(2**31 - 1, 2**64), st.integers(-2**64, -1),
                   st.floats(allow_nan=True), st.booleans(),
                   st.none(), st.text(max_size=3), st.tuples(st.integers(-3, 8)),
                   st.tuples(st.integers(-3, 8), st.integers(2**31 - 1, 2**63)),
                   st.tuples(st.integers(-3, 8), st.integers(-3, 8))),
       which=st.sampled_from(["stride", "dilation", "padding", "groups", "kernel_size",
                              "scale_factor", "output_padding", "divisor_override"]))
def test_arbitrary_parameter_values_never_crash(backend, v, which):
    """Any value for any integer parameter: a result or ValueError/TypeError (or
    MemoryError for sizes that are valid but too large to allocate)."""
    x = H.randn((1, 2, 5, 6), 11)
    w = H.randn((2, 2, 3, 3), 12)
    calls = {
        "stride": lambda: aekernels.conv2d(x, w, stride=v),
        "dilation": lambda: aekernels.conv2d(x, w, dilation=v),
        "padding": lambda: aekernels.conv2d(x, w, padding=v),
        "groups": lambda: aekernels.conv2d(x, w[:, :1] if v == 2 else w, groups=v),
        "kernel_size": lambda: aekernels.max_pool2d(x, v),
        "scale_factor": lambda: aekernels.upsample_nearest2d(x, v),
        "output_padding": lambda: aekernels.conv_transpose2d(x, w, stride=2, output_padding=v),
        "divisor_override": lambda: aekernels.avg_pool2d(x, 2, divisor_override=v),
    }
    try:
        r = calls[which]()
    except (ValueError, TypeError, MemoryError):
        return
    assert isinstance(r, (np.ndarray, tuple))
