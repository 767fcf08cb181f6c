"""aekernels.interop.torch against PyTorch's own ops.

Oracle: torch.nn.functional (outputs and gradients), torch.autograd.gradcheck /
gradgradcheck in fp64, torch.library.opcheck (schema, autograd registration, fake
tensor, AOT dispatch with dynamic shapes), and the NumPy API for error messages.
Runs on the default backend (native in CI).
"""
from __future__ import annotations

import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

import aekernels  # noqa: E402
from aekernels.interop import torch as aet  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _one_kernel_thread():
    """Tiny shapes, thousands of calls (gradcheck): one thread avoids OpenMP hand-offs."""
    before = aekernels.get_num_threads()
    aekernels.set_num_threads(1)
    yield
    aekernels.set_num_threads(before)


def randn(*shape, dtype=torch.float64, seed=0, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype).requires_grad_(requires_grad)


def distinct(*shape, dtype=torch.float64, seed=0, requires_grad=False):
    """Distinct values (no ties in max pooling), exact in float32."""
    g = torch.Generator().manual_seed(seed)
    n = int(np.prod(shape))
    v = (torch.randperm(n, generator=g).to(dtype) / 8.0 - n / 16.0).reshape(shape)
    return v.requires_grad_(requires_grad)


def tol(dtype):
    return dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-4)


def assert_same_fn(ours, theirs, inputs, dtype, grad_seed=7):
    """Outputs and input gradients of ``ours(*inputs)`` equal ``theirs(*inputs)``."""
    inputs = [t.detach().clone().requires_grad_(t.is_floating_point()) for t in inputs]
    y, yr = ours(*inputs), theirs(*inputs)
    y = y[0] if isinstance(y, tuple) else y
    yr = yr[0] if isinstance(yr, tuple) else yr
    assert y.shape == yr.shape and y.dtype == yr.dtype
    torch.testing.assert_close(y, yr, **tol(dtype))
    g = randn(*y.shape, dtype=dtype, seed=grad_seed)
    diff = [t for t in inputs if t.requires_grad]
    ga = torch.autograd.grad(y, diff, g)
    gr = torch.autograd.grad(yr, diff, g)
    for a, r in zip(ga, gr):
        torch.testing.assert_close(a, r, **tol(dtype))


DTYPES = [torch.float32, torch.float64]
DT_IDS = ["f32", "f64"]

