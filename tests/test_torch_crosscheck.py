"""Cross-check every kernel against PyTorch (float64 results; float32 runs to 1e-4).

Random but seeded cases; distinct values for max pooling so ties cannot differ.
NHWC runs are compared after transposing to PyTorch's NCHW.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

import aekernels  # noqa: E402
import helpers as H  # noqa: E402
import reference as R  # noqa: E402

SEEDS = list(range(8))


def T(a):
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))


def check(y, ref, dtype, what):
    """float64: rtol = atol = 1e-10; float32 (vs the float64 torch result): 1e-4."""
    y = np.asarray(y)
    assert y.dtype == dtype, f"{what}: dtype {y.dtype}"
    assert y.shape == ref.shape, f"{what}: shape {y.shape} != torch {ref.shape}"
    if dtype == np.float64:
        np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-10, err_msg=what)
    else:
        np.testing.assert_allclose(y.astype(np.float64), ref, rtol=1e-4, atol=1e-4, err_msg=what)


def _conv_params(seed):
    rng = np.random.default_rng(1000 + seed)
    groups = int(rng.choice([1, 1, 2, 3]))
    cg, kg = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    kh, kw = (int(v) for v in rng.integers(1, 6, 2))
    sh, sw = (int(v) for v in rng.integers(1, 4, 2))
    dh, dw = (int(v) for v in rng.integers(1, 3, 2))
    ph, pw = int(rng.integers(0, kh)), int(rng.integers(0, kw))
    H_ = int(rng.integers(dh * (kh - 1) + 1, 13))
    W_ = int(rng.integers(dw * (kw - 1) + 1, 13))
    return dict(N=int(rng.integers(1, 3)), C=cg * groups, K=kg * groups, H=H_, W=W_,
                k=(kh, kw), stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw), groups=groups)


@pytest.mark.parametrize("seed", SEEDS)
def test_conv2d_and_backward_vs_torch(backend, dtype, layout, seed):
    p = _conv_params(seed)
    x = H.randn((p["N"], p["C"], p["H"], p["W"]), seed)
    w = H.randn((p["K"], p["C"] // p["groups"]) + p["k"], seed + 100)
    b = H.randn((p["K"],), seed + 200)
    args = dict(stride=p["stride"], padding=p["padding"], dilation=p["dilation"],
                groups=p["groups"])
    xt = T(x).requires_grad_(True)
    wt = T(w).requires_grad_(True)
    yt = F.conv2d(xt, wt, T(b), **args)
    gy = H.randn(tuple(yt.shape), seed + 300)
    yt.backward(T(gy))
    gx_t = torch.nn.grad.conv2d_input(x.shape, T(w), T(gy), **args).numpy()
    gw_t = torch.nn.grad.conv2d_weight(T(x), w.shape, T(gy), **args).numpy()
    np.testing.assert_allclose(gx_t, xt.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gw_t, wt.grad.numpy(), rtol=1e-10, atol=1e-10)

    xl, wl, gyl = H.data(x, layout, dtype), H.weight(w, layout, dtype), H.data(gy, layout, dtype)
    y = aekernels.conv2d(xl, wl, b.astype(dtype), **args, layout=layout)
    check(R.to_nchw(y, layout).astype(dtype), yt.detach().numpy(), dtype, f"conv2d {p}")
    gx = aekernels.conv2d_backward_input(gyl, wl, xl.shape, **args, layout=layout)
    check(R.to_nchw(gx, layout).astype(dtype), gx_t, dtype, f"conv2d_backward_input {p}")
    gw = aekernels.conv2d_backward_filter(xl, gyl, wl.shape, **args, layout=layout)
    check(R.weight_to_oihw(gw, layout).astype(dtype), gw_t, dtype, f"conv2d_backward_filter {p}")
    gb = aekernels.conv2d_backward_bias(gyl, layout=layout)
    check(gb, gy.sum(axis=(0, 2, 3)), dtype, "conv2d_backward_bias")


@pytest.mark.parametrize("mode", ["same", "valid"])
@pytest.mark.parametrize("k,d", [(3, 1), (4, 1), (4, 2), (5, 2), (2, 3)])
def test_conv2d_same_valid_vs_torch(backend, layout, mode, k, d):
    """PyTorch's padding='same' (stride 1) puts the odd extra at the bottom/right too."""
    x = H.randn((2, 3, 10, 11), k * 10 + d)
    w = H.randn((4, 3, k, k), k * 10 + d + 1)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = F.conv2d(T(x), T(w), None, 1, mode, d).numpy()
    y = aekernels.conv2d(H.data(x, layout, np.float64), H.weight(w, layout, np.float64),
                         padding=mode, dilation=d, layout=layout)
    check(R.to_nchw(y, layout), ref, np.float64, f"conv2d padding={mode} k={k} d={d}")


