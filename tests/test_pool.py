"""max_pool2d (+indices, tie and NaN rule), avg_pool2d and their backward kernels vs the
float64 reference, on both backends, both layouts and both dtypes."""
import zlib

import numpy as np
import pytest

import aekernels
import helpers as H
import reference as R
from cases import AVG_OPTIONS, POOL_CASES


def _geom(p):
    return dict(kernel_size=p["kernel_size"], stride=p["stride"], padding=p["padding"],
                dilation=p["dilation"], ceil_mode=p["ceil_mode"])


def _seed(p, *extra):
    return zlib.crc32(repr((sorted(p.items()),) + extra).encode())


def _x(p):
    return (p["N"], p["C"], p["H"], p["W"])


def _window(p):
    k = R.pair(p["kernel_size"])
    return k[0] * k[1]


# ----------------------------------------------------------------------------- max pool


@pytest.mark.parametrize("p", POOL_CASES)
def test_max_pool2d_forward_and_indices_bitwise(backend, dtype, layout, p):
    x = H.randn(_x(p), _seed(p))
    y_ref, i_ref = R.max_pool2d(x, **_geom(p))
    y, idx = aekernels.max_pool2d(H.data(x, layout, dtype), **_geom(p), return_indices=True,
                                  layout=layout)
    H.assert_bitwise(y, R.from_nchw(y_ref, layout), dtype, what="max_pool2d values")
    H.assert_bitwise(idx, R.from_nchw(i_ref, layout), np.int64, what="max_pool2d indices")
    y_only = aekernels.max_pool2d(H.data(x, layout, dtype), **_geom(p), layout=layout)
    assert isinstance(y_only, np.ndarray), "return_indices=False must return only the values"
    H.assert_bitwise(y_only, R.from_nchw(y_ref, layout), dtype, what="max_pool2d values")


@pytest.mark.parametrize("p", POOL_CASES)
def test_max_pool2d_backward(backend, dtype, layout, p):
    x = H.randn(_x(p), _seed(p))
    y_ref, i_ref = R.max_pool2d(x, **_geom(p))
    gy = H.randn(y_ref.shape, _seed(p, "gy"))
    gx_ref = R.max_pool2d_backward(gy, i_ref, x.shape)
    bound = R.max_pool2d_backward(np.abs(gy), i_ref, x.shape)
    gx = aekernels.max_pool2d_backward(H.data(gy, layout, dtype), R.from_nchw(i_ref, layout),
                                       H.shape(x.shape, layout), layout=layout)
    H.assert_close(gx, R.from_nchw(gx_ref, layout), dtype, bound=R.from_nchw(bound, layout),
                   K=_window(p), what="max_pool2d_backward")


def test_max_pool2d_ties_pick_first_maximum(backend, dtype, layout):
    """All-equal windows: the index is the first in-image position in row-major order."""
    x = np.ones((1, 2, 5, 6))
    x[0, 1, 2:4, 2:5] = 3.0      # a plateau of maxima inside some windows
    for geom in (dict(kernel_size=3, stride=1, padding=1),
                 dict(kernel_size=2, stride=2, padding=1, ceil_mode=True),
                 dict(kernel_size=(3, 2), stride=(2, 1), dilation=(1, 2)),
                 dict(kernel_size=4, stride=1, padding="same")):
        y_ref, i_ref = R.max_pool2d(x, **geom)
        y, idx = aekernels.max_pool2d(H.data(x, layout, dtype), **geom, return_indices=True,
                                      layout=layout)
        H.assert_bitwise(y, R.from_nchw(y_ref, layout), dtype, what=f"ties {geom}")
        H.assert_bitwise(idx, R.from_nchw(i_ref, layout), np.int64, what=f"tie indices {geom}")


