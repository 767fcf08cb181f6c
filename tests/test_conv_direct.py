"""Properties of the native direct kernels for convs with few taps (C/groups*kh*kw <= 64,
csrc/aekernels/conv_direct.hpp) that the reference grids do not pin down: the
backward-filter reduction is cut into fixed chunks, so its result does not depend on the
thread count; the forward aligns its stores to the output buffer, which must not change
a single bit of the result; NCHW shapes on both sides of the in-place / tap-planes
choice match the reference."""
import functools

import numpy as np
import pytest

import aekernels
import helpers as H

# (N, C, H, W, K, k, stride, padding, groups): first-layer and depthwise shapes
SHAPES = [
    pytest.param((9, 1, 28, 28, 32, 3, 1, 1, 1), id="ae_enc1_like"),
    pytest.param((5, 3, 30, 29, 16, 3, 2, 1, 1), id="stem_s2_like"),
    pytest.param((4, 6, 13, 17, 12, 3, 1, 1, 6), id="depthwise_mult2"),
]


@functools.lru_cache(maxsize=None)
def _nchw_problem(shape):
    n, c, h, w, k, ks, s, p, g = shape
    x = H.randn((n, c, h, w), 11)
    wt = H.randn((k, c // g, ks, ks), 12)
    oh, ow = (h + 2 * p - ks) // s + 1, (w + 2 * p - ks) // s + 1
    return x, wt, H.randn((n, k, oh, ow), 13)


def _problem(shape, layout, dtype):
    _, _, _, _, _, _, s, p, g = shape
    x, wt, gy = _nchw_problem(shape)
    args = dict(stride=s, padding=p, groups=g, layout=layout)
    return (H.data(x, layout, dtype), H.weight(wt, layout, dtype), H.data(gy, layout, dtype),
            args)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("shape", SHAPES)
def test_backward_filter_same_bits_for_any_thread_count(native, shape, layout, dtype):
    x, w, gy, args = _problem(shape, layout, dtype)
    results = []
    for threads in (1, 2, 3):
        aekernels.set_num_threads(threads)
        results.append(aekernels.conv2d_backward_filter(x, gy, w.shape, **args))
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_same_bits_at_any_output_alignment(native, shape, layout, dtype):
    x, w, _, args = _problem(shape, layout, dtype)
    b = np.linspace(-1, 1, w.shape[0 if layout == "NCHW" else 3]).astype(dtype)
    ref = aekernels.conv2d(x, w, b, **args)
    itemsize = np.dtype(dtype).itemsize
    raw = np.empty(ref.nbytes + 128, np.uint8)
    for offset in range(0, 64, itemsize):
        start = (-raw.ctypes.data) % 64 + offset
        out = raw[start:start + ref.nbytes].view(dtype).reshape(ref.shape)
        out[...] = np.nan
        aekernels.conv2d(x, w, b, **args, out=out)
        np.testing.assert_array_equal(out, ref)


# NCHW shapes on both sides of direct_rows_in_place (conv_direct.hpp): the kernels run
# over the rows buffer row by row (the forward in tiles of up to NVMAX / nv rows, so odd
# row counts leave a shorter last tile) or over tap planes.  Which side a shape takes
# depends on the vector width: run under AEKERNELS_ISA=generic, avx2 and avx512.
# (N, C, H, W, K, (kh, kw), stride, padding, dilation, groups)
ROWS = [
    pytest.param((3, 1, 28, 28, 6, (5, 5), 1, 2, 1, 1), id="lenet_c1"),
    pytest.param((1, 1, 28, 28, 6, (5, 5), 1, 2, 1, 1), id="lenet_c1_batch1"),
    pytest.param((2, 1, 9, 10, 8, (3, 3), 1, 1, 1, 1), id="w10_k8_odd_rows"),
    pytest.param((2, 3, 12, 12, 16, (3, 3), 1, 1, 1, 1), id="w12_k16"),
    pytest.param((2, 1, 15, 28, 32, (5, 5), 1, 2, 1, 1), id="w28_k32"),
    pytest.param((2, 2, 7, 16, 5, (3, 3), 1, 1, 1, 1), id="w16_whole_vector"),
    pytest.param((2, 2, 7, 17, 5, (3, 3), 1, 1, 1, 1), id="w17_one_lane_over"),
    pytest.param((2, 4, 5, 1, 3, (3, 1), 1, (1, 0), 1, 1), id="w1"),
    pytest.param((2, 8, 7, 7, 8, (3, 3), 1, 1, 1, 8), id="depthwise_w7"),
    pytest.param((2, 3, 23, 30, 7, (3, 3), 2, 1, (1, 2), 1), id="stride2_dilated"),
    # f32 AVX-512 backward-filter on tap planes (17 of 32 lanes), more rows per item
    # (70: whole images) than per kernel call (60 within the 256 KB planes budget)
    pytest.param((16, 1, 77, 24, 3, (8, 8), 1, 0, 1, 1), id="planes_several_calls"),
]


def _rows_args(shape):
    _, _, _, _, _, _, s, p, d, g = shape
    return dict(stride=s, padding=p, dilation=d, groups=g)


@functools.lru_cache(maxsize=None)
def _rows_case(shape):
    return H.conv_problem(shape, 51)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", ROWS)
def test_rows_in_place_or_planes_match_reference(native, shape, dtype):
    x, wt, b, gy, y, ybound, gw, gwbound = _rows_case(shape)
    taps = int(np.prod(wt.shape[1:]))
    got = aekernels.conv2d(x.astype(dtype), wt.astype(dtype), b.astype(dtype),
                           **_rows_args(shape))
    H.assert_close(got, y, dtype, bound=ybound, K=taps + 1)
    got = aekernels.conv2d_backward_filter(x.astype(dtype), gy.astype(dtype), wt.shape,
                                           **_rows_args(shape))
    H.assert_close(got, gw, dtype, bound=gwbound, K=y.shape[0] * y.shape[2] * y.shape[3])
