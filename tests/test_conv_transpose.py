"""conv_transpose2d vs the float64 reference (a direct scatter), and its identity with
conv2d_backward_input."""
import zlib

import numpy as np
import pytest

import aekernels
import helpers as H
import reference as R
from cases import CONV_TRANSPOSE_CASES

_cache = {}


def _args(p):
    return dict(stride=p["stride"], padding=p["padding"], dilation=p["dilation"],
                groups=p["groups"])


def _output_size(p, layout):
    os_ = p["output_size"]
    if os_ is not None and len(os_) == 4:
        os_ = R.shape_from_nchw(os_, layout)
    return os_


def ct_problem(p):
    key = repr(sorted(p.items()))
    if key in _cache:
        return _cache[key]
    seed = zlib.crc32(key.encode())
    x = H.randn((p["N"], p["Cin"], p["H"], p["W"]), seed)
    w = H.randn((p["Cin"], p["Cout"] // p["groups"], p["kh"], p["kw"]), seed + 1)
    b = H.randn((p["Cout"],), seed + 2) if p["bias"] else None
    kw = dict(_args(p), output_padding=p["output_padding"], output_size=p["output_size"])
    y = R.conv_transpose2d(x, w, b, **kw)
    bound = R.conv_transpose2d(np.abs(x), np.abs(w), None if b is None else np.abs(b), **kw)
    _cache[key] = (x, w, b, y, bound)
    return _cache[key]


@pytest.mark.parametrize("p", CONV_TRANSPOSE_CASES)
def test_conv_transpose2d(backend, dtype, layout, p):
    x, w, b, y_ref, bound = ct_problem(p)
    y = aekernels.conv_transpose2d(
        H.data(x, layout, dtype), H.weight(w, layout, dtype),
        None if b is None else b.astype(dtype), output_padding=p["output_padding"],
        **_args(p), layout=layout, output_size=_output_size(p, layout))
    K = p["Cin"] // p["groups"] * p["kh"] * p["kw"] + 1
    H.assert_close(y, R.from_nchw(y_ref, layout), dtype, bound=R.from_nchw(bound, layout),
                   K=K, what="conv_transpose2d")


@pytest.mark.parametrize("p", [c for c in CONV_TRANSPOSE_CASES
                               if c.values[0]["output_padding"] in (0, 1)][:10])
def test_conv_transpose2d_equals_conv2d_backward_input(backend, layout, p):
    """conv_transpose2d(x, w) == conv2d_backward_input(x, w, <out shape>) (fp64, no bias)."""
    x, w, _, _, _ = ct_problem(p)
    xl, wl = H.data(x, layout, np.float64), H.weight(w, layout, np.float64)
    y = aekernels.conv_transpose2d(xl, wl, None, output_padding=p["output_padding"],
                                   **_args(p), layout=layout,
                                   output_size=_output_size(p, layout))
    padding = p["padding"]
    if isinstance(padding, str) and padding.lower().startswith("same"):
        # "same" of the transposed conv is the forward "same" padding of the output size
        padding = R.resolve_padding(padding, R.to_nchw(y, layout).shape[2:],
                                    (p["kh"], p["kw"]), R.pair(p["stride"]),
                                    R.pair(p["dilation"]))
    gx = aekernels.conv2d_backward_input(xl, wl, y.shape, stride=p["stride"], padding=padding,
                                         dilation=p["dilation"], groups=p["groups"],
                                         layout=layout)
    np.testing.assert_allclose(y, gx, rtol=1e-10, atol=1e-10)


def test_conv_transpose2d_3d_input_returns_3d(backend, dtype, layout):
    p = CONV_TRANSPOSE_CASES[2].values[0]
    x, w, b, _, _ = ct_problem(p)
    ref = R.conv_transpose2d(x[:1], w, b, stride=2, padding=1, output_padding=1)
    y = aekernels.conv_transpose2d(H.data(x[:1], layout, dtype)[0], H.weight(w, layout, dtype),
                                   b.astype(dtype), stride=2, padding=1, output_padding=1,
                                   layout=layout)
    assert y.ndim == 3
    H.assert_close(y, R.from_nchw(ref, layout)[0], dtype, what="conv_transpose2d 3-D")


def test_conv_transpose2d_out_is_used_and_returned(backend, dtype, layout):
    p = CONV_TRANSPOSE_CASES[2].values[0]
    x, w, b, y_ref, _ = ct_problem(p)
    ref = R.from_nchw(y_ref, layout)
    out = H.filled_out(ref.shape, dtype)
    y = aekernels.conv_transpose2d(H.data(x, layout, dtype), H.weight(w, layout, dtype),
                                   b.astype(dtype), stride=2, padding=1, output_padding=1,
                                   layout=layout, out=out)
    assert y is out
    H.assert_close(out, ref, dtype, what="conv_transpose2d out=")


def test_conv_transpose2d_empty_batch(backend, dtype, layout):
    x = np.zeros(H.shape((0, 4, 3, 5), layout), dtype)
    w = H.weight(H.randn((4, 3, 3, 3), 3), layout, dtype)
    y = aekernels.conv_transpose2d(x, w, np.ones(3, dtype), stride=2, padding=1,
                                   output_padding=1, layout=layout)
    assert y.shape == H.shape((0, 3, 6, 10), layout) and y.dtype == dtype


@pytest.mark.parametrize("op", [0, 1, 2])
def test_conv_transpose2d_output_size_picks_output_padding(backend, layout, op):
    """output_size = default + op gives the same result as output_padding=op."""
    x = H.randn((1, 2, 4, 3), 11)
    w = H.randn((2, 2, 3, 3), 12)
    kw = dict(stride=3, padding=1, layout=layout)
    xl, wl = H.data(x, layout, np.float64), H.weight(w, layout, np.float64)
    default = ((4 - 1) * 3 - 2 + 3, (3 - 1) * 3 - 2 + 3)
    a = aekernels.conv_transpose2d(xl, wl, output_padding=op, **kw)
    b = aekernels.conv_transpose2d(xl, wl, output_size=(default[0] + op, default[1] + op), **kw)
    assert a.shape == b.shape == H.shape((1, 2, default[0] + op, default[1] + op), layout)
    np.testing.assert_array_equal(a, b)
