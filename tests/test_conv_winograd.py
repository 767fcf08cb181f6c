"""The native Winograd F(2x2, 3x3) path (csrc/aekernels/conv.hpp, winograd_conv): fp32,
groups 1, 3x3, stride 1, dilation 1, channel counts that fill the channel vectors
(use_winograd), run when aekernels.set_conv_algorithm("winograd").  It computes the conv from 4 x 4 input tiles and clips the 2 x 2 output
tiles at the edges, so odd sizes, tiny images, every padding (the tile gather's zero
fill) and the channel counts at the predicate's edges are checked against the float64
reference with the fp32 tolerance of TESTING.md; forward, backward-input and
conv_transpose2d (the latter two run it with the flipped kernels), both layouts, bias,
each ISA level (child interpreters, AEKERNELS_ISA is read at import)."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import aekernels
import helpers as H
import reference as R
from backends import child_env, package_parent

F32 = np.float32
SIZES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 14, 15]
PADDINGS = [0, 1, 2, ((0, 1), (1, 0)), ((2, 0), (0, 1)), "same"]
# around the channel predicate: 8 / 16 are the vector widths of AVX2 / AVX-512
CHANNELS = [(7, 16), (8, 8), (15, 16), (16, 16), (16, 17), (16, 32), (32, 16), (26, 40),
            (64, 8)]


@pytest.fixture
def winograd(native):
    aekernels.set_conv_algorithm("winograd")  # the conftest fixture restores it


def _pads(padding, h, w):
    return R.resolve_padding(padding, (h, w), (3, 3), (1, 1), (1, 1))


def _valid(h, w, padding):
    (pt, pb), (pl, pr) = _pads(padding, h, w)
    return h + pt + pb >= 3 and w + pl + pr >= 3


def _forward_case(n, c, k, h, w, padding, layout, bias, seed):
    x = H.randn((n, c, h, w), seed)
    wt = H.randn((k, c, 3, 3), seed + 1)
    b = H.randn((k,), seed + 2) if bias else None
    y = aekernels.conv2d(H.data(x, layout, F32), H.weight(wt, layout, F32),
                         None if b is None else b.astype(F32), padding=padding, layout=layout)
    ref = R.conv2d(x, wt, b, padding=padding)
    bound = R.conv2d(np.abs(x), np.abs(wt), None if b is None else np.abs(b), padding=padding)
    H.assert_close(y, R.from_nchw(ref, layout), F32, bound=R.from_nchw(bound, layout),
                   K=c * 9 + 1, what="conv2d")


def _backward_input_case(n, c, k, h, w, padding, layout, seed):
    wt = H.randn((k, c, 3, 3), seed + 1)
    oh, ow = R.conv2d(np.zeros((1, c, h, w)), wt, None, padding=padding).shape[2:]
    gy = H.randn((n, k, oh, ow), seed + 3)
    gx = aekernels.conv2d_backward_input(H.data(gy, layout, F32), H.weight(wt, layout, F32),
                                         H.shape((n, c, h, w), layout), padding=padding,
                                         layout=layout)
    ref = R.conv2d_backward_input(gy, wt, (n, c, h, w), padding=padding)
    bound = R.conv2d_backward_input(np.abs(gy), np.abs(wt), (n, c, h, w), padding=padding)
    H.assert_close(gx, R.from_nchw(ref, layout), F32, bound=R.from_nchw(bound, layout),
                   K=k * 9, what="conv2d_backward_input")


def _size_cases(shift):
    """(h, w, padding) for every h of SIZES, w = another size (never only squares)."""
    cases = []
    for i, h in enumerate(SIZES):
        w = SIZES[(i + shift) % len(SIZES)]
        cases += [pytest.param(h, w, pad, id=f"{h}x{w}-{pad}") for pad in PADDINGS
                  if _valid(h, w, pad)]
    return cases


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("h,w,padding", _size_cases(3))
def test_forward_odd_sizes_and_paddings(winograd, h, w, padding, layout):
    _forward_case(2, 16, 32, h, w, padding, layout, bias=h % 2 == 0, seed=h)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("h,w,padding", _size_cases(5))
def test_backward_input_odd_sizes_and_paddings(winograd, h, w, padding, layout):
    _backward_input_case(2, 16, 32, h, w, padding, layout, seed=100 + h)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("c,k", CHANNELS)
def test_channel_counts_at_the_predicate_edges(winograd, c, k, layout):
    _forward_case(1, c, k, 13, 14, 1, layout, bias=True, seed=c * 1000 + k)
    _backward_input_case(1, c, k, 14, 13, 1, layout, seed=c * 1000 + k)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_wide_channels_and_batch_one(winograd, layout):
    _forward_case(1, 256, 256, 5, 7, "same", layout, bias=True, seed=5)
    _backward_input_case(1, 256, 64, 7, 5, 2, layout, seed=6)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("padding", [0, 1, ((1, 2), (2, 1))], ids=str)
def test_conv_transpose2d_with_bias(winograd, padding, layout):
    # the decoder direction of the autoencoder: 32 -> 16 channels at 14 x 14
    x = H.randn((3, 32, 14, 13), 21)
    wt = H.randn((32, 16, 3, 3), 22)
    b = H.randn((16,), 23)
    y = aekernels.conv_transpose2d(H.data(x, layout, F32), H.weight(wt, layout, F32),
                                   b.astype(F32), padding=padding, layout=layout)
    ref = R.conv_transpose2d(x, wt, b, padding=padding)
    bound = R.conv_transpose2d(np.abs(x), np.abs(wt), np.abs(b), padding=padding)
    H.assert_close(y, R.from_nchw(ref, layout), F32, bound=R.from_nchw(bound, layout),
                   K=32 * 9 + 1, what="conv_transpose2d")


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_integer_valued_float32_is_exact(winograd, layout):
    """TESTING.md: integer-valued fp32 data gives exact results; the transformed weights
    are quarter-integers, exact in fp32 while the sums stay far below 2**22."""
    rng = np.random.default_rng(7)
    x = rng.integers(-1023, 1024, (2, 16, 14, 13)).astype(np.float64)
    wt = rng.integers(-3, 4, (32, 16, 3, 3)).astype(np.float64)
    y = aekernels.conv2d(H.data(x, layout, F32), H.weight(wt, layout, F32), padding=1,
                         layout=layout)
    H.assert_bitwise(y, R.from_nchw(R.conv2d(x, wt, None, padding=1), layout), F32)
    gy = rng.integers(-1023, 1024, (2, 32, 14, 13)).astype(np.float64)
    gx = aekernels.conv2d_backward_input(H.data(gy, layout, F32), H.weight(wt, layout, F32),
                                         H.shape(x.shape, layout), padding=1, layout=layout)
    H.assert_bitwise(gx, R.from_nchw(R.conv2d_backward_input(gy, wt, x.shape, padding=1),
                                     layout), F32)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_adjoint_identity(winograd, layout):
    """<conv2d(x, w), g> == <x, conv2d_backward_input(g, w)> within fp32 rounding."""
    x = H.randn((2, 16, 9, 14), 31)
    wt = H.randn((32, 16, 3, 3), 32)
    xl, wl = H.data(x, layout, F32), H.weight(wt, layout, F32)
    y = aekernels.conv2d(xl, wl, padding=1, layout=layout)
    g = H.data(H.randn(R.to_nchw(y, layout).shape, 33), layout, F32)
    gx = aekernels.conv2d_backward_input(g, wl, xl.shape, padding=1, layout=layout)
    lhs = np.dot(y.ravel().astype(np.float64), g.ravel().astype(np.float64))
    rhs = np.dot(xl.ravel().astype(np.float64), gx.ravel().astype(np.float64))
    scale = np.dot(np.abs(y).ravel().astype(np.float64), np.abs(g).ravel().astype(np.float64))
    assert abs(lhs - rhs) <= 2 * 145 * 2.0 ** -24 * scale + 1e-6


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_same_bits_for_any_thread_count(winograd, layout):
    """Items are (image, tile rows) writing disjoint outputs: no reductions across threads."""
    x = H.data(H.randn((3, 16, 15, 14), 41), layout, F32)
    wt = H.weight(H.randn((32, 16, 3, 3), 42), layout, F32)
    b = np.linspace(-1, 1, 32).astype(F32)
    gy = H.data(H.randn((3, 32, 15, 14), 43), layout, F32)
    results = []
    for threads in (1, 2, 3):
        aekernels.set_num_threads(threads)
        results.append((aekernels.conv2d(x, wt, b, padding=1, layout=layout),
                        aekernels.conv2d_backward_input(gy, wt, x.shape, padding=1,
                                                        layout=layout)))
    for y, gx in results[1:]:
        np.testing.assert_array_equal(y, results[0][0])
        np.testing.assert_array_equal(gx, results[0][1])


def test_layouts_give_the_same_bits(winograd):
    x = H.randn((2, 16, 11, 14), 51)
    wt = H.randn((32, 16, 3, 3), 52)
    y = [R.to_nchw(aekernels.conv2d(H.data(x, lay, F32), H.weight(wt, lay, F32), padding=1,
                                    layout=lay), lay) for lay in ("NCHW", "NHWC")]
    np.testing.assert_array_equal(y[0], y[1])


_CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    import aekernels, helpers as H, reference as R
    from aekernels import _dispatch
    aekernels.use_backend("native")
    assert aekernels.get_conv_algorithm() == "winograd"
    out = {{"isa": _dispatch.isa()}}
    for (c, k, h, w, pad) in [(16, 32, 14, 14, 1), (32, 16, 7, 9, 0), (8, 24, 5, 3, 2)]:
        x = H.randn((2, c, h, w), 61); wt = H.randn((k, c, 3, 3), 62); b = H.randn((k,), 63)
        for layout in ("NCHW", "NHWC"):
            y = aekernels.conv2d(H.data(x, layout, np.float32), H.weight(wt, layout, np.float32),
                                 b.astype(np.float32), padding=pad, layout=layout)
            ref = R.from_nchw(R.conv2d(x, wt, b, padding=pad), layout)
            bound = R.from_nchw(R.conv2d(np.abs(x), np.abs(wt), np.abs(b), padding=pad), layout)
            H.assert_close(y, ref, np.float32, bound=bound, K=c * 9 + 1)
            gx = aekernels.conv2d_backward_input(y, H.weight(wt, layout, np.float32),
                                                 H.shape(x.shape, layout), padding=pad,
                                                 layout=layout)
            y64 = R.to_nchw(y.astype(np.float64), layout)
            ref = R.from_nchw(R.conv2d_backward_input(y64, wt, x.shape, padding=pad), layout)
            bound = R.from_nchw(R.conv2d_backward_input(np.abs(y64), np.abs(wt), x.shape,
                                                        padding=pad), layout)
            H.assert_close(gx, ref, np.float32, bound=bound, K=k * 9)
    print(json.dumps(out))
""")


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_each_isa_level(winograd, isa):
    tests = os.path.dirname(os.path.abspath(__file__))
    env = child_env()
    env["AEKERNELS_ISA"] = isa
    env["AEKERNELS_CONV_ALGORITHM"] = "winograd"
    proc = subprocess.run([sys.executable, "-c", _CHILD.format(tests=tests)], env=env,
                          cwd=package_parent(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])["isa"]
    assert got == isa or (isa != "generic" and got in ("generic", "avx2"))  # capped by the CPU


