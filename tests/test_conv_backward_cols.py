"""The native NCHW backward-input for many dY channels per group (>= 16) gathered into few
taps (C/groups * kh * kw <= 64): cols = taps x dY by the direct forward kernel over dY
in place, in pieces along whole dY rows, then a gather of cols into dX
(direct_conv_backward_input_cols in csrc/aekernels/conv_direct.hpp).  ae_enc1,
seed_tf_ae and stem_s2 take it; so does conv_transpose2d, with its bias in the gather.

What it special-cases: row tiles of dX (each computing the cols of the dY rows under it),
strides (dX pixels that no tap reaches), padding past the kernel's reach, dilation, groups,
the last vector of dY (read from a padded copy), and the boundaries of the routing
(15 dY channels, 65 taps).  Run this file under AEKERNELS_ISA=generic, avx2 and avx512."""
import functools

import numpy as np
import pytest

import aekernels
import helpers as H
import reference as R

DTYPES = [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64")]

# (N, C, H, W, K, (kh, kw), stride, padding, dilation, groups) of the forward conv2d
SHAPES = [
    pytest.param((2, 1, 28, 28, 32, (3, 3), 1, 1, 1, 1), id="ae_enc1_like"),
    pytest.param((2, 1, 21, 19, 16, (4, 4), 1, 0, 1, 1), id="seed_like_valid_odd"),
    pytest.param((2, 3, 15, 14, 32, (3, 3), 2, 1, 1, 1), id="stem_like_stride2"),
    pytest.param((1, 2, 17, 23, 16, (3, 2), (2, 3), ((2, 0), (1, 1)), (2, 1), 1),
                 id="stride23_dil21_asym_batch1"),
    pytest.param((2, 4, 9, 20, 32, (3, 3), 1, "same", 1, 2), id="groups2_same"),
    pytest.param((1, 1, 9, 1, 16, (3, 1), 1, (1, 0), 1, 1), id="w1_batch1"),
    pytest.param((2, 1, 2, 3, 16, (3, 3), 1, 1, 1, 1), id="image_smaller_than_kernel"),
    pytest.param((1, 1, 150, 200, 16, (3, 3), 1, 1, 1, 1), id="row_tiles"),
    pytest.param((3, 1, 61, 45, 20, (5, 5), 1, 2, 1, 1), id="row_tiles_k5_f64_budget"),
    pytest.param((1, 4, 10, 12, 16, (4, 4), 1, 1, 1, 1), id="taps64"),
    pytest.param((1, 1, 10, 20, 16, (5, 13), 1, (2, 6), 1, 1), id="taps65_other_path"),
    pytest.param((2, 1, 12, 13, 15, (3, 3), 1, 1, 1, 1), id="k15_other_path"),
    pytest.param((2, 1, 6, 7, 16, (2, 2), 1, 2, 1, 1), id="pad_past_reach"),
    pytest.param((2, 1, 11, 10, 16, (2, 2), 3, 0, 1, 1), id="stride3_untouched_pixels"),
    pytest.param((2, 2, 13, 9, 24, (3, 3), 2, 0, 2, 1), id="stride2_dilated_valid"),
]


def _args(shape):
    _, _, _, _, _, _, s, p, d, g = shape
    return dict(stride=s, padding=p, dilation=d, groups=g)


@functools.lru_cache(maxsize=None)
def _case(shape):
    n, c, h, w, k, ks, _, _, _, g = shape
    wt = H.randn((k, c // g) + ks, 42)
    a = _args(shape)
    oh, ow = R.conv2d(np.zeros((1, c, h, w)), wt, **a).shape[2:]
    gy = H.randn((n, k, oh, ow), 41)
    ref = R.conv2d_backward_input(gy, wt, (n, c, h, w), **a)
    bound = R.conv2d_backward_input(np.abs(gy), np.abs(wt), (n, c, h, w), **a)
    return gy, wt, ref, bound


def _reduction(shape, wt):
    k, g = shape[4], shape[9]
    return k // g * int(np.prod(wt.shape[2:]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_backward_input_matches_reference(native, shape, dtype):
    gy, wt, ref, bound = _case(shape)
    out = H.filled_out(shape[:4], dtype)
    gx = aekernels.conv2d_backward_input(gy.astype(dtype), wt.astype(dtype), shape[:4],
                                         **_args(shape), out=out)
    assert gx is out
    H.assert_close(gx, ref, dtype, bound=bound, K=_reduction(shape, wt))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [p for p in SHAPES if p.values[0][7] != "same"])
def test_conv_transpose2d_with_bias_matches_reference(native, shape, dtype):
    """The gather starts each dX row from the transposed conv's bias."""
    gy, wt, _, _ = _case(shape)
    n, c, h, w, k, ks, s, p, d, g = shape
    bias = H.randn((c,), 43)
    kw = dict(stride=s, padding=p, dilation=d, groups=g, output_size=(h, w))
    ref = R.conv_transpose2d(gy, wt, bias, **kw)
    bound = R.conv_transpose2d(np.abs(gy), np.abs(wt), np.abs(bias), **kw)
    y = aekernels.conv_transpose2d(gy.astype(dtype), wt.astype(dtype), bias.astype(dtype), **kw)
    H.assert_close(y, ref, dtype, bound=bound, K=_reduction(shape, wt) + 1)


@pytest.mark.parametrize("shape", SHAPES)
def test_backward_input_adjoint_identity(native, shape):
    """<conv2d(x, w), g> == <x, conv2d_backward_input(g, w)> in float64."""
    gy, wt, _, _ = _case(shape)
    x = H.randn(shape[:4], 44)
    y = aekernels.conv2d(x, wt, **_args(shape))
    gx = aekernels.conv2d_backward_input(gy, wt, x.shape, **_args(shape))
    lhs = float(np.vdot(y, gy))
    scale = float(np.vdot(np.abs(y), np.abs(gy))) + 1.0
    assert abs(lhs - float(np.vdot(x, gx))) <= 1e-10 * scale


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [SHAPES[2], SHAPES[7], SHAPES[8]])
def test_backward_input_same_bits_for_any_thread_count(native, shape, dtype):
    """Row tiles change with the thread count; each dX element's sum order must not."""
    gy, wt, _, _ = _case(shape)
    H.assert_same_bits_for_thread_counts(lambda: aekernels.conv2d_backward_input(
        gy.astype(dtype), wt.astype(dtype), shape[:4], **_args(shape)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_last_vector_of_dy_at_the_end_of_its_buffer(native, dtype):
    """dY a view ending at the end of a larger buffer's page-aligned block: the kernel reads
    whole vectors, and the last one of dY comes from a padded copy (never past dY)."""
    shape = (1, 1, 9, 9, 16, (3, 3), 1, 0, 1, 1)
    gy, wt, ref, bound = _case(shape)
    page = 4096 // np.dtype(dtype).itemsize
    store = np.empty(page * 2, dtype)
    tail = store[page * 2 - gy.size:].reshape(gy.shape)
    tail[...] = gy
    gx = aekernels.conv2d_backward_input(tail, wt.astype(dtype), shape[:4], **_args(shape))
    H.assert_close(gx, ref, dtype, bound=bound, K=_reduction(shape, wt))
