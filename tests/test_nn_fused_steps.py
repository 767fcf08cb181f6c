"""Sequential's fused execution steps give what the layers give one by one.

Conv2d -> ReLU -> MaxPool2d also becomes one step (nn.pool.ConvThenPoolReLU) that takes
the conv's bias gradient from the pooled gradient: equal up to float addition order.

Sequential runs a ReLU that directly precedes a MaxPool2d as pool-then-ReLU
(nn.pool.PoolThenReLU): outputs, pool indices and input gradients must equal those of
ReLU.forward then MaxPool2d.forward (and the backward in reverse), bitwise, including
windows that are all <= 0 (their index must be the window's first in-image position, as
the ReLU'd all-zero window gives), NaN, -inf, padding, dilation, overlapping windows,
ceil_mode and both layouts.
"""
import numpy as np
import pytest

from aekernels import nn
from aekernels.nn.pool import PoolThenReLU

POOLS = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=1, padding=1),                 # overlapping windows
    dict(kernel_size=2, stride=2, dilation=2, padding=1),
    dict(kernel_size=3, stride=2, ceil_mode=True),
    dict(kernel_size=(2, 3), stride=(1, 2), padding=((1, 0), (0, 1))),
]


def _data(shape, rng, dtype):
    x = rng.standard_normal(shape).astype(dtype)
    x[:, :, :4, :4] = -np.abs(x[:, :, :4, :4])    # whole windows <= 0
    x.flat[5] = -0.0
    x.flat[17] = -np.inf
    x.flat[40] = np.nan
    x.flat[41] = 0.0
    return x


def _separate(relu, pool, x, g):
    y = pool.forward(relu.forward(x.copy()))
    idx = pool.indices.copy()
    gx = relu.backward(pool.backward(g.copy()))
    return y, idx, gx


@pytest.mark.parametrize("numba_step", [True, False], ids=["numba-step", "numpy-step"])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("kw", POOLS, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pool_then_relu_matches_relu_then_pool(backend, layout, kw, dtype, numba_step, monkeypatch):
    from aekernels.nn import _fused
    if numba_step and not _fused.AVAILABLE:
        pytest.skip("numba element-wise kernels unavailable")
    monkeypatch.setattr(_fused, "AVAILABLE", numba_step)
    rng = np.random.default_rng(0)
    x = _data((3, 2, 9, 10), rng, dtype)
    if layout == "NHWC":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    relu, pool = nn.ReLU(), nn.MaxPool2d(layout=layout, **kw)
    ref_y = pool.forward(nn.ReLU().forward(x.copy()))
    g = rng.standard_normal(ref_y.shape).astype(dtype)
    ref_y, ref_idx, ref_gx = _separate(relu, pool, x, g)

    fused = PoolThenReLU(nn.ReLU(), nn.MaxPool2d(layout=layout, **kw))
    y = fused.forward(x.copy())
    np.testing.assert_array_equal(y, ref_y)          # -0.0 == 0.0, NaN == NaN here
    np.testing.assert_array_equal(fused.pool.indices, ref_idx)
    gx = fused.backward(g.copy())
    np.testing.assert_array_equal(gx, ref_gx)


def test_sequential_fuses_only_relu_directly_before_max_pool():
    p1, p2 = nn.MaxPool2d(2), nn.MaxPool2d(2)
    relu_a, relu_b, relu_c = nn.ReLU(), nn.ReLU(), nn.ReLU()
    net = nn.Sequential(relu_a, p1, nn.Sigmoid(), p2, relu_b, nn.AvgPool2d(2), relu_c)
    steps = net._execution_steps()
    assert type(steps[0]) is PoolThenReLU and steps[0].relu is relu_a and steps[0].pool is p1
    assert steps[1:] == net.children[2:]
    net.children.insert(3, relu_c)                   # children changed: plan rebuilt
    assert isinstance(net._execution_steps()[2], PoolThenReLU)


def test_conv_ae_unpool_sees_relu_first_indices():
    """The conv AE's first pool feeds an unpool of other values (the decoder's), so the
    indices of its all-negative windows matter: the fused net equals the layer-by-layer run."""
    from aekernels import models
    model = models.conv_ae(seed=2, dtype="float64")
    x = np.random.default_rng(1).random((4, 1, 12, 12)) - 0.7
    layers = model.net.children
    h = x.copy()
    for layer in layers:
        h = layer.forward(h)
    ref_out = h.copy()
    g = np.random.default_rng(2).standard_normal(h.shape)
    gh = g.copy()
    for layer in reversed(layers):
        gh = layer.backward(gh)
        if gh is None:
            break
    ref_grads = [a.copy() for a in model.net.grads()]
    out = model.net.forward(x.copy())
    model.net.backward(g.copy())
    np.testing.assert_array_equal(out, ref_out)
    bias_grads = {id(layer.gbias) for layer in layers if isinstance(layer, nn.Conv2d)}
    assert len(bias_grads) == 2
    for a, b in zip(model.net.grads(), ref_grads):
        if id(a) in bias_grads:    # summed over the pooled gradient: another addition order
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
        else:
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_conv_then_pool_relu_bias_grad_from_pooled_gradient(backend, layout):
    from aekernels.nn.pool import ConvThenPoolReLU
    rng = np.random.default_rng(3)
    conv = nn.Conv2d(3, 5, 3, padding=1, layout=layout, rng=1, dtype=np.float64)
    net = nn.Sequential(conv, nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1, layout=layout))
    assert isinstance(net._execution_steps()[0], ConvThenPoolReLU)
    x = rng.standard_normal((2, 7, 9, 3) if layout == "NHWC" else (2, 3, 7, 9))
    y = net.forward(x.copy())
    g = rng.standard_normal(y.shape)
    gx = net.backward(g.copy())
    grads = [a.copy() for a in net.grads()]
    h = x.copy()
    for layer in net.children:
        h = layer.forward(h)
    np.testing.assert_array_equal(h, y)
    ref = g.copy()
    for layer in reversed(net.children):
        ref = layer.backward(ref)
    np.testing.assert_array_equal(gx, ref)
    np.testing.assert_array_equal(grads[0], conv.gweight)
    np.testing.assert_allclose(grads[1], conv.gbias, rtol=1e-12, atol=1e-15)
    conv.need_input_grad = False
    net.forward(x.copy())
    assert net.backward(g.copy()) is None