def _mixed_magnitudes():
    """Only the corner tap is non-zero, and it only ever meets the small inputs: the exact
    outputs are small, while Winograd's tiles mix in the large neighbours."""
    x = np.where(np.indices((6, 6)).sum(0) % 2 == 1, 1000.0, 1e-3)
    x = np.broadcast_to(x, (1, 16, 6, 6)).copy()
    wt = np.zeros((16, 16, 3, 3))
    wt[:, :, 0, 0] = H.randn((16, 16), 71)
    return x, wt


def test_direct_is_the_default_and_keeps_the_per_output_bound(native):
    if "AEKERNELS_CONV_ALGORITHM" not in os.environ:
        assert aekernels.get_conv_algorithm() == "direct"
    aekernels.set_conv_algorithm("direct")
    x, wt = _mixed_magnitudes()
    y = aekernels.conv2d(x.astype(F32), wt.astype(F32), padding=1)
    bound = R.conv2d(np.abs(x), np.abs(wt), None, padding=1)
    H.assert_close(y, R.conv2d(x, wt, None, padding=1), F32, bound=bound, K=16 * 9)


def test_the_switch_selects_the_path(winograd):
    """Winograd and the direct sum round differently: different bits prove which ran."""
    x = H.randn((2, 16, 14, 14), 81).astype(F32)
    wt = H.randn((32, 16, 3, 3), 82).astype(F32)
    wino = aekernels.conv2d(x, wt, padding=1)
    aekernels.set_conv_algorithm("direct")
    direct = aekernels.conv2d(x, wt, padding=1)
    assert not np.array_equal(wino, direct)
    np.testing.assert_allclose(wino, direct, rtol=1e-4, atol=1e-4)
    x64 = x.astype(np.float64)  # float64 never takes Winograd
    aekernels.set_conv_algorithm("winograd")
    a = aekernels.conv2d(x64, wt.astype(np.float64), padding=1)
    aekernels.set_conv_algorithm("direct")
    np.testing.assert_array_equal(a, aekernels.conv2d(x64, wt.astype(np.float64), padding=1))


@pytest.mark.parametrize("bad", ["fast", "", None, "WINOGRAD", 1])
def test_set_conv_algorithm_refuses_unknown_names(bad):
    before = aekernels.get_conv_algorithm()
    with pytest.raises(ValueError, match="set_conv_algorithm"):
        aekernels.set_conv_algorithm(bad)
    assert aekernels.get_conv_algorithm() == before