@pytest.mark.parametrize("seed", SEEDS)
def test_conv_transpose2d_vs_torch(backend, dtype, layout, seed):
    p = _conv_params(seed)
    sh, sw = p["stride"]
    dh, dw = p["dilation"]
    rng = np.random.default_rng(seed)
    op = (int(rng.integers(0, max(sh, dh))), int(rng.integers(0, max(sw, dw))))
    cin, cout = p["K"], p["C"]          # the forward conv's out/in channels
    x = H.randn((p["N"], cin, 4, 5), seed)
    w = H.randn((cin, cout // p["groups"]) + p["k"], seed + 1)
    b = H.randn((cout,), seed + 2)
    ph, pw = p["padding"]
    default = ((4 - 1) * sh - 2 * ph + dh * (p["k"][0] - 1) + 1,
               (5 - 1) * sw - 2 * pw + dw * (p["k"][1] - 1) + 1)
    if min(default[0] + op[0], default[1] + op[1]) < 1:
        pytest.skip("empty output for this draw")
    ref = F.conv_transpose2d(T(x), T(w), T(b), p["stride"], p["padding"], op, p["groups"],
                             p["dilation"]).numpy()
    y = aekernels.conv_transpose2d(H.data(x, layout, dtype), H.weight(w, layout, dtype),
                                   b.astype(dtype), stride=p["stride"], padding=p["padding"],
                                   output_padding=op, dilation=p["dilation"],
                                   groups=p["groups"], layout=layout)
    check(R.to_nchw(y, layout).astype(dtype), ref, dtype, f"conv_transpose2d {p} op={op}")


def _pool_params(seed):
    rng = np.random.default_rng(2000 + seed)
    kh, kw = (int(v) for v in rng.integers(1, 5, 2))
    sh, sw = (int(v) for v in rng.integers(1, 4, 2))
    ph, pw = int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1))
    return dict(N=int(rng.integers(1, 3)), C=int(rng.integers(1, 4)),
                H=int(rng.integers(kh + 1, 12)), W=int(rng.integers(kw + 1, 12)),
                kernel_size=(kh, kw), stride=(sh, sw), padding=(ph, pw),
                ceil_mode=bool(rng.integers(0, 2)))


@pytest.mark.parametrize("seed", SEEDS)
def test_max_pool2d_and_unpool_vs_torch(backend, dtype, layout, seed):
    p = _pool_params(seed)
    dil = 1 + seed % 2
    x = H.distinct((p["N"], p["C"], p["H"], p["W"]), seed)
    geom = dict(kernel_size=p["kernel_size"], stride=p["stride"], padding=p["padding"])
    try:
        R.pool_geometry((p["H"], p["W"]), **geom, dilation=dil, ceil_mode=p["ceil_mode"])
    except ValueError:
        pytest.skip("invalid draw")
    xt = T(x).requires_grad_(True)
    yt, it = F.max_pool2d(xt, **geom, dilation=dil, ceil_mode=p["ceil_mode"],
                          return_indices=True)
    gy = H.randn(tuple(yt.shape), seed + 5)
    yt.backward(T(gy))
    xl = H.data(x, layout, dtype)
    y, idx = aekernels.max_pool2d(xl, **geom, dilation=dil, ceil_mode=p["ceil_mode"],
                                  return_indices=True, layout=layout)
    H.assert_bitwise(R.to_nchw(y, layout).astype(dtype), yt.detach().numpy(), dtype,
                     what=f"max_pool2d {p}")
    idx_n = idx if layout == "NCHW" else idx.transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(idx_n, it.numpy(), err_msg=f"max_pool2d indices {p}")
    gx = aekernels.max_pool2d_backward(H.data(gy, layout, dtype), idx, xl.shape, layout=layout)
    check(R.to_nchw(gx, layout).astype(dtype), xt.grad.numpy(), dtype, "max_pool2d_backward")
    if dil == 1:
        ut = F.max_unpool2d(yt.detach(), it, **geom, output_size=x.shape[2:])
        u = aekernels.max_unpool2d(y, idx, **geom, output_size=x.shape[2:], layout=layout)
        H.assert_bitwise(R.to_nchw(u, layout).astype(dtype), ut.numpy(), dtype,
                         what="max_unpool2d")
        # backward of unpool is a gather
        ut_in = yt.detach().clone().requires_grad_(True)
        F.max_unpool2d(ut_in, it, **geom, output_size=x.shape[2:]).backward(T(x))
        gu = aekernels.max_unpool2d_backward(xl, idx, layout=layout)
        check(R.to_nchw(gu, layout).astype(dtype), ut_in.grad.numpy(), dtype,
              "max_unpool2d_backward")