def test_max_pool2d_first_window_position_with_padding_is_in_image(backend, dtype, layout):
    """Padding never wins, even when every image value is negative."""
    x = -np.arange(1.0, 1 + 2 * 3 * 4).reshape(1, 2, 3, 4) - 100
    y_ref, i_ref = R.max_pool2d(x, 3, 2, 1)
    y, idx = aekernels.max_pool2d(H.data(x, layout, dtype), 3, 2, 1, return_indices=True,
                                  layout=layout)
    assert np.all(R.to_nchw(y, layout) <= -100)
    H.assert_bitwise(y, R.from_nchw(y_ref, layout), dtype)
    H.assert_bitwise(idx, R.from_nchw(i_ref, layout), np.int64)


def test_max_pool2d_nan_propagates_first_nan_wins(backend, dtype, layout):
    x = H.distinct((2, 2, 6, 7), 5)
    x[0, 0, 1, 1] = np.nan       # inside windows with larger values
    x[0, 1, 0, 0] = np.nan
    x[0, 1, 0, 1] = np.nan       # two NaNs in one window: the first one's index
    x[1, 0, 5, 6] = np.nan       # last position of the plane
    x[1, 1, 3, :] = np.inf
    x[1, 1, 3, 2] = np.nan       # NaN beats +inf
    x[1, 1, 4, 4] = -np.inf
    for geom in (dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1),
                 dict(kernel_size=3, stride=2, ceil_mode=True),
                 dict(kernel_size=2, stride=1, dilation=2)):
        y_ref, i_ref = R.max_pool2d(x, **geom)
        assert np.isnan(y_ref).any()
        y, idx = aekernels.max_pool2d(H.data(x, layout, dtype), **geom, return_indices=True,
                                      layout=layout)
        H.assert_bitwise(y, R.from_nchw(y_ref, layout), dtype, what=f"NaN values {geom}")
        H.assert_bitwise(idx, R.from_nchw(i_ref, layout), np.int64, what=f"NaN indices {geom}")


def test_max_pool2d_nan_everywhere(backend, dtype, layout):
    x = np.full((1, 1, 4, 4), np.nan)
    y, idx = aekernels.max_pool2d(H.data(x, layout, dtype), 2, return_indices=True,
                                  layout=layout)
    assert np.isnan(y).all()
    np.testing.assert_array_equal(R.to_nchw(idx, layout).ravel(), [0, 2, 8, 10])


def test_max_pool2d_3d_input_returns_3d(backend, dtype, layout):
    x = H.randn((1, 3, 7, 6), 1)
    y_ref, i_ref = R.max_pool2d(x, 3, 2, 1, ceil_mode=True)
    y, idx = aekernels.max_pool2d(H.data(x, layout, dtype)[0], 3, 2, 1, ceil_mode=True,
                                  return_indices=True, layout=layout)
    assert y.ndim == 3 and idx.ndim == 3
    H.assert_bitwise(y, R.from_nchw(y_ref, layout)[0], dtype)
    H.assert_bitwise(idx, R.from_nchw(i_ref, layout)[0], np.int64)
    gy = H.randn(y_ref.shape, 2)
    gx = aekernels.max_pool2d_backward(H.data(gy, layout, dtype)[0], idx,
                                       H.shape(x.shape[1:], layout), layout=layout)
    assert gx.shape == H.shape(x.shape[1:], layout)
    H.assert_close(gx, R.from_nchw(R.max_pool2d_backward(gy, i_ref, x.shape), layout)[0], dtype)


def test_max_pool2d_out_is_used_and_returned(backend, dtype, layout):
    x = H.randn((2, 3, 8, 7), 3)
    y_ref, i_ref = R.max_pool2d(x, 3, 2, 1)
    out = H.filled_out(R.from_nchw(y_ref, layout).shape, dtype)
    y = aekernels.max_pool2d(H.data(x, layout, dtype), 3, 2, 1, layout=layout, out=out)
    assert y is out
    H.assert_bitwise(out, R.from_nchw(y_ref, layout), dtype)
    out = H.filled_out(R.from_nchw(y_ref, layout).shape, dtype)
    y, idx = aekernels.max_pool2d(H.data(x, layout, dtype), 3, 2, 1, layout=layout, out=out,
                                  return_indices=True)
    assert y is out
    H.assert_bitwise(idx, R.from_nchw(i_ref, layout), np.int64)

    gy = H.randn(y_ref.shape, 4)
    out = H.filled_out(H.shape(x.shape, layout), dtype)
    gx = aekernels.max_pool2d_backward(H.data(gy, layout, dtype), idx, out.shape,
                                       layout=layout, out=out)
    assert gx is out
    H.assert_close(out, R.from_nchw(R.max_pool2d_backward(gy, i_ref, x.shape), layout), dtype)


