"""conv2d and its three backward kernels vs the float64 reference, over the parameter
space of TESTING.md, on both backends, both layouts and both dtypes."""
import zlib

import numpy as np
import pytest

import aekernels
import helpers as H
import reference as R
from cases import CONV_CASES

_cache = {}


def _key(p, *extra):
    return tuple(sorted((k, repr(v)) for k, v in p.items())) + extra


def conv_problem(p):
    """NCHW float64 (float32-exact) data, reference results and float32 error bounds."""
    key = _key(p)
    if key in _cache:
        return _cache[key]
    seed = zlib.crc32(repr(key).encode())
    x = H.randn((p["N"], p["C"], p["H"], p["W"]), seed)
    w = H.randn((p["K"], p["C"] // p["groups"], p["kh"], p["kw"]), seed + 1)
    b = H.randn((p["K"],), seed + 2) if p["bias"] else None
    args = dict(stride=p["stride"], padding=p["padding"], dilation=p["dilation"],
                groups=p["groups"])
    y = R.conv2d(x, w, b, **args)
    y_bound = R.conv2d(np.abs(x), np.abs(w), None if b is None else np.abs(b), **args)
    gy = H.randn(y.shape, seed + 3)
    gx = R.conv2d_backward_input(gy, w, x.shape, **args)
    gx_bound = R.conv2d_backward_input(np.abs(gy), np.abs(w), x.shape, **args)
    gw = R.conv2d_backward_filter(x, gy, w.shape, **args)
    gw_bound = R.conv2d_backward_filter(np.abs(x), np.abs(gy), w.shape, **args)
    gb = R.conv2d_backward_bias(gy)
    gb_bound = R.conv2d_backward_bias(np.abs(gy))
    prob = dict(x=x, w=w, b=b, args=args, y=y, y_bound=y_bound, gy=gy, gx=gx,
                gx_bound=gx_bound, gw=gw, gw_bound=gw_bound, gb=gb, gb_bound=gb_bound)
    _cache[key] = prob
    return prob


def _k_forward(p):
    return p["C"] // p["groups"] * p["kh"] * p["kw"] + 1


@pytest.mark.parametrize("p", CONV_CASES)
def test_conv2d_forward(backend, dtype, layout, p):
    pr = conv_problem(p)
    x, w = H.data(pr["x"], layout, dtype), H.weight(pr["w"], layout, dtype)
    b = None if pr["b"] is None else pr["b"].astype(dtype)
    y = aekernels.conv2d(x, w, b, **pr["args"], layout=layout)
    H.assert_close(y, R.from_nchw(pr["y"], layout), dtype,
                   bound=R.from_nchw(pr["y_bound"], layout), K=_k_forward(p), what="conv2d")


@pytest.mark.parametrize("p", CONV_CASES)
def test_conv2d_backward_input(backend, dtype, layout, p):
    pr = conv_problem(p)
    gy, w = H.data(pr["gy"], layout, dtype), H.weight(pr["w"], layout, dtype)
    in_shape = H.shape(pr["x"].shape, layout)
    gx = aekernels.conv2d_backward_input(gy, w, in_shape, **pr["args"], layout=layout)
    K = p["K"] // p["groups"] * p["kh"] * p["kw"]
    H.assert_close(gx, R.from_nchw(pr["gx"], layout), dtype,
                   bound=R.from_nchw(pr["gx_bound"], layout), K=K,
                   what="conv2d_backward_input")


@pytest.mark.parametrize("p", CONV_CASES)
def test_conv2d_backward_filter(backend, dtype, layout, p):
    pr = conv_problem(p)
    x, gy = H.data(pr["x"], layout, dtype), H.data(pr["gy"], layout, dtype)
    w_shape = R.weight_from_oihw(pr["w"], layout).shape
    gw = aekernels.conv2d_backward_filter(x, gy, w_shape, **pr["args"], layout=layout)
    K = pr["gy"].shape[0] * pr["gy"].shape[2] * pr["gy"].shape[3]
    H.assert_close(gw, R.weight_from_oihw(pr["gw"], layout), dtype,
                   bound=R.weight_from_oihw(pr["gw_bound"], layout), K=K,
                   what="conv2d_backward_filter")


@pytest.mark.parametrize("p", CONV_CASES[:6] + CONV_CASES[-4:])
def test_conv2d_backward_bias(backend, dtype, layout, p):
    pr = conv_problem(p)
    gy = H.data(pr["gy"], layout, dtype)
    gb = aekernels.conv2d_backward_bias(gy, layout=layout)
    K = pr["gy"].size // pr["gy"].shape[1]
    H.assert_close(gb, pr["gb"], dtype, bound=pr["gb_bound"], K=K, what="conv2d_backward_bias")


# ----------------------------------------------------------------------------- forms

SMALL = dict(N=2, C=4, H=6, W=5, K=6, kh=3, kw=2, stride=(2, 1), padding=((1, 0), (0, 1)),
             dilation=1, groups=2, bias=True)


def test_conv2d_integer_valued_float32_is_exact(backend, layout):
    """TESTING.md: integer-valued float32 data gives exact results."""
    rng = np.random.default_rng(7)
    x = rng.integers(-3, 4, (2, 4, 7, 6)).astype(np.float64)
    w = rng.integers(-2, 3, (5, 4, 3, 3)).astype(np.float64)
    ref = R.conv2d(x, w, None, 1, 1)
    y = aekernels.conv2d(H.data(x, layout, np.float32), H.weight(w, layout, np.float32),
                         padding=1, layout=layout)
    H.assert_bitwise(y, R.from_nchw(ref, layout), np.float32)


def test_conv2d_3d_input_returns_3d(backend, dtype, layout):
    pr = conv_problem(SMALL)
    x = H.data(pr["x"][:1], layout, dtype)[0]
    w = H.weight(pr["w"], layout, dtype)
    b = pr["b"].astype(dtype)
    y = aekernels.conv2d(x, w, b, **pr["args"], layout=layout)
    ref = R.conv2d(pr["x"][:1], pr["w"], pr["b"], **pr["args"])
    assert y.ndim == 3
    H.assert_close(y, R.from_nchw(ref, layout)[0], dtype, what="conv2d 3-D")

    gy = H.data(ref, layout, dtype)[0]
    gx = aekernels.conv2d_backward_input(gy, w, x.shape, **pr["args"], layout=layout)
    assert gx.shape == x.shape
    gx_ref = R.conv2d_backward_input(ref, pr["w"], pr["x"][:1].shape, **pr["args"])
    H.assert_close(gx, R.from_nchw(gx_ref, layout)[0], dtype, what="backward_input 3-D")

    gw = aekernels.conv2d_backward_filter(x, gy, w.shape, **pr["args"], layout=layout)
    gw_ref = R.conv2d_backward_filter(pr["x"][:1], ref, pr["w"].shape, **pr["args"])
    H.assert_close(gw, R.weight_from_oihw(gw_ref, layout), dtype, what="backward_filter 3-D")

    gb = aekernels.conv2d_backward_bias(gy, layout=layout)
    H.assert_close(gb, R.conv2d_backward_bias(ref), dtype, what="backward_bias 3-D")


def test_conv2d_out_is_used_and_returned(backend, dtype, layout):
    pr = conv_problem(SMALL)
    x, w = H.data(pr["x"], layout, dtype), H.weight(pr["w"], layout, dtype)
    gy = H.data(pr["gy"], layout, dtype)
    b = pr["b"].astype(dtype)

    out = H.filled_out(R.from_nchw(pr["y"], layout).shape, dtype)
    y = aekernels.conv2d(x, w, b, **pr["args"], layout=layout, out=out)
    assert y is out
    H.assert_close(out, R.from_nchw(pr["y"], layout), dtype, what="conv2d out=")

    out = H.filled_out(x.shape, dtype)
    r = aekernels.conv2d_backward_input(gy, w, x.shape, **pr["args"], layout=layout, out=out)
    assert r is out
    H.assert_close(out, R.from_nchw(pr["gx"], layout), dtype, what="backward_input out=")

    out = H.filled_out(w.shape, dtype)
    r = aekernels.conv2d_backward_filter(x, gy, w.shape, **pr["args"], layout=layout, out=out)
    assert r is out
    H.assert_close(out, R.weight_from_oihw(pr["gw"], layout), dtype,
                   what="backward_filter out=")


def test_conv2d_empty_batch(backend, dtype, layout):
    """N == 0 gives an empty result of the right shape (backward_filter: zeros)."""
    x = np.zeros(H.shape((0, 4, 6, 5), layout), dtype)
    w = H.weight(H.randn((6, 2, 3, 2), 1), layout, dtype)
    b = np.ones(6, dtype)
    y = aekernels.conv2d(x, w, b, stride=(2, 1), padding=1, groups=2, layout=layout)
    assert y.shape == H.shape((0, 6, 3, 6), layout) and y.dtype == dtype
    gx = aekernels.conv2d_backward_input(y, w, x.shape, stride=(2, 1), padding=1, groups=2,
                                         layout=layout)
    assert gx.shape == x.shape and gx.dtype == dtype
    gw = aekernels.conv2d_backward_filter(x, y, w.shape, stride=(2, 1), padding=1, groups=2,
                                          layout=layout)
    assert gw.shape == w.shape and gw.dtype == dtype
    assert np.all(gw == 0)
    gb = aekernels.conv2d_backward_bias(y, layout=layout)
    assert gb.shape == (6,) and np.all(gb == 0)


def test_conv2d_is_deterministic(backend):
    pr = conv_problem(dict(SMALL, N=3, C=8, K=16, H=12, W=13))
    x, w = pr["x"].astype(np.float32), pr["w"].astype(np.float32)
    y1 = aekernels.conv2d(x, w, **pr["args"])
    y2 = aekernels.conv2d(x, w, **pr["args"])
    np.testing.assert_array_equal(y1, y2, strict=True)


def test_conv2d_backends_agree(dtype, layout):
    """Same call on both backends (when both load): results agree within tolerance."""
    if set(aekernels.available_backends()) != {"native", "numba"}:
        pytest.skip("needs both backends")
    pr = conv_problem(dict(SMALL, N=2, C=6, K=9, groups=3, dilation=2, padding="same"))
    x, w = H.data(pr["x"], layout, dtype), H.weight(pr["w"], layout, dtype)
    results = {}
    for name in ("native", "numba"):
        with aekernels.use_backend(name):
            results[name] = aekernels.conv2d(x, w, **pr["args"], layout=layout)
    H.assert_close(results["native"], results["numba"].astype(np.float64), dtype,
                   bound=R.from_nchw(pr["y_bound"], layout), K=2 * (2 * 3 * 2 + 1))
