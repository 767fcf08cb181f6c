"""PyTorch cross-check of one full training step: same initial weights, same batch ->
same loss, same gradients, same parameters after the optimiser step.

Covers the conv-AE of DESIGN.md (pool indices feeding unpools, transposed convs), LeNet-5
(cross-entropy, flatten, linear) and the dense AE, in float64 (tight) and float32.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from aekernels import models, nn  # noqa: E402

TOL = {"float64": dict(rtol=1e-9, atol=1e-11), "float32": dict(rtol=2e-3, atol=2e-5)}


def _t(a):
    return torch.tensor(np.array(a), requires_grad=True)


def conv_ae_torch(p, x):
    """The conv AE in torch.functional with our parameter list p (NCHW, OIHW)."""
    w1, b1, w2, b2, w3, b3, w4, b4 = p
    h1 = F.relu(F.conv2d(x, w1, b1, padding=1))
    q1, i1 = F.max_pool2d(h1, 2, return_indices=True)
    h2 = F.relu(F.conv2d(q1, w2, b2, padding=1))
    q2, i2 = F.max_pool2d(h2, 2, return_indices=True)
    u2 = F.max_unpool2d(q2, i2, 2, output_size=h2.shape[-2:])
    d2 = F.relu(F.conv_transpose2d(u2, w3, b3, padding=1))
    u1 = F.max_unpool2d(d2, i1, 2, output_size=h1.shape[-2:])
    return torch.sigmoid(F.conv_transpose2d(u1, w4, b4, padding=1))


def lenet_torch(p, x):
    w1, b1, w2, b2, w3, b3, w4, b4, w5, b5 = p
    h = F.max_pool2d(F.relu(F.conv2d(x, w1, b1, padding=2)), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, w2, b2)), 2)
    h = h.flatten(1)
    h = F.relu(F.linear(h, w3, b3))
    h = F.relu(F.linear(h, w4, b4))
    return F.linear(h, w5, b5)


def dense_torch(p, x):
    w1, b1, w2, b2, w3, b3, w4, b4 = p
    h = F.relu(F.linear(x, w1, b1))
    c = F.linear(h, w2, b2)
    h = F.relu(F.linear(c, w3, b3))
    return torch.sigmoid(F.linear(h, w4, b4))


def _batch(shape, seed, dtype):
    return np.random.default_rng(seed).random(shape).astype(dtype)


def _check_step(model, torch_fn, x, target, loss_fn, dtype, steps=2):
    tol = TOL[dtype]
    params = [_t(p) for p in model.net.params()]
    opt = torch.optim.Adam(params, lr=model.lr)
    for step in range(steps):
        # ours
        out = model.net.forward(x.copy())
        loss = model.loss.forward(out, target)
        model.net.backward(model.loss.backward())
        grads = [g.copy() for g in model.net.grads()]
        model.optimizer.step()
        # torch
        opt.zero_grad()
        tout = torch_fn(params, torch.from_numpy(x))
        tl = loss_fn(tout, torch.from_numpy(target))
        tl.backward()
        np.testing.assert_allclose(out, tout.detach().numpy(), **tol, err_msg=f"step {step}: output")
        assert loss == pytest.approx(tl.item(), rel=tol["rtol"] * 10, abs=tol["atol"])
        for i, (g, tp) in enumerate(zip(grads, params)):
            np.testing.assert_allclose(g, tp.grad.numpy(), rtol=tol["rtol"] * 5,
                                       atol=tol["atol"] * 5 + 1e-9 * (dtype == "float32"),
                                       err_msg=f"step {step}: gradient {i} {g.shape}")
        opt.step()
        for i, (p, tp) in enumerate(zip(model.net.params(), params)):
            np.testing.assert_allclose(p, tp.detach().numpy(), **tol,
                                       err_msg=f"step {step}: parameter {i} after Adam")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_conv_ae_step_matches_torch(dtype):
    model = models.conv_ae(seed=3, dtype=dtype)
    x = _batch((8, 1, 12, 12), 0, dtype)
    _check_step(model, conv_ae_torch, x, x.copy(), F.mse_loss, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_lenet5_step_matches_torch(dtype):
    model = models.lenet5(seed=4, dtype=dtype, image_size=16, crop=0)
    x = _batch((6, 1, 16, 16), 1, dtype)
    y = np.random.default_rng(2).integers(0, 10, 6)
    _check_step(model, lenet_torch, x, y, F.cross_entropy, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_dense_ae_step_matches_torch(dtype):
    model = models.dense_ae(seed=5, dtype=dtype, input_dim=64, hidden=32, code=8)
    x = _batch((10, 64), 3, dtype)
    _check_step(model, dense_torch, x, x.copy(), F.mse_loss, dtype)


def test_sgd_momentum_matches_torch():
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(5)
    p, g = p0.copy(), np.zeros(5)
    opt = nn.SGD([p], [g], lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)
    tp = torch.tensor(p0, requires_grad=True)
    topt = torch.optim.SGD([tp], lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)
    for step in range(3):
        gv = rng.standard_normal(5)
        g[...] = gv
        opt.step()
        tp.grad = torch.tensor(gv)
        topt.step()
        np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-12)


def test_batchnorm2d_nhwc_matches_torch():
    bn = nn.BatchNorm2d(3, layout="NHWC", dtype=np.float64)
    tbn = torch.nn.BatchNorm2d(3).double()
    x = np.random.default_rng(0).standard_normal((4, 5, 5, 3)) * 2 + 1
    g = np.random.default_rng(1).standard_normal(x.shape)
    y = bn.forward(x.copy())
    gx = bn.backward(g.copy())
    tx = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=True)
    ty = tbn(tx)
    ty.backward(torch.tensor(g.transpose(0, 3, 1, 2).copy()))
    np.testing.assert_allclose(y, ty.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gx, tx.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(bn.gweight, tbn.weight.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(bn.running_var, tbn.running_var.numpy(), rtol=1e-10)
    bn.eval(), tbn.eval()
    np.testing.assert_allclose(bn.forward(x.copy()),
                               tbn(torch.tensor(x.transpose(0, 3, 1, 2).copy())).detach().numpy()
                               .transpose(0, 2, 3, 1), rtol=1e-10, atol=1e-12)
