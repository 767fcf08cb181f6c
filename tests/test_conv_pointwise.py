"""Pointwise convs (1x1, stride 1, no padding) whose batch is one row-major matrix: every
NHWC one, and NCHW with H*W == 1.  They run as one GEMM over the N*H*W rows in every
direction (csrc/aekernels/conv_pointwise.hpp): row tiles of the forward / backward-input
(with the bias in the stores), and a backward-filter reduced in chunks fixed by the shape
(partials added in chunk order) with output blocks along the larger side of the weight.
NCHW forward / backward-input with H*W > 1 are one GEMM too, the images side by side as
its N*H*W columns (tiles that straddle two images are stored through a buffer).

The cases cover H*W of 1, 3x5 and 7x7, groups (column offsets of the one matrix), batch
1, odd channel counts (edge tiles on both sides), more rows than one filter chunk, and
NCHW with H*W == 1 (OIHW weight) next to NCHW with H*W > 1 (the column GEMM; a per-image backward-filter), and
few channels (NCHW with H*W == 1 before the direct kernels, NHWC after them).  Run
this file under AEKERNELS_ISA=generic, avx2 and avx512 (each has its own register tile)."""
import functools

import numpy as np
import pytest

import aekernels
import helpers as H
import reference as R

DTYPES = [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64")]

# (layout, N, C, H, W, K, groups): a forward conv2d from C to K channels
SHAPES = [
    pytest.param(("NHWC", 128, 400, 1, 1, 120, 1), id="nhwc_lenet_fc_400to120"),
    pytest.param(("NCHW", 128, 400, 1, 1, 120, 1), id="nchw_hw1_400to120"),
    pytest.param(("NHWC", 6, 37, 3, 5, 29, 1), id="nhwc_3x5_odd"),
    pytest.param(("NHWC", 5, 64, 7, 7, 48, 1), id="nhwc_7x7"),
    pytest.param(("NHWC", 3, 24, 7, 7, 18, 3), id="nhwc_7x7_groups3"),
    pytest.param(("NHWC", 4, 33, 3, 5, 22, 11), id="nhwc_groups11_3to2"),
    pytest.param(("NCHW", 9, 40, 1, 1, 30, 2), id="nchw_hw1_groups2"),
    pytest.param(("NHWC", 1, 19, 3, 5, 45, 1), id="nhwc_batch1"),
    pytest.param(("NCHW", 1, 31, 1, 1, 17, 1), id="nchw_hw1_batch1"),
    pytest.param(("NHWC", 2, 9, 1, 1, 300, 1), id="nhwc_wide_out"),
    pytest.param(("NCHW", 257, 8, 1, 1, 3, 1), id="nchw_hw1_few_out"),
    pytest.param(("NHWC", 4500, 21, 1, 1, 10, 1), id="nhwc_rows_in_four_chunks"),
    pytest.param(("NHWC", 90, 16, 7, 7, 12, 2), id="nhwc_7x7_chunks_groups2"),
    pytest.param(("NCHW", 3, 20, 3, 5, 12, 2), id="nchw_3x5_groups2"),
    # few channels: NCHW with H*W == 1 takes the GEMM before the direct kernels, NHWC
    # keeps them for forward / backward-filter (backward-input has none for NHWC)
    pytest.param(("NCHW", 70, 64, 1, 1, 2, 1), id="nchw_hw1_to2"),
    pytest.param(("NCHW", 33, 2, 1, 1, 64, 1), id="nchw_hw1_from2"),
    pytest.param(("NHWC", 9, 3, 3, 5, 16, 1), id="nhwc_from3_direct"),
    # NCHW with H*W > 1: the images side by side as the columns of one GEMM, register
    # tiles straddling two images, column items of whole tiles
    pytest.param(("NCHW", 5, 37, 3, 7, 29, 1), id="nchw_3x7_odd"),
    pytest.param(("NCHW", 3, 24, 7, 7, 18, 3), id="nchw_7x7_groups3"),
    pytest.param(("NCHW", 1, 19, 5, 9, 45, 1), id="nchw_batch1"),
    pytest.param(("NCHW", 9, 16, 11, 13, 20, 1), id="nchw_1287_columns"),
    pytest.param(("NCHW", 4, 64, 7, 7, 64, 2), id="nchw_7x7_groups2"),
    # 8x8 pixels fill whole register tiles on every ISA: items are images (or parts)
    pytest.param(("NCHW", 3, 20, 8, 8, 24, 1), id="nchw_8x8_items_per_image"),
]


def _shape_args(shape):
    layout, n, c, h, w, k, g = shape
    return layout, (n, c, h, w), (k, c // g, 1, 1), g


@functools.lru_cache(maxsize=None)
def _case(shape):
    layout, xs, ws, g = _shape_args(shape)
    n, c, h, w = xs
    k = ws[0]
    x, wt, gy = H.randn(xs, 41), H.randn(ws, 42), H.randn((n, k, h, w), 43)
    b, bc = H.randn((k,), 44), H.randn((c,), 45)
    return dict(x=x, w=wt, gy=gy, b=b, bc=bc,
                y=R.conv2d(x, wt, b, groups=g),
                y_bound=R.conv2d(np.abs(x), np.abs(wt), np.abs(b), groups=g),
                gx=R.conv2d_backward_input(gy, wt, xs, groups=g),
                gx_bound=R.conv2d_backward_input(np.abs(gy), np.abs(wt), xs, groups=g),
                gw=R.conv2d_backward_filter(x, gy, ws, groups=g),
                gw_bound=R.conv2d_backward_filter(np.abs(x), np.abs(gy), ws, groups=g),
                yt=R.conv_transpose2d(gy, wt, bc, groups=g),
                yt_bound=R.conv_transpose2d(np.abs(gy), np.abs(wt), np.abs(bc), groups=g))


def _inputs(shape, dtype):
    layout = shape[0]
    c = _case(shape)
    return (H.data(c["x"], layout, dtype), H.weight(c["w"], layout, dtype),
            H.data(c["gy"], layout, dtype))


def _run(direction, shape, dtype):
    """(result, reference, bound, reduction length) of one direction, in the layout."""
    layout, xs, ws, g = _shape_args(shape)
    c = _case(shape)
    x, w, gy = _inputs(shape, dtype)
    data = functools.partial(R.from_nchw, layout=layout)
    if direction == "forward":
        y = aekernels.conv2d(x, w, c["b"].astype(dtype), groups=g, layout=layout)
        return y, data(c["y"]), data(c["y_bound"]), ws[1] + 1
    if direction == "forward_no_bias":
        out = H.filled_out(H.shape((xs[0], ws[0]) + xs[2:], layout), dtype)
        y = aekernels.conv2d(x, w, groups=g, layout=layout, out=out)
        assert y is out
        return y, data(c["y"] - c["b"].reshape(1, -1, 1, 1)), data(c["y_bound"]), ws[1]
    if direction == "backward_input":
        out = H.filled_out(x.shape, dtype)
        gx = aekernels.conv2d_backward_input(gy, w, x.shape, groups=g, layout=layout, out=out)
        assert gx is out
        return gx, data(c["gx"]), data(c["gx_bound"]), ws[0] // g
    if direction == "backward_filter":
        out = H.filled_out(w.shape, dtype)
        gw = aekernels.conv2d_backward_filter(x, gy, w.shape, groups=g, layout=layout, out=out)
        assert gw is out
        return (gw, H.weight(c["gw"], layout, np.float64),
                H.weight(c["gw_bound"], layout, np.float64), xs[0] * xs[2] * xs[3])
    # conv_transpose2d: backward-input with the bias (C) added in the row tiles
    y = aekernels.conv_transpose2d(gy, w, c["bc"].astype(dtype), groups=g, layout=layout)
    return y, data(c["yt"]), data(c["yt_bound"]), ws[0] // g + 1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("direction", ["forward", "forward_no_bias", "backward_input",
                                       "backward_filter", "conv_transpose2d"])
