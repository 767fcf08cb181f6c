"""aekernels.interop.jax against JAX's own ops (skipped when JAX is not installed).

Oracle: jax.lax.conv_general_dilated (conv2d; conv_transpose2d is its adjoint, taken
with jax.vjp), jax.lax.reduce_window (max/avg pooling), a jnp scatter (unpooling);
values, jax.grad and a second derivative; jit and vmap; errors as the NumPy API's.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = jax.numpy
lax = jax.lax

import aekernels  # noqa: E402
from aekernels.interop import jax as aej  # noqa: E402


@pytest.fixture(params=["f32", "f64"])
def jdtype(request):
    """Run with float32, or float64 under jax_enable_x64."""
    if request.param == "f32":
        yield jnp.float32
    else:
        with jax.enable_x64(True):
            yield jnp.float64


def tol(dtype):
    return dict(rtol=1e-10, atol=1e-10) if dtype == jnp.float64 else dict(rtol=2e-4, atol=2e-4)


def randn(shape, dtype, seed):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), dtype)


def distinct(shape, dtype, seed):
    n = int(np.prod(shape))
    v = np.random.default_rng(seed).permutation(n) / 8.0 - n / 16.0
    return jnp.asarray(v.reshape(shape), dtype)


def assert_close(a, b, dtype):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), **tol(dtype))


def check_grads(ours, ref, args, dtype, seed=99):
    """Values, jax.grad of a weighted-sum loss, and jit of the gradient agree."""
    y, yr = ours(*args), ref(*args)
    assert y.shape == yr.shape and y.dtype == yr.dtype
    assert_close(y, yr, dtype)
    c = randn(y.shape, dtype, seed)
    argnums = tuple(range(len(args)))
    ga = jax.jit(jax.grad(lambda *a: (ours(*a) * c).sum(), argnums))(*args)
    gr = jax.grad(lambda *a: (ref(*a) * c).sum(), argnums)(*args)
    for a, r in zip(ga, gr):
        assert a.shape == r.shape
        assert_close(a, r, dtype)


def _dn(layout):
    return (layout, "OIHW" if layout == "NCHW" else "HWIO", layout)


def _lax_conv(x, w, stride, pads, dilation, groups, layout):
    return lax.conv_general_dilated(x, w, stride, pads, rhs_dilation=dilation,
                                    feature_group_count=groups, dimension_numbers=_dn(layout))


def _to_layout(shape_nchw, layout):
    n, c, h, w = shape_nchw
    return shape_nchw if layout == "NCHW" else (n, h, w, c)


def _w_layout(shape_oihw, layout):
    o, i, h, w = shape_oihw
    return shape_oihw if layout == "NCHW" else (h, w, i, o)


# (x NCHW, w OIHW, stride, padding (ours), explicit pads for lax, dilation, groups)
CONV_CASES = [
    ((2, 3, 9, 8), (4, 3, 3, 3), (1, 1), 0, ((0, 0), (0, 0)), (1, 1), 1),
    ((2, 4, 9, 8), (6, 2, 3, 3), (2, 2), 1, ((1, 1), (1, 1)), (1, 1), 2),
    ((1, 3, 10, 9), (5, 3, 2, 2), (1, 1), "same", ((0, 1), (0, 1)), (1, 1), 1),
    ((2, 2, 11, 10), (3, 2, 3, 2), (2, 3), ((1, 2), (0, 1)), ((1, 2), (0, 1)), (2, 1), 1),
    ((2, 4, 8, 8), (4, 1, 3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)), (1, 1), 4),
]


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("xs,ws,stride,padding,pads,dilation,groups", CONV_CASES)
def test_conv2d_matches_lax(xs, ws, stride, padding, pads, dilation, groups, layout, jdtype):
    x = randn(_to_layout(xs, layout), jdtype, 1)
    w = randn(_w_layout(ws, layout), jdtype, 2)
    b = randn((ws[0],), jdtype, 3)
    bshape = (-1, 1, 1) if layout == "NCHW" else (-1,)

    def ours(x, w, b):
        return aej.conv2d(x, w, b, stride, padding, dilation, groups, layout=layout)

    def ref(x, w, b):
        return _lax_conv(x, w, stride, pads, dilation, groups, layout) + b.reshape(bshape)

    check_grads(ours, ref, (x, w, b), jdtype)


# (x NCHW (C_in), forward weight (C_in, C_out/g, kh, kw) -> OIHW of the conv C_out -> C_in,
#  stride, padding, output_padding, dilation, groups)
CONVT_CASES = [
    ((2, 4, 5, 6), (4, 3, 3, 3), (1, 1), 0, 0, (1, 1), 1),
    ((2, 4, 5, 6), (4, 3, 3, 3), (2, 2), 1, 1, (1, 1), 1),
    ((2, 4, 5, 5), (4, 2, 3, 3), (2, 2), 0, 1, (2, 2), 2),
    ((2, 3, 5, 4), (3, 2, 3, 3), (1, 1), 0, 2, (3, 3), 1),      # output_padding >= stride
    ((1, 2, 4, 4), (2, 3, 2, 2), (2, 2), "same", 0, (1, 1), 1),
]


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("xs,ws,stride,padding,output_padding,dilation,groups", CONVT_CASES)
def test_conv_transpose2d_is_the_adjoint_of_lax_conv(xs, ws, stride, padding, output_padding,
                                                     dilation, groups, layout, jdtype):
    x = randn(_to_layout(xs, layout), jdtype, 4)
    # NCHW: (C_in, C_out/g, kh, kw) is OIHW of the forward conv C_out -> C_in.
    w = randn(ws if layout == "NCHW" else (ws[2], ws[3], ws[1], ws[0]), jdtype, 5)
    y = aej.conv_transpose2d(x, w, None, stride, padding, output_padding, dilation, groups,
                             layout=layout)
    # The NumPy API gives the output size; the forward conv of that size, padded as
    # conv_transpose2d resolves it, is what we transpose.
    ref_np = aekernels.conv_transpose2d(np.asarray(x), np.asarray(w), None, stride, padding,
                                        output_padding, dilation, groups, layout=layout)
    assert y.shape == ref_np.shape

    def fwd_pads():
        oh, ow = (y.shape[2], y.shape[3]) if layout == "NCHW" else (y.shape[1], y.shape[2])
        kh, kw = (ws[2], ws[3])
        from aekernels import _api
        g = _api._geometry(oh, ow, (kh, kw), stride, padding, dilation)
        return ((g.pt, g.pb), (g.pl, g.pr)), (g.oh, g.ow)

    pads, (fh, fw) = fwd_pads()
    h, wd = (xs[2], xs[3])

    def ref(x, w):
        z = jnp.zeros(y.shape, x.dtype)
        conv = lambda z: _lax_conv(z, w, stride, pads, dilation, groups, layout)  # noqa: E731
        _, vjp = jax.vjp(conv, z)
        ext = [(0, 0)] * 4
        ext[2 if layout == "NCHW" else 1] = (0, fh - h)
        ext[3 if layout == "NCHW" else 2] = (0, fw - wd)
        return vjp(jnp.pad(x, ext))[0]

    def ours(x, w):
        return aej.conv_transpose2d(x, w, None, stride, padding, output_padding, dilation,
                                    groups, layout=layout)

    check_grads(ours, ref, (x, w), jdtype)


POOL_CASES = [
    # (x NCHW, kernel, stride, padding (both sides), dilation)
    ((2, 3, 8, 8), (2, 2), (2, 2), (0, 0), (1, 1)),
    ((2, 3, 9, 9), (3, 3), (2, 2), (1, 1), (1, 1)),
    ((1, 2, 11, 10), (3, 2), (2, 1), (1, 1), (2, 2)),
]


def _window(layout, kernel, stride, padding, dilation):
    k, s, d = ((1, 1) + tuple(kernel), (1, 1) + tuple(stride), (1, 1) + tuple(dilation))
    p = ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2)
    if layout == "NHWC":
        perm = (0, 2, 3, 1)
        k, s, d, p = (tuple(t[i] for i in perm) for t in (k, s, d, p))
    return k, s, d, p


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("xs,kernel,stride,padding,dilation", POOL_CASES)
def test_max_pool2d_matches_reduce_window(xs, kernel, stride, padding, dilation, layout, jdtype):
    x = distinct(_to_layout(xs, layout), jdtype, 6)
    k, s, d, p = _window(layout, kernel, stride, padding, dilation)

    def ours(x):
        return aej.max_pool2d(x, kernel, stride, padding, dilation, layout=layout)

    def ref(x):
        return lax.reduce_window(x, -jnp.inf, lax.max, k, s, p, window_dilation=d)

    if dilation != (1, 1):
        # JAX has no VJP for dilated max reduce_window: take the max over dilated
        # patches instead (shifted positive so the patches' zero padding never wins).
        np.testing.assert_array_equal(np.asarray(ours(x)), np.asarray(ref(x)))

        def ref(x):  # noqa: F811
            xc = jnp.moveaxis(x, 3, 1) if layout == "NHWC" else x
            shift = lax.stop_gradient(jnp.abs(xc).max() + 1)
            pt = lax.conv_general_dilated_patches(
                xc + shift, kernel, stride, [(padding[0],) * 2, (padding[1],) * 2],
                rhs_dilation=dilation)
            n, _, oh, ow = pt.shape
            y = pt.reshape(n, xc.shape[1], kernel[0] * kernel[1], oh, ow).max(axis=2) - shift
            return jnp.moveaxis(y, 1, 3) if layout == "NHWC" else y

    check_grads(ours, ref, (x,), jdtype)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("xs,kernel,stride,padding,dilation", POOL_CASES)
def test_avg_pool2d_matches_reduce_window(xs, kernel, stride, padding, dilation, count_include_pad,
                                          layout, jdtype):
    x = randn(_to_layout(xs, layout), jdtype, 7)
    k, s, d, p = _window(layout, kernel, stride, padding, dilation)

    def ours(x):
        return aej.avg_pool2d(x, kernel, stride, padding, dilation,
                              count_include_pad=count_include_pad, layout=layout)

    def ref(x):
        total = lax.reduce_window(x, 0.0, lax.add, k, s, p, window_dilation=d)
        if count_include_pad:
            return total / (kernel[0] * kernel[1])
        count = lax.reduce_window(jnp.ones_like(x), 0.0, lax.add, k, s, p, window_dilation=d)
        return total / count

    check_grads(ours, ref, (x,), jdtype)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_max_unpool2d_matches_scatter(layout, jdtype):
    x = distinct(_to_layout((2, 3, 9, 8), layout), jdtype, 8)
    v, idx = aej.max_pool2d(x, 2, return_indices=True, layout=layout)
    np_v, np_idx = aekernels.max_pool2d(np.asarray(x), 2, return_indices=True, layout=layout)
    np.testing.assert_array_equal(np.asarray(v), np_v)
    np.testing.assert_array_equal(np.asarray(idx), np_idx)
    nhwc = layout == "NHWC"

    def ours(v):
        return aej.max_unpool2d(v, idx, 2, output_size=(9, 8), layout=layout)

    def ref(v):
        vc = jnp.moveaxis(v, 3, 1) if nhwc else v
        ic = jnp.moveaxis(idx, 3, 1) if nhwc else idx
        n, c = vc.shape[:2]
        flat = jnp.zeros((n, c, 9 * 8), v.dtype)
        ni, ci = jnp.meshgrid(jnp.arange(n), jnp.arange(c), indexing="ij")
        flat = flat.at[ni[..., None], ci[..., None], ic.reshape(n, c, -1)].set(vc.reshape(n, c, -1))
        y = flat.reshape(n, c, 9, 8)
        return jnp.moveaxis(y, 1, 3) if nhwc else y

    check_grads(ours, ref, (v,), jdtype)


def test_second_derivatives_match_lax():
    """The backward kernels are custom_vjp functions too: grad of grad works."""
    with jax.enable_x64(True):
        x, w = randn((2, 3, 7, 7), jnp.float64, 10), randn((4, 3, 3, 3), jnp.float64, 11)

        def ours(x, w):
            h = jnp.tanh(aej.conv2d(x, w, padding=1))
            return (aej.avg_pool2d(aej.max_pool2d(h, 2, 1), 2) ** 2).sum()

        def ref(x, w):
            h = jnp.tanh(_lax_conv(x, w, (1, 1), ((1, 1), (1, 1)), (1, 1), 1, "NCHW"))
            m = lax.reduce_window(h, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 1, 1), "VALID")
            a = lax.reduce_window(m, 0.0, lax.add, (1, 1, 2, 2), (1, 1, 2, 2), "VALID") / 4
            return (a ** 2).sum()

        hvp = jax.grad(lambda x, w: (jax.grad(ours, 1)(x, w) ** 2).sum(), (0, 1))(x, w)
        hvp_ref = jax.grad(lambda x, w: (jax.grad(ref, 1)(x, w) ** 2).sum(), (0, 1))(x, w)
        for a, r in zip(hvp, hvp_ref):
            assert_close(a, r, jnp.float64)


def test_jit_and_vmap():
    x, w = randn((3, 2, 2, 7, 7), jnp.float32, 12), randn((4, 2, 3, 3), jnp.float32, 13)
    f = jax.jit(jax.vmap(lambda x: aej.max_pool2d(aej.conv2d(x, w, padding="same"), 2)))
    y = f(x)
    ref = np.stack([aekernels.max_pool2d(aekernels.conv2d(np.asarray(xi), np.asarray(w),
                                                          padding="same"), 2) for xi in x])
    np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-6, atol=1e-6)
    g = jax.vmap(jax.grad(lambda x: aej.conv2d(x, w, padding=1).sum()))(x)
    gr = jax.vmap(jax.grad(lambda x: _lax_conv(x, w, (1, 1), ((1, 1),) * 2, (1, 1), 1,
                                                "NCHW").sum()))(x)
    np.testing.assert_allclose(np.asarray(g), np.asarray(gr), rtol=2e-4, atol=2e-4)


def test_int32_indices_without_x64():
    x = distinct((1, 2, 6, 6), jnp.float32, 14)
    _, idx = aej.max_pool2d(x, 2, return_indices=True)
    assert idx.dtype == (jnp.int64 if jax.config.jax_enable_x64 else jnp.int32)


ERROR_CASES = [
    ("stride0", lambda m, x, w: m.conv2d(x, w, stride=0)),
    ("padding_str", lambda m, x, w: m.conv2d(x, w, padding="full")),
    ("groups", lambda m, x, w: m.conv2d(x, w, groups=2)),
    ("x_ndim", lambda m, x, w: m.conv2d(x[0, 0], w)),
    ("weight_channels", lambda m, x, w: m.conv2d(x[:, :2], w)),
    ("int_x", lambda m, x, w: m.conv2d(x.astype(np.int32), w)),
    ("mixed_dtype", lambda m, x, w: m.conv2d(x, w.astype(np.float16))),
    ("bias_shape", lambda m, x, w: m.conv2d(x, w, np.zeros(5, np.float32))),
    ("layout", lambda m, x, w: m.conv2d(x, w, layout="NHCW")),
    ("convt_output_padding", lambda m, x, w: m.conv_transpose2d(x, w.transpose(1, 0, 2, 3),
                                                                stride=2, output_padding=2)),
    ("pool_kernel0", lambda m, x, w: m.max_pool2d(x, 0)),
    ("pool_window_in_padding", lambda m, x, w: m.max_pool2d(x, 2, 2, padding=3)),
    ("pool_ceil_int", lambda m, x, w: m.avg_pool2d(x, 2, ceil_mode=1)),
    ("avg_divisor0", lambda m, x, w: m.avg_pool2d(x, 2, divisor_override=0)),
    ("unpool_output_size", lambda m, x, w: m.max_unpool2d(x, np.zeros(x.shape, np.int64)
                                                          .astype(np.int32 if m is aej else np.int64),
                                                          2, output_size=(30, 30))),
]


@pytest.mark.parametrize("name,call", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_bad_input_same_error_as_numpy_api(name, call):
    x = np.random.default_rng(0).standard_normal((2, 4, 6, 6)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((3, 4, 3, 3)).astype(np.float32)
    with pytest.raises((ValueError, TypeError)) as expected:
        call(aekernels, x, w)
    with pytest.raises(expected.type, match=re.escape(str(expected.value))):
        call(aej, jnp.asarray(x), jnp.asarray(w))