# (x shape, weight shape, bias?, kwargs): kwargs valid for both F.conv2d and aet.conv2d
CONV_CASES = [
    ((2, 3, 9, 8), (4, 3, 3, 3), True, {}),
    ((2, 4, 9, 8), (6, 2, 3, 3), True, dict(stride=2, padding=1, groups=2)),
    ((1, 3, 11, 10), (5, 3, 3, 2), False, dict(padding="same", dilation=2)),
    ((2, 2, 7, 9), (3, 2, 4, 4), True, dict(stride=(2, 3), padding=(1, 2))),
    ((2, 4, 8, 8), (4, 1, 3, 3), True, dict(padding=1, groups=4)),          # depthwise
    ((3, 6, 6), (2, 3, 1, 1), True, dict(padding="valid")),                  # batch of one, 1x1
    ((2, 1, 28, 28), (8, 1, 5, 5), True, dict(padding=2)),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("xs,ws,has_bias,kw", CONV_CASES)
def test_conv2d_matches_functional(xs, ws, has_bias, kw, dtype):
    x, w = randn(*xs, dtype=dtype, seed=1), randn(*ws, dtype=dtype, seed=2)
    inputs = [x, w] + ([randn(ws[0], dtype=dtype, seed=3)] if has_bias else [])
    assert_same_fn(lambda *a: aet.conv2d(*a, **kw), lambda *a: F.conv2d(*a, **kw), inputs, dtype)


# (x, weight (Cin, Cout/g, kh, kw), bias?, kwargs for F.conv_transpose2d / aet.conv_transpose2d)
CONVT_CASES = [
    ((2, 4, 5, 6), (4, 3, 3, 3), True, {}),
    ((2, 4, 5, 6), (4, 3, 3, 3), True, dict(stride=2, padding=1, output_padding=1)),
    ((2, 4, 5, 5), (4, 2, 3, 3), True, dict(stride=2, groups=2, dilation=2, output_padding=1)),
    ((2, 3, 4, 5), (3, 2, 2, 3), False, dict(stride=(2, 3), padding=(1, 0))),
    # output_padding >= stride (allowed as dilation > stride): extra rows see zero input
    ((2, 3, 5, 4), (3, 2, 3, 3), True, dict(stride=1, dilation=3, output_padding=2)),
    ((3, 4, 4), (3, 2, 2, 2), True, dict(stride=2)),                          # batch of one
]


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("xs,ws,has_bias,kw", CONVT_CASES)
def test_conv_transpose2d_matches_functional(xs, ws, has_bias, kw, dtype):
    x, w = randn(*xs, dtype=dtype, seed=4), randn(*ws, dtype=dtype, seed=5)
    inputs = [x, w] + ([randn(ws[1] * kw.get("groups", 1), dtype=dtype, seed=6)] if has_bias else [])
    assert_same_fn(lambda *a: aet.conv_transpose2d(*a, **kw),
                   lambda *a: F.conv_transpose2d(*a, **kw), inputs, dtype)


def test_conv_transpose2d_output_size_matches_module():
    torch.manual_seed(0)
    ref = torch.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, dtype=torch.float64)
    ours = aet.ConvTranspose2d(3, 2, 3, stride=2, padding=1, dtype=torch.float64)
    ours.load_state_dict(ref.state_dict())
    x = randn(2, 3, 5, 5, seed=8)
    for size in [(9, 9), (10, 10), (2, 2, 10, 9)]:
        torch.testing.assert_close(ours(x, output_size=size), ref(x, output_size=size),
                                   rtol=1e-10, atol=1e-10)


MAXPOOL_CASES = [
    (2, 3, 8, 8, dict(kernel_size=2)),
    (2, 3, 9, 9, dict(kernel_size=3, stride=2, padding=1)),
    (2, 2, 10, 9, dict(kernel_size=3, stride=2, ceil_mode=True)),
    (1, 2, 11, 11, dict(kernel_size=(3, 2), stride=(2, 1), dilation=2, padding=(1, 1))),
    (2, 7, 7, None, dict(kernel_size=2, stride=1)),                         # batch of one
]


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", MAXPOOL_CASES)
def test_max_pool2d_matches_functional(case, dtype):
    *shape, kw = case
    x = distinct(*[s for s in shape if s is not None], dtype=dtype, seed=9)
    y, idx = aet.max_pool2d(x, return_indices=True, **kw)
    yr, idxr = F.max_pool2d(x, return_indices=True, **kw)
    assert torch.equal(y, yr) and torch.equal(idx, idxr) and idx.dtype == torch.int64
    assert_same_fn(lambda a: aet.max_pool2d(a, **kw), lambda a: F.max_pool2d(a, **kw), [x], dtype)