def test_max_pool2d_empty_batch(backend, dtype, layout):
    x = np.zeros(H.shape((0, 3, 7, 6), layout), dtype)
    y, idx = aekernels.max_pool2d(x, 2, return_indices=True, layout=layout)
    assert y.shape == idx.shape == H.shape((0, 3, 3, 3), layout)
    assert y.dtype == dtype and idx.dtype == np.int64
    gx = aekernels.max_pool2d_backward(y, idx, x.shape, layout=layout)
    assert gx.shape == x.shape and gx.dtype == dtype


def test_max_pool2d_backward_duplicate_indices_accumulate(backend, dtype, layout):
    """Overlapping windows share a maximum: its gradient is the sum."""
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 1] = 9.0
    y_ref, i_ref = R.max_pool2d(x, 3, 1, 1)
    gy = np.arange(1.0, 1 + y_ref.size).reshape(y_ref.shape)
    gx = aekernels.max_pool2d_backward(H.data(gy, layout, dtype), R.from_nchw(i_ref, layout),
                                       H.shape(x.shape, layout), layout=layout)
    H.assert_bitwise(gx, R.from_nchw(R.max_pool2d_backward(gy, i_ref, x.shape), layout), dtype)


@pytest.mark.parametrize("bad, lo_hi", [(-1, None), (-2**63, None), (16, None),
                                         (2**63 - 1, None), (-5, 2**63 - 1)])
def test_index_range_check_boundaries_and_message(backend, bad, lo_hi):
    """The one-pass (unsigned maximum) index check: plane - 1 and 0 pass; anything
    negative or >= plane is refused before the kernel runs (``out`` untouched), and the
    message names the most negative index, else the largest."""
    x = np.zeros((1, 1, 4, 4), np.float32)
    idx = np.array([[[[0, 15], [5, 10]]]], np.int64)
    gy = np.ones((1, 1, 2, 2), np.float32)
    aekernels.max_pool2d_backward(gy, idx, x.shape)            # 0 and plane - 1 pass
    idx[0, 0, 1, 0] = bad
    if lo_hi is not None:
        idx[0, 0, 0, 1] = lo_hi
    culprit = bad if bad < 0 else int(idx.max())
    calls = [
        lambda out: aekernels.max_pool2d_backward(gy, idx, x.shape, out=out),
        lambda out: aekernels.max_unpool2d(gy, idx, 2, out=out),
        lambda out: aekernels.max_unpool2d_backward(x, idx, out=out),
    ]
    for call, shape in zip(calls, [x.shape, x.shape, gy.shape]):
        out = np.full(shape, 7.0, np.float32)
        with pytest.raises(ValueError, match=rf"indices must lie in \[0, 16\).*found {culprit}$"):
            call(out)
        assert (out == 7.0).all()


