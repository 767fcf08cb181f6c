"""Adjoint identities in float64 (TESTING.md):
<conv(x,w), g> == <x, backward_input(g,w)> == <w, backward_filter(x,g)>,
conv_transpose2d == conv2d_backward_input, and the pooling/upsampling pairs."""
import numpy as np
import pytest

import aekernels
import helpers as H
import reference as R

F64 = np.float64

CONV_ADJ = [
    pytest.param(dict(C=3, K=4, k=(3, 3), stride=1, padding=1, dilation=1, groups=1), id="k3_p1"),
    pytest.param(dict(C=4, K=6, k=(4, 4), stride=2, padding="same", dilation=1, groups=2),
                 id="k4_same_s2_g2"),
    pytest.param(dict(C=4, K=4, k=(3, 2), stride=(2, 3), padding=((2, 0), (1, 1)),
                      dilation=(2, 1), groups=4), id="depthwise_asym_dil"),
    pytest.param(dict(C=2, K=3, k=(5, 5), stride=3, padding="same_lower", dilation=1, groups=1),
                 id="k5_same_lower_s3"),
    pytest.param(dict(C=3, K=5, k=(1, 1), stride=2, padding=0, dilation=1, groups=1),
                 id="k1_s2_skips_rows"),
    pytest.param(dict(C=3, K=2, k=(2, 2), stride=1, padding="valid", dilation=3, groups=1),
                 id="dil3_valid"),
]


def _dot(a, b):
    return float(np.dot(np.ravel(a).astype(F64), np.ravel(b).astype(F64)))


@pytest.mark.parametrize("p", CONV_ADJ)
def test_conv2d_adjoint_identities(backend, layout, p):
    x = H.randn((2, p["C"], 9, 8), 1)
    w = H.randn((p["K"], p["C"] // p["groups"]) + p["k"], 2)
    args = dict(stride=p["stride"], padding=p["padding"], dilation=p["dilation"],
                groups=p["groups"], layout=layout)
    xl, wl = H.data(x, layout, F64), H.weight(w, layout, F64)
    y = aekernels.conv2d(xl, wl, **args)
    g = np.random.default_rng(3).standard_normal(y.shape)
    gx = aekernels.conv2d_backward_input(g, wl, xl.shape, **args)
    gw = aekernels.conv2d_backward_filter(xl, g, wl.shape, **args)
    lhs = _dot(y, g)
    scale = _dot(np.abs(y), np.abs(g)) + 1.0
    assert abs(lhs - _dot(xl, gx)) <= 1e-10 * scale
    assert abs(lhs - _dot(wl, gw)) <= 1e-10 * scale


@pytest.mark.parametrize("p", CONV_ADJ)
def test_conv_transpose2d_equals_backward_input(backend, layout, p):
    """conv_transpose2d(g, w) with the forward geometry == conv2d_backward_input(g, w)."""
    x_shape = (2, p["C"], 9, 8)
    w = H.randn((p["K"], p["C"] // p["groups"]) + p["k"], 2)
    fwd_out = R.conv2d(np.zeros(x_shape), w, None, p["stride"], p["padding"], p["dilation"],
                       p["groups"]).shape
    g = H.randn(fwd_out, 4)
    wl, gl = H.weight(w, layout, F64), H.data(g, layout, F64)
    pads = R.resolve_padding(p["padding"], x_shape[2:], p["k"], R.pair(p["stride"]),
                             R.pair(p["dilation"]))
    common = dict(stride=p["stride"], dilation=p["dilation"], groups=p["groups"],
                  layout=layout)
    gx = aekernels.conv2d_backward_input(gl, wl, H.shape(x_shape, layout), padding=pads,
                                         **common)
    try:
        yt = aekernels.conv_transpose2d(gl, wl, padding=pads, output_size=x_shape[2:], **common)
    except ValueError as exc:
        # the forward input size may be out of conv_transpose2d's reach only if
        # output_padding would have to be >= max(stride, dilation)
        pytest.fail(f"conv_transpose2d refused the forward input size: {exc}")
    np.testing.assert_allclose(yt, gx, rtol=1e-10, atol=1e-10)


def test_conv2d_backward_bias_is_adjoint_of_bias_add(backend, layout):
    g = H.randn((2, 5, 4, 3), 5)
    gl = H.data(g, layout, F64)
    b = H.randn((5,), 6)
    # <broadcast(b), g> == <b, backward_bias(g)>
    lhs = _dot(R.from_nchw(np.broadcast_to(b[None, :, None, None], g.shape), layout), gl)
    assert abs(lhs - _dot(b, aekernels.conv2d_backward_bias(gl, layout=layout))) <= 1e-10 * 100


@pytest.mark.parametrize("geom", [
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=True),
    dict(kernel_size=(2, 3), stride=1, padding=(1, 0), count_include_pad=False),
    dict(kernel_size=3, stride=2, dilation=2, padding="same", divisor_override=4),
], ids=["k3_s2_ceil", "rect_excl_pad", "dil2_same_div4"])
def test_avg_pool2d_adjoint(backend, layout, geom):
    x = H.randn((2, 3, 9, 8), 7)
    xl = H.data(x, layout, F64)
    y = aekernels.avg_pool2d(xl, **geom, layout=layout)
    g = np.random.default_rng(8).standard_normal(y.shape)
    gx = aekernels.avg_pool2d_backward(g, xl.shape, **geom, layout=layout)
    assert abs(_dot(y, g) - _dot(xl, gx)) <= 1e-10 * (_dot(np.abs(y), np.abs(g)) + 1)


def test_max_pool2d_backward_is_adjoint_of_gather(backend, layout):
    """With the indices fixed, max pooling is a gather; its backward the scatter-add."""
    x = H.randn((2, 3, 7, 8), 9)
    xl = H.data(x, layout, F64)
    y, idx = aekernels.max_pool2d(xl, 3, 1, 1, return_indices=True, layout=layout)
    g = np.random.default_rng(10).standard_normal(y.shape)
    gx = aekernels.max_pool2d_backward(g, idx, xl.shape, layout=layout)
    assert abs(_dot(y, g) - _dot(xl, gx)) <= 1e-10 * (_dot(np.abs(y), np.abs(g)) + 1)


def test_max_unpool2d_backward_is_adjoint(backend, layout):
    x = H.distinct((2, 3, 8, 6), 11)
    y, idx = R.max_pool2d(x, 2)
    yl, il = H.data(y, layout, F64), R.from_nchw(idx, layout)
    u = aekernels.max_unpool2d(yl, il, 2, layout=layout)
    g = np.random.default_rng(12).standard_normal(u.shape)
    gy = aekernels.max_unpool2d_backward(g, il, layout=layout)
    assert abs(_dot(u, g) - _dot(yl, gy)) <= 1e-10 * (_dot(np.abs(u), np.abs(g)) + 1)


@pytest.mark.parametrize("scale", [2, (3, 1), (2, 4)])
def test_upsample_nearest2d_adjoint(backend, layout, scale):
    x = H.randn((2, 3, 4, 5), 13)
    xl = H.data(x, layout, F64)
    y = aekernels.upsample_nearest2d(xl, scale, layout=layout)
    g = np.random.default_rng(14).standard_normal(y.shape)
    gx = aekernels.upsample_nearest2d_backward(g, scale, layout=layout)
    assert abs(_dot(y, g) - _dot(xl, gx)) <= 1e-10 * (_dot(np.abs(y), np.abs(g)) + 1)
