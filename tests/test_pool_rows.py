"""The NCHW row kernels of the native pooling backend on rows long enough for their vector
paths, vs the float64 reference:

* stride-2 forward rows (K = 2 or 3, dilation 1): max and average pooling take 4 output
  columns per step in vector extensions, the last step shifted back to the row's end;
  short rows (fewer than 4 interior columns) stay scalar;
* average-pool backward, gather form (each gx row sums the divided gradient rows of the
  windows covering it; stride-2 rows as their even and odd columns) and the streaming
  kernel of 2 x 2 / stride 2 without padding (ceil_mode and odd sizes included).

Sizes run through odd and even widths, 1..4 interior columns and ceil_mode; the data has
ties, NaN and -inf for max pooling.  Average pooling must also be bitwise the same in
both layouts (both sum in the same order) and for any thread count.
"""
import zlib

import numpy as np
import pytest

import aekernels
import helpers as H
import reference as R
from cases import AVG_OPTIONS

# (H, W): widths giving 1..5+ interior stride-2 columns, odd and even
SIZES = [(9, 10), (7, 11), (12, 13), (5, 17), (16, 30), (3, 57)]

GEOMS = [
    pytest.param(dict(kernel_size=3, stride=2, padding=1), id="k3s2p1"),
    pytest.param(dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), id="k3s2p1_ceil"),
    pytest.param(dict(kernel_size=3, stride=2), id="k3s2"),
    pytest.param(dict(kernel_size=3, stride=2, ceil_mode=True), id="k3s2_ceil"),
    pytest.param(dict(kernel_size=2, stride=2), id="k2s2"),
    pytest.param(dict(kernel_size=2, stride=2, ceil_mode=True), id="k2s2_ceil"),
    pytest.param(dict(kernel_size=2, stride=2, padding=1), id="k2s2p1"),
    pytest.param(dict(kernel_size=2, stride=2, padding=1, ceil_mode=True), id="k2s2p1_ceil"),
]

# further geometries for the backward gather kernel (strides 1 and 3, dilation)
BWD_GEOMS = GEOMS + [
    pytest.param(dict(kernel_size=3, stride=1, padding=1), id="k3s1p1"),
    pytest.param(dict(kernel_size=2, stride=1), id="k2s1"),
    pytest.param(dict(kernel_size=2, stride=3, ceil_mode=True), id="k2s3_ceil"),
    pytest.param(dict(kernel_size=3, stride=2, padding=2, dilation=2), id="k3s2p2d2"),
    pytest.param(dict(kernel_size=(3, 2), stride=(1, 2), padding=((1, 0), (0, 1))),
                 id="rect_asym"),
]


def _seed(*parts):
    return zlib.crc32(repr(parts).encode())


def _window(geom):
    k = R.pair(geom["kernel_size"])
    return k[0] * k[1]