def test_matches_reference(native, direction, shape, dtype):
    got, ref, bound, K = _run(direction, shape, dtype)
    H.assert_close(got, ref, dtype, bound=bound, K=K, what=direction)


@pytest.mark.parametrize("shape", SHAPES)
def test_adjoint_identities(native, shape):
    """<conv2d(x, w), g> == <x, backward_input(g, w)> == <w, backward_filter(x, g)> (fp64)."""
    layout, xs, ws, g = _shape_args(shape)
    x, w, gy = _inputs(shape, np.float64)
    y = aekernels.conv2d(x, w, groups=g, layout=layout)
    gx = aekernels.conv2d_backward_input(gy, w, x.shape, groups=g, layout=layout)
    gw = aekernels.conv2d_backward_filter(x, gy, w.shape, groups=g, layout=layout)
    lhs = float(np.vdot(y, gy))
    scale = float(np.vdot(np.abs(y), np.abs(gy))) + 1.0
    assert abs(lhs - float(np.vdot(x, gx))) <= 1e-10 * scale
    assert abs(lhs - float(np.vdot(w, gw))) <= 1e-10 * scale


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [SHAPES[0], SHAPES[1], SHAPES[4], SHAPES[11], SHAPES[12],
                                   SHAPES[-3], SHAPES[-1]])
def test_same_bits_for_any_thread_count(native, shape, dtype):
    """Row tiles and filter output blocks change with the thread count, the filter's
    reduction chunks do not: every element's sums, and so its bits, stay the same."""
    layout, xs, ws, g = _shape_args(shape)
    x, w, gy = _inputs(shape, dtype)
    results = []
    for threads in (1, 2, 3):
        aekernels.set_num_threads(threads)
        results.append((aekernels.conv2d(x, w, groups=g, layout=layout),
                        aekernels.conv2d_backward_input(gy, w, x.shape, groups=g,
                                                        layout=layout),
                        aekernels.conv2d_backward_filter(x, gy, w.shape, groups=g,
                                                         layout=layout)))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)
