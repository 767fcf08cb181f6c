"""The native row-block direct forward for NCHW convs with one or two output channels per
group (up to 1024 taps; fwd_nchw_rows in csrc/aekernels/direct_templates.hpp), and the
stride-1 NCHW backward-input with one or two input channels per group, which runs it with
the weight flipped and its channel axes swapped (conv_direct.hpp); with 3..8 input channels
per group too where that measured faster (f32 AVX-512 with dX rows within one vector; the
kernel then reads the taps one by one).

What the kernel special-cases: tiles of output rows that slide along the kernel rows
(stride and dilation 1, kh <= 5; otherwise the taps are read row by row), whole tiles with
the rows past the end dropped, column blocks of up to 4 vectors with a partial last one,
and a rows buffer whose zeros are kept between items.  Run this file under
AEKERNELS_ISA=generic, avx2 and avx512 (each has its own register plan)."""
import functools

import numpy as np
import pytest

import aekernels
import helpers as H
import reference as R

DTYPES = [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64")]

# (N, C, H, W, K, (kh, kw), stride, padding, dilation, groups) of a forward conv2d
FORWARD = [
    pytest.param((2, 16, 28, 28, 1, (3, 3), 1, 1, 1, 1), id="convae_last_16to1"),
    pytest.param((1, 16, 28, 28, 2, (3, 3), 1, 1, 1, 1), id="batch1_two_outputs"),
    pytest.param((3, 5, 7, 3, 1, (3, 3), 1, "same", 1, 1), id="w3_below_vector_same"),
    pytest.param((2, 4, 13, 37, 2, (3, 5), 1, ((1, 2), (0, 3)), 1, 2), id="groups2_asym_pad"),
    pytest.param((2, 6, 11, 70, 3, (5, 5), 1, 2, 1, 3), id="w70_column_blocks_g3"),
    pytest.param((2, 3, 15, 40, 1, (3, 3), 1, 2, (2, 3), 1), id="dilated_no_slide"),
    pytest.param((2, 3, 11, 9, 2, (3, 3), 2, 1, 1, 1), id="stride2"),
    pytest.param((2, 8, 17, 23, 1, (3, 2), (2, 3), ((2, 0), (1, 1)), (2, 1), 1),
                 id="stride23_dil21_asym"),
    pytest.param((2, 4, 20, 19, 1, (7, 7), 1, 3, 1, 1), id="k7_rows_flattened"),
    pytest.param((1, 40, 9, 10, 1, (5, 5), 1, 2, 1, 1), id="taps1000"),
    pytest.param((1, 41, 9, 10, 1, (5, 5), 1, 2, 1, 1), id="taps1025_other_path"),
    pytest.param((2, 8, 9, 33, 8, (3, 3), 1, 1, 1, 8), id="depthwise"),
    pytest.param((2, 16, 5, 17, 1, (1, 1), 1, 0, 1, 1), id="pointwise_to1"),
    pytest.param((1, 2, 45, 6, 2, (4, 2), 1, ((2, 1), (1, 0)), 1, 1), id="tall_even_kernel"),
    pytest.param((2, 3, 6, 31, 1, (1, 5), 1, (0, 2), 1, 1), id="k1x5"),
    pytest.param((2, 2, 2, 3, 1, (3, 3), 1, 1, 1, 1), id="image_smaller_than_kernel"),
    pytest.param((2, 3, 19, 16, 2, (3, 3), 1, 0, 1, 1), id="w16_valid"),
]

# Forward convs whose backward-input has one or two input channels per group (stride 1
# ones take the flipped forward).
BACKWARD = [
    pytest.param((2, 1, 28, 28, 16, (3, 3), 1, 1, 1, 1), id="convae_last_as_transpose"),
    pytest.param((2, 1, 32, 32, 6, (5, 5), 1, 0, 1, 1), id="lenet_c1_full_pad"),
    pytest.param((1, 2, 13, 37, 6, (3, 5), 1, ((1, 2), (0, 3)), 1, 1), id="two_inputs_asym"),
    pytest.param((2, 4, 9, 20, 6, (3, 3), 1, "same", 1, 2), id="groups2_same"),
    pytest.param((2, 1, 15, 40, 3, (3, 3), 1, 2, (2, 3), 1), id="dilated"),
    pytest.param((2, 1, 6, 7, 2, (2, 2), 1, 2, 1, 1), id="pad_past_reach_other_path"),
    pytest.param((2, 8, 9, 33, 8, (3, 3), 1, 1, 1, 8), id="depthwise"),
    pytest.param((2, 1, 20, 19, 3, (7, 7), 1, 3, 1, 1), id="k7"),
    pytest.param((3, 1, 5, 3, 4, (3, 3), 1, "same", 1, 1), id="w3_same"),
    pytest.param((2, 1, 11, 9, 4, (3, 3), 2, 1, 1, 1), id="stride2_other_path"),
    pytest.param((1, 2, 6, 70, 3, (5, 5), 1, 2, 1, 1), id="w70"),
    pytest.param((1, 1, 9, 10, 40, (5, 5), 1, 2, 1, 1), id="taps1000"),
    pytest.param((1, 1, 9, 10, 41, (5, 5), 1, 2, 1, 1), id="taps1025_other_path"),
    # 3..8 input channels per group: the rows kernel with KH = 1 (f32 AVX-512 and dX rows
    # within one vector only; elsewhere the other path).  H picks the row tails: full
    # tiles of 4, then a half tile (tail <= 2) or a whole one (tail 3).
    pytest.param((2, 6, 14, 14, 16, (5, 5), 1, 0, 1, 1), id="lenet_c3"),
    pytest.param((1, 3, 9, 16, 4, (3, 3), 1, 1, 1, 1), id="c3_w16_vector_batch1"),
    pytest.param((2, 8, 7, 5, 3, (3, 3), 1, "same", 1, 1), id="c8_w5_same_tail3"),
    pytest.param((2, 10, 15, 11, 4, (3, 5), 1, ((1, 2), (0, 3)), 1, 2),
                 id="c5_groups2_asym"),
    pytest.param((2, 4, 13, 13, 3, (3, 3), 1, 2, (2, 3), 1), id="c4_dilated"),
    pytest.param((1, 7, 6, 23, 5, (5, 5), 1, 2, 1, 1), id="c7_w23_other_path"),
    pytest.param((1, 9, 6, 10, 2, (3, 3), 1, 1, 1, 1), id="c9_other_path"),
    pytest.param((2, 6, 9, 1, 3, (3, 1), 1, 0, 1, 1), id="c6_w1"),
]


def _args(shape):
    _, _, _, _, _, _, s, p, d, g = shape
    return dict(stride=s, padding=p, dilation=d, groups=g)


@functools.lru_cache(maxsize=None)
def _forward_case(shape):
    n, c, h, w, k, ks, _, _, _, g = shape
    x, wt = H.randn((n, c, h, w), 21), H.randn((k, c // g) + ks, 22)
    b = H.randn((k,), 23)
    a = _args(shape)
    ref = R.conv2d(x, wt, b, **a)
    bound = R.conv2d(np.abs(x), np.abs(wt), np.abs(b), **a)
    return x, wt, b, ref, bound


@functools.lru_cache(maxsize=None)
def _backward_case(shape):
    n, c, h, w, k, ks, _, _, _, g = shape
    wt = H.randn((k, c // g) + ks, 32)
    a = _args(shape)
    oh, ow = R.conv2d(np.zeros((1, c, h, w)), wt, **a).shape[2:]
    gy = H.randn((n, k, oh, ow), 31)
    ref = R.conv2d_backward_input(gy, wt, (n, c, h, w), **a)
    bound = R.conv2d_backward_input(np.abs(gy), np.abs(wt), (n, c, h, w), **a)
    return gy, wt, ref, bound


def _taps(wt):
    return int(np.prod(wt.shape[1:]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", FORWARD)
def test_forward_matches_reference(native, shape, dtype):
    x, wt, b, ref, bound = _forward_case(shape)
    y = aekernels.conv2d(x.astype(dtype), wt.astype(dtype), b.astype(dtype), **_args(shape))
    H.assert_close(y, ref, dtype, bound=bound, K=_taps(wt) + 1)
    y0 = aekernels.conv2d(x.astype(dtype), wt.astype(dtype), **_args(shape))
    H.assert_close(y0, ref - b.reshape(1, -1, 1, 1), dtype, bound=bound, K=_taps(wt) + 1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", BACKWARD)
def test_backward_input_matches_reference(native, shape, dtype):
    gy, wt, ref, bound = _backward_case(shape)
    n, c, h, w = shape[:4]
    out = H.filled_out((n, c, h, w), dtype)
    gx = aekernels.conv2d_backward_input(gy.astype(dtype), wt.astype(dtype), (n, c, h, w),
                                         **_args(shape), out=out)
    assert gx is out
    H.assert_close(gx, ref, dtype, bound=bound, K=wt.shape[0] * _taps(wt) // wt.shape[1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [p for p in BACKWARD
                                   if p.values[0][6] == 1 and p.values[0][7] != "same"])
def test_conv_transpose2d_with_bias_matches_reference(native, shape, dtype):
    """The routed backward-input adds the transposed conv's bias in its stores."""
    gy, wt, _, _ = _backward_case(shape)
    n, c, h, w, k, ks, s, p, d, g = shape
    bias = H.randn((c,), 33)
    ref = R.conv_transpose2d(gy, wt, bias, stride=s, padding=p, dilation=d, groups=g,
                             output_size=(h, w))
    bound = R.conv_transpose2d(np.abs(gy), np.abs(wt), np.abs(bias), stride=s, padding=p,
                               dilation=d, groups=g, output_size=(h, w))
    y = aekernels.conv_transpose2d(gy.astype(dtype), wt.astype(dtype), bias.astype(dtype),
                                   stride=s, padding=p, dilation=d, groups=g,
                                   output_size=(h, w))
    H.assert_close(y, ref, dtype, bound=bound, K=k // g * _taps(wt) // wt.shape[1] + 1)


@pytest.mark.parametrize("shape", BACKWARD)
def test_backward_input_adjoint_identity(native, shape):
    """<conv2d(x, w), g> == <x, conv2d_backward_input(g, w)> in float64."""
    gy, wt, _, _ = _backward_case(shape)
    n, c, h, w = shape[:4]
    x = H.randn((n, c, h, w), 34)
    y = aekernels.conv2d(x, wt, **_args(shape))
    gx = aekernels.conv2d_backward_input(gy, wt, x.shape, **_args(shape))
    lhs = float(np.vdot(y, gy))
    scale = float(np.vdot(np.abs(y), np.abs(gy))) + 1.0
    assert abs(lhs - float(np.vdot(x, gx))) <= 1e-10 * scale


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [FORWARD[0], FORWARD[3], FORWARD[13]])
def test_forward_same_bits_for_any_thread_count(native, shape, dtype):
    """Row tiles change with the thread count; each output's sum order must not."""
    x, wt, b, _, _ = _forward_case(shape)
    results = []
    for threads in (1, 2, 3):
        aekernels.set_num_threads(threads)
        results.append(aekernels.conv2d(x.astype(dtype), wt.astype(dtype), b.astype(dtype),
                                        **_args(shape)))
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [BACKWARD[3], BACKWARD[13], BACKWARD[16]])
def test_backward_input_same_bits_for_any_thread_count(native, shape, dtype):
    gy, wt, _, _ = _backward_case(shape)
    results = []
    for threads in (1, 2, 3):
        aekernels.set_num_threads(threads)
        results.append(aekernels.conv2d_backward_input(gy.astype(dtype), wt.astype(dtype),
                                                       shape[:4], **_args(shape)))
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_repeated_calls_of_other_geometries_keep_the_zeros(native, dtype):
    """The rows buffer keeps its zeros between items of one geometry: calls alternating
    geometries (and a NaN-free input after one full of large values) must still match."""
    a, b = FORWARD[0].values[0], FORWARD[2].values[0]
    xa, wa, ba, ra, bda = _forward_case(a)
    xb, wb, bb, rb, bdb = _forward_case(b)
    aekernels.set_num_threads(1)
    big = np.full_like(xa, 1e30)
    for _ in range(2):
        aekernels.conv2d(big.astype(dtype), wa.astype(dtype), **_args(a))
        ya = aekernels.conv2d(xa.astype(dtype), wa.astype(dtype), ba.astype(dtype), **_args(a))
        yb = aekernels.conv2d(xb.astype(dtype), wb.astype(dtype), bb.astype(dtype), **_args(b))
        H.assert_close(ya, ra, dtype, bound=bda, K=_taps(wa) + 1)
        H.assert_close(yb, rb, dtype, bound=bdb, K=_taps(wb) + 1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [
    pytest.param((6, 5, 13, 21, 1, (3, 3), 1, 1, 1, 1), id="pad1"),
    pytest.param((5, 3, 9, 40, 2, (5, 3), 1, ((3, 0), (2, 1)), 1, 1), id="asym_pad"),
    pytest.param((5, 2, 7, 18, 1, (2, 4), 2, 1, 1, 1), id="stride2"),
])
def test_whole_images_on_one_thread(native, shape, dtype):
    """One thread, enough images for whole-image items: every image after the first finds
    its zeros in place and only copies its rows (and backward-filter, which fills the same
    buffer once per group, must still see its own zeros afterwards)."""
    x, wt, b, ref, bound = _forward_case(shape)
    aekernels.set_num_threads(1)
    y = aekernels.conv2d(x.astype(dtype), wt.astype(dtype), b.astype(dtype), **_args(shape))
    H.assert_close(y, ref, dtype, bound=bound, K=_taps(wt) + 1)
    gy = H.randn(ref.shape, 35)
    gw = aekernels.conv2d_backward_filter(x.astype(dtype), gy.astype(dtype), wt.shape,
                                          **_args(shape))
    gw_ref = R.conv2d_backward_filter(x, gy, wt.shape, **_args(shape))
    gw_bound = R.conv2d_backward_filter(np.abs(x), np.abs(gy), wt.shape, **_args(shape))
    H.assert_close(gw, gw_ref, dtype, bound=gw_bound, K=int(np.prod(ref.shape[2:])) * x.shape[0])
    y2 = aekernels.conv2d(x.astype(dtype), wt.astype(dtype), b.astype(dtype), **_args(shape))
    np.testing.assert_array_equal(y2, y)