def test_max_pool2d_is_deterministic(backend):
    x = H.randn((2, 16, 20, 21), 9).astype(np.float32)
    a = aekernels.max_pool2d(x, 3, 2, 1, return_indices=True)
    b = aekernels.max_pool2d(x, 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(a[0], b[0], strict=True)
    np.testing.assert_array_equal(a[1], b[1], strict=True)


# ----------------------------------------------------------------------------- avg pool


@pytest.mark.parametrize("opts", AVG_OPTIONS)
@pytest.mark.parametrize("p", POOL_CASES)
def test_avg_pool2d_forward(backend, dtype, layout, p, opts):
    x = H.randn(_x(p), _seed(p))
    y_ref = R.avg_pool2d(x, **_geom(p), **opts)
    bound = R.avg_pool2d(np.abs(x), **_geom(p), **opts)
    y = aekernels.avg_pool2d(H.data(x, layout, dtype), **_geom(p), **opts, layout=layout)
    H.assert_close(y, R.from_nchw(y_ref, layout), dtype, bound=R.from_nchw(bound, layout),
                   K=_window(p) + 1, what="avg_pool2d")


@pytest.mark.parametrize("opts", AVG_OPTIONS)
@pytest.mark.parametrize("p", POOL_CASES)
def test_avg_pool2d_backward(backend, dtype, layout, p, opts):
    x_shape = _x(p)
    y_shape = R.avg_pool2d(np.zeros(x_shape), **_geom(p), **opts).shape
    gy = H.randn(y_shape, _seed(p, "gy"))
    gx_ref = R.avg_pool2d_backward(gy, x_shape, **_geom(p), **opts)
    bound = R.avg_pool2d_backward(np.abs(gy), x_shape, **_geom(p), **opts)
    gx = aekernels.avg_pool2d_backward(H.data(gy, layout, dtype), H.shape(x_shape, layout),
                                       **_geom(p), **opts, layout=layout)
    H.assert_close(gx, R.from_nchw(gx_ref, layout), dtype, bound=R.from_nchw(bound, layout),
                   K=_window(p) + 1, what="avg_pool2d_backward")


def test_avg_pool2d_integer_data_divisor_override_exact(backend, dtype, layout):
    x = np.arange(2 * 2 * 6 * 6, dtype=np.float64).reshape(2, 2, 6, 6) % 7
    y_ref = R.avg_pool2d(x, 2, divisor_override=1)
    y = aekernels.avg_pool2d(H.data(x, layout, dtype), 2, divisor_override=1, layout=layout)
    H.assert_bitwise(y, R.from_nchw(y_ref, layout), dtype)


def test_avg_pool2d_3d_input_returns_3d(backend, dtype, layout):
    x = H.randn((1, 3, 7, 6), 1)
    kw = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
    y_ref = R.avg_pool2d(x, **kw)
    y = aekernels.avg_pool2d(H.data(x, layout, dtype)[0], **kw, layout=layout)
    assert y.ndim == 3
    H.assert_close(y, R.from_nchw(y_ref, layout)[0], dtype)
    gx = aekernels.avg_pool2d_backward(H.data(y_ref, layout, dtype)[0],
                                       H.shape(x.shape[1:], layout), **kw, layout=layout)
    assert gx.ndim == 3
    H.assert_close(gx, R.from_nchw(R.avg_pool2d_backward(y_ref, x.shape, **kw), layout)[0],
                   dtype)


def test_avg_pool2d_out_is_used_and_returned(backend, dtype, layout):
    x = H.randn((2, 3, 8, 7), 3)
    kw = dict(kernel_size=3, stride=2, padding=1)
    y_ref = R.avg_pool2d(x, **kw)
    out = H.filled_out(R.from_nchw(y_ref, layout).shape, dtype)
    y = aekernels.avg_pool2d(H.data(x, layout, dtype), **kw, layout=layout, out=out)
    assert y is out
    H.assert_close(out, R.from_nchw(y_ref, layout), dtype)
    out = H.filled_out(H.shape(x.shape, layout), dtype)
    gx = aekernels.avg_pool2d_backward(H.data(y_ref, layout, dtype), out.shape, **kw,
                                       layout=layout, out=out)
    assert gx is out
    H.assert_close(out, R.from_nchw(R.avg_pool2d_backward(y_ref, x.shape, **kw), layout), dtype)


def test_avg_pool2d_empty_batch(backend, dtype, layout):
    x = np.zeros(H.shape((0, 3, 7, 6), layout), dtype)
    y = aekernels.avg_pool2d(x, 3, 2, 1, layout=layout)
    assert y.shape == H.shape((0, 3, 4, 3), layout) and y.dtype == dtype
    gx = aekernels.avg_pool2d_backward(y, x.shape, 3, 2, 1, layout=layout)
    assert gx.shape == x.shape and gx.dtype == dtype