@pytest.mark.parametrize("opts", [dict(count_include_pad=True),
                                  dict(count_include_pad=False),
                                  dict(count_include_pad=True, divisor_override=3)],
                         ids=["incl", "excl", "div3"])
@pytest.mark.parametrize("seed", SEEDS[:5])
def test_avg_pool2d_and_backward_vs_torch(backend, dtype, layout, seed, opts):
    p = _pool_params(seed)
    x = H.randn((p["N"], p["C"], p["H"], p["W"]), seed)
    geom = dict(kernel_size=p["kernel_size"], stride=p["stride"], padding=p["padding"],
                ceil_mode=p["ceil_mode"])
    xt = T(x).requires_grad_(True)
    yt = F.avg_pool2d(xt, **geom, **opts)
    gy = H.randn(tuple(yt.shape), seed + 9)
    yt.backward(T(gy))
    xl = H.data(x, layout, dtype)
    y = aekernels.avg_pool2d(xl, **geom, **opts, layout=layout)
    check(R.to_nchw(y, layout).astype(dtype), yt.detach().numpy(), dtype, f"avg_pool2d {p}")
    gx = aekernels.avg_pool2d_backward(H.data(gy, layout, dtype), xl.shape, **geom, **opts,
                                       layout=layout)
    check(R.to_nchw(gx, layout).astype(dtype), xt.grad.numpy(), dtype, "avg_pool2d_backward")


@pytest.mark.parametrize("scale", [1, 2, (2, 3), (3, 1)])
def test_upsample_nearest2d_vs_torch(backend, dtype, layout, scale):
    x = H.randn((2, 3, 4, 5), 77)
    xt = T(x).requires_grad_(True)
    sf = scale if isinstance(scale, tuple) else (scale, scale)
    yt = F.interpolate(xt, scale_factor=sf, mode="nearest")
    gy = H.randn(tuple(yt.shape), 78)
    yt.backward(T(gy))
    y = aekernels.upsample_nearest2d(H.data(x, layout, dtype), scale, layout=layout)
    H.assert_bitwise(R.to_nchw(y, layout).astype(dtype), yt.detach().numpy(), dtype,
                     what="upsample_nearest2d")
    gx = aekernels.upsample_nearest2d_backward(H.data(gy, layout, dtype), scale, layout=layout)
    check(R.to_nchw(gx, layout).astype(dtype), xt.grad.numpy(), dtype,
          "upsample_nearest2d_backward")


def test_reference_agrees_with_torch():
    """The oracle itself, checked once against PyTorch on a few awkward cases."""
    x = H.randn((2, 4, 7, 6), 1)
    w = H.randn((6, 2, 3, 2), 2)
    for s, p, d in [(1, 0, 1), (2, 1, 1), ((2, 1), (1, 2), (2, 1)), (3, 2, 2)]:
        np.testing.assert_allclose(R.conv2d(x, w, None, s, p, d, 2),
                                   F.conv2d(T(x), T(w), None, s, p, d, 2).numpy(),
                                   rtol=1e-12, atol=1e-12)
    xp = H.distinct((2, 3, 9, 8), 3)
    for k, s, p, d, c in [(3, 2, 1, 1, True), (3, 2, 1, 2, False), ((2, 3), (1, 2), (1, 1), 1, True),
                          (4, 2, 0, 1, True)]:
        y, i = R.max_pool2d(xp, k, s, p, d, c)
        ty, ti = F.max_pool2d(T(xp), k, s, p, d, c, return_indices=True)
        np.testing.assert_array_equal(y, ty.numpy())
        np.testing.assert_array_equal(i, ti.numpy())
        if d == 1:
            for cip in (True, False):
                np.testing.assert_allclose(R.avg_pool2d(xp, k, s, p, 1, c, cip),
                                           F.avg_pool2d(T(xp), k, s, p, c, cip).numpy(),
                                           rtol=1e-12, atol=1e-12)