@pytest.mark.parametrize("hw", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("geom", GEOMS)
def test_max_pool2d_stride2_rows_bitwise(native, dtype, layout, geom, hw):
    for n, c, data in ((2, 3, "randn"), (1, 1, "tricky")):
        shape = (n, c) + hw
        seed = _seed(geom, hw, data)
        x = H.randn(shape, seed) if data == "randn" else H.tricky(shape, seed)
        H.check_max_pool2d(x, layout, dtype, data, **geom)


@pytest.mark.parametrize("geom", [dict(kernel_size=3, stride=2, padding=1),
                                  dict(kernel_size=2, stride=2, padding=1)],
                         ids=["k3s2p1", "k2s2p1"])
def test_max_pool2d_stride2_rows_first_nan_payload_is_kept(native, dtype, geom):
    """Two NaNs with different payloads in every window: the first in row-major order is
    returned bit for bit (the vector rows select values, they do not compute them)."""
    bits = np.uint32 if dtype == np.float32 else np.uint64
    first = np.array([0x7FC00001 if bits == np.uint32 else 0x7FF8000000000001], bits)
    second = np.array([0x7FC00002 if bits == np.uint32 else 0x7FF8000000000002], bits)
    x = np.zeros((1, 1, 5, 40), dtype)
    x[0, 0, 1:3, :] = first.view(dtype)[0]         # rows 1, 2: the first NaN of each window
    x[0, 0, 3:, :] = second.view(dtype)[0]
    y, idx = aekernels.max_pool2d(x, **geom, return_indices=True)
    y_ref, i_ref = R.max_pool2d(x.astype(np.float64), **geom)
    np.testing.assert_array_equal(idx, i_ref)
    expect = np.where(i_ref // 40 >= 3, second[0], first[0])
    expect = np.where(np.isnan(y_ref), expect, y.view(bits))
    np.testing.assert_array_equal(y.view(bits), expect)


def _both_layouts(fn, a_nchw, dtype):
    """fn(data, layout) in NCHW and NHWC; asserts bitwise equality, returns NCHW."""
    out = fn(H.data(a_nchw, "NCHW", dtype), "NCHW")
    out_cl = fn(H.data(a_nchw, "NHWC", dtype), "NHWC")
    np.testing.assert_array_equal(out, out_cl.transpose(0, 3, 1, 2),
                                  err_msg="NCHW and NHWC results differ")
    return out


@pytest.mark.parametrize("opts", AVG_OPTIONS)
@pytest.mark.parametrize("hw", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("geom", GEOMS)
def test_avg_pool2d_stride2_rows(native, dtype, geom, hw, opts):
    x = H.randn((2, 3) + hw, _seed(geom, hw, "avg"))
    y_ref = R.avg_pool2d(x, **geom, **opts)
    bound = R.avg_pool2d(np.abs(x), **geom, **opts)
    y = _both_layouts(lambda a, lay: aekernels.avg_pool2d(a, **geom, **opts, layout=lay),
                      x, dtype)
    H.assert_close(y, y_ref, dtype, bound=bound, K=_window(geom) + 1, what="avg_pool2d")


@pytest.mark.parametrize("opts", AVG_OPTIONS)
@pytest.mark.parametrize("hw", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("geom", BWD_GEOMS)
def test_avg_pool2d_backward_gather_and_2x2(native, dtype, geom, hw, opts):
    for n, c in ((2, 3), (1, 1)):
        x_shape = (n, c) + hw
        y_shape = R.avg_pool2d(np.zeros(x_shape), **geom, **opts).shape
        gy = H.randn(y_shape, _seed(geom, hw, n, "gy"))
        gx_ref = R.avg_pool2d_backward(gy, x_shape, **geom, **opts)
        bound = R.avg_pool2d_backward(np.abs(gy), x_shape, **geom, **opts)
        gx = _both_layouts(
            lambda a, lay: aekernels.avg_pool2d_backward(a, H.shape(x_shape, lay), **geom,
                                                         **opts, layout=lay), gy, dtype)
        H.assert_close(gx, gx_ref, dtype, bound=bound, K=_window(geom) + 1,
                       what="avg_pool2d_backward")


@pytest.mark.parametrize("geom", [dict(kernel_size=2, stride=2, ceil_mode=True),
                                  dict(kernel_size=3, stride=2, padding=1)],
                         ids=["k2s2_ceil", "k3s2p1"])
def test_avg_pool2d_backward_same_for_any_thread_count(native, dtype, geom):
    # large enough (> 32K elements) for the kernels to use more than one thread
    gy = H.data(H.randn((8, 16, 8, 15), _seed(geom, "threads")), "NCHW", dtype)
    x_shape = (8, 16, 15, 29)
    results = []
    for nt in (1, 2, 3):
        aekernels.set_num_threads(nt)
        results.append(aekernels.avg_pool2d_backward(gy, x_shape, **geom))
    for r in results[1:]:
        np.testing.assert_array_equal(results[0], r, strict=True)


def test_avg_pool2d_backward_2x2_overwrites_every_element(native, dtype):
    # floor mode with odd sizes leaves the last row and column out of every window: 0
    gy = H.data(H.randn((2, 3, 3, 4), 7), "NCHW", dtype)
    out = H.filled_out((2, 3, 7, 9), dtype)
    gx = aekernels.avg_pool2d_backward(gy, (2, 3, 7, 9), 2, out=out)
    assert gx is out
    assert not np.isnan(gx).any()
    assert (gx[:, :, 6, :] == 0).all() and (gx[:, :, :, 8] == 0).all()
