"""The native direct path for convs with few input channels per group (<= 7) but more
than 64 taps, whose output channels per group fill the vectors (at most 1/4 padding, at
most 64 of them): lenet c3 (6 -> 16 channels, 5x5).  Forward and backward-filter run
along the output channels there (conv_direct.hpp, direct_kvec): NCHW through
fwd_nchw_kvec / bwf_nchw_kvec (direct_templates.hpp), NHWC through fwd_nhwc / bwf_nhwc.

What the kernels special-case: tiles of up to 4 output rows (an odd row count leaves a
shorter last tile), rows cut into even pixel tiles of at most 14 (6 on AVX2, 4 generic),
output channels in blocks of 1-2 vectors with a partial last one, y transposed in
registers (f32 AVX-512) or through a buffer, dY transposed through a 4096-entry buffer in
whole rows or, for rows wider than that, in pieces of one row.  Which shapes take the
path depends on the vector width (lanes), so the grid holds shapes on both sides of the
predicate for each ISA.  Run this file under AEKERNELS_ISA=generic, avx2 and avx512."""
import functools

import numpy as np
import pytest

import aekernels
import helpers as H

DTYPES = [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64")]
LAYOUTS = ["NCHW", "NHWC"]

# (N, C, H, W, K, (kh, kw), stride, padding, dilation, groups) of a forward conv2d
SHAPES = [
    pytest.param((3, 6, 14, 14, 16, (5, 5), 1, 0, 1, 1), id="lenet_c3"),
    pytest.param((1, 6, 14, 14, 16, (5, 5), 1, 0, 1, 1), id="lenet_c3_batch1"),
    pytest.param((2, 6, 11, 14, 16, (5, 5), 1, 0, 1, 1), id="odd_rows"),
    pytest.param((2, 3, 19, 23, 32, (7, 7), 2, 3, 1, 1), id="stem7x7_s2_k32"),
    pytest.param((2, 12, 9, 13, 32, (5, 5), 1, 2, 1, 2), id="groups2"),
    pytest.param((2, 5, 21, 40, 40, (4, 4), 1, ((1, 2), (2, 1)), 1, 1),
                 id="k40_partial_vector_asym_pad"),
    pytest.param((1, 7, 9, 17, 24, (3, 5), 1, "same", (2, 1), 1), id="c7_dilated_same"),
    pytest.param((2, 4, 6, 300, 16, (5, 5), 1, 2, 1, 1), id="w300_dY_in_pieces"),
    pytest.param((1, 4, 5, 70, 64, (5, 5), 1, 2, 1, 1), id="k64_max"),
    pytest.param((2, 6, 5, 5, 16, (5, 5), 1, 0, 1, 1), id="one_output_pixel"),
    pytest.param((2, 3, 12, 10, 16, (5, 5), (2, 3), 1, 1, 1), id="stride23"),
    # the other side of the predicate (on some or all ISAs)
    pytest.param((2, 6, 14, 14, 20, (5, 5), 1, 0, 1, 1), id="k20_other_path_on_avx512"),
    pytest.param((2, 6, 10, 10, 4, (5, 5), 1, 2, 1, 1), id="k4_generic_only"),
    pytest.param((1, 4, 5, 70, 65, (5, 5), 1, 2, 1, 1), id="k65_other_path"),
    pytest.param((2, 8, 9, 9, 16, (3, 3), 1, 1, 1, 1), id="c8_other_path"),
    pytest.param((2, 2, 9, 9, 16, (5, 5), 1, 2, 1, 1), id="taps50_few_tap_path"),
]


def _args(shape, layout):
    _, _, _, _, _, _, s, p, d, g = shape
    return dict(stride=s, padding=p, dilation=d, groups=g, layout=layout)


@functools.lru_cache(maxsize=None)
def _case(shape):
    return H.conv_problem(shape, 41)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_reference(native, shape, layout, dtype):
    x, wt, b, _, ref, bound, _, _ = _case(shape)
    taps = int(np.prod(wt.shape[1:]))
    xd, wd = H.data(x, layout, dtype), H.weight(wt, layout, dtype)
    y = aekernels.conv2d(xd, wd, b.astype(dtype), **_args(shape, layout))
    H.assert_close(y, H.data(ref, layout, np.float64), dtype,
                   bound=H.data(bound, layout, np.float64), K=taps + 1)
    out = H.filled_out(y.shape, dtype)
    y0 = aekernels.conv2d(xd, wd, **_args(shape, layout), out=out)
    assert y0 is out
    H.assert_close(y0, H.data(ref - b.reshape(1, -1, 1, 1), layout, np.float64), dtype,
                   bound=H.data(bound, layout, np.float64), K=taps + 1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", SHAPES)
def test_backward_filter_matches_reference(native, shape, layout, dtype):
    x, wt, _, gy, y, _, ref, bound = _case(shape)
    gw = aekernels.conv2d_backward_filter(H.data(x, layout, dtype), H.data(gy, layout, dtype),
                                          H.weight(wt, layout, dtype).shape,
                                          **_args(shape, layout))
    reduction = y.shape[0] * y.shape[2] * y.shape[3]
    H.assert_close(gw, H.weight(ref, layout, np.float64), dtype,
                   bound=H.weight(bound, layout, np.float64), K=reduction)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", SHAPES[:8])
def test_backward_filter_adjoint_identity(native, shape, layout):
    """<conv2d(x, w), g> == <w, conv2d_backward_filter(x, g)> in float64."""
    x, wt, _, gy, _, _, _, _ = _case(shape)
    xd, wd, gyd = H.data(x, layout, np.float64), H.weight(wt, layout, np.float64), \
        H.data(gy, layout, np.float64)
    y = aekernels.conv2d(xd, wd, **_args(shape, layout))
    gw = aekernels.conv2d_backward_filter(xd, gyd, wd.shape, **_args(shape, layout))
    lhs = float(np.vdot(y, gyd))
    scale = float(np.vdot(np.abs(y), np.abs(gyd))) + 1.0
    assert abs(lhs - float(np.vdot(wd, gw))) <= 1e-10 * scale


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", [SHAPES[0], SHAPES[4], SHAPES[7]])
def test_same_bits_for_any_thread_count(native, shape, layout, dtype):
    """Forward items write disjoint outputs; the backward-filter reduction is cut into
    fixed chunks added in order: neither may depend on the thread count."""
    x, wt, b, gy, _, _, _, _ = _case(shape)
    xd, wd, gyd = H.data(x, layout, dtype), H.weight(wt, layout, dtype), H.data(gy, layout, dtype)
    ys, gws = [], []
    for threads in (1, 2, 3):
        aekernels.set_num_threads(threads)
        ys.append(aekernels.conv2d(xd, wd, b.astype(dtype), **_args(shape, layout)))
        gws.append(aekernels.conv2d_backward_filter(xd, gyd, wd.shape, **_args(shape, layout)))
    for other in ys[1:]:
        np.testing.assert_array_equal(other, ys[0])
    for other in gws[1:]:
        np.testing.assert_array_equal(other, gws[0])