AVGPOOL_CASES = [
    (2, 3, 8, 8, dict(kernel_size=2)),
    (2, 3, 9, 9, dict(kernel_size=3, stride=2, padding=1)),
    (2, 3, 9, 9, dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    (2, 2, 10, 9, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (2, 2, 10, 9, dict(kernel_size=(3, 2), stride=(1, 2), divisor_override=5)),
    (3, 7, 7, None, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                         count_include_pad=False)),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", AVGPOOL_CASES)
def test_avg_pool2d_matches_functional(case, dtype):
    *shape, kw = case
    x = randn(*[s for s in shape if s is not None], dtype=dtype, seed=10)
    assert_same_fn(lambda a: aet.avg_pool2d(a, **kw), lambda a: F.avg_pool2d(a, **kw), [x], dtype)


UNPOOL_CASES = [
    ((2, 3, 8, 8), dict(kernel_size=2), None),
    ((2, 3, 9, 9), dict(kernel_size=2), (9, 9)),
    ((2, 2, 9, 9), dict(kernel_size=3, stride=2, padding=1), None),
    ((2, 2, 10, 10), dict(kernel_size=3, stride=2, padding=1), (10, 10)),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("shape,kw,output_size", UNPOOL_CASES)
def test_max_unpool2d_matches_functional(shape, kw, output_size, dtype):
    x = distinct(*shape, dtype=dtype, seed=11)
    v, idx = F.max_pool2d(x, return_indices=True, **kw)
    kw_u = {k: kw[k] for k in ("kernel_size", "stride", "padding") if k in kw}
    y = aet.max_unpool2d(v, idx, output_size=output_size, **kw_u)
    yr = F.max_unpool2d(v, idx, output_size=output_size, **kw_u)
    assert torch.equal(y, yr)
    assert_same_fn(lambda a: aet.max_unpool2d(a, idx, output_size=output_size, **kw_u),
                   lambda a: F.max_unpool2d(a, idx, output_size=output_size, **kw_u),
                   [v], dtype)


# ---------------------------------------------------------------------------------
# gradcheck / gradgradcheck / opcheck on every registered op


def _op_cases():
    """(op name, args for the raw torch.ops.aekernels op) in fp64."""
    x = randn(2, 4, 7, 6, seed=20)
    w = randn(6, 2, 3, 3, seed=21)
    b = randn(6, seed=22)
    wt = randn(4, 3, 3, 3, seed=23)          # conv_transpose: (Cin, Cout/g, kh, kw), groups 1
    bt = randn(3, seed=24)
    xp = distinct(2, 3, 7, 8, seed=25)
    v, idx = F.max_pool2d(xp, 2, return_indices=True)
    return [
        ("conv2d", (x, w, b, [2, 1], "explicit", [1, 0, 2, 1], [1, 1], 2)),
        ("conv2d", (x, w[:, :, :2], None, [1, 1], "same", [], [2, 1], 2)),
        ("conv_transpose2d", (x, wt, bt, [2, 2], "explicit", [1, 1, 0, 1], [1, 0], [1, 1], 1, None)),
        ("conv_transpose2d", (x, wt, None, [1, 1], "explicit", [0, 0, 0, 0], [0, 0], [3, 2], 1,
                              [15, 11])),
        ("max_pool2d_with_indices", (xp, [3, 2], [2, 2], "explicit", [1, 1, 0, 1], [1, 1], True)),
        ("max_pool2d_with_indices", (xp, [2, 2], None, "same", [], [1, 2], False)),
        ("avg_pool2d", (xp, [3, 3], [2, 2], "explicit", [1, 1, 1, 1], [1, 1], True, False, None)),
        ("avg_pool2d", (xp, [2, 3], None, "valid", [], [2, 1], False, True, 4)),
        ("max_unpool2d", (v, idx, [2, 2], None, "explicit", [0, 0, 0, 0], None)),
        ("max_unpool2d", (v, idx, [2, 2], None, "explicit", [0, 0, 0, 0], [7, 9])),
    ]


OP_CASES = _op_cases()
OP_IDS = [f"{name}-{i}" for i, (name, _) in enumerate(OP_CASES)]


def _diff_args(args):
    return [a.detach().clone().requires_grad_(True)
            if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args]


@pytest.mark.parametrize("name,args", OP_CASES, ids=OP_IDS)
def test_gradcheck(name, args):
    args = _diff_args(args)
    op = getattr(torch.ops.aekernels, name)

    def first_output(*a):
        out = op(*a)
        return out[0] if isinstance(out, tuple) else out

    assert torch.autograd.gradcheck(first_output, args)
    assert torch.autograd.gradgradcheck(first_output, args, fast_mode=True)


@pytest.mark.parametrize("name,args", OP_CASES, ids=OP_IDS)
def test_opcheck(name, args):
    torch.library.opcheck(aet.OPS[name], _diff_args(args))
    torch.library.opcheck(aet.OPS[name], [a.detach() if isinstance(a, torch.Tensor) else a
                                          for a in args])


def test_opcheck_backward_ops():
    x, w = randn(2, 4, 7, 6, seed=30), randn(6, 2, 3, 3, seed=31)
    geo = ([2, 1], "explicit", [1, 0, 2, 1], [1, 1], 2)
    gy = randn(*aet.conv2d(x, w, None, [2, 1], ((1, 0), (2, 1)), 1, 2).shape, seed=32)
    xp = distinct(2, 3, 7, 8, seed=33)
    v, idx = F.max_pool2d(xp, 2, return_indices=True)
    gp = randn(*v.shape, seed=34)
    pool = ([3, 3], [2, 2], "explicit", [1, 1, 1, 1], [1, 1], True, False, None)
    ga = randn(*aet.avg_pool2d(xp, 3, 2, 1, True, False).shape, seed=35)
    cases = [
        ("conv2d_backward_input", (gy, w, list(x.shape), *geo)),
        ("conv2d_backward_filter", (x, gy, list(w.shape), *geo)),
        ("conv2d_backward_bias", (gy,)),
        ("max_pool2d_backward", (gp, idx, list(xp.shape))),
        ("max_unpool2d_backward", (xp, idx)),
        ("avg_pool2d_backward", (ga, list(xp.shape), *pool)),
    ]
    for name, args in cases:
        op = getattr(torch.ops.aekernels, name).default
        torch.library.opcheck(op, _diff_args(args))
        assert torch.autograd.gradcheck(lambda *a: op(*a), _diff_args(args)), name


# ---------------------------------------------------------------------------------
# layers: a small CNN trained one step equals the same CNN built from torch layers


def _cnn(mod):
    """conv-pool-conv-pool -> unpool-deconv encoder/decoder plus a classifier head."""

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = mod.Conv2d(1, 4, 3, padding=1)
            self.p1 = mod.MaxPool2d(2, return_indices=True)
            self.c2 = mod.Conv2d(4, 6, 3, padding="same", padding_mode="reflect")
            self.p2 = mod.AvgPool2d(2)
            self.up = mod.MaxUnpool2d(2)
            self.d1 = mod.ConvTranspose2d(4, 1, 3, padding=1)
            self.fc = torch.nn.Linear(6 * 3 * 3, 3)

        def forward(self, x):
            h, idx = self.p1(torch.relu(self.c1(x)))
            code = self.p2(torch.relu(self.c2(h)))
            recon = torch.sigmoid(self.d1(self.up(h, idx, output_size=x.shape[-2:])))
            return self.fc(code.flatten(1)), recon

    return Net()


class _TorchLayers:
    Conv2d = torch.nn.Conv2d
    ConvTranspose2d = torch.nn.ConvTranspose2d
    MaxPool2d = torch.nn.MaxPool2d
    AvgPool2d = torch.nn.AvgPool2d
    MaxUnpool2d = torch.nn.MaxUnpool2d


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_cnn_one_training_step_matches_torch_layers(dtype):
    torch.manual_seed(0)
    ref = _cnn(_TorchLayers).to(dtype)
    ours = _cnn(aet).to(dtype)
    ours.load_state_dict(ref.state_dict())
    assert isinstance(ours.c1, aet.Conv2d) and isinstance(ours.c1, torch.nn.Conv2d)
    x = distinct(8, 1, 13, 13, dtype=dtype, seed=40) / 100
    target = torch.arange(8) % 3
    results = []
    for model in (ref, ours):
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        logits, recon = model(x)
        loss = F.cross_entropy(logits, target) + F.mse_loss(recon, x)
        opt.zero_grad()
        loss.backward()
        grads = {k: p.grad.clone() for k, p in model.named_parameters()}
        opt.step()
        results.append((loss.detach(), grads, {k: v.clone() for k, v in model.state_dict().items()}))
    (l_ref, g_ref, s_ref), (l_ours, g_ours, s_ours) = results
    t = tol(dtype)
    torch.testing.assert_close(l_ours, l_ref, **t)
    for k in g_ref:
        torch.testing.assert_close(g_ours[k], g_ref[k], **t, msg=lambda m: f"grad {k}: {m}")
        torch.testing.assert_close(s_ours[k], s_ref[k], **t, msg=lambda m: f"param {k}: {m}")


def test_compile_traces_through_the_ops():
    """torch.compile (AOT autograd + fake tensors) runs the custom ops and their backward."""
    model = torch.nn.Sequential(aet.Conv2d(2, 3, 3, padding=1), torch.nn.ReLU(),
                                aet.MaxPool2d(2), aet.AvgPool2d(2, ceil_mode=True)).double()
    x = randn(2, 2, 9, 9, seed=41, requires_grad=True)
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    y, yc = model(x), compiled(x)
    torch.testing.assert_close(yc, y, rtol=0, atol=0)
    g = torch.autograd.grad(y.sum(), x)[0]
    gc = torch.autograd.grad(yc.sum(), x)[0]
    torch.testing.assert_close(gc, g, rtol=0, atol=0)


# ---------------------------------------------------------------------------------
# bad input: the same errors as the NumPy API


def _np(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else t


ERROR_CASES = [
    # (torch adapter call, the same call on the NumPy API)
    ("stride0", lambda x, w: aet.conv2d(x, w, stride=0),
     lambda x, w: aekernels.conv2d(x, w, stride=0)),
    ("neg_padding", lambda x, w: aet.conv2d(x, w, padding=-1),
     lambda x, w: aekernels.conv2d(x, w, padding=-1)),
    ("bad_padding_str", lambda x, w: aet.conv2d(x, w, padding="full"),
     lambda x, w: aekernels.conv2d(x, w, padding="full")),
    ("groups", lambda x, w: aet.conv2d(x, w, groups=2),
     lambda x, w: aekernels.conv2d(x, w, groups=2)),
    ("groups_bool", lambda x, w: aet.conv2d(x, w, groups=True),
     lambda x, w: aekernels.conv2d(x, w, groups=True)),
    ("stride_float", lambda x, w: aet.conv2d(x, w, stride=1.5),
     lambda x, w: aekernels.conv2d(x, w, stride=1.5)),
    ("dilation_neg", lambda x, w: aet.conv2d(x, w, dilation=-2),
     lambda x, w: aekernels.conv2d(x, w, dilation=-2)),
    ("too_small", lambda x, w: aet.conv2d(x[..., :2, :2], w),
     lambda x, w: aekernels.conv2d(x[..., :2, :2], w)),
    ("weight_ndim", lambda x, w: aet.conv2d(x, w[0]),
     lambda x, w: aekernels.conv2d(x, w[0])),
    ("x_ndim", lambda x, w: aet.conv2d(x[0, 0], w),
     lambda x, w: aekernels.conv2d(x[0, 0], w)),
    ("int_x", lambda x, w: aet.conv2d(x.long(), w),
     lambda x, w: aekernels.conv2d(x.astype(np.int64), w)),
    ("f16_x", lambda x, w: aet.conv2d(x.half(), w),
     lambda x, w: aekernels.conv2d(x.astype(np.float16), w)),
    ("mixed_dtype", lambda x, w: aet.conv2d(x, w.float()),
     lambda x, w: aekernels.conv2d(x, w.astype(np.float32))),
    ("bias_shape", lambda x, w: aet.conv2d(x, w, torch.zeros(4, dtype=x.dtype)),
     lambda x, w: aekernels.conv2d(x, w, np.zeros(4))),
    ("convt_output_padding", lambda x, w: aet.conv_transpose2d(x, w.transpose(0, 1), stride=2,
                                                               output_padding=2),
     lambda x, w: aekernels.conv_transpose2d(x, w.transpose(1, 0, 2, 3), stride=2,
                                             output_padding=2)),
    ("convt_output_size", lambda x, w: aet.conv_transpose2d(x, w.transpose(0, 1),
                                                            output_size=(40, 40)),
     lambda x, w: aekernels.conv_transpose2d(x, w.transpose(1, 0, 2, 3), output_size=(40, 40))),
    ("pool_kernel0", lambda x, w: aet.max_pool2d(x, 0),
     lambda x, w: aekernels.max_pool2d(x, 0)),
    ("pool_window_in_padding", lambda x, w: aet.max_pool2d(x, 2, 2, padding=3),
     lambda x, w: aekernels.max_pool2d(x, 2, 2, padding=3)),
    ("pool_ceil_int", lambda x, w: aet.max_pool2d(x, 2, ceil_mode=1),
     lambda x, w: aekernels.max_pool2d(x, 2, ceil_mode=1)),
    ("avg_divisor0", lambda x, w: aet.avg_pool2d(x, 2, divisor_override=0),
     lambda x, w: aekernels.avg_pool2d(x, 2, divisor_override=0)),
    ("avg_stride_neg", lambda x, w: aet.avg_pool2d(x, 2, stride=-1),
     lambda x, w: aekernels.avg_pool2d(x, 2, stride=-1)),
    ("unpool_index_high", lambda x, w: aet.max_unpool2d(x, torch.full(x.shape, 2**32 + 3), 2),
     lambda x, w: aekernels.max_unpool2d(x, np.full(x.shape, 2**32 + 3), 2)),
    ("unpool_index_neg", lambda x, w: aet.max_unpool2d(x, torch.full(x.shape, -1), 2),
     lambda x, w: aekernels.max_unpool2d(x, np.full(x.shape, -1), 2)),
    ("unpool_index_dtype", lambda x, w: aet.max_unpool2d(x, torch.zeros(x.shape, dtype=torch.int32), 2),
     lambda x, w: aekernels.max_unpool2d(x, np.zeros(x.shape, np.int32), 2)),
    ("unpool_output_size", lambda x, w: aet.max_unpool2d(x, torch.zeros(x.shape, dtype=torch.int64),
                                                         2, output_size=(30, 30)),
     lambda x, w: aekernels.max_unpool2d(x, np.zeros(x.shape, np.int64), 2, output_size=(30, 30))),
]


@pytest.mark.parametrize("name,ours,theirs", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_bad_input_same_error_as_numpy_api(name, ours, theirs):
    x, w = randn(2, 4, 6, 6, seed=50), randn(3, 4, 3, 3, seed=51)
    with pytest.raises((ValueError, TypeError)) as expected:
        theirs(_np(x), _np(w))
    with pytest.raises(expected.type, match=re.escape(str(expected.value))):
        ours(x, w)


def test_tensor_without_numpy_dtype_or_off_cpu_is_a_type_error():
    x, w = randn(2, 4, 6, 6), randn(3, 4, 3, 3)
    with pytest.raises(TypeError, match=r"x: dtype torch.bfloat16 has no NumPy equivalent"):
        aet.conv2d(x.bfloat16(), w)
    # Under torch.compile the fake implementation raises it; dynamo wraps it in its own
    # TorchRuntimeError whose message quotes ours.
    with pytest.raises(Exception, match=r"x: dtype torch.bfloat16 has no NumPy equivalent"):
        torch.compile(aet.conv2d, backend="aot_eager", fullgraph=True)(x.bfloat16(), w)
    with pytest.raises(TypeError, match=r"x must be a CPU tensor, got one on meta"):
        aet._np(x.to("meta"), "x")


def test_fake_tensor_shapes_equal_real_shapes():
    """The fake implementations (dry run on an empty batch) give the real shapes."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    x = randn(3, 4, 11, 10, seed=60)
    w = randn(6, 2, 3, 2, seed=61)
    wt = randn(4, 3, 3, 2, seed=62)
    calls = [
        lambda x, w, wt: aet.conv2d(x, w, None, 2, "same", 2, 2),
        lambda x, w, wt: aet.conv_transpose2d(x, wt, None, 3, 1, 2, 2, 2),
        lambda x, w, wt: aet.max_pool2d(x, 3, 2, 1, ceil_mode=True, return_indices=True)[1],
        lambda x, w, wt: aet.avg_pool2d(x, (3, 2), 2, ((1, 0), (0, 1)), True, False),
        lambda x, w, wt: aet.max_unpool2d(*aet.max_pool2d(x, 2, return_indices=True), 2,
                                      output_size=(11, 11)),
        lambda x, w, wt: aet.conv2d(x[0], w, None, 1, "valid", 1, 2),
    ]
    for call in calls:
        real = call(x, w, wt)
        with FakeTensorMode() as mode:
            fake = call(mode.from_tensor(x), mode.from_tensor(w), mode.from_tensor(wt))
        assert fake.shape == real.shape and fake.dtype == real.dtype
